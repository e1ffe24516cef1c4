// Head statistics on hand-checked cases: one small trace worked out on paper,
// the key roles of each input format, exact merging, and classical MDS of
// points whose layout is known. tests/python/test_head_stats.py checks the
// same code against the numpy reference on random traces and real models.
#include <gtest/gtest.h>

#include <cmath>

#include "attnviz/error.h"
#include "attnviz/head_stats.h"

namespace attnviz::analysis {
namespace {

TraceToken token(const std::string& display, bool special, int segment) {
    TraceToken t;
    t.text = display;
    t.display = display;
    t.special = special;
    t.segment = static_cast<int8_t>(special ? -1 : segment);
    return t;
}

AttentionTrace three_tokens() {
    AttentionTrace trace;
    trace.sequences.push_back(
        {"input", {"a"}, {token("[CLS]", true, 0), token("a", false, 0), token("[SEP]", true, 0)}});
    AttentionBlock block;
    block.name = "self";
    block.n_layers = block.n_heads = 1;
    block.n_queries = block.n_keys = 3;
    block.probs = {1, 0, 0, 0.5f, 0.5f, 0, 0.25f, 0.25f, 0.5f};
    trace.blocks.push_back(block);
    return trace;
}

TEST(HeadStats, ThreeTokensByHand) {
    const AttentionTrace trace = three_tokens();
    const HeadStatSums sums = head_stat_sums(trace, trace.blocks[0]);
    const double log2 = std::log(2.0);
    auto mean = [&](HeadStat stat) { return sums.mean(stat, 0, 0); };
    EXPECT_NEAR(mean(HeadStat::entropy), 2.5 * log2 / 3, 1e-7);
    EXPECT_NEAR(mean(HeadStat::distance), 1.25 / 3, 1e-7);
    EXPECT_NEAR(mean(HeadStat::cls), 1.75 / 3, 1e-7);
    EXPECT_NEAR(mean(HeadStat::sep), 0.5 / 3, 1e-7);
    EXPECT_NEAR(mean(HeadStat::punct), 0.0, 1e-7);
    EXPECT_NEAR(mean(HeadStat::self), 2.0 / 3, 1e-7);
    EXPECT_NEAR(mean(HeadStat::prev), 0.75 / 2, 1e-7);
    EXPECT_NEAR(mean(HeadStat::next), 0.0, 1e-7);
    EXPECT_NEAR(mean(HeadStat::top1), 2.0 / 3, 1e-7);
    EXPECT_EQ(sums.rows[sums.index(static_cast<int>(HeadStat::prev), 0, 0)], 2);
    EXPECT_NEAR(sums.mean_uniform_entropy(), std::log(3.0), 1e-7);
}

TEST(HeadStats, KeyRolesOfEachFormat) {
    AttentionBlock block;
    block.name = "self";
    AttentionTrace bert;  // [CLS] a , [SEP] b [MASK] [SEP]
    bert.sequences.push_back(
        {"input",
         {},
         {token("[CLS]", true, 0), token("a", false, 0), token(" ,", false, 0),
          token("[SEP]", true, 0), token("b", false, 1), token("[MASK]", true, 1),
          token("c", false, 1), token("[SEP]", true, 1)}});
    block.n_keys = 8;
    KeyRoles roles = key_roles(bert, block);
    EXPECT_EQ(roles.cls, 0);
    EXPECT_EQ(roles.seps, (std::vector<int>{3, 7}));  // not [MASK] inside a segment
    EXPECT_EQ(roles.puncts, (std::vector<int>{2}));

    AttentionTrace roberta;  // <s> a </s></s> b </s>
    roberta.sequences.push_back(
        {"input",
         {},
         {token("<s>", true, 0), token("a", false, 0), token("</s>", true, 0),
          token("</s>", true, 0), token("b", false, 1), token("</s>", true, 1)}});
    block.n_keys = 6;
    roles = key_roles(roberta, block);
    EXPECT_EQ(roles.seps, (std::vector<int>{2, 3, 5}));

    AttentionTrace gpt2;  // no special tokens: the first token is BOS for a causal block
    gpt2.sequences.push_back(
        {"input", {}, {token("The", false, 0), token(" cat", false, 0), token("!", false, 0)}});
    block.n_keys = 3;
    EXPECT_EQ(key_roles(gpt2, block).cls, -1);
    block.causal = true;
    roles = key_roles(gpt2, block);
    EXPECT_EQ(roles.cls, 0);
    EXPECT_TRUE(roles.seps.empty());
    EXPECT_EQ(roles.puncts, (std::vector<int>{2}));
}

TEST(HeadStats, MergeIsExactAndChecksShapes) {
    const AttentionTrace trace = three_tokens();
    HeadStatSums a = head_stat_sums(trace, trace.blocks[0]);
    const HeadStatSums once = a;
    a.merge(once);
    EXPECT_EQ(a.examples, 2);
    for (size_t i = 0; i < a.sums.size(); ++i) EXPECT_EQ(a.sums[i], 2 * once.sums[i]);
    EXPECT_EQ(a.mean(HeadStat::cls, 0, 0), once.mean(HeadStat::cls, 0, 0));
    HeadStatSums other = once;
    other.block = "decoder";
    EXPECT_THROW(a.merge(other), Error);
    HeadStatSums huge = once;
    huge.sums[0] = INT64_MAX;
    EXPECT_THROW(huge.merge(once), Error);
}

TEST(HeadStats, RefusesPartialCapture) {
    AttentionTrace trace = three_tokens();
    trace.blocks[0].probs.resize(4);
    EXPECT_THROW(head_stat_sums(trace, trace.blocks[0]), Error);
}

TEST(HeadStats, ClassicalMdsRecoversALine) {
    const std::vector<double> x = {0, 1, 3};
    std::vector<double> d(9);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) d[i * 3 + j] = std::abs(x[i] - x[j]);
    const std::vector<double> points = classical_mds_2d(d, 3);
    const double expected[] = {-4.0 / 3, -1.0 / 3, 5.0 / 3};
    for (int i = 0; i < 3; ++i) {
        EXPECT_NEAR(points[i * 2], expected[i], 1e-9);
        EXPECT_NEAR(points[i * 2 + 1], 0.0, 1e-6);
    }
}

TEST(HeadStats, JensenShannonOfDisjointHeadsIsLog2) {
    AttentionTrace trace = three_tokens();
    AttentionBlock& block = trace.blocks[0];
    block.n_heads = 2;
    block.n_queries = 1;
    block.probs = {1, 0, 0, 0, 0, 1};  // head 0 on key 0, head 1 on key 2
    const HeadDivergenceSums sums = head_divergence_sums(block);
    const std::vector<double> d = sums.distances();
    EXPECT_NEAR(d[1], std::sqrt(std::log(2.0)), 1e-6);
    EXPECT_EQ(d[0], 0);
}

}  // namespace
}  // namespace attnviz::analysis
