// Every architecture beyond BERT against its PyTorch reference, on the committed
// tiny fixtures of tests/data/arch (written by tools/reference/make_arch_fixtures.py):
// the token ids go straight to the network, and every attention tensor, query and
// key must match within 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "arch_reference_check.h"
#include "attnviz/error.h"
#include "model/network.h"

namespace attnviz::model {
namespace {

using testing::encoding_of;
using testing::expect_block_matches;
using testing::expect_hidden_states_match;
using testing::reference_ids;

std::filesystem::path fixture(const std::string& name) {
    return std::filesystem::path(ATTNVIZ_TEST_DATA) / "arch" / name;
}

// Runs the fixture with queries and keys kept and compares every block (and,
// with hidden_states, the single stack's hidden states). Returns where
// run_network found the first non-finite value ("" when none).
std::string expect_fixture_matches(const std::string& name, const std::string& model_type,
                                   int threads = 1, bool hidden_states = false) {
    SCOPED_TRACE(name);
    LoadedNetwork loaded = load_network(fixture(name));
    EXPECT_EQ(loaded.config.model_type, model_type);
    io::TensorSet ref = io::TensorSet::open_safetensors(fixture(name) / "reference.safetensors");
    Encoding source = encoding_of(reference_ids(ref, "input_ids"));
    Encoding target;
    ForwardInput input{&source, nullptr};
    if (ref.find("decoder_input_ids")) {
        target = encoding_of(reference_ids(ref, "decoder_input_ids"));
        input.decoder = &target;
    }
    RunOptions options;
    options.keep_queries_keys = true;
    options.keep_hidden_states = hidden_states;
    options.threads = threads;
    ForwardOutput out = run_network(*loaded.network, input, options);
    AttentionTrace trace;
    trace.blocks = std::move(out.blocks);
    trace.hidden_states = std::move(out.hidden_states);
    if (input.decoder) {
        EXPECT_EQ(trace.blocks.size(), 3u);
        expect_block_matches(trace, "encoder", ref, "encoder");
        expect_block_matches(trace, "decoder", ref, "decoder");
        expect_block_matches(trace, "cross", ref, "cross");
        for (const AttentionBlock& b : trace.blocks) {
            EXPECT_EQ(b.causal, b.name == "decoder") << b.name;
            EXPECT_EQ(b.query_sequence, b.name == "encoder" ? 0 : 1) << b.name;
            EXPECT_EQ(b.key_sequence, b.name == "decoder" ? 1 : 0) << b.name;
        }
    } else {
        EXPECT_EQ(trace.blocks.size(), 1u);
        expect_block_matches(trace, "self", ref, "self");
        if (hidden_states) expect_hidden_states_match(trace, 0, ref, "hidden_states");
    }
    return out.non_finite;
}

// The first [layer][head][row] of the reference's attentions with a NaN, as
// run_network names it.
std::string first_nan_row_of_reference(const std::string& name) {
    io::TensorSet ref = io::TensorSet::open_safetensors(fixture(name) / "reference.safetensors");
    const std::vector<int64_t> shape = testing::reference_shape(ref, "self.attentions");
    const std::span<const float> probs = testing::reference_floats(ref, "self.attentions");
    for (size_t i = 0; i < probs.size(); ++i)
        if (std::isnan(probs[i])) {
            const size_t row = i / shape[3];
            return "layer " + std::to_string(row / shape[2] / shape[1]) + ", head " +
                   std::to_string(row / shape[2] % shape[1]) + ", row " +
                   std::to_string(row % shape[2]) + " of the attention";
        }
    return "";
}

// Non-finite weights (issue 12): NaN, inf and float32 overflow propagate row by
// row exactly where PyTorch has them (NaN rows, and finite rows beside them), and
// the first one is named. Before, an all-NaN row came out as zeros.
TEST(NonFinite, NanWeightGivesNanRowsWherePyTorchDoes) {
    const std::string where = expect_fixture_matches("gpt2_nan_weight", "gpt2", 2, true);
    EXPECT_EQ(where, "layer 1, head 1, row 0 of the attention");
    EXPECT_EQ(where, first_nan_row_of_reference("gpt2_nan_weight"));
}
TEST(NonFinite, HugeWeightOverflowsWherePyTorchDoes) {
    const std::string where = expect_fixture_matches("llama_huge_weight", "llama", 2, true);
    EXPECT_FALSE(where.empty());
    EXPECT_EQ(where, first_nan_row_of_reference("llama_huge_weight"));
}
TEST(NonFinite, FiniteWeightsReportNothing) {
    EXPECT_EQ(expect_fixture_matches("gpt2_tiny", "gpt2"), "");
    EXPECT_EQ(expect_fixture_matches("t5_tiny", "t5"), "");
}

TEST(Gpt2, TinyHeadModelMatchesReference) { expect_fixture_matches("gpt2_tiny", "gpt2"); }
TEST(Gpt2, InverseLayerScaleMatchesReference) {
    expect_fixture_matches("gpt2_inverse_layer_scale", "gpt2", 2);
}

TEST(Llama, GroupedQueryWithLlama3RopeMatchesReference) {
    expect_fixture_matches("llama_gqa_llama3_rope", "llama");
}
TEST(Llama, LinearRopeWithBiasesMatchesReference) {
    expect_fixture_matches("llama_linear_rope_mha", "llama", 2);
}
TEST(Llama, DynamicRopePastMaxPositionsMatchesReference) {
    expect_fixture_matches("llama_dynamic_rope", "llama");
}
TEST(Mistral, SlidingWindowMatchesReference) {
    expect_fixture_matches("mistral_sliding_window", "mistral");
}
TEST(Qwen2, ExplicitHeadDimAndQkvBiasMatchReference) {
    expect_fixture_matches("qwen2_head_dim", "qwen2");
}

TEST(Roberta, PaddingInsideSkipsPositionsMatchesReference) {
    expect_fixture_matches("roberta_tiny", "roberta");
}
TEST(Electra, EmbeddingProjectionMatchesReference) {
    expect_fixture_matches("electra_tiny", "electra");
}

TEST(T5, TinyRelativeBucketsMatchReference) { expect_fixture_matches("t5_tiny", "t5"); }
TEST(T5, GatedGeluV1_1UntiedMatchesReference) { expect_fixture_matches("t5_v1_1_gated", "t5", 2); }

TEST(Bart, LearnedPositionsOffsetTwoMatchReference) { expect_fixture_matches("bart_tiny", "bart"); }
TEST(Marian, SinusoidsAndScaledEmbeddingsMatchReference) {
    expect_fixture_matches("marian_tiny", "marian", 2);
}

TEST(DistilBert, OwnKeyNamesMatchReference) {
    expect_fixture_matches("distilbert_tiny", "distilbert");
}
TEST(Albert, SharedGroupsWithTwoInnerLayersMatchReference) {
    expect_fixture_matches("albert_tiny", "albert");
}

// Config keys transformers reads that attnviz once ignored or defaulted
// differently (issue 13): each fixture sets the key, or leaves it out so the
// config class's default must apply.
TEST(ConfigSemantics, BertIsDecoderIsCausal) { expect_fixture_matches("bert_is_decoder", "bert"); }
TEST(ConfigSemantics, RobertaIsDecoderIsCausal) {
    expect_fixture_matches("roberta_is_decoder", "roberta");
}
TEST(ConfigSemantics, ElectraIsDecoderIsCausal) {
    expect_fixture_matches("electra_is_decoder", "electra");
}
TEST(ConfigSemantics, Qwen2LayerTypesChooseSlidingLayers) {
    expect_fixture_matches("qwen2_layer_types", "qwen2");
}
TEST(ConfigSemantics, MarianScaleEmbeddingDefaultsToFalse) {
    expect_fixture_matches("marian_default_scale_embedding", "marian");
}
TEST(ConfigSemantics, T5ExplicitDenseActFnOverridesFeedForwardProj) {
    expect_fixture_matches("t5_explicit_dense_act_fn", "t5");
}
TEST(ConfigSemantics, AlbertHiddenActDefaultsToGeluNew) {
    expect_fixture_matches("albert_default_hidden_act", "albert");
}
TEST(ConfigSemantics, ElectraEmbeddingSizeDefaultsTo128) {
    expect_fixture_matches("electra_default_embedding_size", "electra");
}
TEST(ConfigSemantics, RobertaRelativeKey) {
    expect_fixture_matches("roberta_relative_key", "roberta");
}
TEST(ConfigSemantics, RobertaRelativeKeyQuery) {
    expect_fixture_matches("roberta_relative_key_query", "roberta", 2);
}
TEST(ConfigSemantics, ElectraRelativeKey) {
    expect_fixture_matches("electra_relative_key", "electra");
}
TEST(ConfigSemantics, ElectraRelativeKeyQuery) {
    expect_fixture_matches("electra_relative_key_query", "electra", 2);
}
TEST(ConfigSemantics, AlbertRelativeKeyAddedAfterScale) {
    expect_fixture_matches("albert_relative_key", "albert");
}
TEST(ConfigSemantics, AlbertRelativeKeyQueryAddedAfterScale) {
    expect_fixture_matches("albert_relative_key_query", "albert", 2);
}

// issue 18, stream arch2
TEST(Gemma, ScaledEmbeddingsAndOnePlusNormsMatchReference) {
    expect_fixture_matches("gemma_tiny", "gemma", 1, true);
}
TEST(Gemma, AttentionBiasAndHiddenActIgnoredMatchReference) {
    // hidden_activation null: gelu_pytorch_tanh, whatever hidden_act says
    expect_fixture_matches("gemma_bias_hidden_act_ignored", "gemma", 2, true);
}
TEST(Gemma2, SoftCapSlidingWindowAndFourNormsMatchReference) {
    expect_fixture_matches("gemma2_tiny", "gemma2", 1, true);
}
TEST(Gemma2, LayerTypesWithoutSoftCapMatchReference) {
    expect_fixture_matches("gemma2_layer_types_no_softcap", "gemma2", 2, true);
}
TEST(Phi, PartialRotaryParallelBlockMatchesReference) {
    expect_fixture_matches("phi_tiny", "phi", 1, true);
}
TEST(Phi, QkLayerNormGroupedQueryMatchesReference) {
    expect_fixture_matches("phi_qk_layernorm_gqa", "phi", 2, true);
}
TEST(Phi3, FusedQkvGateUpMatchesReference) { expect_fixture_matches("phi3_tiny", "phi3", 1, true); }
TEST(Phi3, LongRopePastOriginalLengthUsesLongFactors) {
    expect_fixture_matches("phi3_longrope_long", "phi3", 1, true);
}
TEST(Phi3, SuShortFactorsPartialRotarySlidingWindowMatchReference) {
    expect_fixture_matches("phi3_su_short_sliding", "phi3", 2, true);
}
TEST(Mpnet, RelativeBiasSharedAcrossLayersMatchesReference) {
    expect_fixture_matches("mpnet_tiny", "mpnet", 1, true);
}
TEST(Mpnet, LogBucketsPastMaxExactMatchReference) {
    expect_fixture_matches("mpnet_long_distances", "mpnet", 2, true);
}
TEST(DebertaV2, V3SharedKeysLogBucketsMatchReference) {
    expect_fixture_matches("deberta_v3_tiny", "deberta-v2", 1, true);
}
TEST(DebertaV2, SeparateProjectionsClampedSpanMatchReference) {
    expect_fixture_matches("deberta_v2_separate_projections", "deberta-v2", 2, true);
}
TEST(DebertaV2, ContentToPositionOnlyMatchesReference) {
    expect_fixture_matches("deberta_v2_c2p_only", "deberta-v2", 1, true);
}
// Padding (a tokenizer padding to a length): transformers' XSoftmax gives a
// padding key 0 in every row and a padding query a row of zeros, and the
// embeddings of padding are zeroed; the fixture's input ends in 5 padding
// tokens (tools/reference/ref_deberta_v2.py). Kept whole, and as top-k rows,
// whose padding rows keep their keys with value 0.
TEST(DebertaV2, PaddedInputMatchesReference) {
    const std::filesystem::path folder = fixture("deberta_v3_padded");
    LoadedNetwork loaded = load_network(folder);
    const io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
    Encoding tokens = encoding_of(reference_ids(ref, "input_ids"));
    const std::vector<int32_t> mask = reference_ids(ref, "attention_mask");
    tokens.attention_mask.assign(mask.begin(), mask.end());
    ASSERT_EQ(tokens.attention_mask.back(), 0);
    RunOptions options;
    options.keep_queries_keys = true;
    options.keep_hidden_states = true;
    ForwardOutput out = run_network(*loaded.network, ForwardInput{&tokens, nullptr}, options);
    AttentionTrace trace;
    trace.blocks = std::move(out.blocks);
    trace.hidden_states = std::move(out.hidden_states);
    expect_block_matches(trace, "self", ref, "self");
    expect_hidden_states_match(trace, 0, ref, "hidden_states");
    EXPECT_EQ(trace.blocks.front().score_form, ScoreForm::not_decomposable);

    options = {};
    options.capture.top_k = 3;
    out = run_network(*loaded.network, ForwardInput{&tokens, nullptr}, options);
    const AttentionBlock& sparse = out.blocks.front();
    ASSERT_TRUE(sparse.is_sparse());
    const std::span<const float> probs = testing::reference_floats(ref, "self.attentions");
    const int T = sparse.n_queries;
    std::vector<float> row(static_cast<size_t>(T));
    for (int layer = 0; layer < sparse.n_layers; ++layer)
        for (int head = 0; head < sparse.n_heads; ++head)
            for (int q = 0; q < T; ++q) {
                sparse.row(layer, head, q, row.data());
                for (int k = 0; k < T; ++k) {
                    const float expected =
                        probs[sparse.index(layer, head, q, k)];  // the dense reference's layout
                    if (row[static_cast<size_t>(k)] != 0.0f || !mask[static_cast<size_t>(q)]) {
                        EXPECT_NEAR(row[static_cast<size_t>(k)], expected, 1e-5)
                            << layer << " " << head << " " << q << " " << k;
                    }
                }
            }
}

// Issue 18 (arch1): GPT-NeoX, OPT, BLOOM, Falcon, XLM-RoBERTa, hidden states included.
TEST(GptNeox, ParallelResidualHalfRotaryMatchesReference) {
    expect_fixture_matches("gpt_neox_tiny", "gpt_neox", 1, true);
}
TEST(GptNeox, SequentialResidualFullRotaryNoBiasMatchesReference) {
    expect_fixture_matches("gpt_neox_sequential_full_rotary", "gpt_neox", 2, true);
}
TEST(Opt, PreNormOffsetPositionsMatchesReference) {
    expect_fixture_matches("opt_tiny", "opt", 1, true);
}
TEST(Opt, PostNormWithoutBiasOrAffineMatchesReference) {
    expect_fixture_matches("opt_post_norm_no_bias", "opt", 2, true);
}
TEST(Bloom, AlibiMatchesReference) { expect_fixture_matches("bloom_tiny", "bloom", 1, true); }
TEST(Bloom, SixHeadAlibiSlopesAndPostLayerNormResidualMatchReference) {
    expect_fixture_matches("bloom_six_heads_post_layernorm_residual", "bloom", 2, true);
}
TEST(Falcon, MultiQueryRotaryParallelMatchesReference) {
    expect_fixture_matches("falcon_tiny", "falcon", 1, true);
}
TEST(Falcon, AlibiSequentialWithBiasesMatchesReference) {
    expect_fixture_matches("falcon_alibi_sequential", "falcon", 2, true);
}
TEST(Falcon, NewArchitectureGroupedKeysMatchesReference) {
    expect_fixture_matches("falcon_new_architecture", "falcon", 1, true);
}
TEST(XlmRoberta, PaddingInsideSkipsPositionsMatchesReference) {
    expect_fixture_matches("xlm-roberta_tiny", "xlm-roberta", 1, true);
}

}  // namespace
}  // namespace attnviz::model
