// GPT-2, as modeling_gpt2.py computes it on its eager attention path: a
// pre-norm decoder with learned positions and a causal mask.
//
//   x = wte[id] + wpe[t]
//   per layer:
//     q, k, v = LayerNorm_1(x) W_attn + b          (Conv1D: W stored [in, out])
//     probs   = softmax(q k^T * scale, causal)     -> the trace
//     x = x + (probs v) W_proj
//     x = x + gelu_new(LayerNorm_2(x) W_fc) W_fc_proj
//   ln_f(x) is the last hidden state
//
// scale = 1/sqrt(head_dim) when scale_attn_weights (the default), further divided
// by (layer + 1) when scale_attn_by_inverse_layer_idx; the trace keeps the
// model's own queries and that per-layer scale (AttentionBlock::layer_score_scales).
// Checkpoints: GPT2Model names, or "transformer."-prefixed ones (GPT2LMHeadModel,
// GPT2ForSequenceClassification: heads and the old attn.bias mask buffers are not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/value_norms.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;
using runtime::WeightLayout;

struct Gpt2Weights {
    const float* token_embedding = nullptr;     // wte [vocab, hidden]
    const float* position_embedding = nullptr;  // wpe [positions, hidden]
    const float* final_norm_weight = nullptr;
    const float* final_norm_bias = nullptr;
};

constexpr WeightSpec<Gpt2Weights> kModelTable[] = {
    {&Gpt2Weights::token_embedding, "wte.weight", "vocab, hidden"},
    {&Gpt2Weights::position_embedding, "wpe.weight", "positions, hidden"},
    {&Gpt2Weights::final_norm_weight, "ln_f.weight", "hidden"},
    {&Gpt2Weights::final_norm_bias, "ln_f.bias", "hidden"},
};

struct Gpt2LayerWeights {
    const float *attn_norm_weight, *attn_norm_bias;  // ln_1
    const float *qkv_weight, *qkv_bias;              // c_attn [hidden, 3*hidden]
    const float *attn_out_weight, *attn_out_bias;    // attn.c_proj [hidden, hidden]
    const float *ffn_norm_weight, *ffn_norm_bias;    // ln_2
    const float *ffn_up_weight, *ffn_up_bias;        // mlp.c_fc [hidden, inner]
    const float *ffn_down_weight, *ffn_down_bias;    // mlp.c_proj [inner, hidden]
};

constexpr WeightSpec<Gpt2LayerWeights> kLayerTable[] = {
    {&Gpt2LayerWeights::attn_norm_weight, "h.{L}.ln_1.weight", "hidden"},
    {&Gpt2LayerWeights::attn_norm_bias, "h.{L}.ln_1.bias", "hidden"},
    {&Gpt2LayerWeights::qkv_weight, "h.{L}.attn.c_attn.weight", "hidden, 3*hidden"},
    {&Gpt2LayerWeights::qkv_bias, "h.{L}.attn.c_attn.bias", "3*hidden"},
    {&Gpt2LayerWeights::attn_out_weight, "h.{L}.attn.c_proj.weight", "hidden, hidden"},
    {&Gpt2LayerWeights::attn_out_bias, "h.{L}.attn.c_proj.bias", "hidden"},
    {&Gpt2LayerWeights::ffn_norm_weight, "h.{L}.ln_2.weight", "hidden"},
    {&Gpt2LayerWeights::ffn_norm_bias, "h.{L}.ln_2.bias", "hidden"},
    {&Gpt2LayerWeights::ffn_up_weight, "h.{L}.mlp.c_fc.weight", "hidden, intermediate"},
    {&Gpt2LayerWeights::ffn_up_bias, "h.{L}.mlp.c_fc.bias", "intermediate"},
    {&Gpt2LayerWeights::ffn_down_weight, "h.{L}.mlp.c_proj.weight", "intermediate, hidden"},
    {&Gpt2LayerWeights::ffn_down_bias, "h.{L}.mlp.c_proj.bias", "hidden"},
};

struct Gpt2Layer {
    Gpt2LayerWeights weights;
    Linear qkv;       // [hidden] -> [query | key | value]
    Linear attn_out;  // added to the residual
    Linear ffn_up;    // activation fused
    Linear ffn_down;  // added to the residual
};

class Gpt2 final : public Network {
public:
    Gpt2(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "transformer."}) {
        scale_attn_weights_ = reader.boolean({"scale_attn_weights"}, true);
        scale_by_inverse_layer_ = reader.boolean({"scale_attn_by_inverse_layer_idx"}, false);
        loader_.bind(kModelTable, weights_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            Gpt2Layer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const Gpt2LayerWeights& w = l.weights;
            l.qkv = Linear(w.qkv_weight, w.qkv_bias, D, 3 * D, WeightLayout::in_out);
            l.attn_out = Linear(w.attn_out_weight, w.attn_out_bias, D, D, WeightLayout::in_out);
            l.ffn_up =
                Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, WeightLayout::in_out, activation);
            l.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D, WeightLayout::in_out);
        }
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, config_.max_positions, "GPT-2");
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;

        ForwardOutput output;
        const float scale = scale_attn_weights_ ? 1.0f / std::sqrt(static_cast<float>(Dh)) : 1.0f;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, scale, /*causal=*/true, options.keep_queries_keys));
        if (scale_by_inverse_layer_)  // modeling_gpt2 divides layer i's scores by i + 1
            for (int layer = 0; layer < L; ++layer)
                block.layer_score_scales.push_back(scale / static_cast<float>(layer + 1));
        start_value_norms(block, options.keep_value_norms);
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);        // [T, D] normalized
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D] query | key | value
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]

        for (int t = 0; t < T; ++t) {
            const float* token = weights_.token_embedding + static_cast<size_t>(ids[t]) * D;
            const float* position = weights_.position_embedding + static_cast<size_t>(t) * D;
            for (int i = 0; i < D; ++i) x[static_cast<size_t>(t) * D + i] = token[i] + position[i];
        }
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const Gpt2Layer& l = layers_[static_cast<size_t>(layer)];
            const Gpt2LayerWeights& w = l.weights;
            runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, h.data(), T, D,
                                config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            attend_fused_qkv(block, layer, qkv.data(), Dh, nullptr, nullptr, context.data());
            keep_value_norms(block, layer, qkv.data() + 2 * D, 3 * D, Dh, H, l.attn_out);
            l.attn_out.forward_add(context.data(), x.data(), T);

            runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, h.data(), T, D,
                                config_.norm_eps);
            l.ffn_up.forward(h.data(), ffn.data(), T);
            l.ffn_down.forward_add(ffn.data(), x.data(), T);
            hidden.add(x.data());
        }
        // transformers reports ln_f's output as the last hidden state
        runtime::layer_norm(x.data(), weights_.final_norm_weight, weights_.final_norm_bias,
                            h.data(), T, D, config_.norm_eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    bool scale_attn_weights_ = true, scale_by_inverse_layer_ = false;
    Gpt2Weights weights_;
    std::vector<Gpt2Layer> layers_;
};

}  // namespace

void read_gpt2_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"n_layer"});
    config.n_heads = config.n_kv_heads = reader.integer({"n_head"});
    config.hidden_size = reader.integer({"n_embd"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"n_positions"});
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_epsilon"}, 1e-5));
    config.hidden_act = reader.string({"activation_function"}, "gelu_new");
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.vocab_size < 1 || config.max_positions < 1)
        throw Error(reader.file() +
                    ": GPT-2 needs positive n_layer, n_head, n_embd, vocab_size, n_positions");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": n_embd " + std::to_string(config.hidden_size) +
                    " is not a multiple of n_head " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    config.intermediate_size = reader.integer(
        {"n_inner"}, static_cast<int>(checked_size(
                         reader.file(), {{"n_embd", config.hidden_size}, {nullptr, 4}})));
    check_activation(config.hidden_act, reader.file(), "activation_function");
}

std::unique_ptr<Network> load_gpt2(const LoadContext& context) {
    return std::make_unique<Gpt2>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
