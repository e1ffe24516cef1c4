// Gemma and Gemma 2 (modeling_gemma.py, modeling_gemma2.py), on the eager
// attention path: Llama's pre-norm decoder with rotary positions and grouped-query
// attention, plus
//
//   x = embed_tokens[id] * float32(sqrt(hidden_size))
//   RMSNorm(x) = x / sqrt(mean(x^2) + eps) * (1 + w)
//   feed-forward: (act(h W_gate) * (h W_up)) W_down     act: hidden_activation
//
// Gemma 2 also has
//   score   = softcap * tanh(q.k * query_pre_attn_scalar^-0.5 / softcap)   attn_logit_softcapping
//   sliding windows on the layers layer_types names (the even ones by default)
//   x = x + RMSNorm_post_attn(attention(RMSNorm_in(x)))
//   x = x + RMSNorm_post_ffn(FFN(RMSNorm_pre_ffn(x)))
// final_logit_softcapping acts on the LM head's logits, which attnviz never computes.
//
// A soft-capped score is no scale * q.k + bias: those blocks say not_decomposable.
// Checkpoints: GemmaModel names, or "model."-prefixed (…ForCausalLM).
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct GemmaLayerWeights {
    const float* attn_norm_weight;                 // input_layernorm
    const float *query_weight, *query_bias;        // [heads*head_dim, hidden]
    const float *key_weight, *key_bias;            // [kv_heads*head_dim, hidden]
    const float *value_weight, *value_bias;        // [kv_heads*head_dim, hidden]
    const float *attn_out_weight, *attn_out_bias;  // o_proj [hidden, heads*head_dim]
    const float* post_attn_norm_weight;  // Gemma: before the FFN; Gemma 2: after attention
    const float* pre_ffn_norm_weight;    // Gemma 2 only
    const float* post_ffn_norm_weight;   // Gemma 2 only
    const float* gate_weight;            // [intermediate, hidden]
    const float* up_weight;              // [intermediate, hidden]
    const float* down_weight;            // [hidden, intermediate]
};

constexpr WeightSpec<GemmaLayerWeights> kLayerTable[] = {
    {&GemmaLayerWeights::attn_norm_weight, "layers.{L}.input_layernorm.weight", "hidden"},
    {&GemmaLayerWeights::query_weight, "layers.{L}.self_attn.q_proj.weight",
     "heads*head_dim, hidden"},
    {&GemmaLayerWeights::query_bias, "layers.{L}.self_attn.q_proj.bias", "heads*head_dim", true},
    {&GemmaLayerWeights::key_weight, "layers.{L}.self_attn.k_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&GemmaLayerWeights::key_bias, "layers.{L}.self_attn.k_proj.bias", "kv_heads*head_dim", true},
    {&GemmaLayerWeights::value_weight, "layers.{L}.self_attn.v_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&GemmaLayerWeights::value_bias, "layers.{L}.self_attn.v_proj.bias", "kv_heads*head_dim", true},
    {&GemmaLayerWeights::attn_out_weight, "layers.{L}.self_attn.o_proj.weight",
     "hidden, heads*head_dim"},
    {&GemmaLayerWeights::attn_out_bias, "layers.{L}.self_attn.o_proj.bias", "hidden", true},
    {&GemmaLayerWeights::post_attn_norm_weight, "layers.{L}.post_attention_layernorm.weight",
     "hidden"},
    {&GemmaLayerWeights::pre_ffn_norm_weight, "layers.{L}.pre_feedforward_layernorm.weight",
     "hidden", true},
    {&GemmaLayerWeights::post_ffn_norm_weight, "layers.{L}.post_feedforward_layernorm.weight",
     "hidden", true},
    {&GemmaLayerWeights::gate_weight, "layers.{L}.mlp.gate_proj.weight", "intermediate, hidden"},
    {&GemmaLayerWeights::up_weight, "layers.{L}.mlp.up_proj.weight", "intermediate, hidden"},
    {&GemmaLayerWeights::down_weight, "layers.{L}.mlp.down_proj.weight", "hidden, intermediate"},
};

// GemmaRMSNorm's weight is an offset from 1: the float32 sum 1 + w, once.
std::vector<float> one_plus(const float* weight, int n) {
    std::vector<float> out(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = 1.0f + weight[i];
    return out;
}

struct GemmaLayer {
    Linear qkv;       // [hidden] -> [query | key | value]
    Linear attn_out;  // o_proj
    Linear gate;      // activation fused
    Linear up;
    Linear down;
    std::vector<float> attn_norm, post_attn_norm, pre_ffn_norm, post_ffn_norm;  // 1 + w
    int sliding_window = 0;                                                     // 0: none
};

struct GemmaExtras {
    bool gemma2 = false;
    RopeConfig rope;
    bool attention_bias = false;
    float score_scale = 1.0f;
    float softcap = 0.0f;             // attn_logit_softcapping, 0: none
    std::vector<int> sliding_window;  // per layer, 0: none
    runtime::Activation activation = runtime::Activation::gelu_tanh;
};

// Gemma2Config: layer_types when given, else sliding on the even layers.
std::vector<int> gemma2_windows(const ConfigReader& reader, int n_layers, int window) {
    std::vector<int> windows(static_cast<size_t>(n_layers), 0);
    const auto types = reader.json().find("layer_types");
    const bool listed = types != reader.json().end() && !types->is_null();
    if (listed && (!types->is_array() || types->size() != windows.size()))
        throw Error(reader.file() + ": \"layer_types\" must list one entry per layer (" +
                    std::to_string(n_layers) + "), not " + types->dump());
    for (size_t layer = 0; layer < windows.size(); ++layer) {
        bool sliding = layer % 2 == 0;
        if (listed) {
            const nlohmann::json& type = (*types)[layer];
            if (type != "sliding_attention" && type != "full_attention")
                throw Error(reader.file() + ": \"layer_types\"[" + std::to_string(layer) + "] is " +
                            type.dump() +
                            ", not supported (supported: full_attention, sliding_attention)");
            sliding = type == "sliding_attention";
        }
        if (sliding) windows[layer] = window;
    }
    return windows;
}

GemmaExtras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    GemmaExtras extras;
    extras.gemma2 = config.model_type == "gemma2";
    const int rope_positions = reader.integer({"max_position_embeddings"}, 8192);
    extras.rope = read_rope_config(reader, config.head_dim, rope_positions);
    extras.attention_bias = reader.boolean({"attention_bias"}, false);
    // GemmaMLP: hidden_activation, or gelu_pytorch_tanh when null (hidden_act is ignored)
    const std::string act = reader.string({"hidden_activation"}, "gelu_pytorch_tanh");
    check_activation(act, reader.file(), "hidden_activation");
    extras.activation = runtime::activation_from_name(act);
    extras.sliding_window.assign(static_cast<size_t>(config.n_layers), 0);
    if (!extras.gemma2) {
        extras.score_scale = static_cast<float>(1.0 / std::sqrt(double(config.head_dim)));
        return extras;
    }
    const double scalar = reader.number({"query_pre_attn_scalar"}, 256);
    if (!(scalar > 0)) throw Error(reader.file() + ": \"query_pre_attn_scalar\" must be positive");
    extras.score_scale = static_cast<float>(std::pow(scalar, -0.5));
    // null turns the cap off; absent is Gemma2Config's default, 50
    const auto cap = reader.json().find("attn_logit_softcapping");
    const bool cap_off = cap != reader.json().end() && cap->is_null();
    const double softcap = cap_off ? 0.0 : reader.number({"attn_logit_softcapping"}, 50.0);
    if (!(softcap >= 0))
        throw Error(reader.file() + ": \"attn_logit_softcapping\" must be positive or null");
    extras.softcap = static_cast<float>(softcap);
    // Gemma2DecoderLayer needs a window for its sliding layers
    const auto window_key = reader.json().find("sliding_window");
    if (window_key != reader.json().end() && window_key->is_null())
        throw Error(reader.file() +
                    ": \"sliding_window\" is null, not supported: Gemma 2's "
                    "sliding layers need a window, as transformers requires");
    const int window = reader.integer({"sliding_window"}, 4096);
    if (window < 1) throw Error(reader.file() + ": \"sliding_window\" must be positive");
    extras.sliding_window = gemma2_windows(reader, config.n_layers, window);
    return extras;
}

class Gemma final : public Network {
public:
    Gemma(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          extras_(read_extras(reader, config)),
          loader_(tensors, config, {"", "model."}) {
        embedding_ = loader_.get("embed_tokens.weight", "vocab, hidden");
        final_norm_ = one_plus(loader_.get("norm.weight", "hidden"), config.hidden_size);
        const int D = config.hidden_size, I = config.intermediate_size;
        const int Dq = config.n_heads * config.head_dim, Dkv = config.n_kv_heads * config.head_dim;
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            GemmaLayer& l = layers_[static_cast<size_t>(layer)];
            GemmaLayerWeights w;
            loader_.bind(kLayerTable, w, layer);
            const bool biases = w.query_bias && w.key_bias && w.value_bias && w.attn_out_bias;
            if (extras_.attention_bias && !biases)
                throw Error("layer " + std::to_string(layer) +
                            ": config.json asks for attention biases (attention_bias), but the "
                            "checkpoint lacks them");
            const auto bias = [&](const float* b) { return extras_.attention_bias ? b : nullptr; };
            if (extras_.gemma2 && !(w.pre_ffn_norm_weight && w.post_ffn_norm_weight))
                throw Error("layer " + std::to_string(layer) +
                            ": Gemma 2 needs pre_feedforward_layernorm and "
                            "post_feedforward_layernorm, which the checkpoint lacks");
            l.qkv = Linear({{w.query_weight, bias(w.query_bias), Dq},
                            {w.key_weight, bias(w.key_bias), Dkv},
                            {w.value_weight, bias(w.value_bias), Dkv}},
                           D);
            l.attn_out = Linear(w.attn_out_weight, bias(w.attn_out_bias), Dq, D);
            l.gate = Linear(w.gate_weight, nullptr, D, I, runtime::WeightLayout::out_in,
                            extras_.activation);
            l.up = Linear(w.up_weight, nullptr, D, I);
            l.down = Linear(w.down_weight, nullptr, I, D);
            l.attn_norm = one_plus(w.attn_norm_weight, D);
            l.post_attn_norm = one_plus(w.post_attn_norm_weight, D);
            if (extras_.gemma2) {
                l.pre_ffn_norm = one_plus(w.pre_ffn_norm_weight, D);
                l.post_ffn_norm = one_plus(w.post_ffn_norm_weight, D);
            }
            l.sliding_window = extras_.sliding_window[static_cast<size_t>(layer)];
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, config_.model_type);
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Hkv = config_.n_kv_heads;
        const int Dh = config_.head_dim, L = config_.n_layers, I = config_.intermediate_size;
        const int Dq = H * Dh, Dkv = Hkv * Dh, W = Dq + 2 * Dkv;
        const float eps = config_.norm_eps;

        ForwardOutput output;
        AttentionBlock& block =
            output.blocks.emplace_back(make_block("self", L, H, T, T, Dh, extras_.score_scale,
                                                  /*causal=*/true, options));
        // tanh between the scaled product and the softmax: no bias reproduces it
        if (extras_.softcap > 0) block.score_form = ScoreForm::not_decomposable;
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        const RopeTables rope = rope_tables(extras_.rope, T);

        std::vector<float> x(static_cast<size_t>(T) * D);   // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);   // [T, D] normalized
        std::vector<float> h2(static_cast<size_t>(T) * D);  // [T, D] a sublayer's output
        std::vector<float> qkv(static_cast<size_t>(T) * W);
        std::vector<float> context(static_cast<size_t>(T) * Dq);
        std::vector<float> gate(static_cast<size_t>(T) * I), up(static_cast<size_t>(T) * I);
        std::vector<float> window_bias;  // [H, T, T]: -inf outside the sliding window
        int window_bias_for = 0;

        // torch.tensor(hidden_size ** 0.5, dtype=float32)
        const float normalizer = static_cast<float>(std::sqrt(static_cast<double>(D)));
        for (int t = 0; t < T; ++t) {
            const float* row = embedding_ + static_cast<size_t>(ids[t]) * D;
            float* out = x.data() + static_cast<size_t>(t) * D;
            for (int i = 0; i < D; ++i) out[i] = row[i] * normalizer;
        }
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const GemmaLayer& l = layers_[static_cast<size_t>(layer)];
            runtime::rms_norm(x.data(), l.attn_norm.data(), h.data(), T, D, eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            apply_rope(qkv.data(), W, T, H, Dh, rope);
            apply_rope(qkv.data() + Dq, W, T, Hkv, Dh, rope);
            keep_queries_keys(block, layer, qkv.data(), W, qkv.data() + Dq, W, Hkv);
            AttentionCall call{.head_dim = Dh,
                               .queries = qkv.data(),
                               .query_stride = W,
                               .keys = qkv.data() + Dq,
                               .key_stride = W,
                               .values = qkv.data() + Dq + Dkv,
                               .value_stride = W,
                               .n_kv_heads = Hkv,
                               .softcap = extras_.softcap};
            if (l.sliding_window > 0 && l.sliding_window < T) {
                if (window_bias_for != l.sliding_window)
                    sliding_window_bias(l.sliding_window, T, window_bias);
                window_bias_for = l.sliding_window;
                call.score_bias = window_bias.data();
            }
            attend(block, layer, call, context.data(), Dq);
            if (extras_.gemma2) {
                l.attn_out.forward(context.data(), h2.data(), T);
                runtime::rms_norm(h2.data(), l.post_attn_norm.data(), h2.data(), T, D, eps);
                runtime::add_in_place(x.data(), h2.data(), x.size());
                runtime::rms_norm(x.data(), l.pre_ffn_norm.data(), h.data(), T, D, eps);
            } else {
                l.attn_out.forward_add(context.data(), x.data(), T);
                runtime::rms_norm(x.data(), l.post_attn_norm.data(), h.data(), T, D, eps);
            }
            l.gate.forward(h.data(), gate.data(), T);
            l.up.forward(h.data(), up.data(), T);
            for (size_t i = 0; i < gate.size(); ++i) gate[i] *= up[i];
            if (extras_.gemma2) {
                l.down.forward(gate.data(), h2.data(), T);
                runtime::rms_norm(h2.data(), l.post_ffn_norm.data(), h2.data(), T, D, eps);
                runtime::add_in_place(x.data(), h2.data(), x.size());
            } else {
                l.down.forward_add(gate.data(), x.data(), T);
            }
            hidden.add(x.data());
        }
        runtime::rms_norm(x.data(), final_norm_.data(), h.data(), T, D, eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
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
    GemmaExtras extras_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    const float* embedding_ = nullptr;
    std::vector<float> final_norm_;  // 1 + w
    std::vector<GemmaLayer> layers_;
};

}  // namespace

void read_gemma_config(const ConfigReader& reader, ModelConfig& config) {
    // Gemma reads hidden_activation; hidden_act is a legacy key it ignores
    read_rotary_decoder_config(
        reader, config, {"rms_norm_eps", 1e-6, "hidden_activation", "gelu_pytorch_tanh", 8192});
    config.head_dim = reader.integer({"head_dim"}, 256);
    if (config.head_dim < 2 || config.head_dim % 2 != 0)
        throw Error(reader.file() + ": head_dim " + std::to_string(config.head_dim) +
                    " must be even for rotary embeddings");
    // validates the activation, rope, layer_types
    const GemmaExtras extras = read_extras(reader, config);
    set_sliding_windows(config, extras.sliding_window);
    config.attn_softcap = extras.softcap;
}

std::unique_ptr<Network> load_gemma(const LoadContext& context) {
    return std::make_unique<Gemma>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
