#include "viz/payload.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "viz/codec.h"

namespace attnviz::viz {

void check_trace(const AttentionTrace& trace) {
    if (trace.blocks.empty()) throw Error("trace has no attention blocks");
    for (const AttentionBlock& block : trace.blocks) {
        const std::string where = "attention block \"" + block.name + "\"";
        if (!block.has_dense_probs())
            throw Error(where + " holds " +
                        (block.is_sparse() ? "sparse rows (a --top-k / --top-mass capture)"
                                           : "float16 probabilities (an --fp16 capture)") +
                        ": the views need every probability as float32");
        const auto n_sequences = static_cast<int>(trace.sequences.size());
        if (block.query_sequence < 0 || block.query_sequence >= n_sequences ||
            block.key_sequence < 0 || block.key_sequence >= n_sequences)
            throw Error(where + " names a token sequence the trace does not have");
        if (block.n_layers <= 0 || block.n_heads <= 0 || block.n_queries <= 0 || block.n_keys <= 0)
            throw Error(where + " has an empty shape");
        const size_t queries = trace.sequences[block.query_sequence].tokens.size();
        const size_t keys = trace.sequences[block.key_sequence].tokens.size();
        if (queries != static_cast<size_t>(block.n_queries) ||
            keys != static_cast<size_t>(block.n_keys))
            throw Error(where + " is " + std::to_string(block.n_queries) + " x " +
                        std::to_string(block.n_keys) + " but its sequences have " +
                        std::to_string(queries) + " and " + std::to_string(keys) + " tokens");
        const size_t expected =
            static_cast<size_t>(block.n_layers) * block.n_heads * block.n_queries * block.n_keys;
        if (block.probs.size() != expected)
            throw Error(where + " has " + std::to_string(block.probs.size()) +
                        " probabilities, expected " + std::to_string(expected) +
                        " (layers x heads x queries x keys)");
        if (block.has_queries_keys()) {
            const size_t per_layer_head =
                static_cast<size_t>(block.n_layers) * block.n_heads * block.head_dim;
            if (block.queries.size() != per_layer_head * block.n_queries ||
                block.keys.size() != per_layer_head * block.n_keys)
                throw Error(where + " has queries/keys of the wrong size for head_dim " +
                            std::to_string(block.head_dim));
        }
        if (block.score_bias_layers != 0 && block.score_bias_layers != 1 &&
            block.score_bias_layers != block.n_layers)
            throw Error(where + " has score_bias_layers " +
                        std::to_string(block.score_bias_layers) + ", expected 0, 1 or " +
                        std::to_string(block.n_layers));
        if (block.score_bias.size() != static_cast<size_t>(block.score_bias_layers) *
                                           block.n_heads * block.n_queries * block.n_keys)
            throw Error(where + " has " + std::to_string(block.score_bias.size()) +
                        " score bias values, expected " + std::to_string(block.score_bias_layers) +
                        " x heads x queries x keys");
        if (block.has_score_bias() && block.score_form != ScoreForm::scaled_dot_plus_bias)
            throw Error(where + " has a score bias but its score is not decomposable");
    }
}

int find_block(const AttentionTrace& trace, const std::string& name) {
    if (name.empty()) return 0;
    for (size_t i = 0; i < trace.blocks.size(); ++i)
        if (trace.blocks[i].name == name) return static_cast<int>(i);
    std::string known;
    for (const AttentionBlock& block : trace.blocks) known += " " + block.name;
    throw Error("the trace has no attention block \"" + name + "\" (it has:" + known + ")");
}

namespace {

std::vector<int> chosen(const std::vector<int>& asked, int available, int most, const char* what) {
    std::vector<int> out;
    if (asked.empty()) {
        for (int i = 0; i < available; ++i) out.push_back(i);
        return out;
    }
    for (int index : asked) {
        if (index < 0 || index >= most)
            throw Error(std::string(what) + " " + std::to_string(index) +
                        " is out of range: the trace has " + std::to_string(most) + " " + what +
                        "s");
        if (index < available && std::find(out.begin(), out.end(), index) == out.end())
            out.push_back(index);
    }
    return out;
}

}  // namespace

std::vector<int> chosen_layers(const AttentionTrace& trace, const AttentionBlock& block,
                               const ViewOptions& options) {
    int most = 0;
    for (const AttentionBlock& b : trace.blocks) most = std::max(most, b.n_layers);
    return chosen(options.layers, block.n_layers, most, "layer");
}

std::vector<int> chosen_heads(const AttentionTrace& trace, const AttentionBlock& block,
                              const ViewOptions& options) {
    int most = 0;
    for (const AttentionBlock& b : trace.blocks) most = std::max(most, b.n_heads);
    return chosen(options.heads, block.n_heads, most, "head");
}

namespace {

// One stream: one layer of one block, quantized, deflated and base64-encoded.
enum class StreamKind { attention, exact, queries_keys, score_bias };
struct StreamJob {
    const AttentionBlock* block;
    int layer;  // score_bias: the bias's own layer (0 when all layers share it)
    StreamKind kind;
    const std::vector<int>* heads;
};

template <typename T>
void append_raw(std::vector<uint8_t>& bytes, const std::vector<T>& values) {
    const size_t at = bytes.size();
    bytes.resize(at + values.size() * sizeof(T));
    std::memcpy(bytes.data() + at, values.data(), values.size() * sizeof(T));
}

// Probabilities: [heads][queries] float32 row_max, then [heads][queries][keys] uint8 levels.
std::vector<uint8_t> attention_bytes(const AttentionBlock& block, int layer,
                                     const std::vector<int>& heads) {
    const size_t rows = static_cast<size_t>(block.n_queries),
                 cols = static_cast<size_t>(block.n_keys);
    std::vector<float> row_max(heads.size() * rows);
    std::vector<uint8_t> bytes(row_max.size() * sizeof(float) + heads.size() * rows * cols);
    uint8_t* levels = bytes.data() + row_max.size() * sizeof(float);
    for (size_t h = 0; h < heads.size(); ++h)
        quantize_rows(block.probs.data() + block.index(layer, heads[h], 0, 0), rows, cols,
                      levels + h * rows * cols, row_max.data() + h * rows);
    std::memcpy(bytes.data(), row_max.data(), row_max.size() * sizeof(float));
    return bytes;
}

// Exact weights: the uint16 decimal3 codes of [heads][queries][keys], as two
// byte planes (all high bytes, then all low bytes).
std::vector<uint8_t> exact_bytes(const AttentionBlock& block, int layer,
                                 const std::vector<int>& heads) {
    const size_t per_head = static_cast<size_t>(block.n_queries) * block.n_keys;
    std::vector<float> values(heads.size() * per_head);
    for (size_t h = 0; h < heads.size(); ++h)
        std::memcpy(values.data() + h * per_head,
                    block.probs.data() + block.index(layer, heads[h], 0, 0),
                    per_head * sizeof(float));
    std::vector<uint8_t> bytes(values.size() * 2);
    decimal3_planes(values.data(), values.size(), bytes.data());
    return bytes;
}

// Queries and keys: [heads][queries] float32 scales, [heads][keys] float32 scales,
// then [heads][queries][head_dim] int8 and [heads][keys][head_dim] int8.
std::vector<uint8_t> queries_keys_bytes(const AttentionBlock& block, int layer,
                                        const std::vector<int>& heads) {
    const size_t dim = static_cast<size_t>(block.head_dim);
    const size_t nq = static_cast<size_t>(block.n_queries), nk = static_cast<size_t>(block.n_keys);
    std::vector<float> query_scales(heads.size() * nq), key_scales(heads.size() * nk);
    std::vector<int8_t> queries(query_scales.size() * dim), keys(key_scales.size() * dim);
    for (size_t h = 0; h < heads.size(); ++h) {
        const size_t layer_head = static_cast<size_t>(layer) * block.n_heads + heads[h];
        quantize_vectors(block.queries.data() + layer_head * nq * dim, nq, dim,
                         queries.data() + h * nq * dim, query_scales.data() + h * nq);
        quantize_vectors(block.keys.data() + layer_head * nk * dim, nk, dim,
                         keys.data() + h * nk * dim, key_scales.data() + h * nk);
    }
    std::vector<uint8_t> bytes;
    append_raw(bytes, query_scales);
    append_raw(bytes, key_scales);
    append_raw(bytes, queries);
    append_raw(bytes, keys);
    return bytes;
}

// Score bias: [heads][queries][keys] float32, exact (-inf where a key is masked).
// Biases are structured (T5's depends on key - query only, masks are runs of
// -inf), so deflate shrinks them to a few bytes per row.
std::vector<uint8_t> score_bias_bytes(const AttentionBlock& block, int bias_layer,
                                      const std::vector<int>& heads) {
    const size_t per_head = static_cast<size_t>(block.n_queries) * block.n_keys;
    std::vector<uint8_t> bytes(heads.size() * per_head * sizeof(float));
    for (size_t h = 0; h < heads.size(); ++h)
        std::memcpy(bytes.data() + h * per_head * sizeof(float),
                    block.score_bias.data() +
                        (static_cast<size_t>(bias_layer) * block.n_heads + heads[h]) * per_head,
                    per_head * sizeof(float));
    return bytes;
}

// Runs jobs on up to hardware_concurrency threads; streams[i] = encode(jobs[i]).
std::vector<std::string> encode_streams(const std::vector<StreamJob>& jobs, int zlib_level) {
    std::vector<std::string> streams(jobs.size());
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i = next++; i < jobs.size(); i = next++) {
            const StreamJob& job = jobs[i];
            const bool queries_keys = job.kind == StreamKind::queries_keys;
            const std::vector<uint8_t> raw =
                queries_keys ? queries_keys_bytes(*job.block, job.layer, *job.heads)
                : job.kind == StreamKind::score_bias
                    ? score_bias_bytes(*job.block, job.layer, *job.heads)
                : job.kind == StreamKind::exact
                    ? exact_bytes(*job.block, job.layer, *job.heads)
                    : attention_bytes(*job.block, job.layer, *job.heads);
            // Query/key bytes are noise-like: deflate barely shrinks them at
            // any level, so they take the fastest.
            streams[i] = base64_encode(deflate_bytes(raw, queries_keys ? 1 : zlib_level));
        }
    };
    const size_t n_threads =
        std::min<size_t>(jobs.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::jthread> threads;
    for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
    work();
    return streams;  // the jthreads join first
}

nlohmann::json tokens_json(const TokenSequence& sequence) {
    nlohmann::json tokens = nlohmann::json::array();
    for (const TraceToken& token : sequence.tokens)
        tokens.push_back(
            {token.text, token.display, token.id, token.segment, token.special ? 1 : 0});
    return tokens;
}

std::string joined(const std::vector<int>& values) {
    std::string out;
    for (int value : values) out += (out.empty() ? "" : ", ") + std::to_string(value);
    return out;
}

// The model's numbers of kept layers or heads (a selective capture's ids), as
// the page labels them.
std::vector<int> model_ids(const std::vector<int>& kept, const std::vector<int>& ids) {
    if (ids.empty()) return kept;
    std::vector<int> out;
    for (int index : kept) out.push_back(ids[static_cast<size_t>(index)]);
    return out;
}

// {"layer": L, "heads": [...]} in model numbering, checked against what the page includes.
nlohmann::json open_selection(const AttentionTrace& trace, const AttentionBlock& block,
                              const ViewOptions& options) {
    // model numbering: a selective capture's kept layers and heads by their model ids
    std::vector<int> layers = chosen_layers(trace, block, options);
    std::vector<int> heads = chosen_heads(trace, block, options);
    if (layers.empty() || heads.empty()) return nullptr;  // build_payload says why
    for (int& layer : layers) layer = block.layer_id(layer);
    for (int& head : heads) head = block.head_id(head);
    const auto has = [](const std::vector<int>& set, int value) {
        return std::find(set.begin(), set.end(), value) != set.end();
    };
    if (options.open_layer >= 0 && !has(layers, options.open_layer))
        throw Error("the page cannot open on layer " + std::to_string(options.open_layer) +
                    ": it includes layers " + joined(layers) + " of block \"" + block.name + "\"");
    for (int head : options.open_heads)
        if (!has(heads, head))
            throw Error("the page cannot open on head " + std::to_string(head) +
                        ": it includes heads " + joined(heads) + " of block \"" + block.name +
                        "\"");
    nlohmann::json open = {{"layer", options.open_layer >= 0 ? options.open_layer : layers.front()},
                           {"heads", options.open_heads.empty() ? heads : options.open_heads}};
    return open;
}

}  // namespace

std::string build_payload(const AttentionTrace& trace, const ViewOptions& options) {
    check_trace(trace);
    const bool want_neuron =
        std::find(options.views.begin(), options.views.end(), View::neuron) != options.views.end();

    nlohmann::json meta;
    meta["format"] = 2;  // 2: with the exact streams and "open"
    meta["model"] = trace.model_id;
    if (!trace.model_revision.empty()) meta["revision"] = trace.model_revision;
    meta["architecture"] = trace.architecture;
    meta["views"] = nlohmann::json::array();
    for (View view : options.views) meta["views"].push_back(view_name(view));
    const int first_block = find_block(trace, options.block);
    meta["firstBlock"] = first_block;
    meta["open"] = open_selection(trace, trace.blocks[static_cast<size_t>(first_block)], options);
    meta["theme"] = options.open_dark ? "dark" : "light";
    meta["markers"] = options.open_subword_markers;
    meta["sequences"] = nlohmann::json::array();
    for (const TokenSequence& sequence : trace.sequences)
        meta["sequences"].push_back({{"name", sequence.name},
                                     {"texts", sequence.texts},
                                     {"tokens", tokens_json(sequence)}});

    std::vector<std::vector<int>> heads_of_block(trace.blocks.size());
    std::vector<StreamJob> jobs;
    meta["blocks"] = nlohmann::json::array();
    for (size_t b = 0; b < trace.blocks.size(); ++b) {
        const AttentionBlock& block = trace.blocks[b];
        const std::vector<int> layers = chosen_layers(trace, block, options);
        heads_of_block[b] = chosen_heads(trace, block, options);
        if (layers.empty() || heads_of_block[b].empty())
            throw Error("no chosen layer or head exists in attention block \"" + block.name + "\"");
        const bool with_queries_keys = want_neuron && block.has_queries_keys();
        nlohmann::json entry = {{"name", block.name},
                                {"querySequence", block.query_sequence},
                                {"keySequence", block.key_sequence},
                                {"causal", block.causal},
                                {"layers", model_ids(layers, block.layer_ids)},
                                {"heads", model_ids(heads_of_block[b], block.head_ids)},
                                {"queries", block.n_queries},
                                {"keys", block.n_keys},
                                {"probs", nlohmann::json::array()},
                                {"exact", nlohmann::json::array()}};
        for (int layer : layers) {
            entry["probs"].push_back(jobs.size());
            jobs.push_back({&block, layer, StreamKind::attention, &heads_of_block[b]});
            entry["exact"].push_back(jobs.size());
            jobs.push_back({&block, layer, StreamKind::exact, &heads_of_block[b]});
        }
        if (with_queries_keys) {
            entry["headDim"] = block.head_dim;
            entry["scoreScale"] = block.score_scale;
            entry["scoreForm"] = block.score_form == ScoreForm::scaled_dot_plus_bias
                                     ? "scaled_dot_plus_bias"
                                     : "not_decomposable";
            if (!block.layer_score_scales.empty()) {  // per exported layer
                entry["scoreScales"] = nlohmann::json::array();
                for (int layer : layers)
                    entry["scoreScales"].push_back(block.layer_score_scale(layer));
            }
            entry["queriesKeys"] = nlohmann::json::array();
            for (int layer : layers) {
                entry["queriesKeys"].push_back(jobs.size());
                jobs.push_back({&block, layer, StreamKind::queries_keys, &heads_of_block[b]});
            }
            if (block.has_score_bias()) {
                // One stream when every layer shares the bias, else one per chosen layer.
                entry["scoreBias"] = nlohmann::json::array();
                const std::vector<int> shared = {0};
                for (int layer : block.score_bias_layers == 1 ? shared : layers) {
                    entry["scoreBias"].push_back(jobs.size());
                    jobs.push_back({&block, layer, StreamKind::score_bias, &heads_of_block[b]});
                }
            }
        }
        meta["blocks"].push_back(std::move(entry));
    }

    const std::vector<std::string> streams = encode_streams(jobs, options.zlib_level);
    // Token text may be any bytes: invalid UTF-8 becomes U+FFFD rather than an exception.
    const std::string meta_text =
        escape_json_for_script(meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    size_t total = meta_text.size() + 32;
    for (const std::string& stream : streams) total += stream.size() + 3;
    std::string out;
    out.reserve(total);
    out += "{\"meta\":";
    out += meta_text;
    out += ",\"streams\":[";
    for (size_t i = 0; i < streams.size(); ++i) {
        if (i) out += ',';
        out += '"';
        out += streams[i];  // base64: nothing to escape
        out += '"';
    }
    out += "]}";
    return out;
}

}  // namespace attnviz::viz
