// Attention flow on random layered graphs against a plain Edmonds-Karp on
// the same float32 capacities (in double): uniform rows, rows spread over 17
// orders of magnitude (amounts far below a residual's ulp, which once hung
// the solver), sparse rows, and rows with a heavy diagonal as the residual
// term makes. Every problem must end; the values agree to 1e-6 (the solver's
// float32 output rounds by up to 6e-8 at 1, Edmonds-Karp's double sums by far
// less). The fixed seed makes the graphs the same on every machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <queue>
#include <vector>

#include "attnviz/analysis.h"

namespace {

// Max-flow from (L, source) to (0, sink) on Abnar & Zuidema's graph: BFS
// augmenting paths on a dense residual matrix.
double edmonds_karp(const std::vector<float>& a, int L, int n, int source, int sink) {
    const int nodes = (L + 1) * n;
    std::vector<double> residual(static_cast<size_t>(nodes) * nodes, 0.0);
    auto at = [&](int u, int v) -> double& { return residual[static_cast<size_t>(u) * nodes + v]; };
    for (int l = 0; l < L; ++l)
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                at((l + 1) * n + i, l * n + j) = a[(static_cast<size_t>(l) * n + i) * n + j];
    const int s = L * n + source, t = sink;
    double total = 0;
    for (;;) {
        std::vector<int> parent(static_cast<size_t>(nodes), -1);
        parent[static_cast<size_t>(s)] = s;
        std::queue<int> queue;
        queue.push(s);
        while (!queue.empty() && parent[static_cast<size_t>(t)] < 0) {
            const int u = queue.front();
            queue.pop();
            for (int v = 0; v < nodes; ++v)
                if (parent[static_cast<size_t>(v)] < 0 && at(u, v) > 0) {
                    parent[static_cast<size_t>(v)] = u;
                    queue.push(v);
                }
        }
        if (parent[static_cast<size_t>(t)] < 0) return total;
        double bottleneck = 1e300;
        for (int v = t; v != s; v = parent[static_cast<size_t>(v)])
            bottleneck = std::min(bottleneck, at(parent[static_cast<size_t>(v)], v));
        for (int v = t; v != s; v = parent[static_cast<size_t>(v)]) {
            at(parent[static_cast<size_t>(v)], v) -= bottleneck;
            at(v, parent[static_cast<size_t>(v)]) += bottleneck;
        }
        total += bottleneck;
    }
}

// splitmix64: the same numbers on every platform.
struct Random {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

TEST(FlowRandom, MatchesEdmondsKarpAndEnds) {
    Random random{2026};
    for (int trial = 0; trial < 240; ++trial) {
        const int L = 1 + static_cast<int>(random.next() % 5);
        const int n = 1 + static_cast<int>(random.next() % 24);
        const int kind = trial % 4;
        std::vector<float> a(static_cast<size_t>(L) * n * n);
        for (int row = 0; row < L * n; ++row) {
            float* r = a.data() + static_cast<size_t>(row) * n;
            std::vector<double> x(static_cast<size_t>(n));
            double sum = 0;
            for (int j = 0; j < n; ++j) {
                const double u = random.uniform();
                x[static_cast<size_t>(j)] = kind == 0   ? u
                                            : kind == 1 ? std::exp(-40 * u)
                                            : kind == 2
                                                ? (random.uniform() < 0.3 ? u : 0)
                                                : std::exp(6 * (u - 0.5)) * (j == row % n ? 20 : 1);
                sum += x[static_cast<size_t>(j)];
            }
            for (int j = 0; j < n; ++j)
                r[j] = sum > 0 ? static_cast<float>(x[static_cast<size_t>(j)] / sum) : 0.0f;
        }
        std::vector<int> outputs(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) outputs[static_cast<size_t>(i)] = i;
        const std::vector<float> got = attnviz::analysis::flow_from_matrices(a, L, n, outputs, 1);
        const int step = std::max(1, n / 3);
        for (int i = 0; i < n; i += step)
            for (int j = 0; j < n; j += step)
                ASSERT_NEAR(got[static_cast<size_t>(i) * n + j], edmonds_karp(a, L, n, i, j), 1e-6)
                    << "trial " << trial << ": " << L << " layers, " << n << " tokens, kind "
                    << kind << ", pair " << i << ", " << j;
    }
}

}  // namespace
