// Tokenizer behaviour beyond the goldens: truncation (expected ids from
// tokenizers@0.23.2 with setTruncation(max), longest_first), the length
// error, invalid UTF-8, token display, and errors that name the bad file.
#include <filesystem>

#include <unistd.h>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attnviz/error.h"
#include "attnviz/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fs = std::filesystem;
using attnviz::EncodeOptions;
using attnviz::Tokenizer;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace {

const fs::path kHf = fs::path(ATTNVIZ_TEST_DATA) / "hf";

const Tokenizer& tokenizer(const std::string& model) {
    static std::map<std::string, Tokenizer> cache;
    auto it = cache.find(model);
    if (it == cache.end()) it = cache.emplace(model, Tokenizer::from_folder(kHf / model)).first;
    return it->second;
}

EncodeOptions truncating(size_t max_length) {
    EncodeOptions o;
    o.max_length = max_length;
    o.truncate = true;
    return o;
}

struct TruncationCase {
    const char* model;
    const char* a;
    const char* b;  // nullptr: single text
    size_t max_length;
    std::vector<int32_t> ids, type_ids;
};

TEST(Tokenizer, TruncatesLikeHuggingFaceLongestFirst) {
    const std::vector<TruncationCase> cases = {
        {"bert-base-uncased",
         "The quick brown fox jumps over the lazy dog again and again",
         "A short one",
         12,
         {101, 1996, 4248, 2829, 4419, 14523, 2058, 102, 1037, 2460, 2028, 102},
         {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}},
        {"bert-base-uncased",
         "one two",
         "three four five six seven eight nine ten eleven twelve",
         9,
         {101, 2028, 2048, 102, 2093, 2176, 2274, 2416, 102},
         {0, 0, 0, 0, 1, 1, 1, 1, 1}},
        {"bert-base-uncased",
         "alpha beta gamma delta epsilon zeta eta theta",
         nullptr,
         6,
         {101, 6541, 8247, 13091, 7160, 102},
         {0, 0, 0, 0, 0, 0}},
        {"roberta-base",
         "The quick brown fox jumps over the lazy dog",
         "and the cat sleeps all day long",
         10,
         {0, 133, 2119, 6219, 2, 2, 463, 5, 4758, 2},
         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
        {"gpt2",
         "The quick brown fox jumps over the lazy dog",
         nullptr,
         5,
         {464, 2068, 7586, 21831, 18045},
         {0, 0, 0, 0, 0}},
        {"t5-small",
         "The quick brown fox jumps over the lazy dog",
         "second text here",
         7,
         {37, 1704, 4216, 1, 511, 1499, 1},
         {0, 0, 0, 0, 0, 0, 0}},
    };
    for (const auto& c : cases) {
        const Tokenizer& t = tokenizer(c.model);
        attnviz::Encoding e = c.b ? t.encode_pair(c.a, c.b, truncating(c.max_length))
                                  : t.encode(c.a, truncating(c.max_length));
        EXPECT_THAT(e.ids, ElementsAreArray(c.ids)) << c.model << ": " << c.a;
        EXPECT_THAT(e.type_ids, ElementsAreArray(c.type_ids)) << c.model << ": " << c.a;
        EXPECT_EQ(e.offsets.size(), e.ids.size());
        EXPECT_EQ(e.byte_offsets.size(), e.ids.size());
    }
}

TEST(Tokenizer, TooLongTextIsAnErrorGivingCountAndLimit) {
    EncodeOptions o;
    o.max_length = 5;
    try {
        tokenizer("bert-base-uncased")
            .encode("one two three four five", o);  // 5 words + [CLS] [SEP]
        FAIL() << "expected an error";
    } catch (const attnviz::TooLongError& e) {
        // No flag named: the library cannot know which program, if any, has --truncate.
        EXPECT_STREQ(e.what(), "text is 7 tokens; the model allows at most 5");
    }
    o.max_length = 7;
    EXPECT_EQ(tokenizer("bert-base-uncased").encode("one two three four five", o).size(), 7u);
}

TEST(Tokenizer, InvalidUtf8NamesTheBytePosition) {
    const Tokenizer& t = tokenizer("gpt2");
    try {
        t.encode(std::string("caf\xC3", 4));
        FAIL() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("at byte 3"));
    }
    try {
        t.encode_pair("fine", std::string("ok \xFF\xFE", 5));
        FAIL() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("at byte 3"));
    }
    EXPECT_THROW(t.encode(std::string("\xED\xA0\x80", 3)), attnviz::Error);  // a UTF-16 surrogate
}

TEST(Tokenizer, DisplayTokensUseTheDecoder) {
    EXPECT_EQ(tokenizer("bert-base-uncased").display_token("##ing"), "ing");
    EXPECT_EQ(tokenizer("bert-base-uncased").display_token("the"), "the");
    EXPECT_EQ(tokenizer("gpt2").display_token("\xC4\xA0the"), " the");          // "Ġthe"
    EXPECT_EQ(tokenizer("t5-small").display_token("\xE2\x96\x81the"), " the");  // "▁the"
    attnviz::Encoding e = tokenizer("roberta-base").encode("Hi there");
    EXPECT_THAT(tokenizer("roberta-base").display_tokens(e),
                ElementsAre("<s>", "Hi", " there", "</s>"));
}

TEST(Tokenizer, ModelMaxLengthComesFromTokenizerConfig) {
    EXPECT_EQ(tokenizer("bert-base-uncased").model_max_length(), 512u);
    EXPECT_EQ(tokenizer("gpt2").model_max_length(), 1024u);
}

TEST(Tokenizer, OffsetsPointIntoTheOriginalText) {
    std::string text = "Caf\xC3\xA9 na\xC3\xAFve";  // "Café naïve"
    attnviz::Encoding e = tokenizer("bert-base-uncased").encode(text);
    ASSERT_EQ(e.tokens[1], "cafe");
    EXPECT_EQ(text.substr(e.byte_offsets[1].start, e.byte_offsets[1].end - e.byte_offsets[1].start),
              "Caf\xC3\xA9");
    EXPECT_EQ(e.offsets[1], (attnviz::Offset{0, 4}));
    EXPECT_EQ(e.sequence_ids.front(), -1);
    EXPECT_EQ(e.sequence_ids[1], 0);
}

TEST(Tokenizer, BadFolderOrFileErrorsNameIt) {
    fs::path dir = fs::temp_directory_path() / ("attnviz-tok-bad-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    try {
        Tokenizer::from_folder(dir);
        FAIL() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr(dir.string()));
        EXPECT_THAT(e.what(), HasSubstr("tokenizer.json"));
    }
    std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "Mystery"}})";
    try {
        Tokenizer::from_folder(dir);
        FAIL() << "expected an error";
    } catch (const attnviz::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("Mystery"));
        EXPECT_THAT(e.what(), HasSubstr("tokenizer.json"));
    }
    std::ofstream(dir / "tokenizer.json")
        << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})";
    EXPECT_THROW(Tokenizer::from_folder(dir), attnviz::Error);
    std::ofstream(dir / "tokenizer.json") << "{ not json";
    EXPECT_THROW(Tokenizer::from_folder(dir), attnviz::Error);
    fs::remove_all(dir);
}

TEST(Tokenizer, EncodingToJsonHasTheGoldenFields) {
    nlohmann::json j = attnviz::encoding_to_json(tokenizer("bert-base-uncased").encode("Hello"));
    EXPECT_EQ(j["ids"], nlohmann::json({101, 7592, 102}));
    EXPECT_EQ(j["tokens"], nlohmann::json({"[CLS]", "hello", "[SEP]"}));
    EXPECT_EQ(j["offsets"], nlohmann::json::parse("[[0,0],[0,5],[0,0]]"));
    EXPECT_EQ(j["offsets_utf8"], nlohmann::json::parse("[[0,0],[0,5],[0,0]]"));
    for (const char* key : {"token_type_ids", "attention_mask", "special_tokens_mask"})
        EXPECT_TRUE(j.contains(key));
}

// Random bytes and random code points (any plane, controls, marks, unassigned)
// through every model: an Error for invalid UTF-8, else an encoding whose
// offsets stay inside the text. Run under ASan/UBSan by tools/test-sanitizers.
TEST(Tokenizer, RandomInputNeverCrashes) {
    uint64_t seed = 12345;
    auto next = [&seed] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(seed >> 33);
    };
    for (const char* model : {"bert-base-uncased", "gpt2", "roberta-base", "t5-small"}) {
        const Tokenizer& t = tokenizer(model);
        for (int round = 0; round < 300; ++round) {
            std::string text;
            size_t length = next() % 24;
            bool raw_bytes = round % 3 == 0;
            for (size_t k = 0; k < length; ++k) {
                if (raw_bytes) {
                    text.push_back(static_cast<char>(next() & 0xFF));
                    continue;
                }
                uint32_t c = next() % 4 == 0 ? next() % 0x110000 : next() % 0x3000;
                if (c >= 0xD800 && c < 0xE000) c = 'x';
                attnviz::tok::append_utf8(text, c);
            }
            try {
                attnviz::Encoding e = round % 2 ? t.encode(text) : t.encode_pair(text, text);
                for (size_t i = 0; i < e.size(); ++i) {
                    EXPECT_LE(e.byte_offsets[i].start, e.byte_offsets[i].end);
                    EXPECT_LE(e.byte_offsets[i].end, text.size());
                }
            } catch (const attnviz::Error& err) {
                EXPECT_TRUE(raw_bytes) << model << ": " << err.what();
            }
        }
    }
}

}  // namespace
