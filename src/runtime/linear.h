// Linear layers y = act(x W^T + b). The first call multiplies by the
// checkpoint's weights in place; the second packs them, once, into oneDNN's
// blocked layout (its brgemm matmul then runs at the CPU's fp32 peak without
// re-packing panels on every call). linear_reference is the definition.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "runtime/kernels.h"

namespace attnviz::runtime {

// The matmuls' arithmetic. fp32 is the default and the one that matches the
// reference; bf16 rounds inputs and weights to bfloat16 (AVX-512 BF16),
// accumulating and writing fp32. Attention, norms and softmax stay fp32.
enum class Precision { fp32, bf16 };

// Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX-BF16), where
// the bf16 matmuls run at about twice the fp32 rate instead of being emulated.
bool cpu_has_native_bf16();

// Sets the precision of every Linear run on the calling thread; restores on exit.
class PrecisionScope {
public:
    explicit PrecisionScope(Precision precision);
    ~PrecisionScope();
    PrecisionScope(const PrecisionScope&) = delete;
    PrecisionScope& operator=(const PrecisionScope&) = delete;

private:
    Precision previous_;
};

// How a checkpoint stores a weight: torch.nn.Linear keeps [out, in];
// GPT-2's Conv1D keeps [in, out].
enum class WeightLayout { out_in, in_out };

// One slice of a fused linear: several layers that read the same input
// (query, key, value) become one matmul whose outputs sit side by side.
struct LinearPart {
    const float* weight = nullptr;  // [out, in] or [in, out], per layout
    const float* bias = nullptr;    // [out], or null
    int out = 0;
};

class Linear {
public:
    Linear();
    // The weights are read by the forwards (and packed by the second), not
    // here: they must stay valid until on_packed runs.
    Linear(const float* weight, const float* bias, int in, int out,
           WeightLayout layout = WeightLayout::out_in, Activation activation = Activation::none,
           std::function<void()> on_packed = {});
    // Parts concatenated along the output: y = [x W0^T + b0, x W1^T + b1, ...].
    Linear(const std::vector<LinearPart>& parts, int in, WeightLayout layout = WeightLayout::out_in,
           Activation activation = Activation::none, std::function<void()> on_packed = {});
    ~Linear();
    Linear(Linear&&) noexcept;
    Linear& operator=(Linear&&) noexcept;

    // y [rows, out] = act(x [rows, in] W^T + b).
    void forward(const float* x, float* y, int rows) const;
    // y [rows, out] += x W^T + b (a residual connection; no activation).
    void forward_add(const float* x, float* y, int rows) const;

    int in() const { return in_; }
    int out() const { return out_; }

    struct Packed;

private:
    void run(const float* x, float* y, int rows, bool accumulate) const;
    void pack_locked() const;
    void pack_bf16_locked() const;
    void build_bias_locked() const;
    void run_bf16(const float* x, float* y, int rows, bool accumulate) const;
    void run_unpacked(const std::vector<LinearPart>& parts, const float* x, float* y, int rows,
                      bool accumulate) const;

    int in_ = 0, out_ = 0;
    Activation activation_ = Activation::none;
    std::unique_ptr<Packed> packed_;
};

// y [rows, out] = act(x [rows, in] W^T + b), three loops, weight [out, in] or [in, out].
void linear_reference(const float* x, const float* weight, const float* bias, float* y, int rows,
                      int in, int out, WeightLayout layout = WeightLayout::out_in,
                      Activation activation = Activation::none);

}  // namespace attnviz::runtime
