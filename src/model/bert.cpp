// BERT, as modeling_bert.py computes it on its eager attention path (the one
// transformers takes with output_attentions=True): a post-norm encoder.
//
//   x = LayerNorm(word[id] + token_type[type] + position[t])   (position: when "absolute")
//   per layer:
//     q, k, v = x Wq, x Wk, x Wv                     (one fused matmul)
//     probs   = softmax((q k^T + relative) / sqrt(head_dim) + padding mask)   -> the trace
//               (relative: position_embedding_type relative_key(_query) only)
//     x = LayerNorm(x + (probs v) Wo)
//     x = LayerNorm(x + act(x W_up) W_down)
//
// Checkpoints: BertModel names, or "bert."-prefixed ones (BertForMaskedLM,
// BertForSequenceClassification...: their heads are not read), and the legacy
// LayerNorm gamma/beta names.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "attnviz/error.h"
#include "model/network.h"
#include "runtime/attention.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;
using runtime::LinearPart;

// --- weights: checkpoint name -> field, shape in config terms ----------------

struct BertEmbeddingWeights {
    const float* word = nullptr;        // [vocab, hidden]
    const float* position = nullptr;    // [positions, hidden]
    const float* token_type = nullptr;  // [type_vocab, hidden]
    const float* norm_weight = nullptr;
    const float* norm_bias = nullptr;
};

constexpr WeightSpec<BertEmbeddingWeights> kEmbeddingTable[] = {
    {&BertEmbeddingWeights::word, "embeddings.word_embeddings.weight", "vocab, hidden"},
    {&BertEmbeddingWeights::position, "embeddings.position_embeddings.weight", "positions, hidden"},
    {&BertEmbeddingWeights::token_type, "embeddings.token_type_embeddings.weight",
     "type_vocab, hidden"},
    {&BertEmbeddingWeights::norm_weight, "embeddings.LayerNorm.weight", "hidden"},
    {&BertEmbeddingWeights::norm_bias, "embeddings.LayerNorm.bias", "hidden"},
};

struct BertLayerWeights {
    const float *query_weight, *query_bias;  // [hidden, hidden], [hidden]
    const float *key_weight, *key_bias;
    const float *value_weight, *value_bias;
    const float *attn_out_weight, *attn_out_bias;
    const float *attn_norm_weight, *attn_norm_bias;
    const float *ffn_up_weight, *ffn_up_bias;      // [intermediate, hidden]
    const float *ffn_down_weight, *ffn_down_bias;  // [hidden, intermediate]
    const float *out_norm_weight, *out_norm_bias;
    const float* distance_embedding;  // [2 * positions - 1, head_dim], relative_key(_query) only
};

constexpr WeightSpec<BertLayerWeights> kLayerTable[] = {
    {&BertLayerWeights::query_weight, "encoder.layer.{L}.attention.self.query.weight",
     "hidden, hidden"},
    {&BertLayerWeights::query_bias, "encoder.layer.{L}.attention.self.query.bias", "hidden"},
    {&BertLayerWeights::key_weight, "encoder.layer.{L}.attention.self.key.weight",
     "hidden, hidden"},
    {&BertLayerWeights::key_bias, "encoder.layer.{L}.attention.self.key.bias", "hidden"},
    {&BertLayerWeights::value_weight, "encoder.layer.{L}.attention.self.value.weight",
     "hidden, hidden"},
    {&BertLayerWeights::value_bias, "encoder.layer.{L}.attention.self.value.bias", "hidden"},
    {&BertLayerWeights::attn_out_weight, "encoder.layer.{L}.attention.output.dense.weight",
     "hidden, hidden"},
    {&BertLayerWeights::attn_out_bias, "encoder.layer.{L}.attention.output.dense.bias", "hidden"},
    {&BertLayerWeights::attn_norm_weight, "encoder.layer.{L}.attention.output.LayerNorm.weight",
     "hidden"},
    {&BertLayerWeights::attn_norm_bias, "encoder.layer.{L}.attention.output.LayerNorm.bias",
     "hidden"},
    {&BertLayerWeights::ffn_up_weight, "encoder.layer.{L}.intermediate.dense.weight",
     "intermediate, hidden"},
    {&BertLayerWeights::ffn_up_bias, "encoder.layer.{L}.intermediate.dense.bias", "intermediate"},
    {&BertLayerWeights::ffn_down_weight, "encoder.layer.{L}.output.dense.weight",
     "hidden, intermediate"},
    {&BertLayerWeights::ffn_down_bias, "encoder.layer.{L}.output.dense.bias", "hidden"},
    {&BertLayerWeights::out_norm_weight, "encoder.layer.{L}.output.LayerNorm.weight", "hidden"},
    {&BertLayerWeights::out_norm_bias, "encoder.layer.{L}.output.LayerNorm.bias", "hidden"},
    {&BertLayerWeights::distance_embedding,
     "encoder.layer.{L}.attention.self.distance_embedding.weight", "distances, head_dim",
     /*optional=*/true},
};

// One layer, its matmul weights packed for the CPU.
struct BertLayer {
    BertLayerWeights weights;
    Linear qkv;       // [hidden] -> [query | key | value], 3 * hidden
    Linear attn_out;  // [hidden] -> [hidden], added to the residual
    Linear ffn_up;    // [hidden] -> [intermediate], activation fused
    Linear ffn_down;  // [intermediate] -> [hidden], added to the residual
};

// --- the network -------------------------------------------------------------

class Bert final : public Network {
public:
    Bert(const ModelConfig& config, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "bert."}) {
        WeightLoader& loader = loader_;
        loader.set_dim("distances", 2 * static_cast<int64_t>(config.max_positions) - 1);
        loader.bind(kEmbeddingTable, embeddings_);
        const int D = config.hidden_size, I = config.intermediate_size;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            BertLayer& l = layers_[static_cast<size_t>(layer)];
            loader.bind(kLayerTable, l.weights, layer);
            const BertLayerWeights& w = l.weights;
            if (relative_positions() && !w.distance_embedding)
                throw Error(tensors.description() + ": missing tensor encoder.layer." +
                            std::to_string(layer) +
                            ".attention.self.distance_embedding.weight (position_embedding_type " +
                            config.position_embedding_type + ")");
            // Once a Linear has packed its weights (in the second forward), the
            // checkpoint's copy leaves memory: loader.releaser is its on_packed.
            l.qkv = Linear({{w.query_weight, w.query_bias, D},
                            {w.key_weight, w.key_bias, D},
                            {w.value_weight, w.value_bias, D}},
                           D, runtime::WeightLayout::out_in, runtime::Activation::none,
                           loader.releaser({w.query_weight, w.key_weight, w.value_weight}));
            l.attn_out =
                Linear(w.attn_out_weight, w.attn_out_bias, D, D, runtime::WeightLayout::out_in,
                       runtime::Activation::none, loader.releaser({w.attn_out_weight}));
            l.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              activation, loader.releaser({w.ffn_up_weight}));
            l.ffn_down =
                Linear(w.ffn_down_weight, w.ffn_down_bias, I, D, runtime::WeightLayout::out_in,
                       runtime::Activation::none, loader.releaser({w.ffn_down_weight}));
        }
    }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;
        check_input(tokens);

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back();
        block.name = "self";
        block.n_layers = L, block.n_heads = H, block.n_queries = T, block.n_keys = T;
        block.probs.resize(static_cast<size_t>(L) * H * T * T);
        block.score_scale = 1.0f / std::sqrt(static_cast<float>(Dh));
        if (options.keep_queries_keys) {
            block.head_dim = Dh;
            block.queries.resize(static_cast<size_t>(L) * H * T * Dh);
            block.keys.resize(block.queries.size());
        }
        HiddenStates* hidden = nullptr;
        if (options.keep_hidden_states) {
            hidden = &output.hidden_states.emplace_back();
            hidden->n_states = L + 1, hidden->n_tokens = T, hidden->hidden_size = D;
            hidden->values.reserve(static_cast<size_t>(L + 1) * T * D);
        }

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D] query | key | value
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D] heads side by side
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]
        std::vector<float>
            relative;  // [H, T, T] relative position scores, when the config uses them
        if (relative_positions()) relative.resize(static_cast<size_t>(H) * T * T);
        const bool padded = std::find(tokens.attention_mask.begin(), tokens.attention_mask.end(),
                                      0) != tokens.attention_mask.end();

        embed(tokens, x.data());
        if (hidden) hidden->values.insert(hidden->values.end(), x.begin(), x.end());

        for (int layer = 0; layer < L; ++layer) {
            const BertLayer& l = layers_[static_cast<size_t>(layer)];
            const BertLayerWeights& w = l.weights;
            const size_t layer_offset = static_cast<size_t>(layer) * H * T;

            // self-attention: probs [H, T, T] go straight into the trace
            l.qkv.forward(x.data(), qkv.data(), T);
            if (options.keep_queries_keys) {
                keep_heads(qkv.data(), 0, T, block.queries.data() + layer_offset * Dh);
                keep_heads(qkv.data(), D, T, block.keys.data() + layer_offset * Dh);
            }
            runtime::AttentionShape shape;
            shape.n_heads = shape.n_kv_heads = H;
            shape.n_queries = shape.n_keys = T;
            shape.head_dim = Dh;
            shape.score_scale = block.score_scale;
            runtime::AttentionInputs in;
            in.queries = qkv.data(), in.query_stride = 3 * D;
            in.keys = qkv.data() + D, in.key_stride = 3 * D;
            in.values = qkv.data() + 2 * D, in.value_stride = 3 * D;
            in.key_mask = padded ? tokens.attention_mask.data() : nullptr;
            if (relative_positions()) {
                relative_scores(qkv.data(), T, w.distance_embedding, relative.data());
                in.score_bias = relative.data();  // added to q.k before the 1/sqrt(Dh) scale
            }
            runtime::attention(shape, in, block.probs.data() + layer_offset * T, context.data(), D);

            // attention output: x = LayerNorm(x + context Wo)
            l.attn_out.forward_add(context.data(), x.data(), T);
            runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, x.data(), T, D,
                                config_.norm_eps);

            // feed-forward: x = LayerNorm(x + act(x W_up) W_down)
            l.ffn_up.forward(x.data(), ffn.data(), T);
            l.ffn_down.forward_add(ffn.data(), x.data(), T);
            runtime::layer_norm(x.data(), w.out_norm_weight, w.out_norm_bias, x.data(), T, D,
                                config_.norm_eps);

            if (hidden) hidden->values.insert(hidden->values.end(), x.begin(), x.end());
        }
        return output;
    }

private:
    void check_input(const Encoding& tokens) const {
        const size_t T = tokens.size();
        if (T == 0) throw Error("BERT: no tokens to run");
        if (config_.max_positions > 0 && T > static_cast<size_t>(config_.max_positions))
            throw Error("BERT: " + std::to_string(T) + " tokens, but max_position_embeddings is " +
                        std::to_string(config_.max_positions));
        if (tokens.type_ids.size() != T || tokens.attention_mask.size() != T)
            throw Error(
                "BERT: the encoding's type_ids and attention_mask must have one entry per token");
        for (size_t t = 0; t < T; ++t) {
            if (tokens.ids[t] < 0 || tokens.ids[t] >= config_.vocab_size)
                throw Error("BERT: token id " + std::to_string(tokens.ids[t]) + " at position " +
                            std::to_string(t) + " is outside the vocabulary (vocab_size " +
                            std::to_string(config_.vocab_size) + ")");
            if (tokens.type_ids[t] < 0 || tokens.type_ids[t] >= config_.type_vocab_size)
                throw Error("BERT: token type id " + std::to_string(tokens.type_ids[t]) +
                            " at position " + std::to_string(t) + " is outside type_vocab_size " +
                            std::to_string(config_.type_vocab_size));
        }
    }

    bool relative_positions() const { return config_.position_embedding_type != "absolute"; }

    // x [T, D] = LayerNorm(word[id] + token_type[type] (+ position[t] when absolute)),
    // in modeling_bert's order.
    void embed(const Encoding& tokens, float* x) const {
        const int D = config_.hidden_size;
        for (size_t t = 0; t < tokens.size(); ++t) {
            const float* word = embeddings_.word + static_cast<size_t>(tokens.ids[t]) * D;
            const float* type =
                embeddings_.token_type + static_cast<size_t>(tokens.type_ids[t]) * D;
            float* row = x + t * D;
            for (int i = 0; i < D; ++i) row[i] = word[i] + type[i];
            if (!relative_positions()) {
                const float* position = embeddings_.position + t * D;
                for (int i = 0; i < D; ++i) row[i] += position[i];
            }
        }
        runtime::layer_norm(x, embeddings_.norm_weight, embeddings_.norm_bias, x,
                            static_cast<int>(tokens.size()), D, config_.norm_eps);
    }

    // BertSelfAttention's relative position scores, added to q.k before scaling:
    // relative_key:       out[h][q][k] = q[q,h] . E[q - k + P - 1]
    // relative_key_query: out[h][q][k] += k[k,h] . E[q - k + P - 1]
    // distance [2P - 1, Dh] (P = max_position_embeddings), qkv [T, 3D].
    void relative_scores(const float* qkv, int T, const float* distance, float* out) const {
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int P = config_.max_positions;
        const bool with_keys = config_.position_embedding_type == "relative_key_query";
#pragma omp parallel for schedule(static)
        for (int head = 0; head < H; ++head) {
            for (int query = 0; query < T; ++query) {
                const float* q = qkv + static_cast<size_t>(query) * 3 * D + head * Dh;
                float* row = out + (static_cast<size_t>(head) * T + query) * T;
                for (int key = 0; key < T; ++key) {
                    const float* e = distance + static_cast<size_t>(query - key + P - 1) * Dh;
                    const float* k = qkv + static_cast<size_t>(key) * 3 * D + D + head * Dh;
                    float score = 0.0f;
                    for (int d = 0; d < Dh; ++d) score += q[d] * e[d];
                    if (with_keys) {
                        float key_score = 0.0f;
                        for (int d = 0; d < Dh; ++d) key_score += k[d] * e[d];
                        score += key_score;
                    }
                    row[key] = score;
                }
            }
        }
    }

    // [T, 3D] columns [offset, offset + D) -> [H, T, Dh]
    void keep_heads(const float* qkv, int offset, int T, float* out) const {
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        for (int head = 0; head < H; ++head)
            for (int t = 0; t < T; ++t)
                std::memcpy(out + (static_cast<size_t>(head) * T + t) * Dh,
                            qkv + static_cast<size_t>(t) * 3 * D + offset + head * Dh,
                            sizeof(float) * Dh);
    }

    ModelConfig config_;
    WeightLoader loader_;  // owns the fp32 copies of F16/BF16 weights
    BertEmbeddingWeights embeddings_;
    std::vector<BertLayer> layers_;
};

}  // namespace

void read_bert_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size"});
    config.intermediate_size = reader.integer({"intermediate_size"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"max_position_embeddings"});
    config.type_vocab_size = reader.integer({"type_vocab_size"}, 2);
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-12));
    config.hidden_act = reader.string({"hidden_act"}, "gelu");
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 || config.max_positions < 1 ||
        config.type_vocab_size < 1)
        throw Error(
            reader.file() +
            ": BERT needs positive num_hidden_layers, num_attention_heads, "
            "hidden_size, intermediate_size, vocab_size, max_position_embeddings, type_vocab_size");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    if (config.position_embedding_type != "absolute" &&
        config.position_embedding_type != "relative_key" &&
        config.position_embedding_type != "relative_key_query")
        throw Error(reader.file() + ": position_embedding_type \"" +
                    config.position_embedding_type +
                    "\" is not supported (supported: absolute, relative_key, relative_key_query)");
    try {
        runtime::activation_from_name(config.hidden_act);
    } catch (const Error& e) {
        throw Error(reader.file() + ": hidden_act: " + e.what());
    }
}

std::unique_ptr<Network> load_bert(const LoadContext& context) {
    return std::make_unique<Bert>(context.config, context.tensors);
}

}  // namespace attnviz::model
