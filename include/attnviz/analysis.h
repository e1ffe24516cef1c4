// Analysis measures over a trace (src/analysis): aggregation, word-level
// attention, attention rollout and flow (Abnar & Zuidema 2020) and
// value-weighted attention (Kobayashi et al. 2020). They read an
// AttentionTrace only, never a model. Definitions: docs/analysis.md.
#pragma once

#include <cstddef>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz::analysis {

// ---- aggregation -------------------------------------------------------------

enum class Reduce { mean, max };

// [n_layers][n_queries][n_keys]: each layer's maps reduced over its heads
// (`heads`: indices into the block's kept heads; empty: all).
std::vector<float> reduce_heads(const AttentionBlock& block, Reduce how,
                                const std::vector<int>& heads = {});
// [n_heads][n_queries][n_keys]: each head reduced over the layers (`layers`:
// indices into the block's kept layers; empty: all).
std::vector<float> reduce_layers(const AttentionBlock& block, Reduce how,
                                 const std::vector<int>& layers = {});

struct HeadRef {
    int layer = 0, head = 0;  // indices into the block's kept layers and heads
};
// [n_queries][n_keys]: a chosen set of (layer, head) maps reduced to one.
std::vector<float> reduce_set(const AttentionBlock& block, Reduce how,
                              const std::vector<HeadRef>& set);

// ---- word level (Clark et al. 2019) ------------------------------------------

// The words of one token sequence: which tokens make each word. A word is a
// run of tokens with the same word id in the same segment; every special
// token (word id -1) is a word of its own.
struct Words {
    std::vector<std::vector<int>> tokens;  // [word] -> its token indices, ascending
    std::vector<int> word_of_token;        // [token] -> word
};
Words words_of(const TokenSequence& sequence);

// The trace with words for tokens: attention TO a word is the sum over its
// pieces, attention FROM a word the mean over its pieces (rows still sum to
// 1). Word tokens: text/display joined from the pieces, offsets spanning
// them, the first piece's id, type id and word_id. Queries, keys, score
// biases, value norms and hidden states are dropped (no word-level form;
// value-weighted maps convert with word_level_maps). Throws Error for blocks
// without dense probs.
AttentionTrace word_level(const AttentionTrace& trace);
// The same rule on any n_maps maps [n_maps][query tokens][key tokens] ->
// [n_maps][query words][key words] (value-weighted attention at word level).
std::vector<float> word_level_maps(const std::vector<float>& maps, int n_maps,
                                   const Words& query_words, const Words& key_words);

// ---- rollout (Abnar & Zuidema 2020) -------------------------------------------

// How a layer's heads become one matrix before rollout: the paper's head
// mean; the head max; and, after either, discard_ratio zeroes the lowest
// fraction of each layer's fused matrix (floor(ratio * n_queries * n_keys)
// entries; the variant of Gildenblat's vit-explain).
enum class HeadFusion { mean, max };
struct RolloutOptions {
    HeadFusion fusion = HeadFusion::mean;
    double discard_ratio = 0;  // [0, 1)
};

// The layer matrices rollout and flow use: A_l = fuse(heads of layer l),
// then (A_l + I) with each row divided by its sum (= 0.5 A + 0.5 I for the
// head mean, whose rows sum to 1). [n_layers][n][n]. Needs a square block
// with dense probs (self-attention, full capture), else Error naming why.
std::vector<float> residual_attention(const AttentionBlock& block,
                                      const RolloutOptions& options = {});

// [n_layers][n][n]: row i of layer l is the rollout from token i at layer l's
// output to the input tokens: R_0 = Â_0, R_l = Â_l R_{l-1}.
std::vector<float> rollout(const AttentionBlock& block, const RolloutOptions& options = {});

// ---- flow (Abnar & Zuidema 2020) ---------------------------------------------

// The layered graph of the paper: node (l, i) for l = 0..n_layers (0: the
// input tokens), edge (l+1, i) -> (l, j) of capacity Â_l[i][j]. The flow of
// output token i to input token j is the maximum flow from (n_layers, i) to
// (0, j); exact (Dinic's blocking flows on the dense layered graph, float
// capacities).
struct FlowOptions {
    RolloutOptions layers;  // how Â_l is made (the paper: head mean)
    int threads = 0;        // OpenMP threads over output tokens; 0: the default
};
// [n][n]: row i holds the max-flow values of output token i to every input token.
std::vector<float> flow(const AttentionBlock& block, const FlowOptions& options = {});
// [n]: one output token's row of flow().
std::vector<float> flow_from(const AttentionBlock& block, int output_token,
                             const FlowOptions& options = {});
// The same from ready layer matrices ([n_layers][n][n], as residual_attention
// makes them): for the benchmark and for callers with their own Â.
std::vector<float> flow_from_matrices(const std::vector<float>& matrices, int n_layers, int n,
                                      const std::vector<int>& output_tokens, int threads = 0);

// ---- value-weighted attention (Kobayashi et al. 2020) ---------------------------

// [n_layers][n_heads][n_queries][n_keys]: ‖α_ij f_h(x_j)‖ = α_ij ‖f_h(x_j)‖,
// f_h = the head's value projection followed by its slice of the output
// projection. Needs the block's value_norms (RunOptions::keep_value_norms),
// else Error.
std::vector<float> value_weighted(const AttentionBlock& block);
// [n_layers][n_queries][n_keys]: value_weighted summed over each layer's heads
// (Σ_h ‖α^h_ij f_h(x_j)‖, an upper bound of ‖Σ_h α^h_ij f_h(x_j)‖).
std::vector<float> value_weighted_layer(const AttentionBlock& block);

// Whether the block holds every probability in float32 as the forward computed
// it: not a --top-k / --top-mass / --fp16 capture, even one densified for the
// views since (its rows are then truncated or rounded, and the measures would be
// of those, not of the model's attention).
bool has_full_attention(const AttentionBlock& block);
// Throws Error naming `what` and the flags to drop when !has_full_attention:
// "rollout and flow needs the full attention of block ...: drop --top-k, ...".
void require_dense(const AttentionBlock& block, const char* what);

}  // namespace attnviz::analysis
