// ALiBi (BLOOM, Falcon with alibi): the slopes against the paper's values, and
// the trace's score bias (the neuron view's bias column) against the bias the
// PyTorch reference adds, shared by every layer.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "arch_reference_check.h"
#include "attnviz/memory.h"
#include "model/alibi.h"
#include "model/network.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;

// Press et al.: n heads (a power of two) get 2^(-8/n), 2^(-16/n), ...; other counts
// take the largest power of two below and every other slope of the next one.
TEST(Alibi, SlopesAreThePapersGeometricSequence) {
    const std::vector<float> eight = alibi_slopes(8);
    ASSERT_EQ(eight.size(), 8u);
    for (int h = 0; h < 8; ++h) EXPECT_EQ(eight[h], std::ldexp(1.0f, -(h + 1))) << h;
    // 6 heads: 2^-2, 2^-4, 2^-6, 2^-8 (n = 4), then 2^-1, 2^-3 (odd powers of n = 8's base)
    const std::vector<float> six = alibi_slopes(6);
    const float want[] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
    ASSERT_EQ(six.size(), 6u);
    for (int h = 0; h < 6; ++h) EXPECT_EQ(six[h], want[h]) << h;
}

TEST(Alibi, BiasIsSlopeTimesKeyPositionCountingVisibleKeys) {
    const uint8_t mask[] = {1, 0, 1, 1};
    const std::vector<float> bias = alibi_bias(2, 4, mask, AlibiRounding::float32);
    // head 1 (slope 2^-8 for two heads: base 2^-4, powers 1, 2), every query row alike
    const float slope = std::ldexp(1.0f, -8);
    for (int q = 0; q < 4; ++q) {
        const float* row = bias.data() + (4 + q) * 4;
        EXPECT_EQ(row[0], 0.0f);
        EXPECT_EQ(row[1], 0.0f);  // padding sits at 0
        EXPECT_EQ(row[2], slope * 1);
        EXPECT_EQ(row[3], slope * 2);
    }
    // 16 heads: slope 0 is 2^-0.5. Falcon rounds it to bfloat16 (0.70703125) and rounds
    // the product too: 0.70703125 * 3 = 2.12109375 -> 2.125 (bfloat16 steps 2^-6 above 2)
    const std::vector<float> bf16 = alibi_bias(16, 4, nullptr, AlibiRounding::bfloat16);
    EXPECT_EQ(bf16[1], 0.70703125f);
    EXPECT_EQ(bf16[3], 2.125f);
    const std::vector<float> fp32 = alibi_bias(16, 4, nullptr, AlibiRounding::float32);
    EXPECT_EQ(fp32[1], alibi_slopes(16)[0]);
    EXPECT_NEAR(fp32[1], 0.70710678f, 1e-7f);
}

void expect_alibi_bias_matches_reference(const std::string& name) {
    SCOPED_TRACE(name);
    const fs::path folder = fs::path(ATTNVIZ_TEST_DATA) / "arch" / name;
    LoadedNetwork loaded = load_network(folder);
    const io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    const Encoding source = testing::encoding_of(testing::reference_ids(ref, "input_ids"));
    RunOptions options;
    options.keep_queries_keys = true;
    options.threads = 1;
    const ForwardOutput out = run_network(*loaded.network, {&source, nullptr}, options);
    ASSERT_EQ(out.blocks.size(), 1u);
    const AttentionBlock& block = out.blocks[0];
    EXPECT_EQ(block.score_form, ScoreForm::scaled_dot_plus_bias);
    ASSERT_EQ(block.score_bias_layers, 1) << "one ALiBi bias for every layer";
    const std::span<const float> want = testing::reference_floats(ref, "self.score_bias");
    ASSERT_EQ(want.size(), block.score_bias.size());
    float largest = 0;
    for (float v : want) largest = std::max(largest, std::fabs(v));
    ASSERT_GT(largest, 0.0f);
    for (int layer = 0; layer < block.n_layers; ++layer)
        EXPECT_TRUE(testing::close_to_reference(
            "score bias of layer " + std::to_string(layer),
            std::span<const float>(block.score_bias_of(layer, 0), want.size()), want, 0.0f, 1e-6f));
}

TEST(Alibi, BloomBiasIsTheReferencesAlibiTerm) {
    expect_alibi_bias_matches_reference("bloom_tiny");
    expect_alibi_bias_matches_reference("bloom_six_heads_post_layernorm_residual");
}

TEST(Alibi, FalconBiasIsTheReferencesBfloat16AlibiTimesTheScale) {
    expect_alibi_bias_matches_reference("falcon_alibi_sequential");
}

TEST(Alibi, RotaryFalconHasNoBias) {
    const fs::path folder = fs::path(ATTNVIZ_TEST_DATA) / "arch" / "falcon_tiny";
    LoadedNetwork loaded = load_network(folder);
    const Encoding source = testing::encoding_of({5, 6, 7});
    RunOptions options;
    options.keep_queries_keys = true;
    const ForwardOutput out = run_network(*loaded.network, {&source, nullptr}, options);
    EXPECT_FALSE(out.blocks.at(0).has_score_bias());
}

// The memory estimate counts the [H, T, T] ALiBi bias the forward builds, and,
// when queries and keys are kept, its copy in the trace with the next layer's,
// built to be compared with it (keep_score_bias).
TEST(Alibi, MemoryEstimateCountsTheBias) {
    const ModelConfig bloom =
        read_model_config(fs::path(ATTNVIZ_TEST_DATA) / "arch" / "bloom_tiny");
    EXPECT_EQ(bloom.position_embedding_type, "alibi");
    MemoryShape shape;
    shape.tokens = 100;
    shape.keep_queries_keys = true;
    const MemoryEstimate estimate = estimate_forward_memory(bloom, shape);
    const uint64_t T = 100, H = 4, L = 2, Dh = 8, D = 32, I = 128, bias = H * T * T * 4;
    EXPECT_EQ(estimate.attention, L * H * T * T * 4);
    EXPECT_EQ(estimate.queries_keys, 2 * L * H * T * Dh * 4 + 2 * bias);
    // x, h, q|k|v, context, the feed-forward per token, the bias, and the process
    EXPECT_EQ(estimate.activations, T * (6 * D + I) * 4 + bias + kProcessBaselineBytes);
    const ModelConfig rotary =
        read_model_config(fs::path(ATTNVIZ_TEST_DATA) / "arch" / "falcon_tiny");
    EXPECT_NE(rotary.position_embedding_type, "alibi");
}

}  // namespace
}  // namespace attnviz::model
