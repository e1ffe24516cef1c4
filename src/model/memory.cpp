// The memory a forward pass takes, per architecture family, and the memory the
// process may use (include/attnviz/memory.h).
//
// The estimate counts the buffers each family's forward allocates (see its
// forward() in src/model/<name>.cpp) in float32, at the point where most of
// them are alive at once, plus the process's own start-up memory. It leaves
// out what is small next to them (token lists, oneDNN's primitives); the
// terms that grow with the sequence are exact, so the estimate tightens as the
// request grows, which is where it matters.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "attnviz/memory.h"
#include "attnviz/model.h"

namespace attnviz {

namespace {

constexpr uint64_t kFloat = sizeof(float);

uint64_t u(long long value) { return value > 0 ? static_cast<uint64_t>(value) : 0; }

// Each term saturates at 2 EiB, so that their sum (MemoryEstimate::total) cannot
// wrap however absurd the request (bench --seq 1000000000: 28 EiB of attention).
constexpr uint64_t kMostBytes = uint64_t{1} << 61;

uint64_t product(std::initializer_list<uint64_t> factors) {
    uint64_t result = 1;
    for (const uint64_t factor : factors) {
        if (factor != 0 && result > kMostBytes / factor) return kMostBytes;
        result *= factor;
    }
    return result;
}

uint64_t sum(std::initializer_list<uint64_t> terms) {
    uint64_t result = 0;
    for (const uint64_t term : terms)
        result = std::min(kMostBytes, result + std::min(term, kMostBytes));
    return result;
}

// One stack of `layers` attention layers over `queries` x `keys` tokens, of
// which the capture keeps some (make_block, attend in arch_blocks.cpp).
struct StackSizes {
    uint64_t layers, heads, head_dim, queries, keys;
    const CaptureOptions* capture = nullptr;
    uint64_t kept_layers() const {
        return capture->layers.empty() ? layers
                                       : std::min<uint64_t>(capture->layers.size(), layers);
    }
    uint64_t kept_heads() const {
        return capture->heads.empty() ? heads : std::min<uint64_t>(capture->heads.size(), heads);
    }
    uint64_t rows() const { return product({kept_layers(), kept_heads(), queries}); }
    // The most probabilities a sparse row keeps.
    uint64_t row_entries() const {
        return capture->top_k > 0 ? std::min<uint64_t>(u(capture->top_k), keys) : keys;
    }
    uint64_t value_bytes() const { return capture->fp16 ? 2 : kFloat; }
    // dense: every kept probability; sparse (CSR): a key and a value per entry,
    // at most row_entries a row (top_mass alone: as many as the row has), and
    // the row offsets
    uint64_t probs() const {
        if (!capture->sparse()) return product({rows(), keys, value_bytes()});
        return sum(
            {product({rows(), row_entries(), value_bytes() + 4}), product({sum({rows(), 1}), 8})});
    }
    // A sparse or fp16 capture computes a kept layer a head at a time into a
    // scratch [queries, keys] per thread (a dense float32 one writes in place,
    // and left-out layers and heads run the context-only kernel), and a sparse
    // one gathers each kept layer's rows before appending them.
    uint64_t scratch(uint64_t threads) const {
        if (!capture->sparse() && !capture->fp16) return 0;
        const uint64_t rows_of_layer = product({kept_heads(), queries});
        const uint64_t gathered =
            capture->sparse() ? sum({product({rows_of_layer, row_entries(), value_bytes() + 4}),
                                     product({rows_of_layer, 8})})
                              : 0;
        return sum(
            {product({std::max<uint64_t>(1, std::min(threads, heads)), queries, keys, kFloat}),
             gathered});
    }
    uint64_t queries_keys() const {
        return product({kept_layers(), kept_heads(), sum({queries, keys}), head_dim, kFloat});
    }
};

// The most bytes of neuron-view score biases that keep_score_bias
// (arch_blocks.cpp) holds at once over a stack whose kept layers, in order,
// add the biases `biases` names (0: none; equal ids: equal biases). The first
// kept layer's bias is kept once for all the layers while the next ones equal
// it (each is built and compared before it is dropped); a layer that differs
// (or adds none) gives every kept layer its own slot, allocated while the
// shared bias and that layer's are still held.
uint64_t score_bias_peak(const StackSizes& stack, const std::vector<uint64_t>& biases) {
    const uint64_t slots = biases.size();
    enum { none, shared, per_layer } kept = none;
    uint64_t shared_id = 0, most = 0;  // in [kept heads, queries, keys] slices
    for (uint64_t index = 0; index < slots; ++index) {
        const uint64_t id = biases[index], built = id != 0 ? 1 : 0;
        if (kept == per_layer) {
            most = std::max(most, slots + built);
        } else if (kept == none) {
            if (id == 0) continue;
            if (index == 0) {
                kept = shared, shared_id = id;  // moved into the block, no copy
                most = std::max<uint64_t>(most, 1);
            } else {
                kept = per_layer;
                most = std::max(most, slots + 1);
            }
        } else if (id != 0 && id == shared_id) {
            most = std::max<uint64_t>(most, 2);
        } else {
            kept = per_layer;
            most = std::max(most, 1 + slots + built);
        }
    }
    return product({most, stack.kept_heads(), stack.queries, stack.keys, kFloat});
}

// The model layers a stack keeps, in order.
std::vector<uint64_t> kept_layer_ids(const StackSizes& stack) {
    std::vector<uint64_t> ids;
    if (stack.capture->layers.empty()) {
        for (uint64_t layer = 0; layer < stack.layers; ++layer) ids.push_back(layer);
    } else {
        for (const int layer : stack.capture->layers)
            if (layer >= 0 && u(layer) < stack.layers) ids.push_back(u(layer));
    }
    return ids;
}

uint64_t output_bytes(const MemoryShape& shape, uint64_t attention) {
    return static_cast<uint64_t>(std::min(static_cast<double>(kMostBytes),
                                          shape.output_fraction * static_cast<double>(attention)));
}

bool is_family(const std::string& model_type, std::initializer_list<const char*> family) {
    for (const char* name : family)
        if (model_type == name) return true;
    return false;
}

}  // namespace

MemoryEstimate estimate_forward_memory(const ModelConfig& config, const MemoryShape& shape) {
    MemoryEstimate estimate;
    const uint64_t D = u(config.hidden_size), H = u(config.n_heads), Dh = u(config.head_dim);
    const uint64_t I = u(config.intermediate_size), L = u(config.n_layers);
    const uint64_t T = shape.tokens;
    const CaptureOptions& capture = shape.capture;
    const uint64_t threads = u(shape.threads);
    estimate.activations = kProcessBaselineBytes;

    if (config.is_encoder_decoder) {
        // T5, BART, Marian: encoder, decoder and cross blocks (t5.cpp, bart.cpp).
        const uint64_t S = shape.tokens, Tt = shape.decoder_tokens;
        const uint64_t Ld = u(config.n_decoder_layers > 0 ? config.n_decoder_layers : L);
        const uint64_t inner = H * Dh;
        const StackSizes encoder{L, H, Dh, S, S, &capture}, decoder{Ld, H, Dh, Tt, Tt, &capture},
            cross{Ld, H, Dh, Tt, S, &capture};
        estimate.attention = sum({encoder.probs(), decoder.probs(), cross.probs()});
        const bool t5 = config.model_type == "t5";
        // T5's position biases, one [heads, Q, K] per stack
        const uint64_t biases = sum({product({H, S, S, kFloat}), product({H, Tt, Tt, kFloat})});
        if (shape.keep_queries_keys && encoder.kept_layers() > 0) {
            estimate.queries_keys =
                sum({encoder.queries_keys(), decoder.queries_keys(), cross.queries_keys()});
            // T5 keeps its shared position bias (of the kept heads) per block,
            // and builds each kept layer's copy
            const uint64_t kept_biases =
                product({biases, encoder.kept_heads()}) / std::max<uint64_t>(1, H);
            if (t5) estimate.queries_keys = sum({estimate.queries_keys, kept_biases, kept_biases});
        }
        if (shape.keep_hidden_states)
            estimate.hidden_states =
                product({sum({product({L + 1, S}), product({Ld + 1, Tt})}), D, kFloat});
        // encoder memory and decoder stream, the per-layer buffers of the longer
        // sequence (norm, q|k|v, context, feed-forward in and gate), the cross
        // attention's keys and values of the source, and T5's position biases
        // (the decoder's is built while the encoder's is still held)
        const uint64_t n = std::max(S, Tt);
        const uint64_t per_token = D + 3 * inner + inner + 2 * I;
        const uint64_t scratch =
            std::max({encoder.scratch(threads), decoder.scratch(threads), cross.scratch(threads)});
        estimate.activations = sum({estimate.activations, product({sum({S, Tt}), D, kFloat}),
                                    product({n, per_token, kFloat}),
                                    product({S, 2 * inner, kFloat}), t5 ? biases : 0, scratch});
        estimate.output = output_bytes(shape, estimate.attention);
        return estimate;
    }

    const StackSizes stack{L, H, Dh, T, T, &capture};
    estimate.attention = stack.probs();
    if (shape.keep_queries_keys) estimate.queries_keys = stack.queries_keys();
    if (shape.keep_hidden_states) estimate.hidden_states = product({L + 1, T, D, kFloat});
    uint64_t per_token = 0;  // floats per token of the forward's buffers
    uint64_t squares = 0;    // [heads, T, T] float workspaces
    uint64_t fixed = 0;      // floats that do not grow with the tokens
    uint64_t growing = 0;    // bytes held only while a workspace is built
    const uint64_t Dq = H * Dh, Dkv = u(config.n_kv_heads) * Dh, W = Dq + 2 * Dkv;
    const uint64_t rope = 2 * Dh;  // the rotary cos and sin tables (at most head_dim wide)
    const std::string& type = config.model_type;
    if (is_family(type, {"llama", "mistral", "qwen2"})) {
        // x, h, q|k|v (grouped), context, gate and up, the rotary tables (llama.cpp)
        per_token = 2 * D + W + Dq + 2 * I + rope;
    } else if (is_family(type, {"gemma", "gemma2"})) {
        // x, h, a sublayer's output, q|k|v (grouped), context, gate and up, rotary (gemma.cpp)
        per_token = 3 * D + W + Dq + 2 * I + rope;
    } else if (type == "phi3") {
        // x, h, q|k|v (grouped), context, gate and up, rotary (phi3.cpp)
        per_token = 2 * D + W + Dq + 2 * I + rope;
    } else if (type == "phi") {
        // x, h, the parallel block's output, q|k|v (grouped), context, feed-forward, rotary
        // (phi.cpp)
        per_token = 3 * D + W + Dq + I + rope;
    } else if (is_family(type, {"gpt2", "gpt_neox", "opt", "bloom"})) {
        // x, h, q|k|v, context, feed-forward (gpt2.cpp, gpt_neox.cpp, opt.cpp, bloom.cpp),
        // GPT-NeoX's rotary tables
        per_token = 2 * D + 3 * D + D + I + (type == "gpt_neox" ? rope : 0);
    } else if (type == "falcon") {
        // x, the attention's and the MLP's inputs, q|k|v (grouped), context, feed-forward,
        // the rotary tables unless it uses ALiBi (falcon.cpp)
        per_token = 3 * D + (D + 2 * u(config.n_kv_heads) * Dh) + D + I +
                    (config.position_embedding_type == "alibi" ? 0 : rope);
    } else if (type == "mpnet") {
        // x, q|k|v, context, feed-forward, and the relative position bias [H, T, T]
        // every layer shares (mpnet.cpp)
        per_token = D + 3 * D + D + I;
        squares = 1;
    } else if (type == "deberta-v2") {
        // x, q|k|v, context, feed-forward; disentangled attention adds the c2p and
        // p2c scores of every relative position [T, R] each, the positions' keys
        // and queries [R, H Dh] each, its bias [H, T, T] and two int32 [T, T]
        // position indices (deberta_v2.cpp)
        const uint64_t R = u(config.relative_positions);
        per_token = D + 3 * Dq + Dq + I + 2 * R;
        fixed = 2 * R * Dq;
        if (R > 0) {
            squares = 1;
            estimate.activations = sum({estimate.activations, product({2, T, T, 4})});
        }
    } else {
        // BERT, RoBERTa, ELECTRA, DistilBERT, ALBERT, XLM-RoBERTa: x, the
        // embeddings' input, q|k|v, context, feed-forward (bert_layers.cpp, albert.cpp, ...)
        per_token = D + D + 3 * D + D + I;
        if (config.position_embedding_type == "relative_key" ||
            config.position_embedding_type == "relative_key_query")
            squares = 1;  // the relative position scores
    }
    // Mistral, Qwen2, Gemma 2, Phi-3: a layer whose window is shorter than the
    // input gets its mask as an [H, T, T] bias (built once, shared by the layers)
    if (config.sliding_window > 0 && u(config.sliding_window) < T) {
        squares = 1;
        // llama.cpp and gemma.cpp build one head's [T, T] and grow it to H
        // heads: both are held while it grows (before any attention scratch)
        if (type != "phi3") growing = product({T, T, kFloat});
    }
    if (config.position_embedding_type == "alibi") squares = 1;  // BLOOM, Falcon: [H, T, T]
    // The neuron view keeps each kept layer's additive score bias: a layer's
    // sliding window mask (Gemma 2's only without soft-capping, whose scores
    // have no bias form), MPNet's relative bias and ALiBi (the same in every
    // layer). The BERT family's padding mask would be one too, but the
    // tokenizer never pads what Model::trace runs.
    if (shape.keep_queries_keys) {
        const std::vector<uint64_t> layers = kept_layer_ids(stack);
        std::vector<uint64_t> biases(layers.size(), 0);
        if (type == "mpnet" || config.position_embedding_type == "alibi") {
            biases.assign(layers.size(), 1);
        } else if (config.sliding_window > 0 && !(type == "gemma2" && config.attn_softcap > 0)) {
            const std::vector<int>& windows = config.layer_sliding_windows;
            for (size_t i = 0; i < layers.size(); ++i) {
                const uint64_t window = windows.empty()              ? u(config.sliding_window)
                                        : layers[i] < windows.size() ? u(windows[layers[i]])
                                                                     : 0;
                biases[i] = window > 0 && window < T ? window : 0;  // a wider one masks nothing
            }
        }
        estimate.queries_keys = sum({estimate.queries_keys, score_bias_peak(stack, biases)});
    }
    estimate.activations =
        sum({estimate.activations, product({T, per_token, kFloat}), product({fixed, kFloat}),
             product({squares, H, T, T, kFloat}), std::max(growing, stack.scratch(threads))});
    estimate.output = output_bytes(shape, estimate.attention);
    return estimate;
}

std::string capture_flags(const CaptureOptions& capture) {
    std::vector<std::string> parts;
    const auto list = [&](const char* flag, const std::vector<int>& ids) {
        if (ids.empty()) return;
        std::string part = flag;
        for (size_t i = 0; i < ids.size(); ++i) {
            part.append(i ? "," : " ");
            part.append(std::to_string(ids[i]));
        }
        parts.push_back(std::move(part));
    };
    list("--layers", capture.layers);
    list("--heads", capture.heads);
    char text[64];
    if (capture.top_k > 0) {
        std::snprintf(text, sizeof text, "--top-k %d", capture.top_k);
        parts.emplace_back(text);
    }
    if (capture.top_mass > 0) {
        std::snprintf(text, sizeof text, "--top-mass %g", capture.top_mass);
        parts.emplace_back(text);
    }
    if (capture.fp16) parts.emplace_back("--fp16");
    std::string flags;
    for (const std::string& part : parts) {
        if (!flags.empty()) flags.push_back(' ');
        flags.append(part);
    }
    return flags;
}

namespace {

// /proc/meminfo's MemAvailable, in bytes.
std::optional<uint64_t> mem_available() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024;
    return std::nullopt;
}

std::optional<uint64_t> read_number_file(const std::string& path) {
    std::ifstream file(path);
    std::string text;
    if (!(file >> text) || text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])))
        return std::nullopt;  // "max": no limit
    try {
        return std::stoull(text);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// The cgroup (v2) this process is in: its memory.max less memory.current.
std::optional<uint64_t> cgroup_room() {
    std::ifstream cgroup("/proc/self/cgroup");
    std::string line;
    while (std::getline(cgroup, line)) {
        if (!line.starts_with("0::")) continue;
        const std::string folder = "/sys/fs/cgroup" + line.substr(3);
        const std::optional<uint64_t> max = read_number_file(folder + "/memory.max");
        if (!max) return std::nullopt;
        const uint64_t current = read_number_file(folder + "/memory.current").value_or(0);
        return *max > current ? *max - current : 0;
    }
    return std::nullopt;
}

// The address space mapped now (VmSize), in bytes.
uint64_t mapped_now() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmSize:")) return std::stoull(line.substr(7)) * 1024;
    return 0;
}

}  // namespace

MemoryBudget available_memory() {
    MemoryBudget budget{std::numeric_limits<uint64_t>::max(), "no limit found"};
    if (const std::optional<uint64_t> available = mem_available())
        budget = {*available, "available memory"};
    if (const std::optional<uint64_t> room = cgroup_room(); room && *room < budget.bytes)
        budget = {*room, "cgroup memory.max"};
    rlimit limit{};
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        const uint64_t mapped = mapped_now();
        const uint64_t room = limit.rlim_cur > mapped ? limit.rlim_cur - mapped : 0;
        if (room < budget.bytes) budget = {room, "ulimit -v"};
    }
    return budget;
}

std::optional<uint64_t> parse_memory_size(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
        ++digits;
    if (digits == 0 || std::count(text.begin(), text.begin() + digits, '.') > 1)
        return std::nullopt;
    std::string unit(text.substr(digits));
    for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit.ends_with("IB"))
        unit.resize(unit.size() - 2);
    else if (unit.ends_with("B"))
        unit.resize(unit.size() - 1);
    static constexpr std::pair<const char*, double> kUnits[] = {{"", 1.0},
                                                                {"K", 1024.0},
                                                                {"M", 1024.0 * 1024},
                                                                {"G", 1024.0 * 1024 * 1024},
                                                                {"T", 1024.0 * 1024 * 1024 * 1024}};
    for (const auto& [name, scale] : kUnits) {
        if (unit != name) continue;
        const double value = std::stod(std::string(text.substr(0, digits))) * scale;
        if (!std::isfinite(value) || value < 1 || value >= 1.8e19) return std::nullopt;
        return static_cast<uint64_t>(value);
    }
    return std::nullopt;
}

std::string format_memory_size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes);
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(kUnits)) value /= 1024, ++unit;
    char text[32];
    // three significant digits: "812 MiB", "1.23 GiB"
    const char* format = unit == 0 || value >= 100 ? "%.0f %s"
                         : value >= 10             ? "%.1f %s"
                                                   : "%.2f %s";
    std::snprintf(text, sizeof text, format, value, kUnits[unit]);
    return text;
}

}  // namespace attnviz
