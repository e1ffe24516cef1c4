#include "viz/payload.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "attnviz/analysis.h"
#include "attnviz/error.h"
#include "attnviz/head_stats.h"
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

namespace {

// The stream jobs of a page and what they point into: heads lists and the
// blocks made for the page (rollout, flow, the word-level trace), kept alive
// until the streams are encoded (deques: pointers stay valid as they grow).
struct PagePlan {
    std::vector<StreamJob> jobs;
    std::deque<std::vector<int>> heads;
    std::deque<AttentionBlock> made;
    std::deque<AttentionTrace> traces;
};

nlohmann::json sequences_json(const AttentionTrace& trace) {
    nlohmann::json out = nlohmann::json::array();
    for (const TokenSequence& sequence : trace.sequences)
        out.push_back({{"name", sequence.name},
                       {"texts", sequence.texts},
                       {"tokens", tokens_json(sequence)}});
    return out;
}

// One block's entry of meta.blocks and its streams (attention and exact per
// chosen layer; queries/keys and score bias for the neuron view).
nlohmann::json block_json(const AttentionBlock& block, const std::vector<int>& layers,
                          const std::vector<int>& heads, bool with_queries_keys, PagePlan& plan) {
    nlohmann::json entry = {{"name", block.name},
                            {"querySequence", block.query_sequence},
                            {"keySequence", block.key_sequence},
                            {"causal", block.causal},
                            {"layers", model_ids(layers, block.layer_ids)},
                            {"heads", model_ids(heads, block.head_ids)},
                            {"queries", block.n_queries},
                            {"keys", block.n_keys},
                            {"probs", nlohmann::json::array()},
                            {"exact", nlohmann::json::array()}};
    for (int layer : layers) {
        entry["probs"].push_back(plan.jobs.size());
        plan.jobs.push_back({&block, layer, StreamKind::attention, &heads});
        entry["exact"].push_back(plan.jobs.size());
        plan.jobs.push_back({&block, layer, StreamKind::exact, &heads});
    }
    if (!with_queries_keys) return entry;
    entry["headDim"] = block.head_dim;
    entry["scoreScale"] = block.score_scale;
    entry["scoreForm"] = block.score_form == ScoreForm::scaled_dot_plus_bias
                             ? "scaled_dot_plus_bias"
                             : "not_decomposable";
    if (!block.layer_score_scales.empty()) {  // per exported layer
        entry["scoreScales"] = nlohmann::json::array();
        for (int layer : layers) entry["scoreScales"].push_back(block.layer_score_scale(layer));
    }
    entry["queriesKeys"] = nlohmann::json::array();
    for (int layer : layers) {
        entry["queriesKeys"].push_back(plan.jobs.size());
        plan.jobs.push_back({&block, layer, StreamKind::queries_keys, &heads});
    }
    if (block.has_score_bias()) {
        // One stream when every layer shares the bias, else one per chosen layer.
        entry["scoreBias"] = nlohmann::json::array();
        const std::vector<int> shared = {0};
        for (int layer : block.score_bias_layers == 1 ? shared : layers) {
            entry["scoreBias"].push_back(plan.jobs.size());
            plan.jobs.push_back({&block, layer, StreamKind::score_bias, &heads});
        }
    }
    return entry;
}

// A made block of one "head" holding a measure ([n_layers][n][n]): drawn and
// printed by the same streams as attention.
const AttentionBlock& measure_block(const AttentionBlock& of, const std::string& name, int n_layers,
                                    std::vector<float> values, PagePlan& plan) {
    AttentionBlock& made = plan.made.emplace_back();
    made.name = name;
    made.query_sequence = of.query_sequence;
    made.key_sequence = of.key_sequence;
    made.causal = of.causal;
    made.n_layers = n_layers;
    made.n_heads = 1;
    made.n_queries = of.n_queries;
    made.n_keys = of.n_keys;
    made.probs = std::move(values);
    return made;
}

// Why no measure is computed for a block (its capture truncated or rounded the
// probabilities), or "" when they can be.
std::string no_measures_reason(const AttentionBlock& block) {
    if (analysis::has_full_attention(block)) return "";
    return "rollout, flow and the head statistics of \"" + block.name +
           "\" need every probability in float32, and this capture kept fewer or rounded them "
           "(drop --top-k, --top-mass and --fp16)";
}

// Why rollout and flow are not offered for a block, or "" when they are.
std::string no_rollout_reason(const AttentionBlock& block) {
    if (block.query_sequence != block.key_sequence)
        return "rollout and flow are for self-attention blocks: \"" + block.name +
               "\" (cross-attention) has none";
    const bool all_layers = block.layer_ids.empty() || block.n_model_layers == 0 ||
                            block.n_layers == block.n_model_layers;
    const bool all_heads =
        block.head_ids.empty() || block.n_model_heads == 0 || block.n_heads == block.n_model_heads;
    if (!all_layers || !all_heads)
        return "rollout and flow of \"" + block.name +
               "\" need every layer and head, and this capture kept a selection (drop --layers "
               "and --heads)";
    return "";
}

// meta.analysis of one trace (tokens or words): rollout and flow as blocks of
// one head ("measure"), the head statistics of the chosen layers and heads
// (float32, as `attnviz export --head-stats` writes them; null for NaN), and
// notes saying what a block does not have.
nlohmann::json analysis_json(const AttentionTrace& trace, const ViewOptions& options,
                             PagePlan& plan) {
    const ViewAnalysis& want = options.analysis;
    nlohmann::json out = {{"blocks", nlohmann::json::array()},
                          {"stats", nlohmann::json::array()},
                          {"notes", nlohmann::json::array()}};
    const bool single = trace.blocks.size() == 1;
    for (size_t b = 0; b < trace.blocks.size(); ++b) {
        const AttentionBlock& block = trace.blocks[b];
        const std::vector<int> layers = chosen_layers(trace, block, options);
        const std::vector<int> heads = chosen_heads(trace, block, options);
        const std::string no_measures = no_measures_reason(block);
        const std::string no_rollout = no_measures.empty() ? no_rollout_reason(block) : no_measures;
        const bool rollout_ok = no_rollout.empty();
        if (!no_measures.empty() && (want.rollout || want.flow || want.head_stats))
            out["notes"].push_back(no_measures);
        else if ((want.rollout || want.flow) && !rollout_ok)
            out["notes"].push_back(no_rollout);
        const std::string prefix = single ? "" : block.name + " ";
        const std::vector<int>& one_head = plan.heads.emplace_back(std::vector<int>{0});
        if (want.rollout && rollout_ok) {
            const AttentionBlock& made = measure_block(block, prefix + "rollout", block.n_layers,
                                                       analysis::rollout(block), plan);
            nlohmann::json entry = block_json(made, layers, one_head, false, plan);
            entry["layers"] = model_ids(layers, block.layer_ids);
            entry["measure"] = "rollout";
            entry["of"] = static_cast<int>(b);
            out["blocks"].push_back(std::move(entry));
        }
        if (want.flow && rollout_ok) {
            const AttentionBlock& made =
                measure_block(block, prefix + "flow", 1, analysis::flow(block), plan);
            const std::vector<int>& first = plan.heads.emplace_back(std::vector<int>{0});
            nlohmann::json entry = block_json(made, first, one_head, false, plan);
            entry["layers"] = {block.layer_id(block.n_layers - 1)};
            entry["measure"] = "flow";
            entry["of"] = static_cast<int>(b);
            out["blocks"].push_back(std::move(entry));
        }
        if (want.head_stats && no_measures.empty()) {
            const analysis::HeadStatSums sums = analysis::head_stat_sums(trace, block);
            nlohmann::json values = nlohmann::json::object();
            for (int s = 0; s < analysis::kHeadStatCount; ++s) {
                const std::vector<double> means = sums.means(static_cast<analysis::HeadStat>(s));
                nlohmann::json grid = nlohmann::json::array();
                for (int layer : layers) {
                    nlohmann::json row = nlohmann::json::array();
                    for (int head : heads) {
                        const auto value = static_cast<float>(
                            means[static_cast<size_t>(layer) * block.n_heads + head]);
                        if (std::isfinite(value))
                            row.push_back(static_cast<double>(value));
                        else
                            row.push_back(nullptr);
                    }
                    grid.push_back(std::move(row));
                }
                values[std::string(analysis::kHeadStatNames[s])] = std::move(grid);
            }
            out["stats"].push_back({{"block", static_cast<int>(b)},
                                    {"layers", model_ids(layers, block.layer_ids)},
                                    {"heads", model_ids(heads, block.head_ids)},
                                    {"values", std::move(values)}});
        }
    }
    return out;
}

// Whether the word-level trace differs from the tokens' (some word has several pieces).
bool has_multi_piece_word(const AttentionTrace& trace) {
    for (const TokenSequence& sequence : trace.sequences)
        for (const std::vector<int>& pieces : analysis::words_of(sequence).tokens)
            if (pieces.size() > 1) return true;
    return false;
}

}  // namespace

std::string build_payload(const AttentionTrace& trace, const ViewOptions& options) {
    check_trace(trace);
    const bool want_neuron =
        std::find(options.views.begin(), options.views.end(), View::neuron) != options.views.end();
    const ViewAnalysis& want = options.analysis;
    const bool any_analysis = want.rollout || want.flow || want.head_stats;

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
    meta["sequences"] = sequences_json(trace);

    PagePlan plan;
    meta["blocks"] = nlohmann::json::array();
    for (const AttentionBlock& block : trace.blocks) {
        const std::vector<int> layers = chosen_layers(trace, block, options);
        const std::vector<int>& heads =
            plan.heads.emplace_back(chosen_heads(trace, block, options));
        if (layers.empty() || heads.empty())
            throw Error("no chosen layer or head exists in attention block \"" + block.name + "\"");
        meta["blocks"].push_back(
            block_json(block, layers, heads, want_neuron && block.has_queries_keys(), plan));
    }
    if (any_analysis) meta["analysis"] = analysis_json(trace, options, plan);
    const auto truncated = std::find_if(
        trace.blocks.begin(), trace.blocks.end(),
        [](const AttentionBlock& block) { return !analysis::has_full_attention(block); });
    if (want.word_level && truncated != trace.blocks.end()) {
        meta["wordsNote"] = "Word level needs every probability in float32, and the capture of \"" +
                            truncated->name + "\" kept fewer or rounded them";
    } else if (want.word_level) {
        if (has_multi_piece_word(trace)) {
            const AttentionTrace& words = plan.traces.emplace_back(analysis::word_level(trace));
            nlohmann::json world = {{"sequences", sequences_json(words)},
                                    {"blocks", nlohmann::json::array()},
                                    {"open", want.open_word_level}};
            for (const AttentionBlock& block : words.blocks)
                world["blocks"].push_back(block_json(
                    block, chosen_layers(words, block, options),
                    plan.heads.emplace_back(chosen_heads(words, block, options)), false, plan));
            if (any_analysis) world["analysis"] = analysis_json(words, options, plan);
            meta["words"] = std::move(world);
        } else {
            meta["wordsNote"] =
                "Every word here is a single token (or the tokens carry no word ids): word level "
                "would show the same";
        }
    } else {
        meta["wordsNote"] = "This page has no word-level data (attnviz view --word-level)";
    }
    const std::vector<StreamJob>& jobs = plan.jobs;

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
