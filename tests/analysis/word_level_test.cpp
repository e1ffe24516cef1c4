// Word-level attention on a hand-made trace: to a word = sum over its pieces,
// from a word = mean over its pieces (Clark et al. 2019), checked by hand.
#include <gtest/gtest.h>

#include "attnviz/analysis.h"

namespace {

using namespace attnviz;

// [CLS] play ##ing [SEP]: word ids -1 0 0 -1.
AttentionTrace hand_trace() {
    AttentionTrace trace;
    TokenSequence s;
    s.name = "input";
    for (auto [text, word] : {std::pair{"[CLS]", -1}, {"play", 0}, {"##ing", 0}, {"[SEP]", -1}}) {
        TraceToken t;
        t.text = t.display = text;
        t.word_id = word;
        t.special = word < 0;
        s.tokens.push_back(t);
    }
    trace.sequences.push_back(s);
    AttentionBlock b;
    b.name = "self";
    b.n_layers = b.n_heads = 1;
    b.n_queries = b.n_keys = 4;
    b.probs = {0.1f,  0.2f,  0.3f,  0.4f,  //
               0.4f,  0.3f,  0.2f,  0.1f,  //
               0.0f,  0.5f,  0.5f,  0.0f,  //
               0.25f, 0.25f, 0.25f, 0.25f};
    trace.blocks.push_back(b);
    return trace;
}

TEST(WordLevel, SumsToAWordAndAveragesFromIt) {
    const AttentionTrace words = analysis::word_level(hand_trace());
    ASSERT_EQ(words.sequences[0].tokens.size(), 3u);
    EXPECT_EQ(words.sequences[0].tokens[1].text, "play##ing");
    const std::vector<float>& p = words.blocks[0].probs;
    ASSERT_EQ(p.size(), 9u);
    // [CLS] row: 0.1, 0.2 + 0.3, 0.4
    EXPECT_FLOAT_EQ(p[0], 0.1f);
    EXPECT_FLOAT_EQ(p[1], 0.5f);
    EXPECT_FLOAT_EQ(p[2], 0.4f);
    // "playing" row: mean of rows 1 and 2 after summing columns 1 and 2
    EXPECT_FLOAT_EQ(p[3], 0.2f);
    EXPECT_FLOAT_EQ(p[4], 0.75f);
    EXPECT_FLOAT_EQ(p[5], 0.05f);
}

}  // namespace
