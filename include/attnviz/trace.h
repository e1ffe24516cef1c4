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
};

// The tokens one stack sees: "input" for encoder-only and decoder-only models,
// "encoder" and "decoder" for encoder-decoder models.
struct TokenSequence {
    std::string name;
    std::vector<std::string> texts;  // the input texts: {A} or {A, B}
    std::vector<TraceToken> tokens;
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
    // The raw score is score_scale * dot(query, key) (+ any position bias the
    // model adds before the softmax, such as T5's).
    int head_dim = 0;
    float score_scale = 1.0f;
    // Set when the scale differs by layer (GPT-2's scale_attn_by_inverse_layer_idx
    // divides layer i's scores by i + 1): layer i's raw score is then
    // layer_score_scales[i] * dot(query, key). The queries are the model's own.
    std::vector<float> layer_score_scales;  // [layer], or empty
    std::vector<float> queries;             // [layer][head][query][head_dim]
    std::vector<float> keys;                // [layer][head][key][head_dim]

    size_t index(int layer, int head, int query, int key) const {
        return ((static_cast<size_t>(layer) * n_heads + head) * n_queries + query) * n_keys + key;
    }
    float prob(int layer, int head, int query, int key) const {
        return probs[index(layer, head, query, key)];
    }
    bool has_queries_keys() const { return head_dim > 0 && !queries.empty(); }
    float layer_score_scale(int layer) const {
        return layer_score_scales.empty() ? score_scale
                                          : layer_score_scales[static_cast<size_t>(layer)];
    }
};

// Hidden states of one stack: the embeddings output and every layer's output.
struct HiddenStates {
    int sequence = 0;  // index into AttentionTrace::sequences
    int n_states = 0, n_tokens = 0, hidden_size = 0;
    std::vector<float> values;  // [n_layers + 1][token][hidden]
};

struct AttentionTrace {
    std::string model_id;      // "bert-base-uncased", or the folder's name
    std::string architecture;  // "bert", "gpt2", "t5", ...
    std::vector<TokenSequence> sequences;
    std::vector<AttentionBlock> blocks;
    std::vector<HiddenStates> hidden_states;  // only when the run kept them
};

}  // namespace attnviz
