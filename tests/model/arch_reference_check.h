// Compares an AttentionTrace with a reference.safetensors written by
// tools/reference/arch_reference.py: every attention tensor, and the queries,
// keys and hidden states when the trace kept them. Tiny models: attentions within
// 1e-5 absolute, activations within 1e-5 of the tensor's largest magnitude.
// Base-size models: within an error model against a float64 run
// (within_float32_error). On a mismatch it names the tensor, the largest
// difference and where it is.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "attnviz/trace.h"
#include "io/tensors.h"
#include "reference_helpers.h"

namespace attnviz::testing {

inline constexpr float kArchTolerance = 1e-5f;

inline std::vector<int64_t> reference_ints(const io::TensorSet& set, const std::string& name) {
    const io::TensorView* t = set.find(name);
    if (!t) throw std::runtime_error("reference has no tensor " + name);
    if (t->dtype != io::DType::i64) throw std::runtime_error(name + " is not I64");
    std::vector<int64_t> out(t->numel());
    std::memcpy(out.data(), t->data, t->n_bytes);
    return out;
}

inline std::vector<int32_t> reference_ids(const io::TensorSet& set, const std::string& name) {
    std::vector<int64_t> wide = reference_ints(set, name);
    return std::vector<int32_t>(wide.begin(), wide.end());
}

// An unpadded single-sequence Encoding of ids, as the references take them.
inline Encoding encoding_of(const std::vector<int32_t>& ids) {
    Encoding e;
    e.ids = ids;
    e.type_ids.assign(ids.size(), 0);
    e.attention_mask.assign(ids.size(), 1);
    return e;
}

inline std::vector<int64_t> reference_shape(const io::TensorSet& set, const std::string& name) {
    const io::TensorView* t = set.find(name);
    if (!t) throw std::runtime_error("reference has no tensor " + name);
    return t->shape;
}

// Queries and keys are activations, not probabilities: their size grows with
// depth (|q| up to ~10 after 12 random layers), and float32 sums in another
// order (oneDNN vs. PyTorch's BLAS) differ by ~1e-6 of that size per layer. They
// must match within 1e-5 times the tensor's largest magnitude (at least 1e-5).
inline constexpr float kArchRelativeTolerance = 1e-5f;

// Max |a - b| over the tensor; reports the first index past
// max(tolerance, relative * max finite |want|). NaN matches NaN only, inf the
// same inf only (non-finite weights give them where PyTorch gives them).
inline ::testing::AssertionResult close_to_reference(const std::string& what,
                                                     std::span<const float> got,
                                                     std::span<const float> want,
                                                     float tolerance = kArchTolerance,
                                                     float relative = 0.0f) {
    if (got.size() != want.size())
        return ::testing::AssertionFailure()
               << what << ": " << got.size() << " values, reference has " << want.size();
    if (relative > 0) {
        float scale = 0;
        for (float w : want)
            if (std::isfinite(w)) scale = std::max(scale, std::fabs(w));
        tolerance = std::max(tolerance, relative * scale);
    }
    double max_diff = 0;
    size_t worst = 0, first_bad = SIZE_MAX;
    for (size_t i = 0; i < got.size(); ++i) {
        // NaN where torch has NaN, inf where it overflows
        if ((std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i]) continue;
        double d = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(d <= max_diff)) max_diff = d, worst = i;  // NaN counts as worst
        if (!(d <= tolerance) && first_bad == SIZE_MAX) first_bad = i;
    }
    if (first_bad == SIZE_MAX) {
        std::printf("  %s: max |diff| %.3g (tolerance %.3g)\n", what.c_str(), max_diff, tolerance);
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << what << ": max |diff| " << max_diff << " at flat index " << worst << " (got "
           << got[worst] << ", want " << want[worst] << "); first index past " << tolerance << ": "
           << first_bad;
}

enum class Tolerance {
    absolute,        // kArchTolerance (queries, keys: relative to their size)
    float32_errors,  // within_float32_error against "<name>.float64"
};

// Checks one block of the trace against "<reference_name>.attentions" (and
// ".queries" / ".keys" when kept).
inline void expect_block_matches(const AttentionTrace& trace, const std::string& block_name,
                                 const io::TensorSet& ref, const std::string& reference_name,
                                 Tolerance tolerance = Tolerance::absolute) {
    const AttentionBlock* block = nullptr;
    for (const AttentionBlock& b : trace.blocks)
        if (b.name == block_name) block = &b;
    ASSERT_NE(block, nullptr) << "trace has no block " << block_name;
    std::vector<int64_t> shape = reference_shape(ref, reference_name + ".attentions");
    ASSERT_EQ(shape.size(), 4u);
    EXPECT_EQ(block->n_layers, shape[0]) << block_name;
    EXPECT_EQ(block->n_heads, shape[1]) << block_name;
    EXPECT_EQ(block->n_queries, shape[2]) << block_name;
    EXPECT_EQ(block->n_keys, shape[3]) << block_name;
    auto check = [&](const char* tensor, std::span<const float> got, float relative) {
        const std::string name = reference_name + "." + tensor;
        const std::string what = block_name + " " + tensor;
        if (tolerance == Tolerance::float32_errors)
            EXPECT_TRUE(within_float32_error(what, got, reference_floats(ref, name),
                                             reference_floats(ref, name + ".float64")));
        else
            EXPECT_TRUE(close_to_reference(what, got, reference_floats(ref, name), kArchTolerance,
                                           relative));
    };
    check("attentions", block->probs, 0.0f);
    if (block->has_queries_keys() && ref.find(reference_name + ".score_scale")) {
        // per-layer scales (GPT-2's scale_attn_by_inverse_layer_idx)
        const std::span<const float> scales =
            reference_floats(ref, reference_name + ".score_scale");
        ASSERT_EQ(block->layer_score_scales.size(), scales.size()) << block_name;
        for (size_t layer = 0; layer < scales.size(); ++layer)
            EXPECT_FLOAT_EQ(block->layer_score_scale(static_cast<int>(layer)), scales[layer])
                << block_name << " layer " << layer;
    }
    if (block->has_queries_keys()) {
        check("queries", block->queries, kArchRelativeTolerance);
        check("keys", block->keys, kArchRelativeTolerance);
    }
}

// Checks the trace's hidden states of one sequence against the reference's
// `reference_name` tensor [states, tokens, hidden] ("hidden_states",
// "encoder_hidden_states", "decoder_hidden_states"). Hidden states are the
// residual stream, activations like the queries and keys: the same relative
// tolerance against the tensor's largest magnitude applies.
inline void expect_hidden_states_match(const AttentionTrace& trace, int sequence,
                                       const io::TensorSet& ref,
                                       const std::string& reference_name) {
    const HiddenStates* states = nullptr;
    for (const HiddenStates& s : trace.hidden_states)
        if (s.sequence == sequence) {
            ASSERT_EQ(states, nullptr) << "two hidden states for sequence " << sequence;
            states = &s;
        }
    ASSERT_NE(states, nullptr) << "trace has no hidden states for sequence " << sequence;
    std::vector<int64_t> shape = reference_shape(ref, reference_name);
    ASSERT_EQ(shape.size(), 3u) << reference_name;
    EXPECT_EQ(states->n_states, shape[0]) << reference_name;
    EXPECT_EQ(states->n_tokens, shape[1]) << reference_name;
    EXPECT_EQ(states->hidden_size, shape[2]) << reference_name;
    EXPECT_TRUE(close_to_reference(reference_name, states->values,
                                   reference_floats(ref, reference_name), kArchTolerance,
                                   kArchRelativeTolerance));
}

// Runs tools/reference/arch_reference.py (python3 + torch are required: a missing
// interpreter is a test failure, not a skip). Returns the output folder.
inline std::filesystem::path generate_reference(const std::string& name, const std::string& args) {
    std::filesystem::path out = std::filesystem::temp_directory_path() /
                                ("attnviz-arch-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(out);
    std::string command = "/usr/bin/python3 " ATTNVIZ_SOURCE_DIR
                          "/tools/reference/arch_reference.py --out '" +
                          out.string() + "' " + args;
    int status = std::system(command.c_str());
    if (status != 0) throw std::runtime_error("reference generator failed: " + command);
    return out;
}

inline void copy_tokenizer(const std::string& hf_model, const std::filesystem::path& folder) {
    std::filesystem::path from = std::filesystem::path(ATTNVIZ_TEST_DATA) / "hf" / hf_model;
    for (const auto& entry : std::filesystem::directory_iterator(from)) {
        std::string file = entry.path().filename().string();
        if (file == "config.json" || file == "generation_config.json") continue;
        std::filesystem::copy_file(entry.path(), folder / file,
                                   std::filesystem::copy_options::overwrite_existing);
    }
}

inline std::string join_ids(const std::vector<int32_t>& ids) {
    std::ostringstream out;
    for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
    return out.str();
}

}  // namespace attnviz::testing
