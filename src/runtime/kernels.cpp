#include "runtime/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__)
// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "attnviz/error.h"

namespace attnviz::runtime {

// ---------------------------------------------------------------------------
// Normalization

void layer_norm(const float* x, const float* weight, const float* bias, float* out, int rows,
                int cols, float eps) {
#pragma omp parallel for schedule(static) if (rows > 16)
    for (int row = 0; row < rows; ++row) {
        const float* in = x + static_cast<size_t>(row) * cols;
        float* o = out + static_cast<size_t>(row) * cols;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < cols; ++i) sum += in[i];
        const float mean = sum / static_cast<float>(cols);
        float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
        for (int i = 0; i < cols; ++i) squares += (in[i] - mean) * (in[i] - mean);
        const float rstd = 1.0f / std::sqrt(squares / static_cast<float>(cols) + eps);
        if (bias) {
#pragma omp simd
            for (int i = 0; i < cols; ++i) o[i] = (in[i] - mean) * rstd * weight[i] + bias[i];
        } else {
#pragma omp simd
            for (int i = 0; i < cols; ++i) o[i] = (in[i] - mean) * rstd * weight[i];
        }
    }
}

void layer_norm_reference(const float* x, const float* weight, const float* bias, float* out,
                          int rows, int cols, float eps) {
    for (int row = 0; row < rows; ++row) {
        const float* in = x + static_cast<size_t>(row) * cols;
        double mean = 0, variance = 0;
        for (int i = 0; i < cols; ++i) mean += in[i];
        mean /= cols;
        for (int i = 0; i < cols; ++i) variance += (in[i] - mean) * (in[i] - mean);
        variance /= cols;
        const double rstd = 1.0 / std::sqrt(variance + eps);
        for (int i = 0; i < cols; ++i)
            out[static_cast<size_t>(row) * cols + i] =
                static_cast<float>((in[i] - mean) * rstd * weight[i] + (bias ? bias[i] : 0.0f));
    }
}

void rms_norm(const float* x, const float* weight, float* out, int rows, int cols, float eps) {
#pragma omp parallel for schedule(static) if (rows > 16)
    for (int row = 0; row < rows; ++row) {
        const float* in = x + static_cast<size_t>(row) * cols;
        float* o = out + static_cast<size_t>(row) * cols;
        float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
        for (int i = 0; i < cols; ++i) squares += in[i] * in[i];
        const float rstd = 1.0f / std::sqrt(squares / static_cast<float>(cols) + eps);
#pragma omp simd
        for (int i = 0; i < cols; ++i) o[i] = in[i] * rstd * weight[i];
    }
}

void rms_norm_reference(const float* x, const float* weight, float* out, int rows, int cols,
                        float eps) {
    for (int row = 0; row < rows; ++row) {
        const float* in = x + static_cast<size_t>(row) * cols;
        double squares = 0;
        for (int i = 0; i < cols; ++i) squares += static_cast<double>(in[i]) * in[i];
        const double rstd = 1.0 / std::sqrt(squares / cols + eps);
        for (int i = 0; i < cols; ++i)
            out[static_cast<size_t>(row) * cols + i] = static_cast<float>(in[i] * rstd * weight[i]);
    }
}

// ---------------------------------------------------------------------------
// Softmax

namespace {

constexpr float kExpLowest = -87.0f;  // below it e^x is 0 here (e^-87 ~ 1.6e-38)

// e^x in float, within 2 ulp on the range softmax sees (x <= 0): Cody-Waite
// reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r.
// Written so the compiler vectorizes it (no branches, bit-level 2^n).
[[maybe_unused]] inline float exp_approx(float x) {
    const float clamped = std::max(x, kExpLowest);
    const float n = std::nearbyint(clamped * 1.44269504088896341f);
    float r = clamped - n * 0.693359375f;
    r -= n * -2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    // Below -87 (masked keys are -inf) the result is exactly 0.
    return x < kExpLowest ? 0.0f : p * scale;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define ATTNVIZ_AVX512 1
// exp_approx on 16 lanes: the same reduction and polynomial.
inline __m512 exp_approx16(__m512 x) {
    const __m512 clamped = _mm512_max_ps(x, _mm512_set1_ps(kExpLowest));
    const __m512 n =
        _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), clamped);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __mmask16 kept = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLowest), _CMP_GE_OQ);
    return _mm512_maskz_mov_ps(kept, _mm512_scalef_ps(p, n));
}

// The lanes of a 16-wide step at i that lie below n.
inline __mmask16 lanes_below(int i, int n) {
    const int left = n - i;
    return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}
#endif

}  // namespace

RowMax scale_mask_max(float* row, int n, float scale, const uint8_t* key_mask, int visible) {
    constexpr float kInfinity = std::numeric_limits<float>::infinity();
    visible = std::clamp(visible, 0, n);
#ifdef ATTNVIZ_AVX512
    const __m512 factor = _mm512_set1_ps(scale), hidden = _mm512_set1_ps(-kInfinity);
    __m512 max = hidden;
    __mmask16 unordered = 0;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 lanes = lanes_below(i, n);
        __mmask16 shown = lanes_below(i, visible);
        if (key_mask)
            shown &= _mm_mask_cmpneq_epi8_mask(lanes, _mm_maskz_loadu_epi8(lanes, key_mask + i),
                                               _mm_setzero_si128());
        const __m512 v =
            _mm512_mask_mul_ps(hidden, shown, _mm512_maskz_loadu_ps(lanes, row + i), factor);
        _mm512_mask_storeu_ps(row + i, lanes, v);
        unordered |= _mm512_mask_cmp_ps_mask(lanes, v, v, _CMP_UNORD_Q);
        max = _mm512_mask_max_ps(max, lanes, max, v);
    }
    const float row_max = _mm512_reduce_max_ps(max);
    return {row_max, unordered != 0 || row_max == kInfinity};
#else
    float max = -kInfinity;
    int unordered = 0;  // NaN entries, which std::max would skip
    for (int i = 0; i < n; ++i) {
        const bool shown = i < visible && (!key_mask || key_mask[i]);
        row[i] = shown ? row[i] * scale : -kInfinity;
        max = std::max(max, row[i]);
        unordered += row[i] != row[i];
    }
    return {max, unordered > 0 || max == kInfinity};
#endif
}

float exp_shifted_sum(float* row, int n, float max) {
#ifdef ATTNVIZ_AVX512
    const __m512 shift = _mm512_set1_ps(max);
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 lanes = lanes_below(i, n);
        const __m512 e = exp_approx16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, row + i), shift));
        _mm512_mask_storeu_ps(row + i, lanes, e);
        sum = _mm512_mask_add_ps(sum, lanes, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
#else
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; ++i) {
        row[i] = exp_approx(row[i] - max);
        sum += row[i];
    }
    return sum;
#endif
}

void scale_row(float* row, int n, float factor) {
#pragma omp simd
    for (int i = 0; i < n; ++i) row[i] *= factor;
}

bool softmax_row(float* v, int cols) {
    constexpr float kInfinity = std::numeric_limits<float>::infinity();
    float max = -kInfinity;
    int unordered = 0;  // NaN entries, which std::max would skip
#pragma omp simd reduction(max : max) reduction(+ : unordered)
    for (int i = 0; i < cols; ++i) {
        max = std::max(max, v[i]);
        unordered += v[i] != v[i];
    }
    if (unordered > 0 || max == kInfinity) {  // torch: NaN, and inf - inf = NaN
        std::fill(v, v + cols, std::numeric_limits<float>::quiet_NaN());
        return true;
    }
    if (max == -kInfinity) {
        std::fill(v, v + cols, 0.0f);
        return false;
    }
    scale_row(v, cols, 1.0f / exp_shifted_sum(v, cols, max));
    return true;
}

void softmax_rows(float* x, int rows, int cols) {
#pragma omp parallel for schedule(static) if (static_cast <long>(rows) * cols > 32768)
    for (int row = 0; row < rows; ++row) softmax_row(x + static_cast<size_t>(row) * cols, cols);
}

void softmax_rows_reference(float* x, int rows, int cols) {
    for (int row = 0; row < rows; ++row) {
        float* v = x + static_cast<size_t>(row) * cols;
        double max = -std::numeric_limits<double>::infinity();
        bool nan = false;
        for (int i = 0; i < cols; ++i) {
            nan = nan || std::isnan(v[i]);
            max = std::max(max, static_cast<double>(v[i]));
        }
        if (nan || std::isinf(max)) {
            std::fill(v, v + cols,
                      max < 0 && !nan ? 0.0f : std::numeric_limits<float>::quiet_NaN());
            continue;
        }
        double sum = 0;
        for (int i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(v[i]) - max);
        for (int i = 0; i < cols; ++i)
            v[i] = static_cast<float>(std::exp(static_cast<double>(v[i]) - max) / sum);
    }
}

// ---------------------------------------------------------------------------
// Activations

namespace {

struct ActivationName {
    const char* name;
    Activation activation;
};
// activations.py's ACT2FN names. gelu_new, gelu_fast and gelu_pytorch_tanh are
// the same tanh approximation (their constants agree to 1e-10).
constexpr ActivationName kActivations[] = {
    {"gelu", Activation::gelu_erf},
    {"gelu_new", Activation::gelu_tanh},
    {"gelu_fast", Activation::gelu_tanh},
    {"gelu_pytorch_tanh", Activation::gelu_tanh},
    {"quick_gelu", Activation::quick_gelu},
    {"relu", Activation::relu},
    {"relu6", Activation::relu6},
    {"silu", Activation::silu},
    {"swish", Activation::silu},
    {"tanh", Activation::tanh},
    {"sigmoid", Activation::sigmoid},
    {"linear", Activation::none},
};

}  // namespace

Activation activation_from_name(std::string_view name) {
    for (const auto& entry : kActivations)
        if (name == entry.name) return entry.activation;
    std::string known;
    for (const auto& entry : kActivations)
        known += std::string(known.empty() ? "" : ", ") + entry.name;
    throw Error("unsupported activation \"" + std::string(name) + "\" (supported: " + known + ")");
}

std::string_view activation_name(Activation activation) {
    for (const auto& entry : kActivations)
        if (entry.activation == activation) return entry.name;
    return "none";
}

void activate_reference(Activation activation, float* x, size_t n) {
    constexpr double kSqrt2OverPi = 0.7978845608028654;
    for (size_t i = 0; i < n; ++i) {
        const double v = x[i];
        double y = v;
        switch (activation) {
            case Activation::none:
                break;
            case Activation::gelu_erf:
                y = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
                break;
            case Activation::gelu_tanh:
                y = 0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v)));
                break;
            case Activation::quick_gelu:
                y = v / (1.0 + std::exp(-1.702 * v));
                break;
            case Activation::relu:
                y = std::max(v, 0.0);
                break;
            case Activation::relu6:
                y = std::clamp(v, 0.0, 6.0);
                break;
            case Activation::silu:
                y = v / (1.0 + std::exp(-v));
                break;
            case Activation::tanh:
                y = std::tanh(v);
                break;
            case Activation::sigmoid:
                y = 1.0 / (1.0 + std::exp(-v));
                break;
        }
        x[i] = static_cast<float>(y);
    }
}

void add_in_place(float* y, const float* x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace attnviz::runtime
