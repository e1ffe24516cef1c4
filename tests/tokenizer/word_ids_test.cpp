// Word ids (Hugging Face's Encoding.word_ids(): the index of the pre-tokenizer
// split a token came from, per sequence; None, here -1, for added special
// tokens), hand-checked against the pre-tokenizers' rules: BERT splits on
// whitespace and punctuation, GPT-2/RoBERTa's byte-level regex keeps a
// leading space with its word and splits "'s", T5's WhitespaceSplit +
// Metaspace splits on whitespace only.
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using attnviz::Encoding;
using attnviz::Tokenizer;

Tokenizer load(const std::string& model) {
    return Tokenizer::from_folder(fs::path(ATTNVIZ_TEST_DATA) / "hf" / model);
}

void expect_words(const Encoding& e, const std::vector<std::string>& tokens,
                  const std::vector<int32_t>& word_ids) {
    EXPECT_EQ(e.tokens, tokens);
    EXPECT_EQ(e.word_ids, word_ids);
}

TEST(WordIds, BertSplitsOnWhitespaceAndPunctuation) {
    expect_words(load("bert-base-uncased").encode("Hello, unaffable world's"),
                 {"[CLS]", "hello", ",", "una", "##ffa", "##ble", "world", "'", "s", "[SEP]"},
                 {-1, 0, 1, 2, 2, 2, 3, 4, 5, -1});
}

TEST(WordIds, Gpt2ByteLevelWordsKeepTheirSpace) {
    expect_words(load("gpt2").encode("Hello, unaffable world's"),
                 {"Hello", ",",
                  "\xC4\xA0"
                  "unaff",
                  "able", "\xC4\xA0world", "'s"},
                 {0, 1, 2, 2, 3, 4});
}

TEST(WordIds, T5MetaspaceWordsAreWhitespaceSeparated) {
    expect_words(load("t5-small").encode("Hello, unaffable world's"),
                 {"\xE2\x96\x81Hello", ",", "\xE2\x96\x81un", "aff", "able", "\xE2\x96\x81world",
                  "'", "s", "</s>"},
                 {0, 0, 1, 1, 1, 2, 2, 2, -1});
}

TEST(WordIds, CountPerSequenceOfAPair) {
    expect_words(load("roberta-base").encode_pair("Hi there", "you all"),
                 {"<s>", "Hi", "\xC4\xA0there", "</s>", "</s>", "you",
                  "\xC4\xA0"
                  "all",
                  "</s>"},
                 {-1, 0, 1, -1, -1, 0, 1, -1});
}

TEST(WordIds, TruncationKeepsThemAligned) {
    attnviz::EncodeOptions options;
    options.max_length = 5;
    options.truncate = true;
    const Encoding e = load("bert-base-uncased").encode("Hello, unaffable world's", options);
    EXPECT_EQ(e.word_ids, (std::vector<int32_t>{-1, 0, 1, 2, -1}));
    EXPECT_EQ(e.word_ids.size(), e.ids.size());
}

}  // namespace
