// Selective capture (CaptureOptions): which probabilities of a row a sparse
// capture keeps, and fp16 storage. Used by attend() (arch_blocks.cpp) as each
// layer's probabilities are computed, so that what is not kept is never stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz::model {

// The keys of `row` (n_keys probabilities) a sparse capture keeps, ascending:
//  - top_k: the k largest; of equal probabilities the lower key comes first;
//  - top_mass: the fewest largest (in that order) whose sum, in double, reaches
//    top_mass; all of the row's nonzero ones when it never does (rounding);
//  - both: the top_mass prefix, at most k long.
// Probabilities of exactly 0 (masked keys) are never kept. A NaN row keeps its
// first key, so that the NaN is stored and reported.
void select_row(const float* row, int n_keys, const CaptureOptions& capture,
                std::vector<int32_t>& keys);

// float -> IEEE binary16 bits, rounded to nearest even (overflow -> inf).
uint16_t float_to_half(float value);

// Checks the options against one block's layer and head counts: an Error names
// the flag (--layers, --heads, --top-k, --top-mass) and the valid range.
void check_capture(const CaptureOptions& capture, int n_layers, int n_heads,
                   const std::string& block_name);

}  // namespace attnviz::model
