#include "model/bert_layers.h"

#include "attnviz/error.h"
#include "model/value_norms.h"
#include "runtime/kernels.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

constexpr WeightSpec<BertStyleLayerWeights> kLayerTable[] = {
    {&BertStyleLayerWeights::query_weight, "encoder.layer.{L}.attention.self.query.weight",
     "hidden, hidden"},
    {&BertStyleLayerWeights::query_bias, "encoder.layer.{L}.attention.self.query.bias", "hidden"},
    {&BertStyleLayerWeights::key_weight, "encoder.layer.{L}.attention.self.key.weight",
     "hidden, hidden"},
    {&BertStyleLayerWeights::key_bias, "encoder.layer.{L}.attention.self.key.bias", "hidden"},
    {&BertStyleLayerWeights::value_weight, "encoder.layer.{L}.attention.self.value.weight",
     "hidden, hidden"},
    {&BertStyleLayerWeights::value_bias, "encoder.layer.{L}.attention.self.value.bias", "hidden"},
    {&BertStyleLayerWeights::attn_out_weight, "encoder.layer.{L}.attention.output.dense.weight",
     "hidden, hidden"},
    {&BertStyleLayerWeights::attn_out_bias, "encoder.layer.{L}.attention.output.dense.bias",
     "hidden"},
    {&BertStyleLayerWeights::attn_norm_weight,
     "encoder.layer.{L}.attention.output.LayerNorm.weight", "hidden"},
    {&BertStyleLayerWeights::attn_norm_bias, "encoder.layer.{L}.attention.output.LayerNorm.bias",
     "hidden"},
    {&BertStyleLayerWeights::ffn_up_weight, "encoder.layer.{L}.intermediate.dense.weight",
     "intermediate, hidden"},
    {&BertStyleLayerWeights::ffn_up_bias, "encoder.layer.{L}.intermediate.dense.bias",
     "intermediate"},
    {&BertStyleLayerWeights::ffn_down_weight, "encoder.layer.{L}.output.dense.weight",
     "hidden, intermediate"},
    {&BertStyleLayerWeights::ffn_down_bias, "encoder.layer.{L}.output.dense.bias", "hidden"},
    {&BertStyleLayerWeights::out_norm_weight, "encoder.layer.{L}.output.LayerNorm.weight",
     "hidden"},
    {&BertStyleLayerWeights::out_norm_bias, "encoder.layer.{L}.output.LayerNorm.bias", "hidden"},
    {&BertStyleLayerWeights::distance_embedding,
     "encoder.layer.{L}.attention.self.distance_embedding.weight", "distances, head_dim",
     /*optional=*/true},
};

}  // namespace

BertStyleEmbeddingWeights load_bert_style_embeddings(WeightLoader& loader, const char* width) {
    const std::string w(width);
    BertStyleEmbeddingWeights e;
    e.word = loader.get("embeddings.word_embeddings.weight", "vocab, " + w);
    e.position = loader.get("embeddings.position_embeddings.weight", "positions, " + w);
    e.token_type = loader.get("embeddings.token_type_embeddings.weight", "type_vocab, " + w);
    e.norm_weight = loader.get("embeddings.LayerNorm.weight", w);
    e.norm_bias = loader.get("embeddings.LayerNorm.bias", w);
    return e;
}

void bert_style_embed(const BertStyleEmbeddingWeights& w, const Encoding& tokens,
                      const std::vector<int>& positions, int width, float eps, float* x) {
    const size_t T = tokens.size();
    for (size_t t = 0; t < T; ++t) {
        const float* word = w.word + static_cast<size_t>(tokens.ids[t]) * width;
        const float* type = w.token_type + static_cast<size_t>(tokens.type_ids[t]) * width;
        float* row = x + t * width;
        for (int i = 0; i < width; ++i) row[i] = word[i] + type[i];
        if (positions.empty()) continue;
        const float* position = w.position + static_cast<size_t>(positions[t]) * width;
        for (int i = 0; i < width; ++i) row[i] += position[i];
    }
    runtime::layer_norm(x, w.norm_weight, w.norm_bias, x, static_cast<int>(T), width, eps);
}

void check_type_ids(const Encoding& tokens, int type_vocab_size, const std::string& what) {
    if (tokens.type_ids.size() != tokens.size() || tokens.attention_mask.size() != tokens.size())
        throw Error(what +
                    ": the encoding's type_ids and attention_mask must have one entry per token");
    for (size_t t = 0; t < tokens.size(); ++t)
        if (tokens.type_ids[t] < 0 || tokens.type_ids[t] >= type_vocab_size)
            throw Error(what + ": token type id " + std::to_string(tokens.type_ids[t]) +
                        " at position " + std::to_string(t) + " is outside type_vocab_size " +
                        std::to_string(type_vocab_size));
}

void PostNormLayer::add_output_and_ffn(const float* context, float* x, float* ffn, int T,
                                       int hidden, float eps) const {
    attn_out.forward_add(context, x, T);
    runtime::layer_norm(x, attn_norm_weight, attn_norm_bias, x, T, hidden, eps);
    ffn_up.forward(x, ffn, T);
    ffn_down.forward_add(ffn, x, T);
    runtime::layer_norm(x, out_norm_weight, out_norm_bias, x, T, hidden, eps);
}

bool relative_positions(const ModelConfig& config) {
    return config.position_embedding_type == "relative_key" ||
           config.position_embedding_type == "relative_key_query";
}

void BertStyleLayers::load(WeightLoader& loader, const ModelConfig& config,
                           const std::string& source, int max_position_embeddings) {
    hidden_ = config.hidden_size, heads_ = config.n_heads, head_dim_ = config.head_dim;
    intermediate_ = config.intermediate_size, eps_ = config.norm_eps;
    max_positions_ = max_position_embeddings > 0 ? max_position_embeddings : config.max_positions;
    relative_ = relative_positions(config);
    relative_with_keys_ = config.position_embedding_type == "relative_key_query";
    loader.set_dim("distances", 2 * static_cast<int64_t>(max_positions_) - 1);
    const int D = hidden_, I = intermediate_;
    const auto activation = runtime::activation_from_name(config.hidden_act);
    layers_.resize(static_cast<size_t>(config.n_layers));
    for (int layer = 0; layer < config.n_layers; ++layer) {
        Layer& l = layers_[static_cast<size_t>(layer)];
        loader.bind(kLayerTable, l.weights, layer);
        const BertStyleLayerWeights& w = l.weights;
        if (relative_ && !w.distance_embedding)
            throw Error(source + ": missing tensor encoder.layer." + std::to_string(layer) +
                        ".attention.self.distance_embedding.weight (position_embedding_type " +
                        config.position_embedding_type + ")");
        l.run.qkv = Linear({{w.query_weight, w.query_bias, D},
                            {w.key_weight, w.key_bias, D},
                            {w.value_weight, w.value_bias, D}},
                           D, runtime::WeightLayout::out_in, runtime::Activation::none,
                           loader.releaser({w.query_weight, w.key_weight, w.value_weight}));
        l.run.attn_out =
            Linear(w.attn_out_weight, w.attn_out_bias, D, D, runtime::WeightLayout::out_in,
                   runtime::Activation::none, loader.releaser({w.attn_out_weight}));
        l.run.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              activation, loader.releaser({w.ffn_up_weight}));
        l.run.ffn_down =
            Linear(w.ffn_down_weight, w.ffn_down_bias, I, D, runtime::WeightLayout::out_in,
                   runtime::Activation::none, loader.releaser({w.ffn_down_weight}));
        l.run.attn_norm_weight = w.attn_norm_weight, l.run.attn_norm_bias = w.attn_norm_bias;
        l.run.out_norm_weight = w.out_norm_weight, l.run.out_norm_bias = w.out_norm_bias;
    }
}

void BertStyleLayers::forward(float* x, int T, const uint8_t* key_mask, AttentionBlock& block,
                              HiddenStateRecorder& hidden) const {
    const int D = hidden_, Dh = head_dim_, I = intermediate_;
    std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D] query | key | value
    std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
    std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]
    std::vector<float> relative;  // [H, T, T] relative position scores, when the config uses them
    if (relative_) {
        relative.resize(static_cast<size_t>(heads_) * T * T);
        // q . E[q - k] (+ k . E[q - k]) depends on the query's content: no bias reproduces it
        block.score_form = ScoreForm::not_decomposable;
    }
    for (size_t layer = 0; layer < layers_.size(); ++layer) {
        const Layer& l = layers_[layer];
        const int li = static_cast<int>(layer);
        l.run.qkv.forward(x, qkv.data(), T);
        if (relative_)  // added to q.k before the 1/sqrt(Dh) scale
            relative_position_scores(qkv.data(), T, heads_, head_dim_, max_positions_,
                                     relative_with_keys_, l.weights.distance_embedding,
                                     relative.data());
        attend_fused_qkv(block, li, qkv.data(), Dh, key_mask, relative_ ? relative.data() : nullptr,
                         context.data());
        keep_value_norms(block, li, qkv.data() + 2 * D, 3 * D, Dh, heads_, l.run.attn_out);
        l.run.add_output_and_ffn(context.data(), x, ffn.data(), T, D, eps_);
        hidden.add(x);
    }
}

void relative_position_scores(const float* qkv, int T, int heads, int head_dim, int max_positions,
                              bool with_keys, const float* distance, float* out) {
    const int H = heads, Dh = head_dim, P = max_positions, D = heads * head_dim;
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

}  // namespace attnviz::model
