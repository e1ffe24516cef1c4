// Every measure against tools/reference/analysis_reference.py (numpy, networkx)
// on random attention: tests/data/analysis/random.json (PROVENANCE.md).
// Tolerance: the library sums float32 inputs in float32/float64 and rounds
// its outputs to float32; a few dozen roundings of values <= a few units
// stay far below 1e-5 absolute. Flow: the same max-flow values within float error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace {

using namespace attnviz;
using nlohmann::json;

constexpr double kTolerance = 1e-5;

json cases() {
    std::ifstream in(std::filesystem::path(ATTNVIZ_TEST_DATA) / "analysis" / "random.json");
    return json::parse(in)["cases"];
}

AttentionTrace trace_of(const json& c) {
    const auto shape = c["shape"].get<std::vector<int>>();
    AttentionTrace trace;
    TokenSequence s;
    s.name = "input";
    const auto word_ids = c["word_ids"].get<std::vector<int>>();
    const auto segments = c["segments"].get<std::vector<int>>();
    for (size_t t = 0; t < word_ids.size(); ++t) {
        TraceToken token;
        token.text = token.display = std::to_string(t);
        token.word_id = word_ids[t];
        token.segment = static_cast<int8_t>(segments[t]);
        token.special = word_ids[t] < 0;
        s.tokens.push_back(token);
    }
    trace.sequences.push_back(s);
    AttentionBlock b;
    b.name = "self";
    b.causal = c["causal"].get<bool>();
    b.n_layers = shape[0], b.n_heads = shape[1], b.n_queries = shape[2], b.n_keys = shape[3];
    b.probs = c["attentions"].get<std::vector<float>>();
    b.value_norms = c["value_norms"].get<std::vector<float>>();
    trace.blocks.push_back(b);
    return trace;
}

void expect_near_all(const std::vector<float>& got, const json& want, const std::string& what,
                     double tolerance = kTolerance) {
    const auto expected = want.get<std::vector<double>>();
    ASSERT_EQ(got.size(), expected.size()) << what;
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
        if (!(std::abs(got[i] - expected[i]) <= tolerance) && bad++ < 5)
            ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << expected[i];
    EXPECT_EQ(bad, 0u) << what;
}

TEST(AnalysisReference, RandomAttention) {
    for (const json& c : cases()) {
        const std::string name = c["name"];
        SCOPED_TRACE(name);
        const AttentionTrace trace = trace_of(c);
        const AttentionBlock& b = trace.blocks[0];
        using analysis::Reduce;
        expect_near_all(analysis::reduce_heads(b, Reduce::mean), c["mean_heads"], "mean heads");
        expect_near_all(analysis::reduce_heads(b, Reduce::max), c["max_heads"], "max heads");
        expect_near_all(analysis::reduce_layers(b, Reduce::mean), c["mean_layers"], "mean layers");
        expect_near_all(analysis::reduce_layers(b, Reduce::max), c["max_layers"], "max layers");
        const AttentionTrace words = analysis::word_level(trace);
        expect_near_all(words.blocks[0].probs, c["word_level"], "word level");
        EXPECT_EQ(analysis::words_of(trace.sequences[0]).word_of_token,
                  c["words"].get<std::vector<int>>());
        expect_near_all(analysis::value_weighted(b), c["value_weighted"], "value weighted");
        using analysis::HeadFusion;
        expect_near_all(analysis::rollout(b), c["rollout_mean"], "rollout mean");
        expect_near_all(analysis::rollout(b, {HeadFusion::max, 0}), c["rollout_max"],
                        "rollout max");
        expect_near_all(analysis::rollout(b, {HeadFusion::mean, 0.3}), c["rollout_mean_discard"],
                        "rollout mean discard 0.3");
        expect_near_all(analysis::rollout(b, {HeadFusion::max, 0.5}), c["rollout_max_discard"],
                        "rollout max discard 0.5");
        expect_near_all(analysis::flow(b), c["flow_mean"], "flow");
        analysis::FlowOptions max_discard;
        max_discard.layers = {HeadFusion::max, 0.5};
        expect_near_all(analysis::flow(b, max_discard), c["flow_max_discard"], "flow max discard");
    }
}

TEST(AnalysisReference, FlowFromOneTokenIsItsRowOfFlow) {
    const AttentionTrace trace = trace_of(cases()[0]);
    const AttentionBlock& b = trace.blocks[0];
    const std::vector<float> all = analysis::flow(b);
    const int n = b.n_queries;
    for (int i = 0; i < n; ++i) {
        const std::vector<float> row = analysis::flow_from(b, i);
        for (int j = 0; j < n; ++j) EXPECT_EQ(row[j], all[static_cast<size_t>(i) * n + j]);
    }
}

TEST(AnalysisReference, RefusesWhatItCannotCompute) {
    AttentionTrace trace = trace_of(cases()[0]);
    AttentionBlock cross = trace.blocks[0];
    cross.key_sequence = 1;
    EXPECT_THROW(analysis::rollout(cross), Error);
    AttentionBlock no_norms = trace.blocks[0];
    no_norms.value_norms.clear();
    EXPECT_THROW(analysis::value_weighted(no_norms), Error);
    AttentionBlock partial = trace.blocks[0];
    partial.probs.resize(partial.probs.size() / 2);
    EXPECT_THROW(analysis::rollout(partial), Error);
    EXPECT_THROW(analysis::rollout(trace.blocks[0], {analysis::HeadFusion::mean, 1.0}), Error);
    EXPECT_THROW(analysis::reduce_heads(trace.blocks[0], analysis::Reduce::mean, {99}), Error);
}

}  // namespace
