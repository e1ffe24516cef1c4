// Attention flow (Abnar & Zuidema 2020): the maximum flow through the layered
// attention graph from one output token to one input token, for every pair.
//
// The graph (their get_adjmat): node (l, k) for layer l = 0..L and token k;
// edge (l+1, a) -> (l, b) with capacity Â_l[a][b]. From source (L, i) to
// sink (0, j) only the source, the sink and layers 1..L-1 can carry flow
// (the other nodes of layers L and 0 have no way in or no way out), so each
// problem runs on that part: a dense layered DAG.
//
// Each problem is solved with push-relabel (Goldberg & Tarjan), specialised
// to the layered graph: residual arcs only join adjacent layers, so the
// layer index is always a valid distance label (used to start), pushes scan
// one dense row (down) or column (up), and the highest-label rule drains
// the graph layer by layer. Only the flow value is needed, so it stops once
// no node below the source's label holds excess (the first phase). The
// problems of one output token reuse one workspace; output tokens run in
// parallel (OpenMP).
#include <omp.h>

#include <algorithm>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

namespace {

// Excess below this is float noise from earlier pushes, not flow.
constexpr double kNoise = 1e-14;

class LayeredMaxFlow {
public:
    // a: [L][n][n] the layer matrices Â_l, row = the node above.
    LayeredMaxFlow(const float* a, int L, int n) : a_(a), L_(L), n_(n) {
        inner_ = L - 1;  // layers 1..L-1
        const size_t nodes = static_cast<size_t>(inner_) * n;
        residual_.resize(static_cast<size_t>(std::max(0, inner_ - 1)) * n * n);
        flow_.resize(residual_.size());
        excess_.resize(nodes);
        height_.resize(nodes);
        source_residual_.resize(static_cast<size_t>(n));
        source_flow_.resize(static_cast<size_t>(n));
        sink_residual_.resize(static_cast<size_t>(n));
        sink_flow_.resize(static_cast<size_t>(n));
        count_.resize(2 * nodes + 4);
        buckets_.resize(2 * nodes + 4);
    }

    double solve(int source, int sink) {
        const int n = n_;
        if (L_ == 1) return a_[static_cast<size_t>(source) * n + sink];
        const int N = inner_ * n + 2;  // nodes, the source's label
        // Edges between inner layers m+1 -> m (m = 1..L-2) use Â_m.
        for (int m = 1; m < inner_; ++m) {
            const float* cap = a_ + layer_offset(m);
            double* r = residual_.data() + pair_offset(m);
            std::copy(cap, cap + static_cast<size_t>(n) * n, r);
            std::fill(flow_.begin() + static_cast<long>(pair_offset(m)),
                      flow_.begin() + static_cast<long>(pair_offset(m) + size_t(n) * n), 0.0);
        }
        const float* top = a_ + layer_offset(L_ - 1) + static_cast<size_t>(source) * n;
        const float* bottom = a_ + layer_offset(0);
        std::fill(excess_.begin(), excess_.end(), 0.0);
        for (int k = 0; k < n; ++k) {
            source_flow_[k] = top[k];  // saturated at the start, as push-relabel begins
            source_residual_[k] = 0;
            excess_[node(L_ - 1, k)] = top[k];
            sink_residual_[k] = bottom[static_cast<size_t>(k) * n + sink];
            sink_flow_[k] = 0;
        }
        std::fill(count_.begin(), count_.end(), 0);
        for (auto& b : buckets_) b.clear();
        max_active_ = 0;
        for (int m = 1; m <= inner_; ++m)
            for (int k = 0; k < n; ++k) {
                const size_t v = node(m, k);
                height_[v] = m;  // distance in layers: valid for any flow on this graph
                ++count_[static_cast<size_t>(m)];
                if (excess_[v] > kNoise) activate(v);
            }
        sink_excess_ = 0;
        N_ = N;
        while (true) {
            while (max_active_ > 0 && buckets_[static_cast<size_t>(max_active_)].empty())
                --max_active_;
            if (max_active_ == 0 || buckets_[static_cast<size_t>(max_active_)].empty()) break;
            const size_t v = buckets_[static_cast<size_t>(max_active_)].back();
            buckets_[static_cast<size_t>(max_active_)].pop_back();
            if (height_[v] == max_active_ && excess_[v] > kNoise) discharge(v);
        }
        return sink_excess_;
    }

private:
    size_t layer_offset(int l) const { return static_cast<size_t>(l) * n_ * n_; }
    size_t pair_offset(int m) const { return static_cast<size_t>(m - 1) * n_ * n_; }
    size_t node(int m, int k) const { return static_cast<size_t>(m - 1) * n_ + k; }

    void activate(size_t v) {
        const int h = height_[v];
        if (h >= N_ || h <= 0) return;
        buckets_[static_cast<size_t>(h)].push_back(v);
        max_active_ = std::max(max_active_, h);
    }

    // Adds d to node w's excess; w becomes active if it was not.
    void receive(size_t w, double d) {
        const bool was_active = excess_[w] > kNoise;
        excess_[w] += d;
        if (!was_active && excess_[w] > kNoise) activate(w);
    }

    void discharge(size_t v) {
        const int n = n_;
        const int m = static_cast<int>(v / n) + 1, a = static_cast<int>(v % n);
        double e = excess_[v];
        while (e > kNoise) {
            const int h = height_[v];
            int lowest = 2 * N_;
            // Down: (m, a) -> (m-1, b), or to the sink from layer 1.
            if (m == 1) {
                double& r = sink_residual_[a];
                if (r > 0) {
                    if (h == 1) {
                        const double d = std::min(e, r);
                        if (d == r)
                            r = 0;
                        else
                            r -= d;
                        sink_flow_[a] += d;
                        sink_excess_ += d;
                        e -= d;
                        if (e <= kNoise) break;
                    } else {
                        lowest = std::min(lowest, 0);
                    }
                }
            } else {
                double* r = residual_.data() + pair_offset(m - 1) + static_cast<size_t>(a) * n;
                double* f = flow_.data() + pair_offset(m - 1) + static_cast<size_t>(a) * n;
                const int* below = height_.data() + node(m - 1, 0);
                for (int b = 0; b < n; ++b) {
                    if (r[b] <= 0) continue;
                    if (below[b] == h - 1) {
                        const double d = std::min(e, r[b]);
                        if (d == r[b])
                            r[b] = 0;
                        else
                            r[b] -= d;
                        f[b] += d;
                        e -= d;
                        receive(node(m - 1, b), d);
                        if (e <= kNoise) break;
                    } else {
                        lowest = std::min(lowest, below[b]);
                    }
                }
                if (e <= kNoise) break;
            }
            // Up: undo flow that came in from (m+1, c), or from the source.
            if (m == inner_) {
                const int hs = N_;
                double& f = source_flow_[a];
                if (f > 0) {
                    if (h == hs + 1) {
                        const double d = std::min(e, f);
                        if (d == f)
                            f = 0;
                        else
                            f -= d;
                        source_residual_[a] += d;
                        e -= d;
                        if (e <= kNoise) break;
                    } else {
                        lowest = std::min(lowest, hs);
                    }
                }
            } else {
                double* f = flow_.data() + pair_offset(m) + a;
                double* r = residual_.data() + pair_offset(m) + a;
                const int* above = height_.data() + node(m + 1, 0);
                for (int c = 0; c < n; ++c) {
                    double& fc = f[static_cast<size_t>(c) * n];
                    if (fc <= 0) continue;
                    if (above[c] == h - 1) {
                        const double d = std::min(e, fc);
                        if (d == fc)
                            fc = 0;
                        else
                            fc -= d;
                        r[static_cast<size_t>(c) * n] += d;
                        e -= d;
                        receive(node(m + 1, c), d);
                        if (e <= kNoise) break;
                    } else {
                        lowest = std::min(lowest, above[c]);
                    }
                }
                if (e <= kNoise) break;
            }
            // Relabel, with the gap rule: when no node is left at the old
            // label, nothing above it can reach the sink any more.
            const int old = h;
            const int next = lowest + 1;
            --count_[static_cast<size_t>(old)];
            if (count_[static_cast<size_t>(old)] == 0 && old < N_) {
                for (size_t w = 0; w < height_.size(); ++w)
                    if (height_[w] > old && height_[w] < N_) {
                        --count_[static_cast<size_t>(height_[w])];
                        height_[w] = N_;
                    }
                height_[v] = N_;
                excess_[v] = e;
                return;
            }
            height_[v] = std::min(next, 2 * N_);
            if (height_[v] >= N_) {
                excess_[v] = e;
                return;  // cannot reach the sink: the flow value no longer needs it
            }
            ++count_[static_cast<size_t>(height_[v])];
        }
        excess_[v] = std::max(e, 0.0);
    }

    const float* a_;
    int L_, n_, inner_, N_ = 0, max_active_ = 0;
    double sink_excess_ = 0;
    std::vector<double> residual_, flow_;  // [inner layers - 1][n above][n below]
    std::vector<double> excess_;
    std::vector<int> height_;
    std::vector<double> source_residual_, source_flow_, sink_residual_, sink_flow_;
    std::vector<int> count_;
    std::vector<std::vector<size_t>> buckets_;
};

}  // namespace

std::vector<float> flow_from_matrices(const std::vector<float>& matrices, int n_layers, int n,
                                      const std::vector<int>& output_tokens, int threads) {
    if (n_layers < 1 || n < 1 ||
        matrices.size() != static_cast<size_t>(n_layers) * n * static_cast<size_t>(n))
        throw Error("flow: expected " + std::to_string(n_layers) + " matrices of " +
                    std::to_string(n) + " by " + std::to_string(n));
    for (int t : output_tokens)
        if (t < 0 || t >= n)
            throw Error("flow: output token " + std::to_string(t) + " is outside 0.." +
                        std::to_string(n - 1));
    const int count = static_cast<int>(output_tokens.size());
    std::vector<float> out(static_cast<size_t>(count) * n);
    const int workers = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(workers)
    {
        LayeredMaxFlow problem(matrices.data(), n_layers, n);
#pragma omp for schedule(dynamic, 1)
        for (int o = 0; o < count; ++o)
            for (int j = 0; j < n; ++j)
                out[static_cast<size_t>(o) * n + j] =
                    static_cast<float>(problem.solve(output_tokens[static_cast<size_t>(o)], j));
    }
    return out;
}

std::vector<float> flow(const AttentionBlock& block, const FlowOptions& options) {
    const std::vector<float> a = residual_attention(block, options.layers);
    std::vector<int> all(static_cast<size_t>(block.n_queries));
    for (int i = 0; i < block.n_queries; ++i) all[static_cast<size_t>(i)] = i;
    return flow_from_matrices(a, block.n_layers, block.n_queries, all, options.threads);
}

std::vector<float> flow_from(const AttentionBlock& block, int output_token,
                             const FlowOptions& options) {
    const std::vector<float> a = residual_attention(block, options.layers);
    return flow_from_matrices(a, block.n_layers, block.n_queries, {output_token}, options.threads);
}

}  // namespace attnviz::analysis
