// Small pieces the architectures beyond BERT share (gpt2.cpp, llama.cpp,
// roberta.cpp, ... t5.cpp): the trace's attention blocks and hidden states,
// keeping per-head queries and keys, one attention call per layer, input checks.
// The kernels themselves live in src/runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "attnviz/encoding.h"
#include "attnviz/model.h"
#include "attnviz/trace.h"
#include "model/config.h"
#include "runtime/attention.h"

namespace attnviz::model {

// An empty block for a stack of n_layers attention layers of n_heads heads
// [queries, keys], with room for what options.capture keeps of them (and their
// queries and keys when options.keep_queries_keys is set). Layers and heads
// stay the model's numbers everywhere below: attend(block, layer, ...) is
// called for every layer, in order, and keeps only what the capture asks for.
AttentionBlock make_block(const std::string& name, int n_layers, int n_heads, int n_queries,
                          int n_keys, int head_dim, float score_scale, bool causal,
                          const RunOptions& options, int query_sequence = 0, int key_sequence = 0);

// The kept index of a model layer / head, or -1 when the capture leaves it out.
int kept_layer(const AttentionBlock& block, int layer);
int kept_head(const AttentionBlock& block, int head);

// After the forward: layer_score_scales, which the architecture gives per model
// layer, cut to the kept layers. Model runs it on every block.
void finish_block(AttentionBlock& block);

// Copies heads from rows of a projection into the trace's [head, token, head_dim]
// layout: x is [n_tokens, *] with rows `stride` floats apart, head h at column
// h * head_dim. With group > 1 (grouped-query keys) each source head is written
// for `group` consecutive query heads, as transformers' repeat_kv does.
void keep_heads(const float* x, int stride, int n_tokens, int n_source_heads, int head_dim,
                int group, float* out);

// Stores this layer's queries and keys in block (when it keeps them and the
// layer; only the kept heads).
void keep_queries_keys(AttentionBlock& block, int layer, const float* queries, int query_stride,
                       const float* keys, int key_stride, int n_kv_heads);

// Stores this layer's additive score bias in block.score_bias (when the block
// keeps queries and keys and its score_form is scaled_dot_plus_bias), in the
// trace's form: layer_score_scale(layer) * bias (attention adds the call's bias
// before the scale), -inf for padding keys. One copy serves all layers while every layer's
// bias is the same; layers must come in order 0, 1, ... (as every forward runs them).
// Only kept layers and heads are stored.
void keep_score_bias(AttentionBlock& block, int layer, const float* bias, const uint8_t* key_mask);

// One attention call whose probabilities land in the block at `layer` (a model
// layer), as far as the capture keeps them: a kept layer's heads are computed
// one at a time into a scratch row block ([n_queries, n_keys] per thread) and
// only the kept heads' rows (top-k / top-mass / fp16) are stored.
// Queries/keys/values are [tokens, *] projections with their row strides.
// Keeps the call's score bias and padding mask in the trace (keep_score_bias).
struct AttentionCall {
    int head_dim = 0;
    const float* queries = nullptr;
    int query_stride = 0;
    const float* keys = nullptr;
    int key_stride = 0;
    const float* values = nullptr;
    int value_stride = 0;
    int n_kv_heads = 0;                 // 0: the block's n_heads
    const uint8_t* key_mask = nullptr;  // [n_keys] 0 = padding
    const float* score_bias = nullptr;  // [heads, queries, keys] added before the scale
    float softcap = 0;                  // runtime::AttentionShape::softcap (Gemma 2)
};
void attend(AttentionBlock& block, int layer, const AttentionCall& call, float* context,
            int context_stride);

// Self-attention over one fused projection: qkv is [tokens, 3 * width] rows of
// [query | key | value], width = block.n_heads * head_dim. Keeps this layer's
// queries and keys, then attends; context is [tokens, width].
void attend_fused_qkv(AttentionBlock& block, int layer, const float* qkv, int head_dim,
                      const uint8_t* key_mask, const float* score_bias, float* context);

// Cross-attention with the keys and values in one projection of the memory:
// queries [n_queries, width], kv [n_keys, 2 * width] rows of [key | value],
// width = block.n_heads * head_dim. Keeps queries and keys, then attends;
// context is [n_queries, width].
void attend_fused_kv(AttentionBlock& block, int layer, const float* queries, const float* kv,
                     int head_dim, const uint8_t* key_mask, float* context);

// The encoding's attention_mask when some token is padding, else null (the
// attention kernel skips the mask).
const uint8_t* padding_mask(const Encoding& tokens);

// The hidden states of one stack, when the run keeps them: the embeddings
// output, then every layer's output. The recorder owns them while its stack
// runs and move_into() hands them over at the end, so it never points into a
// container that another stack's recorder may grow (encoder-decoder models run
// two at once).
class HiddenStateRecorder {
public:
    HiddenStateRecorder(bool keep, int sequence, int n_states, int n_tokens, int hidden_size);
    void add(const float* x);  // [n_tokens, hidden_size]
    // Replaces the last state (pre-norm models report the final norm's output there).
    void replace_last(const float* x);
    // Appends the recorded states to out (nothing when not kept); all n_states
    // must have been added. The recorder is empty afterwards.
    void move_into(std::vector<HiddenStates>& out);

private:
    size_t state_size() const;
    bool keep_ = false;
    HiddenStates states_;
};

// Errors for an empty input, ids outside the vocabulary, or more tokens than
// max_positions (0: no limit). `what` names the model and the stack.
void check_token_ids(const std::vector<int32_t>& ids, int vocab_size, int max_positions,
                     const std::string& what);

// The sizes every rotary decoder's config.json gives alike (Llama, Mistral,
// Qwen2, Gemma, Phi, Phi-3): layers, query and key/value heads, widths,
// vocabulary, the norm's epsilon and the activation under the architecture's
// keys, causal, and no learned position table (max_position_embeddings is the
// context length). Errors name the file and the keys: sizes must be positive,
// and the query heads a multiple of the key/value heads. head_dim is left to
// the architecture.
struct RotaryDecoderDefaults {
    const char* norm_eps_key;
    double norm_eps;
    const char* activation_key;
    const char* activation;
    int context_length;
};
void read_rotary_decoder_config(const ConfigReader& reader, ModelConfig& config,
                                const RotaryDecoderDefaults& defaults);

// config.json's hidden_act/activation_function as a runtime activation, or an
// Error naming the file and the key.
void check_activation(const std::string& name, const std::string& file, const char* key);

}  // namespace attnviz::model
