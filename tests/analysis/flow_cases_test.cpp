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

struct FlowCase {
    std::string name;
    int L, n;
    std::vector<float> a;  // [L][n][n]
    std::vector<int> outputs;
    std::vector<double> want;  // networkx, [outputs][n]
};

// The cases under `key` ("cases" or "edge_cases") of flow_cases.json.
std::vector<FlowCase> read_cases(const char* key) {
    std::ifstream in(std::filesystem::path(ATTNVIZ_TEST_DATA) / "analysis" / "flow_cases.json");
    const json file = json::parse(in);  // (not in the loop's range: it would not outlive it)
    std::vector<FlowCase> out;
    for (const json& c : file[key])
        out.push_back({c["name"], c["layers"], c["tokens"], c["matrices"].get<std::vector<float>>(),
                       c["outputs"].get<std::vector<int>>(), c["flow"].get<std::vector<double>>()});
    return out;
}

// Every value of the case on 1 and on 2 threads within kTolerance of networkx's.
void expect_networkx_values(const FlowCase& c) {
    SCOPED_TRACE(c.name);
    for (int threads : {1, 2}) {
        const std::vector<float> got =
            attnviz::analysis::flow_from_matrices(c.a, c.L, c.n, c.outputs, threads);
        ASSERT_EQ(got.size(), c.want.size());
        size_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i)
            if (!(std::abs(got[i] - c.want[i]) <= kTolerance) && bad++ < 5)
                ADD_FAILURE() << "threads " << threads << " flow[" << c.outputs[i / c.n] << "]["
                              << i % c.n << "]: " << got[i] << " vs networkx " << c.want[i];
        EXPECT_EQ(bad, 0u);
    }
}

TEST(FlowCases, MatchNetworkxWhereTheBoundIsNotReached) {
    const std::vector<FlowCase> cases = read_cases("cases");
    ASSERT_GE(cases.size(), 6u);
    for (const auto& c : cases) {
        expect_networkx_values(c);
        // The case is adversarial: most pairs stay below the bound.
        const auto& [name, L, n, a, outputs, want] = c;
        size_t below_bound = 0;
        for (size_t r = 0; r < outputs.size(); ++r) {
            double out_of_source = 0;
            for (int k = 0; k < n; ++k)
                out_of_source += a[(static_cast<size_t>(L - 1) * n + outputs[r]) * n + k];
            for (int j = 0; j < n; ++j) {
                double into_sink = 0;
                for (int k = 0; k < n; ++k) into_sink += a[static_cast<size_t>(k) * n + j];
                if (want[r * n + j] < std::min(out_of_source, into_sink) - 1e-3) ++below_bound;
            }
        }
        EXPECT_GE(2 * below_bound, want.size()) << name;
    }
}

// Small shapes, whatever the bound: one layer, two layers, one token, one
// full bit-set word, empty rows and columns (tools/reference/flow_cases.py).
TEST(FlowCases, MatchNetworkxOnEdgeShapes) {
    const std::vector<FlowCase> cases = read_cases("edge_cases");
    ASSERT_EQ(cases.size(), 5u);
    for (const auto& c : cases) expect_networkx_values(c);
}

TEST(FlowCases, RefusesBadShapesAndTokens) {
    const std::vector<float> a(2 * 3 * 3, 0.5f);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 3, 3, {0}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {3}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {-1}), attnviz::Error);
}

}  // namespace
