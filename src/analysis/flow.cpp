// Attention flow (Abnar & Zuidema 2020): the maximum flow through the layered
// attention graph from one output token to one input token, for every pair.
//
// The graph (their get_adjmat): node (l, k) for layer l = 0..L and token k;
// edge (l+1, a) -> (l, b) with capacity Â_l[a][b]. From source (L, i) to
// sink (0, j) only the source, layers 1..L-1 and the sink can carry flow (the
// other nodes of layers L and 0 have no way in or no way out), so each
// problem runs on that part: a dense layered DAG.
//
// Each problem is solved with Dinic's algorithm: a breadth-first search from
// the sink gives every node its residual distance to it, then one depth-first
// pass from the source saturates every shortest augmenting path (a blocking
// flow), and so on until the source cannot reach the sink (the flow is then
// maximal) or the sink holds the capacity of the cut around the source or the
// sink (that is then the maximum; on softmax attention of many layers nearly
// every pair ends there, in one pass). Specialised to the layered graph:
// residual arcs only join adjacent layers, so each node's residual arcs are
// two bit sets (down to the layer below, up to the layer above), and the arcs
// a node may use are that bit set AND the neighbouring layer's nodes one
// step nearer the sink (one vector compare per 16 tokens, cached per layer);
// a node that cannot pass on all it was asked for is dead for the rest of the
// pass. Each node tries its own token's arc first: the residual term 0.5 I
// makes it the widest, so flow stays on fewer arcs (a third to two thirds of
// what a token-order search uses). A problem starts from zero flow: the arcs the
// last one used are put back (a log), not the whole graph. Output tokens run
// in parallel (OpenMP).
//
// Arithmetic: capacities are the float32 Â; residuals are double. A pass
// sends min(what is asked, residual), so the amount that reaches the sink is
// exactly what every arc on its way gives up; an arc that gives all it has is
// set to exactly 0 (or back to exactly its capacity), so each arc update
// rounds at most once, by 2^-53 relative. The value returned (the sum of what
// reached the sink) is within (arc updates) * 2^-53 of an exact max-flow of
// the float32 capacities, far below float32 rounding of the result (6e-8 at
// 1), which is what the tests compare against networkx.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

namespace {

// The sink's inflow within this of a cut's capacity counts as reaching it
// (sums of up to n * L float capacities in double differ by less).
constexpr double kCutSlack = 1e-12;
// The distance of nodes that cannot reach the sink (and of padding past a
// layer's last token): never on a shortest path.
constexpr int kUnreached = 1 << 29;

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
        residual_.assign(a, a + static_cast<size_t>(L - 1) * n * n);
        height_.assign(ids, kUnreached);
        const size_t bits = ids * static_cast<size_t>(words_);
        down_.assign(bits, 0), up_.assign(bits, 0), from_above_.assign(bits, 0);
        from_below_.assign(bits, 0);
        // Layer 1's arcs lead to layer 0, where only the sink counts: they are
        // read from residual_ directly, not kept as bit sets.
        for (int l = 1; l + 1 < L; ++l)
            for (int above = 0; above < n; ++above) {
                const float* cap = a + pair(l) + static_cast<size_t>(above) * n;
                for (int below = 0; below < n; ++below)
                    if (cap[below] > 0) {
                        set(down_, node(l + 1, above), below);
                        set(from_above_, node(l, below), above);
                    }
            }
        visited_.resize(static_cast<size_t>(L) * words_);
        mask_.resize(static_cast<size_t>(L) * words_);
        mask_height_.assign(static_cast<size_t>(L), -1);
        source_residual_.resize(static_cast<size_t>(n));
        stack_.reserve(ids + 1);  // a path visits each node at most once
    }

    // The maximum flow from output token `source` to input token `sink`.
    double solve(int source, int sink) {
        const float* top = a_ + pair(L_ - 1) + static_cast<size_t>(source) * n_;
        if (L_ == 1) return top[sink];  // one arc
        restore();
        sink_ = sink;
        double out_of_source = 0, into_sink = 0;
        for (int k = 0; k < n_; ++k) {
            source_residual_[static_cast<size_t>(k)] = top[k];
            out_of_source += top[k];
            into_sink += a_[static_cast<size_t>(k) * n_ + sink];
        }
        bound_ = std::min(out_of_source, into_sink);
        value_ = 0;
        done_ = bound_ <= 0;
        while (!done_) {
            distances_to_sink();
            int nearest = kUnreached;
            for (int k = 0; k < n_; ++k)
                if (source_residual_[static_cast<size_t>(k)] > 0)
                    nearest = std::min(nearest, height_[node(L_ - 1, k)]);
            if (nearest >= kUnreached) break;  // no augmenting path: the flow is maximal
            // One blocking flow, the source's own token first (see the top).
            for (int i = -1; i < n_ && !done_; ++i) {
                const int k = i < 0 ? source : i;
                double& r = source_residual_[static_cast<size_t>(k)];
                if (r <= 0 || height_[node(L_ - 1, k)] != nearest) continue;
                const double sent = send(node(L_ - 1, k), r);
                r = sent >= r ? 0 : r - sent;
            }
        }
        return std::min(value_, bound_);
    }

private:
    enum class Arc { sink, down, up };
    // One node of the depth-first pass: asked for `limit`, has sent `sent`.
    // Its arcs are tried in stages: its own token's arc down (or the sink's
    // arc from layer 1), the other arcs down, then the arcs back up.
    struct Frame {
        size_t v;
        double limit, sent = 0;
        int stage = 0, word = 0;
        Arc arc = Arc::down;  // the arc to the child being asked
        int other = 0;        // that arc's token in the other layer
    };

    size_t node(int l, int k) const { return (static_cast<size_t>(l) << shift_) + k; }
    int layer_of(size_t v) const { return static_cast<int>(v >> shift_); }
    int token_of(size_t v) const { return static_cast<int>(v & (stride_ - 1)); }
    // Arcs between layer l + 1 (rows) and layer l (columns).
    size_t pair(int l) const { return static_cast<size_t>(l) * n_ * n_; }
    Word* bits(std::vector<Word>& set, size_t v) { return set.data() + v * words_; }
    bool has(std::vector<Word>& s, size_t v, int k) { return bits(s, v)[k / 64] >> (k % 64) & 1; }
    void set(std::vector<Word>& s, size_t v, int k) { bits(s, v)[k / 64] |= Word{1} << (k % 64); }
    void clear(std::vector<Word>& s, size_t v, int k) {
        bits(s, v)[k / 64] &= ~(Word{1} << (k % 64));
    }

    // Puts back the arcs the last problem sent flow along (each was logged
    // when its flow first left 0).
    void restore() {
        for (const Used& e : used_) {
            const size_t arc = pair(e.layer) + static_cast<size_t>(e.above) * n_ + e.below;
            residual_[arc] = a_[arc];
            if (e.layer == 0) continue;
            const size_t v = node(e.layer + 1, e.above), w = node(e.layer, e.below);
            set(down_, v, e.below), set(from_above_, w, e.above);
            clear(up_, w, e.above), clear(from_below_, v, e.below);
        }
        used_.clear();
    }

    // Exact distances to the sink in the residual graph: breadth first,
    // backwards, over the residual bit sets.
    void distances_to_sink() {
        for (int l = 0; l < L_; ++l)
            std::fill_n(height_.begin() + static_cast<long>(l) * stride_, n_, kUnreached);
        std::fill(visited_.begin(), visited_.end(), 0);
        std::fill(mask_height_.begin(), mask_height_.end(), -1);
        queue_.clear();
        for (int k = 0; k < n_; ++k)
            if (residual_[static_cast<size_t>(k) * n_ + sink_] > 0) {
                height_[node(1, k)] = 1;
                set(visited_, 1, k);
                queue_.push_back(node(1, k));
            }
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
                        queue_.push_back(node(layer, k));
                    }
                }
            };
            if (l + 1 < L_) reach(bits(from_above_, w), l + 1);
            if (l > 1) reach(bits(from_below_, w), l - 1);
        }
    }

    // The live nodes of `layer` at distance `target`, cached per layer.
    const Word* at_height(int layer, int target) {
        Word* m = mask_.data() + static_cast<size_t>(layer) * words_;
        if (mask_height_[static_cast<size_t>(layer)] != target) {
            equal_mask(height_.data() + static_cast<size_t>(layer) * stride_, words_, target, m);
            mask_height_[static_cast<size_t>(layer)] = target;
        }
        return m;
    }

    // A node that could not pass on all it was asked for: off every shortest
    // path for the rest of this pass.
    void kill(size_t v) {
        const int l = layer_of(v), k = token_of(v);
        if (mask_height_[static_cast<size_t>(l)] == height_[v])
            mask_[static_cast<size_t>(l) * words_ + k / 64] &= ~(Word{1} << (k % 64));
        height_[v] = kUnreached;
    }

    // The next arc of `f` toward the sink, one step nearer it; false when none is left.
    bool next_arc(Frame& f) {
        const int l = layer_of(f.v), a = token_of(f.v), h = height_[f.v];
        if (f.stage == 0) {
            f.stage = l == 1 ? 2 : 1;
            if (l == 1) {
                if (h == 1 && residual_[static_cast<size_t>(a) * n_ + sink_] > 0) {
                    f.arc = Arc::sink;
                    return true;
                }
            } else if (has(down_, f.v, a) && (at_height(l - 1, h - 1)[a / 64] >> (a % 64) & 1)) {
                f.arc = Arc::down, f.other = a;
                return true;
            }
        }
        if (f.stage == 1) {
            const Word* open = bits(down_, f.v);
            const Word* nearer = at_height(l - 1, h - 1);
            for (; f.word < words_; ++f.word)
                if (const Word m = open[f.word] & nearer[f.word]) {
                    f.arc = Arc::down, f.other = 64 * f.word + std::countr_zero(m);
                    return true;
                }
            f.stage = 2, f.word = 0;
        }
        if (f.stage == 2 && l + 1 < L_) {
            const Word* back = bits(up_, f.v);
            const Word* nearer = at_height(l + 1, h - 1);
            for (; f.word < words_; ++f.word)
                if (const Word m = back[f.word] & nearer[f.word]) {
                    f.arc = Arc::up, f.other = 64 * f.word + std::countr_zero(m);
                    return true;
                }
        }
        f.stage = 3;
        return false;
    }

    // What f's current arc can carry.
    double room(const Frame& f) const {
        const int l = layer_of(f.v), a = token_of(f.v);
        if (f.arc == Arc::sink) return residual_[static_cast<size_t>(a) * n_ + sink_];
        if (f.arc == Arc::down)
            return residual_[pair(l - 1) + static_cast<size_t>(a) * n_ + f.other];
        const size_t e = pair(l) + static_cast<size_t>(f.other) * n_ + a;  // flow to undo
        return static_cast<double>(a_[e]) - residual_[e];
    }

    // Records `d` sent along f's current arc. The bit sets follow the stored
    // residual, not `d`: an arc is open down while its residual is > 0 and up
    // while it is < the capacity. (An amount far below the residual's ulp
    // leaves it unchanged; an arc marked by `d` instead would offer 0 forever.)
    void carry(Frame& f, double d) {
        f.sent += d;
        const int l = layer_of(f.v), a = token_of(f.v);
        if (f.arc == Arc::up) {  // less flow on (l+1, c) -> (l, a)
            const int c = f.other;
            const size_t e = pair(l) + static_cast<size_t>(c) * n_ + a;
            const size_t w = node(l + 1, c);
            const double capacity = a_[e], before = residual_[e];
            const double after = std::min(before + d, capacity);
            residual_[e] = after;
            if (before <= 0 && after > 0) set(down_, w, a), set(from_above_, f.v, c);
            if (after >= capacity) clear(up_, f.v, c), clear(from_below_, w, a);
            return;
        }
        const int below = f.arc == Arc::sink ? sink_ : f.other;
        const size_t e = pair(l - 1) + static_cast<size_t>(a) * n_ + below;
        const double before = residual_[e];
        const double after = d >= before ? 0 : before - d;
        residual_[e] = after;
        if (after == before) return;
        // The arc's first flow (the bit sets know for the inner arcs; the
        // sink's arcs are few): logged, to be put back for the next problem.
        const bool first = f.arc == Arc::down ? !has(up_, node(l - 1, below), a) : before >= a_[e];
        if (first) used_.push_back({l - 1, a, below});
        if (f.arc == Arc::down) {
            if (first) set(up_, node(l - 1, below), a), set(from_below_, f.v, below);
            if (after <= 0) clear(down_, f.v, below), clear(from_above_, node(l - 1, below), a);
        } else {
            value_ += d;
            done_ = value_ >= bound_ - kCutSlack;
        }
    }

    // Sends up to `limit` from node `start` toward the sink along shortest
    // residual paths (an explicit stack: paths can be long); returns what arrived.
    double send(size_t start, double limit) {
        stack_.clear();
        stack_.push_back({start, limit});
        double returned = 0;
        bool child_returned = false;
        for (;;) {
            Frame& f = stack_.back();
            if (child_returned) {
                child_returned = false;
                if (returned > 0) carry(f, returned);
            }
            while (f.sent < f.limit && !done_ && next_arc(f)) {
                const double ask = std::min(f.limit - f.sent, room(f));
                if (f.arc == Arc::sink) {
                    carry(f, ask);
                    continue;
                }
                const int l = layer_of(f.v);
                stack_.push_back({node(f.arc == Arc::down ? l - 1 : l + 1, f.other), ask});
                break;
            }
            if (&stack_.back() != &f) continue;  // a child was asked
            if (f.sent < f.limit && !done_) kill(f.v);
            returned = f.sent;
            stack_.pop_back();
            if (stack_.empty()) return returned;
            child_returned = true;
        }
    }

    struct Used {
        int layer, above, below;  // the arc (layer + 1, above) -> (layer, below)
    };

    const float* a_;
    int L_, n_, words_, shift_, stride_, sink_ = 0;
    double bound_ = 0, value_ = 0;
    bool done_ = false;
    std::vector<double> residual_;  // [L-1][n above][n below]: capacity - flow
    std::vector<int> height_;       // [L][stride]: distance to the sink
    // Residual arcs as bit sets per node v = (l, a): down_ to layer l-1 (flow
    // below capacity), up_ to layer l+1 (flow to undo); from_above_ and
    // from_below_ the same arcs seen from their heads (for the breadth-first
    // search).
    std::vector<Word> down_, up_, from_above_, from_below_, visited_, mask_;
    std::vector<int> mask_height_;
    std::vector<size_t> queue_;
    std::vector<double> source_residual_;
    std::vector<Used> used_;
    std::vector<Frame> stack_;
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
    // A max-flow needs capacities >= 0. One that is NaN or infinite leaves the
    // flow undefined (NaN, reported, not guessed) for every pair whose graph
    // holds it: all pairs for an inner layer, one output token for the top
    // layer's row, one input token for the bottom layer's column.
    const size_t square = static_cast<size_t>(n) * n;
    bool inner_undefined = false;
    std::vector<char> row_undefined(static_cast<size_t>(n)),
        column_undefined(static_cast<size_t>(n));
    for (size_t e = 0; e < matrices.size(); ++e) {
        const float c = matrices[e];
        const int l = static_cast<int>(e / square);
        const int row = static_cast<int>(e % square / n), column = static_cast<int>(e % n);
        if (c < 0)
            throw Error("flow: layer " + std::to_string(l) + "'s matrix has " + std::to_string(c) +
                        " at row " + std::to_string(row) + ", column " + std::to_string(column) +
                        ": a max-flow needs capacities >= 0 (attention probabilities)");
        if (std::isfinite(c) || n_layers == 1) continue;  // (one layer: the arc is the flow)
        if (l == n_layers - 1) row_undefined[static_cast<size_t>(row)] = 1;
        if (l == 0) column_undefined[static_cast<size_t>(column)] = 1;
        if (l > 0 && l < n_layers - 1) inner_undefined = true;
    }
    const int count = static_cast<int>(output_tokens.size());
    std::vector<float> out(static_cast<size_t>(count) * n, std::numeric_limits<float>::quiet_NaN());
    if (inner_undefined) return out;
    const int workers = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(workers)
    {
        LayeredMaxFlow problem(matrices.data(), n_layers, n);
#pragma omp for schedule(dynamic, 1)
        for (int o = 0; o < count; ++o) {
            const int source = output_tokens[static_cast<size_t>(o)];
            if (row_undefined[static_cast<size_t>(source)]) continue;
            for (int j = 0; j < n; ++j)
                if (!column_undefined[static_cast<size_t>(j)])
                    out[static_cast<size_t>(o) * n + j] =
                        static_cast<float>(problem.solve(source, j));
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
