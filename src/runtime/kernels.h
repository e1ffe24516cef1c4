// Row-wise kernels over row-major float buffers: normalization, softmax,
// activations. Each has a plain reference twin (the definition, in loops) that
// tests compare the fast version against. x is [rows, cols] throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace attnviz::runtime {

// out = (x - mean) / sqrt(var + eps) * weight + bias, per row (torch.nn.LayerNorm).
// out may equal x. bias may be null (no bias).
void layer_norm(const float* x, const float* weight, const float* bias, float* out, int rows,
                int cols, float eps);
void layer_norm_reference(const float* x, const float* weight, const float* bias, float* out,
                          int rows, int cols, float eps);

// out = x / sqrt(mean(x^2) + eps) * weight, per row (T5LayerNorm, LlamaRMSNorm).
void rms_norm(const float* x, const float* weight, float* out, int rows, int cols, float eps);
void rms_norm_reference(const float* x, const float* weight, float* out, int rows, int cols,
                        float eps);

// In place, per row, as torch.softmax: a NaN or +inf anywhere in a row makes the
// whole row NaN, and -inf entries (masked keys) come out exactly 0. One
// convention of attnviz's: a row that is all -inf (a query that sees no key)
// comes out all 0, where torch gives NaN.
void softmax_rows(float* x, int rows, int cols);
// One row, on the calling thread; false when the row was all -inf (and is now all 0).
bool softmax_row(float* x, int cols);
void softmax_rows_reference(float* x, int rows, int cols);

// Softmax in steps, for attention's blocked kernels (one pass each over a row
// that stays in cache; AVX-512 where the build targets it).
struct RowMax {
    float max;        // -inf when every entry is -inf
    bool non_finite;  // a NaN or +inf entry: torch.softmax makes the row NaN
};
// row[i] *= scale, then -inf where the key is hidden (i >= visible, or
// key_mask[i] == 0 when key_mask is given); returns the row's max.
RowMax scale_mask_max(float* row, int n, float scale, const uint8_t* key_mask, int visible);
// row[i] = e^(row[i] - max) (exactly 0 for -inf entries); returns their sum.
float exp_shifted_sum(float* row, int n, float max);
// row[i] *= factor
void scale_row(float* row, int n, float factor);

// Hugging Face's activations (activations.py ACT2FN) by config name.
enum class Activation { none, gelu_erf, gelu_tanh, quick_gelu, relu, relu6, silu, tanh, sigmoid };
// "gelu" -> gelu_erf, "gelu_new" -> gelu_tanh, ... An unknown name is an Error listing the known.
Activation activation_from_name(std::string_view name);
std::string_view activation_name(Activation activation);
// x[i] = f(x[i]), in the definition's own terms (std::erf, std::tanh).
void activate_reference(Activation activation, float* x, size_t n);

// y[i] += x[i]
void add_in_place(float* y, const float* x, size_t n);

}  // namespace attnviz::runtime
