// Attention flow (Abnar & Zuidema 2020): the maximum flow through the layered
// attention graph from one output token to one input token, for every pair.
//
// The graph (their get_adjmat): node (l, k) for layer l = 0..L and token k;
// edge (l+1, a) -> (l, b) with capacity Â_l[a][b]. From source (L, i) to
// sink (0, j) only the source, the sink and layers 1..L-1 can carry flow
// (the other nodes of layers L and 0 have no way in or no way out), so each
// problem runs on that part: a dense layered DAG.
//
// Each problem is solved with push-relabel (Goldberg & Tarjan), highest label
// first, with global relabelling and the gap rule, specialised to the layered
// graph: residual arcs only join adjacent layers, so each node's residual
// arcs are two bit sets (down to the layer below, up to the layer above),
// and the admissible arcs of a node at height h are its residual bit set AND
// the set of the neighbouring layer's nodes at height h - 1 (one vector
// compare per 16 tokens, cached per layer until a height there changes).
// Discharges, relabels and the breadth-first global relabel then touch only
// the arcs they use, not every row and column. Only the flow value is
// needed, so it stops once no node below the source's label holds excess
// (the first phase), or as soon as the sink holds the capacity of the cut
// around the source or the sink (that is then the maximum; most pairs end
// there). The problems of one output token run in turn on one preflow: what
// reached the last sink is excess for the next to route (a preflow with
// valid labels is a valid start). Output tokens run in parallel (OpenMP).
//
// Arithmetic: capacities are the float32 Â; residuals and excesses are
// double. A push moves min(excess, residual) and a saturated arc is set to
// exactly 0 (or back to exactly its capacity), so each push rounds at most
// once, by 2^-53 relative; the value returned is the excess at the sink,
// within (pushes into it) * 2^-53 of an exact max-flow of the float32
// capacities, and excess below 1e-14 is dropped as noise (at most 1e-14 per
// node left behind). Both bounds are far below float32 rounding of the
// result (6e-8 at 1), which is what the tests compare against networkx.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdint>
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
// Padding heights past a layer's last token: never admissible, never lowest.
constexpr int kPad = 1 << 29;

using Word = uint64_t;

// Which heights of one layer equal `target`, as a bit set (words of 64).
void equal_mask(const int* heights, int words, int target, Word* out) {
    for (int w = 0; w < words; ++w) {
        const int* h = heights + 64 * w;
#if defined(__AVX512F__)
        const __m512i t = _mm512_set1_epi32(target);
        Word m = 0;
        for (int q = 0; q < 4; ++q)
            m |= static_cast<Word>(_mm512_cmpeq_epi32_mask(_mm512_loadu_si512(h + 16 * q), t))
                 << (16 * q);
        out[w] = m;
#else
        Word m = 0;
        for (int k = 0; k < 64; ++k) m |= static_cast<Word>(h[k] == target) << k;
        out[w] = m;
#endif
    }
}

// The lowest height among the set bits of `mask`.
int lowest_of(const int* heights, const Word* mask, int words, int lowest) {
    for (int w = 0; w < words; ++w) {
#if defined(__AVX512F__)
        __m512i low = _mm512_set1_epi32(lowest);
        for (int q = 0; q < 4; ++q)
            low = _mm512_mask_min_epi32(low, static_cast<__mmask16>(mask[w] >> (16 * q)), low,
                                        _mm512_loadu_si512(heights + 64 * w + 16 * q));
        alignas(
            64) int lanes[16];  // (gcc 12's _mm512_reduce_min_epi32 trips -Wmaybe-uninitialized)
        _mm512_store_si512(lanes, low);
        for (int lane : lanes) lowest = std::min(lowest, lane);
#else
        for (Word m = mask[w]; m; m &= m - 1)
            lowest = std::min(lowest, heights[64 * w + std::countr_zero(m)]);
#endif
    }
    return lowest;
}

class LayeredMaxFlow {
public:
    // a: [L][n][n] the layer matrices Â_l, row = the node above.
    LayeredMaxFlow(const float* a, int L, int n)
        : a_(a),
          L_(L),
          n_(n),
          words_((n + 63) / 64),
          shift_(std::bit_width(std::bit_ceil(static_cast<unsigned>(64 * words_))) - 1),
          stride_(1 << shift_) {
        const size_t ids = static_cast<size_t>(L) * stride_;  // padded: node(l, k) = l * stride + k
        residual_.resize(static_cast<size_t>(L - 1) * n * n);
        excess_.assign(ids, 0.0);
        height_.assign(ids, kPad);
        const size_t bits = ids * static_cast<size_t>(words_);
        down_.resize(bits), up_.resize(bits), from_above_.resize(bits), from_below_.resize(bits);
        visited_.resize(static_cast<size_t>(L) * words_);
        mask_.resize(static_cast<size_t>(L) * words_);
        mask_height_.assign(static_cast<size_t>(L), -1);
        source_flow_.resize(static_cast<size_t>(n));
        N_ = L * n + 1;  // the source's label
        count_.resize(static_cast<size_t>(N_ + 1));
        buckets_.resize(static_cast<size_t>(N_ + 1));
        used_ = N_;
    }

    // Starts the problems of one output token: no flow inside, the source's
    // arcs saturated (push-relabel's first step).
    void start(int source) {
        for (int l = 0; l + 1 < L_; ++l)
            std::copy(a_ + pair(l), a_ + pair(l + 1),
                      residual_.begin() + static_cast<long>(pair(l)));
        std::fill(excess_.begin(), excess_.end(), 0.0);
        std::fill(down_.begin(), down_.end(), 0);
        std::fill(up_.begin(), up_.end(), 0);
        std::fill(from_above_.begin(), from_above_.end(), 0);
        std::fill(from_below_.begin(), from_below_.end(), 0);
        for (int l = 0; l + 1 < L_; ++l)
            for (int a = 0; a < n_; ++a) {
                const float* cap = a_ + pair(l) + static_cast<size_t>(a) * n_;
                for (int b = 0; b < n_; ++b)
                    if (cap[b] > 0) {
                        set(down_, node(l + 1, a), b);
                        set(from_above_, node(l, b), a);
                    }
            }
        const float* top = a_ + pair(L_ - 1) + static_cast<size_t>(source) * n_;
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
        double into_sink = 0;
        for (int k = 0; k < n_; ++k) into_sink += a_[static_cast<size_t>(k) * n_ + sink];
        bound_ = std::min(source_capacity_, into_sink);
        done_ = excess_[sink_] >= bound_ - kCutSlack;
        if (done_) return std::min(excess_[sink_], bound_);
        // Only labels up to the highest one used last time need clearing.
        std::fill_n(count_.begin(), used_ + 1, 0);
        for (int h = 0; h <= used_; ++h) buckets_[static_cast<size_t>(h)].clear();
        used_ = 0;
        max_active_ = -1;
        global_relabel();
        for (int l = 0; l < L_; ++l)
            for (int k = 0; k < n_; ++k) {
                const size_t v = node(l, k);
                const int h = height_[v];
                if (h < N_) ++count_[static_cast<size_t>(h)];
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
    size_t node(int l, int k) const { return (static_cast<size_t>(l) << shift_) + k; }
    int layer_of(size_t v) const { return static_cast<int>(v >> shift_); }
    int token_of(size_t v) const { return static_cast<int>(v & (stride_ - 1)); }
    // Arcs between layer l + 1 (rows) and layer l (columns).
    size_t pair(int l) const { return static_cast<size_t>(l) * n_ * n_; }
    Word* bits(std::vector<Word>& set, size_t v) { return set.data() + v * words_; }
    void set(std::vector<Word>& s, size_t v, int k) { bits(s, v)[k / 64] |= Word{1} << (k % 64); }
    void clear(std::vector<Word>& s, size_t v, int k) {
        bits(s, v)[k / 64] &= ~(Word{1} << (k % 64));
    }

    // Exact distances to the sink in the residual graph (breadth first,
    // backwards, on the residual bit sets); nodes that cannot reach it get
    // the source's label, so the excess stranded there by earlier sinks is
    // left alone.
    void global_relabel() {
        for (int l = 0; l < L_; ++l)
            std::fill_n(height_.begin() + static_cast<long>(l) * stride_, n_, N_);
        std::fill(visited_.begin(), visited_.end(), 0);
        std::fill(mask_height_.begin(), mask_height_.end(), -1);
        queue_.clear();
        height_[sink_] = 0;
        set(visited_, 0, token_of(sink_));
        queue_.push_back(sink_);
        for (size_t head = 0; head < queue_.size(); ++head) {
            const size_t w = queue_[head];
            const int l = layer_of(w);
            const int next = height_[w] + 1;
            auto reach = [&](const Word* into, int layer) {
                Word* seen = visited_.data() + static_cast<size_t>(layer) * words_;
                int* h = height_.data() + static_cast<size_t>(layer) * stride_;
                for (int q = 0; q < words_; ++q) {
                    Word fresh = into[q] & ~seen[q];
                    seen[q] |= fresh;
                    for (; fresh; fresh &= fresh - 1) {
                        const int k = 64 * q + std::countr_zero(fresh);
                        h[k] = next;
                        used_ = std::max(used_, next);
                        queue_.push_back(node(layer, k));
                    }
                }
            };
            if (l + 1 < L_) reach(bits(from_above_, w), l + 1);
            if (l > 0) reach(bits(from_below_, w), l - 1);
        }
    }

    // The nodes of `layer` at height `target`, cached until a height there changes.
    const Word* at_height(int layer, int target) {
        Word* m = mask_.data() + static_cast<size_t>(layer) * words_;
        if (mask_height_[static_cast<size_t>(layer)] != target) {
            equal_mask(height_.data() + static_cast<size_t>(layer) * stride_, words_, target, m);
            mask_height_[static_cast<size_t>(layer)] = target;
        }
        return m;
    }
    void heights_changed(int layer) { mask_height_[static_cast<size_t>(layer)] = -1; }

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
        const int l = layer_of(v), a = token_of(v);
        double e = excess_[v];
        while (e > kNoise && !done_) {
            const int h = height_[v];
            if (l > 0) {  // down: (l, a) -> (l-1, b) along residual capacity
                double* r = residual_.data() + pair(l - 1) + static_cast<size_t>(a) * n;
                const Word* admissible = at_height(l - 1, h - 1);
                const Word* open = bits(down_, v);
                for (int q = 0; q < words_ && e > kNoise && !done_; ++q)
                    for (Word m = open[q] & admissible[q]; m && e > kNoise && !done_; m &= m - 1) {
                        const int b = 64 * q + std::countr_zero(m);
                        const size_t w = node(l - 1, b);
                        const double room = r[b];
                        const bool had_flow = bits(up_, w)[a / 64] >> (a % 64) & 1;
                        double d;
                        if (e >= room) {
                            d = room;
                            r[b] = 0;
                            clear(down_, v, b);
                            clear(from_above_, w, a);
                        } else {
                            d = e;
                            r[b] = room - d;
                        }
                        if (!had_flow) {
                            set(up_, w, a);
                            set(from_below_, v, b);
                        }
                        e -= d;
                        receive(w, d);
                    }
            }
            if (e <= kNoise || done_) break;
            if (l + 1 < L_) {  // up: undo flow that came from (l+1, c)
                double* r = residual_.data() + pair(l) + a;
                const float* cap = a_ + pair(l) + a;
                const Word* admissible = at_height(l + 1, h - 1);
                const Word* back = bits(up_, v);
                for (int q = 0; q < words_ && e > kNoise && !done_; ++q)
                    for (Word m = back[q] & admissible[q]; m && e > kNoise && !done_; m &= m - 1) {
                        const int c = 64 * q + std::countr_zero(m);
                        const size_t w = node(l + 1, c);
                        double& rc = r[static_cast<size_t>(c) * n];
                        const double capacity = cap[static_cast<size_t>(c) * n];
                        const double flow = capacity - rc;
                        const bool was_full = rc <= 0;
                        double d;
                        if (e >= flow) {
                            d = flow;
                            rc = capacity;
                            clear(up_, v, c);
                            clear(from_below_, w, a);
                        } else {
                            d = e;
                            rc += d;
                        }
                        if (was_full) {
                            set(down_, w, a);
                            set(from_above_, v, c);
                        }
                        e -= d;
                        receive(w, d);
                    }
            }
            if (e <= kNoise || done_) break;
            // Relabel to one above the lowest residual neighbour. Gap rule:
            // when no node is left at the old label, nothing above it can
            // reach the sink any more.
            int lowest = 2 * N_;
            if (l > 0)
                lowest = lowest_of(height_.data() + static_cast<size_t>(l - 1) * stride_,
                                   bits(down_, v), words_, lowest);
            if (l + 1 < L_)
                lowest = lowest_of(height_.data() + static_cast<size_t>(l + 1) * stride_,
                                   bits(up_, v), words_, lowest);
            else if (source_flow_[static_cast<size_t>(a)] > 0)
                lowest = std::min(lowest, N_);  // back to the source: beyond this phase
            const int old = h;
            heights_changed(l);
            if (--count_[static_cast<size_t>(old)] == 0) {
                for (int& hk : height_)
                    if (hk > old && hk < N_) {
                        --count_[static_cast<size_t>(hk)];
                        hk = N_;
                    }
                std::fill(mask_height_.begin(), mask_height_.end(), -1);
                height_[v] = N_;
                break;
            }
            const int next = std::min(lowest + 1, N_);
            height_[v] = next;
            if (next >= N_) break;  // cannot reach the sink: no longer needed
            used_ = std::max(used_, next);
            ++count_[static_cast<size_t>(next)];
        }
        excess_[v] = e;
    }

    const float* a_;
    int L_, n_, words_, shift_, stride_, N_ = 0, max_active_ = 0, used_ = 0;
    double source_capacity_ = 0, bound_ = 0;
    bool done_ = false;
    size_t sink_ = 0;
    std::vector<double> residual_;  // [L-1][n above][n below]: capacity - flow
    std::vector<double> excess_;    // [L][stride]
    std::vector<int> height_;       // [L][stride]
    // Residual arcs as bit sets per node v = (l, a): down_ to layer l-1 (flow
    // below capacity), up_ to layer l+1 (flow to undo); from_above_ and
    // from_below_ the same arcs seen from their heads (for the backward
    // breadth-first search).
    std::vector<Word> down_, up_, from_above_, from_below_, visited_, mask_;
    std::vector<size_t> queue_;
    std::vector<double> source_flow_;
    std::vector<int> count_, mask_height_;  // count_, buckets_: [label < N], used up to used_
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
