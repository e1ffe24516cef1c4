// The BERT-style pieces BERT, RoBERTa and ELECTRA share (modeling_roberta.py
// and modeling_electra.py copy them from modeling_bert.py): word + token type +
// position embeddings with LayerNorm, and the post-norm encoder layer stack
// under "encoder.layer.{L}." (bert.cpp spells out what one layer computes).
// Only how positions are numbered and ELECTRA's embedding projection differ;
// those stay in their .cpp files. All of them (and ALBERT) honour
// position_embedding_type relative_key(_query): no position term in the
// embeddings, a learned distance embedding in each attention.
#pragma once

#include <vector>

#include "attnviz/encoding.h"
#include "attnviz/trace.h"
#include "model/arch_blocks.h"
#include "model/config.h"
#include "model/weights.h"
#include "runtime/linear.h"

namespace attnviz::model {

struct BertStyleEmbeddingWeights {
    const float* word = nullptr;        // [vocab, width]
    const float* position = nullptr;    // [positions, width]
    const float* token_type = nullptr;  // [type_vocab, width]
    const float* norm_weight = nullptr;
    const float* norm_bias = nullptr;
};

// Reads embeddings.* with rows of `width` ("hidden", or "embedding" after set_dim).
BertStyleEmbeddingWeights load_bert_style_embeddings(WeightLoader& loader, const char* width);

// x [T, width] = LayerNorm(word[id] + token_type[type] + position[positions[t]]),
// in modeling_bert's order; with no positions (BERT's relative_key), no position term.
void bert_style_embed(const BertStyleEmbeddingWeights& w, const Encoding& tokens,
                      const std::vector<int>& positions, int width, float eps, float* x);

// config.json's BERT keys (num_hidden_layers, hidden_size, ...), checked, with
// `name` in errors; RoBERTa, ELECTRA and ALBERT start from them.
// position_embedding_type may be absolute, relative_key or relative_key_query.
void read_bert_style_config(const ConfigReader& reader, ModelConfig& config, const char* name);

// BertModel's decoder key, which RoBERTa and ELECTRA copy: is_decoder makes
// self-attention causal (BertLMHeadModel, RobertaForCausalLM). add_cross_attention
// is refused by the config key table (config_keys.cpp).
void read_bert_decoder_keys(const ConfigReader& reader, ModelConfig& config);

// True for position_embedding_type relative_key and relative_key_query.
bool relative_positions(const ModelConfig& config);

// BertSelfAttention's (and AlbertAttention's) relative position scores for one layer:
//   relative_key:       out[h][q][k] = q[q,h] . E[q - k + P - 1]
//   relative_key_query: out[h][q][k] += k[k,h] . E[q - k + P - 1]
// qkv [T, 3 * heads * head_dim] rows of [query | key | value], distance
// [2P - 1, head_dim] (P = max_position_embeddings), out [heads, T, T].
void relative_position_scores(const float* qkv, int T, int heads, int head_dim, int max_positions,
                              bool with_keys, const float* distance, float* out);

// Checks type ids against type_vocab_size, naming the model.
void check_type_ids(const Encoding& tokens, int type_vocab_size, const std::string& what);

struct BertStyleLayerWeights {
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

// The matmuls and norms of one post-norm encoder layer, as BERT, RoBERTa,
// ELECTRA, DistilBERT and ALBERT all run it (under their own weight names).
struct PostNormLayer {
    runtime::Linear qkv;       // [hidden] -> [query | key | value]
    runtime::Linear attn_out;  // added to the residual
    runtime::Linear ffn_up;    // activation fused
    runtime::Linear ffn_down;  // added to the residual
    const float *attn_norm_weight = nullptr, *attn_norm_bias = nullptr;
    const float *out_norm_weight = nullptr, *out_norm_bias = nullptr;

    // After attention (context [T, hidden]): x = LayerNorm(x + context Wo), then
    // x = LayerNorm(x + act(x W_up) W_down); ffn is [T, intermediate] scratch.
    void add_output_and_ffn(const float* context, float* x, float* ffn, int T, int hidden,
                            float eps) const;
};

class BertStyleLayers {
public:
    // Loads encoder.layer.{L}.* for config.n_layers layers; `source` (the
    // checkpoint's description) names the file in errors. Once a Linear has
    // packed its weights (in the second forward), the checkpoint's copy leaves
    // memory: loader.releaser is its on_packed. max_position_embeddings sizes
    // the relative distance table (0: config.max_positions; RoBERTa's counts
    // its padding offset too).
    void load(WeightLoader& loader, const ModelConfig& config, const std::string& source,
              int max_position_embeddings = 0);

    // Runs every layer on x [T, hidden], writing the block's maps (and queries
    // and keys when kept) and each layer's output to hidden.
    void forward(float* x, int T, const uint8_t* key_mask, AttentionBlock& block,
                 HiddenStateRecorder& hidden) const;

private:
    struct Layer {
        BertStyleLayerWeights weights;
        PostNormLayer run;
    };
    std::vector<Layer> layers_;
    int hidden_ = 0, heads_ = 0, head_dim_ = 0, intermediate_ = 0, max_positions_ = 0;
    float eps_ = 1e-12f;
    bool relative_ = false;            // position_embedding_type relative_key(_query)
    bool relative_with_keys_ = false;  // relative_key_query
};

}  // namespace attnviz::model
