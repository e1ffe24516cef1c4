// read_npz: what write_npz writes comes back as the same trace (the round
// trip `attnviz export` -> `attnviz view --attention`), and bad files are one
// Error naming the file and the array.
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/error.h"
#include "attnviz/export.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace {

attnviz::AttentionTrace pair_trace() {
    attnviz::AttentionTrace trace;
    trace.model_id = "tiny";
    trace.architecture = "bert";
    attnviz::TokenSequence sequence{"input", {"A b", "C"}, {}};
    const char* texts[] = {"[CLS]", "a", "b\xc3\xa9", "[SEP]", "c", "[SEP]"};
    const int8_t segments[] = {-1, 0, 0, -1, 1, -1};
    for (int i = 0; i < 6; ++i) {
        attnviz::TraceToken token;
        token.text = texts[i];
        token.id = 100 + i;
        token.type_id = i >= 4 ? 1 : 0;
        token.segment = segments[i];
        sequence.tokens.push_back(token);
    }
    trace.sequences.push_back(sequence);
    attnviz::AttentionBlock block;
    block.name = "self";
    block.n_layers = 2;
    block.n_heads = 3;
    block.n_queries = block.n_keys = 6;
    for (int i = 0; i < 2 * 3 * 6 * 6; ++i)
        block.probs.push_back(static_cast<float>(i % 7) / 21.0f);
    block.head_dim = 4;
    block.score_scale = 0.5f;
    for (int i = 0; i < 2 * 3 * 6 * 4; ++i) {
        block.queries.push_back(static_cast<float>(i));
        block.keys.push_back(-static_cast<float>(i) / 3.0f);
    }
    trace.blocks.push_back(block);
    return trace;
}

// model_revision is written only when known, and read back as written.
TEST(NpzRead, ModelRevisionComesBack) {
    const fs::path path = fs::temp_directory_path() / "attnviz_npz_read_revision.npz";
    attnviz::AttentionTrace written = pair_trace();
    attnviz::write_npz(written, path);
    EXPECT_EQ(attnviz::read_npz(path).model_revision, "");
    written.model_revision = "86b5e0934494bd15c9632b12f734a8a67f723594";
    attnviz::write_npz(written, path);
    const attnviz::AttentionTrace read = attnviz::read_npz(path);
    fs::remove(path);
    EXPECT_EQ(read.model_revision, "86b5e0934494bd15c9632b12f734a8a67f723594");
    EXPECT_EQ(read.model_id, "tiny");
}

TEST(NpzRead, WhatWriteNpzWritesComesBack) {
    const fs::path path = fs::temp_directory_path() / "attnviz_npz_read_round_trip.npz";
    const attnviz::AttentionTrace written = pair_trace();
    attnviz::write_npz(written, path);
    const attnviz::AttentionTrace read = attnviz::read_npz(path);
    fs::remove(path);
    EXPECT_EQ(read.model_id, "tiny");
    EXPECT_EQ(read.architecture, "bert");
    ASSERT_EQ(read.sequences.size(), 1u);
    EXPECT_EQ(read.sequences[0].texts, written.sequences[0].texts);
    ASSERT_EQ(read.sequences[0].tokens.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
        const attnviz::TraceToken& token = read.sequences[0].tokens[i];
        EXPECT_EQ(token.text, written.sequences[0].tokens[i].text);
        EXPECT_EQ(token.id, written.sequences[0].tokens[i].id);
        EXPECT_EQ(token.type_id, written.sequences[0].tokens[i].type_id);
        EXPECT_EQ(token.segment, i >= 4 ? 1 : 0) << i;  // sentence_b_start = 4
        EXPECT_EQ(token.special, token.text == "[CLS]" || token.text == "[SEP]") << i;
    }
    ASSERT_EQ(read.blocks.size(), 1u);
    const attnviz::AttentionBlock& block = read.blocks[0];
    EXPECT_EQ(block.name, "self");
    EXPECT_EQ(block.n_layers, 2);
    EXPECT_EQ(block.n_heads, 3);
    EXPECT_EQ(block.probs, written.blocks[0].probs);
    EXPECT_FALSE(block.causal);
    EXPECT_EQ(block.head_dim, 4);
    EXPECT_EQ(block.queries, written.blocks[0].queries);
    EXPECT_EQ(block.keys, written.blocks[0].keys);
    EXPECT_EQ(block.score_scale, 0.5f);
    EXPECT_TRUE(block.layer_score_scales.empty());
}

TEST(NpzRead, EncoderDecoderNamesAndBadFiles) {
    const fs::path path = fs::temp_directory_path() / "attnviz_npz_read_no_tokens.npz";
    attnviz::AttentionTrace trace = pair_trace();
    trace.sequences[0].name = "encoder";  // written as encoder_tokens ...
    trace.sequences.push_back(trace.sequences[0]);
    trace.sequences[1].name = "decoder";
    trace.blocks[0].name = "encoder";
    trace.blocks.push_back(trace.blocks[0]);
    trace.blocks[1].name = "decoder";
    trace.blocks[1].query_sequence = trace.blocks[1].key_sequence = 1;
    attnviz::write_npz(trace, path);
    const attnviz::AttentionTrace read =
        attnviz::read_npz(path);  // ... and read back by those names
    ASSERT_EQ(read.blocks.size(), 2u);
    EXPECT_EQ(read.blocks[1].name, "decoder");
    EXPECT_EQ(read.blocks[1].query_sequence, 1);
    attnviz::io::write_file(path, "PK not a zip");
    try {
        attnviz::read_npz(path);
        ADD_FAILURE() << "no error";
    } catch (const attnviz::Error& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
    fs::remove(path);
}

}  // namespace
