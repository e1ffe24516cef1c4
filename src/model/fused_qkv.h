// Checkpoints that fuse query, key and value into one projection whose output
// rows are grouped by head rather than [all queries | all keys | all values]:
// GPT-NeoX and BLOOM ([h0: q k v | h1: q k v | ...]) and Falcon (per key/value
// group: its query heads, then its key and value head). Reordering the rows once
// at load gives the layout the attention kernel reads, so the forward pass
// stays one matmul and one attention call.
#pragma once

#include <vector>

#include "runtime/linear.h"

namespace attnviz::model {

// The parts of one runtime::Linear whose output is [queries | keys | values]
// (n_groups * queries_per_group query heads, n_groups key heads, n_groups value
// heads), from a torch [out, in] weight whose rows come as n_groups groups of
// (queries_per_group query heads, one key head, one value head), head_dim rows
// each. bias may be null.
std::vector<runtime::LinearPart> grouped_qkv_parts(const float* weight, const float* bias, int in,
                                                   int n_groups, int queries_per_group,
                                                   int head_dim);

}  // namespace attnviz::model
