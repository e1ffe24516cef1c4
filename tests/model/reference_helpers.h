// Shared by the model tests: reading a PyTorch reference (reference.safetensors
// from tools/reference/*.py) and comparing against it, with the largest
// difference and the first mismatch in the failure message.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnviz/encoding.h"
#include "io/tensors.h"

namespace attnviz::testing {

// A view into the memory-mapped reference (safetensors data is 8-byte aligned,
// F32 tensors start at multiples of 4): no copy of multi-GB attention tensors.
inline std::span<const float> reference_floats(const io::TensorSet& set, const std::string& name) {
    const io::TensorView* t = set.find(name);
    if (!t) throw std::runtime_error("reference has no tensor " + name);
    if (t->dtype != io::DType::f32) throw std::runtime_error(name + " is not F32");
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0)
        throw std::runtime_error(name + " is not 4-byte aligned");
    return {reinterpret_cast<const float*>(t->data), t->numel()};
}

inline std::vector<float> floats(const io::TensorView& tensor) {
    std::vector<float> values(tensor.numel());
    EXPECT_EQ(tensor.dtype, io::DType::f32) << tensor.name;
    std::memcpy(values.data(), tensor.data, tensor.n_bytes);
    return values;
}

inline std::vector<int64_t> ints(const io::TensorView& tensor) {
    std::vector<int64_t> values(tensor.numel());
    EXPECT_EQ(tensor.dtype, io::DType::i64) << tensor.name;
    std::memcpy(values.data(), tensor.data, tensor.n_bytes);
    return values;
}

// The reference's input as an Encoding (ids, type ids, mask).
inline Encoding reference_encoding(const io::TensorSet& reference) {
    Encoding encoding;
    for (int64_t id : ints(*reference.find("input_ids")))
        encoding.ids.push_back(static_cast<int32_t>(id));
    for (int64_t id : ints(*reference.find("token_type_ids")))
        encoding.type_ids.push_back(static_cast<int32_t>(id));
    for (int64_t m : ints(*reference.find("attention_mask")))
        encoding.attention_mask.push_back(static_cast<uint8_t>(m));
    encoding.tokens.resize(encoding.ids.size());
    return encoding;
}

// Passes when every |actual - expected| <= tolerance; otherwise reports the
// largest difference and the first index over the tolerance.
inline ::testing::AssertionResult all_close(const std::vector<float>& actual,
                                            const std::vector<float>& expected, float tolerance) {
    if (actual.size() != expected.size())
        return ::testing::AssertionFailure()
               << "size " << actual.size() << " vs expected " << expected.size();
    double max_difference = 0;
    size_t worst = 0, first = actual.size();
    for (size_t i = 0; i < actual.size(); ++i) {
        const double difference = std::fabs(static_cast<double>(actual[i]) - expected[i]);
        if (!(difference <= tolerance) && first == actual.size()) first = i;
        if (!(difference <= max_difference)) max_difference = difference, worst = i;
    }
    if (first == actual.size())
        return ::testing::AssertionSuccess() << "max difference " << max_difference;
    return ::testing::AssertionFailure()
           << "max difference " << max_difference << " at index " << worst << " (" << actual[worst]
           << " vs " << expected[worst] << "); first over " << tolerance << " at index " << first
           << " (" << actual[first] << " vs " << expected[first] << ")";
}

// The error model for base-size models, where float32 rounding approaches 1e-5.
// Two float32 forwards of one network that sum in different orders (attnviz:
// oneDNN's blocked kernels; the reference: PyTorch's BLAS) both stray from the
// exact result, by amounts that grow with width, depth and length alike. So the
// bound is relative to PyTorch's own error: attnviz's largest error against the
// float64 forward must stay within kFloat32ErrorFactor times PyTorch float32's
// largest error against it, plus the float64 result's own rounding to float32
// when stored (2^-24 relative; 2^-23 of the tensor's largest magnitude covers it).
// Measured ratios are printed; they sit near 1 (docs/performance.md, "accuracy").
inline constexpr double kFloat32ErrorFactor = 4.0;

inline ::testing::AssertionResult within_float32_error(const std::string& what,
                                                       std::span<const float> got,
                                                       std::span<const float> torch_float32,
                                                       std::span<const float> float64) {
    if (got.size() != float64.size() || torch_float32.size() != float64.size())
        return ::testing::AssertionFailure()
               << what << ": " << got.size() << " values, reference has " << torch_float32.size()
               << " and " << float64.size();
    double scale = 0, torch_error = 0, our_error = 0;
    size_t worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(float64[i])));
        torch_error =
            std::max(torch_error, std::fabs(static_cast<double>(torch_float32[i]) - float64[i]));
        const double d = std::fabs(static_cast<double>(got[i]) - float64[i]);
        if (!(d <= our_error)) our_error = d, worst = i;  // NaN counts as worst
    }
    const double bound = kFloat32ErrorFactor * torch_error + std::ldexp(scale, -23);
    std::printf("  %s: attnviz error %.3g, PyTorch float32 error %.3g (ratio %.2f), bound %.3g\n",
                what.c_str(), our_error, torch_error,
                torch_error > 0 ? our_error / torch_error : 0.0, bound);
    if (our_error <= bound) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << what << ": attnviz differs from the float64 forward by " << our_error
           << " at flat index " << worst << " (got " << got[worst] << ", float64 " << float64[worst]
           << "); PyTorch float32 differs by at most " << torch_error << ", bound " << bound;
}

}  // namespace attnviz::testing
