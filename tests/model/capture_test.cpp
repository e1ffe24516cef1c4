// Selective capture (RunOptions::capture): what a run keeps equals the
// corresponding slice of the full capture (the same kernel on the same
// operands; to the last bits two runs already differ by), on an encoder, a GQA decoder, GPT-2's
// per-layer scale and two encoder-decoders; sparse rows are the k largest / the shortest prefix
// reaching the mass; fp16 is within its rounding bound; hidden states do not
// change; bad options name their flag.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "arch_reference_check.h"
#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/capture.h"
#include "model/network.h"
#include "reference_helpers.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;

// Two identical full runs of these fixtures in one process already differ in
// the last bits of some probabilities (seen with 1 and 2 threads), so a slice
// is compared to the full capture to float32 rounding of the forward (the
// fixtures' own 1e-5), not bit for bit.
constexpr float kRunToRun = 1e-5f;

struct Fixture {
    LoadedNetwork loaded;
    Encoding source, target;
    ForwardInput input;
};

std::unique_ptr<Fixture> open_fixture(const std::string& name) {
    auto fixture = std::make_unique<Fixture>();
    const fs::path folder = fs::path(ATTNVIZ_TEST_DATA) / "arch" / name;
    fixture->loaded = load_network(folder);
    const io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    if (ref.find("token_type_ids"))
        fixture->source = testing::reference_encoding(ref);
    else
        fixture->source = testing::encoding_of(testing::reference_ids(ref, "input_ids"));
    fixture->input = {&fixture->source, nullptr};
    if (ref.find("decoder_input_ids")) {
        fixture->target = testing::encoding_of(testing::reference_ids(ref, "decoder_input_ids"));
        fixture->input.decoder = &fixture->target;
    }
    return fixture;
}

ForwardOutput run(const Fixture& fixture, const CaptureOptions& capture, int threads = 1) {
    RunOptions options;
    options.keep_queries_keys = true;
    options.keep_hidden_states = true;
    options.threads = threads;
    options.capture = capture;
    return run_network(*fixture.loaded.network, fixture.input, options);
}

// Every kept row of `part` against the full capture's row of the same model
// layer and head: bit for bit, with the kept queries, keys and biases.
void expect_slice(const AttentionBlock& full, const AttentionBlock& part) {
    ASSERT_EQ(part.n_queries, full.n_queries);
    ASSERT_EQ(part.n_keys, full.n_keys);
    const int K = full.n_keys, Q = full.n_queries, Dh = full.head_dim;
    std::vector<float> row(static_cast<size_t>(K));
    for (int l = 0; l < part.n_layers; ++l)
        for (int h = 0; h < part.n_heads; ++h) {
            const int layer = part.layer_id(l), head = part.head_id(h);
            EXPECT_EQ(part.layer_score_scale(l), full.layer_score_scale(layer));
            for (int q = 0; q < Q; ++q) {
                part.row(l, h, q, row.data());
                for (int k = 0; k < K; ++k)
                    ASSERT_NEAR(row[k], full.prob(layer, head, q, k), kRunToRun)
                        << part.name << " layer " << layer << " head " << head << " q " << q;
            }
            const auto at = [](const AttentionBlock& b, int ll, int hh, int n) {
                return (static_cast<size_t>(ll) * b.n_heads + hh) * n * b.head_dim;
            };
            ASSERT_EQ(part.head_dim, Dh);
            const auto near = [](float a, float b) { return std::fabs(a - b) <= kRunToRun; };
            EXPECT_TRUE(std::equal(full.queries.begin() + at(full, layer, head, Q),
                                   full.queries.begin() + at(full, layer, head + 1, Q),
                                   part.queries.begin() + at(part, l, h, Q), near));
            EXPECT_TRUE(std::equal(full.keys.begin() + at(full, layer, head, K),
                                   full.keys.begin() + at(full, layer, head + 1, K),
                                   part.keys.begin() + at(part, l, h, K), near));
            if (full.has_score_bias()) {
                ASSERT_TRUE(part.has_score_bias());
                const float* a = full.score_bias_of(layer, head);
                const float* b = part.score_bias_of(l, h);
                EXPECT_TRUE(std::equal(a, a + static_cast<size_t>(Q) * K, b, [](float x, float y) {
                    return x == y || std::fabs(x - y) <= kRunToRun;
                }));
            }
        }
}

class SelectiveCapture : public ::testing::TestWithParam<const char*> {};

TEST_P(SelectiveCapture, KeptLayersAndHeadsAreTheFullCapturesSlice) {
    const auto fixture = open_fixture(GetParam());
    const ForwardOutput full = run(*fixture, {});
    int last = full.blocks.front().n_layers - 1, heads = full.blocks.front().n_heads;
    for (const AttentionBlock& block : full.blocks)  // valid in every block (BART's differ)
        last = std::min(last, block.n_layers - 1), heads = std::min(heads, block.n_heads);
    CaptureOptions capture;
    capture.layers = last > 0 ? std::vector<int>{last} : std::vector<int>{0};
    capture.heads = heads > 1 ? std::vector<int>{0, heads - 1} : std::vector<int>{0};
    const ForwardOutput part = run(*fixture, capture);
    ASSERT_EQ(part.blocks.size(), full.blocks.size());
    for (size_t b = 0; b < full.blocks.size(); ++b) {
        SCOPED_TRACE(full.blocks[b].name);
        EXPECT_EQ(part.blocks[b].n_layers, 1);
        EXPECT_EQ(part.blocks[b].n_heads, static_cast<int>(capture.heads.size()));
        EXPECT_EQ(part.blocks[b].n_model_layers, full.blocks[b].n_layers);
        EXPECT_EQ(part.blocks[b].probs.size(),
                  capture.heads.size() * full.blocks[b].n_queries * full.blocks[b].n_keys);
        expect_slice(full.blocks[b], part.blocks[b]);
    }
    // what is kept changes nothing else: the hidden states are the same
    ASSERT_EQ(part.hidden_states.size(), full.hidden_states.size());
    for (size_t s = 0; s < full.hidden_states.size(); ++s)
        for (size_t i = 0; i < full.hidden_states[s].values.size(); ++i)
            ASSERT_NEAR(part.hidden_states[s].values[i], full.hidden_states[s].values[i],
                        kRunToRun * 100);
}

TEST_P(SelectiveCapture, TopKRowsAreTheKLargestOfTheFullRow) {
    const auto fixture = open_fixture(GetParam());
    const ForwardOutput full = run(*fixture, {});
    CaptureOptions capture;
    capture.top_k = 3;
    const ForwardOutput part = run(*fixture, capture);
    for (size_t b = 0; b < full.blocks.size(); ++b) {
        const AttentionBlock &f = full.blocks[b], &p = part.blocks[b];
        SCOPED_TRACE(f.name);
        ASSERT_TRUE(p.is_sparse());
        ASSERT_FALSE(p.has_dense_probs());
        ASSERT_EQ(p.row_start.size(), f.n_rows() + 1);
        const int K = f.n_keys;
        for (int l = 0; l < f.n_layers; ++l)
            for (int h = 0; h < f.n_heads; ++h)
                for (int q = 0; q < f.n_queries; ++q) {
                    // the reference: the kept keys hold the largest of the full row
                    // (to kRunToRun: two runs differ in the last bits), as many as
                    // min(3, its nonzero keys), and their values
                    int nonzero = 0;
                    for (int k = 0; k < K; ++k) nonzero += f.prob(l, h, q, k) != 0.0f;
                    const size_t r = p.row_index(l, h, q);
                    std::vector<int> kept(p.row_keys.begin() + p.row_start[r],
                                          p.row_keys.begin() + p.row_start[r + 1]);
                    ASSERT_EQ(kept.size(), static_cast<size_t>(std::min(nonzero, 3)));
                    ASSERT_TRUE(std::is_sorted(kept.begin(), kept.end()));
                    float least_kept = 1, most_left = 0;
                    for (int k = 0; k < K; ++k) {
                        const bool is_kept = std::count(kept.begin(), kept.end(), k) > 0;
                        if (is_kept)
                            least_kept = std::min(least_kept, f.prob(l, h, q, k));
                        else
                            most_left = std::max(most_left, f.prob(l, h, q, k));
                    }
                    EXPECT_GE(least_kept, most_left - kRunToRun) << l << " " << h << " " << q;
                    for (uint64_t at = p.row_start[r]; at < p.row_start[r + 1]; ++at)
                        EXPECT_NEAR(p.probs[at], f.prob(l, h, q, p.row_keys[at]), kRunToRun);
                }
    }
}

INSTANTIATE_TEST_SUITE_P(Architectures, SelectiveCapture,
                         ::testing::Values("bert_is_decoder", "llama_gqa_llama3_rope",
                                           "gpt2_inverse_layer_scale", "t5_tiny", "bart_tiny",
                                           "mistral_sliding_window", "albert_tiny"));

TEST(SelectiveCapture, Fp16StoresEachProbabilityWithinItsRoundingBound) {
    const auto fixture = open_fixture("llama_gqa_llama3_rope");
    const ForwardOutput full = run(*fixture, {});
    CaptureOptions capture;
    capture.fp16 = true;
    capture.layers = {1};
    const ForwardOutput half = run(*fixture, capture);
    const AttentionBlock &f = full.blocks[0], &p = half.blocks[0];
    ASSERT_TRUE(p.probs.empty());
    ASSERT_EQ(p.probs_fp16.size(), static_cast<size_t>(p.n_heads) * p.n_queries * p.n_keys);
    std::vector<float> row(static_cast<size_t>(p.n_keys));
    for (int h = 0; h < p.n_heads; ++h)
        for (int q = 0; q < p.n_queries; ++q) {
            p.row(0, h, q, row.data());
            for (int k = 0; k < p.n_keys; ++k) {
                const double exact = f.prob(1, h, q, k), stored = row[k];
                // binary16 round to nearest: half an ulp, 2^-11 relative for
                // normal values (>= 2^-14), 2^-25 absolute below
                const double bound =
                    exact >= std::ldexp(1.0, -14) ? std::ldexp(exact, -11) : std::ldexp(1.0, -25);
                EXPECT_LE(std::fabs(stored - exact), bound) << h << " " << q << " " << k;
            }
        }
}

TEST(SelectCapture, TopMassKeepsTheShortestPrefixReachingTheMass) {
    const float row[] = {0.1f, 0.4f, 0.0f, 0.2f, 0.2f, 0.1f};
    std::vector<int32_t> keys;
    CaptureOptions mass;
    mass.top_mass = 0.5;  // 0.4 + 0.2 (the lower key of the tied 0.2s)
    select_row(row, 6, mass, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{1, 3}));
    mass.top_mass = 0.4;  // reached by 0.4 alone
    select_row(row, 6, mass, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{1}));
    mass.top_mass = 1.0;  // every nonzero one, never the masked key
    select_row(row, 6, mass, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{0, 1, 3, 4, 5}));
    mass.top_mass = 0.95;
    mass.top_k = 2;  // both: the prefix, at most k long
    select_row(row, 6, mass, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{1, 3}));
    CaptureOptions k;
    k.top_k = 4;  // ties: the lower key first (0.1 at keys 0 and 5)
    select_row(row, 6, k, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{0, 1, 3, 4}));
    const float nan_row[] = {NAN, NAN, NAN};
    select_row(nan_row, 3, k, keys);
    EXPECT_EQ(keys, (std::vector<int32_t>{0}));
}

TEST(SelectCapture, Float16RoundsToNearestEven) {
    EXPECT_EQ(float_to_half(1.0f), 0x3c00);
    EXPECT_EQ(float_to_half(0.5f), 0x3800);
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
    EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // the least subnormal
    EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
    EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(SelectiveCapture, OptionsOutOfRangeNameTheirFlag) {
    const auto fixture = open_fixture("llama_gqa_llama3_rope");
    const auto message = [&](const CaptureOptions& capture) {
        try {
            run(*fixture, capture);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CaptureOptions layers;
    layers.layers = {0, 2};
    EXPECT_EQ(message(layers), "--layers 2: the \"self\" attention has 2 layers (0 to 1)");
    CaptureOptions heads;
    heads.heads = {4};
    EXPECT_EQ(message(heads), "--heads 4: the \"self\" attention has 4 heads (0 to 3)");
    CaptureOptions order;
    order.layers = {1, 0};
    EXPECT_EQ(message(order), "--layers: give each layer once, in ascending order");
    CaptureOptions mass;
    mass.top_mass = 1.5;
    EXPECT_EQ(message(mass).substr(0, 15), "--top-mass 1.50");
}

}  // namespace
}  // namespace attnviz::model
