// AttentionTrace: everything a view or an export may know about one run.
// Models produce it; views (src/viz) and exports consume it. No model types here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "attnviz/encoding.h"

namespace attnviz {

struct TraceToken {
    std::string text;     // as the vocabulary spells it: "##ing", "Ġthe", "▁the"
    std::string display;  // readable form from the tokenizer's decoder: "ing", " the", "the"
    int32_t id = 0;
    int32_t type_id = 0;
    int8_t segment = 0;  // 0: text A (or the source), 1: text B; -1: special token
    bool special = false;
    Offset offset;       // code points into the segment's text
    Offset byte_offset;  // UTF-8 bytes into the segment's text
    // Hugging Face's word_ids(): the pre-tokenizer word the token came from,
    // counted per segment; -1 for special tokens the post-processor added.
    int32_t word_id = -1;
};

// The tokens one stack sees: "input" for encoder-only and decoder-only models,
// "encoder" and "decoder" for encoder-decoder models.
struct TokenSequence {
    std::string name;
    std::vector<std::string> texts;  // the input texts: {A} or {A, B}
    std::vector<TraceToken> tokens;
};

// How a block's pre-softmax score of (query, key) is formed, so that a view can
// recompute it from the kept queries and keys without knowing the model.
enum class ScoreForm : uint8_t {
    // score = score_scale * dot(query, key) + score_bias (0 where the block has
    // none); keys after the query of a causal block are masked besides.
    scaled_dot_plus_bias,
    // The model adds a term that depends on the query's or the key's content
    // (BERT's relative_key / relative_key_query position scores): no
    // query-independent bias reproduces the probabilities from q.k alone.
    not_decomposable,
};

// One family of attention maps: "self" (single-stack models), or "encoder",
// "decoder" and "cross" (encoder-decoder models).
struct AttentionBlock {
    std::string name;
    int query_sequence = 0;  // index into AttentionTrace::sequences
    int key_sequence = 0;
    bool causal = false;  // keys after the query are masked (their probs are 0)
    int n_layers = 0, n_heads = 0, n_queries = 0, n_keys = 0;
    std::vector<float> probs;  // [layer][head][query][key]; each row sums to 1

    // Neuron-view data, present when the run kept queries and keys. Keys are
    // given per query head (grouped-query models repeat their shared keys).
    // With score_form scaled_dot_plus_bias, probs[l][h][q] is (to float32 rounding)
    // softmax_k(layer_score_scale(l) * dot(queries[l][h][q], keys[l][h][k]) + bias(l, h, q, k)).
    int head_dim = 0;
    float score_scale = 1.0f;
    ScoreForm score_form = ScoreForm::scaled_dot_plus_bias;
    // Set when the scale differs by layer (GPT-2's scale_attn_by_inverse_layer_idx
    // divides layer i's scores by i + 1): layer i's raw score is then
    // layer_score_scales[i] * dot(query, key). The queries are the model's own.
    std::vector<float> layer_score_scales;  // [layer], or empty
    std::vector<float> queries;             // [layer][head][query][head_dim]
    std::vector<float> keys;                // [layer][head][key][head_dim]

    // The additive score bias the model applied, kept with the queries and keys
    // (scaled_dot_plus_bias blocks only): T5's relative position bias, a sliding
    // window or a padding mask (-inf = the key is masked). Blocks whose layers
    // share one bias (T5 computes it in its first layer and reuses it) store it
    // once: score_bias_layers is 0 (no bias), 1 (one for every layer) or n_layers.
    int score_bias_layers = 0;
    std::vector<float> score_bias;  // [score_bias_layers][head][query][key]

    // Present when the run kept them (RunOptions::keep_value_norms): the norm
    // of what each key contributes per unit of attention, ‖v_k^h W_O^h‖ (the
    // head's value vector through its slice of the output projection, without
    // the output bias; Kobayashi et al. 2020). [layer][head][key].
    std::vector<float> value_norms;
    bool has_value_norms() const { return !value_norms.empty(); }

    size_t index(int layer, int head, int query, int key) const {
        return ((static_cast<size_t>(layer) * n_heads + head) * n_queries + query) * n_keys + key;
    }
    float prob(int layer, int head, int query, int key) const {
        return probs[index(layer, head, query, key)];
    }
    bool has_queries_keys() const { return head_dim > 0 && !queries.empty(); }
    bool has_score_bias() const { return score_bias_layers > 0; }
    // The bias of one (layer, head) as [query][key], or null when the block has none.
    const float* score_bias_of(int layer, int head) const {
        if (!has_score_bias()) return nullptr;
        const int bias_layer = score_bias_layers == 1 ? 0 : layer;
        return score_bias.data() +
               (static_cast<size_t>(bias_layer) * n_heads + head) * n_queries * n_keys;
    }
    float layer_score_scale(int layer) const {
        return layer_score_scales.empty() ? score_scale
                                          : layer_score_scales[static_cast<size_t>(layer)];
    }
};

// Hidden states of one stack: the embeddings output and every layer's output,
// as transformers' output_hidden_states gives them (the last one after the
// stack's final norm where the model has one). Each stack runs over one token
// sequence, so `sequence` names the stack: "input" for single-stack models,
// "encoder" or "decoder" (the .npz's encoder_hidden_states, decoder_hidden_states).
// A trace holds at most one per sequence.
struct HiddenStates {
    int sequence = 0;  // index into AttentionTrace::sequences: the stack's tokens
    int n_states = 0, n_tokens = 0, hidden_size = 0;
    std::vector<float> values;  // [n_layers + 1][token][hidden]
};

struct AttentionTrace {
    std::string model_id;        // "bert-base-uncased", or the folder's name
    std::string model_revision;  // the commit, when the model came from the HF cache; else empty
    std::string architecture;    // "bert", "gpt2", "t5", ...
    std::vector<TokenSequence> sequences;
    std::vector<AttentionBlock> blocks;
    std::vector<HiddenStates> hidden_states;  // only when the run kept them
    // Empty when every number the run produced is finite. Otherwise where the
    // first NaN or inf appeared ("layer 1, head 0, row 3 of the attention"):
    // the weights or the config make the model compute non-finite values, as
    // PyTorch would too. Model::trace warns; the CLI exits with code 3.
    std::string non_finite;
};

}  // namespace attnviz
