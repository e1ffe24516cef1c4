// read_npz: attention that attnviz did not compute, from a numpy .npz, as a
// trace the views draw. It reads what write_npz writes (the round trip), and
// what a user saves with numpy.savez or savez_compressed:
//   single stack:   tokens [S] str, attentions [L,H,S,S] or attentions_0..N
//                   ([H,S,S] or [1,H,S,S] each), optional sentence_b_start ();
//   encoder-decoder: encoder_tokens, decoder_tokens, and any of
//                   encoder_attentions, decoder_attentions, cross_attentions
//                   (or their _0..N forms);
// plus, when present, input_ids, token_type_ids, queries/keys/score_scale,
// score_bias, and write_npz's provenance (model_id, model_revision, architecture, texts).
// Every failure is one Error naming the file and the array.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "attnviz/error.h"
#include "attnviz/export.h"
#include "io/files.h"
#include "io/torch_checkpoint.h"

namespace attnviz {

namespace {

// One .npy array: its dtype as numpy spells it, its shape, its raw bytes.
struct Npy {
    std::string descr;
    std::vector<size_t> shape;
    std::string data;
    size_t count() const {
        size_t n = 1;
        for (size_t d : shape) n *= d;
        return n;
    }
};

std::string inflate_entry(const io::ZipEntry& entry, const std::string& where) {
    std::string out(entry.size, '\0');
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) throw Error(where + ": zlib inflateInit failed");
    stream.next_in = const_cast<Bytef*>(entry.data);
    stream.avail_in = static_cast<uInt>(entry.compressed_size);
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    const int result = inflate(&stream, Z_FINISH);
    const size_t produced = stream.total_out;
    inflateEnd(&stream);
    if (result != Z_STREAM_END || produced != entry.size)
        throw Error(where + ": does not inflate to its stated size");
    return out;
}

// The header's dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
Npy parse_npy(std::string bytes, const std::string& where) {
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw Error(where + ": not a .npy array (no \\x93NUMPY magic)");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t header_length = 0, start = 0;
    if (major == 1) {
        header_length = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9])
                                                                   << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw Error(where + ": truncated .npy header");
        for (int i = 0; i < 4; ++i)
            header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i]))
                             << (8 * i);
        start = 12;
    } else {
        throw Error(where + ": .npy version " + std::to_string(major) + " is not supported");
    }
    if (header_length > bytes.size() - start) throw Error(where + ": truncated .npy header");
    const std::string header = bytes.substr(start, header_length);
    const auto value_of = [&](const std::string& key) {
        const size_t at = header.find("'" + key + "':");
        if (at == std::string::npos) throw Error(where + ": .npy header has no '" + key + "'");
        size_t pos = at + key.size() + 3;
        while (pos < header.size() && header[pos] == ' ') ++pos;
        return pos;
    };
    Npy npy;
    size_t pos = value_of("descr");
    const size_t descr_end = header.find('\'', pos + 1);
    if (header[pos] != '\'' || descr_end == std::string::npos)
        throw Error(where + ": a structured dtype is not an array of numbers or strings");
    npy.descr = header.substr(pos + 1, descr_end - pos - 1);
    if (header.compare(value_of("fortran_order"), 4, "True") == 0)
        throw Error(where +
                    ": Fortran-ordered arrays are not supported (save numpy.ascontiguousarray)");
    pos = value_of("shape");
    const size_t shape_end = header.find(')', pos);
    if (header[pos] != '(' || shape_end == std::string::npos)
        throw Error(where + ": bad shape in .npy header");
    for (size_t i = pos + 1; i < shape_end;) {
        while (i < shape_end && (header[i] == ' ' || header[i] == ',')) ++i;
        if (i >= shape_end) break;
        size_t used = 0;
        unsigned long long dim = 0;
        try {
            dim = std::stoull(header.substr(i, shape_end - i), &used);
        } catch (const std::exception&) {
            throw Error(where + ": bad shape in .npy header");
        }
        npy.shape.push_back(static_cast<size_t>(dim));
        i += used;
    }
    npy.data = bytes.substr(start + header_length);
    return npy;
}

class NpzFile {
public:
    explicit NpzFile(const std::filesystem::path& path) : file_(path.string()) {
        const std::string bytes = io::read_file(path);
        for (const io::ZipEntry& entry : io::read_zip_directory(
                 reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), file_)) {
            if (entry.name.size() < 4 || entry.name.compare(entry.name.size() - 4, 4, ".npy") != 0)
                continue;
            const std::string name = entry.name.substr(0, entry.name.size() - 4);
            const std::string where = file_ + ": " + name;
            std::string raw =
                entry.method == 0
                    ? std::string(reinterpret_cast<const char*>(entry.data), entry.size)
                : entry.method == 8
                    ? inflate_entry(entry, where)
                    : throw Error(where + ": zip method " + std::to_string(entry.method) +
                                  " (numpy writes stored or deflated entries)");
            arrays_.emplace(name, parse_npy(std::move(raw), where));
        }
    }

    bool has(const std::string& name) const { return arrays_.count(name) != 0; }
    const std::string& file() const { return file_; }
    std::string where(const std::string& name) const { return file_ + ": " + name; }

    const Npy& get(const std::string& name) const {
        const auto found = arrays_.find(name);
        if (found == arrays_.end()) {
            std::string names;
            for (const auto& [known, array] : arrays_) names += (names.empty() ? "" : ", ") + known;
            throw Error(file_ + ": no array '" + name +
                        "' (it has: " + (names.empty() ? "none" : names) + ")");
        }
        return found->second;
    }

    // float32 values of any float dtype (float16, float32, float64), little-endian.
    std::vector<float> floats(const std::string& name) const {
        const Npy& npy = get(name);
        const size_t n = npy.count();
        std::vector<float> out(n);
        const auto need = [&](size_t item) {
            if (npy.data.size() < n * item)
                throw Error(where(name) + ": truncated (" + std::to_string(npy.data.size()) +
                            " bytes for " + std::to_string(n) + " values)");
        };
        if (npy.descr == "<f4") {
            need(4);
            std::memcpy(out.data(), npy.data.data(), n * 4);
        } else if (npy.descr == "<f8") {
            need(8);
            for (size_t i = 0; i < n; ++i) {
                double value;
                std::memcpy(&value, npy.data.data() + i * 8, 8);
                out[i] = static_cast<float>(value);
            }
        } else if (npy.descr == "<f2") {
            need(2);
            for (size_t i = 0; i < n; ++i) {
                uint16_t half;
                std::memcpy(&half, npy.data.data() + i * 2, 2);
                const int exponent = (half >> 10) & 0x1f, mantissa = half & 0x3ff;
                const float magnitude =
                    exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -24)
                    : exponent == 31
                        ? (mantissa ? NAN : INFINITY)
                        : std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
                out[i] = (half & 0x8000) ? -magnitude : magnitude;
            }
        } else {
            throw Error(where(name) + ": dtype " + npy.descr +
                        " is not float16, float32 or float64");
        }
        return out;
    }

    std::vector<int64_t> integers(const std::string& name) const {
        const Npy& npy = get(name);
        const size_t n = npy.count();
        const size_t item = npy.descr == "<i8" || npy.descr == "<u8"   ? 8
                            : npy.descr == "<i4" || npy.descr == "<u4" ? 4
                                                                       : 0;
        if (item == 0)
            throw Error(where(name) + ": dtype " + npy.descr + " is not an integer type");
        if (npy.data.size() < n * item) throw Error(where(name) + ": truncated");
        std::vector<int64_t> out(n);
        for (size_t i = 0; i < n; ++i) {
            if (item == 8) {
                std::memcpy(&out[i], npy.data.data() + i * 8, 8);
            } else {
                int32_t value;
                std::memcpy(&value, npy.data.data() + i * 4, 4);
                out[i] = value;
            }
        }
        return out;
    }

    // numpy's '<U<n>' strings as UTF-8.
    std::vector<std::string> strings(const std::string& name) const {
        const Npy& npy = get(name);
        if (npy.descr.size() < 3 || npy.descr.compare(0, 2, "<U") != 0)
            throw Error(where(name) + ": dtype " + npy.descr +
                        " is not a str array (save it as numpy.array(tokens, dtype=str))");
        const size_t width = std::stoul(npy.descr.substr(2));
        const size_t n = npy.count();
        if (npy.data.size() < n * width * 4) throw Error(where(name) + ": truncated");
        std::vector<std::string> out;
        for (size_t i = 0; i < n; ++i) {
            std::string text;
            for (size_t c = 0; c < width; ++c) {
                uint32_t point;
                std::memcpy(&point, npy.data.data() + (i * width + c) * 4, 4);
                if (point == 0) break;
                if (point > 0x10FFFF || (point >= 0xD800 && point < 0xE000)) point = 0xFFFD;
                if (point < 0x80) {
                    text += static_cast<char>(point);
                } else if (point < 0x800) {
                    text += static_cast<char>(0xC0 | (point >> 6));
                    text += static_cast<char>(0x80 | (point & 0x3F));
                } else if (point < 0x10000) {
                    text += static_cast<char>(0xE0 | (point >> 12));
                    text += static_cast<char>(0x80 | ((point >> 6) & 0x3F));
                    text += static_cast<char>(0x80 | (point & 0x3F));
                } else {
                    text += static_cast<char>(0xF0 | (point >> 18));
                    text += static_cast<char>(0x80 | ((point >> 12) & 0x3F));
                    text += static_cast<char>(0x80 | ((point >> 6) & 0x3F));
                    text += static_cast<char>(0x80 | (point & 0x3F));
                }
            }
            out.push_back(std::move(text));
        }
        return out;
    }

    std::string string_or(const std::string& name, const std::string& otherwise) const {
        if (!has(name)) return otherwise;
        const std::vector<std::string> values = strings(name);
        return values.empty() ? otherwise : values.front();
    }

private:
    std::string file_;
    std::map<std::string, Npy> arrays_;
};

std::string shape_text(const std::vector<size_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

// A sparse capture's CSR rows (write_npz, docs/export.md), checked whole:
// offsets from 0 rising to the number of values, keys ascending within a row
// and below the shape's key count.
void read_sparse_rows(const NpzFile& npz, const std::string& prefix, AttentionBlock& block) {
    const std::string stacked = prefix + "attentions";
    const std::vector<int64_t> shape = npz.integers(stacked + "_shape");
    if (shape.size() != 4 || std::any_of(shape.begin(), shape.end(), [](int64_t d) {
            return d <= 0 || d > std::numeric_limits<int>::max();
        }))
        throw Error(npz.where(stacked + "_shape") +
                    " must be 4 positive sizes [layers, heads, queries, keys]");
    block.n_layers = static_cast<int>(shape[0]), block.n_heads = static_cast<int>(shape[1]);
    block.n_queries = static_cast<int>(shape[2]), block.n_keys = static_cast<int>(shape[3]);
    const std::vector<int64_t> starts = npz.integers(stacked + "_row_start");
    const std::vector<int64_t> keys = npz.integers(stacked + "_keys");
    block.probs = npz.floats(stacked + "_probs");
    if (starts.size() != block.n_rows() + 1 || starts.front() != 0 ||
        starts.back() != static_cast<int64_t>(keys.size()) || keys.size() != block.probs.size())
        throw Error(npz.where(stacked + "_row_start") + " must hold " +
                    std::to_string(block.n_rows() + 1) + " offsets from 0 to the " +
                    std::to_string(keys.size()) + " keys (and as many " + stacked + "_probs)");
    block.row_start.reserve(starts.size());
    for (size_t r = 0; r < starts.size(); ++r) {
        if (r > 0 && starts[r] < starts[r - 1])
            throw Error(npz.where(stacked + "_row_start") + " falls at row " + std::to_string(r));
        block.row_start.push_back(static_cast<uint64_t>(starts[r]));
    }
    block.row_keys.reserve(keys.size());
    for (size_t r = 0; r + 1 < starts.size(); ++r)
        for (int64_t at = starts[r]; at < starts[r + 1]; ++at) {
            const int64_t key = keys[static_cast<size_t>(at)];
            if (key < 0 || key >= block.n_keys || (at > starts[r] && key <= keys[at - 1]))
                throw Error(npz.where(stacked + "_keys") + ": row " + std::to_string(r) +
                            " has key " + std::to_string(key) +
                            " (keys must ascend within a row, below " +
                            std::to_string(block.n_keys) + ")");
            block.row_keys.push_back(static_cast<int32_t>(key));
        }
    if (npz.has(prefix + "attention_top_k")) {  // for messages: what the capture kept
        const std::vector<int64_t> k = npz.integers(prefix + "attention_top_k");
        if (k.size() == 1 && k[0] > 0 && k[0] <= block.n_keys)
            block.capture.top_k = static_cast<int>(k[0]);
    }
    if (npz.has(prefix + "attention_top_mass")) {
        const std::vector<float> mass = npz.floats(prefix + "attention_top_mass");
        if (mass.size() == 1 && mass[0] > 0 && mass[0] <= 1) block.capture.top_mass = mass[0];
    }
}

// The model's numbers of the kept layers and heads of a selective capture.
void read_kept_ids(const NpzFile& npz, const std::string& prefix, AttentionBlock& block) {
    for (const auto& [name, count, ids] :
         {std::tuple{"attention_layers", block.n_layers, &block.layer_ids},
          std::tuple{"attention_heads", block.n_heads, &block.head_ids}}) {
        if (!npz.has(prefix + name)) continue;
        const std::vector<int64_t> values = npz.integers(prefix + name);
        if (values.size() != static_cast<size_t>(count))
            throw Error(npz.where(prefix + name) + " has " + std::to_string(values.size()) +
                        " ids for " + std::to_string(count));
        for (size_t i = 0; i < values.size(); ++i) {
            if (values[i] < 0 || values[i] > std::numeric_limits<int>::max() ||
                (i > 0 && values[i] <= values[i - 1]))
                throw Error(npz.where(prefix + name) + " must ascend from 0");
            ids->push_back(static_cast<int>(values[i]));
        }
    }
}

// `attentions` [L,H,Q,K], or `attentions_0..N` of [H,Q,K] or [1,H,Q,K] each.
AttentionBlock read_block(const NpzFile& npz, const std::string& prefix, const std::string& name) {
    const std::string stacked = prefix + "attentions";
    AttentionBlock block;
    block.name = name;
    std::vector<size_t> shape;
    if (npz.has(stacked + "_row_start")) {
        read_sparse_rows(npz, prefix, block);
        shape = {static_cast<size_t>(block.n_layers), static_cast<size_t>(block.n_heads),
                 static_cast<size_t>(block.n_queries), static_cast<size_t>(block.n_keys)};
    } else if (npz.has(stacked)) {
        shape = npz.get(stacked).shape;
        if (shape.size() == 5 && shape[1] == 1) shape.erase(shape.begin() + 1);
        if (shape.size() != 4)
            throw Error(npz.where(stacked) + " is " + shape_text(npz.get(stacked).shape) +
                        ", expected [layers, heads, queries, keys]");
        block.probs = npz.floats(stacked);
    } else {
        for (size_t layer = 0; npz.has(stacked + "_" + std::to_string(layer)); ++layer) {
            const std::string layer_name = stacked + "_" + std::to_string(layer);
            std::vector<size_t> layer_shape = npz.get(layer_name).shape;
            if (layer_shape.size() == 4 && layer_shape[0] == 1)
                layer_shape.erase(layer_shape.begin());
            if (layer_shape.size() != 3)
                throw Error(npz.where(layer_name) + " is " + shape_text(npz.get(layer_name).shape) +
                            ", expected [batch=1, heads, queries, keys]");
            if (layer == 0) shape = {0, layer_shape[0], layer_shape[1], layer_shape[2]};
            if (!std::equal(layer_shape.begin(), layer_shape.end(), shape.begin() + 1))
                throw Error(npz.where(layer_name) + " is " + shape_text(layer_shape) + " but " +
                            stacked + "_0 is " + shape_text({shape[1], shape[2], shape[3]}));
            const std::vector<float> values = npz.floats(layer_name);
            block.probs.insert(block.probs.end(), values.begin(), values.end());
            ++shape[0];
        }
        if (shape.empty())
            throw Error(npz.file() + ": no array '" + stacked + "' (or " + stacked + "_0, " +
                        stacked + "_1, ...)");
    }
    if (std::find(shape.begin(), shape.end(), 0) != shape.end())
        throw Error(npz.where(stacked) + " has an empty shape " + shape_text(shape));
    block.n_layers = static_cast<int>(shape[0]);
    block.n_heads = static_cast<int>(shape[1]);
    block.n_queries = static_cast<int>(shape[2]);
    block.n_keys = static_cast<int>(shape[3]);
    read_kept_ids(npz, prefix, block);

    // Queries and keys (write_npz with --queries-keys), for the neuron view.
    if (npz.has(prefix + "queries") && npz.has(prefix + "keys")) {
        const std::vector<size_t>& q = npz.get(prefix + "queries").shape;
        const std::vector<size_t>& k = npz.get(prefix + "keys").shape;
        if (q.size() != 4 || k.size() != 4 || q[0] != shape[0] || q[1] != shape[1] ||
            q[2] != shape[2] || k[0] != shape[0] || k[1] != shape[1] || k[2] != shape[3] ||
            q[3] != k[3] || q[3] == 0)
            throw Error(npz.where(prefix + "queries") + " is " + shape_text(q) + " and keys " +
                        shape_text(k) + ", which do not fit attentions " + shape_text(shape));
        block.head_dim = static_cast<int>(q[3]);
        block.queries = npz.floats(prefix + "queries");
        block.keys = npz.floats(prefix + "keys");
        block.score_scale = 1.0f / std::sqrt(static_cast<float>(block.head_dim));
        if (npz.has(prefix + "score_scale")) {
            std::vector<float> scales = npz.floats(prefix + "score_scale");
            if (scales.size() != shape[0])
                throw Error(npz.where(prefix + "score_scale") + " has " +
                            std::to_string(scales.size()) + " values, expected one per layer (" +
                            std::to_string(shape[0]) + ")");
            block.score_scale = scales.front();
            if (std::any_of(scales.begin(), scales.end(),
                            [&](float s) { return s != scales.front(); }))
                block.layer_score_scales = std::move(scales);
        }
        if (npz.has(prefix + "score_bias")) {
            const std::vector<size_t>& b = npz.get(prefix + "score_bias").shape;
            if (b.size() != 4 || (b[0] != 1 && b[0] != shape[0]) || b[1] != shape[1] ||
                b[2] != shape[2] || b[3] != shape[3])
                throw Error(npz.where(prefix + "score_bias") + " is " + shape_text(b) +
                            ", expected [1 or layers, heads, queries, keys] for attentions " +
                            shape_text(shape));
            block.score_bias_layers = static_cast<int>(b[0]);
            block.score_bias = npz.floats(prefix + "score_bias");
        }
    }
    return block;
}

TokenSequence read_sequence(const NpzFile& npz, const std::string& prefix,
                            const std::string& name) {
    TokenSequence sequence;
    sequence.name = name;
    const std::vector<std::string> tokens = npz.strings(prefix + "tokens");
    if (npz.get(prefix + "tokens").shape.size() != 1)
        throw Error(npz.where(prefix + "tokens") + " is " +
                    shape_text(npz.get(prefix + "tokens").shape) +
                    ", expected one token per position [tokens]");
    std::vector<int64_t> ids, type_ids;
    if (npz.has(prefix + "input_ids")) ids = npz.integers(prefix + "input_ids");
    if (npz.has(prefix + "token_type_ids")) type_ids = npz.integers(prefix + "token_type_ids");
    for (const auto& [array, values] :
         {std::pair{"input_ids", &ids}, std::pair{"token_type_ids", &type_ids}})
        if (!values->empty() && values->size() != tokens.size())
            throw Error(npz.where(prefix + array) + " has " + std::to_string(values->size()) +
                        " values but " + prefix + "tokens has " + std::to_string(tokens.size()));
    std::optional<int64_t> b_start;
    if (npz.has(prefix + "sentence_b_start")) {
        const std::vector<int64_t> value = npz.integers(prefix + "sentence_b_start");
        if (value.size() != 1 || value[0] <= 0 || value[0] >= static_cast<int64_t>(tokens.size()))
            throw Error(npz.where(prefix + "sentence_b_start") + " must be one index from 1 to " +
                        std::to_string(tokens.size() - 1));
        b_start = value[0];
    }
    if (npz.has(prefix + "texts")) sequence.texts = npz.strings(prefix + "texts");
    for (size_t i = 0; i < tokens.size(); ++i) {
        TraceToken token;
        token.text = tokens[i];
        token.display = tokens[i];
        token.id = ids.empty() ? -1 : static_cast<int32_t>(ids[i]);
        token.type_id = type_ids.empty() ? 0 : static_cast<int32_t>(type_ids[i]);
        // The pair's second text: from sentence_b_start, else where token_type_ids turn 1.
        token.segment = b_start ? (static_cast<int64_t>(i) >= *b_start ? 1 : 0)
                                : static_cast<int8_t>(token.type_id != 0);
        sequence.tokens.push_back(std::move(token));
    }
    return sequence;
}

void check_block_fits(const NpzFile& npz, const AttentionTrace& trace, const AttentionBlock& block,
                      const std::string& array) {
    const size_t queries = trace.sequences[static_cast<size_t>(block.query_sequence)].tokens.size();
    const size_t keys = trace.sequences[static_cast<size_t>(block.key_sequence)].tokens.size();
    if (static_cast<size_t>(block.n_queries) != queries ||
        static_cast<size_t>(block.n_keys) != keys)
        throw Error(
            npz.where(array) + " is " +
            shape_text({static_cast<size_t>(block.n_layers), static_cast<size_t>(block.n_heads),
                        static_cast<size_t>(block.n_queries), static_cast<size_t>(block.n_keys)}) +
            " but its tokens number " + std::to_string(queries) + " (queries) and " +
            std::to_string(keys) + " (keys)");
}

bool has_block(const NpzFile& npz, const std::string& prefix) {
    return npz.has(prefix + "attentions") || npz.has(prefix + "attentions_0") ||
           npz.has(prefix + "attentions_row_start");
}

bool looks_special(const std::string& token) {
    if (token.size() < 3) return false;
    const bool bracketed = token.front() == '[' && token.back() == ']' &&
                           std::all_of(token.begin() + 1, token.end() - 1,
                                       [](char c) { return c >= 'A' && c <= 'Z'; });
    const bool angled = token.front() == '<' && token.back() == '>' &&
                        token.find_first_of(" <>", 1) == token.size() - 1;
    return bracketed || angled;
}

}  // namespace

void infer_causal_and_special(AttentionTrace& trace) {
    for (AttentionBlock& block : trace.blocks) {
        if (block.query_sequence != block.key_sequence || block.n_queries != block.n_keys) continue;
        bool causal = block.n_queries > 1;
        const auto n = static_cast<size_t>(block.n_queries);
        if (block.is_sparse()) {  // a kept key after its query says it is not
            for (size_t row = 0; causal && row < block.n_rows(); ++row)
                for (uint64_t at = block.row_start[row]; causal && at < block.row_start[row + 1];
                     ++at)
                    causal = block.row_keys[at] <= static_cast<int32_t>(row % n);
            block.causal = causal;
            continue;
        }
        const size_t maps = static_cast<size_t>(block.n_layers) * block.n_heads;
        for (size_t map = 0; causal && map < maps && (map + 1) * n * n <= block.probs.size(); ++map)
            for (size_t q = 0; causal && q < n; ++q)
                for (size_t k = q + 1; causal && k < n; ++k)
                    causal = block.probs[(map * n + q) * n + k] == 0.0f;
        block.causal = causal;
    }
    for (TokenSequence& sequence : trace.sequences)
        for (TraceToken& token : sequence.tokens)
            token.special = token.special || looks_special(token.text);
}

AttentionTrace read_npz(const std::filesystem::path& path) {
    const NpzFile npz(path);
    AttentionTrace trace;
    trace.model_id = npz.string_or("model_id", path.stem().string());
    trace.model_revision = npz.string_or("model_revision", "");
    trace.architecture = npz.string_or("architecture", "");
    if (npz.has("tokens")) {  // one stack
        trace.sequences.push_back(read_sequence(npz, "", "input"));
        AttentionBlock block = read_block(npz, "", "self");
        check_block_fits(npz, trace, block, "attentions");
        trace.blocks.push_back(std::move(block));
    } else if (npz.has("encoder_tokens") || npz.has("decoder_tokens")) {
        for (const char* name : {"encoder", "decoder"})
            if (npz.has(std::string(name) + "_tokens"))
                trace.sequences.push_back(read_sequence(npz, std::string(name) + "_", name));
        const auto index_of = [&](const std::string& name, const std::string& block) {
            for (size_t i = 0; i < trace.sequences.size(); ++i)
                if (trace.sequences[i].name == name) return static_cast<int>(i);
            throw Error(npz.file() + ": " + block + "_attentions needs " + name + "_tokens");
        };
        for (const auto& [name, query, key] : {std::tuple{"encoder", "encoder", "encoder"},
                                               std::tuple{"decoder", "decoder", "decoder"},
                                               std::tuple{"cross", "decoder", "encoder"}}) {
            const std::string prefix = std::string(name) + "_";
            if (!has_block(npz, prefix)) continue;
            AttentionBlock block = read_block(npz, prefix, name);
            block.query_sequence = index_of(query, name);
            block.key_sequence = index_of(key, name);
            check_block_fits(npz, trace, block, prefix + "attentions");
            trace.blocks.push_back(std::move(block));
        }
        if (trace.blocks.empty())
            throw Error(npz.file() +
                        ": no encoder_attentions, decoder_attentions or cross_attentions");
    } else {
        throw Error(
            npz.file() +
            ": no 'tokens' array (or encoder_tokens / decoder_tokens); save the tokens beside the "
            "attentions, e.g. numpy.savez(path, attentions=..., tokens=numpy.array(tokens))");
    }
    infer_causal_and_special(trace);
    return trace;
}

}  // namespace attnviz
