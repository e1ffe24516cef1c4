// Base-sized random checkpoints against the PyTorch reference (slow: the
// Slow* tests carry the ctest label "slow"): GPT-2 base at its full 1024-token context,
// a Llama-style model with grouped-query attention (12 query heads over 4
// key/value heads) at ~2070 tokens, and BART base. tools/reference/arch_reference.py
// writes each model and its reference into a temporary folder for the ids
// attnviz's tokenizer produced, and runs the same forward in float64; every
// attention, query and key tensor must stay within the float32 error model
// (within_float32_error in arch_reference_check.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "arch_reference_check.h"
#include "attnviz/model.h"
#include "attnviz/tokenizer.h"

namespace attnviz {
namespace {

using testing::expect_block_matches;
using testing::reference_ids;
using testing::Tolerance;

const char* kParagraph =
    "Attention maps show which tokens each head reads when it builds the next layer's view of "
    "a word. Some heads look one token back, some look at the separator, and a few follow "
    "syntax across the whole sentence: a verb finds its subject, a pronoun finds its noun. ";

std::string long_text(int paragraphs) {
    std::string text;
    for (int i = 0; i < paragraphs; ++i) text += kParagraph;
    return text;
}

// Generates the checkpoint for the tokenizer's ids of text (and target), runs
// Model::open + trace, and compares every block. max_tokens: the model's own
// limit, which the trace truncates to (0: none); expect_tokens: at least this many.
void expect_base_matches(const std::string& arch, const std::string& tokenizer_name,
                         const std::string& text, std::optional<std::string> target,
                         size_t max_tokens, size_t expect_tokens) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() /
        ("attnviz-arch-base-" + arch + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    Tokenizer tokenizer =
        Tokenizer::from_folder(std::filesystem::path(ATTNVIZ_TEST_DATA) / "hf" / tokenizer_name);
    EncodeOptions encode;
    encode.max_length = max_tokens;
    encode.truncate = max_tokens > 0;
    Encoding source = tokenizer.encode(text, encode);
    ASSERT_GE(source.size(), expect_tokens);
    nlohmann::json job = {{"arch", arch},         {"out", dir.string()}, {"ids", source.ids},
                          {"size", "base"},       {"head", true},        {"seed", 3},
                          {"float64_check", true}};
    if (target) job["target_ids"] = tokenizer.encode(*target).ids;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "jobs.json") << nlohmann::json::array({job}).dump();
    const std::string command = "/usr/bin/python3 " ATTNVIZ_SOURCE_DIR
                                "/tools/reference/arch_reference.py --jobs '" +
                                (dir / "jobs.json").string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    testing::copy_tokenizer(tokenizer_name, dir);

    Model model = Model::open(dir);
    TraceRequest request;
    request.text = text;
    request.target = target;
    request.truncate = true;
    RunOptions options;
    options.keep_queries_keys = true;
    AttentionTrace trace = model.trace(request, options);
    io::TensorSet ref = io::TensorSet::open_safetensors(dir / "reference.safetensors");
    ASSERT_EQ(trace.sequences.front().tokens.size(), reference_ids(ref, "input_ids").size());
    if (target) {
        for (const char* block : {"encoder", "decoder", "cross"})
            expect_block_matches(trace, block, ref, block, Tolerance::float32_errors);
    } else {
        expect_block_matches(trace, "self", ref, "self", Tolerance::float32_errors);
    }
    std::filesystem::remove_all(dir);
}

TEST(SlowArchBase, Gpt2BaseAtFullContext) {
    expect_base_matches("gpt2", "gpt2", long_text(40), std::nullopt, 1024, 1024);
}

// 2048 tokens: rotary angles at long positions are where float32 rounding shows.
TEST(SlowArchBase, LlamaStyleGroupedQueryBaseAt2048) {
    expect_base_matches("llama", "gpt2", long_text(37), std::nullopt, 0, 2048);
}

TEST(SlowArchBase, BartBase) {
    expect_base_matches("bart", "roberta-base", long_text(4),
                        "Heads follow syntax across a sentence.", 0, 228);
}

}  // namespace
}  // namespace attnviz
