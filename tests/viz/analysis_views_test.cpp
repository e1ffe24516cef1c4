// The page's analysis data (ViewOptions::analysis): rollout and flow as
// blocks of one head, the head statistics, and the word-level copy, decoded
// back from the payload against src/analysis (which tests/analysis checks
// against the numpy references).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "attnviz/analysis.h"
#include "attnviz/error.h"
#include "attnviz/head_stats.h"
#include "attnviz/views.h"
#include "viz/codec.h"
#include "viz/synthetic_traces.h"

namespace attnviz {
namespace {

nlohmann::json payload(const AttentionTrace& trace, const ViewAnalysis& analysis,
                       std::vector<int> layers = {}) {
    ViewOptions options;
    options.views = {View::head, View::neuron};
    options.layers = std::move(layers);
    options.analysis = analysis;
    return nlohmann::json::parse(render_payload(trace, options));
}

ViewAnalysis everything() {
    ViewAnalysis out;
    out.rollout = out.flow = out.head_stats = out.word_level = true;
    return out;
}

// The pair trace with word ids: "tire ##d" is one word.
AttentionTrace pair_with_words() {
    AttentionTrace trace = testing::pair_trace();
    int word = 0;
    for (TraceToken& token : trace.sequences[0].tokens) {
        if (token.special) continue;
        if (token.text.rfind("##", 0) == 0) --word;
        token.word_id = word++;
    }
    return trace;
}

// A decoded exact code against the value it rounds (3 significant digits).
void expect_code(uint16_t code, double exact, const std::string& what) {
    if (exact == 0) {
        EXPECT_EQ(code, 0) << what;
    } else if (code == viz::kBelowThousandthCode) {
        EXPECT_LT(exact, 0.0009995) << what;
    } else {
        const double unit = std::pow(10.0, std::floor(std::log10(exact)) - 2);
        EXPECT_LE(std::fabs(viz::decimal3_value(code) - exact), unit / 2 * (1 + 1e-9)) << what;
    }
}

// The codes of one exact stream ([heads][queries][keys], two byte planes).
std::vector<uint16_t> codes_of(const nlohmann::json& all, int stream) {
    const std::vector<uint8_t> bytes =
        viz::inflate_bytes(viz::base64_decode(all["streams"][stream].get<std::string>()));
    const size_t cells = bytes.size() / 2;
    std::vector<uint16_t> codes(cells);
    for (size_t i = 0; i < cells; ++i)
        codes[i] = static_cast<uint16_t>((bytes[i] << 8) | bytes[cells + i]);
    return codes;
}

// Every value of a measure block's exact streams (one head) is `values`
// ([layers][n][n]) correctly rounded to 3 significant digits.
void expect_exact(const nlohmann::json& all, const nlohmann::json& block,
                  const std::vector<float>& values, const std::vector<int>& layers,
                  const std::string& what) {
    const size_t cells = block["queries"].get<size_t>() * block["keys"].get<size_t>();
    ASSERT_EQ(block["heads"].size(), 1u) << what;
    ASSERT_EQ(block["exact"].size(), layers.size()) << what;
    for (size_t l = 0; l < layers.size(); ++l) {
        const std::vector<uint16_t> codes = codes_of(all, block["exact"][l].get<int>());
        ASSERT_EQ(codes.size(), cells) << what;
        for (size_t i = 0; i < cells; ++i)
            expect_code(
                codes[i], values[static_cast<size_t>(layers[l]) * cells + i],
                what + " layer " + std::to_string(layers[l]) + " cell " + std::to_string(i));
    }
}

void expect_stats(const nlohmann::json& stats, const AttentionTrace& trace, int block_index) {
    const AttentionBlock& block = trace.blocks[static_cast<size_t>(block_index)];
    const analysis::HeadStatSums sums = analysis::head_stat_sums(trace, block);
    ASSERT_EQ(stats["block"], block_index);
    for (int s = 0; s < analysis::kHeadStatCount; ++s) {
        const std::vector<double> means = sums.means(static_cast<analysis::HeadStat>(s));
        const nlohmann::json& grid = stats["values"][std::string(analysis::kHeadStatNames[s])];
        ASSERT_EQ(grid.size(), static_cast<size_t>(block.n_layers));
        for (int l = 0; l < block.n_layers; ++l)
            for (int h = 0; h < block.n_heads; ++h) {
                const auto value =
                    static_cast<float>(means[static_cast<size_t>(l) * block.n_heads + h]);
                const nlohmann::json& shown = grid[l][h];
                if (!std::isfinite(value))
                    EXPECT_TRUE(shown.is_null());
                else  // the float32 `attnviz export --head-stats` writes, exactly
                    EXPECT_EQ(shown.get<double>(), static_cast<double>(value));
            }
    }
}

TEST(AnalysisViews, NoneByDefault) {
    const nlohmann::json page = payload(pair_with_words(), ViewAnalysis{});
    EXPECT_FALSE(page["meta"].contains("analysis"));
    EXPECT_FALSE(page["meta"].contains("words"));
    EXPECT_NE(page["meta"]["wordsNote"].get<std::string>().find("--word-level"), std::string::npos);
}

// `attnviz view`'s rule, which Python's Trace views follow: the longest
// sequence decides; each measure is on up to its budget, inclusive.
TEST(AnalysisViews, DefaultsFollowTheLength) {
    const auto at = [](int tokens) {
        return default_view_analysis(testing::sized_trace(1, 1, tokens, false, 4, false));
    };
    for (const int n : {kDefaultFlowTokens, kDefaultWordLevelTokens, kDefaultRolloutTokens}) {
        const ViewAnalysis within = at(n), past = at(n + 1);
        EXPECT_TRUE(within.head_stats && past.head_stats) << n;
        EXPECT_EQ(within.flow, n <= kDefaultFlowTokens) << n;
        EXPECT_FALSE(past.flow) << n;
        EXPECT_EQ(within.word_level, n <= kDefaultWordLevelTokens) << n;
        EXPECT_EQ(past.word_level, n + 1 <= kDefaultWordLevelTokens) << n;
        EXPECT_TRUE(within.rollout) << n;
        EXPECT_EQ(past.rollout, n + 1 <= kDefaultRolloutTokens) << n;
        EXPECT_FALSE(within.open_word_level) << n;
    }
    EXPECT_LE(kDefaultFlowTokens, kDefaultWordLevelTokens);
    EXPECT_LE(kDefaultWordLevelTokens, kDefaultRolloutTokens);
}

TEST(AnalysisViews, RolloutFlowAndStatsDecodeToTheAnalysisValues) {
    const AttentionTrace trace = pair_with_words();
    const nlohmann::json page = payload(trace, everything());
    const nlohmann::json& analysis = page["meta"]["analysis"];
    ASSERT_EQ(analysis["blocks"].size(), 2u);
    const nlohmann::json& rollout = analysis["blocks"][0];
    const nlohmann::json& flow = analysis["blocks"][1];
    EXPECT_EQ(rollout["measure"], "rollout");
    EXPECT_EQ(rollout["layers"], nlohmann::json({0, 1}));
    EXPECT_EQ(flow["measure"], "flow");
    EXPECT_EQ(flow["layers"], nlohmann::json({1}));  // the last layer's tokens
    expect_exact(page, rollout, analysis::rollout(trace.blocks[0]), {0, 1}, "rollout");
    expect_exact(page, flow, analysis::flow(trace.blocks[0]), {0}, "flow");
    ASSERT_EQ(analysis["stats"].size(), 1u);
    expect_stats(analysis["stats"][0], trace, 0);
    EXPECT_TRUE(analysis["notes"].empty());
}

TEST(AnalysisViews, WordLevelCopyHoldsTheWordTraceAndItsMeasures) {
    const AttentionTrace trace = pair_with_words();
    const nlohmann::json page = payload(trace, everything());
    const AttentionTrace words = analysis::word_level(trace);
    const nlohmann::json& world = page["meta"]["words"];
    ASSERT_EQ(world["sequences"][0]["tokens"].size(), trace.sequences[0].tokens.size() - 1);
    EXPECT_EQ(world["sequences"][0]["tokens"][11][0], "tire##d");
    EXPECT_FALSE(world["open"].get<bool>());
    const AttentionBlock& block = words.blocks[0];
    // Word attention: each head's maps through the same exact streams.
    const nlohmann::json& entry = world["blocks"][0];
    EXPECT_FALSE(entry.contains("queriesKeys"));  // q and k have no word-level form
    ASSERT_EQ(entry["exact"].size(), 2u);
    for (int l = 0; l < block.n_layers; ++l) {
        const std::vector<uint16_t> codes = codes_of(page, entry["exact"][l].get<int>());
        ASSERT_EQ(codes.size(),
                  static_cast<size_t>(block.n_heads) * block.n_queries * block.n_keys);
        for (size_t i = 0; i < codes.size(); ++i)
            expect_code(codes[i], block.probs[block.index(l, 0, 0, 0) + i],
                        "word attention layer " + std::to_string(l));
    }
    const nlohmann::json& measures = world["analysis"];
    ASSERT_EQ(measures["blocks"].size(), 2u);
    expect_exact(page, measures["blocks"][0], analysis::rollout(block), {0, 1}, "word rollout");
    expect_exact(page, measures["blocks"][1], analysis::flow(block), {0}, "word flow");
    expect_stats(measures["stats"][0], words, 0);
}

TEST(AnalysisViews, CrossAttentionAndSelectiveCapturesGetNotes) {
    const AttentionTrace trace = testing::encoder_decoder_trace();
    const nlohmann::json page = payload(trace, everything());
    const nlohmann::json& analysis = page["meta"]["analysis"];
    std::vector<std::string> names;
    for (const nlohmann::json& block : analysis["blocks"]) names.push_back(block["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"encoder rollout", "encoder flow", "decoder rollout",
                                               "decoder flow"}));
    ASSERT_EQ(analysis["notes"].size(), 1u);
    EXPECT_NE(analysis["notes"][0].get<std::string>().find("\"cross\""), std::string::npos);
    EXPECT_EQ(analysis["stats"].size(), 3u);
    // No word ids: no word-level copy, and the page says why.
    EXPECT_FALSE(page["meta"].contains("words"));
    EXPECT_NE(page["meta"]["wordsNote"].get<std::string>().find("single token"), std::string::npos);

    AttentionTrace selective = testing::pair_trace();
    selective.blocks[0].n_model_layers = 4;
    selective.blocks[0].layer_ids = {1, 3};
    const nlohmann::json partial = payload(selective, everything());
    EXPECT_TRUE(partial["meta"]["analysis"]["blocks"].empty());
    EXPECT_NE(partial["meta"]["analysis"]["notes"][0].get<std::string>().find("every layer"),
              std::string::npos);
}

// A --top-k / --top-mass / --fp16 capture densified for the views holds truncated
// or rounded rows: no measure is computed from them (they would not be the
// model's), the page says why, and there is no word-level copy either.
TEST(AnalysisViews, TruncatedCapturesGetNotesNotMeasures) {
    for (const bool fp16 : {false, true}) {
        AttentionTrace truncated = pair_with_words();
        if (fp16)
            truncated.blocks[0].capture.fp16 = true;
        else
            truncated.blocks[0].capture.top_k = 2;
        const nlohmann::json page = payload(truncated, everything());
        const nlohmann::json& analysis = page["meta"]["analysis"];
        EXPECT_TRUE(analysis["blocks"].empty());
        EXPECT_TRUE(analysis["stats"].empty());
        ASSERT_EQ(analysis["notes"].size(), 1u);
        EXPECT_NE(
            analysis["notes"][0].get<std::string>().find("drop --top-k, --top-mass and --fp16"),
            std::string::npos);
        EXPECT_FALSE(page["meta"].contains("words"));
        EXPECT_NE(page["meta"]["wordsNote"].get<std::string>().find("kept fewer or rounded"),
                  std::string::npos);
        EXPECT_THROW(analysis::rollout(truncated.blocks[0]), attnviz::Error);
    }
}

TEST(AnalysisViews, ChosenLayersPickTheirRollout) {
    const AttentionTrace trace = pair_with_words();
    const nlohmann::json page = payload(trace, everything(), {1});
    const nlohmann::json& rollout = page["meta"]["analysis"]["blocks"][0];
    EXPECT_EQ(rollout["layers"], nlohmann::json({1}));
    expect_exact(page, rollout, analysis::rollout(trace.blocks[0]), {1}, "rollout of layer 1");
    EXPECT_EQ(page["meta"]["analysis"]["stats"][0]["values"]["entropy"].size(), 1u);
}

}  // namespace
}  // namespace attnviz
