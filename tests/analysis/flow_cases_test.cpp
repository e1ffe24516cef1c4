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
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

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
// full bit-set word, empty rows and columns, and capacities over 17 orders of
// magnitude, where amounts far below a residual's ulp once hung the solver
// (tools/reference/flow_cases.py).
TEST(FlowCases, MatchNetworkxOnEdgeShapes) {
    const std::vector<FlowCase> cases = read_cases("edge_cases");
    ASSERT_EQ(cases.size(), 6u);
    for (const auto& c : cases) expect_networkx_values(c);
}

// A NaN capacity leaves undefined exactly the pairs whose graph holds it:
// every pair for an inner layer, one output token for the top layer's row,
// one input token for the bottom layer's column; the other pairs keep
// networkx's values. A negative capacity is refused.
TEST(FlowCases, NotFiniteCapacitiesMakeTheirPairsNaN) {
    const FlowCase c = read_cases("edge_cases")[3];  // 64 tokens, 3 layers, outputs 0 and 63
    ASSERT_EQ(c.name, "64_tokens");
    const size_t square = static_cast<size_t>(c.n) * c.n;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    auto run = [&](size_t at, float value) {
        std::vector<float> a = c.a;
        a[at] = value;
        return attnviz::analysis::flow_from_matrices(a, c.L, c.n, c.outputs, 2);
    };
    const std::vector<float> top = run(2 * square + 63 * c.n + 5, nan);  // output 63's row
    const std::vector<float> bottom = run(17 * c.n + 9, nan);            // input 9's column
    const std::vector<float> inner = run(square + 3, std::numeric_limits<float>::infinity());
    for (size_t r = 0; r < c.outputs.size(); ++r)
        for (int j = 0; j < c.n; ++j) {
            const size_t i = r * c.n + j;
            SCOPED_TRACE("output " + std::to_string(c.outputs[r]) + ", input " + std::to_string(j));
            if (c.outputs[r] == 63)
                EXPECT_TRUE(std::isnan(top[i]));
            else
                EXPECT_NEAR(top[i], c.want[i], kTolerance);
            if (j == 9)
                EXPECT_TRUE(std::isnan(bottom[i]));
            else
                EXPECT_NEAR(bottom[i], c.want[i], kTolerance);
            EXPECT_TRUE(std::isnan(inner[i]));
        }
    try {
        run(square + 2 * c.n + 7, -0.25f);
        ADD_FAILURE() << "a negative capacity was accepted";
    } catch (const attnviz::Error& e) {
        EXPECT_STREQ(e.what(),
                     "flow: layer 1's matrix has -0.250000 at row 2, column 7: a max-flow needs "
                     "capacities >= 0 (attention probabilities)");
    }
}

// Real attention on which undoing flow once left an arc marked as carrying
// flow with none on it (the residual plus the undone amount rounded to the
// capacity), and the solver asked it for 0 forever: the demo model's
// word-level attention (tests/data/PROVENANCE.md). It must end, with
// networkx's values.
TEST(FlowCases, UndoneFlowThatRoundsToTheCapacityEnds) {
    const auto dir = std::filesystem::path(ATTNVIZ_TEST_DATA) / "analysis";
    std::ifstream in(dir / "flow_rounding_case.json");
    const json reference = json::parse(in);
    const int L = reference["layers"], n = reference["tokens"], output = reference["output"];
    const auto want = reference["flow"].get<std::vector<double>>();
    std::vector<float> a(static_cast<size_t>(L) * n * n);
    std::ifstream raw(dir / "flow_rounding_case.f32", std::ios::binary);
    raw.read(reinterpret_cast<char*>(a.data()), static_cast<std::streamsize>(a.size() * 4));
    ASSERT_TRUE(raw && raw.peek() == EOF);
    // Every output token before it too: the arcs each leaves are put back for the next.
    std::vector<int> outputs;
    for (int i = 0; i <= output; ++i) outputs.push_back(i);
    const std::vector<float> got = attnviz::analysis::flow_from_matrices(a, L, n, outputs, 1);
    for (int j = 0; j < n; ++j)
        EXPECT_NEAR(got[static_cast<size_t>(output) * n + j], want[static_cast<size_t>(j)],
                    kTolerance)
            << "input " << j;
}

TEST(FlowCases, RefusesBadShapesAndTokens) {
    const std::vector<float> a(2 * 3 * 3, 0.5f);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 3, 3, {0}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {3}), attnviz::Error);
    EXPECT_THROW(attnviz::analysis::flow_from_matrices(a, 2, 3, {-1}), attnviz::Error);
}

}  // namespace
