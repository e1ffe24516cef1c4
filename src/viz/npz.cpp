// write_npz: a trace as numpy's .npz, the uncompressed zip of .npy files that
// numpy.savez writes and numpy.load reads. Values are exact float32, unlike the
// views' quantized payload. Zip64 records are added only where a size or an
// offset passes 4 GiB, as Python's zipfile does.
//
// Arrays, for single-stack models (BERT, GPT-2, ...):
//   input_ids [S] int64, token_type_ids [S] int64, tokens [S] unicode,
//   attentions [L,H,S,S] float32 (float16, or CSR rows attentions_row_start,
//   attentions_keys, attentions_probs, attentions_shape, for a --fp16, --top-k
//   or --top-mass capture; attention_layers / attention_heads: the model's
//   numbers of the kept ones, when not all are; docs/export.md), queries/keys [L,H,S,Dh] and
//   score_scale [L] (when kept: raw score = score_scale[layer] * dot(query, key) + score_bias),
//   score_bias [1 or L,H,S,S] (with queries/keys, when the model added one),
//   hidden_states [L+1,S,D] (when kept).
// Encoder-decoder models prefix the sequence arrays and the hidden states with
// the sequence name (encoder_input_ids, decoder_tokens, encoder_hidden_states,
// decoder_hidden_states, ...) and the attention arrays with the block name
// (encoder_attentions, decoder_attentions, cross_attentions, cross_queries, ...).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "attnviz/export.h"
#include "attnviz/files.h"
#include "viz/npz.h"

namespace attnviz {

namespace {

// One array: a dtype as numpy spells it, a shape, and its bytes.
struct NpyArray {
    std::string name;
    std::string descr;  // "<i8", "<f4", "<U12"
    std::vector<size_t> shape;
    const void* data = nullptr;
    size_t data_size = 0;
    std::vector<uint8_t> owned;  // for arrays built here (ids, tokens)
};

// The .npy v1.0 header: magic, version, little-endian header length, then a
// Python dict literal padded with spaces and ended by '\n' so that the data
// starts at a multiple of 64 bytes, as numpy writes it.
std::string npy_header(const NpyArray& array) {
    std::string shape = "(";
    for (size_t i = 0; i < array.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(array.shape[i]);
    if (array.shape.size() == 1) shape += ",";
    shape += ")";
    std::string dict =
        "{'descr': '" + array.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    const size_t unpadded = 10 + dict.size() + 1;
    dict += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
    std::string header = "\x93NUMPY";
    header += '\x01';
    header += '\x00';
    header += static_cast<char>(dict.size() & 0xff);
    header += static_cast<char>(dict.size() >> 8);
    return header + dict;
}

NpyArray make_array(std::string name, std::string descr, std::vector<size_t> shape) {
    NpyArray array;
    array.name = std::move(name);
    array.descr = std::move(descr);
    array.shape = std::move(shape);
    return array;
}

NpyArray int64_array(std::string name, const std::vector<int64_t>& values) {
    NpyArray array = make_array(std::move(name), "<i8", {values.size()});
    array.owned.resize(values.size() * sizeof(int64_t));
    if (!values.empty()) std::memcpy(array.owned.data(), values.data(), array.owned.size());
    return array;
}

// A float32 array whose shape must account for its values exactly: a negative
// dimension, or a product that overflows or differs, is an Error naming it.
NpyArray float_array(std::string name, const std::vector<float>& values,
                     std::initializer_list<int64_t> dims) {
    std::vector<size_t> shape;
    size_t count = 1;
    bool fits = true;
    for (int64_t dim : dims) {
        fits = fits && dim >= 0 && !__builtin_mul_overflow(count, static_cast<size_t>(dim), &count);
        shape.push_back(static_cast<size_t>(std::max<int64_t>(dim, 0)));
    }
    if (!fits || count != values.size()) {
        std::string text;
        for (int64_t dim : dims) text += (text.empty() ? "" : ", ") + std::to_string(dim);
        throw Error("cannot export " + name + ": it has " + std::to_string(values.size()) +
                    " values, which its shape [" + text + "] does not hold");
    }
    NpyArray array = make_array(std::move(name), "<f4", std::move(shape));
    array.data = values.data();
    array.data_size = values.size() * sizeof(float);
    return array;
}

// UTF-8 to code points; token text comes from the tokenizer and is valid UTF-8,
// but a broken byte still becomes U+FFFD rather than a crash.
std::vector<char32_t> code_points(const std::string& text) {
    std::vector<char32_t> points;
    for (size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        const int length = byte < 0x80         ? 1
                           : (byte >> 5) == 6  ? 2
                           : (byte >> 4) == 14 ? 3
                           : (byte >> 3) == 30 ? 4
                                               : 0;
        if (length == 0 || i + length > text.size()) {
            points.push_back(0xFFFD);
            ++i;
            continue;
        }
        char32_t point = length == 1 ? byte : byte & (0x7F >> length);
        for (int k = 1; k < length; ++k) point = (point << 6) | (text[i + k] & 0x3F);
        points.push_back(point);
        i += length;
    }
    return points;
}

// numpy's fixed-width unicode ('<U<n>'): n UTF-32LE code units per item, zero-padded.
NpyArray unicode_array(std::string name, const std::vector<TraceToken>& tokens) {
    std::vector<std::vector<char32_t>> texts;
    size_t width = 1;
    for (const TraceToken& token : tokens) {
        texts.push_back(code_points(token.text));
        width = std::max(width, texts.back().size());
    }
    NpyArray array = make_array(std::move(name), "<U" + std::to_string(width), {tokens.size()});
    array.owned.assign(tokens.size() * width * 4, 0);
    for (size_t t = 0; t < texts.size(); ++t)
        for (size_t c = 0; c < texts[t].size(); ++c)
            for (int b = 0; b < 4; ++b)
                array.owned[(t * width + c) * 4 + b] = static_cast<uint8_t>(texts[t][c] >> (8 * b));
    return array;
}

// numpy str arrays from UTF-8 strings: one value (shape ()) or a list ([n]).
NpyArray string_array(std::string name, const std::vector<std::string>& values, bool scalar) {
    std::vector<TraceToken> as_tokens(values.size());
    for (size_t i = 0; i < values.size(); ++i) as_tokens[i].text = values[i];
    NpyArray array = unicode_array(std::move(name), as_tokens);
    if (scalar) array.shape.clear();
    return array;
}

// Where the arrays came from, for `attnviz view --attention` and for people
// reading the file later: model_id, model_revision (the commit, when the model came from
// the HF cache), architecture, attnviz_version, the input texts, and sentence_b_start for a pair.
void append_provenance(const AttentionTrace& trace, std::vector<NpyArray>& arrays) {
    arrays.push_back(string_array("model_id", {trace.model_id}, true));
    if (!trace.model_revision.empty())
        arrays.push_back(string_array("model_revision", {trace.model_revision}, true));
    arrays.push_back(string_array("architecture", {trace.architecture}, true));
    arrays.push_back(string_array("attnviz_version", {ATTNVIZ_VIZ_VERSION}, true));
    const bool single_stack = trace.sequences.size() == 1;
    for (const TokenSequence& sequence : trace.sequences) {
        const std::string prefix = single_stack ? "" : sequence.name + "_";
        if (!sequence.texts.empty())
            arrays.push_back(string_array(prefix + "texts", sequence.texts, false));
        const auto second =
            std::find_if(sequence.tokens.begin(), sequence.tokens.end(),
                         [](const TraceToken& token) { return token.segment == 1; });
        if (second != sequence.tokens.end() && second != sequence.tokens.begin()) {
            NpyArray start =
                int64_array(prefix + "sentence_b_start", {second - sequence.tokens.begin()});
            start.shape.clear();
            arrays.push_back(std::move(start));
        }
    }
}

// Bytes the writer reads in place (they outlive the arrays).
template <typename T>
NpyArray raw_array(std::string name, std::string descr, std::vector<size_t> shape,
                   const std::vector<T>& values) {
    NpyArray array = make_array(std::move(name), std::move(descr), std::move(shape));
    array.data = values.data();
    array.data_size = values.size() * sizeof(T);
    return array;
}

NpyArray scalar_int(std::string name, int64_t value) {
    NpyArray array = int64_array(std::move(name), {value});
    array.shape.clear();
    return array;
}

// A block's probabilities as its capture kept them (docs/export.md):
// attentions [L,H,Q,K] float32 (float16 with fp16), or CSR rows
// attentions_row_start [L*H*Q+1] int64, attentions_keys [nnz] int32,
// attentions_probs [nnz] float32/float16, attentions_shape [4] int64; the
// model's numbers of the kept layers and heads (attention_layers,
// attention_heads) when not all are kept; and the capture's top_k, top_mass.
void append_attention(const AttentionBlock& block, const std::string& prefix,
                      std::vector<NpyArray>& arrays) {
    const auto L = static_cast<size_t>(block.n_layers), H = static_cast<size_t>(block.n_heads);
    const auto Q = static_cast<size_t>(block.n_queries), K = static_cast<size_t>(block.n_keys);
    const bool fp16 = !block.probs_fp16.empty();
    const size_t stored = fp16 ? block.probs_fp16.size() : block.probs.size();
    if (block.is_sparse()) {
        const size_t rows = L * H * Q;
        if (block.row_start.size() != rows + 1 || block.row_keys.size() != stored ||
            block.row_start.back() != stored)
            throw Error("cannot export " + prefix + "attentions: its sparse rows do not add up (" +
                        std::to_string(block.row_start.size()) + " row offsets for " +
                        std::to_string(rows) + " rows, " + std::to_string(stored) + " values)");
        arrays.push_back(
            raw_array(prefix + "attentions_row_start", "<i8", {rows + 1}, block.row_start));
        arrays.push_back(raw_array(prefix + "attentions_keys", "<i4", {stored}, block.row_keys));
        arrays.push_back(
            fp16 ? raw_array(prefix + "attentions_probs", "<f2", {stored}, block.probs_fp16)
                 : raw_array(prefix + "attentions_probs", "<f4", {stored}, block.probs));
        arrays.push_back(int64_array(prefix + "attentions_shape",
                                     {static_cast<int64_t>(L), static_cast<int64_t>(H),
                                      static_cast<int64_t>(Q), static_cast<int64_t>(K)}));
    } else if (fp16) {
        if (stored != L * H * Q * K)
            throw Error("cannot export " + prefix + "attentions: " + std::to_string(stored) +
                        " float16 values for " + std::to_string(L * H * Q * K));
        arrays.push_back(raw_array(prefix + "attentions", "<f2", {L, H, Q, K}, block.probs_fp16));
    } else {
        arrays.push_back(
            float_array(prefix + "attentions", block.probs,
                        {block.n_layers, block.n_heads, block.n_queries, block.n_keys}));
    }
    const auto ids = [&](const char* name, const std::vector<int>& values) {
        if (values.empty()) return;
        arrays.push_back(
            int64_array(prefix + name, std::vector<int64_t>(values.begin(), values.end())));
    };
    ids("attention_layers", block.layer_ids);
    ids("attention_heads", block.head_ids);
    const auto scalar_float = [&](const std::string& name, double value) {
        NpyArray array = make_array(prefix + name, "<f8", {});
        array.owned.resize(sizeof(double));
        std::memcpy(array.owned.data(), &value, sizeof(double));
        arrays.push_back(std::move(array));
    };
    if (block.capture.top_k > 0)
        arrays.push_back(scalar_int(prefix + "attention_top_k", block.capture.top_k));
    if (block.capture.top_mass > 0) scalar_float("attention_top_mass", block.capture.top_mass);
    if (fp16) {  // binary16 rounding: half an ulp, relative for normal values
        scalar_float("attention_fp16_relative_error", std::ldexp(1.0, -11));
        scalar_float("attention_fp16_absolute_error", std::ldexp(1.0, -25));
    }
}

// Hugging Face's word_ids() per token (-1: special), when the tokenizer gave them.
void append_word_ids(const std::string& prefix, const TokenSequence& sequence,
                     std::vector<NpyArray>& arrays) {
    std::vector<int64_t> word_ids;
    bool any = false;
    for (const TraceToken& token : sequence.tokens) {
        word_ids.push_back(token.word_id);
        any = any || token.word_id >= 0;
    }
    if (any) arrays.push_back(int64_array(prefix + "word_ids", word_ids));
}

std::vector<NpyArray> trace_arrays(const AttentionTrace& trace,
                                   const std::vector<ExtraArray>& extra = {}) {
    std::vector<NpyArray> arrays;
    const bool single_stack = trace.sequences.size() == 1;
    for (const TokenSequence& sequence : trace.sequences) {
        const std::string prefix = single_stack ? "" : sequence.name + "_";
        std::vector<int64_t> ids, type_ids;
        for (const TraceToken& token : sequence.tokens) {
            ids.push_back(token.id);
            type_ids.push_back(token.type_id);
        }
        arrays.push_back(int64_array(prefix + "input_ids", ids));
        arrays.push_back(int64_array(prefix + "token_type_ids", type_ids));
        arrays.push_back(unicode_array(prefix + "tokens", sequence.tokens));
        append_word_ids(prefix, sequence, arrays);
    }
    for (const AttentionBlock& block : trace.blocks) {
        const std::string prefix = trace.blocks.size() == 1 ? "" : block.name + "_";
        const int64_t layers = block.n_layers, heads = block.n_heads;
        const int64_t queries = block.n_queries, keys = block.n_keys;
        append_attention(block, prefix, arrays);
        if (block.has_queries_keys()) {
            const int64_t dim = block.head_dim;
            arrays.push_back(
                float_array(prefix + "queries", block.queries, {layers, heads, queries, dim}));
            arrays.push_back(float_array(prefix + "keys", block.keys, {layers, heads, keys, dim}));
            // raw score = score_scale[layer] * q.k (GPT-2's inverse layer scale differs by layer)
            if (!block.layer_score_scales.empty() &&
                block.layer_score_scales.size() != static_cast<size_t>(layers))
                throw Error("cannot export " + prefix +
                            "score_scale: " + std::to_string(block.layer_score_scales.size()) +
                            " scales for " + std::to_string(layers) + " layers");
            std::vector<float> scales;
            for (int layer = 0; layer < block.n_layers; ++layer)
                scales.push_back(block.layer_score_scale(layer));
            NpyArray scale_array = float_array(prefix + "score_scale", scales, {layers});
            const auto* bytes = reinterpret_cast<const uint8_t*>(scales.data());
            scale_array.owned.assign(bytes,
                                     bytes + scales.size() * sizeof(float));  // outlives scales
            arrays.push_back(std::move(scale_array));
        }
        if (block.has_score_bias())
            arrays.push_back(float_array(prefix + "score_bias", block.score_bias,
                                         {block.score_bias_layers, heads, queries, keys}));
    }
    std::vector<bool> sequence_has_states(trace.sequences.size(), false);
    for (const HiddenStates& states : trace.hidden_states) {
        if (states.sequence < 0 || static_cast<size_t>(states.sequence) >= trace.sequences.size())
            throw Error("cannot export hidden states of sequence " +
                        std::to_string(states.sequence) + ": the trace has " +
                        std::to_string(trace.sequences.size()));
        // two arrays of one name: numpy would silently read only one of them
        if (sequence_has_states[static_cast<size_t>(states.sequence)])
            throw Error("cannot export hidden states: the trace has two for sequence " +
                        std::to_string(states.sequence));
        sequence_has_states[static_cast<size_t>(states.sequence)] = true;
        const std::string prefix =
            single_stack ? "" : trace.sequences[static_cast<size_t>(states.sequence)].name + "_";
        arrays.push_back(float_array(prefix + "hidden_states", states.values,
                                     {states.n_states, states.n_tokens, states.hidden_size}));
    }
    // What analysis adds (ExtraArray): after the trace's own, so a clash with
    // one of them is caught below.
    for (const ExtraArray& array : extra) {
        if (!array.strings.empty()) {
            arrays.push_back(string_array(array.name, array.strings, false));
            continue;
        }
        std::vector<size_t> shape;
        size_t count = 1;
        bool fits = true;
        for (int64_t dim : array.shape) {
            fits = fits && dim >= 0 &&
                   !__builtin_mul_overflow(count, static_cast<size_t>(dim), &count);
            shape.push_back(static_cast<size_t>(std::max<int64_t>(dim, 0)));
        }
        if (!fits || count != array.values.size())
            throw Error("cannot export " + array.name + ": its shape does not match its " +
                        std::to_string(array.values.size()) + " values");
        NpyArray npy = make_array(array.name, "<f4", std::move(shape));
        npy.data = array.values.data();
        npy.data_size = array.values.size() * sizeof(float);
        arrays.push_back(std::move(npy));
    }
    // Two arrays of one name: numpy would silently read only one of them. A
    // zip entry's name has 16 bits for its length.
    std::set<std::string> names;
    for (const NpyArray& array : arrays) {
        if (!names.insert(array.name).second)
            throw Error("cannot export: two arrays are named " + array.name);
        if (array.name.size() + 4 > 0xFFFF)
            throw Error("cannot export an array whose name is " +
                        std::to_string(array.name.size()) + " bytes long");
    }
    append_provenance(trace, arrays);
    for (NpyArray& array : arrays) {
        if (!array.owned.empty() || array.data == nullptr) {
            array.data = array.owned.data();
            array.data_size = array.owned.size();
        }
    }
    return arrays;
}

// A little-endian byte writer with the stream's error handling in one place.
class ZipWriter {
public:
    // `name` says where the bytes go, for messages: a file name, or "the .npz".
    ZipWriter(std::ostream& out, std::string name) : out_(out), name_(std::move(name)) {}
    void bytes(const void* data, size_t size) {
        if (size && !out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(size)))
            throw Error("cannot write " + name_ + ": " + std::strerror(errno));
        offset_ += size;
    }
    void u16(uint16_t value) { little_endian(value, 2); }
    void u32(uint32_t value) { little_endian(value, 4); }
    void u64(uint64_t value) { little_endian(value, 8); }
    uint64_t offset() const { return offset_; }
    void flush() {
        if (!out_.flush()) throw Error("cannot write " + name_ + ": " + std::strerror(errno));
    }

private:
    void little_endian(uint64_t value, int size) {
        uint8_t buffer[8];
        for (int i = 0; i < size; ++i) buffer[i] = static_cast<uint8_t>(value >> (8 * i));
        bytes(buffer, static_cast<size_t>(size));
    }
    std::ostream& out_;
    std::string name_;
    uint64_t offset_ = 0;
};

constexpr uint32_t kZip32Limit = 0xFFFFFFFFu;  // a 32-bit field holding this means "see zip64"

struct Entry {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0;
    uint64_t offset = 0;
};

uint32_t crc_of(uint32_t crc, const void* data, size_t size) {
    const auto* bytes = static_cast<const Bytef*>(data);
    while (size > 0) {  // zlib's crc32 takes a uInt length
        const auto chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
        crc = static_cast<uint32_t>(crc32(crc, bytes, chunk));
        bytes += chunk;
        size -= chunk;
    }
    return crc;
}

// The zip of .npy files, written front to back (no seeking, so a pipe will do).
void write_zip(const std::vector<NpyArray>& arrays, ZipWriter& zip, uint64_t zip64_from) {
    std::vector<Entry> entries;
    for (const NpyArray& array : arrays) {
        const std::string header = npy_header(array);
        Entry entry{array.name + ".npy"};
        entry.crc = crc_of(crc_of(0, header.data(), header.size()), array.data, array.data_size);
        entry.size = header.size() + array.data_size;
        entry.offset = zip.offset();
        const bool zip64 = entry.size >= zip64_from;
        // Local file header: stored (method 0), no data descriptor.
        zip.u32(0x04034b50);
        zip.u16(zip64 ? 45 : 20);
        zip.u16(0);
        zip.u16(0);
        zip.u16(0);     // time
        zip.u16(0x21);  // date: 1980-01-01
        zip.u32(entry.crc);
        zip.u32(zip64 ? kZip32Limit : static_cast<uint32_t>(entry.size));
        zip.u32(zip64 ? kZip32Limit : static_cast<uint32_t>(entry.size));
        zip.u16(static_cast<uint16_t>(entry.name.size()));
        zip.u16(zip64 ? 20 : 0);
        zip.bytes(entry.name.data(), entry.name.size());
        if (zip64) {
            zip.u16(0x0001);
            zip.u16(16);
            zip.u64(entry.size);
            zip.u64(entry.size);
        }
        zip.bytes(header.data(), header.size());
        zip.bytes(array.data, array.data_size);
        entries.push_back(entry);
    }
    const uint64_t directory_offset = zip.offset();
    for (const Entry& entry : entries) {
        const bool big_size = entry.size >= zip64_from;
        const bool big_offset = entry.offset >= zip64_from;
        const uint16_t extra = (big_size ? 16 : 0) + (big_offset ? 8 : 0);
        zip.u32(0x02014b50);
        zip.u16(45);  // made by
        zip.u16(extra ? 45 : 20);
        zip.u16(0);
        zip.u16(0);
        zip.u16(0);
        zip.u16(0x21);
        zip.u32(entry.crc);
        zip.u32(big_size ? kZip32Limit : static_cast<uint32_t>(entry.size));
        zip.u32(big_size ? kZip32Limit : static_cast<uint32_t>(entry.size));
        zip.u16(static_cast<uint16_t>(entry.name.size()));
        zip.u16(extra ? extra + 4 : 0);
        zip.u16(0);  // comment
        zip.u16(0);  // disk
        zip.u16(0);  // internal attributes
        zip.u32(0);  // external attributes
        zip.u32(big_offset ? kZip32Limit : static_cast<uint32_t>(entry.offset));
        zip.bytes(entry.name.data(), entry.name.size());
        if (extra) {
            zip.u16(0x0001);
            zip.u16(extra);
            if (big_size) {
                zip.u64(entry.size);
                zip.u64(entry.size);
            }
            if (big_offset) zip.u64(entry.offset);
        }
    }
    const uint64_t directory_end = zip.offset();
    const uint64_t directory_size = directory_end - directory_offset;
    const bool zip64 = directory_offset >= zip64_from || entries.size() >= 0xFFFF;
    if (zip64) {
        zip.u32(0x06064b50);  // zip64 end of central directory record
        zip.u64(44);
        zip.u16(45);
        zip.u16(45);
        zip.u32(0);
        zip.u32(0);
        zip.u64(entries.size());
        zip.u64(entries.size());
        zip.u64(directory_size);
        zip.u64(directory_offset);
        zip.u32(0x07064b50);  // its locator
        zip.u32(0);
        zip.u64(directory_end);
        zip.u32(1);
    }
    zip.u32(0x06054b50);
    zip.u16(0);
    zip.u16(0);
    zip.u16(zip64 ? 0xFFFF : static_cast<uint16_t>(entries.size()));
    zip.u16(zip64 ? 0xFFFF : static_cast<uint16_t>(entries.size()));
    zip.u32(zip64 ? kZip32Limit : static_cast<uint32_t>(directory_size));
    zip.u32(zip64 ? kZip32Limit : static_cast<uint32_t>(directory_offset));
    zip.u16(0);
    zip.flush();
}

}  // namespace

void write_npz(const AttentionTrace& trace, const std::filesystem::path& path) {
    npz::write_npz(trace, path, kZip32Limit);
}

void write_npz(const AttentionTrace& trace, std::ostream& out) {
    npz::write_npz(trace, out, kZip32Limit);
}

void write_npz(const AttentionTrace& trace, const std::vector<ExtraArray>& extra,
               std::ostream& out) {
    npz::write_npz(trace, extra, out, kZip32Limit);
}

namespace npz {

void write_npz(const AttentionTrace& trace, const std::filesystem::path& path,
               uint64_t zip64_from) {
    const std::vector<NpyArray> arrays = trace_arrays(trace);  // a bad trace throws first
    OutputFile file(path);  // whole or absent: a failed export leaves the old file
    ZipWriter zip(file.stream(), path.string());
    write_zip(arrays, zip, zip64_from);
    file.commit();
}

void write_npz(const AttentionTrace& trace, std::ostream& out, uint64_t zip64_from) {
    write_npz(trace, {}, out, zip64_from);
}

void write_npz(const AttentionTrace& trace, const std::vector<ExtraArray>& extra, std::ostream& out,
               uint64_t zip64_from) {
    const std::vector<NpyArray> arrays = trace_arrays(trace, extra);
    ZipWriter zip(out, "the .npz");
    write_zip(arrays, zip, zip64_from);
}

}  // namespace npz

}  // namespace attnviz
