// The blocked attention kernels (probabilities kept, and context only) against
// attention_reference (the definition, double accumulation), within a float32
// error model derived below from the accumulation lengths and the unit
// roundoff u = 2^-24, not tuned to what one CPU happens to give.
//
// Scores: s = scale * (q.k + bias), a sum of head_dim + 1 terms, so
//   |s' - s| <= scale * g(D + 1) * (sum_d |q_d k_d| + |bias|) + 2u|s|  =: delta_k
// (g(n) = n u / (1 - n u); the 2u|s|: the kernel's scale and the reference's own
// cast of the score to float). With every score off by at most Delta = max_k delta_k,
// each probability is off by a factor within e^(2 Delta) (numerator and sum).
// The exponential adds 2 ulp (<= 4u) and the rounding of its argument s - m adds
// u|s - m|; the sum of n_keys terms g(n_keys); the normalisation and, in the
// context-only kernel, each block's rescaling e^(m_old - m_new) a few u (3u per
// block, at most one block per key). So, relative to the exact probability p_k:
//   rel = expm1(2 Delta) + 2u (max_k |s_k - m| + 4) + g(n_keys) + 3u (n_keys + 1)
//   |p'_k - p_k| <= (rel + u) p_k + 2e-38       (u: the reference's cast; e^-87 -> 0)
// and the context, a sum over at most 2 n_keys terms (keys, plus one add per block):
//   |c' - c| <= (rel + g(2 n_keys) + u) sum_k p_k |v_k| + u |c|
// Soft-capped scores (Gemma 2), s = cap tanh(scale q.k / cap) + scale bias: the cap
// has slope <= 1, so the product's error passes through at most as is; the
// argument's division and scale add 2u scale |q.k|, tanh (2 ulp) and the
// product with cap 5u cap, the bias u scale |bias|:
//   delta_k = scale g(D) sum_d |q_d k_d| + 2u scale |q.k| + 5u cap + u scale |bias| + 2u|s|
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/attention.h"
#include "runtime/threads.h"

using namespace attnviz::runtime;

namespace {

constexpr double kUnit = 0x1p-24;
double g(double n) { return n * kUnit / (1 - n * kUnit); }

struct Inputs {
    std::vector<float> q, k, v, bias;
    std::vector<uint8_t> mask;
    int q_width = 0, kv_width = 0;
    AttentionInputs in;
};

Inputs make_inputs(const AttentionShape& shape, bool with_mask, bool with_bias, unsigned seed) {
    Inputs x;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    const auto fill = [&](std::vector<float>& values, size_t n, float scale) {
        values.resize(n);
        for (float& value : values) value = scale * uniform(rng);
    };
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    x.q_width = shape.n_heads * D + 5, x.kv_width = shape.n_kv_heads * D + 3;  // padded rows
    fill(x.q, static_cast<size_t>(Q) * x.q_width, 2.0f);
    fill(x.k, static_cast<size_t>(K) * x.kv_width, 2.0f);
    fill(x.v, static_cast<size_t>(K) * x.kv_width, 1.0f);
    fill(x.bias, static_cast<size_t>(shape.n_heads) * Q * K, 3.0f);
    x.mask.assign(K, 1);
    for (int key = 1; key < K; key += 4) x.mask[key] = 0;
    x.in = {x.q.data(),
            x.q_width,
            x.k.data(),
            x.kv_width,
            x.v.data(),
            x.kv_width,
            with_mask ? x.mask.data() : nullptr,
            with_bias ? x.bias.data() : nullptr};
    return x;
}

struct Bounds {
    std::vector<double> probs, context;  // per output, as laid out by attention()
};

// The error model above, per output, from the inputs and the reference's probabilities.
Bounds error_bounds(const AttentionShape& shape, const AttentionInputs& in,
                    const std::vector<float>& probs, const std::vector<float>& context,
                    int context_stride) {
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int group = shape.n_heads / shape.n_kv_heads;
    Bounds bounds{std::vector<double>(probs.size()), std::vector<double>(context.size())};
    for (int head = 0; head < shape.n_heads; ++head) {
        const int kv = head / group;
        for (int query = 0; query < Q; ++query) {
            const float* q = in.queries + static_cast<size_t>(query) * in.query_stride + head * D;
            double delta = 0, max = -INFINITY;
            std::vector<double> scores(K, -INFINITY);
            for (int key = 0; key < K; ++key) {
                if ((in.key_mask && !in.key_mask[key]) || (shape.causal && key > query + K - Q))
                    continue;
                const float* k = in.keys + static_cast<size_t>(key) * in.key_stride + kv * D;
                double dot = 0, magnitude = 0;
                for (int d = 0; d < D; ++d) {
                    dot += double(q[d]) * k[d];
                    magnitude += std::fabs(double(q[d]) * k[d]);
                }
                const double bias =
                    in.score_bias ? in.score_bias[(static_cast<size_t>(head) * Q + query) * K + key]
                                  : 0.0;
                const double scale = shape.score_scale, cap = shape.softcap;
                if (cap > 0) {
                    scores[key] = cap * std::tanh(scale * dot / cap) + scale * bias;
                    delta = std::max(delta, scale * g(D) * magnitude +
                                                2 * kUnit * scale * std::fabs(dot) +
                                                5 * kUnit * cap + kUnit * scale * std::fabs(bias) +
                                                2 * kUnit * std::fabs(scores[key]));
                } else {
                    scores[key] = scale * (dot + bias);
                    delta = std::max(delta, scale * g(D + 1) * (magnitude + std::fabs(bias)) +
                                                2 * kUnit * std::fabs(scores[key]));
                }
                max = std::max(max, scores[key]);
            }
            double spread = 0;
            for (int key = 0; key < K; ++key)
                if (std::isfinite(scores[key])) spread = std::max(spread, max - scores[key]);
            const double rel = std::expm1(2 * delta) + 2 * kUnit * (std::min(spread, 88.0) + 4) +
                               g(K) + 3 * kUnit * (K + 1);
            const size_t row = (static_cast<size_t>(head) * Q + query) * K;
            double weighted = 0;  // sum_k p_k |v_k|, per dimension below
            for (int key = 0; key < K; ++key)
                bounds.probs[row + key] = (rel + kUnit) * probs[row + key] + 2e-38;
            for (int d = 0; d < D; ++d) {
                weighted = 0;
                for (int key = 0; key < K; ++key)
                    weighted +=
                        probs[row + key] *
                        std::fabs(
                            in.values[static_cast<size_t>(key) * in.value_stride + kv * D + d]);
                const size_t out = static_cast<size_t>(query) * context_stride + head * D + d;
                bounds.context[out] =
                    (rel + g(2.0 * K) + kUnit) * weighted + kUnit * std::fabs(context[out]);
            }
        }
    }
    return bounds;
}

::testing::AssertionResult within(const std::vector<float>& actual,
                                  const std::vector<float>& expected,
                                  const std::vector<double>& bound) {
    for (size_t i = 0; i < actual.size(); ++i) {
        if (std::isnan(expected[i]) != std::isnan(actual[i]))
            return ::testing::AssertionFailure()
                   << "index " << i << ": " << actual[i] << " vs " << expected[i];
        if (std::isnan(expected[i])) continue;
        const double error = std::fabs(double(actual[i]) - expected[i]);
        if (!(error <= bound[i]))
            return ::testing::AssertionFailure() << "index " << i << ": " << actual[i] << " vs "
                                                 << expected[i] << " (bound " << bound[i] << ")";
    }
    return ::testing::AssertionSuccess();
}

void check(const AttentionShape& shape, bool mask, bool bias, int threads) {
    SCOPED_TRACE("heads " + std::to_string(shape.n_heads) + " kv " +
                 std::to_string(shape.n_kv_heads) + " Q " + std::to_string(shape.n_queries) +
                 " K " + std::to_string(shape.n_keys) + " D " + std::to_string(shape.head_dim) +
                 " causal " + std::to_string(shape.causal) + " softcap " +
                 std::to_string(shape.softcap) + " mask " + std::to_string(mask) + " bias " +
                 std::to_string(bias) + " threads " + std::to_string(threads));
    ThreadScope scope(threads);
    const Inputs x = make_inputs(shape, mask, bias, 40 + shape.n_keys);
    const int stride = shape.n_heads * shape.head_dim + 7;
    const size_t n_probs = static_cast<size_t>(shape.n_heads) * shape.n_queries * shape.n_keys;
    std::vector<float> probs(n_probs, -1.0f), expected_probs(n_probs);
    std::vector<float> context(static_cast<size_t>(shape.n_queries) * stride, 0.0f);
    std::vector<float> expected_context = context, context_only = context;
    attention_reference(shape, x.in, expected_probs.data(), expected_context.data(), stride);
    attention(shape, x.in, probs.data(), context.data(), stride);
    attention(shape, x.in, nullptr, context_only.data(), stride);
    const Bounds bounds = error_bounds(shape, x.in, expected_probs, expected_context, stride);
    EXPECT_TRUE(within(probs, expected_probs, bounds.probs)) << "probs";
    EXPECT_TRUE(within(context, expected_context, bounds.context)) << "context, probs kept";
    EXPECT_TRUE(within(context_only, expected_context, bounds.context)) << "context only";
}

}  // namespace

TEST(BlockedAttention, MatchesReferenceWithinTheErrorModel) {
    for (int threads : {1, 2})
        for (bool causal : {false, true})
            for (bool mask : {false, true})
                for (bool bias : {false, true}) {
                    check({4, 4, 13, 13, 16, 0.25f, causal}, mask, bias, threads);
                    check({8, 2, 5, 11, 8, 0.3f, causal}, mask, bias, threads);  // GQA, prefix
                    // several key blocks (256 keys) and query tiles, ragged ends
                    check({3, 1, 150, 600, 32, 0.2f, causal}, mask, bias, threads);
                }
    check({2, 2, 300, 300, 64, 0.125f, true}, false, false, 2);  // decoder, tiles of 64
    check({2, 2, 70, 2100, 64, 0.125f, false}, true, true, 1);   // long keys: smaller tiles
    for (bool causal : {false, true})  // Gemma 2's soft cap, with and without a bias
        for (bool bias : {false, true})
            check({4, 2, 40, 300, 32, 0.2f, causal, 2.0f}, true, bias, 2);
}

// NaN and fully masked rows, in both kernels, as the reference gives them: a
// NaN or +inf score makes its row NaN; visible keys that all score -inf make
// it NaN; a query the mask lets see no key gets zeros. The poisoned key sits in
// the second block of keys, so the online softmax must carry the NaN across.
TEST(BlockedAttention, NonFiniteScoresAndMaskedRowsMatchTheReference) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (bool causal : {false, true})
        for (float poison : {nan, inf, -inf}) {
            AttentionShape shape{2, 1, 40, 300, 4, 1.0f, causal};
            Inputs x = make_inputs(shape, true, false, 7);
            const int poisoned_key = 280;  // visible to the last queries when causal
            for (int d = 0; d < 4; ++d) x.k[static_cast<size_t>(poisoned_key) * x.kv_width + d] = 0;
            x.k[static_cast<size_t>(poisoned_key) * x.kv_width] = poison;
            x.mask[poisoned_key] = 1;
            // key 0 alone (others hidden) and -inf: the first query sees only -inf
            x.k[0] = -inf, x.mask[0] = 1;
            for (int key = 1; key <= 260; ++key) x.mask[key] = 0;
            for (int key = 0; key < 4; ++key) x.q[key] = 1.0f;
            const int stride = 4 * 2;
            std::vector<float> expected_probs(2 * 40 * 300), probs(expected_probs.size());
            std::vector<float> expected(40 * stride), kept(expected.size()), only(expected.size());
            attention_reference(shape, x.in, expected_probs.data(), expected.data(), stride);
            attention(shape, x.in, probs.data(), kept.data(), stride);
            attention(shape, x.in, nullptr, only.data(), stride);
            for (size_t i = 0; i < expected.size(); ++i) {
                SCOPED_TRACE("output " + std::to_string(i) + " causal " + std::to_string(causal) +
                             " poison " + std::to_string(poison));
                EXPECT_EQ(std::isnan(expected[i]), std::isnan(only[i]));
                EXPECT_EQ(std::isnan(expected[i]), std::isnan(kept[i]));
            }
            for (size_t i = 0; i < probs.size(); ++i)
                ASSERT_EQ(std::isnan(expected_probs[i]), std::isnan(probs[i])) << i;
        }
    // every key masked: zeros from both, not NaN
    AttentionShape shape{1, 1, 3, 500, 2, 1.0f, false};
    Inputs x = make_inputs(shape, true, false, 9);
    std::fill(x.mask.begin(), x.mask.end(), 0);
    std::vector<float> probs(3 * 500, -1.0f), kept(6, -1.0f), only(6, -1.0f);
    attention(shape, x.in, probs.data(), kept.data(), 2);
    attention(shape, x.in, nullptr, only.data(), 2);
    for (float p : probs) EXPECT_EQ(p, 0.0f);
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(kept[i], 0.0f);
        EXPECT_EQ(only[i], 0.0f);
    }
}
