// Tokenizer files from strangers (issue 12): every id a file gives must lie
// inside the id space the file justifies (its vocabulary entries plus its
// added tokens), a wrong JSON type is an Error naming the key, and the
// added-token matcher stays linear with 100,000 added tokens. Each bad file
// ends in one attnviz::Error naming the file and the key, never bad_alloc.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "attnviz/tokenizer.h"

namespace fs = std::filesystem;
using attnviz::Tokenizer;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

namespace {

const fs::path kHf = fs::path(ATTNVIZ_TEST_DATA) / "hf";

// A fresh folder per test, removed at the end.
class HostileTokenizerFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("attnviz-hostile-tok-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name, std::ios::binary) << text;
    }
    // The one-line message from_folder fails with.
    std::string error() {
        try {
            Tokenizer::from_folder(dir_);
        } catch (const attnviz::Error& e) {
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
            return e.what();
        }
        ADD_FAILURE() << "expected an attnviz::Error";
        return "";
    }
    std::string error_of_json(const Json& tokenizer_json) {
        write("tokenizer.json", tokenizer_json.dump());
        return error();
    }

    fs::path dir_;
};

Json wordpiece(Json vocab) {
    return Json{{"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}}},
                {"pre_tokenizer", {{"type", "WhitespaceSplit"}}}};
}

Json bpe(Json vocab, Json merges) {
    return Json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST_F(HostileTokenizerFile, VocabIdFarPastTheVocabularyIsRefused) {
    // One id of 2^27 sized the id -> token table: 4.2 GB for a small file.
    std::string message = error_of_json(wordpiece({{"[UNK]", 0}, {"a", 1}, {"x", 134217728}}));
    EXPECT_THAT(message, AllOf(HasSubstr((dir_ / "tokenizer.json").string()),
                               HasSubstr("model.vocab: id 134217728 for \"x\" is out of range"),
                               HasSubstr("3 vocabulary entries and 0 added tokens")));
    message = error_of_json(bpe({{"a", 0}, {"b", 4294967295u}}, Json::array()));
    EXPECT_THAT(message, HasSubstr("model.vocab: id 4294967295 for \"b\" is out of range"));
}

TEST_F(HostileTokenizerFile, NegativeOrFractionalVocabIdIsRefused) {
    EXPECT_THAT(error_of_json(wordpiece({{"[UNK]", 0}, {"y", -1}})),
                AllOf(HasSubstr("tokenizer.json"),
                      HasSubstr("model.vocab: id -1 for \"y\" is out of range")));
    EXPECT_THAT(error_of_json(wordpiece({{"[UNK]", 0}, {"z", 1.5}})),
                HasSubstr("model.vocab: id 1.5 for \"z\" is not a non-negative integer"));
    EXPECT_THAT(error_of_json(wordpiece({{"[UNK]", 0}, {"w", "1"}})),
                HasSubstr("model.vocab: id \"1\" for \"w\" is not a non-negative integer"));
}

TEST_F(HostileTokenizerFile, IdsUpToTheAddedTokensAreAccepted) {
    // tokenizers numbers added tokens after the vocabulary; a vocabulary may
    // leave their ids out of model.vocab, so ids up to entries + added pass.
    Json j = wordpiece({{"[UNK]", 0}, {"hello", 2}});
    j["added_tokens"] = {{{"id", 1}, {"content", "[X]"}, {"special", true}}};
    write("tokenizer.json", j.dump());
    EXPECT_THAT(Tokenizer::from_folder(dir_).encode("hello").ids, ElementsAre(2));
    j["model"]["vocab"]["far"] = 4;  // 3 entries + 1 added token: 4 is one too far
    EXPECT_THAT(error_of_json(j), HasSubstr("model.vocab: id 4 for \"far\" is out of range"));
}

TEST_F(HostileTokenizerFile, MergeOfAnUnknownTokenNamesTheEntry) {
    EXPECT_THAT(error_of_json(bpe({{"a", 0}, {"b", 1}, {"ab", 2}}, {"a b", "a c"})),
                AllOf(HasSubstr("tokenizer.json"),
                      HasSubstr("model.merges: entry 1: \"c\" is not in the vocabulary")));
    EXPECT_THAT(error_of_json(bpe({{"a", 0}}, Json::array({Json::array({"a", 7})}))),
                HasSubstr("model.merges: entry 0 is neither"));
}

TEST_F(HostileTokenizerFile, AddedTokenWithAnOutOfRangeIdIsRefused) {
    // It used to be dropped without a word.
    Json j = wordpiece({{"[UNK]", 0}, {"a", 1}});
    j["added_tokens"] = {{{"id", 2}, {"content", "<ok>"}},
                         {{"id", 134217728}, {"content", "<far>"}, {"special", true}}};
    EXPECT_THAT(error_of_json(j),
                AllOf(HasSubstr("tokenizer.json"),
                      HasSubstr("added_tokens: id 134217728 for \"<far>\" is out of range")));
    j["added_tokens"][1]["id"] = -5;
    EXPECT_THAT(error_of_json(j), HasSubstr("added_tokens: id -5 for \"<far>\" is out of range"));
}

TEST_F(HostileTokenizerFile, PostProcessorSpecialTokenIdOutOfRangeIsRefused) {
    Json j = wordpiece({{"[UNK]", 0}, {"[CLS]", 1}, {"[SEP]", 2}});
    j["post_processor"] = {
        {"type", "BertProcessing"}, {"sep", {"[SEP]", 2}}, {"cls", {"[CLS]", 3}}};
    EXPECT_THAT(error_of_json(j),
                HasSubstr("post_processor.cls: id 3 for \"[CLS]\" is out of range"));
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", "[CLS] $A"},
        {"pair", "[CLS] $A $B"},
        {"special_tokens",
         {{"[CLS]", {{"id", "[CLS]"}, {"ids", {4294967295u}}, {"tokens", {"[CLS]"}}}}}}};
    EXPECT_THAT(
        error_of_json(j),
        HasSubstr("post_processor.special_tokens: id 4294967295 for \"[CLS]\" is out of range"));
}

TEST_F(HostileTokenizerFile, BadTemplateTypeIdIsAnErrorNotAStdException) {
    Json j = wordpiece({{"[UNK]", 0}, {"[CLS]", 1}});
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", "[CLS]:x $A"},
        {"pair", "[CLS] $A $B"},
        {"special_tokens", {{"[CLS]", {{"id", "[CLS]"}, {"ids", {1}}, {"tokens", {"[CLS]"}}}}}}};
    EXPECT_THAT(error_of_json(j), HasSubstr("\"[CLS]:x\" does not end in a type id"));
}

TEST_F(HostileTokenizerFile, WrongJsonTypesNameTheKey) {
    Json j = wordpiece({{"[UNK]", 0}});
    j["decoder"] = {{"type", "Strip"}, {"start", "one"}};
    EXPECT_THAT(error_of_json(j), AllOf(HasSubstr("tokenizer.json"), HasSubstr("decoder: ")));
    j.erase("decoder");
    j["added_tokens"] = {{{"id", 1}, {"content", 5}}};
    EXPECT_THAT(error_of_json(j), HasSubstr("added_tokens: \"content\" must be a string"));
    j["added_tokens"] = {{"content", "x"}};
    EXPECT_THAT(error_of_json(j), HasSubstr("added_tokens must be an array"));
    j.erase("added_tokens");
    j["model"]["vocab"] = Json::array({1, 2});
    EXPECT_THAT(error_of_json(j), HasSubstr("model.vocab must be an object"));
    EXPECT_THAT(
        error_of_json(Json{
            {"model", {{"type", "Unigram"}, {"vocab", Json::array({Json::array({"a", "b"})})}}}}),
        HasSubstr("model.vocab: entry 0 is not [piece, score]"));
    EXPECT_THAT(error_of_json(Json{{"model",
                                    {{"type", "Unigram"},
                                     {"unk_id", -1},
                                     {"vocab", Json::array({Json::array({"a", 0.0})})}}}}),
                HasSubstr("model.unk_id: -1 is not a piece of the vocabulary (1 pieces)"));
    EXPECT_THAT(error_of_json(Json::array({1})), HasSubstr("expected a JSON object"));
}

TEST_F(HostileTokenizerFile, LegacyVocabJsonIdOutOfRangeNamesTheFile) {
    write("vocab.json", R"({"a": 0, "b": 1, "ab": 134217728})");
    write("merges.txt", "#version: 0.2\na b\n");
    EXPECT_THAT(error(), AllOf(HasSubstr((dir_ / "vocab.json").string()),
                               HasSubstr("vocab.json: id 134217728 for \"ab\" is out of range")));
    write("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
    write("merges.txt", "#version: 0.2\na b\nab q\n");
    EXPECT_THAT(error(), AllOf(HasSubstr("merges.txt"),
                               HasSubstr("model.merges: entry 1: \"q\" is not in the vocabulary")));
}

TEST_F(HostileTokenizerFile, LegacyVocabTxtWithRepeatedLinesKeepsLineIds) {
    // transformers' load_vocab: a repeated token takes its last line's id,
    // and the id of its first line stays unused.
    // Ten "hello" lines leave nine ids unused, more than the four special tokens.
    std::string lines = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    for (int i = 0; i < 10; ++i) lines += "hello\n";
    write("vocab.txt", lines + "world\n");
    Tokenizer t = Tokenizer::from_folder(dir_);
    EXPECT_THAT(t.encode("hello world").ids, ElementsAre(2, 13, 14, 3));
}

TEST_F(HostileTokenizerFile, LegacyExtraIdsBeyondTheModelAreRefused) {
    fs::copy_file(kHf / "t5-small" / "spiece.model", dir_ / "spiece.model");
    write("tokenizer_config.json", R"({"extra_ids": 1000000000})");
    EXPECT_THAT(error(), AllOf(HasSubstr("spiece.model"),
                               HasSubstr("tokenizer_config.json: extra_ids 1000000000")));
    write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
    fs::remove(dir_ / "spiece.model");
    write("vocab.txt", "[UNK]\n[CLS]\n[SEP]\n");
    EXPECT_THAT(error(),
                HasSubstr("tokenizer_config.json: \"do_lower_case\" must be true or false"));
}

TEST_F(HostileTokenizerFile, OneCharacterKeysMustBeOneCharacter) {
    // An empty Strip content made display_token loop `start` times: forever.
    Json j = wordpiece({{"[UNK]", 0}});
    j["decoder"] = {{"type", "Strip"}, {"content", ""}, {"start", 1e18}, {"stop", 0}};
    EXPECT_THAT(error_of_json(j),
                HasSubstr("tokenizer.json: \"content\" must be one character, not \"\""));
    j["decoder"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
    EXPECT_THAT(error_of_json(j), HasSubstr("\"replacement\" must be one character, not \"ab\""));
    j.erase("decoder");
    j["pre_tokenizer"] = {{"type", "CharDelimiterSplit"}, {"delimiter", ""}};
    EXPECT_THAT(error_of_json(j), HasSubstr("\"delimiter\" must be one character"));
}

// Chains that double a text at every step: 2^40 bytes from one "a" before.
TEST_F(HostileTokenizerFile, ExponentialNormalizerPreTokenizerOrDecoderChainsAreAnError) {
    Json replaces = Json::array(), byte_levels = Json::array();
    for (int i = 0; i < 40; ++i) {
        replaces.push_back(
            {{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "aa"}});
        byte_levels.push_back(
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}});
    }
    Json j = wordpiece({{"[UNK]", 0}, {"a", 1}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", replaces}};
    write("tokenizer.json", j.dump());
    try {
        Tokenizer::from_folder(dir_).encode("a");
        ADD_FAILURE() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("make a text of 1 bytes more than 64 times longer"));
    }
    j.erase("normalizer");
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", byte_levels}};
    write("tokenizer.json", j.dump());
    EXPECT_THROW(Tokenizer::from_folder(dir_).encode("\xC3\xA9"), attnviz::Error);
    j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
    j["decoder"] = {{"type", "Sequence"}, {"decoders", replaces}};
    write("tokenizer.json", j.dump());
    Tokenizer t = Tokenizer::from_folder(dir_);
    EXPECT_THAT(t.encode("a").ids, ElementsAre(1));
    try {
        t.display_token("a");
        ADD_FAILURE() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(),
                    HasSubstr("decoders make a token of 1 bytes more than 64 times longer"));
    }
}

// 100,000 added tokens "tok0".."tok99999" (ids 3.. after a 3-word vocabulary),
// which took 47 s to load with a quadratic loader and a matcher that tried
// every token at every byte. Expected ids worked out by hand from
// leftmost-longest matching.
TEST_F(HostileTokenizerFile, HundredThousandAddedTokensLoadAndMatchLeftmostLongest) {
    Json j = Json{{"model",
                   {{"type", "WordLevel"},
                    {"unk_token", "[UNK]"},
                    {"vocab", {{"[UNK]", 0}, {"hello", 1}, {"world", 2}}}}},
                  {"pre_tokenizer", {{"type", "WhitespaceSplit"}}}};
    Json added = Json::array();
    for (int i = 0; i < 100000; ++i)
        added.push_back({{"id", 3 + i},
                         {"content", "tok" + std::to_string(i)},
                         {"special", false},
                         {"normalized", false}});
    j["added_tokens"] = std::move(added);
    write("tokenizer.json", j.dump());
    Tokenizer t = Tokenizer::from_folder(dir_);

    EXPECT_THAT(t.encode("hello tok123 world").ids, ElementsAre(1, 3 + 123, 2));
    // At "tok12345x" the longest token is tok12345; "x" is left to the model.
    EXPECT_THAT(t.encode("tok12345x").ids, ElementsAre(3 + 12345, 0));
    // "tok1tok2": tok1 (no tok1t...), then tok2.
    EXPECT_THAT(t.encode("tok1tok2").ids, ElementsAre(3 + 1, 3 + 2));
    // "tok999999" is not a token: tok99999 then "9".
    attnviz::Encoding e = t.encode("tok999999 tok");
    EXPECT_THAT(e.ids, ElementsAre(3 + 99999, 0, 0));
    EXPECT_THAT(e.tokens, ElementsAre("tok99999", "[UNK]", "[UNK]"));

    // A long text of many matches stays quick (the matcher is linear).
    std::string text;
    std::vector<int32_t> expected;
    for (int i = 0; i < 20000; ++i) {
        int k = (i * 7919) % 100000;
        text += "tok" + std::to_string(k) + " ";
        expected.push_back(3 + k);
    }
    EXPECT_THAT(t.encode(text).ids, ElementsAreArray(expected));
}

// Patterns that overlap and share suffixes, where an Aho-Corasick automaton's
// failure links matter: leftmost first, then longest (tokenizers'
// MatchKind::LeftmostLongest).
TEST_F(HostileTokenizerFile, OverlappingAddedTokensMatchLeftmostLongest) {
    Json j = Json{{"model",
                   {{"type", "WordLevel"},
                    {"unk_token", "[UNK]"},
                    {"vocab", {{"[UNK]", 0}, {"a", 1}, {"d", 2}, {"e", 3}}}}},
                  {"pre_tokenizer", {{"type", "WhitespaceSplit"}}}};
    j["added_tokens"] = Json::array();
    for (const char* content : {"ab", "abc", "bcd", "bc", "abcx"})
        j["added_tokens"].push_back({{"content", content}, {"normalized", false}});
    write("tokenizer.json", j.dump());
    Tokenizer t = Tokenizer::from_folder(dir_);
    // ids: ab 4, abc 5, bcd 6, bc 7, abcx 8.
    EXPECT_THAT(t.encode("abcd").tokens, ElementsAre("abc", "d"));  // abc starts first
    EXPECT_THAT(t.encode("abcd").ids, ElementsAre(5, 2));
    EXPECT_THAT(t.encode("abce").ids, ElementsAre(5, 3));
    EXPECT_THAT(t.encode("abcx").ids, ElementsAre(8));
    EXPECT_THAT(t.encode("aabcde").tokens, ElementsAre("a", "abc", "[UNK]"));  // "de": no word
    EXPECT_THAT(t.encode("xbcde").ids, ElementsAre(0, 6, 3));  // bcd, the longest at 1
    EXPECT_THAT(t.encode("bcbcd").tokens, ElementsAre("bc", "bcd"));
}

}  // namespace

// ByteFallback reads "<0xHH>" as HF's u8::from_str_radix does; other six-byte
// "<0x..>" tokens are plain text. std::stoi threw on "<0xZZ>" (found by the
// tokenizer_json fuzzer) and read "<0x4z>" as byte 4.
TEST_F(HostileTokenizerFile, ByteFallbackTakesOnlyHexBytes) {
    Json j = wordpiece({{"[UNK]", 0}});
    j["decoder"] = {{"type", "ByteFallback"}};
    write("tokenizer.json", j.dump());
    const Tokenizer t = Tokenizer::from_folder(dir_);
    EXPECT_EQ(t.display_token("<0x41>"), "A");
    EXPECT_EQ(t.display_token("<0x+F>"), "\x0f");
    EXPECT_EQ(t.display_token("<0xZZ>"), "<0xZZ>");
    EXPECT_EQ(t.display_token("<0x4z>"), "<0x4z>");
    EXPECT_EQ(t.display_token("<0x-1>"), "<0x-1>");
}
