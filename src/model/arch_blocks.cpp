#include "model/arch_blocks.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "attnviz/error.h"
#include "runtime/kernels.h"

namespace attnviz::model {

AttentionBlock make_block(const std::string& name, int n_layers, int n_heads, int n_queries,
                          int n_keys, int head_dim, float score_scale, bool causal,
                          bool keep_queries_keys, int query_sequence, int key_sequence) {
    AttentionBlock block;
    block.name = name;
    block.query_sequence = query_sequence;
    block.key_sequence = key_sequence;
    block.causal = causal;
    block.n_layers = n_layers, block.n_heads = n_heads;
    block.n_queries = n_queries, block.n_keys = n_keys;
    block.score_scale = score_scale;
    block.probs.resize(static_cast<size_t>(n_layers) * n_heads * n_queries * n_keys);
    if (keep_queries_keys) {
        block.head_dim = head_dim;
        block.queries.resize(static_cast<size_t>(n_layers) * n_heads * n_queries * head_dim);
        block.keys.resize(static_cast<size_t>(n_layers) * n_heads * n_keys * head_dim);
    }
    return block;
}

void keep_heads(const float* x, int stride, int n_tokens, int n_source_heads, int head_dim,
                int group, float* out) {
    for (int source = 0; source < n_source_heads; ++source)
        for (int copy = 0; copy < group; ++copy) {
            float* head_out =
                out + static_cast<size_t>(source * group + copy) * n_tokens * head_dim;
            for (int t = 0; t < n_tokens; ++t)
                std::memcpy(head_out + static_cast<size_t>(t) * head_dim,
                            x + static_cast<size_t>(t) * stride + source * head_dim,
                            sizeof(float) * head_dim);
        }
}

void keep_queries_keys(AttentionBlock& block, int layer, const float* queries, int query_stride,
                       const float* keys, int key_stride, int n_kv_heads) {
    if (!block.has_queries_keys()) return;
    const int H = block.n_heads, Dh = block.head_dim;
    keep_heads(queries, query_stride, block.n_queries, H, Dh, 1,
               block.queries.data() + static_cast<size_t>(layer) * H * block.n_queries * Dh);
    keep_heads(keys, key_stride, block.n_keys, n_kv_heads, Dh, H / n_kv_heads,
               block.keys.data() + static_cast<size_t>(layer) * H * block.n_keys * Dh);
}

void keep_score_bias(AttentionBlock& block, int layer, const float* bias, const uint8_t* key_mask) {
    if (!block.has_queries_keys() || block.score_form != ScoreForm::scaled_dot_plus_bias) return;
    const int H = block.n_heads, Q = block.n_queries, K = block.n_keys;
    const size_t per_layer = static_cast<size_t>(H) * Q * K;
    std::vector<float> layer_bias;  // empty: this layer adds nothing
    if (bias || key_mask) {
        layer_bias.assign(per_layer, 0.0f);
        if (bias)  // as runtime::attention scales it, so the trace reproduces the score exactly
            for (size_t i = 0; i < per_layer; ++i)
                layer_bias[i] = block.layer_score_scale(layer) * bias[i];
        if (key_mask)
            for (size_t row = 0; row < per_layer / K; ++row)
                for (int key = 0; key < K; ++key)
                    if (!key_mask[key])
                        layer_bias[row * K + key] = -std::numeric_limits<float>::infinity();
    }
    const auto slice = [&](int l) { return block.score_bias.data() + per_layer * l; };
    if (block.score_bias_layers == 1) {
        if (!layer_bias.empty() && std::equal(layer_bias.begin(), layer_bias.end(), slice(0)))
            return;  // the shared bias again
        // This layer differs: every layer gets its own, the earlier ones the shared one.
        std::vector<float> shared = std::move(block.score_bias);
        block.score_bias.assign(per_layer * block.n_layers, 0.0f);
        block.score_bias_layers = block.n_layers;
        for (int l = 0; l < layer; ++l) std::copy(shared.begin(), shared.end(), slice(l));
    } else if (block.score_bias_layers == 0) {
        if (layer_bias.empty()) return;
        if (layer == 0) {
            block.score_bias = std::move(layer_bias);
            block.score_bias_layers = 1;
            return;
        }
        block.score_bias.assign(per_layer * block.n_layers, 0.0f);  // earlier layers: none
        block.score_bias_layers = block.n_layers;
    }
    if (!layer_bias.empty()) std::copy(layer_bias.begin(), layer_bias.end(), slice(layer));
}

void attend(AttentionBlock& block, int layer, const AttentionCall& call, float* context,
            int context_stride) {
    keep_score_bias(block, layer, call.score_bias, call.key_mask);
    runtime::AttentionShape shape;
    shape.n_heads = block.n_heads;
    shape.n_kv_heads = call.n_kv_heads > 0 ? call.n_kv_heads : block.n_heads;
    shape.n_queries = block.n_queries;
    shape.n_keys = block.n_keys;
    shape.head_dim = call.head_dim;
    shape.score_scale = block.layer_score_scale(layer);
    shape.causal = block.causal;
    shape.softcap = call.softcap;
    runtime::AttentionInputs in;
    in.queries = call.queries, in.query_stride = call.query_stride;
    in.keys = call.keys, in.key_stride = call.key_stride;
    in.values = call.values, in.value_stride = call.value_stride;
    in.key_mask = call.key_mask;
    in.score_bias = call.score_bias;
    const size_t per_layer = static_cast<size_t>(block.n_heads) * block.n_queries * block.n_keys;
    runtime::attention(shape, in, block.probs.data() + per_layer * layer, context, context_stride);
}

void attend_fused_qkv(AttentionBlock& block, int layer, const float* qkv, int head_dim,
                      const uint8_t* key_mask, const float* score_bias, float* context) {
    const int width = block.n_heads * head_dim, stride = 3 * width;
    keep_queries_keys(block, layer, qkv, stride, qkv + width, stride, block.n_heads);
    attend(block, layer,
           {.head_dim = head_dim,
            .queries = qkv,
            .query_stride = stride,
            .keys = qkv + width,
            .key_stride = stride,
            .values = qkv + 2 * width,
            .value_stride = stride,
            .key_mask = key_mask,
            .score_bias = score_bias},
           context, width);
}

void attend_fused_kv(AttentionBlock& block, int layer, const float* queries, const float* kv,
                     int head_dim, const uint8_t* key_mask, float* context) {
    const int width = block.n_heads * head_dim;
    keep_queries_keys(block, layer, queries, width, kv, 2 * width, block.n_heads);
    attend(block, layer,
           {.head_dim = head_dim,
            .queries = queries,
            .query_stride = width,
            .keys = kv,
            .key_stride = 2 * width,
            .values = kv + width,
            .value_stride = 2 * width,
            .key_mask = key_mask},
           context, width);
}

const uint8_t* padding_mask(const Encoding& tokens) {
    if (tokens.attention_mask.size() != tokens.size()) return nullptr;
    for (uint8_t visible : tokens.attention_mask)
        if (!visible) return tokens.attention_mask.data();
    return nullptr;
}

HiddenStateRecorder::HiddenStateRecorder(bool keep, int sequence, int n_states, int n_tokens,
                                         int hidden_size)
    : keep_(keep) {
    if (!keep_) return;
    states_.sequence = sequence;
    states_.n_states = n_states, states_.n_tokens = n_tokens, states_.hidden_size = hidden_size;
    states_.values.reserve(static_cast<size_t>(n_states) * state_size());
}

size_t HiddenStateRecorder::state_size() const {
    return static_cast<size_t>(states_.n_tokens) * states_.hidden_size;
}

void HiddenStateRecorder::add(const float* x) {
    if (!keep_) return;
    if (states_.values.size() >= static_cast<size_t>(states_.n_states) * state_size())
        throw Error("hidden states of sequence " + std::to_string(states_.sequence) +
                    ": more than the " + std::to_string(states_.n_states) + " expected");
    states_.values.insert(states_.values.end(), x, x + state_size());
}

void HiddenStateRecorder::replace_last(const float* x) {
    if (!keep_) return;
    if (states_.values.empty())
        throw Error("hidden states of sequence " + std::to_string(states_.sequence) +
                    ": no state to replace");
    std::memcpy(states_.values.data() + states_.values.size() - state_size(), x,
                state_size() * sizeof(float));
}

void HiddenStateRecorder::move_into(std::vector<HiddenStates>& out) {
    if (!keep_) return;
    const size_t recorded = state_size() ? states_.values.size() / state_size() : 0;
    if (recorded != static_cast<size_t>(states_.n_states))
        throw Error("hidden states of sequence " + std::to_string(states_.sequence) + ": " +
                    std::to_string(recorded) + " of " + std::to_string(states_.n_states) +
                    " states recorded");
    out.push_back(std::move(states_));
    keep_ = false;
}

void check_token_ids(const std::vector<int32_t>& ids, int vocab_size, int max_positions,
                     const std::string& what) {
    if (ids.empty()) throw Error(what + ": no tokens to run");
    if (max_positions > 0 && ids.size() > static_cast<size_t>(max_positions))
        throw Error(what + ": " + std::to_string(ids.size()) +
                    " tokens, but the model takes at most " + std::to_string(max_positions));
    for (size_t t = 0; t < ids.size(); ++t)
        if (ids[t] < 0 || ids[t] >= vocab_size)
            throw Error(what + ": token id " + std::to_string(ids[t]) + " at position " +
                        std::to_string(t) + " is outside the vocabulary (vocab_size " +
                        std::to_string(vocab_size) + ")");
}

void check_activation(const std::string& name, const std::string& file, const char* key) {
    try {
        runtime::activation_from_name(name);
    } catch (const Error& e) {
        throw Error(file + ": " + key + ": " + e.what());
    }
}

}  // namespace attnviz::model
