// The memory estimate and budget (attnviz/memory.h): sizes parsed as a user
// writes them, the estimate's terms against hand-counted sizes, and
// Model::trace refusing a run over its budget before the forward.
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/memory.h"
#include "attnviz/model.h"

namespace fs = std::filesystem;
using namespace attnviz;

namespace {

const fs::path kModels = fs::path(ATTNVIZ_TEST_DATA) / "model";

MemoryShape tokens(size_t n) {
    MemoryShape shape;
    shape.tokens = n;
    return shape;
}

TEST(MemorySize, ParsesWhatUsersWrite) {
    EXPECT_EQ(parse_memory_size("3G"), 3ull << 30);
    EXPECT_EQ(parse_memory_size("500M"), 500ull << 20);
    EXPECT_EQ(parse_memory_size("500m"), 500ull << 20);
    EXPECT_EQ(parse_memory_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(parse_memory_size("2GB"), 2ull << 30);
    EXPECT_EQ(parse_memory_size("800000K"), 800000ull << 10);
    EXPECT_EQ(parse_memory_size("1T"), 1ull << 40);
    EXPECT_EQ(parse_memory_size("1073741824"), 1073741824ull);
    for (const char* bad : {"", "G", "-1G", "3X", "1.2.3G", "0", "0.1", "1e3", " 3G", "3 G", "inf"})
        EXPECT_EQ(parse_memory_size(bad), std::nullopt) << bad;
}

TEST(MemorySize, FormatsThreeDigits) {
    EXPECT_EQ(format_memory_size(512), "512 bytes");
    EXPECT_EQ(format_memory_size(10ull << 20), "10.0 MiB");
    EXPECT_EQ(format_memory_size(812ull << 20), "812 MiB");
    EXPECT_EQ(format_memory_size(1288490189), "1.20 GiB");
}

// GPT-2 base on 1024 tokens: the kept tensors are exactly their sizes.
TEST(MemoryEstimate, KeptTensorsAreExact) {
    ModelConfig gpt2;
    gpt2.model_type = "gpt2";
    gpt2.n_layers = 12, gpt2.n_heads = 12, gpt2.n_kv_heads = 12, gpt2.head_dim = 64;
    gpt2.hidden_size = 768, gpt2.intermediate_size = 3072, gpt2.max_positions = 1024;
    MemoryShape shape = tokens(1024);
    shape.keep_queries_keys = shape.keep_hidden_states = true;
    const MemoryEstimate estimate = estimate_forward_memory(gpt2, shape);
    EXPECT_EQ(estimate.attention, 12ull * 12 * 1024 * 1024 * 4);  // 576 MiB
    EXPECT_EQ(estimate.queries_keys, 2ull * 12 * 12 * 1024 * 64 * 4);
    EXPECT_EQ(estimate.hidden_states, 13ull * 1024 * 768 * 4);
    // x, h, q|k|v, context (6 x 768) and the feed-forward (3072) per token, and the process
    EXPECT_EQ(estimate.activations, 1024ull * (6 * 768 + 3072) * 4 + kProcessBaselineBytes);
    EXPECT_EQ(estimate.weights, 0u);  // the checkpoint's, added by Model

    // T5: three blocks, and the position biases of both stacks
    ModelConfig t5 = gpt2;
    t5.model_type = "t5", t5.is_encoder_decoder = true, t5.n_decoder_layers = 6, t5.n_layers = 6;
    t5.n_heads = 8;
    MemoryShape pair = tokens(100);
    pair.decoder_tokens = 50;
    const MemoryEstimate t5_estimate = estimate_forward_memory(t5, pair);
    EXPECT_EQ(t5_estimate.attention, 6ull * 8 * (100 * 100 + 50 * 50 + 50 * 100) * 4);
    EXPECT_EQ(t5_estimate.queries_keys, 0u);
}

// The working buffers of each family, counted by hand from its forward
// (src/model/<name>.cpp): per-token buffers, and the [heads, T, T] ones that a
// sliding window, a relative position bias or DeBERTa's disentangled bias adds.
TEST(MemoryEstimate, WorkingBuffersAreHandCounted) {
    ModelConfig base;
    base.n_layers = 4, base.n_heads = 8, base.n_kv_heads = 2, base.head_dim = 16;
    base.hidden_size = 128, base.intermediate_size = 512;
    const uint64_t T = 1000, D = 128, I = 512, H = 8, Dq = 128, W = 128 + 2 * 32;
    const auto activations = [&](const ModelConfig& config, size_t n) {
        return estimate_forward_memory(config, tokens(n)).activations - kProcessBaselineBytes;
    };
    ModelConfig llama = base;
    llama.model_type = "qwen2";
    // x, h, q|k|v, context, gate, up, rotary cos and sin
    EXPECT_EQ(activations(llama, T), T * (2 * D + W + Dq + 2 * I + 2 * 16) * 4);
    // a window narrower than the input: its [H, T, T] mask, and the one head's
    // [T, T] it is grown from; wider: none
    llama.model_type = "mistral", llama.sliding_window = 999;
    EXPECT_EQ(activations(llama, T),
              T * (2 * D + W + Dq + 2 * I + 2 * 16) * 4 + (H + 1) * T * T * 4);
    llama.sliding_window = 1000;
    EXPECT_EQ(activations(llama, T), T * (2 * D + W + Dq + 2 * I + 2 * 16) * 4);

    ModelConfig gemma2 = base;
    gemma2.model_type = "gemma2", gemma2.sliding_window = 64;
    // x, h, the sublayer's output, q|k|v, context, gate, up, rotary; the window mask
    EXPECT_EQ(activations(gemma2, T),
              T * (3 * D + W + Dq + 2 * I + 2 * 16) * 4 + (H + 1) * T * T * 4);
    EXPECT_EQ(activations(gemma2, 64), 64 * (3 * D + W + Dq + 2 * I + 2 * 16) * 4);

    ModelConfig phi3 = base;
    phi3.model_type = "phi3", phi3.sliding_window = 10;  // built at H heads at once
    EXPECT_EQ(activations(phi3, T), T * (2 * D + W + Dq + 2 * I + 2 * 16) * 4 + H * T * T * 4);

    ModelConfig falcon = base;
    falcon.model_type = "falcon";
    // x, the attention's and the MLP's inputs, q|k|v, context, feed-forward, and
    // the rotary cos and sin tables [T, head_dim] each (falcon.cpp, rope_tables)
    EXPECT_EQ(activations(falcon, T), T * (3 * D + W + D + I + 2 * 16) * 4);
    // with ALiBi no rotary tables, but its bias [H, T, T]
    falcon.position_embedding_type = "alibi";
    EXPECT_EQ(activations(falcon, T), T * (3 * D + W + D + I) * 4 + H * T * T * 4);

    ModelConfig mpnet = base;
    mpnet.model_type = "mpnet", mpnet.n_kv_heads = 8;
    // x, q|k|v, context, feed-forward, and the relative bias every layer shares
    EXPECT_EQ(activations(mpnet, T), T * (5 * D + I) * 4 + H * T * T * 4);

    ModelConfig deberta = base;
    deberta.model_type = "deberta-v2", deberta.n_kv_heads = 8, deberta.relative_positions = 512;
    // x, q|k|v, context, feed-forward, c2p and p2c [T, 512]; the positions' keys
    // and queries [512, 128]; the bias [H, T, T] and two int32 [T, T] indices
    EXPECT_EQ(activations(deberta, T),
              T * (5 * D + I + 2 * 512) * 4 + 2 * 512 * Dq * 4 + H * T * T * 4 + 2 * T * T * 4);
    deberta.relative_positions = 0;  // no disentangled attention: none of it
    EXPECT_EQ(activations(deberta, T), T * (5 * D + I) * 4);

    // a sparse or fp16 capture adds a [T, T] scratch per thread (at most one per
    // head), held after a window mask is grown, so the larger of the two counts
    MemoryShape windowed = tokens(T);
    windowed.capture.fp16 = true;
    llama.sliding_window = 999;
    EXPECT_EQ(estimate_forward_memory(llama, windowed).activations,
              estimate_forward_memory(llama, tokens(T)).activations);  // 1 thread: one [T, T]
    windowed.threads = 2;
    EXPECT_EQ(estimate_forward_memory(llama, windowed).activations -
                  estimate_forward_memory(llama, tokens(T)).activations,
              T * T * 4);
    // a dense float32 selective capture writes its kept heads in place (the
    // left-out ones run the context-only kernel): no scratch
    MemoryShape selective = tokens(T);
    selective.threads = 2;
    selective.capture.layers = {0};
    const MemoryEstimate kept = estimate_forward_memory(base, selective);
    const MemoryEstimate full = estimate_forward_memory(base, tokens(T));
    EXPECT_EQ(kept.activations, full.activations);
    EXPECT_EQ(kept.attention, H * T * T * 4);
    selective.capture.fp16 = true;
    const MemoryEstimate kept_fp16 = estimate_forward_memory(base, selective);
    EXPECT_EQ(kept_fp16.activations - full.activations, 2 * T * T * 4);
    EXPECT_EQ(kept_fp16.attention, H * T * T * 2);
    EXPECT_EQ(full.attention, 4 * H * T * T * 4);
}

// The score biases a neuron view keeps (keep_score_bias in arch_blocks.cpp),
// counted by hand in [kept heads, T, T] slices at their most: the first kept
// layer's bias is moved into the block, each later layer's is built and held
// beside it while compared; the first layer whose bias differs (or that adds
// none) makes one slot per kept layer, while the shared bias and its own are
// still held. Queries and keys themselves: 4 layers x 8 heads x (T + T) x 16.
TEST(MemoryEstimate, NeuronViewScoreBiasesAreHandCounted) {
    ModelConfig base;
    base.n_layers = 4, base.n_heads = 8, base.n_kv_heads = 2, base.head_dim = 16;
    base.hidden_size = 128, base.intermediate_size = 512;
    const uint64_t T = 1000, H = 8, slice = H * T * T * 4;
    const uint64_t queries_keys = 4 * H * 2 * T * 16 * 4;
    const auto biases = [&](const ModelConfig& config, std::vector<int> layers = {},
                            std::vector<int> heads = {}) {
        MemoryShape shape = tokens(T);
        shape.keep_queries_keys = true;
        shape.capture.layers = std::move(layers), shape.capture.heads = std::move(heads);
        const uint64_t kept = estimate_forward_memory(config, shape).queries_keys;
        shape.keep_queries_keys = false;
        EXPECT_EQ(estimate_forward_memory(config, shape).queries_keys, 0u);
        return kept;
    };

    // no bias: only the queries and keys
    ModelConfig llama = base;
    llama.model_type = "llama";
    EXPECT_EQ(biases(llama), queries_keys);
    // Mistral: the same window mask in every layer: kept once, plus layer 1's copy
    llama.model_type = "mistral", llama.sliding_window = 64;
    EXPECT_EQ(biases(llama), queries_keys + 2 * slice);
    EXPECT_EQ(biases(llama, {2}), queries_keys / 4 + slice);  // one kept layer: no copy
    EXPECT_EQ(biases(llama, {1, 3}, {0, 5}), queries_keys / 8 + 2 * slice / 4);
    llama.sliding_window = 1000;  // as wide as the input: no mask
    EXPECT_EQ(biases(llama), queries_keys);

    // Qwen2 from max_window_layers 2: layers 0 and 1 add nothing, layer 2
    // makes 4 slots while its own is held
    ModelConfig qwen2 = base;
    qwen2.model_type = "qwen2", qwen2.sliding_window = 64;
    qwen2.layer_sliding_windows = {0, 0, 64, 64};
    EXPECT_EQ(biases(qwen2), queries_keys + 5 * slice);
    EXPECT_EQ(biases(qwen2, {2, 3}), queries_keys / 2 + 2 * slice);  // kept layers share it
    EXPECT_EQ(biases(qwen2, {0, 1}), queries_keys / 2);

    // Gemma 2 without soft-capping, sliding on the even layers: layer 0's mask
    // kept, layer 1 adds none: 4 slots beside it; with soft-capping no bias at all
    ModelConfig gemma2 = base;
    gemma2.model_type = "gemma2", gemma2.sliding_window = 64;
    gemma2.layer_sliding_windows = {64, 0, 64, 0};
    EXPECT_EQ(biases(gemma2), queries_keys + 5 * slice);
    EXPECT_EQ(biases(gemma2, {0, 2}), queries_keys / 2 + 2 * slice);
    EXPECT_EQ(biases(gemma2, {1, 3}), queries_keys / 2);
    EXPECT_EQ(biases(gemma2, {1, 2}), queries_keys / 2 + 3 * slice);  // 2 slots and layer 2's
    gemma2.attn_softcap = 50;
    EXPECT_EQ(biases(gemma2), queries_keys);
    // layer_types full, sliding, sliding (the no-softcap fixture's)
    gemma2.attn_softcap = 0, gemma2.n_layers = 3, gemma2.layer_sliding_windows = {0, 64, 64};
    EXPECT_EQ(biases(gemma2), queries_keys * 3 / 4 + 4 * slice);

    // ALiBi (BLOOM, Falcon) and MPNet's relative bias: the same in every layer
    ModelConfig bloom = base;
    bloom.model_type = "bloom", bloom.n_kv_heads = 8, bloom.position_embedding_type = "alibi";
    EXPECT_EQ(biases(bloom), queries_keys + 2 * slice);
    EXPECT_EQ(biases(bloom, {3}, {1, 2}), queries_keys / 16 + slice / 4);
    ModelConfig mpnet = bloom;
    mpnet.model_type = "mpnet", mpnet.position_embedding_type = "absolute";
    EXPECT_EQ(biases(mpnet), queries_keys + 2 * slice);

    // the BERT family adds a bias only for padding, which Model::trace never runs
    ModelConfig bert = base;
    bert.model_type = "bert", bert.n_kv_heads = 8;
    EXPECT_EQ(biases(bert), queries_keys);
}

// A BERT trace keeps no padding mask as a score bias, because what
// Model::trace runs is never padded (the tokenizer does not pad), so the
// estimate counts only the queries and keys.
TEST(MemoryEstimate, BertTraceKeepsNoMaskBias) {
    const Model model = Model::open(kModels / "tiny-padded");
    TraceRequest request;
    request.text = "the cat sat on the mat";
    request.text_pair = "a dog";
    RunOptions options;
    options.keep_queries_keys = true;
    const AttentionTrace trace = model.trace(request, options);
    const AttentionBlock& block = trace.blocks.at(0);
    EXPECT_FALSE(block.has_score_bias());
    EXPECT_EQ(model.estimate_memory(request, options).queries_keys,
              (block.queries.size() + block.keys.size()) * sizeof(float));
}

// The estimate reads the layers' windows and Gemma 2's soft cap from config.json.
TEST(MemoryEstimate, ConfigGivesEachLayersWindow) {
    const fs::path arch = fs::path(ATTNVIZ_TEST_DATA) / "arch";
    const ModelConfig capped = read_model_config(arch / "gemma2_tiny");
    EXPECT_EQ(capped.attn_softcap, 5.0f);
    EXPECT_EQ(capped.sliding_window, 4);
    EXPECT_EQ(capped.layer_sliding_windows, (std::vector<int>{4, 0, 4}));
    const ModelConfig uncapped = read_model_config(arch / "gemma2_layer_types_no_softcap");
    EXPECT_EQ(uncapped.attn_softcap, 0.0f);
    EXPECT_EQ(uncapped.layer_sliding_windows, (std::vector<int>{0, 3, 3}));
    const ModelConfig mistral = read_model_config(arch / "mistral_sliding_window");
    EXPECT_GT(mistral.sliding_window, 0);
    EXPECT_TRUE(mistral.layer_sliding_windows.empty());  // every layer the same
}

// The weights as the forward holds them: the tiny BERT has 22464 parameters
// that attnviz reads (embeddings 5376, two layers of 8544; no pooler). From a
// float32 file they are read in place, and of the word embeddings (100 x 32)
// only the rows of the tokens run; from a float16 file all are float32
// copies, plus the file's pages they were read from.
TEST(MemoryEstimate, WeightsAreWhatTheCheckpointLoads) {
    const Model fp32 = Model::open(kModels / "tiny-safetensors");
    EXPECT_EQ(fp32.estimate_memory(tokens(8)).weights, (22464u - 3200) * 4);
    const Model fp16 = Model::open(kModels / "tiny-fp16");
    EXPECT_EQ(fp16.estimate_memory(tokens(8)).weights, 22464u * (4 + 2));
}

// Over the budget, trace throws before running, naming the estimate and the
// budget, and the tokens it names as fitting do fit (one more does not).
TEST(MemoryEstimate, TraceRefusesARunOverItsBudget) {
    const Model model = Model::open(kModels / "tiny-safetensors");
    TraceRequest request;
    request.text = "the cat sat on the mat the cat sat on the mat the cat sat";
    const MemoryEstimate estimate = model.estimate_memory(request);
    RunOptions options;
    options.max_memory = estimate.total() - 1;
    try {
        model.trace(request, options);
        FAIL() << "no MemoryBudgetError";
    } catch (const MemoryBudgetError& e) {
        EXPECT_EQ(e.estimate().total(), estimate.total());
        EXPECT_EQ(e.budget().bytes, estimate.total() - 1);
        EXPECT_EQ(e.budget().source, "the limit given");
        EXPECT_NE(std::string(e.what()).find("needs about " + format_memory_size(estimate.total())),
                  std::string::npos)
            << e.what();
        const size_t fitting = e.fitting_tokens();
        ASSERT_GT(fitting, 0u);
        EXPECT_LE(model.estimate_memory(tokens(fitting)).total(), *options.max_memory);
        EXPECT_GT(model.estimate_memory(tokens(fitting + 1)).total(), *options.max_memory);
        // and truncating to them runs within the same budget
        request.truncate = true;
        request.max_tokens = fitting;
        const AttentionTrace trace = model.trace(request, options);
        EXPECT_EQ(trace.sequences.front().tokens.size(), fitting);
    }
    options.max_memory = estimate.total();
    EXPECT_NO_THROW(model.trace(request, options));
}

// The default budget is what the machine has: finite, and at most the address
// space left when ulimit -v is set.
TEST(MemoryBudgetTest, AvailableMemoryIsBounded) {
    const MemoryBudget budget = available_memory();
    EXPECT_GT(budget.bytes, 0u);
    EXPECT_FALSE(budget.source.empty());
}

}  // namespace
