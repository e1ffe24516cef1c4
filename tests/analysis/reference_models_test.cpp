// Value norms, value-weighted attention, rollout and flow of real forwards
// against tools/reference/analysis_reference.py: the tiny architecture
// fixtures (gpt2, llama, roberta; t5 and bart, encoder-decoder) re-run through
// the PyTorch reference with their seeds, and the demo model (a BERT) through
// a numpy forward. tests/data/analysis/*.safetensors, PROVENANCE.md.
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/analysis.h"
#include "attnviz/error.h"
#include "io/files.h"
#include "model/arch_reference_check.h"
#include "model/network.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;
using testing::close_to_reference;
using testing::reference_floats;

const fs::path kData = ATTNVIZ_TEST_DATA;

// Norms are activations (up to a few units): float32 sums in another order
// differ by ~1e-6 of their size per layer, so 1e-5 of the largest value.
// Probabilities-derived maps (rollout, flow) stay within 1e-5 absolute.
void expect_block(const AttentionBlock& block, const io::TensorSet& ref, const std::string& name,
                  bool square) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(close_to_reference(name + ".value_norms", block.value_norms,
                                   reference_floats(ref, name + ".value_norms"), 1e-5f, 1e-5f));
    EXPECT_TRUE(close_to_reference(name + ".value_weighted", analysis::value_weighted(block),
                                   reference_floats(ref, name + ".value_weighted"), 1e-5f, 1e-5f));
    if (!square) {
        EXPECT_THROW(analysis::rollout(block), Error);
        return;
    }
    EXPECT_TRUE(close_to_reference(name + ".rollout", analysis::rollout(block),
                                   reference_floats(ref, name + ".rollout")));
    EXPECT_TRUE(close_to_reference(name + ".flow", analysis::flow(block),
                                   reference_floats(ref, name + ".flow")));
}

ForwardOutput run(const fs::path& folder, const Encoding& source, const Encoding* target) {
    LoadedNetwork loaded = load_network(folder);
    EXPECT_TRUE(loaded.network->supports_value_norms());
    RunOptions options;
    options.keep_value_norms = true;
    options.threads = 1;
    ForwardInput input{&source, target};
    return run_network(*loaded.network, input, options);
}

class AnalysisFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(AnalysisFixture, MatchesTheReference) {
    const std::string name = GetParam();
    const fs::path folder = kData / "arch" / name;
    const io::TensorSet arch = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    const io::TensorSet ref =
        io::TensorSet::open_safetensors(kData / "analysis" / (name + ".safetensors"));
    const Encoding source = testing::encoding_of(testing::reference_ids(arch, "input_ids"));
    Encoding target;
    const bool pair = arch.find("decoder_input_ids") != nullptr;
    if (pair) target = testing::encoding_of(testing::reference_ids(arch, "decoder_input_ids"));
    const ForwardOutput out = run(folder, source, pair ? &target : nullptr);
    for (const AttentionBlock& block : out.blocks)
        expect_block(block, ref, block.name, block.name != "cross");
}

INSTANTIATE_TEST_SUITE_P(Architectures, AnalysisFixture,
                         ::testing::Values("gpt2_tiny", "llama_gqa_llama3_rope", "roberta_tiny",
                                           "t5_tiny", "bart_tiny"));

TEST(AnalysisDemo, MatchesTheNumpyReference) {
    const io::TensorSet ref =
        io::TensorSet::open_safetensors(kData / "analysis" / "demo.safetensors");
    // The seed pair of tests/data/demo/reference.json, as the reference ran it.
    const nlohmann::json demo = io::read_json(kData / "demo" / "reference.json");
    Encoding tokens = testing::encoding_of(demo["ids"].get<std::vector<int32_t>>());
    tokens.type_ids = demo["token_type_ids"].get<std::vector<int32_t>>();
    const ForwardOutput out =
        run(fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo", tokens, nullptr);
    expect_block(out.blocks.at(0), ref, "self", true);
}

}  // namespace
}  // namespace attnviz::model
