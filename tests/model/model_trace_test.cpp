// Model::open + Model::trace end to end: text in, AttentionTrace out, on the
// tiny pair fixture whose reference was computed for exactly the ids
// "[CLS] the cat sat on the mat [SEP] it was tired [SEP]" (vocab.txt in the folder).
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/error.h"
#include "attnviz/model.h"
#include "reference_helpers.h"

namespace fs = std::filesystem;
using namespace attnviz;

namespace {
const fs::path kPair = fs::path(ATTNVIZ_TEST_DATA) / "model" / "tiny-pair";
}

TEST(ModelTrace, SentencePairMatchesReferenceWithTokensAndSegments) {
    const Model model = Model::open(kPair);
    EXPECT_EQ(model.config().model_type, "bert");
    EXPECT_EQ(model.config().n_layers, 2);
    TraceRequest request;
    request.text = "The cat sat on the mat";
    request.text_pair = "It was tired";
    RunOptions options;
    options.keep_queries_keys = true;
    options.keep_hidden_states = true;
    const AttentionTrace trace = model.trace(request, options);

    EXPECT_EQ(trace.model_id, "tiny-pair");
    EXPECT_EQ(trace.architecture, "bert");
    ASSERT_EQ(trace.sequences.size(), 1u);
    const TokenSequence& sequence = trace.sequences[0];
    EXPECT_EQ(sequence.name, "input");
    EXPECT_EQ(sequence.texts, (std::vector<std::string>{"The cat sat on the mat", "It was tired"}));
    const io::TensorSet reference =
        io::TensorSet::open_safetensors(kPair / "reference.safetensors");
    const auto ids = attnviz::testing::ints(*reference.find("input_ids"));
    ASSERT_EQ(sequence.tokens.size(), ids.size());
    const std::vector<int8_t> segments = {-1, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1};
    for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(sequence.tokens[i].id, ids[i]) << i;
        EXPECT_EQ(sequence.tokens[i].segment, segments[i]) << i;
        EXPECT_EQ(sequence.tokens[i].special, segments[i] == -1) << i;
        EXPECT_EQ(sequence.tokens[i].type_id, i >= 8 ? 1 : 0) << i;
    }
    EXPECT_EQ(sequence.tokens[2].text, "cat");
    EXPECT_EQ(sequence.tokens[2].offset, (Offset{4, 7}));  // "cat" in "The cat sat..."
    EXPECT_EQ(sequence.tokens[9].offset, (Offset{3, 6}));  // "was" in text B

    ASSERT_EQ(trace.blocks.size(), 1u);
    const AttentionBlock& block = trace.blocks[0];
    EXPECT_EQ(block.name, "self");
    EXPECT_FALSE(block.causal);
    EXPECT_TRUE(attnviz::testing::all_close(
        block.probs, attnviz::testing::floats(*reference.find("attentions")), 1e-5f));
    EXPECT_TRUE(block.has_queries_keys());
    EXPECT_FLOAT_EQ(block.score_scale, 1.0f / std::sqrt(8.0f));
    ASSERT_EQ(trace.hidden_states.size(), 1u);
    EXPECT_EQ(trace.hidden_states[0].n_states, 3);
}

TEST(ModelTrace, TooLongTextIsAnErrorUnlessTruncated) {
    const Model model = Model::open(kPair);  // max_position_embeddings 64
    TraceRequest request;
    for (int i = 0; i < 80; ++i) request.text += "cat ";
    EXPECT_THROW(model.trace(request), Error);
    request.truncate = true;
    const AttentionTrace trace = model.trace(request);
    EXPECT_EQ(trace.blocks[0].n_queries, 64);
    EXPECT_EQ(trace.sequences[0].tokens.back().text, "[SEP]");
}

TEST(ModelTrace, SupportedModelTypesListsBert) {
    const auto types = supported_model_types();
    EXPECT_NE(std::find(types.begin(), types.end(), "bert"), types.end());
}
