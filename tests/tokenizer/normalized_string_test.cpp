// NormalizedString keeps, for every normalized byte, the original bytes it
// came from (the expectations follow tokenizers' own normalizer.rs tests).
#include <gtest/gtest.h>

#include "tokenizer/normalized_string.h"
#include "tokenizer/pipeline.h"

using attnviz::tok::NormalizedString;
using attnviz::tok::PreTokenizedString;

namespace {

std::string original_of(const NormalizedString& n, size_t start, size_t end) {
    auto r = n.normalized_to_original(start, end);
    return r ? n.original().substr(r->first, r->second - r->first) : "<none>";
}

TEST(NormalizedString, NfdAddsCharsAlignedToTheirSource) {
    NormalizedString n("\xC3\xA9l\xC3\xA9gant");  // "élégant"
    n.nfd();
    EXPECT_EQ(n.get(), "e\xCC\x81le\xCC\x81gant");
    EXPECT_EQ(original_of(n, 0, 1), "\xC3\xA9");  // e <- é
    EXPECT_EQ(original_of(n, 1, 3), "\xC3\xA9");  // U+0301 <- é
    EXPECT_EQ(original_of(n, 3, 4), "l");
    n.filter([](char32_t c) { return c != 0x301; });
    EXPECT_EQ(n.get(), "elegant");
    EXPECT_EQ(original_of(n, 0, 7), "\xC3\xA9l\xC3\xA9gant");
    EXPECT_EQ(original_of(n, 2, 3), "\xC3\xA9");
}

TEST(NormalizedString, LowercaseOfDottedCapitalIAddsAChar) {
    NormalizedString n("\xC4\xB0x");  // "İx"
    n.lowercase();
    EXPECT_EQ(n.get(), "i\xCC\x87x");
    EXPECT_EQ(original_of(n, 0, 1), "\xC4\xB0");
    EXPECT_EQ(original_of(n, 1, 3), "\xC4\xB0");
    EXPECT_EQ(original_of(n, 3, 4), "x");
}

TEST(NormalizedString, SliceKeepsTheShiftIntoTheOriginal) {
    NormalizedString n("Hello world");
    n.lowercase();
    NormalizedString world = n.slice(6, 11);
    EXPECT_EQ(world.get(), "world");
    EXPECT_EQ(world.original(), "world");
    EXPECT_EQ(world.offsets_original(), (std::pair<size_t, size_t>{6, 11}));
    world.prepend("\xE2\x96\x81");  // "▁": aligned with the char it precedes
    EXPECT_EQ(world.get(), "\xE2\x96\x81world");
    EXPECT_EQ(original_of(world, 0, 3), "w");
}

TEST(PreTokenizer, BertSplitsWhitespacePunctuationAndChineseChars) {
    auto normalizer =
        attnviz::tok::normalizer_from_json({{"type", "BertNormalizer"}, {"lowercase", false}});
    auto pre_tokenizer = attnviz::tok::pre_tokenizer_from_json({{"type", "BertPreTokenizer"}});
    std::string text = "Hey \xE4\xB8\xAD\xE5\x9B\xBD, friend!";  // "Hey 中国, friend!"
    PreTokenizedString pre(text);
    pre.normalize([&](NormalizedString& s) { normalizer->normalize(s); });
    pre_tokenizer->pre_tokenize(pre);
    std::vector<std::pair<std::string, std::pair<size_t, size_t>>> got;
    for (auto& split : pre.splits())
        got.emplace_back(split.normalized.get(), split.normalized.offsets_original());
    using Item = std::pair<std::string, std::pair<size_t, size_t>>;
    std::vector<Item> want = {{"Hey", {0, 3}}, {"\xE4\xB8\xAD", {4, 7}}, {"\xE5\x9B\xBD", {7, 10}},
                              {",", {10, 11}}, {"friend", {12, 18}},     {"!", {18, 19}}};
    EXPECT_EQ(got, want);
}

TEST(PreTokenizer, ByteLevelMapsBytesAndKeepsCharOffsets) {
    auto pre_tokenizer =
        attnviz::tok::pre_tokenizer_from_json({{"type", "ByteLevel"}, {"add_prefix_space", false}});
    std::string text = "i\xE2\xAD\xA2j";  // "i⭢j", as in tokenizers' byte_level.rs test
    PreTokenizedString pre(text);
    pre_tokenizer->pre_tokenize(pre);
    ASSERT_EQ(pre.splits().size(), 3u);
    EXPECT_EQ(pre.splits()[1].normalized.get(), "\xC3\xA2\xC5\x83\xC2\xA2");  // "âŃ¢"
    EXPECT_EQ(pre.splits()[1].normalized.offsets_original(), (std::pair<size_t, size_t>{1, 4}));
}

}  // namespace
