// The bundled demo model (models/demo, trained by tools/train_demo_model.py): it
// loads like any checkpoint, its attention equals the PyTorch model that trained
// it, and on held-out text its heads show the patterns docs/demo-model.md reports.
// Fixtures come from tools/demo_model/analyze.py: reference.json (the PyTorch
// attention for the seed pair) and pairs.json (held-out sentence pairs and the
// masses PyTorch measured on them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnviz/model.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kModelDir = fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo";
const fs::path kData = fs::path(ATTNVIZ_TEST_DATA) / "demo";

json read_json(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    return json::parse(in);
}

const attnviz::Model& demo_model() {
    static const attnviz::Model model = attnviz::Model::open(kModelDir);
    return model;
}

const attnviz::AttentionBlock& self_attention(const attnviz::AttentionTrace& trace) {
    EXPECT_EQ(trace.blocks.size(), 1u);
    return trace.blocks.at(0);
}

std::vector<int32_t> ids_of(const attnviz::AttentionTrace& trace) {
    std::vector<int32_t> ids;
    for (const auto& token : trace.sequences.at(0).tokens) ids.push_back(token.id);
    return ids;
}

TEST(DemoModel, IsTheDocumentedSmallBert) {
    const attnviz::ModelConfig& config = demo_model().config();
    EXPECT_EQ(config.model_type, "bert");
    EXPECT_EQ(config.architecture, "BertForMaskedLM");
    EXPECT_EQ(config.n_layers, 4);
    EXPECT_EQ(config.n_heads, 4);
    EXPECT_EQ(config.hidden_size, 128);
    EXPECT_EQ(config.vocab_size, 30522);  // bert-base-uncased's WordPiece vocabulary
    EXPECT_EQ(config.max_positions, 128);
    std::uintmax_t bytes = 0;
    for (const auto& entry : fs::directory_iterator(kModelDir)) bytes += entry.file_size();
    EXPECT_LE(bytes, 16u * 1000 * 1000) << "the issue allows at most 16 MB on disk";
}

// Every attention probability of the seed pair equals the PyTorch forward pass of
// the same fp16 weights (widened to fp32) within 1e-4.
TEST(DemoModel, AttentionMatchesPyTorch) {
    const json reference = read_json(kData / "reference.json");
    attnviz::TraceRequest request;
    request.text = reference.at("text").get<std::string>();
    request.text_pair = reference.at("text_pair").get<std::string>();
    const attnviz::AttentionTrace trace = demo_model().trace(request);
    ASSERT_EQ(ids_of(trace), reference.at("ids").get<std::vector<int32_t>>())
        << "tokenization differs from Hugging Face tokenizers";

    const attnviz::AttentionBlock& block = self_attention(trace);
    const auto shape = reference.at("shape").get<std::vector<int>>();
    ASSERT_EQ(shape,
              (std::vector<int>{block.n_layers, block.n_heads, block.n_queries, block.n_keys}));
    const auto expected = reference.at("probs").get<std::vector<double>>();
    ASSERT_EQ(block.probs.size(), expected.size());
    double worst = 0;
    size_t worst_index = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        const double difference = std::abs(block.probs[i] - expected[i]);
        if (difference > worst) worst = difference, worst_index = i;
    }
    EXPECT_LE(worst, 1e-4) << "largest difference at flat index " << worst_index;
}

// --- head patterns, defined exactly as tools/demo_model/analyze.py defines them ---

enum Pattern { kPrevious, kNext, kSep, kCls, kSameWord, kPatterns };
const char* const kPatternNames[kPatterns] = {"previous_token", "next_token", "sep", "cls",
                                              "same_word"};

// A word token has an ASCII letter or digit ("##ing" counts, "," and "\u2014" do not).
bool is_word(const attnviz::TraceToken& token) {
    return !token.special && std::any_of(token.text.begin(), token.text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x80 && std::isalnum(byte);
    });
}

// For one pair, each head's average mass per pattern; defined[p] is false when
// the pair has no token the pattern applies to (no shared word).
struct PairMasses {
    std::vector<double> mass[kPatterns];  // [layer * heads + head]
    bool defined[kPatterns] = {true, true, true, true, false};
};

PairMasses pattern_masses(const attnviz::AttentionTrace& trace) {
    const attnviz::AttentionBlock& block = self_attention(trace);
    const auto& tokens = trace.sequences.at(0).tokens;
    const int n = block.n_queries, heads = block.n_layers * block.n_heads;
    PairMasses out;
    for (auto& m : out.mass) m.assign(static_cast<size_t>(heads), 0.0);
    for (int h = 0; h < heads; ++h) {
        const int layer = h / block.n_heads, head = h % block.n_heads;
        auto p = [&](int q, int k) { return static_cast<double>(block.prob(layer, head, q, k)); };
        double previous = 0, next = 0, sep = 0, cls = 0, same = 0;
        int content = 0, shared = 0;
        for (int q = 1; q < n; ++q) previous += p(q, q - 1);
        for (int q = 0; q + 1 < n; ++q) next += p(q, q + 1);
        for (int q = 0; q < n; ++q) {
            if (tokens[q].special) continue;
            ++content;
            cls += p(q, 0);
            for (int k = 0; k < n; ++k)
                if (tokens[k].special && tokens[k].text == "[SEP]") sep += p(q, k);
            if (!is_word(tokens[q])) continue;
            double to_same = 0;
            bool found = false;
            for (int k = 0; k < n; ++k) {
                if (tokens[k].special || tokens[k].segment == tokens[q].segment) continue;
                if (tokens[k].id == tokens[q].id) to_same += p(q, k), found = true;
            }
            if (found) same += to_same, ++shared;
        }
        out.mass[kPrevious][h] = previous / (n - 1);
        out.mass[kNext][h] = next / (n - 1);
        out.mass[kSep][h] = sep / content;
        out.mass[kCls][h] = cls / content;
        if (shared > 0) out.mass[kSameWord][h] = same / shared;
        out.defined[kSameWord] = shared > 0;
    }
    return out;
}

// Lower bounds for the best head of each kind on the 40 held-out pairs, a little
// under what the PyTorch analysis measured there (0.185, 0.196, 0.145, 0.048, 0.063).
// An even spread over these pairs would give about 0.025 (previous, next, [CLS]),
// 0.05 ([SEP]) and 0.028 (same word): the neighbour heads are 7-8 times that, [SEP]
// about 3, [CLS] and same word about 2 (docs/demo-model.md has the numbers on 400 pairs).
constexpr double kThreshold[kPatterns] = {
    /*previous_token*/ 0.17, /*next_token*/ 0.18, /*sep*/ 0.13, /*cls*/ 0.04,
    /*same_word*/ 0.055};

TEST(DemoModel, HeadsShowRecognisablePatternsOnHeldOutPairs) {
    const json fixture = read_json(kData / "pairs.json");
    std::vector<double> sum[kPatterns];
    int count[kPatterns] = {};
    for (const json& pair : fixture.at("pairs")) {
        attnviz::TraceRequest request;
        request.text = pair.at("text").get<std::string>();
        request.text_pair = pair.at("text_pair").get<std::string>();
        const attnviz::AttentionTrace trace = demo_model().trace(request);
        ASSERT_EQ(ids_of(trace), pair.at("ids").get<std::vector<int32_t>>()) << request.text;
        const PairMasses masses = pattern_masses(trace);
        for (int p = 0; p < kPatterns; ++p) {
            if (!masses.defined[p]) continue;
            if (sum[p].empty()) sum[p].assign(masses.mass[p].size(), 0.0);
            for (size_t h = 0; h < sum[p].size(); ++h) sum[p][h] += masses.mass[p][h];
            ++count[p];
        }
    }
    const int n_heads = demo_model().config().n_heads;
    for (int p = 0; p < kPatterns; ++p) {
        ASSERT_GT(count[p], 0) << kPatternNames[p];
        const auto best = std::max_element(sum[p].begin(), sum[p].end());
        const int index = static_cast<int>(best - sum[p].begin());
        const double mass = *best / count[p];
        const json& python = fixture.at("patterns").at(kPatternNames[p]);
        SCOPED_TRACE(std::string(kPatternNames[p]) + ": best head layer " +
                     std::to_string(index / n_heads) + " head " + std::to_string(index % n_heads));
        EXPECT_GE(mass, kThreshold[p]);
        // The same head and mass as PyTorch found on these pairs.
        EXPECT_EQ(index / n_heads, python.at("layer").get<int>());
        EXPECT_EQ(index % n_heads, python.at("head").get<int>());
        EXPECT_NEAR(mass, python.at("mass").get<double>(), 1e-4);
    }
}

}  // namespace
