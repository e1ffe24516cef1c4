// Shared by the model tests: reading a PyTorch reference (reference.safetensors
// from tools/reference/bert_reference.py) and comparing against it with the
// max difference and the first mismatch in the failure message.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "attnviz/encoding.h"
#include "io/tensors.h"

namespace attnviz::testing {

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

}  // namespace attnviz::testing
