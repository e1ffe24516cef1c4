// BLOOM, as modeling_bloom.py computes it: a pre-norm decoder with ALiBi in
// place of position embeddings (model/alibi.h) and a fused query_key_value
// projection whose output rows come per head ([h0: q k v | h1: q k v ...]).
//
//   x = word_embeddings_layernorm(word_embeddings[id])
//   per layer:
//     h       = input_layernorm(x)
//     q, k, v = h W_qkv + b
//     probs   = softmax(alibi + q k^T / sqrt(head_dim), causal)   -> the trace
//               alibi[h][q][k] = slope_h * k
//     x = r + (probs v) W_dense + b          r = h when apply_residual_connection_post_layernorm,
//     else x h = post_attention_layernorm(x) x = r' + gelu_tanh(h W_4h + b) W_h + b r' = h or x,
//     likewise
//   ln_f(x) is the last hidden state
//
// The trace's score bias is the ALiBi term, so the neuron view shows it as the
// bias column (score = q.k / sqrt(head_dim) + bias).
// Checkpoints: BloomModel names, or "transformer."-prefixed ones
// (BloomForCausalLM: lm_head is not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/alibi.h"
#include "model/arch_blocks.h"
#include "model/fused_qkv.h"
#include "model/network.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct BloomWeights {
    const float* token_embedding = nullptr;  // word_embeddings [vocab, hidden]
    const float *embedding_norm_weight = nullptr, *embedding_norm_bias = nullptr;
    const float *final_norm_weight = nullptr, *final_norm_bias = nullptr;
};

constexpr WeightSpec<BloomWeights> kModelTable[] = {
    {&BloomWeights::token_embedding, "word_embeddings.weight", "vocab, hidden"},
    {&BloomWeights::embedding_norm_weight, "word_embeddings_layernorm.weight", "hidden"},
    {&BloomWeights::embedding_norm_bias, "word_embeddings_layernorm.bias", "hidden"},
    {&BloomWeights::final_norm_weight, "ln_f.weight", "hidden"},
    {&BloomWeights::final_norm_bias, "ln_f.bias", "hidden"},
};

struct BloomLayerWeights {
    const float *attn_norm_weight, *attn_norm_bias;  // input_layernorm
    const float *qkv_weight, *qkv_bias;              // [3*hidden, hidden], per-head interleaved
    const float *attn_out_weight, *attn_out_bias;    // self_attention.dense
    const float *ffn_norm_weight, *ffn_norm_bias;    // post_attention_layernorm
    const float *ffn_up_weight, *ffn_up_bias;        // mlp.dense_h_to_4h
    const float *ffn_down_weight, *ffn_down_bias;    // mlp.dense_4h_to_h
};

constexpr WeightSpec<BloomLayerWeights> kLayerTable[] = {
    {&BloomLayerWeights::attn_norm_weight, "h.{L}.input_layernorm.weight", "hidden"},
    {&BloomLayerWeights::attn_norm_bias, "h.{L}.input_layernorm.bias", "hidden"},
    {&BloomLayerWeights::qkv_weight, "h.{L}.self_attention.query_key_value.weight",
     "3*hidden, hidden"},
    {&BloomLayerWeights::qkv_bias, "h.{L}.self_attention.query_key_value.bias", "3*hidden"},
    {&BloomLayerWeights::attn_out_weight, "h.{L}.self_attention.dense.weight", "hidden, hidden"},
    {&BloomLayerWeights::attn_out_bias, "h.{L}.self_attention.dense.bias", "hidden"},
    {&BloomLayerWeights::ffn_norm_weight, "h.{L}.post_attention_layernorm.weight", "hidden"},
    {&BloomLayerWeights::ffn_norm_bias, "h.{L}.post_attention_layernorm.bias", "hidden"},
    {&BloomLayerWeights::ffn_up_weight, "h.{L}.mlp.dense_h_to_4h.weight", "intermediate, hidden"},
    {&BloomLayerWeights::ffn_up_bias, "h.{L}.mlp.dense_h_to_4h.bias", "intermediate"},
    {&BloomLayerWeights::ffn_down_weight, "h.{L}.mlp.dense_4h_to_h.weight", "hidden, intermediate"},
    {&BloomLayerWeights::ffn_down_bias, "h.{L}.mlp.dense_4h_to_h.bias", "hidden"},
};

struct BloomLayer {
    BloomLayerWeights weights;
    Linear qkv;       // [hidden] -> [queries | keys | values]
    Linear attn_out;  // added to the residual
    Linear ffn_up;    // BLOOM's tanh gelu fused
    Linear ffn_down;  // added to the residual
};

class Bloom final : public Network {
public:
    Bloom(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          residual_after_norm_(reader.boolean({"apply_residual_connection_post_layernorm"}, false)),
          loader_(tensors, config, {"", "transformer."}) {
        loader_.bind(kModelTable, weights_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const int H = config.n_heads, Dh = config.head_dim;
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            BloomLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const BloomLayerWeights& w = l.weights;
            l.qkv = Linear(grouped_qkv_parts(w.qkv_weight, w.qkv_bias, D, H, 1, Dh), D);
            l.attn_out = Linear(w.attn_out_weight, w.attn_out_bias, D, D);
            // bloom_gelu_forward: x/2 (1 + tanh(0.79788456 x (1 + 0.044715 x^2))), gelu_new's form
            l.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              runtime::Activation::gelu_tanh);
            l.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D);
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, "BLOOM");
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;
        const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, scale, /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        // runtime::attention adds its bias before the scale: alibi / scale gives alibi after it
        const std::vector<float> alibi =
            alibi_bias(H, T, nullptr, AlibiRounding::float32, 1.0f / scale);

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);        // [T, D] normalized
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D] queries | keys | values
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]

        for (int t = 0; t < T; ++t)
            std::copy_n(weights_.token_embedding + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        runtime::layer_norm(x.data(), weights_.embedding_norm_weight, weights_.embedding_norm_bias,
                            x.data(), T, D, config_.norm_eps);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const BloomLayer& l = layers_[static_cast<size_t>(layer)];
            const BloomLayerWeights& w = l.weights;
            runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, h.data(), T, D,
                                config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            attend_fused_qkv(block, layer, qkv.data(), Dh, nullptr, alibi.data(), context.data());
            if (residual_after_norm_) x = h;
            l.attn_out.forward_add(context.data(), x.data(), T);
            runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, h.data(), T, D,
                                config_.norm_eps);
            if (residual_after_norm_) x = h;
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
    bool residual_after_norm_ = false;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    BloomWeights weights_;
    std::vector<BloomLayer> layers_;
};

}  // namespace

void read_bloom_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"n_layer", "num_hidden_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"n_head", "num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size", "n_embed"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_epsilon"}, 1e-5));
    config.hidden_act = "gelu_new";            // modeling_bloom's own tanh gelu
    config.max_positions = 0;                  // ALiBi: no position table
    config.position_embedding_type = "alibi";  // for the memory estimate: an [H, T, T] bias
    config.type_vocab_size = 0;
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.vocab_size < 1)
        throw Error(reader.file() +
                    ": BLOOM needs positive n_layer, n_head, hidden_size, vocab_size");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of n_head " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    config.intermediate_size = static_cast<int>(
        checked_size(reader.file(), {{"hidden_size", config.hidden_size}, {nullptr, 4}}));
}

std::unique_ptr<Network> load_bloom(const LoadContext& context) {
    return std::make_unique<Bloom>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
