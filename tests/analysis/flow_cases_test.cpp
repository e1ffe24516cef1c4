// Attention flow on graphs where the easy bound min(row capacity out of the
// source, column capacity into the sink) is mostly NOT reached, against
// networkx: tests/data/analysis/flow_cases.json (tools/reference/flow_cases.py,
// PROVENANCE.md). A solver that stopped at the bound, or guessed it, fails.
// Tolerance: the library's flow is an exact max-flow of the float32
// capacities up to one double rounding per arc update (<= 1e-11 in all),
// then rounded to float32 (<= 6e-8 at 1);
// networkx adds its own double rounding. 1e-6 is far above both and far
// below any wrong routing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace {

using nlohmann::json;

constexpr double kTolerance = 1e-6;

TEST(FlowCases, MatchNetworkxWhereTheBoundIsNotReached) {
    std::ifstream in(std::filesystem::path(ATTNVIZ_TEST_DATA) / "analysis" / "flow_cases.json");
    const json cases = json::parse(in)["cases"];
    ASSERT_GE(cases.size(), 6u);
    for (const json& c : cases) {
        const std::string name = c["name"];
        SCOPED_TRACE(name);
        const int L = c["layers"], n = c["tokens"];
        const auto a = c["matrices"].get<std::vector<float>>();
        const auto outputs = c["outputs"].get<std::vector<int>>();
        const auto want = c["flow"].get<std::vector<double>>();
        for (int threads : {1, 2}) {
            const std::vector<float> got =
                attnviz::analysis::flow_from_matrices(a, L, n, outputs, threads);
            ASSERT_EQ(got.size(), want.size());
            size_t bad = 0, below_bound = 0;
            for (size_t r = 0; r < outputs.size(); ++r) {
                double out_of_source = 0;
                for (int k = 0; k < n; ++k)
                    out_of_source += a[(static_cast<size_t>(L - 1) * n + outputs[r]) * n + k];
                for (int j = 0; j < n; ++j) {
                    double into_sink = 0;
                    for (int k = 0; k < n; ++k) into_sink += a[static_cast<size_t>(k) * n + j];
                    const size_t i = r * n + j;
                    if (want[i] < std::min(out_of_source, into_sink) - 1e-3) ++below_bound;
                    if (!(std::abs(got[i] - want[i]) <= kTolerance) && bad++ < 5)
                        ADD_FAILURE() << "threads " << threads << " flow[" << outputs[r] << "]["
                                      << j << "]: " << got[i] << " vs networkx " << want[i];
                }
            }
            EXPECT_EQ(bad, 0u);
            // The case is adversarial: most pairs stay below the bound.
            EXPECT_GE(2 * below_bound, want.size());
        }
    }
}

// Small shapes, whatever the bound: one layer, two layers, one token, one
// full bit-set word, empty rows and columns (tools/reference/flow_cases.py).
TEST(FlowCases, MatchNetworkxOnEdgeShapes) {
    std::ifstream in(std::filesystem::path(ATTNVIZ_TEST_DATA) / "analysis" / "flow_cases.json");
    const json cases = json::parse(in)["edge_cases"];
    ASSERT_EQ(cases.size(), 5u);
    for (const json& c : cases) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const int L = c["layers"], n = c["tokens"];
        const auto a = c["matrices"].get<std::vector<float>>();
        const auto outputs = c["outputs"].get<std::vector<int>>();
        const auto want = c["flow"].get<std::vector<double>>();
        for (int threads : {1, 2}) {
            const std::vector<float> got =
                attnviz::analysis::flow_from_matrices(a, L, n, outputs, threads);
            ASSERT_EQ(got.size(), want.size());
            for (size_t i = 0; i < want.size(); ++i)
                EXPECT_NEAR(got[i], want[i], kTolerance) << "threads " << threads << " pair " << i;
        }
    }
}

TEST(FlowCases, RefusesBadShapesAndTokens) {
    const std::vector<float> a(2 * 3 * 3, 0.5f);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 3, 3, {0}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {3}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {-1}), attnviz::Error);
}

}  // namespace
