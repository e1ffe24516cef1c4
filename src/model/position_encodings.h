// Position encodings other than a learned table: rotary embeddings (Llama family),
// T5's relative position buckets, and Marian's fixed sinusoids. Each one repeats
// the float32 arithmetic of the transformers code it comes from, step by step,
// because the views compare attention probabilities to 1e-5: a rotary angle
// computed in double instead of float drifts by 1e-4 radians at position 2048.
#pragma once

#include <string>
#include <vector>

#include "attnviz/model.h"
#include "model/config.h"

namespace attnviz {

// config.json's rope_theta and rope_scaling ("linear", "dynamic", "llama3" or none),
// as modeling_rope_utils.py reads them.
struct RopeConfig {
    int rotary_dim = 0;  // head_dim
    double theta = 10000.0;
    std::string type = "default";
    double factor = 1.0;
    int max_positions = 0;  // max_position_embeddings, for "dynamic"
    double low_freq_factor = 1.0, high_freq_factor = 4.0;
    int original_max_positions = 0;  // llama3's original_max_position_embeddings
};

// Reads rope_theta and rope_scaling from config.json. An unsupported rope type
// is an Error naming it and the supported ones; a setting that would make the
// angles infinite or NaN (rope_theta <= 0, a factor <= 0,
// original_max_position_embeddings <= 0, low_freq_factor >= high_freq_factor,
// dynamic scaling without max_position_embeddings or with head_dim 2) is an
// Error naming the key.
RopeConfig read_rope_config(const model::ConfigReader& reader, int head_dim, int max_positions);

// The inverse frequencies [rotary_dim / 2] for a sequence of seq_len tokens
// ("dynamic" scaling depends on the length).
std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int seq_len);

// cos and sin tables [seq_len, rotary_dim]: angle = position * inv_freq[i % (dim/2)].
struct RopeTables {
    int seq_len = 0, dim = 0;
    std::vector<float> cos, sin;
};
RopeTables rope_tables(const RopeConfig& rope, int seq_len);

// Rotates x [seq_len, *] in place (rows `stride` floats apart, head h at column
// h * head_dim), the "rotate_half" way: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
void apply_rope(float* x, int stride, int seq_len, int n_heads, int head_dim,
                const RopeTables& tables);

// T5's _relative_position_bucket for relative_position = key - query.
int t5_relative_position_bucket(int relative_position, bool bidirectional, int num_buckets,
                                int max_distance);

// Marian's sinusoidal table [n_positions, dim]: sin in the first half, cos in the second.
std::vector<float> sinusoidal_positions(int n_positions, int dim);

}  // namespace attnviz
