#include "model/arch_blocks.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>

#include "attnviz/error.h"
#include "model/capture.h"
#include "runtime/kernels.h"
#include "runtime/pages.h"

namespace attnviz::model {

AttentionBlock make_block(const std::string& name, int n_layers, int n_heads, int n_queries,
                          int n_keys, int head_dim, float score_scale, bool causal,
                          const RunOptions& options, int query_sequence, int key_sequence) {
    const CaptureOptions& capture = options.capture;
    check_capture(capture, n_layers, n_heads, name);
    AttentionBlock block;
    block.name = name;
    block.query_sequence = query_sequence;
    block.key_sequence = key_sequence;
    block.causal = causal;
    block.n_model_layers = n_layers, block.n_model_heads = n_heads;
    block.layer_ids = capture.layers, block.head_ids = capture.heads;
    block.capture = capture;
    block.n_layers = capture.layers.empty() ? n_layers : static_cast<int>(capture.layers.size());
    block.n_heads = capture.heads.empty() ? n_heads : static_cast<int>(capture.heads.size());
    block.n_queries = n_queries, block.n_keys = n_keys;
    block.score_scale = score_scale;
    const size_t dense = static_cast<size_t>(block.n_layers) * block.n_heads * n_queries * n_keys;
    if (capture.sparse()) {
        block.row_start.assign(1, 0);  // grows a layer at a time
        block.row_start.reserve(block.n_rows() + 1);
        if (capture.top_k > 0) {  // the most it holds: no reallocation (and copy) on the way
            const size_t most = block.n_rows() * std::min(capture.top_k, n_keys);
            block.row_keys.reserve(most);
            if (capture.fp16)
                block.probs_fp16.reserve(most);
            else
                block.probs.reserve(most);
        }
    } else if (capture.fp16) {  // fresh pages every forward: huge ones (runtime/pages.h)
        runtime::resize_on_huge_pages(block.probs_fp16, dense);
    } else {
        runtime::resize_on_huge_pages(block.probs, dense);
    }
    if (options.keep_queries_keys) {
        block.head_dim = head_dim;
        const size_t heads = static_cast<size_t>(block.n_layers) * block.n_heads;
        block.queries.resize(heads * n_queries * head_dim);
        block.keys.resize(heads * n_keys * head_dim);
    }
    return block;
}

int kept_layer(const AttentionBlock& block, int layer) {
    if (block.layer_ids.empty()) return layer;
    const auto found = std::lower_bound(block.layer_ids.begin(), block.layer_ids.end(), layer);
    return found != block.layer_ids.end() && *found == layer
               ? static_cast<int>(found - block.layer_ids.begin())
               : -1;
}

int kept_head(const AttentionBlock& block, int head) {
    if (block.head_ids.empty()) return head;
    const auto found = std::lower_bound(block.head_ids.begin(), block.head_ids.end(), head);
    return found != block.head_ids.end() && *found == head
               ? static_cast<int>(found - block.head_ids.begin())
               : -1;
}

namespace {

int model_heads(const AttentionBlock& block) {
    return block.n_model_heads > 0 ? block.n_model_heads : block.n_heads;
}

// The score scale of a model layer while the forward runs (layer_score_scales
// is per model layer until finish_block).
float model_layer_score_scale(const AttentionBlock& block, int layer) {
    return block.layer_score_scales.empty() ? block.score_scale
                                            : block.layer_score_scales[static_cast<size_t>(layer)];
}

}  // namespace

void finish_block(AttentionBlock& block) {
    if (block.layer_ids.empty() || block.layer_score_scales.empty()) return;
    std::vector<float> kept;
    for (const int layer : block.layer_ids)
        kept.push_back(block.layer_score_scales[static_cast<size_t>(layer)]);
    block.layer_score_scales = std::move(kept);
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
    const int slot = kept_layer(block, layer);
    if (!block.has_queries_keys() || slot < 0) return;
    const int H = block.n_heads, Dh = block.head_dim, group = model_heads(block) / n_kv_heads;
    float* q_out = block.queries.data() + static_cast<size_t>(slot) * H * block.n_queries * Dh;
    float* k_out = block.keys.data() + static_cast<size_t>(slot) * H * block.n_keys * Dh;
    for (int i = 0; i < H; ++i) {
        const int head = block.head_id(i);
        keep_heads(queries + static_cast<size_t>(head) * Dh, query_stride, block.n_queries, 1, Dh,
                   1, q_out + static_cast<size_t>(i) * block.n_queries * Dh);
        keep_heads(keys + static_cast<size_t>(head / group) * Dh, key_stride, block.n_keys, 1, Dh,
                   1, k_out + static_cast<size_t>(i) * block.n_keys * Dh);
    }
}

void keep_score_bias(AttentionBlock& block, int model_layer, const float* bias,
                     const uint8_t* key_mask) {
    const int layer = kept_layer(block, model_layer);
    if (!block.has_queries_keys() || block.score_form != ScoreForm::scaled_dot_plus_bias ||
        layer < 0)
        return;
    const int H = block.n_heads, Q = block.n_queries, K = block.n_keys;
    const size_t per_head = static_cast<size_t>(Q) * K, per_layer = H * per_head;
    std::vector<float> layer_bias;  // empty: this layer adds nothing
    if (bias || key_mask) {
        layer_bias.assign(per_layer, 0.0f);
        // as runtime::attention scales it, so the trace reproduces the score exactly
        const float scale = model_layer_score_scale(block, model_layer);
        if (bias)
            for (int i = 0; i < H; ++i) {
                const float* head_bias = bias + static_cast<size_t>(block.head_id(i)) * per_head;
                float* out = layer_bias.data() + static_cast<size_t>(i) * per_head;
                for (size_t j = 0; j < per_head; ++j) out[j] = scale * head_bias[j];
            }
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

namespace {

// Appends what the capture keeps of one head's rows [n_queries, n_keys] to
// sparse (keys, values) lists, or writes them as fp16 at `dense_fp16`.
struct HeadRows {
    std::vector<uint64_t> counts;  // per query (sparse)
    std::vector<int32_t> keys;
    std::vector<float> values;
    std::vector<uint16_t> values_fp16;
};

void store_head(const AttentionBlock& block, const float* rows, HeadRows& out,
                uint16_t* dense_fp16) {
    const int Q = block.n_queries, K = block.n_keys;
    if (!block.is_sparse()) {
        for (size_t i = 0; i < static_cast<size_t>(Q) * K; ++i)
            dense_fp16[i] = float_to_half(rows[i]);
        return;
    }
    std::vector<int32_t> kept;
    out.counts.resize(static_cast<size_t>(Q));
    for (int query = 0; query < Q; ++query) {
        const float* row = rows + static_cast<size_t>(query) * K;
        select_row(row, K, block.capture, kept);
        out.counts[static_cast<size_t>(query)] = kept.size();
        out.keys.insert(out.keys.end(), kept.begin(), kept.end());
        for (const int32_t key : kept) {
            if (block.capture.fp16)
                out.values_fp16.push_back(float_to_half(row[key]));
            else
                out.values.push_back(row[key]);
        }
    }
}

void append_head(AttentionBlock& block, const HeadRows& head) {
    for (const uint64_t count : head.counts)
        block.row_start.push_back(block.row_start.back() + count);
    block.row_keys.insert(block.row_keys.end(), head.keys.begin(), head.keys.end());
    block.probs.insert(block.probs.end(), head.values.begin(), head.values.end());
    block.probs_fp16.insert(block.probs_fp16.end(), head.values_fp16.begin(),
                            head.values_fp16.end());
}

}  // namespace

void attend(AttentionBlock& block, int layer, const AttentionCall& call, float* context,
            int context_stride) {
    keep_score_bias(block, layer, call.score_bias, call.key_mask);
    const int slot = kept_layer(block, layer);
    const int H = model_heads(block), Q = block.n_queries, K = block.n_keys, Dh = call.head_dim;
    runtime::AttentionShape shape;
    shape.n_heads = H;
    shape.n_kv_heads = call.n_kv_heads > 0 ? call.n_kv_heads : H;
    shape.n_queries = Q;
    shape.n_keys = K;
    shape.head_dim = Dh;
    shape.score_scale = model_layer_score_scale(block, layer);
    shape.causal = block.causal;
    shape.softcap = call.softcap;
    runtime::AttentionInputs in;
    in.queries = call.queries, in.query_stride = call.query_stride;
    in.keys = call.keys, in.key_stride = call.key_stride;
    in.values = call.values, in.value_stride = call.value_stride;
    in.key_mask = call.key_mask;
    in.score_bias = call.score_bias;
    if (slot < 0) {  // nothing of this layer is kept: the fused kernel, never S x S
        runtime::attention(shape, in, nullptr, context, context_stride);
        return;
    }
    const size_t per_head = static_cast<size_t>(Q) * K;
    const size_t per_layer = per_head * block.n_heads;
    // One head at a time: a kept head's probabilities go straight to the block
    // (dense float32) or through a per-thread [Q, K] scratch (sparse, fp16); a
    // head the capture leaves out runs the context-only kernel. A kept head is
    // computed by the same call, on the same operands, as in the full capture;
    // the context-only kernel rounds its (never stored) sums differently, so the
    // layers after one with left-out heads match the full capture to float32
    // rounding, not bit for bit.
    const int group = H / shape.n_kv_heads;
    runtime::AttentionShape one = shape;
    one.n_heads = 1, one.n_kv_heads = 1;
    const int threads = std::max(1, std::min(omp_get_max_threads(), H));
    std::vector<float> scratch(block.has_dense_probs() ? 0
                                                       : per_head * static_cast<size_t>(threads));
    std::vector<HeadRows> kept_rows(static_cast<size_t>(block.n_heads));
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int head = 0; head < H; ++head) {
        try {
            const int kept = kept_head(block, head);
            float* probs = nullptr;  // left out: context only
            if (kept >= 0)
                probs = block.has_dense_probs()
                            ? block.probs.data() + per_layer * slot + per_head * kept
                            : scratch.data() + per_head * omp_get_thread_num();
            runtime::AttentionInputs head_in = in;
            head_in.queries += static_cast<size_t>(head) * Dh;
            head_in.keys += static_cast<size_t>(head / group) * Dh;
            head_in.values += static_cast<size_t>(head / group) * Dh;
            if (in.score_bias) head_in.score_bias += per_head * head;
            runtime::attention(one, head_in, probs, context + static_cast<size_t>(head) * Dh,
                               context_stride);
            if (kept >= 0 && !block.has_dense_probs())
                store_head(block, probs, kept_rows[static_cast<size_t>(kept)],
                           block.is_sparse()
                               ? nullptr
                               : block.probs_fp16.data() + per_layer * slot + per_head * kept);
        } catch (...) {
#pragma omp critical(attnviz_attend_failure)
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
    if (block.is_sparse())
        for (const HeadRows& head : kept_rows) append_head(block, head);
}

void attend_fused_qkv(AttentionBlock& block, int layer, const float* qkv, int head_dim,
                      const uint8_t* key_mask, const float* score_bias, float* context) {
    const int width = model_heads(block) * head_dim, stride = 3 * width;
    keep_queries_keys(block, layer, qkv, stride, qkv + width, stride, model_heads(block));
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
    const int width = model_heads(block) * head_dim;
    keep_queries_keys(block, layer, queries, width, kv, 2 * width, model_heads(block));
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

void read_rotary_decoder_config(const ConfigReader& reader, ModelConfig& config,
                                const RotaryDecoderDefaults& defaults) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = reader.integer({"num_attention_heads"});
    config.n_kv_heads = reader.integer({"num_key_value_heads"}, config.n_heads);
    config.hidden_size = reader.integer({"hidden_size"});
    config.intermediate_size = reader.integer({"intermediate_size"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.norm_eps = static_cast<float>(reader.number({defaults.norm_eps_key}, defaults.norm_eps));
    config.hidden_act = reader.string({defaults.activation_key}, defaults.activation);
    config.max_positions = 0;  // rotary: no learned table
    config.context_length = reader.integer({"max_position_embeddings"}, defaults.context_length);
    config.type_vocab_size = 0;
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.n_kv_heads < 1 ||
        config.hidden_size < 1 || config.intermediate_size < 1 || config.vocab_size < 1)
        throw Error(reader.file() + ": " + config.model_type +
                    " needs positive num_hidden_layers, num_attention_heads, num_key_value_heads, "
                    "hidden_size, intermediate_size, vocab_size");
    if (config.n_heads % config.n_kv_heads != 0)
        throw Error(reader.file() + ": num_attention_heads " + std::to_string(config.n_heads) +
                    " is not a multiple of num_key_value_heads " +
                    std::to_string(config.n_kv_heads));
}

}  // namespace attnviz::model
