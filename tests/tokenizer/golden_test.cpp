// Every case of the Hugging Face goldens (npm tokenizers@0.23.2, made with
// tools/golden/golden_tokens.mjs; tests/data/PROVENANCE.md) must come out identical: ids, tokens,
// type ids, masks, code point and byte offsets. Also from the older files.
#include <filesystem>

#include <unistd.h>
#include <sstream>

#include <gtest/gtest.h>

#include "attnviz/tokenizer.h"
#include "io/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kTestData = ATTNVIZ_TEST_DATA;  // hf/ and golden/: tests/data/PROVENANCE.md
const fs::path kData = fs::path(ATTNVIZ_TEST_DATA) / "tokenizer";

// A folder holding links to only some files of a model folder, so that
// from_folder takes the fallback path.
fs::path folder_with(const std::string& model, std::initializer_list<const char*> files) {
    fs::path dir =
        fs::temp_directory_path() / ("attnviz-tok-" + model + "-" + std::to_string(::getpid()));
    for (const char* f : files) dir += std::string("-") + f;
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : files) fs::create_symlink(kTestData / "hf" / model / f, dir / f);
    return dir;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Compares one case; returns "" or a description of the first difference.
std::string compare_case(const attnviz::Tokenizer& tokenizer, const json& c) {
    attnviz::EncodeOptions options;
    options.add_special_tokens = c.value("add_special_tokens", true);
    std::string text = c["text"].get<std::string>();
    attnviz::Encoding e;
    try {
        e = c["text_pair"].is_null()
                ? tokenizer.encode(text, options)
                : tokenizer.encode_pair(text, c["text_pair"].get<std::string>(), options);
    } catch (const std::exception& ex) {
        return std::string("threw: ") + ex.what();
    }
    json actual = attnviz::encoding_to_json(e);
    for (const char* field : {"ids", "tokens", "token_type_ids", "attention_mask",
                              "special_tokens_mask", "offsets", "offsets_utf8"}) {
        const json& want = c[field];
        const json& got = actual[field];
        if (want == got) continue;
        size_t i = 0;
        while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
        std::ostringstream out;
        out << field << " differ at position " << i << ": expected "
            << (i < want.size() ? dump(want[i]) : "<end>") << ", got "
            << (i < got.size() ? dump(got[i]) : "<end>") << "\n      expected " << dump(want)
            << "\n      got      " << dump(got);
        return out.str();
    }
    return "";
}

void expect_golden(const attnviz::Tokenizer& tokenizer, const fs::path& golden_file,
                   bool ids_only = false) {
    json golden = attnviz::io::read_json(golden_file);
    size_t failures = 0, total = 0;
    std::ostringstream report;
    for (json c : golden["cases"]) {
        ++total;
        if (ids_only)  // compare everything but the token strings
            c.erase("tokens");
        std::string diff = compare_case(tokenizer, c);
        if (ids_only && diff.starts_with("tokens")) diff.clear();
        if (!diff.empty()) {
            ++failures;
            report << "  case " << c.value("id", "?") << " " << dump(c["text"]) << ": " << diff
                   << "\n";
        }
    }
    EXPECT_EQ(failures, 0u) << golden_file.filename() << ": " << failures << " of " << total
                            << " cases differ\n"
                            << report.str();
    EXPECT_GT(total, 0u);
}

struct GoldenCase {
    std::string model;
    std::vector<const char*> files;  // empty: the whole folder (tokenizer.json)
};

void PrintTo(const GoldenCase& c, std::ostream* out) {
    *out << c.model << (c.files.empty() ? " tokenizer.json" : " fallback files");
}

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesHuggingFace) {
    const GoldenCase& p = GetParam();
    fs::path folder = kTestData / "hf" / p.model;
    if (!p.files.empty()) {
        folder = folder_with(p.model, {});
        for (const char* f : p.files)
            fs::create_symlink(kTestData / "hf" / p.model / f, folder / f);
    }
    attnviz::Tokenizer tokenizer = attnviz::Tokenizer::from_folder(folder);
    expect_golden(tokenizer, kTestData / "golden" / (p.model + ".tokens.json"));
    // Our own cases (tests/data/tokenizer/<model>.*.tokens.json), plus any in
    // $ATTNVIZ_EXTRA_GOLDENS (e.g. a large random run made with golden_tokens.mjs).
    std::vector<fs::path> dirs{kData};
    if (const char* more = std::getenv("ATTNVIZ_EXTRA_GOLDENS")) dirs.emplace_back(more);
    for (const fs::path& dir : dirs)
        for (const auto& entry : fs::directory_iterator(dir)) {
            std::string name = entry.path().filename().string();
            if (name.starts_with(p.model + ".") && name.ends_with(".tokens.json"))
                expect_golden(tokenizer, entry.path());
        }
    if (!p.files.empty()) fs::remove_all(folder);
}

std::string name_of(const ::testing::TestParamInfo<GoldenCase>& info) {
    std::string n = info.param.model + (info.param.files.empty() ? "_tokenizer_json" : "_fallback");
    for (char& c : n)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(
    Tokenizer, Golden,
    ::testing::Values(GoldenCase{"bert-base-uncased", {}}, GoldenCase{"bert-base-cased", {}},
                      GoldenCase{"gpt2", {}}, GoldenCase{"roberta-base", {}},
                      GoldenCase{"t5-small", {}},
                      GoldenCase{"bert-base-uncased", {"vocab.txt", "tokenizer_config.json"}},
                      GoldenCase{"bert-base-cased", {"vocab.txt", "tokenizer_config.json"}},
                      GoldenCase{"gpt2", {"vocab.json", "merges.txt", "tokenizer_config.json"}},
                      GoldenCase{"roberta-base",
                                 {"vocab.json", "merges.txt", "tokenizer_config.json"}},
                      GoldenCase{"t5-small", {"spiece.model", "tokenizer_config.json"}}),
    name_of);

}  // namespace

namespace {

// Small tokenizer.json files that use the pieces the five models do not
// (BPE byte fallback with [a, b] merges, Prepend/Replace, NFD/StripAccents/
// Strip, Whitespace/Digits/Punctuation, Unigram byte fallback, Metaspace
// "first", Split, WordLevel, Sequence post-processor, added-token options),
// with goldens from tokenizers@0.23.2 on tests/data/tokenizer/synthetic_cases.json.
TEST(Tokenizer, SyntheticPipelinesMatchHuggingFace) {
    size_t checked = 0;
    for (const auto& entry : fs::directory_iterator(kData / "synthetic")) {
        if (!entry.is_directory()) continue;
        SCOPED_TRACE(entry.path().filename().string());
        attnviz::Tokenizer tokenizer = attnviz::Tokenizer::from_folder(entry.path());
        expect_golden(tokenizer, entry.path().string() + ".tokens.json");
        ++checked;
    }
    EXPECT_EQ(checked, 5u);
}

}  // namespace

namespace {

// XLM-RoBERTa's pipeline (Precompiled nmt_nfkc normalizer, Metaspace, Unigram
// with fairseq's ids, <mask> with lstrip, "<s> A </s> </s> B </s>") on a
// tokenizer.json built where the real one could not be had
// (tools/golden/make_xlm_roberta_unigram.py, tests/data/PROVENANCE.md), against
// goldens from tokenizers@0.23.2 on the 147 shared cases and the extra ones.
TEST(Tokenizer, XlmRobertaUnigramPipelineMatchesHuggingFace) {
    const attnviz::Tokenizer tokenizer =
        attnviz::Tokenizer::from_folder(kData / "xlm-roberta-unigram");
    expect_golden(tokenizer, kData / "xlm-roberta-unigram.tokens.json");
    expect_golden(tokenizer, kData / "xlm-roberta-unigram.extra.tokens.json");
}

}  // namespace
