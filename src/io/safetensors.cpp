#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"

namespace attnviz::io {

namespace {

DType parse_dtype(const std::string& text, const std::string& file, const std::string& tensor) {
    static const std::pair<const char*, DType> kNames[] = {
        {"F64", DType::f64}, {"F32", DType::f32},      {"F16", DType::f16}, {"BF16", DType::bf16},
        {"I64", DType::i64}, {"I32", DType::i32},      {"I16", DType::i16}, {"I8", DType::i8},
        {"U8", DType::u8},   {"BOOL", DType::boolean},
    };
    for (const auto& [name, dtype] : kNames)
        if (text == name) return dtype;
    throw Error(file + ": tensor " + tensor + " has unsupported dtype \"" + text + "\"");
}

// a * b, or an Error when it overflows size_t.
size_t checked_multiply(size_t a, size_t b, const std::string& file, const std::string& tensor) {
    if (b != 0 && a > std::numeric_limits<size_t>::max() / b)
        throw Error(file + ": tensor " + tensor + " has a shape whose size overflows");
    return a * b;
}

}  // namespace

std::vector<TensorView> parse_safetensors(const uint8_t* bytes, size_t size,
                                          const std::string& file) {
    if (size < 8)
        throw Error(file + ": " + std::to_string(size) +
                    " bytes is too short for a safetensors file (8-byte header length)");
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | bytes[i];
    if (header_length > size - 8)
        throw Error(file + ": header length " + std::to_string(header_length) +
                    " runs past the end of the file (" + std::to_string(size) + " bytes)");
    const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
    nlohmann::json header;
    // The format forbids two tensors of one name; a JSON object would keep only the last.
    std::unordered_set<std::string> names;
    const auto refuse_duplicates = [&](int depth, nlohmann::json::parse_event_t event,
                                       nlohmann::json& parsed) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
            !names.insert(parsed.get<std::string>()).second)
            throw Error(file + ": tensor " + parsed.get<std::string>() +
                        " appears twice in the header");
        return true;
    };
    try {
        header =
            nlohmann::json::parse(header_begin, header_begin + header_length, refuse_duplicates);
    } catch (const nlohmann::json::exception& e) {
        throw Error(file + ": invalid JSON header: " + e.what());
    }
    if (!header.is_object()) throw Error(file + ": the header is not a JSON object");

    const uint8_t* data = bytes + 8 + header_length;
    const size_t data_size = size - 8 - header_length;
    std::vector<TensorView> tensors;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;
        const auto dtype_it = entry.is_object() ? entry.find("dtype") : entry.end();
        const auto shape_it = entry.is_object() ? entry.find("shape") : entry.end();
        const auto offsets_it = entry.is_object() ? entry.find("data_offsets") : entry.end();
        if (!entry.is_object() || dtype_it == entry.end() || !dtype_it->is_string() ||
            shape_it == entry.end() || !shape_it->is_array() || offsets_it == entry.end() ||
            !offsets_it->is_array() || offsets_it->size() != 2)
            throw Error(file + ": tensor " + name +
                        " needs \"dtype\", \"shape\" and two \"data_offsets\"");
        TensorView tensor;
        tensor.name = name;
        tensor.file = file;
        tensor.dtype = parse_dtype(dtype_it->get<std::string>(), file, name);
        size_t numel = 1;
        for (const auto& dim : *shape_it) {
            if (!dim.is_number_unsigned())
                throw Error(file + ": tensor " + name + " has a shape entry that is not a size");
            const uint64_t value = dim.get<uint64_t>();
            if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                throw Error(file + ": tensor " + name + " has a dimension too large");
            tensor.shape.push_back(static_cast<int64_t>(value));
            numel = checked_multiply(numel, value, file, name);
        }
        const auto& begin_json = (*offsets_it)[0];
        const auto& end_json = (*offsets_it)[1];
        if (!begin_json.is_number_unsigned() || !end_json.is_number_unsigned())
            throw Error(file + ": tensor " + name + " has data_offsets that are not byte offsets");
        const uint64_t begin = begin_json.get<uint64_t>();
        const uint64_t end = end_json.get<uint64_t>();
        if (begin > end || end > data_size)
            throw Error(file + ": tensor " + name + " has data_offsets [" + std::to_string(begin) +
                        ", " + std::to_string(end) + ") outside the data section (" +
                        std::to_string(data_size) + " bytes)");
        const size_t expected = checked_multiply(numel, dtype_size(tensor.dtype), file, name);
        if (end - begin != expected)
            throw Error(file + ": tensor " + name + " has " + std::to_string(end - begin) +
                        " bytes of data but " + std::string(dtype_name(tensor.dtype)) + " " +
                        shape_string(tensor.shape) + " needs " + std::to_string(expected));
        tensor.data = data + begin;
        tensor.n_bytes = expected;
        tensors.push_back(std::move(tensor));
    }

    // Two tensors may not share bytes: sort by start and compare neighbours.
    std::vector<const TensorView*> by_offset;
    for (const auto& tensor : tensors)
        if (tensor.n_bytes > 0) by_offset.push_back(&tensor);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const TensorView& previous = *by_offset[i - 1];
        const TensorView& current = *by_offset[i];
        if (current.data < previous.data + previous.n_bytes)
            throw Error(file + ": tensor " + current.name + "'s data overlaps tensor " +
                        previous.name + "'s (data_offsets " + std::to_string(current.data - data) +
                        " < " + std::to_string(previous.data + previous.n_bytes - data) + ")");
    }
    return tensors;
}

}  // namespace attnviz::io
