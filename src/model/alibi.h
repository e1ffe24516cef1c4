// ALiBi (Press et al., "Train Short, Test Long"), as BLOOM and Falcon compute
// it (build_alibi_tensor in modeling_bloom.py / modeling_falcon.py): each head
// adds slope_h * (position of the key) to its scores. Softmax ignores a constant
// per row, so this is the paper's slope_h * (key - query) bias; attnviz keeps
// the form the model adds, which the neuron view shows as its bias column.
#pragma once

#include <cstdint>
#include <vector>

namespace attnviz::model {

// The slopes [n_heads] in float32: 2^(-8/n * i) for the largest power of two n
// <= n_heads, then every other slope of 2n for the remaining heads.
std::vector<float> alibi_slopes(int n_heads);

// How the bias is rounded: BLOOM multiplies float32 slopes by the positions;
// Falcon rounds the slopes to bfloat16 and multiplies in bfloat16.
enum class AlibiRounding { float32, bfloat16 };

// The bias [n_heads, n_tokens, n_tokens] times `factor`: slope_h * position of
// key k, where positions count the visible tokens from 0 (padding keys: 0).
// key_mask: [n_tokens], 0 = padding, or null.
std::vector<float> alibi_bias(int n_heads, int n_tokens, const uint8_t* key_mask,
                              AlibiRounding rounding, float factor = 1.0f);

}  // namespace attnviz::model
