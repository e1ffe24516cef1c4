// ALBERT, as modeling_albert.py computes it on its eager attention path: BERT's
// post-norm layer with factorized embeddings and weights shared across layers.
//
//   e = LayerNorm(word[id] + token_type[type] + position[t])     [T, embedding_size]
//   x = e W_in + b                                                 (embedding_hidden_mapping_in)
//   for layer i in 0 .. num_hidden_layers-1:
//     group g = i / (num_hidden_layers / num_hidden_groups)
//     for each of the group's inner_group_num layers (shared weights):
//       probs = softmax(q k^T / sqrt(head_dim) + padding mask [+ relative])  -> the trace
//       x = LayerNorm(x + (probs v) W_dense)
//       x = full_layer_layer_norm(x + ffn_output(act(ffn(x))))
//
// relative_key(_query) drops the position term from e and adds BERT's relative
// scores, but after the 1/sqrt(head_dim) scale, not before as BERT does.
// hidden_act defaults to gelu_new (AlbertConfig), not BERT's gelu.
//
// The trace has num_hidden_layers * inner_group_num layers, one per attention
// computed, as transformers' output_attentions lists them.
// Checkpoints: AlbertModel names, or "albert."-prefixed ones (AlbertForMaskedLM,
// ...: their heads are not read).
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

struct AlbertLayerWeights {
    const float *query_weight, *query_bias, *key_weight, *key_bias, *value_weight, *value_bias;
    const float *dense_weight, *dense_bias;            // attention output [hidden, hidden]
    const float *attn_norm_weight, *attn_norm_bias;    // attention.LayerNorm
    const float *ffn_weight, *ffn_bias;                // [intermediate, hidden]
    const float *ffn_output_weight, *ffn_output_bias;  // [hidden, intermediate]
    const float *out_norm_weight, *out_norm_bias;      // full_layer_layer_norm
    const float* distance_embedding;  // [2 * positions - 1, head_dim], relative_key(_query) only
};

// {L} is "group.albert_layers.inner"
constexpr WeightSpec<AlbertLayerWeights> kLayerTable[] = {
    {&AlbertLayerWeights::query_weight, "encoder.albert_layer_groups.{L}.attention.query.weight",
     "hidden, hidden"},
    {&AlbertLayerWeights::query_bias, "encoder.albert_layer_groups.{L}.attention.query.bias",
     "hidden"},
    {&AlbertLayerWeights::key_weight, "encoder.albert_layer_groups.{L}.attention.key.weight",
     "hidden, hidden"},
    {&AlbertLayerWeights::key_bias, "encoder.albert_layer_groups.{L}.attention.key.bias", "hidden"},
    {&AlbertLayerWeights::value_weight, "encoder.albert_layer_groups.{L}.attention.value.weight",
     "hidden, hidden"},
    {&AlbertLayerWeights::value_bias, "encoder.albert_layer_groups.{L}.attention.value.bias",
     "hidden"},
    {&AlbertLayerWeights::dense_weight, "encoder.albert_layer_groups.{L}.attention.dense.weight",
     "hidden, hidden"},
    {&AlbertLayerWeights::dense_bias, "encoder.albert_layer_groups.{L}.attention.dense.bias",
     "hidden"},
    {&AlbertLayerWeights::attn_norm_weight,
     "encoder.albert_layer_groups.{L}.attention.LayerNorm.weight", "hidden"},
    {&AlbertLayerWeights::attn_norm_bias,
     "encoder.albert_layer_groups.{L}.attention.LayerNorm.bias", "hidden"},
    {&AlbertLayerWeights::ffn_weight, "encoder.albert_layer_groups.{L}.ffn.weight",
     "intermediate, hidden"},
    {&AlbertLayerWeights::ffn_bias, "encoder.albert_layer_groups.{L}.ffn.bias", "intermediate"},
    {&AlbertLayerWeights::ffn_output_weight, "encoder.albert_layer_groups.{L}.ffn_output.weight",
     "hidden, intermediate"},
    {&AlbertLayerWeights::ffn_output_bias, "encoder.albert_layer_groups.{L}.ffn_output.bias",
     "hidden"},
    {&AlbertLayerWeights::out_norm_weight,
     "encoder.albert_layer_groups.{L}.full_layer_layer_norm.weight", "hidden"},
    {&AlbertLayerWeights::out_norm_bias,
     "encoder.albert_layer_groups.{L}.full_layer_layer_norm.bias", "hidden"},
    {&AlbertLayerWeights::distance_embedding,
     "encoder.albert_layer_groups.{L}.attention.distance_embedding.weight", "distances, head_dim",
     /*optional=*/true},
};

struct AlbertLayer {
    AlbertLayerWeights weights;
    PostNormLayer run;  // dense is attn_out, ffn is ffn_up, ffn_output is ffn_down
};

class Albert final : public Network {
public:
    Albert(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "albert."}) {
        embedding_size_ = reader.integer({"embedding_size"}, 128);
        groups_ = reader.integer({"num_hidden_groups"}, 1);
        inner_ = reader.integer({"inner_group_num"}, 1);
        loader_.set_dim("embedding", embedding_size_);
        loader_.set_dim("distances", 2 * static_cast<int64_t>(config.max_positions) - 1);
        embeddings_ = load_bert_style_embeddings(loader_, "embedding");
        mapping_in_ =
            Linear(loader_.get("encoder.embedding_hidden_mapping_in.weight", "hidden, embedding"),
                   loader_.get("encoder.embedding_hidden_mapping_in.bias", "hidden"),
                   embedding_size_, config.hidden_size);
        const int D = config.hidden_size, I = config.intermediate_size;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(groups_ * inner_));
        for (int group = 0; group < groups_; ++group)
            for (int inner = 0; inner < inner_; ++inner) {
                AlbertLayer& l = layers_[static_cast<size_t>(group * inner_ + inner)];
                // the loader's {L} becomes "group.albert_layers.inner"
                for (const auto& spec : kLayerTable) {
                    std::string name = spec.name;
                    name.replace(name.find("{L}"), 3,
                                 std::to_string(group) + ".albert_layers." + std::to_string(inner));
                    l.weights.*spec.field = spec.optional ? loader_.get_optional(name, spec.shape)
                                                          : loader_.get(name, spec.shape);
                }
                const AlbertLayerWeights& w = l.weights;
                if (relative_positions(config) && !w.distance_embedding)
                    throw Error(tensors.description() + ": missing tensor " +
                                "encoder.albert_layer_groups." + std::to_string(group) +
                                ".albert_layers." + std::to_string(inner) +
                                ".attention.distance_embedding.weight (position_embedding_type " +
                                config.position_embedding_type + ")");
                l.run.qkv = Linear({{w.query_weight, w.query_bias, D},
                                    {w.key_weight, w.key_bias, D},
                                    {w.value_weight, w.value_bias, D}},
                                   D);
                l.run.attn_out = Linear(w.dense_weight, w.dense_bias, D, D);
                l.run.ffn_up = Linear(w.ffn_weight, w.ffn_bias, D, I, runtime::WeightLayout::out_in,
                                      activation);
                l.run.ffn_down = Linear(w.ffn_output_weight, w.ffn_output_bias, I, D);
                l.run.attn_norm_weight = w.attn_norm_weight;
                l.run.attn_norm_bias = w.attn_norm_bias;
                l.run.out_norm_weight = w.out_norm_weight, l.run.out_norm_bias = w.out_norm_bias;
            }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "ALBERT");
        check_type_ids(tokens, config_.type_vocab_size, "ALBERT");
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int I = config_.intermediate_size, E = embedding_size_;
        const int n_maps = config_.n_layers * inner_;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", n_maps, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       /*causal=*/false, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, config_.n_layers + 1, T, D);
        const bool relative = relative_positions(config_);
        // q . E[q - k] (+ k . E[q - k]) depends on the query's content: no bias reproduces it
        if (relative) block.score_form = ScoreForm::not_decomposable;
        std::vector<int> positions;  // none for relative_key(_query)
        if (!relative)
            for (int t = 0; t < T; ++t) positions.push_back(t);
        std::vector<float> e(static_cast<size_t>(T) * E);        // [T, E]
        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D]
        std::vector<float> context(static_cast<size_t>(T) * D);
        std::vector<float> ffn(static_cast<size_t>(T) * I);
        std::vector<float> bias;  // [H, T, T] relative scores, when the config uses them
        if (relative) bias.resize(static_cast<size_t>(H) * T * T);
        const uint8_t* key_mask = padding_mask(tokens);

        bert_style_embed(embeddings_, tokens, positions, E, config_.norm_eps, e.data());
        mapping_in_.forward(e.data(), x.data(), T);
        hidden.add(x.data());

        const int layers_per_group = config_.n_layers / groups_;
        int map = 0;
        for (int layer = 0; layer < config_.n_layers; ++layer) {
            const int group = layer / layers_per_group;
            for (int inner = 0; inner < inner_; ++inner, ++map) {
                const AlbertLayer& l = layers_[static_cast<size_t>(group * inner_ + inner)];
                l.run.qkv.forward(x.data(), qkv.data(), T);
                if (relative) {
                    // AlbertAttention adds them after the 1/sqrt(Dh) scale; the
                    // kernel adds its bias before, so it gets them times sqrt(Dh)
                    relative_position_scores(
                        qkv.data(), T, H, Dh, config_.max_positions,
                        config_.position_embedding_type == "relative_key_query",
                        l.weights.distance_embedding, bias.data());
                    const float unscale = std::sqrt(static_cast<float>(Dh));
                    for (float& b : bias) b *= unscale;
                }
                attend_fused_qkv(block, map, qkv.data(), Dh, key_mask,
                                 relative ? bias.data() : nullptr, context.data());
                l.run.add_output_and_ffn(context.data(), x.data(), ffn.data(), T, D,
                                         config_.norm_eps);
            }
            hidden.add(x.data());
        }
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    int embedding_size_ = 0, groups_ = 1, inner_ = 1;
    BertStyleEmbeddingWeights embeddings_;
    Linear mapping_in_;                // [embedding] -> [hidden]
    std::vector<AlbertLayer> layers_;  // [group][inner]
};

}  // namespace

void read_albert_config(const ConfigReader& reader, ModelConfig& config) {
    read_bert_style_config(reader, config, "ALBERT");
    config.hidden_act = reader.string({"hidden_act"}, "gelu_new");  // AlbertConfig's default
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    const int groups = reader.integer({"num_hidden_groups"}, 1);
    const int inner = reader.integer({"inner_group_num"}, 1);
    if (reader.integer({"embedding_size"}, 128) < 1 || groups < 1 || inner < 1 ||
        config.n_layers % groups != 0)
        throw Error(reader.file() +
                    ": ALBERT needs a positive embedding_size and inner_group_num, and "
                    "num_hidden_layers a multiple of num_hidden_groups");
}

std::unique_ptr<Network> load_albert(const LoadContext& context) {
    return std::make_unique<Albert>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
