// What the page asks of a kept trace, computed on the server so that a long
// input never travels whole: a tile of one attention matrix, the top-k keys
// of each query, and the difference of two traces where their tokens align.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz::serve {

inline constexpr int kMeanOfHeads = -1;
inline constexpr int kMaxTileSide = 512;

// One attention matrix of a block: a model layer and a model head
// (kMeanOfHeads: the mean over the block's kept heads). Throws Error naming
// a layer or head the trace does not hold (out of range, or not captured).
struct MatrixRef {
    const AttentionBlock* block = nullptr;
    int layer = 0;  // index into the block's kept layers
    int head = 0;   // index into the block's kept heads, or kMeanOfHeads
};
MatrixRef matrix_ref(const AttentionTrace& trace, const std::string& block, int layer, int head);

// One query row (n_keys floats), whatever the storage (dense, fp16, sparse: missing keys 0).
void read_row(const MatrixRef& matrix, int query, float* out);

// Rows q0..q1-1 and columns k0..k1-1, row-major; at most kMaxTileSide each way.
std::vector<float> tile(const MatrixRef& matrix, int q0, int q1, int k0, int k1);

struct TopKeys {
    int query = 0;
    std::vector<int> keys;  // by decreasing probability (ties: lower key first)
    std::vector<float> probs;
    double rest = 0;  // the row's mass outside `keys`
};
std::vector<TopKeys> top_keys(const MatrixRef& matrix, int q0, int q1, int k);

// Tokens of two sequences matched by text, in order (a longest common
// subsequence): pairs of (index in a, index in b).
std::vector<std::pair<int, int>> align_tokens(const TokenSequence& a, const TokenSequence& b);

// b - a on the aligned cells: [query pairs][key pairs], row-major.
std::vector<float> difference(const MatrixRef& a, const MatrixRef& b,
                              const std::vector<std::pair<int, int>>& query_pairs,
                              const std::vector<std::pair<int, int>>& key_pairs);

// Base64 of float32 little-endian values (the page's Float32Array).
std::string base64_floats(const std::vector<float>& values);

}  // namespace attnviz::serve
