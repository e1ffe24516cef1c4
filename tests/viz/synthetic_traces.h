// Synthetic attention traces for the view tests, the browser-test pages
// (tests/viz/make_pages.cpp) and bench/viz_bench.cpp. Deterministic: the
// same seed gives the same trace. Probabilities are the softmax of
// score_scale * q·k (causal blocks mask keys after the query), so every row
// sums to 1 and the neuron view's softmax reproduces them. Header-only so the
// benchmark can use it without linking the tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz::testing {

// A small deterministic generator (splitmix64); identical on every platform.
class Random {
public:
    explicit Random(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>((next() >> 40) * (1.0 / 16777216.0)); }  // [0, 1)
    float normal() {  // Box-Muller
        const float u = std::max(uniform(), 1e-7f), v = uniform();
        return std::sqrt(-2.0f * std::log(u)) * std::cos(6.2831853f * v);
    }

private:
    uint64_t state_;
};

inline TokenSequence make_sequence(const std::string& name, const std::vector<std::string>& texts,
                                   const std::vector<std::string>& raw_tokens,
                                   const std::vector<int>& segments,
                                   const std::vector<std::string>& special_names) {
    TokenSequence sequence{name, texts, {}};
    for (size_t i = 0; i < raw_tokens.size(); ++i) {
        TraceToken token;
        token.text = raw_tokens[i];
        token.special = std::find(special_names.begin(), special_names.end(), raw_tokens[i]) !=
                        special_names.end();
        std::string shown = raw_tokens[i];
        if (shown.rfind("##", 0) == 0) shown = shown.substr(2);
        for (const std::string marker : {"\u0120", "\u2581"})  // Ġ and ▁
            if (shown.rfind(marker, 0) == 0) shown.replace(0, marker.size(), 1, ' ');
        token.display = shown;
        token.id = static_cast<int32_t>(100 + i);
        token.segment = static_cast<int8_t>(token.special ? -1 : segments[i]);
        token.type_id = std::max(0, segments[i]);
        sequence.tokens.push_back(token);
    }
    return sequence;
}

// How peaked the synthetic attention is. Query entries are N(0, t^2) with
// t = temperature + temperature_step * ((head + layer) % 4); even heads add a
// sink on the first key (like [CLS]) of strength sink * sqrt(head_dim).
struct AttentionProfile {
    float temperature = 0.8f, temperature_step = 0.6f, sink = 1.2f;
};
inline constexpr AttentionProfile kDiffuse{};  // broad rows: the worst case for size
inline constexpr AttentionProfile kPeaked{1.5f, 0.8f,
                                          3.0f};  // sinks and sharp heads, as trained models

// probs[l][h][q] = softmax_k(score_scale * q·k + extra(l, h, q, k)) over the keys
// the query sees (k <= q when causal; extra may be -inf), from the block's
// queries and keys.
template <typename Extra>
inline void set_probs(AttentionBlock& block, Extra extra) {
    const size_t nk = static_cast<size_t>(block.n_keys), dim = static_cast<size_t>(block.head_dim);
    std::vector<float> scores(nk);
    std::vector<double> exps(nk);  // each exp once: long traces are built in tests
    for (int layer = 0; layer < block.n_layers; ++layer)
        for (int head = 0; head < block.n_heads; ++head) {
            const size_t layer_head = static_cast<size_t>(layer) * block.n_heads + head;
            const float* q = block.queries.data() + layer_head * block.n_queries * dim;
            const float* k = block.keys.data() + layer_head * nk * dim;
            for (int j = 0; j < block.n_queries; ++j) {
                const size_t last =
                    block.causal ? std::min(static_cast<size_t>(j), nk - 1) : nk - 1;
                float top = -1e30f;
                for (size_t key = 0; key <= last; ++key) {
                    float dot = 0.0f;
                    for (size_t d = 0; d < dim; ++d) dot += q[j * dim + d] * k[key * dim + d];
                    scores[key] =
                        dot * block.score_scale + extra(layer, head, j, static_cast<int>(key));
                    top = std::max(top, scores[key]);
                }
                double sum = 0.0;
                for (size_t key = 0; key <= last; ++key) {
                    exps[key] = std::exp(static_cast<double>(scores[key] - top));
                    sum += exps[key];
                }
                float* row = block.probs.data() + block.index(layer, head, j, 0);
                for (size_t key = 0; key < nk; ++key)
                    row[key] = key <= last ? static_cast<float>(exps[key] / sum) : 0.0f;
            }
        }
}

// Heads differ in temperature; even heads also attend strongly to the first
// key (an attention sink, like [CLS]), odd heads to the previous token.
inline AttentionBlock make_block(const std::string& name, int query_sequence, int key_sequence,
                                 int layers, int heads, int queries, int keys, bool causal,
                                 int head_dim, bool keep_queries_keys, uint64_t seed,
                                 AttentionProfile profile = kDiffuse) {
    AttentionBlock block;
    block.name = name;
    block.query_sequence = query_sequence;
    block.key_sequence = key_sequence;
    block.causal = causal;
    block.n_layers = layers;
    block.n_heads = heads;
    block.n_queries = queries;
    block.n_keys = keys;
    block.head_dim = head_dim;
    block.score_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const size_t nq = static_cast<size_t>(queries), nk = static_cast<size_t>(keys);
    const size_t dim = static_cast<size_t>(head_dim);
    block.probs.resize(static_cast<size_t>(layers) * heads * nq * nk);
    block.queries.resize(static_cast<size_t>(layers) * heads * nq * dim);
    block.keys.resize(static_cast<size_t>(layers) * heads * nk * dim);
    Random random(seed);
    for (int layer = 0; layer < layers; ++layer)
        for (int head = 0; head < heads; ++head) {
            const size_t layer_head = static_cast<size_t>(layer) * heads + head;
            float* q = block.queries.data() + layer_head * nq * dim;
            float* k = block.keys.data() + layer_head * nk * dim;
            const float temperature =
                profile.temperature +
                profile.temperature_step * static_cast<float>((head + layer) % 4);
            for (size_t i = 0; i < nq * dim; ++i) q[i] = temperature * random.normal();
            for (size_t i = 0; i < nk * dim; ++i) k[i] = random.normal();
            if (head % 2 == 0 && dim >= 1) {  // sink: key 0 aligned with every query
                for (size_t j = 0; j < nq; ++j) q[j * dim] = 2.0f + std::fabs(q[j * dim]);
                k[0] = profile.sink * std::sqrt(static_cast<float>(dim));
            } else if (dim >= 4) {  // previous token: sinusoids of the position
                for (size_t j = 0; j < nq; ++j) {
                    const float at = static_cast<float>(j) - 1.0f;
                    q[j * dim + 1] =
                        3.0f * std::cos(0.7f * at) * std::sqrt(static_cast<float>(dim));
                    q[j * dim + 2] =
                        3.0f * std::sin(0.7f * at) * std::sqrt(static_cast<float>(dim));
                }
                for (size_t j = 0; j < nk; ++j) {
                    k[j * dim + 1] = std::cos(0.7f * static_cast<float>(j));
                    k[j * dim + 2] = std::sin(0.7f * static_cast<float>(j));
                }
            }
        }
    set_probs(block, [](int, int, int, int) { return 0.0f; });
    if (!keep_queries_keys) {
        block.head_dim = 0;
        block.queries.clear();
        block.keys.clear();
    }
    return block;
}

// BERT-like sentence pair with queries and keys: 12 tokens, 2 layers x 4 heads.
inline AttentionTrace pair_trace() {
    AttentionTrace trace;
    trace.model_id = "synthetic-bert";
    trace.architecture = "bert";
    trace.sequences.push_back(make_sequence("input", {"The cat sat on the mat.", "It was tired."},
                                            {"[CLS]", "the", "cat", "sat", "on", "the", "mat", ".",
                                             "[SEP]", "it", "was", "tire", "##d", ".", "[SEP]"},
                                            {-1, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, -1},
                                            {"[CLS]", "[SEP]"}));
    const int n = static_cast<int>(trace.sequences[0].tokens.size());
    trace.blocks.push_back(make_block("self", 0, 0, 2, 4, n, n, false, 8, true, 11));
    return trace;
}

// GPT-2-like causal trace with queries and keys: 3 layers x 4 heads.
inline AttentionTrace causal_trace() {
    AttentionTrace trace;
    trace.model_id = "synthetic-gpt2";
    trace.architecture = "gpt2";
    trace.sequences.push_back(
        make_sequence("input", {"The quick brown fox jumps over the lazy dog"},
                      {"The", "\u0120quick", "\u0120brown", "\u0120fox", "\u0120jumps",
                       "\u0120over", "\u0120the", "\u0120lazy", "\u0120dog"},
                      {0, 0, 0, 0, 0, 0, 0, 0, 0}, {}));
    trace.blocks.push_back(make_block("self", 0, 0, 3, 4, 9, 9, true, 8, true, 22));
    return trace;
}

// T5-like encoder-decoder: encoder, causal decoder and cross attention, 2 layers x 3 heads.
inline AttentionTrace encoder_decoder_trace() {
    AttentionTrace trace;
    trace.model_id = "synthetic-t5";
    trace.architecture = "t5";
    trace.sequences.push_back(
        make_sequence("encoder", {"translate English to German: The house is wonderful."},
                      {"\u2581translate", "\u2581English", "\u2581to", "\u2581German", ":",
                       "\u2581The", "\u2581house", "\u2581is", "\u2581wonderful", ".", "</s>"},
                      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1}, {"</s>"}));
    trace.sequences.push_back(
        make_sequence("decoder", {"Das Haus ist wunderbar."},
                      {"<pad>", "\u2581Das", "\u2581Haus", "\u2581ist", "\u2581wunderbar", "."},
                      {-1, 0, 0, 0, 0, 0}, {"<pad>"}));
    trace.blocks.push_back(make_block("encoder", 0, 0, 2, 3, 11, 11, false, 8, true, 33));
    trace.blocks.push_back(make_block("decoder", 1, 1, 2, 3, 6, 6, true, 8, true, 44));
    trace.blocks.push_back(make_block("cross", 1, 0, 2, 3, 6, 11, false, 8, true, 55));
    return trace;
}

inline constexpr const char* kHostileText = "</script><img src=x onerror=alert(1)>";

// Token text and texts that would break an unescaped page; 1 layer x 2 heads.
inline AttentionTrace hostile_trace() {
    AttentionTrace trace;
    trace.model_id = std::string("hostile ") + kHostileText;
    trace.architecture = "<b>bert</b>";
    trace.sequences.push_back(make_sequence(
        "input", {kHostileText},
        {"[CLS]", kHostileText, "&amp;", "\"quoted\" 'single'", "<!--", "\xE2\x80\xA8", "[SEP]"},
        {-1, 0, 0, 0, 0, 0, -1}, {"[CLS]", "[SEP]"}));
    trace.blocks.push_back(make_block("self", 0, 0, 1, 2, 7, 7, false, 4, true, 66));
    return trace;
}

// Many heads (distinct colours), no queries/keys: 2 layers x 16 heads.
inline AttentionTrace many_heads_trace() {
    AttentionTrace trace;
    trace.model_id = "synthetic-16-heads";
    trace.architecture = "bert";
    trace.sequences.push_back(make_sequence("input", {"a b c d e f"},
                                            {"[CLS]", "a", "b", "c", "d", "e", "f", "[SEP]"},
                                            {-1, 0, 0, 0, 0, 0, 0, -1}, {"[CLS]", "[SEP]"}));
    trace.blocks.push_back(make_block("self", 0, 0, 2, 16, 8, 8, false, 8, false, 77));
    return trace;
}

// A T5-style relative position bias for the block, one for all its layers
// (score_scale 1, as T5): head h adds table[h][bucket(k - q)], buckets of
// distance -4 .. 4 (clamped; a causal block sees only k <= q), with the table
// N(0, 2^2). Probabilities are recomputed with it.
inline void add_shared_position_bias(AttentionBlock& block, uint64_t seed) {
    constexpr int kReach = 4;
    Random random(seed);
    std::vector<float> table(static_cast<size_t>(block.n_heads) * (2 * kReach + 1));
    for (float& value : table) value = 2.0f * random.normal();
    block.score_scale = 1.0f;
    block.score_bias_layers = 1;
    block.score_bias.resize(static_cast<size_t>(block.n_heads) * block.n_queries * block.n_keys);
    for (int head = 0; head < block.n_heads; ++head)
        for (int q = 0; q < block.n_queries; ++q)
            for (int k = 0; k < block.n_keys; ++k)
                block.score_bias[block.index(0, head, q, k)] =
                    table[static_cast<size_t>(head) * (2 * kReach + 1) +
                          std::clamp(k - q, -kReach, kReach) + kReach];
    set_probs(block, [&](int, int head, int q, int k) {
        return block.score_bias[block.index(0, head, q, k)];
    });
}

// T5-like encoder-decoder whose encoder and decoder add a shared relative
// position bias (cross attention has none): 2 layers x 3 heads.
inline AttentionTrace position_bias_trace() {
    AttentionTrace trace = encoder_decoder_trace();
    trace.model_id = "synthetic-t5-position-bias";
    add_shared_position_bias(trace.blocks[0], 88);
    add_shared_position_bias(trace.blocks[1], 99);
    return trace;
}

// BERT relative_key-like: the score adds q · E[q - k] (E a random distance
// table), a term that depends on the query, so the block is not decomposable
// into scale * q·k + bias. 2 layers x 4 heads.
inline AttentionTrace relative_key_trace() {
    AttentionTrace trace = pair_trace();
    trace.model_id = "synthetic-bert-relative-key";
    AttentionBlock& block = trace.blocks[0];
    block.score_form = ScoreForm::not_decomposable;
    const int n = block.n_queries, dim = block.head_dim;
    Random random(111);
    std::vector<float> distance(static_cast<size_t>(2 * n - 1) * dim);
    for (float& value : distance) value = 1.5f * random.normal();
    set_probs(block, [&](int layer, int head, int q, int k) {
        const float* query = block.queries.data() +
                             (static_cast<size_t>(layer * block.n_heads + head) * n + q) * dim;
        const float* e = distance.data() + static_cast<size_t>(q - k + n - 1) * dim;
        float term = 0.0f;
        for (int d = 0; d < dim; ++d) term += query[d] * e[d];
        return block.score_scale * term;
    });
    return trace;
}

// A model-shaped trace for benchmarks: layers x heads at n tokens, word-like tokens.
inline AttentionTrace sized_trace(int layers, int heads, int tokens, bool causal, int head_dim,
                                  bool keep_queries_keys, AttentionProfile profile = kPeaked) {
    AttentionTrace trace;
    trace.model_id = causal ? "synthetic-gpt2-shaped" : "synthetic-bert-base-shaped";
    trace.architecture = causal ? "gpt2" : "bert";
    std::vector<std::string> raw;
    std::vector<int> segments;
    static const char* words[] = {"the",   "model", "attends", "to",      "every",
                                  "token", "in",    "its",     "context", "."};
    for (int i = 0; i < tokens; ++i) {
        const bool edge = !causal && (i == 0 || i == tokens - 1);
        raw.push_back(edge ? (i == 0 ? "[CLS]" : "[SEP]") : words[i % 10]);
        segments.push_back(edge ? -1 : 0);
    }
    trace.sequences.push_back(
        make_sequence("input", {"synthetic"}, raw, segments, {"[CLS]", "[SEP]"}));
    trace.blocks.push_back(make_block("self", 0, 0, layers, heads, tokens, tokens, causal, head_dim,
                                      keep_queries_keys, 1234, profile));
    return trace;
}

}  // namespace attnviz::testing
