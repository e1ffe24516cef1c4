// GPT-NeoX (the Pythia suite, GPT-NeoX-20B), as modeling_gpt_neox.py computes
// it on its eager attention path: a pre-norm decoder with partial rotary
// positions and, by default, a parallel residual.
//
//   x = embed_in[id]
//   per layer:
//     q, k, v = input_layernorm(x) W_qkv + b    rows of W_qkv per head: [h0: q k v | h1: q k v ...]
//     q, k    = rotate the first rotary_ndims = int(head_dim * rotary_pct) dims of each head
//     probs   = softmax(q k^T / sqrt(head_dim), causal)     -> the trace
//     a       = (probs v) W_dense + b
//     use_parallel_residual:  x = x + a + mlp(post_attention_layernorm(x))
//     otherwise:              x = x + a;  x = x + mlp(post_attention_layernorm(x))
//     mlp(h)  = act(h W_h_to_4h + b) W_4h_to_h + b
//   final_layer_norm(x) is the last hidden state
//
// Checkpoints: GPTNeoXModel names, or "gpt_neox."-prefixed ones
// (GPTNeoXForCausalLM: embed_out and the old attention.bias / masked_bias /
// rotary_emb.inv_freq buffers are not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/fused_qkv.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct NeoxWeights {
    const float* token_embedding = nullptr;  // embed_in [vocab, hidden]
    const float* final_norm_weight = nullptr;
    const float* final_norm_bias = nullptr;
};

constexpr WeightSpec<NeoxWeights> kModelTable[] = {
    {&NeoxWeights::token_embedding, "embed_in.weight", "vocab, hidden"},
    {&NeoxWeights::final_norm_weight, "final_layer_norm.weight", "hidden"},
    {&NeoxWeights::final_norm_bias, "final_layer_norm.bias", "hidden"},
};

struct NeoxLayerWeights {
    const float *attn_norm_weight, *attn_norm_bias;  // input_layernorm
    const float *ffn_norm_weight, *ffn_norm_bias;    // post_attention_layernorm
    const float *qkv_weight, *qkv_bias;              // [3*hidden, hidden], per-head interleaved
    const float *attn_out_weight, *attn_out_bias;    // attention.dense
    const float *ffn_up_weight, *ffn_up_bias;        // mlp.dense_h_to_4h
    const float *ffn_down_weight, *ffn_down_bias;    // mlp.dense_4h_to_h
};

// The attention biases follow attention_bias (true if absent); config.json decides.
constexpr WeightSpec<NeoxLayerWeights> kLayerTable[] = {
    {&NeoxLayerWeights::attn_norm_weight, "layers.{L}.input_layernorm.weight", "hidden"},
    {&NeoxLayerWeights::attn_norm_bias, "layers.{L}.input_layernorm.bias", "hidden"},
    {&NeoxLayerWeights::ffn_norm_weight, "layers.{L}.post_attention_layernorm.weight", "hidden"},
    {&NeoxLayerWeights::ffn_norm_bias, "layers.{L}.post_attention_layernorm.bias", "hidden"},
    {&NeoxLayerWeights::qkv_weight, "layers.{L}.attention.query_key_value.weight",
     "3*hidden, hidden"},
    {&NeoxLayerWeights::qkv_bias, "layers.{L}.attention.query_key_value.bias", "3*hidden", true},
    {&NeoxLayerWeights::attn_out_weight, "layers.{L}.attention.dense.weight", "hidden, hidden"},
    {&NeoxLayerWeights::attn_out_bias, "layers.{L}.attention.dense.bias", "hidden", true},
    {&NeoxLayerWeights::ffn_up_weight, "layers.{L}.mlp.dense_h_to_4h.weight",
     "intermediate, hidden"},
    {&NeoxLayerWeights::ffn_up_bias, "layers.{L}.mlp.dense_h_to_4h.bias", "intermediate"},
    {&NeoxLayerWeights::ffn_down_weight, "layers.{L}.mlp.dense_4h_to_h.weight",
     "hidden, intermediate"},
    {&NeoxLayerWeights::ffn_down_bias, "layers.{L}.mlp.dense_4h_to_h.bias", "hidden"},
};

struct NeoxLayer {
    NeoxLayerWeights weights;
    Linear qkv;       // [hidden] -> [queries | keys | values]
    Linear attn_out;  // added to the residual
    Linear ffn_up;    // activation fused
    Linear ffn_down;  // added to the residual
};

// int(head_dim * rotary_pct), as GPTNeoXAttention computes rotary_ndims
int rotary_dims(const ConfigReader& reader, int head_dim) {
    const double pct = reader.number({"rotary_pct"}, 0.25);
    if (!(pct >= 0.0 && pct <= 1.0))
        throw Error(reader.file() + ": \"rotary_pct\" is " + nlohmann::json(pct).dump() +
                    ", not a fraction of head_dim in [0, 1]");
    const int dims = static_cast<int>(head_dim * pct);
    if (dims % 2 != 0)
        throw Error(reader.file() + ": \"rotary_pct\" " + nlohmann::json(pct).dump() + " gives " +
                    std::to_string(dims) +
                    " rotary dimensions of each head; rotary embeddings need an even number");
    return dims;
}

RopeConfig read_neox_rope(const ConfigReader& reader, const ModelConfig& config) {
    const int dims = rotary_dims(reader, config.head_dim);
    // rotary_pct 0 rotates nothing, whatever rope_scaling says (its keys are still checked)
    RopeConfig rope = read_rope_config(reader, dims > 0 ? dims : 4, config.context_length);
    rope.rotary_dim = dims;
    // GPT-NeoX spells the rotary base rotary_emb_base
    const double base = reader.number({"rotary_emb_base"}, 10000.0);
    if (!(base > 0.0))
        throw Error(reader.file() + ": \"rotary_emb_base\" must be positive, not " +
                    nlohmann::json(base).dump());
    rope.theta = base;
    return rope;
}

class GptNeox final : public Network {
public:
    GptNeox(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          rope_(read_neox_rope(reader, config)),
          parallel_residual_(reader.boolean({"use_parallel_residual"}, true)),
          attention_bias_(reader.boolean({"attention_bias"}, true)),
          loader_(tensors, config, {"", "gpt_neox."}) {
        loader_.bind(kModelTable, weights_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const int H = config.n_heads, Dh = config.head_dim;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            NeoxLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const NeoxLayerWeights& w = l.weights;
            if (attention_bias_ && !(w.qkv_bias && w.attn_out_bias))
                throw Error("layer " + std::to_string(layer) +
                            ": config.json's attention_bias asks for attention biases, but the "
                            "checkpoint lacks them");
            const float* qkv_bias = attention_bias_ ? w.qkv_bias : nullptr;
            const float* out_bias = attention_bias_ ? w.attn_out_bias : nullptr;
            l.qkv = Linear(grouped_qkv_parts(w.qkv_weight, qkv_bias, D, H, 1, Dh), D);
            l.attn_out = Linear(w.attn_out_weight, out_bias, D, D);
            l.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              activation);
            l.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D);
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, "GPT-NeoX");
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size, W = 3 * D;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        const RopeTables rope = rope_tables(rope_, T);

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);        // [T, D] normalized
        std::vector<float> qkv(static_cast<size_t>(T) * W);      // [T, 3D] queries | keys | values
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]

        for (int t = 0; t < T; ++t)
            std::copy_n(weights_.token_embedding + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const NeoxLayer& l = layers_[static_cast<size_t>(layer)];
            const NeoxLayerWeights& w = l.weights;
            runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, h.data(), T, D,
                                config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            if (rope_.rotary_dim > 0)  // each head rotates its first rotary_ndims dims only
                for (int head = 0; head < 2 * H; ++head)
                    apply_rope(qkv.data() + static_cast<size_t>(head) * Dh, W, T, 1,
                               rope_.rotary_dim, rope);
            attend_fused_qkv(block, layer, qkv.data(), Dh, nullptr, nullptr, context.data());
            if (parallel_residual_) {
                // both branches read the layer's input x: the MLP's norm first
                runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, h.data(), T, D,
                                    config_.norm_eps);
                l.attn_out.forward_add(context.data(), x.data(), T);
            } else {
                l.attn_out.forward_add(context.data(), x.data(), T);
                runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, h.data(), T, D,
                                    config_.norm_eps);
            }
            l.ffn_up.forward(h.data(), ffn.data(), T);
            l.ffn_down.forward_add(ffn.data(), x.data(), T);
            hidden.add(x.data());
        }
        runtime::layer_norm(x.data(), weights_.final_norm_weight, weights_.final_norm_bias,
                            h.data(), T, D, config_.norm_eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    RopeConfig rope_;
    bool parallel_residual_ = true, attention_bias_ = true;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    NeoxWeights weights_;
    std::vector<NeoxLayer> layers_;
};

}  // namespace

void read_gpt_neox_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size"});
    config.intermediate_size = reader.integer({"intermediate_size"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-5));
    config.hidden_act = reader.string({"hidden_act"}, "gelu");
    config.max_positions = 0;  // rotary: no learned table
    config.context_length = reader.integer({"max_position_embeddings"}, 2048);
    config.type_vocab_size = 0;
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1)
        throw Error(reader.file() +
                    ": GPT-NeoX needs positive num_hidden_layers, num_attention_heads, "
                    "hidden_size, intermediate_size, vocab_size");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    (void)read_neox_rope(reader, config);  // validates rotary_pct, rotary_emb_base, rope_scaling
}

std::unique_ptr<Network> load_gpt_neox(const LoadContext& context) {
    return std::make_unique<GptNeox>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
