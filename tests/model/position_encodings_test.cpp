// Position encodings against the PyTorch reference: T5's bucket of every relative
// position (exact), rotary tables and Marian's sinusoids (float tolerance).
#include "model/position_encodings.h"

#include <gtest/gtest.h>

#include <cmath>

#include "arch_reference_check.h"
#include "attnviz/error.h"

namespace attnviz {
namespace {

using testing::reference_ints;

void expect_buckets(const std::string& fixture, int num_buckets, int max_distance) {
    io::TensorSet ref = io::TensorSet::open_safetensors(std::filesystem::path(ATTNVIZ_TEST_DATA) /
                                                        "arch" / fixture / "reference.safetensors");
    for (bool bidirectional : {true, false}) {
        std::vector<int64_t> want =
            reference_ints(ref, bidirectional ? "t5_buckets.bidirectional" : "t5_buckets.causal");
        const int radius = static_cast<int>(want.size() / 2);
        int mismatches = 0;
        for (int r = -radius; r <= radius; ++r) {
            int got = t5_relative_position_bucket(r, bidirectional, num_buckets, max_distance);
            if (got != want[r + radius] && mismatches++ < 5)
                ADD_FAILURE() << fixture << " relative position " << r << " bidirectional "
                              << bidirectional << ": bucket " << got << ", reference "
                              << want[r + radius];
        }
        EXPECT_EQ(mismatches, 0);
    }
}

TEST(T5RelativePositionBucket, EveryPositionMatchesReference) {
    expect_buckets("t5_tiny", 32, 128);
    expect_buckets("t5_v1_1_gated", 16, 20);
}

TEST(SinusoidalPositions, FirstHalfSinSecondHalfCos) {
    std::vector<float> table = sinusoidal_positions(4, 6);
    // position 3, pair j=1: angle 3 / 10000^(2/6)
    double angle = 3 / std::pow(10000.0, 2.0 / 6);
    EXPECT_FLOAT_EQ(table[3 * 6 + 1], static_cast<float>(std::sin(angle)));
    EXPECT_FLOAT_EQ(table[3 * 6 + 3 + 1], static_cast<float>(std::cos(angle)));
    EXPECT_FLOAT_EQ(table[0 * 6 + 3], 1.0f);  // cos(0)
}

TEST(Rope, UnsupportedTypeNamesSupportedOnes) {
    nlohmann::json config = {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}};
    try {
        rope_config_from_json(config, 64, 2048, "config.json");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("yarn"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("llama3"), std::string::npos);
    }
}

TEST(Rope, Llama3KeepsShortWavelengthsAndDividesLongOnes) {
    RopeConfig rope;
    rope.rotary_dim = 128;
    rope.theta = 500000.0;
    rope.type = "llama3";
    rope.factor = 8;
    rope.low_freq_factor = 1;
    rope.high_freq_factor = 4;
    rope.original_max_positions = 8192;
    std::vector<float> scaled = rope_inverse_frequencies(rope, 16);
    rope.type = "default";
    std::vector<float> plain = rope_inverse_frequencies(rope, 16);
    EXPECT_EQ(scaled.front(), plain.front());             // wavelength 2*pi: kept
    EXPECT_FLOAT_EQ(scaled.back(), plain.back() / 8.0f);  // longest: divided by factor
}

}  // namespace
}  // namespace attnviz
