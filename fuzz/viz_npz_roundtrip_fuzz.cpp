// libFuzzer target: the .npz writer, round trip. The input becomes a trace:
// sequences with any names and token texts (valid UTF-8 or not), attention
// blocks whose shapes may or may not match their values, queries, keys,
// score scales and biases, hidden states, and the size from which zip64
// records are written. The writer must either refuse it with an
// attnviz::Error, or write an archive that a reader written here, from the zip
// and .npy specifications and independent of the writer, reads back exactly:
// every entry where the central directory says, CRC-32 right, and each array
// with the dtype, shape and bytes of the trace.
#include <fuzzer/FuzzedDataProvider.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "attnviz/files.h"
#include "attnviz/trace.h"
#include "viz/npz.h"

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "npz round trip: %s\n", what.c_str());
    std::abort();
}
void check(bool condition, const std::string& what) {
    if (!condition) fail(what);
}

uint64_t little_endian(const std::string& bytes, size_t at, int size) {
    check(at + static_cast<size_t>(size) <= bytes.size(),
          "read past the end at " + std::to_string(at));
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; --i)
        value = (value << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
    return value;
}

// One entry of the archive, read through the central directory and checked
// against its local header.
struct ReadEntry {
    std::string name;
    std::string data;
};

std::vector<ReadEntry> read_zip(const std::string& zip) {
    check(zip.size() >= 22, "shorter than an end record");
    const size_t end = zip.size() - 22;  // no comment is written
    check(little_endian(zip, end, 4) == 0x06054b50, "no end of central directory record");
    uint64_t count = little_endian(zip, end + 10, 2);
    uint64_t directory_size = little_endian(zip, end + 12, 4);
    uint64_t directory_offset = little_endian(zip, end + 16, 4);
    uint64_t directory_end = end;
    if (count == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
        check(end >= 20 + 56, "zip64 fields without room for zip64 records");
        const size_t locator = end - 20;
        check(little_endian(zip, locator, 4) == 0x07064b50, "no zip64 locator");
        const uint64_t record = little_endian(zip, locator + 8, 8);
        check(record == locator - 56, "zip64 record not before its locator");
        check(little_endian(zip, record, 4) == 0x06064b50, "no zip64 end record");
        count = little_endian(zip, record + 32, 8);
        directory_size = little_endian(zip, record + 40, 8);
        directory_offset = little_endian(zip, record + 48, 8);
        directory_end = record;
    }
    check(directory_offset + directory_size == directory_end, "directory size and offset disagree");
    std::vector<ReadEntry> entries;
    uint64_t at = directory_offset;
    uint64_t data_end = 0;  // entries follow one another from offset 0
    for (uint64_t i = 0; i < count; ++i) {
        check(little_endian(zip, at, 4) == 0x02014b50, "no central header " + std::to_string(i));
        const uint64_t crc = little_endian(zip, at + 16, 4);
        uint64_t compressed = little_endian(zip, at + 20, 4);
        uint64_t size = little_endian(zip, at + 24, 4);
        const uint64_t name_length = little_endian(zip, at + 28, 2);
        const uint64_t extra_length = little_endian(zip, at + 30, 2);
        const uint64_t comment_length = little_endian(zip, at + 32, 2);
        uint64_t offset = little_endian(zip, at + 42, 4);
        check(little_endian(zip, at + 10, 2) == 0, "not stored");
        check(at + 46 + name_length <= zip.size(), "name past the end");
        const std::string name = zip.substr(at + 46, name_length);
        uint64_t extra = at + 46 + name_length;
        const uint64_t extra_end = extra + extra_length;
        while (extra + 4 <= extra_end) {  // the zip64 field, values in order, only those saturated
            const uint64_t tag = little_endian(zip, extra, 2);
            const uint64_t length = little_endian(zip, extra + 2, 2);
            uint64_t field = extra + 4;
            if (tag == 1) {
                if (size == 0xFFFFFFFF) size = little_endian(zip, field, 8), field += 8;
                if (compressed == 0xFFFFFFFF) compressed = little_endian(zip, field, 8), field += 8;
                if (offset == 0xFFFFFFFF) offset = little_endian(zip, field, 8), field += 8;
                check(field == extra + 4 + length, "zip64 field of the wrong length");
            }
            extra += 4 + length;
        }
        check(extra == extra_end, "extra fields overrun");
        check(size == compressed, "stored sizes differ");
        check(offset == data_end, "entry " + name + " not where the last one ended");
        // The local header repeats the name and the CRC.
        check(little_endian(zip, offset, 4) == 0x04034b50, "no local header for " + name);
        const uint64_t local_name = little_endian(zip, offset + 26, 2);
        const uint64_t local_extra = little_endian(zip, offset + 28, 2);
        check(local_name == name_length && zip.substr(offset + 30, local_name) == name,
              "local name differs for " + name);
        check(little_endian(zip, offset + 14, 4) == crc, "local CRC differs for " + name);
        const uint64_t data = offset + 30 + local_name + local_extra;
        check(data + size <= directory_offset, "data of " + name + " runs into the directory");
        ReadEntry entry{name, zip.substr(data, size)};
        const auto computed =
            static_cast<uint64_t>(crc32(0, reinterpret_cast<const Bytef*>(entry.data.data()),
                                        static_cast<uInt>(entry.data.size())));
        check(computed == crc, "CRC-32 of " + name + " is wrong");
        entries.push_back(std::move(entry));
        data_end = data + size;
        at += 46 + name_length + extra_length + comment_length;
    }
    check(at == directory_end, "directory has trailing bytes");
    check(data_end == directory_offset, "bytes between the last entry and the directory");
    return entries;
}

// An array as the trace says it should come back.
struct Expected {
    std::string name;
    std::string descr;
    std::vector<size_t> shape;
    std::string bytes;
};

// .npy v1.0: magic, version, header length, the dict padded to 64 bytes.
void check_npy(const ReadEntry& entry, const Expected& expected) {
    const std::string& npy = entry.data;
    check(npy.size() >= 10 && npy.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0,
          entry.name + ": no .npy v1.0 magic");
    const size_t header_length = little_endian(npy, 8, 2);
    check((10 + header_length) % 64 == 0, entry.name + ": data not 64-byte aligned");
    check(10 + header_length <= npy.size(), entry.name + ": header past the end");
    std::string shape = "(";
    for (size_t i = 0; i < expected.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(expected.shape[i]);
    shape += expected.shape.size() == 1 ? ",)" : ")";
    const std::string dict =
        "{'descr': '" + expected.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    // The shape must account for the bytes exactly (no wrapped product).
    size_t item = expected.descr == "<i8" ? 8 : 4;
    if (expected.descr.starts_with("<U")) item *= std::stoull(expected.descr.substr(2));
    size_t count = item;
    for (size_t dim : expected.shape)
        check(!__builtin_mul_overflow(count, dim, &count), entry.name + ": shape overflows");
    check(count == expected.bytes.size(), entry.name + ": shape " + shape + " holds " +
                                              std::to_string(count) + " bytes, the data " +
                                              std::to_string(expected.bytes.size()));
    const std::string header = npy.substr(10, header_length);
    check(header.compare(0, dict.size(), dict) == 0, entry.name + ": header " + header);
    check(header.back() == '\n' && header.find_first_not_of(' ', dict.size()) == header.size() - 1,
          entry.name + ": header not padded with spaces and a newline");
    check(npy.substr(10 + header_length) == expected.bytes, entry.name + ": data differs");
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// UTF-8 to UTF-32 for valid text (the only kind whose round trip is checked).
std::vector<char32_t> utf32(const std::string& text) {
    std::vector<char32_t> points;
    for (size_t i = 0; i < text.size();) {
        const auto byte = static_cast<uint8_t>(text[i]);
        const size_t length = byte < 0x80 ? 1 : byte < 0xE0 ? 2 : byte < 0xF0 ? 3 : 4;
        char32_t point = length == 1 ? byte : byte & (0xFF >> (length + 1));
        for (size_t k = 1; k < length; ++k) point = (point << 6) | (text[i + k] & 0x3F);
        points.push_back(point);
        i += length;
    }
    return points;
}

std::vector<float> floats(FuzzedDataProvider& input, size_t count) {
    std::vector<float> values(count);
    for (float& value : values) {
        const uint32_t bits = input.ConsumeIntegral<uint32_t>();
        std::memcpy(&value, &bits, sizeof value);  // any bits: NaN, Inf, denormals
    }
    return values;
}

// A dimension: usually right, sometimes off by one or negative.
int dimension(FuzzedDataProvider& input, int right) {
    switch (input.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
            return right + 1;
        case 1:
            return -right - 1;
        default:
            return right;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider input(data, size);
    attnviz::AttentionTrace trace;
    const int n_sequences = input.ConsumeIntegralInRange<int>(1, 2);
    for (int s = 0; s < n_sequences; ++s) {
        attnviz::TokenSequence sequence;
        sequence.name = input.ConsumeRandomLengthString(16);
        const int n_tokens = input.ConsumeIntegralInRange<int>(0, 6);
        for (int t = 0; t < n_tokens; ++t) {
            attnviz::TraceToken token;
            token.text = input.ConsumeRandomLengthString(12);
            token.id = input.ConsumeIntegral<int32_t>();
            token.type_id = input.ConsumeIntegral<int32_t>();
            sequence.tokens.push_back(std::move(token));
        }
        trace.sequences.push_back(std::move(sequence));
    }
    const int n_blocks = input.ConsumeIntegralInRange<int>(1, 2);
    for (int b = 0; b < n_blocks; ++b) {
        attnviz::AttentionBlock block;
        block.name = input.ConsumeRandomLengthString(16);
        const int queries = static_cast<int>(trace.sequences.front().tokens.size());
        const int keys = static_cast<int>(trace.sequences.back().tokens.size());
        const int layers = input.ConsumeIntegralInRange<int>(0, 3),
                  heads = input.ConsumeIntegralInRange<int>(0, 3);
        block.n_layers = dimension(input, layers);
        block.n_heads = dimension(input, heads);
        block.n_queries = dimension(input, queries);
        block.n_keys = dimension(input, keys);
        block.probs = floats(input, static_cast<size_t>(layers * heads * queries * keys));
        if (input.ConsumeBool()) {
            const int head_dim = input.ConsumeIntegralInRange<int>(1, 4);
            block.head_dim = dimension(input, head_dim);
            block.queries = floats(input, static_cast<size_t>(layers * heads * queries * head_dim));
            block.keys = floats(input, static_cast<size_t>(layers * heads * keys * head_dim));
            block.score_scale = floats(input, 1)[0];
            if (input.ConsumeBool())
                block.layer_score_scales =
                    floats(input, static_cast<size_t>(dimension(input, layers) & 7));
        }
        if (input.ConsumeBool()) {
            const int bias_layers = input.ConsumeIntegralInRange<int>(1, 2);
            block.score_bias_layers = dimension(input, bias_layers);
            block.score_bias =
                floats(input, static_cast<size_t>(bias_layers * heads * queries * keys));
        }
        trace.blocks.push_back(std::move(block));
    }
    const int n_hidden = input.ConsumeIntegralInRange<int>(0, 2);
    for (int h = 0; h < n_hidden; ++h) {
        attnviz::HiddenStates states;
        states.sequence = input.ConsumeIntegralInRange<int>(-1, 2);
        const int count = input.ConsumeIntegralInRange<int>(0, 3),
                  hidden = input.ConsumeIntegralInRange<int>(0, 3);
        const int tokens = static_cast<int>(
            trace.sequences[static_cast<size_t>(h) % trace.sequences.size()].tokens.size());
        states.n_states = dimension(input, count);
        states.n_tokens = dimension(input, tokens);
        states.hidden_size = dimension(input, hidden);
        states.values = floats(input, static_cast<size_t>(count * tokens * hidden));
        trace.hidden_states.push_back(std::move(states));
    }
    const uint64_t zip64_from =
        input.ConsumeBool() ? 0xFFFFFFFFu : input.ConsumeIntegralInRange<uint64_t>(0, 400);

    std::ostringstream out;
    try {
        attnviz::npz::write_npz(trace, out, zip64_from);
    } catch (const attnviz::Error&) {
        return 0;  // refused, before a byte was written
    }
    const std::vector<ReadEntry> entries = read_zip(out.str());

    // What the archive must hold, from the trace and docs/cli.md's naming rules.
    std::vector<Expected> expected;
    const bool single_stack = trace.sequences.size() == 1;
    for (const attnviz::TokenSequence& sequence : trace.sequences) {
        const std::string prefix = single_stack ? "" : sequence.name + "_";
        std::vector<int64_t> ids, type_ids;
        size_t width = 1;
        bool all_valid = true;
        for (const attnviz::TraceToken& token : sequence.tokens) {
            ids.push_back(token.id);
            type_ids.push_back(token.type_id);
            all_valid &= attnviz::valid_utf8_prefix(token.text) == token.text.size();
            width = std::max(width, utf32(token.text).size());
        }
        const size_t n = sequence.tokens.size();
        expected.push_back({prefix + "input_ids", "<i8", {n}, bytes_of(ids)});
        expected.push_back({prefix + "token_type_ids", "<i8", {n}, bytes_of(type_ids)});
        Expected tokens{prefix + "tokens", "<U" + std::to_string(width), {n}, ""};
        if (all_valid) {  // UTF-32LE, zero-padded to the widest token
            for (const attnviz::TraceToken& token : sequence.tokens) {
                std::vector<char32_t> points = utf32(token.text);
                points.resize(width, 0);
                tokens.bytes += bytes_of(points);
            }
        }
        expected.push_back(std::move(tokens));
        if (!all_valid) expected.back().descr.clear();  // width and bytes unchecked
    }
    for (const attnviz::AttentionBlock& block : trace.blocks) {
        const std::string prefix = trace.blocks.size() == 1 ? "" : block.name + "_";
        const auto dims = [](std::initializer_list<int> values) {
            std::vector<size_t> shape;
            for (int value : values) shape.push_back(static_cast<size_t>(value));
            return shape;
        };
        expected.push_back({prefix + "attentions", "<f4",
                            dims({block.n_layers, block.n_heads, block.n_queries, block.n_keys}),
                            bytes_of(block.probs)});
        if (block.has_queries_keys()) {
            expected.push_back(
                {prefix + "queries", "<f4",
                 dims({block.n_layers, block.n_heads, block.n_queries, block.head_dim}),
                 bytes_of(block.queries)});
            expected.push_back({prefix + "keys", "<f4",
                                dims({block.n_layers, block.n_heads, block.n_keys, block.head_dim}),
                                bytes_of(block.keys)});
            std::vector<float> scales = block.layer_score_scales;
            if (scales.empty())
                scales.assign(static_cast<size_t>(block.n_layers), block.score_scale);
            expected.push_back(
                {prefix + "score_scale", "<f4", dims({block.n_layers}), bytes_of(scales)});
        }
        if (block.has_score_bias())
            expected.push_back(
                {prefix + "score_bias", "<f4",
                 dims({block.score_bias_layers, block.n_heads, block.n_queries, block.n_keys}),
                 bytes_of(block.score_bias)});
    }
    for (const attnviz::HiddenStates& states : trace.hidden_states) {
        const std::string prefix =
            single_stack ? "" : trace.sequences[static_cast<size_t>(states.sequence)].name + "_";
        expected.push_back(
            {prefix + "hidden_states",
             "<f4",
             {static_cast<size_t>(states.n_states), static_cast<size_t>(states.n_tokens),
              static_cast<size_t>(states.hidden_size)},
             bytes_of(states.values)});
    }

    // Provenance, last (names only: their contents are strings the trace holds).
    expected.push_back({"model_id", "", {}, ""});
    if (!trace.model_revision.empty()) expected.push_back({"model_revision", "", {}, ""});
    expected.push_back({"architecture", "", {}, ""});
    expected.push_back({"attnviz_version", "", {}, ""});
    for (const attnviz::TokenSequence& sequence : trace.sequences) {
        const std::string prefix = single_stack ? "" : sequence.name + "_";
        if (!sequence.texts.empty()) expected.push_back({prefix + "texts", "", {}, ""});
        const auto second =
            std::find_if(sequence.tokens.begin(), sequence.tokens.end(),
                         [](const attnviz::TraceToken& token) { return token.segment == 1; });
        if (second != sequence.tokens.end() && second != sequence.tokens.begin())
            expected.push_back({prefix + "sentence_b_start", "", {}, ""});
    }

    check(entries.size() == expected.size(), "wrote " + std::to_string(entries.size()) +
                                                 " arrays, the trace has " +
                                                 std::to_string(expected.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        check(entries[i].name == expected[i].name + ".npy",
              "entry " + std::to_string(i) + " is " + entries[i].name);
        for (size_t j = 0; j < i; ++j)
            check(entries[j].name != entries[i].name, "two entries named " + entries[i].name);
        if (!expected[i].descr.empty()) check_npy(entries[i], expected[i]);
    }
    return 0;
}
