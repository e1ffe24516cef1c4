// Builds PyTorch checkpoints byte by byte for tests, hostile ones included: a
// zip writer whose headers may lie about sizes, raw deflate, and the pickle of
// a state dict as torch.save writes it (protocol 2, no memo). Shared by the io
// tests and the CLI tests.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace attnviz::test {

inline std::string little_endian(uint64_t value, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
    return out;
}

// Raw deflate (no zlib header), as zip stores it.
inline std::string deflate_raw(const std::string& bytes) {
    z_stream stream{};
    if (deflateInit2(&stream, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out(deflateBound(&stream, bytes.size()), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    stream.avail_in = static_cast<uInt>(bytes.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    const int result = deflate(&stream, Z_FINISH);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    if (result != Z_STREAM_END) throw std::runtime_error("deflate failed");
    return out;
}

struct ZipEntrySpec {
    // `declared_size`: the uncompressed size the headers declare; by default
    // data's size, right only when stored. Deflated entries must say theirs.
    ZipEntrySpec(std::string entry_name, std::string entry_data, bool is_deflated = false,
                 std::optional<uint32_t> size = std::nullopt)
        : name(std::move(entry_name)),
          data(std::move(entry_data)),
          deflated(is_deflated),
          declared_size(size) {}

    std::string name;
    std::string data;  // as stored: already deflated when `deflated`
    bool deflated;
    std::optional<uint32_t> declared_size;
};

// A zip archive (no zip64) whose headers say what the specs say, true or not.
inline std::string make_zip(const std::vector<ZipEntrySpec>& entries) {
    std::string out, directory;
    for (const ZipEntrySpec& entry : entries) {
        const uint32_t size =
            entry.declared_size ? *entry.declared_size : static_cast<uint32_t>(entry.data.size());
        const uint32_t crc =
            static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(entry.data.data()),
                                        static_cast<uInt>(entry.data.size())));
        const std::string common =
            little_endian(20, 2) + little_endian(0, 2) + little_endian(entry.deflated ? 8 : 0, 2) +
            little_endian(0, 4) +  // time, date
            little_endian(crc, 4) + little_endian(entry.data.size(), 4) + little_endian(size, 4) +
            little_endian(entry.name.size(), 2) + little_endian(0, 2);  // extra length
        directory += little_endian(0x02014b50, 4) + little_endian(20, 2) + common +
                     little_endian(0, 2) + little_endian(0, 2) + little_endian(0, 2) +
                     little_endian(0, 4) + little_endian(out.size(), 4) + entry.name;
        out += little_endian(0x04034b50, 4) + common + entry.name + entry.data;
    }
    const size_t directory_offset = out.size();
    out += directory;
    out += little_endian(0x06054b50, 4) + little_endian(0, 4) + little_endian(entries.size(), 2) +
           little_endian(entries.size(), 2) + little_endian(directory.size(), 4) +
           little_endian(directory_offset, 4) + little_endian(0, 2);
    return out;
}

struct PickleTensor {
    std::string name;
    std::string storage_key;
    std::vector<uint32_t> shape;  // contiguous; F32
    uint32_t storage_numel = 0;   // 0: the tensor's own element count
};

// The pickle opcodes of `text` as a BINUNICODE. (Built by appending: GCC 12
// misreads "literal" + std::string as an overlapping copy, -Wrestrict.)
inline std::string pickle_string(const std::string& text) {
    std::string out(1, 'X');
    out += little_endian(text.size(), 4);
    out += text;
    return out;
}

// A BININT.
inline std::string pickle_int(uint32_t value) {
    std::string out(1, 'J');
    out += little_endian(value, 4);
    return out;
}

// torch.save's data.pkl for {name: a float tensor of `shape` in storage
// `storage_key`}, spelled as torch writes it (without the memo).
inline std::string state_dict_pickle(const std::vector<PickleTensor>& tensors) {
    std::string pickle("\x80\x02", 2);
    pickle += "ccollections\nOrderedDict\n)R(";
    for (const PickleTensor& tensor : tensors) {
        uint32_t numel = 1;
        for (uint32_t dim : tensor.shape) numel *= dim;
        std::vector<uint32_t> strides(tensor.shape.size());
        uint32_t step = 1;
        for (size_t d = tensor.shape.size(); d-- > 0;) {
            strides[d] = step;
            step *= tensor.shape[d];
        }
        pickle += pickle_string(tensor.name);
        pickle += "ctorch._utils\n_rebuild_tensor_v2\n((";
        pickle += pickle_string("storage");
        pickle += "ctorch\nFloatStorage\n";
        pickle += pickle_string(tensor.storage_key);
        pickle += pickle_string("cpu");
        pickle += pickle_int(tensor.storage_numel ? tensor.storage_numel : numel);
        pickle += "tQ";
        pickle += pickle_int(0);  // storage offset
        pickle += '(';
        for (uint32_t dim : tensor.shape) pickle += pickle_int(dim);
        pickle += "t(";
        for (uint32_t stride : strides) pickle += pickle_int(stride);
        pickle += "t\x89";  // requires_grad False
        pickle += "ccollections\nOrderedDict\n)RtR";
    }
    return pickle + "u.";
}

}  // namespace attnviz::test
