// AttentionShape::softcap (Gemma 2's attn_logit_softcapping): the scaled product
// passes cap * tanh(x / cap) before the bias and the masks, in attention() and
// attention_reference() alike, and a -inf bias (a sliding window) still masks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "runtime/attention.h"

namespace attnviz::runtime {
namespace {

std::vector<float> random_values(size_t n, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// One query against three keys, head_dim 1: scores by hand.
TEST(AttentionSoftcap, HandComputedRowWithWindowMask) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> query = {2.0f}, keys = {5.0f, 0.0f, -1.0f, 3.0f};
    const std::vector<float> values = {1.0f, 2.0f, 3.0f, 4.0f};
    const std::vector<float> bias = {0.0f, 0.0f, 0.0f, -inf};  // key 3 outside the window
    for (bool reference : {false, true}) {
        SCOPED_TRACE(reference ? "attention_reference" : "attention");
        AttentionShape shape{1, 1, 1, 4, 1, 0.5f, false};
        shape.softcap = 4.0f;
        AttentionInputs in{query.data(), 1, keys.data(), 1, values.data(), 1, nullptr, bias.data()};
        std::vector<float> probs(4), context(1);
        (reference ? attention_reference : attention)(shape, in, probs.data(), context.data(), 1);
        // scaled products 5, 0, -1; capped 4 tanh(5/4), 0, 4 tanh(-1/4)
        const double s[3] = {4 * std::tanh(1.25), 0.0, 4 * std::tanh(-0.25)};
        const double sum = std::exp(s[0]) + std::exp(s[1]) + std::exp(s[2]);
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(probs[k], std::exp(s[k]) / sum, 1e-6) << k;
        EXPECT_EQ(probs[3], 0.0f);
        EXPECT_NEAR(context[0], (std::exp(s[0]) + 2 * std::exp(s[1]) + 3 * std::exp(s[2])) / sum,
                    1e-5);
    }
}

TEST(AttentionSoftcap, MatchesReferenceWithMasksCausalGroupsAndBias) {
    for (bool causal : {false, true})
        for (bool with_bias : {false, true}) {
            AttentionShape shape{8, 2, 9, 9, 8, 0.35f, causal};
            shape.softcap = 3.0f;
            const int Q = 9, K = 9, D = 8, qw = 8 * D, kw = 2 * D;
            const auto q = random_values(static_cast<size_t>(Q) * qw, 3.0f, 1);
            const auto k = random_values(static_cast<size_t>(K) * kw, 3.0f, 2);
            const auto v = random_values(static_cast<size_t>(K) * kw, 1.0f, 3);
            auto bias = random_values(static_cast<size_t>(8) * Q * K, 2.0f, 4);
            for (size_t i = 0; i < bias.size(); ++i)  // key 0 stays visible to every query
                if (i % 7 == 3 && i % K != 0) bias[i] = -INFINITY;
            std::vector<uint8_t> mask(K, 1);
            mask[4] = 0;
            AttentionInputs in{q.data(), qw, k.data(),    kw,
                               v.data(), kw, mask.data(), with_bias ? bias.data() : nullptr};
            std::vector<float> probs(static_cast<size_t>(8) * Q * K), want(probs.size());
            std::vector<float> context(static_cast<size_t>(Q) * qw), want_context(context.size());
            attention(shape, in, probs.data(), context.data(), qw);
            attention_reference(shape, in, want.data(), want_context.data(), qw);
            for (size_t i = 0; i < probs.size(); ++i)
                ASSERT_NEAR(probs[i], want[i], 1e-6) << i << " causal " << causal;
            for (size_t i = 0; i < context.size(); ++i)
                ASSERT_NEAR(context[i], want_context[i], 1e-5);
        }
}

}  // namespace
}  // namespace attnviz::runtime
