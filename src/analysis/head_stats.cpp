// Per-head statistics (Clark et al. 2019) as exact, mergeable sums; see
// include/attnviz/head_stats.h and docs/analysis.md for the definitions.
#include "attnviz/head_stats.h"

#include <utf8proc.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {
namespace {

// Fixed-point units of one example's sum. Bounded inputs (a share sums to at
// most the rows, a distance to rows * keys) keep this far from overflow.
int64_t to_fixed(double sum) { return std::llround(sum * kHeadStatScale); }

void add_checked(int64_t& into, int64_t value, const std::string& block) {
    if (__builtin_add_overflow(into, value, &into))
        throw Error("head statistics of block '" + block + "': a corpus sum overflows int64");
}

bool is_space(utf8proc_int32_t cp) {
    if (cp == 0x2581) return true;  // SentencePiece's word-start mark
    const utf8proc_category_t category = utf8proc_category(cp);
    return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
           category == UTF8PROC_CATEGORY_ZP || (cp >= 0x09 && cp <= 0x0D);
}

bool is_punctuation_category(utf8proc_int32_t cp) {
    switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            return true;
        default:
            return false;
    }
}

// Non-empty after dropping white space, and every other code point is
// Unicode punctuation (general category P*).
bool is_punctuation(const std::string& text) {
    const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    auto left = static_cast<utf8proc_ssize_t>(text.size());
    bool any = false;
    while (left > 0) {
        utf8proc_int32_t cp = 0;
        const utf8proc_ssize_t used = utf8proc_iterate(bytes, left, &cp);
        if (used <= 0) return false;
        bytes += used;
        left -= used;
        if (is_space(cp)) continue;
        if (!is_punctuation_category(cp)) return false;
        any = true;
    }
    return any;
}

// ln(x) for finite x > 0 in float32, within about 2 ulp (Cephes' logf: x = m 2^e
// with m in [sqrt(1/2), sqrt(2)), a polynomial for ln(m)). Branch-free, so the
// compiler vectorizes the entropy loop: 4-5 times faster than std::log in double,
// which made the statistics cost more than 10% of a small model's forward.
inline float log_float(float x) {
    const auto bits = std::bit_cast<uint32_t>(x);
    int exponent = static_cast<int>((bits >> 23) & 0xff) - 127;
    float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
    const bool high = m > 1.41421356f;
    m = high ? m * 0.5f : m;
    exponent = high ? exponent + 1 : exponent;
    const float f = m - 1.0f, z = f * f;
    float y = 7.0376836292E-2f;
    y = y * f - 1.1514610310E-1f;
    y = y * f + 1.1676998740E-1f;
    y = y * f - 1.2420140846E-1f;
    y = y * f + 1.4249322787E-1f;
    y = y * f - 1.6668057665E-1f;
    y = y * f + 2.0000714765E-1f;
    y = y * f - 2.4999993993E-1f;
    y = y * f + 3.3333331174E-1f;
    y = y * f * z;
    const auto e = static_cast<float>(exponent);
    y += -2.12194440e-4f * e - 0.5f * z;  // ln 2 = 0.693359375 - 2.12194440e-4, split for accuracy
    return f + y + 0.693359375f * e;
}

struct RowSums {
    double entropy = 0, distance = 0;
    float top = 0;
    bool finite = true;
};

// One query row's entropy, mean distance and largest probability. Sums run in
// 16 lanes (a fixed order, the same on every CPU) so that they vectorize.
RowSums row_sums(const float* row, int K, int q, float* plogp) {
    RowSums out;
    for (int k = 0; k < K; ++k) {
        // p ln p with 0 ln 0 = 0: p = 0 gives 0 * ln(FLT_MIN) = 0.
        plogp[k] = row[k] * log_float(std::max(row[k], std::numeric_limits<float>::min()));
    }
    constexpr int kLanes = 16;
    double entropy[kLanes] = {}, distance[kLanes] = {};
    float top[kLanes] = {};
    int k = 0;
    for (; k + kLanes <= K; k += kLanes)
        for (int j = 0; j < kLanes; ++j) {
            const float p = row[k + j];
            entropy[j] -= plogp[k + j];
            distance[j] += static_cast<double>(p) * std::abs(q - k - j);
            top[j] = std::max(top[j], p);
        }
    for (int j = 0; j < kLanes; ++j) {
        out.entropy += entropy[j];
        out.distance += distance[j];
        out.top = std::max(out.top, top[j]);
    }
    for (; k < K; ++k) {
        out.entropy -= plogp[k];
        out.distance += static_cast<double>(row[k]) * std::abs(q - k);
        out.top = std::max(out.top, row[k]);
    }
    for (int i = 0; i < K; ++i)
        if (!std::isfinite(row[i])) out.finite = false;
    return out;
}

}  // namespace

KeyRoles key_roles(const AttentionTrace& trace, const AttentionBlock& block) {
    if (block.key_sequence < 0 || static_cast<size_t>(block.key_sequence) >= trace.sequences.size())
        throw Error("block '" + block.name + "' names a key sequence the trace does not have");
    const std::vector<TraceToken>& tokens = trace.sequences[block.key_sequence].tokens;
    const int n = static_cast<int>(tokens.size());
    if (n != block.n_keys)
        throw Error("block '" + block.name + "' has " + std::to_string(block.n_keys) +
                    " keys but its sequence has " + std::to_string(n) + " tokens");
    KeyRoles roles;
    if (n > 0 && (tokens[0].special || block.causal)) roles.cls = 0;
    // [SEP]/EOS: a run of special tokens (not [CLS]) that ends the sequence or
    // stands between non-special tokens of two different segments.
    for (int i = 0; i < n;) {
        if (!tokens[i].special || i == roles.cls) {
            ++i;
            continue;
        }
        int end = i;
        while (end < n && tokens[end].special && end != roles.cls) ++end;
        int before = i - 1;
        while (before >= 0 && tokens[before].special) --before;
        const bool ends_sequence = end == n;
        const bool between_segments =
            !ends_sequence && before >= 0 && tokens[end].segment != tokens[before].segment;
        if (ends_sequence || between_segments)
            for (int k = i; k < end; ++k) roles.seps.push_back(k);
        i = end;
    }
    for (int k = 0; k < n; ++k)
        if (!tokens[k].special && is_punctuation(tokens[k].display)) roles.puncts.push_back(k);
    return roles;
}

HeadStatSums head_stat_sums(const AttentionTrace& trace, const AttentionBlock& block) {
    require_dense(block, "head statistics");
    const KeyRoles roles = key_roles(trace, block);
    const bool same_sequence = block.query_sequence == block.key_sequence;
    const int Q = block.n_queries, K = block.n_keys;
    HeadStatSums out;
    out.block = block.name;
    out.n_layers = block.n_layers;
    out.n_heads = block.n_heads;
    out.examples = 1;
    const size_t cells = static_cast<size_t>(kHeadStatCount) * block.n_layers * block.n_heads;
    out.sums.assign(cells, 0);
    out.rows.assign(cells, 0);
    out.non_finite.assign(cells, 0);

    // Which rows define each statistic (the same for every head).
    std::array<int64_t, kHeadStatCount> defined{};
    defined[static_cast<int>(HeadStat::entropy)] = Q;
    defined[static_cast<int>(HeadStat::top1)] = Q;
    defined[static_cast<int>(HeadStat::punct)] = Q;
    defined[static_cast<int>(HeadStat::cls)] = roles.cls >= 0 ? Q : 0;
    defined[static_cast<int>(HeadStat::sep)] = roles.seps.empty() ? 0 : Q;
    if (same_sequence) {
        defined[static_cast<int>(HeadStat::distance)] = Q;
        defined[static_cast<int>(HeadStat::self)] = Q;
        defined[static_cast<int>(HeadStat::prev)] = std::max(Q - 1, 0);
        defined[static_cast<int>(HeadStat::next)] = std::max(Q - 1, 0);
    }

    double uniform = 0;
    for (int q = 0; q < Q; ++q) uniform += std::log(block.causal ? std::min(q + 1, K) : K);
    out.uniform_entropy = to_fixed(uniform);
    out.query_rows = Q;

    std::vector<float> plogp(static_cast<size_t>(K));
    for (int layer = 0; layer < block.n_layers; ++layer)
        for (int head = 0; head < block.n_heads; ++head) {
            std::array<double, kHeadStatCount> sum{};
            std::array<int64_t, kHeadStatCount> bad{};
            auto add = [&](HeadStat stat, double value) {
                const int s = static_cast<int>(stat);
                if (std::isfinite(value))
                    sum[s] += value;
                else
                    ++bad[s];
            };
            for (int q = 0; q < Q; ++q) {
                const float* row = block.probs.data() + block.index(layer, head, q, 0);
                const RowSums r = row_sums(row, K, q, plogp.data());
                const double entropy = r.entropy, distance = r.distance;
                const float top = r.top;
                const bool finite = r.finite;
                const double nan = std::numeric_limits<double>::quiet_NaN();
                add(HeadStat::entropy, finite ? entropy : nan);
                add(HeadStat::top1, finite ? top : nan);
                double punct = 0;
                for (int k : roles.puncts) punct += row[k];
                add(HeadStat::punct, punct);
                if (roles.cls >= 0) add(HeadStat::cls, row[roles.cls]);
                if (!roles.seps.empty()) {
                    double sep = 0;
                    for (int k : roles.seps) sep += row[k];
                    add(HeadStat::sep, sep);
                }
                if (same_sequence) {
                    add(HeadStat::distance, finite ? distance : nan);
                    add(HeadStat::self, row[q]);
                    if (q > 0) add(HeadStat::prev, row[q - 1]);
                    if (q + 1 < K) add(HeadStat::next, row[q + 1]);
                }
            }
            for (int s = 0; s < kHeadStatCount; ++s) {
                const size_t i = out.index(s, layer, head);
                out.sums[i] = to_fixed(sum[s]);
                out.rows[i] = defined[s];
                out.non_finite[i] = bad[s];
            }
        }
    return out;
}

std::vector<HeadStatSums> head_stat_sums(const AttentionTrace& trace) {
    std::vector<HeadStatSums> out;
    for (const AttentionBlock& block : trace.blocks) out.push_back(head_stat_sums(trace, block));
    return out;
}

void HeadStatSums::merge(const HeadStatSums& other) {
    if (other.block != block || other.n_layers != n_layers || other.n_heads != n_heads)
        throw Error("head statistics: cannot add block '" + other.block + "' [" +
                    std::to_string(other.n_layers) + "x" + std::to_string(other.n_heads) +
                    "] to block '" + block + "' [" + std::to_string(n_layers) + "x" +
                    std::to_string(n_heads) + "]");
    for (size_t i = 0; i < sums.size(); ++i) {
        add_checked(sums[i], other.sums[i], block);
        add_checked(rows[i], other.rows[i], block);
        add_checked(non_finite[i], other.non_finite[i], block);
    }
    add_checked(uniform_entropy, other.uniform_entropy, block);
    add_checked(query_rows, other.query_rows, block);
    add_checked(examples, other.examples, block);
}

double HeadStatSums::mean_uniform_entropy() const {
    if (query_rows == 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(uniform_entropy) / kHeadStatScale / static_cast<double>(query_rows);
}

double HeadStatSums::mean(HeadStat stat, int layer, int head) const {
    const size_t i = index(static_cast<int>(stat), layer, head);
    if (rows[i] == 0 || non_finite[i] > 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(sums[i]) / kHeadStatScale / static_cast<double>(rows[i]);
}

std::vector<double> HeadStatSums::means(HeadStat stat) const {
    std::vector<double> out;
    out.reserve(static_cast<size_t>(n_layers) * n_heads);
    for (int layer = 0; layer < n_layers; ++layer)
        for (int head = 0; head < n_heads; ++head) out.push_back(mean(stat, layer, head));
    return out;
}

HeadDivergenceSums head_divergence_sums(const AttentionBlock& block) {
    require_dense(block, "head statistics");
    const int n = block.n_layers * block.n_heads;
    const int Q = block.n_queries, K = block.n_keys;
    HeadDivergenceSums out;
    out.block = block.name;
    out.n_layers = block.n_layers;
    out.n_heads = block.n_heads;
    out.examples = 1;
    out.rows = Q;
    out.sums.assign(static_cast<size_t>(n) * n, 0);
    // JSD of rows p and r: sum_k [p ln(2p / (p + r)) + r ln(2r / (p + r))] / 2, term by
    // term (no cancellation between large sums), float32 terms in 16 lanes of doubles.
    auto row_of = [&](int head, int q) {
        return block.probs.data() + (static_cast<size_t>(head) * Q + q) * K;
    };
    constexpr float kTiny = std::numeric_limits<float>::min();
    for (int a = 0; a < n; ++a)
        for (int b = a + 1; b < n; ++b) {
            double total = 0;
            for (int q = 0; q < Q; ++q) {
                const float* p = row_of(a, q);
                const float* r = row_of(b, q);
                constexpr int kLanes = 16;
                double lanes[kLanes] = {};
                int k = 0;
                auto term = [&](int i) {
                    const float s = std::max(p[i] + r[i], kTiny);
                    return 0.5f * (p[i] * log_float(std::max(2 * p[i] / s, kTiny)) +
                                   r[i] * log_float(std::max(2 * r[i] / s, kTiny)));
                };
                for (; k + kLanes <= K; k += kLanes)
                    for (int j = 0; j < kLanes; ++j) lanes[j] += term(k + j);
                for (; k < K; ++k) total += term(k);
                for (int j = 0; j < kLanes; ++j) total += lanes[j];
            }
            const int64_t fixed = std::isfinite(total) ? to_fixed(std::max(total, 0.0)) : 0;
            out.sums[static_cast<size_t>(a) * n + b] = fixed;
            out.sums[static_cast<size_t>(b) * n + a] = fixed;
        }
    return out;
}

void HeadDivergenceSums::merge(const HeadDivergenceSums& other) {
    if (other.block != block || other.n_layers != n_layers || other.n_heads != n_heads)
        throw Error("head distances: cannot add block '" + other.block + "' to block '" + block +
                    "'");
    for (size_t i = 0; i < sums.size(); ++i) add_checked(sums[i], other.sums[i], block);
    add_checked(rows, other.rows, block);
    add_checked(examples, other.examples, block);
}

std::vector<double> HeadDivergenceSums::distances() const {
    std::vector<double> out(sums.size(), std::numeric_limits<double>::quiet_NaN());
    if (rows == 0) return out;
    for (size_t i = 0; i < sums.size(); ++i)
        out[i] =
            std::sqrt(static_cast<double>(sums[i]) / kHeadStatScale / static_cast<double>(rows));
    return out;
}

std::vector<double> classical_mds_2d(const std::vector<double>& distances, int n) {
    if (n <= 0 || distances.size() != static_cast<size_t>(n) * n)
        throw Error("classical MDS: the distance matrix is not " + std::to_string(n) + " x " +
                    std::to_string(n));
    // B = -1/2 J D^2 J, J = I - 11'/n (double centring).
    std::vector<double> b(static_cast<size_t>(n) * n);
    std::vector<double> row_mean(n, 0);
    double total = 0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            const double d = distances[static_cast<size_t>(i) * n + j];
            if (!std::isfinite(d)) throw Error("classical MDS: a distance is not finite");
            b[static_cast<size_t>(i) * n + j] = d * d;
            row_mean[i] += d * d / n;
        }
    for (int i = 0; i < n; ++i) total += row_mean[i] / n;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double& v = b[static_cast<size_t>(i) * n + j];
            v = -0.5 * (v - row_mean[i] - row_mean[j] + total);
        }
    // Cyclic Jacobi rotations (a symmetric eigen-solver in a few lines; LAPACK's
    // libraries made the program too big to start under a small ulimit -v).
    std::vector<double> vectors(static_cast<size_t>(n) * n, 0);  // column c: eigenvector c
    for (int i = 0; i < n; ++i) vectors[static_cast<size_t>(i) * n + i] = 1;
    auto at = [&](std::vector<double>& m, int i, int j) -> double& {
        return m[static_cast<size_t>(i) * n + j];
    };
    double scale = 0;
    for (double v : b) scale += v * v;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (int i = 0; i < n; ++i)
            for (int j = i + 1; j < n; ++j) off += at(b, i, j) * at(b, i, j);
        if (off <= 1e-30 * scale || off == 0) break;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) {
                const double apq = at(b, p, q);
                if (apq == 0) continue;
                const double theta = (at(b, q, q) - at(b, p, p)) / (2 * apq);
                const double t =
                    (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), sn = t * c;
                for (int k = 0; k < n; ++k) {  // rows p and q, then columns p and q
                    const double bpk = at(b, p, k), bqk = at(b, q, k);
                    at(b, p, k) = c * bpk - sn * bqk;
                    at(b, q, k) = sn * bpk + c * bqk;
                }
                for (int k = 0; k < n; ++k) {
                    const double bkp = at(b, k, p), bkq = at(b, k, q);
                    at(b, k, p) = c * bkp - sn * bkq;
                    at(b, k, q) = sn * bkp + c * bkq;
                    const double vkp = at(vectors, k, p), vkq = at(vectors, k, q);
                    at(vectors, k, p) = c * vkp - sn * vkq;
                    at(vectors, k, q) = sn * vkp + c * vkq;
                }
            }
    }
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int x, int y) { return at(b, x, x) > at(b, y, y); });
    std::vector<double> points(static_cast<size_t>(n) * 2, 0);
    for (int axis = 0; axis < 2 && axis < n; ++axis) {
        const int c = order[axis];
        const double eigenvalue = at(b, c, c);
        const double root = eigenvalue > 0 ? std::sqrt(eigenvalue) : 0;
        int largest = 0;
        for (int i = 1; i < n; ++i)
            if (std::abs(at(vectors, i, c)) > std::abs(at(vectors, largest, c))) largest = i;
        const double sign = at(vectors, largest, c) < 0 ? -1 : 1;
        for (int i = 0; i < n; ++i)
            points[static_cast<size_t>(i) * 2 + axis] = sign * root * at(vectors, i, c);
    }
    return points;
}

}  // namespace attnviz::analysis
