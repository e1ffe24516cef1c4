// Per-head statistics of attention (Clark et al. 2019, "What Does BERT Look
// At?"): entropy, mean attention distance, and the share of attention on
// [CLS], [SEP]/EOS, punctuation, the token itself, the previous and the next
// token, and the top-1 share; and Jensen-Shannon distances between heads.
// Definitions: docs/analysis.md, "Head statistics". Owner: src/analysis.
//
// Corpus averages are exact: each example adds fixed-point integer sums
// (value * 2^24, rounded once per example) and integer row counts, so adding
// the sums of any partition of a corpus, in any order, gives the same bits.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz::analysis {

enum class HeadStat { entropy, distance, cls, sep, punct, self, prev, next, top1 };
inline constexpr int kHeadStatCount = 9;
// The statistics' names, in HeadStat order: npz arrays are head_stats_<name>.
inline constexpr std::array<std::string_view, kHeadStatCount> kHeadStatNames = {
    "entropy", "distance", "cls", "sep", "punct", "self", "prev", "next", "top1"};

// A sum of one example is stored as round(sum * kHeadStatScale) (int64).
inline constexpr double kHeadStatScale = 16777216.0;  // 2^24

// Which keys of a block's key sequence are [CLS], [SEP]/EOS and punctuation.
struct KeyRoles {
    int cls = -1;             // the key position of [CLS]/BOS, or -1: none
    std::vector<int> seps;    // [SEP]/EOS key positions, ascending
    std::vector<int> puncts;  // punctuation key positions, ascending
};
KeyRoles key_roles(const AttentionTrace& trace, const AttentionBlock& block);

// The sums of one block's per-head statistics over the query rows of one or
// more examples. Arrays are [stat][layer][head].
struct HeadStatSums {
    std::string block;  // the block's name: "self", "encoder", "decoder", "cross"
    int n_layers = 0, n_heads = 0;
    int64_t examples = 0;
    std::vector<int64_t> sums;        // fixed point, kHeadStatScale units
    std::vector<int64_t> rows;        // query rows where the statistic is defined
    std::vector<int64_t> non_finite;  // of those, rows whose value was NaN or inf
    // The entropy of even attention for comparison: the sum over query rows of
    // log(keys the row may see: all, or in a causal block those up to itself),
    // fixed point; divide by `query_rows`.
    int64_t uniform_entropy = 0;
    int64_t query_rows = 0;

    size_t index(int stat, int layer, int head) const {
        return (static_cast<size_t>(stat) * n_layers + layer) * n_heads + head;
    }
    // Adds another's sums; throws Error when the blocks' names or shapes differ
    // or a sum would overflow int64.
    void merge(const HeadStatSums& other);
    // The corpus average; NaN when no row defines it or a row was not finite.
    double mean(HeadStat stat, int layer, int head) const;
    std::vector<double> means(HeadStat stat) const;  // [layer][head]
    double mean_uniform_entropy() const;
};

// One example's sums for one block. The block needs every probability
// (a full capture); throws Error otherwise.
HeadStatSums head_stat_sums(const AttentionTrace& trace, const AttentionBlock& block);
// One per block of the trace, in block order.
std::vector<HeadStatSums> head_stat_sums(const AttentionTrace& trace);

// Jensen-Shannon divergences between the heads of one block, summed over
// query rows (natural log): pairs [i][j], i and j = layer * n_heads + head.
struct HeadDivergenceSums {
    std::string block;
    int n_layers = 0, n_heads = 0;
    int64_t examples = 0, rows = 0;
    std::vector<int64_t> sums;  // [n_layers * n_heads]^2, fixed point, symmetric
    void merge(const HeadDivergenceSums& other);
    // sqrt(mean divergence): the Jensen-Shannon distance, a metric.
    std::vector<double> distances() const;
};
HeadDivergenceSums head_divergence_sums(const AttentionBlock& block);

// Classical (Torgerson) multidimensional scaling of an n x n distance matrix
// into 2-D points [n][2]: the top two eigenvectors of the double-centred
// squared distances, scaled by the square roots of their eigenvalues (0 where
// an eigenvalue is negative). Each axis' sign is fixed so that its largest
// component by magnitude is positive.
std::vector<double> classical_mds_2d(const std::vector<double>& distances, int n);

}  // namespace attnviz::analysis
