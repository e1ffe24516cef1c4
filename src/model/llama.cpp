// The Llama family (modeling_llama.py; Mistral and Qwen2 differ only in config
// values), on the eager attention path: a pre-norm decoder with rotary positions,
// grouped-query attention and a SwiGLU feed-forward.
//
//   x = embed_tokens[id]
//   per layer:
//     h       = RMSNorm(x)
//     q, k, v = h Wq, h Wk, h Wv          k, v: num_key_value_heads heads
//     q, k    = rotate(q, k)              rope_theta, rope_scaling (linear, dynamic, llama3)
//     probs   = softmax(q k^T / sqrt(head_dim), causal [, sliding window])   -> the trace
//     x = x + (probs v) Wo                key/value head j serves query heads j*g .. j*g+g-1
//     x = x + (silu(RMSNorm(x) W_gate) * (RMSNorm(x) W_up)) W_down
//   norm(x) is the last hidden state
//
// The trace shows every query head; its keys are the rotated keys of the shared
// head, repeated per query head (transformers' repeat_kv).
// Checkpoints: LlamaModel names, or "model."-prefixed ones (LlamaForCausalLM,
// ...ForSequenceClassification: the heads are not read).
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "model/value_norms.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct LlamaWeights {
    const float* token_embedding = nullptr;  // embed_tokens [vocab, hidden]
    const float* final_norm_weight = nullptr;
};

constexpr WeightSpec<LlamaWeights> kModelTable[] = {
    {&LlamaWeights::token_embedding, "embed_tokens.weight", "vocab, hidden"},
    {&LlamaWeights::final_norm_weight, "norm.weight", "hidden"},
};

struct LlamaLayerWeights {
    const float* attn_norm_weight;                 // input_layernorm
    const float *query_weight, *query_bias;        // [heads*head_dim, hidden]
    const float *key_weight, *key_bias;            // [kv_heads*head_dim, hidden]
    const float *value_weight, *value_bias;        // [kv_heads*head_dim, hidden]
    const float *attn_out_weight, *attn_out_bias;  // o_proj [hidden, heads*head_dim]
    const float* ffn_norm_weight;                  // post_attention_layernorm
    const float *gate_weight, *gate_bias;          // [intermediate, hidden]
    const float *up_weight, *up_bias;              // [intermediate, hidden]
    const float *down_weight, *down_bias;          // [hidden, intermediate]
};

// Biases: attention_bias (Llama, Mistral), always on q/k/v (Qwen2), mlp_bias.
// They are optional here; config.json decides whether one must be present.
constexpr WeightSpec<LlamaLayerWeights> kLayerTable[] = {
    {&LlamaLayerWeights::attn_norm_weight, "layers.{L}.input_layernorm.weight", "hidden"},
    {&LlamaLayerWeights::query_weight, "layers.{L}.self_attn.q_proj.weight",
     "heads*head_dim, hidden"},
    {&LlamaLayerWeights::query_bias, "layers.{L}.self_attn.q_proj.bias", "heads*head_dim", true},
    {&LlamaLayerWeights::key_weight, "layers.{L}.self_attn.k_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&LlamaLayerWeights::key_bias, "layers.{L}.self_attn.k_proj.bias", "kv_heads*head_dim", true},
    {&LlamaLayerWeights::value_weight, "layers.{L}.self_attn.v_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&LlamaLayerWeights::value_bias, "layers.{L}.self_attn.v_proj.bias", "kv_heads*head_dim", true},
    {&LlamaLayerWeights::attn_out_weight, "layers.{L}.self_attn.o_proj.weight",
     "hidden, heads*head_dim"},
    {&LlamaLayerWeights::attn_out_bias, "layers.{L}.self_attn.o_proj.bias", "hidden", true},
    {&LlamaLayerWeights::ffn_norm_weight, "layers.{L}.post_attention_layernorm.weight", "hidden"},
    {&LlamaLayerWeights::gate_weight, "layers.{L}.mlp.gate_proj.weight", "intermediate, hidden"},
    {&LlamaLayerWeights::gate_bias, "layers.{L}.mlp.gate_proj.bias", "intermediate", true},
    {&LlamaLayerWeights::up_weight, "layers.{L}.mlp.up_proj.weight", "intermediate, hidden"},
    {&LlamaLayerWeights::up_bias, "layers.{L}.mlp.up_proj.bias", "intermediate", true},
    {&LlamaLayerWeights::down_weight, "layers.{L}.mlp.down_proj.weight", "hidden, intermediate"},
    {&LlamaLayerWeights::down_bias, "layers.{L}.mlp.down_proj.bias", "hidden", true},
};

struct LlamaLayer {
    LlamaLayerWeights weights;
    Linear qkv;       // [hidden] -> [query | key | value]
    Linear attn_out;  // added to the residual
    Linear gate;      // silu fused
    Linear up;
    Linear down;             // added to the residual
    int sliding_window = 0;  // 0: none
};

// What config.json says beyond the common fields.
struct LlamaExtras {
    RopeConfig rope;
    bool qkv_bias = false, out_bias = false, mlp_bias = false;
    std::vector<int> sliding_window;  // per layer, 0: none
};

// Qwen2's per-layer attention kind: config.json's layer_types when present
// ("full_attention" or "sliding_attention" per layer), else sliding from
// max_window_layers on when there is a window (Qwen2Config's default list).
std::vector<bool> qwen2_sliding_layers(const ConfigReader& reader, const ModelConfig& config,
                                       int window) {
    const size_t n_layers = static_cast<size_t>(config.n_layers);
    std::vector<bool> sliding(n_layers, false);
    const auto types = reader.json().find("layer_types");
    if (types == reader.json().end() || types->is_null()) {
        const int from = reader.integer({"max_window_layers"}, 28);
        for (int layer = from; window > 0 && layer < config.n_layers; ++layer)
            sliding[static_cast<size_t>(layer)] = true;
        return sliding;
    }
    if (!types->is_array() || types->size() != n_layers)
        throw Error(reader.file() + ": \"layer_types\" must list one entry per layer (" +
                    std::to_string(n_layers) + "), not " + types->dump());
    for (size_t layer = 0; layer < n_layers; ++layer) {
        const nlohmann::json& type = (*types)[layer];
        if (type == "sliding_attention")
            sliding[layer] = true;
        else if (type != "full_attention")
            throw Error(reader.file() + ": \"layer_types\"[" + std::to_string(layer) + "] is " +
                        type.dump() +
                        ", not supported (supported: full_attention, sliding_attention)");
    }
    if (window <= 0 && std::find(sliding.begin(), sliding.end(), true) != sliding.end())
        throw Error(reader.file() +
                    ": \"layer_types\" has sliding_attention layers but no sliding window "
                    "(use_sliding_window is false or sliding_window is null), as transformers "
                    "refuses too");
    return sliding;
}

LlamaExtras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    LlamaExtras extras;
    const int rope_positions = reader.integer({"max_position_embeddings"}, 2048);
    extras.rope = read_rope_config(reader, config.head_dim, rope_positions);
    // Qwen2 always has q/k/v biases; only LlamaConfig has attention_bias and mlp_bias
    const bool qwen2 = config.model_type == "qwen2", llama = config.model_type == "llama";
    extras.out_bias = llama && reader.boolean({"attention_bias"}, false);
    extras.qkv_bias = qwen2 || extras.out_bias;
    extras.mlp_bias = llama && reader.boolean({"mlp_bias"}, false);
    // Mistral: every layer sees the last sliding_window keys. Qwen2: only with
    // use_sliding_window, on the layers layer_types calls "sliding_attention",
    // or without layer_types from layer max_window_layers on.
    extras.sliding_window.assign(static_cast<size_t>(config.n_layers), 0);
    const int window = reader.integer({"sliding_window"}, 0);
    if (config.model_type == "mistral" && window > 0) {
        extras.sliding_window.assign(static_cast<size_t>(config.n_layers), window);
    } else if (qwen2) {
        // Qwen2Config: sliding_window is None unless use_sliding_window
        const int qwen2_window = reader.boolean({"use_sliding_window"}, false) ? window : 0;
        const std::vector<bool> sliding = qwen2_sliding_layers(reader, config, qwen2_window);
        for (size_t layer = 0; layer < sliding.size(); ++layer)
            if (sliding[layer]) extras.sliding_window[layer] = qwen2_window;
    }
    return extras;
}

class Llama final : public Network {
public:
    Llama(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          extras_(read_extras(reader, config)),
          loader_(tensors, config, {"", "model."}) {
        loader_.bind(kModelTable, weights_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const int Dq = config.n_heads * config.head_dim, Dkv = config.n_kv_heads * config.head_dim;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            LlamaLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const LlamaLayerWeights& w = l.weights;
            require_bias(w.query_bias && w.key_bias && w.value_bias, extras_.qkv_bias, layer,
                         "q/k/v_proj");
            require_bias(w.attn_out_bias, extras_.out_bias, layer, "o_proj");
            require_bias(w.gate_bias && w.up_bias && w.down_bias, extras_.mlp_bias, layer, "mlp");
            l.qkv = Linear({{w.query_weight, w.query_bias, Dq},
                            {w.key_weight, w.key_bias, Dkv},
                            {w.value_weight, w.value_bias, Dkv}},
                           D);
            l.attn_out = Linear(w.attn_out_weight, w.attn_out_bias, Dq, D);
            l.gate =
                Linear(w.gate_weight, w.gate_bias, D, I, runtime::WeightLayout::out_in, activation);
            l.up = Linear(w.up_weight, w.up_bias, D, I);
            l.down = Linear(w.down_weight, w.down_bias, I, D);
            l.sliding_window = extras_.sliding_window[static_cast<size_t>(layer)];
        }
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, config_.model_type);
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Hkv = config_.n_kv_heads;
        const int Dh = config_.head_dim, L = config_.n_layers, I = config_.intermediate_size;
        const int Dq = H * Dh, Dkv = Hkv * Dh, W = Dq + 2 * Dkv;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(make_block("self", L, H, T, T, Dh,
                                                                      1.0f / std::sqrt(float(Dh)),
                                                                      /*causal=*/true, options));
        start_value_norms(block, options.keep_value_norms);
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        const RopeTables rope = rope_tables(extras_.rope, T);

        std::vector<float> x(static_cast<size_t>(T) * D);         // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);         // [T, D] normalized
        std::vector<float> qkv(static_cast<size_t>(T) * W);       // [T, Dq + 2 Dkv]
        std::vector<float> context(static_cast<size_t>(T) * Dq);  // [T, Dq]
        std::vector<float> gate(static_cast<size_t>(T) * I), up(static_cast<size_t>(T) * I);
        std::vector<float> window_bias;  // [H, T, T]: -inf outside a sliding window
        int window_bias_for = 0;         // the window window_bias was made for

        for (int t = 0; t < T; ++t)
            std::copy_n(weights_.token_embedding + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const LlamaLayer& l = layers_[static_cast<size_t>(layer)];
            runtime::rms_norm(x.data(), l.weights.attn_norm_weight, h.data(), T, D,
                              config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            apply_rope(qkv.data(), W, T, H, Dh, rope);         // queries
            apply_rope(qkv.data() + Dq, W, T, Hkv, Dh, rope);  // keys
            keep_queries_keys(block, layer, qkv.data(), W, qkv.data() + Dq, W, Hkv);
            AttentionCall call{.head_dim = Dh,
                               .queries = qkv.data(),
                               .query_stride = W,
                               .keys = qkv.data() + Dq,
                               .key_stride = W,
                               .values = qkv.data() + Dq + Dkv,
                               .value_stride = W,
                               .n_kv_heads = Hkv};
            if (l.sliding_window > 0 && l.sliding_window < T) {
                if (window_bias_for != l.sliding_window)
                    sliding_window_bias(l.sliding_window, T, window_bias);
                window_bias_for = l.sliding_window;
                call.score_bias = window_bias.data();
            }
            attend(block, layer, call, context.data(), Dq);
            keep_value_norms(block, layer, call.values, W, Dh, Hkv, l.attn_out);
            l.attn_out.forward_add(context.data(), x.data(), T);

            runtime::rms_norm(x.data(), l.weights.ffn_norm_weight, h.data(), T, D,
                              config_.norm_eps);
            l.gate.forward(h.data(), gate.data(), T);
            l.up.forward(h.data(), up.data(), T);
            for (size_t i = 0; i < gate.size(); ++i) gate[i] *= up[i];
            l.down.forward_add(gate.data(), x.data(), T);
            hidden.add(x.data());
        }
        runtime::rms_norm(x.data(), weights_.final_norm_weight, h.data(), T, D, config_.norm_eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    void require_bias(bool present, bool expected, int layer, const char* what) const {
        if (expected && !present)
            throw Error(std::string("layer ") + std::to_string(layer) + ": config.json asks for " +
                        what + " biases, but the checkpoint lacks them");
    }

    // Key k is visible from query q when q - k < window (and k <= q, the causal mask).
    void sliding_window_bias(int window, int T, std::vector<float>& bias) const {
        const int H = config_.n_heads;
        bias.assign(static_cast<size_t>(T) * T, 0.0f);
        for (int q = 0; q < T; ++q)
            for (int k = 0; k <= q - window; ++k)
                bias[static_cast<size_t>(q) * T + k] = -std::numeric_limits<float>::infinity();
        bias.resize(static_cast<size_t>(H) * T * T);
        for (int head = 1; head < H; ++head)
            std::copy_n(bias.data(), static_cast<size_t>(T) * T,
                        bias.data() + static_cast<size_t>(head) * T * T);
    }

    ModelConfig config_;
    LlamaExtras extras_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    LlamaWeights weights_;
    std::vector<LlamaLayer> layers_;
};

}  // namespace

void read_llama_config(const ConfigReader& reader, ModelConfig& config) {
    read_rotary_decoder_config(reader, config, {"rms_norm_eps", 1e-6, "hidden_act", "silu", 2048});
    config.head_dim = reader.integer({"head_dim"}, config.hidden_size / config.n_heads);
    if (config.head_dim < 2 || config.head_dim % 2 != 0)
        throw Error(reader.file() + ": head_dim " + std::to_string(config.head_dim) +
                    " must be even for rotary embeddings");
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    // validates rope_scaling and Qwen2's layer_types
    const LlamaExtras extras = read_extras(reader, config);
    set_sliding_windows(config, extras.sliding_window);
}

std::unique_ptr<Network> load_llama(const LoadContext& context) {
    return std::make_unique<Llama>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
