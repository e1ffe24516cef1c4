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
// problems of one output token run in turn on one preflow: what reached the
// last sink is excess for the next to route (a preflow with the layer labels
// is a valid start), so most of the flow is pushed once per output token,
// not once per pair. Output tokens run in parallel (OpenMP).
#include <omp.h>

#include <algorithm>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

namespace {

// Excess below this is float noise from earlier pushes, not flow.
constexpr double kNoise = 1e-14;
// The sink's excess within this of a cut's capacity counts as reaching it
// (sums of up to n * L float capacities in double differ by less).
constexpr double kCutSlack = 1e-12;

class LayeredMaxFlow {
public:
    // a: [L][n][n] the layer matrices Â_l, row = the node above.
    LayeredMaxFlow(const float* a, int L, int n) : a_(a), L_(L), n_(n) {
        const size_t nodes = static_cast<size_t>(L) * n;
        residual_.resize(static_cast<size_t>(L - 1) * n * n);
        flow_.resize(residual_.size());
        excess_.resize(nodes);
        height_.resize(nodes);
        source_flow_.resize(static_cast<size_t>(n));
        N_ = static_cast<int>(nodes) + 1;  // the source's label
        count_.resize(static_cast<size_t>(2 * N_ + 2));
        buckets_.resize(static_cast<size_t>(2 * N_ + 2));
    }

    // Starts the problems of one output token: no flow inside, the source's
    // arcs saturated (push-relabel's first step).
    void start(int source) {
        const size_t nn = static_cast<size_t>(n_) * n_;
        for (int l = 0; l + 1 < L_; ++l) {
            const float* cap = a_ + nn * l;
            std::copy(cap, cap + nn, residual_.begin() + static_cast<long>(nn * l));
        }
        std::fill(flow_.begin(), flow_.end(), 0.0);
        std::fill(excess_.begin(), excess_.end(), 0.0);
        const float* top = a_ + nn * (L_ - 1) + static_cast<size_t>(source) * n_;
        source_capacity_ = 0;
        for (int k = 0; k < n_; ++k) {
            source_capacity_ += top[k];
            source_flow_[static_cast<size_t>(k)] = top[k];
            excess_[node(L_ - 1, k)] += top[k];
        }
    }

    // The maximum flow from the started source to input token `sink`. The
    // preflow the previous sink left is a valid start: flow that reached it
    // is now excess there, and finds its way to this sink or stays put.
    double solve(int sink) {
        sink_ = node(0, sink);
        // The cuts around the source and around the sink bound the flow; once
        // the sink holds that much, it is the maximum (deep stacks mix well,
        // and most pairs end there).
        double into_sink = 0;
        for (int k = 0; k < n_; ++k) into_sink += a_[static_cast<size_t>(k) * n_ + sink];
        bound_ = std::min(source_capacity_, into_sink);
        done_ = excess_[sink_] >= bound_ - kCutSlack;
        std::fill(count_.begin(), count_.end(), 0);
        for (auto& b : buckets_) b.clear();
        max_active_ = -1;
        // A node's layer is a valid label whatever the flow: every residual
        // arc joins adjacent layers.
        for (int l = 0; l < L_; ++l)
            for (int k = 0; k < n_; ++k) {
                const size_t v = node(l, k);
                height_[v] = l;
                ++count_[static_cast<size_t>(l)];
                if (v != sink_ && excess_[v] > kNoise) activate(v);
            }
        while (max_active_ >= 0 && !done_) {
            auto& bucket = buckets_[static_cast<size_t>(max_active_)];
            if (bucket.empty()) {
                --max_active_;
                continue;
            }
            const size_t v = bucket.back();
            bucket.pop_back();
            if (height_[v] == max_active_ && excess_[v] > kNoise) discharge(v);
        }
        return std::min(excess_[sink_], bound_);
    }

private:
    size_t node(int l, int k) const { return static_cast<size_t>(l) * n_ + k; }
    // Arcs between layer l + 1 (rows) and layer l (columns).
    size_t pair(int l) const { return static_cast<size_t>(l) * n_ * n_; }

    void activate(size_t v) {
        const int h = height_[v];
        if (h >= N_) return;  // cut off from the sink
        buckets_[static_cast<size_t>(h)].push_back(v);
        max_active_ = std::max(max_active_, h);
    }

    void receive(size_t w, double d) {
        const bool was_active = excess_[w] > kNoise;
        excess_[w] += d;
        if (w == sink_) done_ = excess_[w] >= bound_ - kCutSlack;
        if (w != sink_ && !was_active && excess_[w] > kNoise) activate(w);
    }

    void discharge(size_t v) {
        const int n = n_;
        const int l = static_cast<int>(v / n), a = static_cast<int>(v % n);
        double e = excess_[v];
        while (e > kNoise && !done_) {
            const int h = height_[v];
            int lowest = 2 * N_;
            if (l > 0) {  // down: (l, a) -> (l-1, b) along residual capacity
                double* r = residual_.data() + pair(l - 1) + static_cast<size_t>(a) * n;
                double* f = flow_.data() + pair(l - 1) + static_cast<size_t>(a) * n;
                const int* below = height_.data() + node(l - 1, 0);
                for (int b = 0; b < n && e > kNoise && !done_; ++b) {
                    if (r[b] <= 0) continue;
                    if (below[b] != h - 1) {
                        lowest = std::min(lowest, below[b]);
                        continue;
                    }
                    const double d = std::min(e, r[b]);
                    r[b] = d == r[b] ? 0.0 : r[b] - d;
                    f[b] += d;
                    e -= d;
                    receive(node(l - 1, b), d);
                }
            }
            if (e <= kNoise) break;
            if (l + 1 < L_) {  // up: undo flow that came from (l+1, c)
                double* f = flow_.data() + pair(l) + a;
                double* r = residual_.data() + pair(l) + a;
                const int* above = height_.data() + node(l + 1, 0);
                for (int c = 0; c < n && e > kNoise && !done_; ++c) {
                    double& fc = f[static_cast<size_t>(c) * n];
                    if (fc <= 0) continue;
                    if (above[c] != h - 1) {
                        lowest = std::min(lowest, above[c]);
                        continue;
                    }
                    const double d = std::min(e, fc);
                    fc = d == fc ? 0.0 : fc - d;
                    r[static_cast<size_t>(c) * n] += d;
                    e -= d;
                    receive(node(l + 1, c), d);
                }
            } else if (source_flow_[static_cast<size_t>(a)] > 0) {
                lowest = std::min(lowest, N_);  // back to the source: beyond this phase
            }
            if (e <= kNoise || done_) break;
            // Relabel. Gap rule: when no node is left at the old label,
            // nothing above it can reach the sink any more.
            const int old = h;
            if (--count_[static_cast<size_t>(old)] == 0) {
                for (size_t w = 0; w < height_.size(); ++w)
                    if (height_[w] > old && height_[w] < N_) {
                        --count_[static_cast<size_t>(height_[w])];
                        height_[w] = N_;
                    }
                height_[v] = N_;
                break;
            }
            height_[v] = std::min(lowest + 1, N_);
            if (height_[v] >= N_) break;  // cannot reach the sink: no longer needed
            ++count_[static_cast<size_t>(height_[v])];
        }
        excess_[v] = e;
    }

    const float* a_;
    int L_, n_, N_ = 0, max_active_ = 0;
    double source_capacity_ = 0, bound_ = 0;
    bool done_ = false;
    size_t sink_ = 0;
    std::vector<double> residual_, flow_;  // [L-1][n above][n below]
    std::vector<double> excess_;
    std::vector<int> height_;
    std::vector<double> source_flow_;
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
        for (int o = 0; o < count; ++o) {
            problem.start(output_tokens[static_cast<size_t>(o)]);
            for (int j = 0; j < n; ++j)
                out[static_cast<size_t>(o) * n + j] = static_cast<float>(problem.solve(j));
        }
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
