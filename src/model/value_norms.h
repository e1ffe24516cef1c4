// Value norms for value-weighted attention (Kobayashi et al. 2020): how far
// each key moves the output per unit of attention, ‖v_k^h W_O^h‖, where
// v_k^h is head h's value vector of key k and W_O^h the head's slice of the
// output projection (its bias is not part of any key's contribution).
// Architectures call keep_value_norms once per layer, next to attend().
#pragma once

#include "attnviz/trace.h"
#include "runtime/linear.h"

namespace attnviz::model {

// Sizes block.value_norms when `keep` (RunOptions::keep_value_norms): the kept
// layers and heads of the block's capture.
void start_value_norms(AttentionBlock& block, bool keep);

// Writes model layer `layer`'s norms when the block keeps them (its kept heads). values: [n_keys,
// *] rows value_stride floats apart, kv head g's vector at column g * head_dim (grouped-query heads
// share theirs, as the attention does); out_proj: the layer's output projection, n_heads * head_dim
// wide.
void keep_value_norms(AttentionBlock& block, int layer, const float* values, int value_stride,
                      int head_dim, int n_kv_heads, const runtime::Linear& out_proj);

}  // namespace attnviz::model
