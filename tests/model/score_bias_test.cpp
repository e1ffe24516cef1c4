// The trace's score decomposition (AttentionBlock::score_form, score_bias): for
// every fixture that keeps queries and keys, softmax(score_scale * q.k + bias)
// recomputed from the trace's own vectors and bias must be its probabilities
// (what the neuron view relies on), or the block must say it is not
// decomposable. T5's bias is checked against its bucket table and PyTorch's
// buckets; keep_score_bias's sharing across layers against hand-made cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "arch_reference_check.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "reference_helpers.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;

constexpr double kProbsTolerance = 1e-5;  // float32 rounding of scores around 10
constexpr float kInf = std::numeric_limits<float>::infinity();

// Every model fixture folder (tests/data/arch/*, tests/data/model/*), sorted.
std::vector<std::string> fixture_folders() {
    std::vector<std::string> folders;
    for (const char* group : {"arch", "model"})
        for (const auto& entry : fs::directory_iterator(fs::path(ATTNVIZ_TEST_DATA) / group))
            if (fs::exists(entry.path() / "config.json"))
                folders.push_back(std::string(group) + "/" + entry.path().filename().string());
    std::sort(folders.begin(), folders.end());
    return folders;
}

// One fixture run on its reference input (padding included), queries and keys kept.
struct FixtureRun {
    LoadedNetwork loaded;
    Encoding source, target;  // what the forward read
    ForwardOutput out;
};

FixtureRun run_fixture(const fs::path& folder) {
    FixtureRun run;
    run.loaded = load_network(folder);
    const io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    if (ref.find("token_type_ids"))
        run.source = testing::reference_encoding(ref);  // BERT fixtures: type ids, padding mask
    else
        run.source = testing::encoding_of(testing::reference_ids(ref, "input_ids"));
    ForwardInput input{&run.source, nullptr};
    if (ref.find("decoder_input_ids")) {
        run.target = testing::encoding_of(testing::reference_ids(ref, "decoder_input_ids"));
        input.decoder = &run.target;
    }
    RunOptions options;
    options.keep_queries_keys = true;
    options.threads = 1;
    run.out = run_network(*run.loaded.network, input, options);
    return run;
}

// Largest |softmax(score_scale * q.k + bias) - probs| over the block, in double,
// over the keys each query sees (k <= q when causal).
double worst_recomputed_difference(const AttentionBlock& b) {
    const int Q = b.n_queries, K = b.n_keys, Dh = b.head_dim;
    double worst = 0;
    std::vector<double> scores(static_cast<size_t>(K));
    for (int layer = 0; layer < b.n_layers; ++layer)
        for (int head = 0; head < b.n_heads; ++head) {
            const size_t layer_head = static_cast<size_t>(layer) * b.n_heads + head;
            const float* bias = b.score_bias_of(layer, head);
            for (int q = 0; q < Q; ++q) {
                const float* query = b.queries.data() + (layer_head * Q + q) * Dh;
                const int last = b.causal ? q : K - 1;
                double top = -std::numeric_limits<double>::infinity();
                for (int k = 0; k <= last; ++k) {
                    const float* key = b.keys.data() + (layer_head * K + k) * Dh;
                    double dot = 0;
                    for (int d = 0; d < Dh; ++d) dot += static_cast<double>(query[d]) * key[d];
                    scores[k] = b.layer_score_scale(layer) * dot +
                                (bias ? bias[static_cast<size_t>(q) * K + k] : 0.0);
                    top = std::max(top, scores[k]);
                }
                double sum = 0;
                for (int k = 0; k <= last; ++k) sum += std::exp(scores[k] - top);
                for (int k = 0; k < K; ++k) {
                    const double p = k <= last ? std::exp(scores[k] - top) / sum : 0.0;
                    worst = std::max(worst, std::fabs(p - b.prob(layer, head, q, k)));
                }
            }
        }
    return worst;
}

class ScoreDecomposition : public ::testing::TestWithParam<std::string> {};

TEST_P(ScoreDecomposition, ProbsAreSoftmaxOfScaledDotPlusBiasOrTheBlockSaysItIsNot) {
    const fs::path folder = fs::path(ATTNVIZ_TEST_DATA) / GetParam();
    const FixtureRun run = run_fixture(folder);
    const ForwardOutput& out = run.out;
    const bool relative = run.loaded.config.position_embedding_type == "relative_key" ||
                          run.loaded.config.position_embedding_type == "relative_key_query";
    ASSERT_FALSE(out.blocks.empty());
    for (const AttentionBlock& b : out.blocks) {
        SCOPED_TRACE(b.name);
        ASSERT_TRUE(b.has_queries_keys());
        // BERT's relative_key(_query) adds q . E[q - k]: no bias can stand for it.
        EXPECT_EQ(b.score_form == ScoreForm::not_decomposable, relative);
        if (b.score_form == ScoreForm::not_decomposable) {
            EXPECT_FALSE(b.has_score_bias());
            EXPECT_GT(worst_recomputed_difference(b), 1e-3) << "the flag is needed";
            continue;
        }
        ASSERT_TRUE(b.score_bias_layers == 0 || b.score_bias_layers == 1 ||
                    b.score_bias_layers == b.n_layers);
        ASSERT_EQ(b.score_bias.size(),
                  static_cast<size_t>(b.score_bias_layers) * b.n_heads * b.n_queries * b.n_keys);
        const double worst = worst_recomputed_difference(b);
        std::printf("  %s %s: bias layers %d, max |softmax - probs| %.3g\n", GetParam().c_str(),
                    b.name.c_str(), b.score_bias_layers, worst);
        EXPECT_LE(worst, kProbsTolerance);
    }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string name = info.param;
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ScoreDecomposition, ::testing::ValuesIn(fixture_folders()),
                         test_name);

// The fixtures the decomposition must cover are there (a missing folder fails, never skips).
TEST(ScoreDecomposition, CoversBiasedUnbiasedAndRelativeFixtures) {
    const std::vector<std::string> folders = fixture_folders();
    for (const char* needed : {"arch/t5_tiny", "arch/t5_v1_1_gated", "arch/mistral_sliding_window",
                               "arch/gpt2_tiny", "arch/bart_tiny", "model/tiny-padded",
                               "model/tiny-relative-key", "model/tiny-relative-key-query"})
        EXPECT_NE(std::find(folders.begin(), folders.end(), needed), folders.end()) << needed;
}

const AttentionBlock& block_named(const ForwardOutput& out, const std::string& name) {
    for (const AttentionBlock& b : out.blocks)
        if (b.name == name) return b;
    throw std::runtime_error("no block " + name);
}

// T5: encoder and decoder self-attention carry relative_attention_bias[bucket(k - q)][h],
// stored once for all layers (T5 computes it in the first layer and reuses it); the
// buckets are PyTorch's (the reference's t5_buckets), the table the checkpoint's.
void expect_t5_bias(const std::string& fixture) {
    SCOPED_TRACE(fixture);
    const fs::path folder = fs::path(ATTNVIZ_TEST_DATA) / "arch" / fixture;
    const FixtureRun run = run_fixture(folder);
    const ForwardOutput& out = run.out;
    const io::TensorSet weights = io::TensorSet::open_safetensors(folder / "model.safetensors");
    const io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    for (const auto& [stack, buckets_name] :
         {std::pair<std::string, std::string>{"encoder", "t5_buckets.bidirectional"},
          {"decoder", "t5_buckets.causal"}}) {
        SCOPED_TRACE(stack);
        const AttentionBlock& b = block_named(out, stack);
        ASSERT_EQ(b.score_bias_layers, 1) << "one bias for all " << b.n_layers << " layers";
        const std::vector<int64_t> buckets = testing::reference_ints(ref, buckets_name);
        const int reach = static_cast<int>(buckets.size() / 2);  // relative positions -R..R
        const std::vector<float> table = testing::floats(
            *weights.find(stack + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
        const int H = b.n_heads;
        ASSERT_EQ(table.size() % H, 0u);
        for (int head = 0; head < H; ++head)
            for (int q = 0; q < b.n_queries; ++q)
                for (int k = 0; k < b.n_keys; ++k) {
                    const int64_t bucket = buckets[static_cast<size_t>(k - q + reach)];
                    ASSERT_EQ(b.score_bias_of(1, head)[static_cast<size_t>(q) * b.n_keys + k],
                              table[static_cast<size_t>(bucket) * H + head])
                        << "head " << head << ", " << q << " -> " << k;
                }
    }
    EXPECT_FALSE(block_named(out, "cross").has_score_bias()) << "cross attention adds none";
}

TEST(ScoreBias, T5RelativeBiasIsStoredOnceAndMatchesTheBucketTable) {
    expect_t5_bias("t5_tiny");
    expect_t5_bias("t5_v1_1_gated");
}

TEST(ScoreBias, MistralSlidingWindowIsAMinusInfinityBiasSharedByLayers) {
    const FixtureRun run =
        run_fixture(fs::path(ATTNVIZ_TEST_DATA) / "arch" / "mistral_sliding_window");
    const AttentionBlock& b = block_named(run.out, "self");
    ASSERT_EQ(b.score_bias_layers, 1);
    const int window = 5;  // its config.json's sliding_window
    for (int head = 0; head < b.n_heads; ++head)
        for (int q = 0; q < b.n_queries; ++q)
            for (int k = 0; k <= q; ++k)
                EXPECT_EQ(b.score_bias_of(0, head)[static_cast<size_t>(q) * b.n_keys + k],
                          q - k >= window ? -kInf : 0.0f)
                    << q << " -> " << k;
}

TEST(ScoreBias, PaddingKeysAreMinusInfinityAndUnbiasedModelsHaveNone) {
    const FixtureRun padded = run_fixture(fs::path(ATTNVIZ_TEST_DATA) / "model" / "tiny-padded");
    const std::vector<uint8_t>& mask = padded.source.attention_mask;
    ASSERT_NE(std::count(mask.begin(), mask.end(), 0), 0);
    const AttentionBlock& b = padded.out.blocks[0];
    ASSERT_EQ(b.score_bias_layers, 1);
    for (int q = 0; q < b.n_queries; ++q)
        for (int k = 0; k < b.n_keys; ++k)
            EXPECT_EQ(b.score_bias_of(1, 1)[static_cast<size_t>(q) * b.n_keys + k],
                      mask[static_cast<size_t>(k)] ? 0.0f : -kInf);
    for (const char* fixture : {"arch/gpt2_tiny", "arch/bart_tiny", "arch/llama_gqa_llama3_rope"}) {
        const FixtureRun run = run_fixture(fs::path(ATTNVIZ_TEST_DATA) / fixture);
        for (const AttentionBlock& block : run.out.blocks)
            EXPECT_FALSE(block.has_score_bias()) << fixture << " " << block.name;
    }
}

// keep_score_bias by hand: 3 layers, 1 head, 1 query, 2 keys, score_scale 0.5.
AttentionBlock three_layer_block() {
    RunOptions keep;
    keep.keep_queries_keys = true;
    return make_block("self", 3, 1, 1, 2, 1, 0.5f, false, keep);
}

TEST(ScoreBias, LayersShareOneCopyUntilOneDiffers) {
    const float a[] = {2.0f, -4.0f}, c[] = {6.0f, 0.0f};
    const uint8_t second_is_padding[] = {1, 0};
    {  // the same bias in every layer: one copy, scaled as attention scales it
        AttentionBlock b = three_layer_block();
        for (int layer = 0; layer < 3; ++layer) keep_score_bias(b, layer, a, nullptr);
        EXPECT_EQ(b.score_bias_layers, 1);
        EXPECT_EQ(b.score_bias, (std::vector<float>{1.0f, -2.0f}));
    }
    {  // the last layer differs: one per layer
        AttentionBlock b = three_layer_block();
        keep_score_bias(b, 0, a, nullptr);
        keep_score_bias(b, 1, a, nullptr);
        keep_score_bias(b, 2, c, nullptr);
        EXPECT_EQ(b.score_bias_layers, 3);
        EXPECT_EQ(b.score_bias, (std::vector<float>{1.0f, -2.0f, 1.0f, -2.0f, 3.0f, 0.0f}));
    }
    {  // no bias in the first layer, then one (Qwen2's windows from max_window_layers on)
        AttentionBlock b = three_layer_block();
        keep_score_bias(b, 0, nullptr, nullptr);
        keep_score_bias(b, 1, a, nullptr);
        keep_score_bias(b, 2, a, nullptr);
        EXPECT_EQ(b.score_bias_layers, 3);
        EXPECT_EQ(b.score_bias, (std::vector<float>{0.0f, 0.0f, 1.0f, -2.0f, 1.0f, -2.0f}));
    }
    {  // a bias, then a layer without: that layer's bias is 0
        AttentionBlock b = three_layer_block();
        keep_score_bias(b, 0, a, nullptr);
        keep_score_bias(b, 1, nullptr, nullptr);
        keep_score_bias(b, 2, a, nullptr);
        EXPECT_EQ(b.score_bias_layers, 3);
        EXPECT_EQ(b.score_bias, (std::vector<float>{1.0f, -2.0f, 0.0f, 0.0f, 1.0f, -2.0f}));
    }
    {  // padding alone is a -inf bias on the padded key
        AttentionBlock b = three_layer_block();
        for (int layer = 0; layer < 3; ++layer)
            keep_score_bias(b, layer, nullptr, second_is_padding);
        EXPECT_EQ(b.score_bias_layers, 1);
        EXPECT_EQ(b.score_bias, (std::vector<float>{0.0f, -kInf}));
    }
    {  // nothing kept without queries and keys, or for a block that is not decomposable
        AttentionBlock without = make_block("self", 3, 1, 1, 2, 1, 0.5f, false, RunOptions{});
        keep_score_bias(without, 0, a, nullptr);
        EXPECT_FALSE(without.has_score_bias());
        AttentionBlock relative = three_layer_block();
        relative.score_form = ScoreForm::not_decomposable;
        keep_score_bias(relative, 0, a, nullptr);
        EXPECT_FALSE(relative.has_score_bias());
        EXPECT_TRUE(relative.score_bias.empty());
    }
}

}  // namespace
}  // namespace attnviz::model
