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
        read_rope_config(model::ConfigReader(config, "config.json"), 64, 2048);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("yarn"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("llama3"), std::string::npos);
    }
}

// Settings that make some rotary angle infinite or NaN (issue 12: they gave
// attention rows of zeros) are refused at load, naming the key.
TEST(Rope, ImpossibleSettingsAreRefusedNamingTheKey) {
    const nlohmann::json llama3 = {{"rope_type", "llama3"},
                                   {"factor", 8.0},
                                   {"low_freq_factor", 1.0},
                                   {"high_freq_factor", 4.0},
                                   {"original_max_position_embeddings", 8192}};
    const auto with = [&](const char* key, const nlohmann::json& value) {
        nlohmann::json scaling = llama3;
        scaling[key] = value;
        return nlohmann::json{{"rope_scaling", scaling}};
    };
    const struct {
        nlohmann::json config;
        int head_dim, max_positions;
        const char* message;
    } cases[] = {
        {{{"rope_theta", 0}}, 64, 2048, "\"rope_theta\" is 0.0; rotary embeddings need a positive"},
        {{{"rope_theta", -10000.0}}, 64, 2048, "\"rope_theta\" is -10000.0"},
        {{{"rope_scaling", {{"type", "linear"}, {"factor", 0}}}},
         64,
         2048,
         "\"rope_scaling.factor\" is 0.0"},
        {{{"rope_scaling", {{"type", "linear"}, {"factor", -2}}}},
         64,
         2048,
         "\"rope_scaling.factor\" is -2.0"},
        {{{"rope_scaling", {{"type", "dynamic"}, {"factor", 2}}}},
         64,
         0,
         "\"max_position_embeddings\" is 0"},
        {{{"rope_scaling", {{"type", "dynamic"}, {"factor", 2}}}},
         2,
         2048,
         "head_dim 2 is too small"},
        {with("factor", 0), 64, 2048, "\"rope_scaling.factor\" is 0.0"},
        {with("low_freq_factor", 0), 64, 2048, "\"rope_scaling.low_freq_factor\" is 0.0"},
        {with("high_freq_factor", 0), 64, 2048, "\"rope_scaling.high_freq_factor\" is 0.0"},
        {with("high_freq_factor", 1.0), 64, 2048,
         "\"rope_scaling.low_freq_factor\" (1.0) must be less than"},
        {with("original_max_position_embeddings", 0), 64, 2048,
         "\"rope_scaling.original_max_position_embeddings\" is 0, not a positive length"},
        {with("original_max_position_embeddings", 8192.5), 64, 2048,
         "\"rope_scaling.original_max_position_embeddings\" is 8192.5, not a size"},
        {with("factor", "8"), 64, 2048, "\"rope_scaling.factor\" is \"8\", not a number"},
        {{{"rope_theta", "10000"}}, 64, 2048, "\"rope_theta\" is \"10000\", not a number"},
        {{{"rope_theta", true}}, 64, 2048, "\"rope_theta\" is true, not a number"},
        {{{"rope_scaling", "linear"}}, 64, 2048, "\"rope_scaling\" is \"linear\", not an object"},
        {{{"rope_scaling", {{"factor", 2}}}},
         64,
         2048,
         "missing \"rope_scaling.rope_type\" or \"rope_scaling.type\""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.config.dump());
        try {
            read_rope_config(model::ConfigReader(c.config, "config.json"), c.head_dim,
                             c.max_positions);
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(std::string("config.json: ")), std::string::npos);
            EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
        }
    }
    // what stays allowed: null counts as absent, and a linear factor below 1
    // (transformers only warns) still gives finite angles
    const RopeConfig rope = read_rope_config(
        model::ConfigReader(
            {{"rope_theta", nullptr}, {"rope_scaling", {{"type", "linear"}, {"factor", 0.5}}}},
            "config.json"),
        64, 2048);
    EXPECT_EQ(rope.theta, 10000.0);
    for (float f : rope_inverse_frequencies(rope, 16)) EXPECT_TRUE(std::isfinite(f));
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
