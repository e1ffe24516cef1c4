// DistilBERT, as modeling_distilbert.py computes it on its eager attention path:
// BERT's post-norm encoder under its own names, without token types.
//
//   x = LayerNorm(word[id] + position[t])                   (eps 1e-12, fixed)
//   per layer:
//     probs = softmax((q / sqrt(head_dim)) k^T + padding mask)   -> the trace
//     x = sa_layer_norm(x + (probs v) W_out)
//     x = output_layer_norm(x + lin2(act(lin1(x))))
//
// Checkpoints: DistilBertModel names, or "distilbert."-prefixed ones
// (DistilBertForMaskedLM, ...ForSequenceClassification: their heads are not read).
// sinusoidal_pos_embds checkpoints store their (fixed) table like a learned one.
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

constexpr float kLayerNormEps = 1e-12f;  // modeling_distilbert.py's, not in config.json

struct DistilBertWeights {
    const float* word = nullptr;      // [vocab, dim]
    const float* position = nullptr;  // [positions, dim]
    const float *norm_weight = nullptr, *norm_bias = nullptr;
};

constexpr WeightSpec<DistilBertWeights> kEmbeddingTable[] = {
    {&DistilBertWeights::word, "embeddings.word_embeddings.weight", "vocab, hidden"},
    {&DistilBertWeights::position, "embeddings.position_embeddings.weight", "positions, hidden"},
    {&DistilBertWeights::norm_weight, "embeddings.LayerNorm.weight", "hidden"},
    {&DistilBertWeights::norm_bias, "embeddings.LayerNorm.bias", "hidden"},
};

struct DistilBertLayerWeights {
    const float *q_weight, *q_bias, *k_weight, *k_bias, *v_weight, *v_bias;  // [dim, dim]
    const float *out_weight, *out_bias;
    const float *attn_norm_weight, *attn_norm_bias;  // sa_layer_norm
    const float *ffn_up_weight, *ffn_up_bias;        // lin1 [hidden_dim, dim]
    const float *ffn_down_weight, *ffn_down_bias;    // lin2 [dim, hidden_dim]
    const float *out_norm_weight, *out_norm_bias;    // output_layer_norm
};

constexpr WeightSpec<DistilBertLayerWeights> kLayerTable[] = {
    {&DistilBertLayerWeights::q_weight, "transformer.layer.{L}.attention.q_lin.weight",
     "hidden, hidden"},
    {&DistilBertLayerWeights::q_bias, "transformer.layer.{L}.attention.q_lin.bias", "hidden"},
    {&DistilBertLayerWeights::k_weight, "transformer.layer.{L}.attention.k_lin.weight",
     "hidden, hidden"},
    {&DistilBertLayerWeights::k_bias, "transformer.layer.{L}.attention.k_lin.bias", "hidden"},
    {&DistilBertLayerWeights::v_weight, "transformer.layer.{L}.attention.v_lin.weight",
     "hidden, hidden"},
    {&DistilBertLayerWeights::v_bias, "transformer.layer.{L}.attention.v_lin.bias", "hidden"},
    {&DistilBertLayerWeights::out_weight, "transformer.layer.{L}.attention.out_lin.weight",
     "hidden, hidden"},
    {&DistilBertLayerWeights::out_bias, "transformer.layer.{L}.attention.out_lin.bias", "hidden"},
    {&DistilBertLayerWeights::attn_norm_weight, "transformer.layer.{L}.sa_layer_norm.weight",
     "hidden"},
    {&DistilBertLayerWeights::attn_norm_bias, "transformer.layer.{L}.sa_layer_norm.bias", "hidden"},
    {&DistilBertLayerWeights::ffn_up_weight, "transformer.layer.{L}.ffn.lin1.weight",
     "intermediate, hidden"},
    {&DistilBertLayerWeights::ffn_up_bias, "transformer.layer.{L}.ffn.lin1.bias", "intermediate"},
    {&DistilBertLayerWeights::ffn_down_weight, "transformer.layer.{L}.ffn.lin2.weight",
     "hidden, intermediate"},
    {&DistilBertLayerWeights::ffn_down_bias, "transformer.layer.{L}.ffn.lin2.bias", "hidden"},
    {&DistilBertLayerWeights::out_norm_weight, "transformer.layer.{L}.output_layer_norm.weight",
     "hidden"},
    {&DistilBertLayerWeights::out_norm_bias, "transformer.layer.{L}.output_layer_norm.bias",
     "hidden"},
};

struct DistilBertLayer {
    DistilBertLayerWeights weights;
    PostNormLayer run;
};

class DistilBert final : public Network {
public:
    DistilBert(const ModelConfig& config, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "distilbert."}) {
        loader_.bind(kEmbeddingTable, embeddings_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            DistilBertLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const DistilBertLayerWeights& w = l.weights;
            l.run.qkv = Linear(
                {{w.q_weight, w.q_bias, D}, {w.k_weight, w.k_bias, D}, {w.v_weight, w.v_bias, D}},
                D);
            l.run.attn_out = Linear(w.out_weight, w.out_bias, D, D);
            l.run.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I,
                                  runtime::WeightLayout::out_in, activation);
            l.run.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D);
            l.run.attn_norm_weight = w.attn_norm_weight, l.run.attn_norm_bias = w.attn_norm_bias;
            l.run.out_norm_weight = w.out_norm_weight, l.run.out_norm_bias = w.out_norm_bias;
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "DistilBERT");
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       /*causal=*/false, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D]
        std::vector<float> context(static_cast<size_t>(T) * D);
        std::vector<float> ffn(static_cast<size_t>(T) * I);
        const uint8_t* key_mask = padding_mask(tokens);

        for (int t = 0; t < T; ++t) {
            const float* word = embeddings_.word + static_cast<size_t>(tokens.ids[t]) * D;
            const float* position = embeddings_.position + static_cast<size_t>(t) * D;
            for (int i = 0; i < D; ++i) x[static_cast<size_t>(t) * D + i] = word[i] + position[i];
        }
        runtime::layer_norm(x.data(), embeddings_.norm_weight, embeddings_.norm_bias, x.data(), T,
                            D, kLayerNormEps);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const DistilBertLayer& l = layers_[static_cast<size_t>(layer)];
            l.run.qkv.forward(x.data(), qkv.data(), T);
            attend_fused_qkv(block, layer, qkv.data(), Dh, key_mask, nullptr, context.data());
            l.run.add_output_and_ffn(context.data(), x.data(), ffn.data(), T, D, kLayerNormEps);
            hidden.add(x.data());
        }
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    DistilBertWeights embeddings_;
    std::vector<DistilBertLayer> layers_;
};

}  // namespace

void read_distilbert_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"n_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"n_heads"});
    config.hidden_size = reader.integer({"dim"});
    config.intermediate_size = reader.integer({"hidden_dim"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"max_position_embeddings"});
    config.hidden_act = reader.string({"activation"}, "gelu");
    config.norm_eps = kLayerNormEps;
    config.type_vocab_size = 0;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 || config.max_positions < 1)
        throw Error(reader.file() +
                    ": DistilBERT needs positive n_layers, n_heads, dim, hidden_dim, "
                    "vocab_size, max_position_embeddings");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": dim " + std::to_string(config.hidden_size) +
                    " is not a multiple of n_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    check_activation(config.hidden_act, reader.file(), "activation");
}

std::unique_ptr<Network> load_distilbert(const LoadContext& context) {
    return std::make_unique<DistilBert>(context.config, context.tensors);
}

}  // namespace attnviz::model
