// Every fast kernel against its reference twin (the definition, in loops with
// double accumulation), on shapes that cover the edge cases the models hit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "runtime/attention.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"
#include "runtime/threads.h"

using namespace attnviz::runtime;

namespace {

std::vector<float> random_values(size_t n, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-scale, scale);
    std::vector<float> values(n);
    for (float& v : values) v = uniform(rng);
    return values;
}

::testing::AssertionResult all_close(const std::vector<float>& actual,
                                     const std::vector<float>& expected, double tolerance) {
    if (actual.size() != expected.size()) return ::testing::AssertionFailure() << "sizes differ";
    for (size_t i = 0; i < actual.size(); ++i) {
        const double difference = std::fabs(double(actual[i]) - expected[i]);
        if (!(difference <= tolerance))
            return ::testing::AssertionFailure()
                   << "index " << i << ": " << actual[i] << " vs " << expected[i] << " (tolerance "
                   << tolerance << ")";
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

// fp32 matmul against a double-accumulated reference: sums of ~100 products of
// size ~0.1 agree to ~1e-6; oneDNN's fused activations (its erf and tanh
// polynomials) stay within 1e-6 of std::erf / std::tanh.
constexpr double kLinearTolerance = 1e-5;

TEST(Linear, MatchesReferenceForEveryLayoutActivationAndRowCount) {
    const int in = 96, out = 200;
    const auto weight = random_values(static_cast<size_t>(in) * out, 0.2f, 1);
    const auto bias = random_values(out, 0.5f, 2);
    for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
        for (Activation activation : {Activation::none, Activation::gelu_erf, Activation::gelu_tanh,
                                      Activation::quick_gelu, Activation::relu, Activation::relu6,
                                      Activation::silu, Activation::tanh, Activation::sigmoid}) {
            const Linear linear(weight.data(), bias.data(), in, out, layout, activation);
            for (int rows : {7, 1, 7, 128, 300}) {  // the first call runs unpacked
                const auto x = random_values(static_cast<size_t>(rows) * in, 1.0f, 3 + rows);
                std::vector<float> y(static_cast<size_t>(rows) * out), expected(y.size());
                linear.forward(x.data(), y.data(), rows);
                linear_reference(x.data(), weight.data(), bias.data(), expected.data(), rows, in,
                                 out, layout, activation);
                EXPECT_TRUE(all_close(y, expected, kLinearTolerance))
                    << "layout " << int(layout) << " activation " << activation_name(activation)
                    << " rows " << rows;
            }
        }
    }
}

TEST(Linear, FusedPartsEqualSeparateLayersAndForwardAddAccumulates) {
    const int in = 64, rows = 9;
    const auto w0 = random_values(32 * in, 0.2f, 10), b0 = random_values(32, 0.5f, 11);
    const auto w1 = random_values(48 * in, 0.2f, 12);  // no bias: zeros
    const auto x = random_values(rows * in, 1.0f, 13);
    for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
        const Linear fused({{w0.data(), b0.data(), 32}, {w1.data(), nullptr, 48}}, in, layout);
        std::vector<float> y(rows * 80), packed_y(rows * 80);
        fused.forward(x.data(), y.data(), rows);         // on the weights in place
        fused.forward(x.data(), packed_y.data(), rows);  // packed
        std::vector<float> y0(rows * 32), y1(rows * 48);
        linear_reference(x.data(), w0.data(), b0.data(), y0.data(), rows, in, 32, layout);
        linear_reference(x.data(), w1.data(), nullptr, y1.data(), rows, in, 48, layout);
        std::vector<float> expected;
        for (int r = 0; r < rows; ++r) {
            expected.insert(expected.end(), y0.begin() + r * 32, y0.begin() + (r + 1) * 32);
            expected.insert(expected.end(), y1.begin() + r * 48, y1.begin() + (r + 1) * 48);
        }
        EXPECT_TRUE(all_close(y, expected, kLinearTolerance));
        EXPECT_TRUE(all_close(packed_y, expected, kLinearTolerance));
    }
    const Linear single(w0.data(), b0.data(), in, 32);
    std::vector<float> residual = random_values(rows * 32, 1.0f, 14), expected(rows * 32);
    linear_reference(x.data(), w0.data(), b0.data(), expected.data(), rows, in, 32);
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += residual[i];
    auto twice = residual;
    single.forward_add(x.data(), residual.data(), rows);  // in place
    EXPECT_TRUE(all_close(residual, expected, kLinearTolerance));
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += expected[i] - twice[i];
    single.forward_add(x.data(), residual.data(), rows);  // packed: adds x W^T + b again
    EXPECT_TRUE(all_close(residual, expected, kLinearTolerance));
}

TEST(Softmax, MatchesReferenceWithMaskedAndAllMaskedRows) {
    const int rows = 40, cols = 77;
    auto x = random_values(rows * cols, 30.0f, 20);
    const float inf = std::numeric_limits<float>::infinity();
    for (int c = 0; c < cols; c += 3) x[c] = -inf;      // row 0: some masked
    for (int c = 0; c < cols; ++c) x[cols + c] = -inf;  // row 1: all masked
    x[2 * cols + 5] = 1e30f;                            // row 2: one huge score
    auto expected = x;
    softmax_rows(x.data(), rows, cols);
    softmax_rows_reference(expected.data(), rows, cols);
    EXPECT_TRUE(all_close(x, expected, 1e-6));  // exp within 2 ulp; probabilities <= 1
    for (int c = 0; c < cols; c += 3) EXPECT_EQ(x[c], 0.0f);
    for (int c = 0; c < cols; ++c) EXPECT_EQ(x[cols + c], 0.0f);
    EXPECT_EQ(x[2 * cols + 5], 1.0f);
}

// torch.softmax's results (torch 1.13, checked by hand): a NaN or +inf anywhere
// makes the whole row NaN; -inf entries give 0. A row that is all -inf is NaN in
// torch and all 0 here (a query the mask lets see no key). Before issue 12 a
// row of NaN came out as zeros.
TEST(Softmax, NonFiniteScoresPropagateAsInTorch) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> long_row(18);
    for (int i = 0; i < 18; ++i) long_row[i] = static_cast<float>(i + 1);
    long_row[10] = nan;  // past the first vector of 16 lanes
    const struct {
        std::vector<float> row, want;
    } cases[] = {
        {{1, inf}, {nan, nan}},        {{1, nan}, {nan, nan}},
        {{nan, nan}, {nan, nan}},      {{inf, inf}, {nan, nan}},
        {{nan, -inf}, {nan, nan}},     {{-inf, 1}, {0, 1}},
        {{-inf, -inf}, {0, 0}},        {long_row, std::vector<float>(18, nan)},
        {{1e30f, 1, -inf}, {1, 0, 0}},
    };
    for (const auto& c : cases) {
        for (bool reference : {false, true}) {
            std::vector<float> row = c.row;
            const int cols = static_cast<int>(row.size());
            if (reference)
                softmax_rows_reference(row.data(), 1, cols);
            else
                softmax_row(row.data(), cols);
            for (int i = 0; i < cols; ++i) {
                if (std::isnan(c.want[i]))
                    EXPECT_TRUE(std::isnan(row[i])) << "entry " << i << " of row " << cols;
                else
                    EXPECT_EQ(row[i], c.want[i]) << "entry " << i << " of row " << cols;
            }
        }
    }
}

TEST(Norms, LayerNormAndRmsNormMatchReference) {
    const int rows = 33, cols = 768;
    const auto x = random_values(rows * cols, 4.0f, 30);
    const auto weight = random_values(cols, 1.0f, 31), bias = random_values(cols, 1.0f, 32);
    std::vector<float> y(x.size()), expected(x.size());
    layer_norm(x.data(), weight.data(), bias.data(), y.data(), rows, cols, 1e-12f);
    layer_norm_reference(x.data(), weight.data(), bias.data(), expected.data(), rows, cols, 1e-12f);
    EXPECT_TRUE(all_close(y, expected, 1e-5));
    auto in_place = x;
    layer_norm(in_place.data(), weight.data(), nullptr, in_place.data(), rows, cols, 1e-5f);
    layer_norm_reference(x.data(), weight.data(), nullptr, expected.data(), rows, cols, 1e-5f);
    EXPECT_TRUE(all_close(in_place, expected, 1e-5));
    rms_norm(x.data(), weight.data(), y.data(), rows, cols, 1e-6f);
    rms_norm_reference(x.data(), weight.data(), expected.data(), rows, cols, 1e-6f);
    EXPECT_TRUE(all_close(y, expected, 1e-5));
}

namespace {

void check_attention(AttentionShape shape, bool with_mask, bool with_bias, int threads) {
    ThreadScope scope(threads);
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int q_width = shape.n_heads * D + 5, kv_width = shape.n_kv_heads * D + 3;  // padded rows
    const auto q = random_values(static_cast<size_t>(Q) * q_width, 2.0f, 40);
    const auto k = random_values(static_cast<size_t>(K) * kv_width, 2.0f, 41);
    const auto v = random_values(static_cast<size_t>(K) * kv_width, 1.0f, 42);
    std::vector<uint8_t> mask(K, 1);
    for (int key = 1; key < K; key += 4) mask[key] = 0;
    const auto bias = random_values(static_cast<size_t>(shape.n_heads) * Q * K, 3.0f, 43);
    AttentionInputs in{q.data(),
                       q_width,
                       k.data(),
                       kv_width,
                       v.data(),
                       kv_width,
                       with_mask ? mask.data() : nullptr,
                       with_bias ? bias.data() : nullptr};
    const int context_stride = shape.n_heads * D + 7;
    std::vector<float> probs(static_cast<size_t>(shape.n_heads) * Q * K),
        expected_probs(probs.size());
    std::vector<float> context(static_cast<size_t>(Q) * context_stride, 0.0f),
        expected_context(context);
    attention(shape, in, probs.data(), context.data(), context_stride);
    attention_reference(shape, in, expected_probs.data(), expected_context.data(), context_stride);
    EXPECT_TRUE(all_close(probs, expected_probs, 1e-6))
        << "probs: heads " << shape.n_heads << " kv " << shape.n_kv_heads << " Q " << Q << " K "
        << K << " causal " << shape.causal << " mask " << with_mask << " bias " << with_bias;
    EXPECT_TRUE(all_close(context, expected_context, 1e-5)) << "context";
    for (int head = 0; head < shape.n_heads; ++head)
        for (int query = 0; query < Q; ++query) {
            double sum = 0;
            for (int key = 0; key < K; ++key) sum += probs[(size_t(head) * Q + query) * K + key];
            EXPECT_NEAR(sum, 1.0, 1e-5);
        }
}

}  // namespace

TEST(Attention, MatchesReferenceAcrossMasksCausalGroupsAndBias) {
    for (int threads : {1, 2})
        for (bool causal : {false, true})
            for (bool mask : {false, true})
                for (bool bias : {false, true}) {
                    check_attention({4, 4, 13, 13, 16, 0.25f, causal}, mask, bias, threads);
                    check_attention({8, 2, 5, 11, 8, 0.3f, causal}, mask, bias,
                                    threads);  // GQA, cached prefix
                }
    check_attention({12, 12, 128, 128, 64, 0.125f, false}, false, false, 2);
}

// A query whose visible keys all score -inf (an overflowed key, not the mask)
// gets NaN, as torch.softmax gives; one that the mask lets see no key gets
// zeros, as before; a NaN key poisons every row that sees it.
TEST(Attention, NonFiniteScoresGiveNanRowsMaskedRowsStayZero) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> queries = {1, 1, 1}, values = {1, 2, 3};
    for (bool reference : {false, true}) {
        SCOPED_TRACE(reference ? "attention_reference" : "attention");
        const auto run = [&](std::vector<float> keys, const uint8_t* mask, bool causal) {
            AttentionShape shape{1, 1, 3, 3, 1, 1.0f, causal};
            AttentionInputs in{queries.data(), 1, keys.data(), 1, values.data(), 1, mask, nullptr};
            std::vector<float> probs(9), context(3);
            (reference ? attention_reference : attention)(shape, in, probs.data(), context.data(),
                                                          1);
            return probs;
        };
        // causal, key 0 scores -inf: row 0 sees only it -> NaN; rows 1, 2 skip it
        std::vector<float> probs = run({-inf, 0, 0}, nullptr, true);
        for (int key = 0; key < 3; ++key) EXPECT_TRUE(std::isnan(probs[key])) << key;
        EXPECT_EQ(probs[3 + 0], 0.0f);
        EXPECT_EQ(probs[3 + 1], 1.0f);
        EXPECT_EQ(probs[6 + 0], 0.0f);
        EXPECT_FLOAT_EQ(probs[6 + 1], 0.5f);
        // key 1 is NaN: rows 1 and 2 see it, row 0 does not
        probs = run({0, std::numeric_limits<float>::quiet_NaN(), 0}, nullptr, true);
        EXPECT_EQ(probs[0], 1.0f);
        for (int i = 3; i < 9; ++i) EXPECT_TRUE(std::isnan(probs[i])) << i;
        // every key masked: zeros, not NaN
        const uint8_t none[3] = {0, 0, 0};
        probs = run({0, 0, 0}, none, false);
        for (float p : probs) EXPECT_EQ(p, 0.0f);
    }
}

TEST(Activations, NamesAndUnknownNameListsSupported) {
    EXPECT_EQ(activation_from_name("gelu"), Activation::gelu_erf);
    EXPECT_EQ(activation_from_name("gelu_new"), Activation::gelu_tanh);
    EXPECT_EQ(activation_from_name("swish"), Activation::silu);
    try {
        activation_from_name("cubic");
        FAIL() << "no error";
    } catch (const attnviz::Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("\"cubic\""), std::string::npos) << message;
        EXPECT_NE(message.find("gelu_new"), std::string::npos) << message;
    }
    std::vector<float> x = {-1.0f, 0.0f, 2.0f};
    activate_reference(Activation::gelu_erf, x.data(), x.size());
    EXPECT_NEAR(x[0], -0.15865525f, 1e-7);  // 0.5 * -1 * (1 + erf(-1/sqrt 2))
    EXPECT_NEAR(x[2], 1.95449974f, 1e-6);
}

TEST(Threads, ExplicitEnvironmentAndBadValues) {
    EXPECT_EQ(resolve_thread_count(3), 3);
    setenv("ATTNVIZ_NUM_THREADS", "1", 1);
    EXPECT_EQ(resolve_thread_count(0), 1);
    setenv("ATTNVIZ_NUM_THREADS", "two", 1);
    EXPECT_THROW(resolve_thread_count(0), attnviz::Error);
    unsetenv("ATTNVIZ_NUM_THREADS");
    EXPECT_GE(resolve_thread_count(0), 1);
}

// bf16: inputs and weights are rounded to bfloat16 (8 significant bits,
// relative error at most 2^-9 each), products are accumulated in fp32. So each
// pre-activation output is off by at most (2^-8 + 2^-18) * sum_i |x_i w_i| plus
// fp32 summation error, and gelu's slope is at most 1.13: that is the bound each
// output must meet. On a CPU without AVX-512 BF16 (or AMX), oneDNN may not run
// bf16; then the only acceptable result is attnviz's clear error saying so.
TEST(Linear, Bf16ErrorStaysWithinTheRoundingBound) {
    const int in = 96, out = 200, rows = 33;
    const auto weight = random_values(static_cast<size_t>(in) * out, 0.2f, 50);
    const auto bias = random_values(out, 0.5f, 51);
    const auto x = random_values(static_cast<size_t>(rows) * in, 1.0f, 52);
    const Linear linear(weight.data(), bias.data(), in, out, WeightLayout::out_in,
                        Activation::gelu_erf);
    std::vector<float> y(static_cast<size_t>(rows) * out), expected(y.size());
    linear_reference(x.data(), weight.data(), bias.data(), expected.data(), rows, in, out,
                     WeightLayout::out_in, Activation::gelu_erf);
    std::vector<float> abs_x(x.size()), abs_weight(weight.size()), magnitude(y.size());
    for (size_t i = 0; i < x.size(); ++i) abs_x[i] = std::fabs(x[i]);
    for (size_t i = 0; i < weight.size(); ++i) abs_weight[i] = std::fabs(weight[i]);
    linear_reference(abs_x.data(), abs_weight.data(), nullptr, magnitude.data(), rows, in, out,
                     WeightLayout::out_in, Activation::none);
    try {
        PrecisionScope bf16(Precision::bf16);
        linear.forward(x.data(), y.data(), rows);
    } catch (const attnviz::Error& e) {
        EXPECT_FALSE(__builtin_cpu_supports("avx512bf16"))
            << "bf16 failed on a BF16 CPU: " << e.what();
        EXPECT_THAT(e.what(), ::testing::HasSubstr("bf16"));
        return;
    }
    double worst_ratio = 0;
    for (size_t i = 0; i < y.size(); ++i) {
        const double bound = 1.13 * ((std::ldexp(1.0, -8) + std::ldexp(1.0, -18)) * magnitude[i] +
                                     in * std::ldexp(1.0, -24) * magnitude[i]) +
                             1e-6;
        worst_ratio = std::max(worst_ratio, std::fabs(y[i] - expected[i]) / bound);
    }
    std::printf("  bf16: largest error is %.2f of its rounding bound\n", worst_ratio);
    EXPECT_LE(worst_ratio, 1.0) << "largest error over its bound";
    EXPECT_FALSE(all_close(y, expected, 1e-5));  // it really ran in bf16
    linear.forward(x.data(), y.data(), rows);    // back to fp32 after the scope
    EXPECT_TRUE(all_close(y, expected, kLinearTolerance));
}
