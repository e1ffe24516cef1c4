// Model: a Hugging Face checkpoint folder loaded for a native forward pass that
// keeps every attention probability. Owner: src/model (over src/io and src/runtime).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnviz/encoding.h"
#include "attnviz/memory.h"
#include "attnviz/tokenizer.h"
#include "attnviz/trace.h"

namespace attnviz {

// The config.json values the forward pass reads, in one plain struct.
struct ModelConfig {
    std::string model_type;    // config.json "model_type": "bert", "gpt2", ...
    std::string architecture;  // the first of config.json "architectures", if any
    int n_layers = 0;
    int n_decoder_layers = 0;  // encoder-decoder models only
    int n_heads = 0;
    int n_kv_heads = 0;  // grouped-query attention; equals n_heads otherwise
    int hidden_size = 0;
    int head_dim = 0;
    int intermediate_size = 0;
    int vocab_size = 0;
    int max_positions = 0;  // 0: no learned limit (relative or rotary positions)
    // The longest input the model was made for, where it has no hard limit:
    // a rotary model's max_position_embeddings (0: none given). --truncate's
    // default; longer inputs still run.
    int context_length = 0;
    int type_vocab_size = 0;
    float norm_eps = 1e-12f;  // layer_norm_eps, layer_norm_epsilon, rms_norm_eps
    std::string hidden_act;   // hidden_act, activation_function, ...: "gelu", "gelu_new"
    std::string position_embedding_type = "absolute";  // BERT family: "absolute", "relative_key"...
    int pad_token_id = -1;                             // -1: none given
    // The narrowest sliding window of any layer (0: none): a forward longer
    // than it holds an [heads, T, T] window mask (the memory estimate counts it).
    int sliding_window = 0;
    // Each layer's sliding window (0: none) where the layers differ (Qwen2's
    // layer_types and max_window_layers, Gemma 2's alternating layers); empty:
    // every layer has sliding_window. Layers whose masks differ keep a score
    // bias each for the neuron view (the memory estimate counts them).
    std::vector<int> layer_sliding_windows;
    // Gemma 2's attn_logit_softcapping (0: none): capped scores have no
    // additive bias form, so the neuron view keeps no score bias.
    float attn_softcap = 0;
    // DeBERTa-v2's disentangled attention: the relative positions it embeds
    // (2 * span, 0: none); the forward scores every token against each.
    int relative_positions = 0;
    bool is_encoder_decoder = false;
    bool is_causal = false;
};

// fp32: what matches Hugging Face. bf16: matrix products in bfloat16 on CPUs
// with AVX-512 BF16 (attention probabilities, softmax and norms stay fp32);
// faster, with errors of ~1e-3 in the probabilities (docs/performance.md).
enum class Precision { fp32, bf16 };

// The default when RunOptions::precision is unset: bf16 for models of more
// than 1e9 parameters on a CPU that multiplies bf16 natively (AVX-512 BF16 or
// AMX-BF16), fp32 otherwise.
inline constexpr uint64_t kBf16DefaultParameters = 1'000'000'000;
bool cpu_has_native_bf16();
Precision default_precision(uint64_t parameters);
// The parameters a model folder's checkpoint holds (every tensor, from the
// headers: no weight is read), or nullopt when the folder has no weights.
std::optional<uint64_t> checkpoint_parameters(const std::filesystem::path& folder);

// The most threads a run may ask for (RunOptions::threads, ATTNVIZ_NUM_THREADS).
inline constexpr int kMaxThreads = 1024;

struct RunOptions {
    bool keep_queries_keys = false;  // for the neuron view
    bool keep_hidden_states = false;
    // Which attention probabilities to keep, and how (trace.h): all, in
    // float32, by default. Queries, keys and score biases are kept only for
    // the kept layers and heads. An Error names the flag (--layers, --heads,
    // --top-k, --top-mass) when a value is out of range for the model.
    CaptureOptions capture;
    // AttentionBlock::value_norms, for value-weighted attention (Kobayashi et
    // al.); architectures without it (Network::supports_value_norms) refuse.
    bool keep_value_norms = false;
    int threads = 0;  // 1 to kMaxThreads; 0: ATTNVIZ_NUM_THREADS, else the number of cores
    std::optional<Precision> precision;  // unset: default_precision(the model's parameters)
    // The most memory the run may take, in bytes (Model::estimate_memory's
    // total); not set: what available_memory() finds. Over it, Model::trace
    // throws MemoryBudgetError before allocating.
    std::optional<uint64_t> max_memory;
    // Memory the caller needs beside the trace once it returns, as a fraction
    // of the attention's bytes, for the estimate: an HTML page of the views
    // takes about 0.3 (quantized to a byte, deflated, base64).
    double output_fraction = 0;
};

// What to run: text A and optional text B for encoders and decoders; for
// encoder-decoder models, text A is the source and target the decoder's text.
struct TraceRequest {
    std::string text;
    std::optional<std::string> text_pair;
    std::optional<std::string> target;
    // Cut each text to max_tokens tokens (special tokens included, at most
    // max_positions); 0: to the model's limit (max_positions, else
    // context_length, else the tokenizer's model_max_length). Without
    // truncate, only max_positions is enforced.
    bool truncate = false;
    size_t max_tokens = 0;
};

class Model {
public:
    // Reads config.json, the weights (safetensors, sharded, or pytorch_model.bin)
    // and the tokenizer. Throws Error naming the file and tensor at fault.
    static Model open(const std::filesystem::path& folder);

    const ModelConfig& config() const;
    const Tokenizer& tokenizer() const;

    // Tokenizes, runs the forward pass, and returns every attention map.
    // Throws MemoryBudgetError, before the forward allocates, when the
    // estimate exceeds the budget (RunOptions::max_memory).
    AttentionTrace trace(const TraceRequest& request, const RunOptions& options = {}) const;

    // What trace would take: the weights as loaded plus the forward's estimate.
    MemoryEstimate estimate_memory(const TraceRequest& request,
                                   const RunOptions& options = {}) const;
    MemoryEstimate estimate_memory(const MemoryShape& shape) const;
    // Throws MemoryBudgetError when `shape` does not fit options.max_memory (or
    // the available memory), naming the estimate, the budget and how many
    // tokens would fit; for callers that size a run before making its text.
    void check_memory(const MemoryShape& shape, const RunOptions& options) const;

    struct Impl;

private:
    explicit Model(std::shared_ptr<const Impl> impl);
    std::shared_ptr<const Impl> impl_;
};

// config.json alone, read as Model::open reads it (no weights needed, for
// `attnviz info` and for refusing a model before its weights are downloaded).
// Throws Error naming the file and key, or an unsupported model_type with the
// supported ones.
ModelConfig read_model_config(const std::filesystem::path& folder);

// The model types attnviz runs, for error messages and `attnviz info`.
std::vector<std::string> supported_model_types();

}  // namespace attnviz
