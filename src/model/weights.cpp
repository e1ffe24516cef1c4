#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "attnviz/error.h"
#include "model/config.h"

namespace attnviz::model {

std::string expand_name(std::string_view pattern, int layer) {
    std::string name(pattern);
    const size_t at = name.find("{L}");
    if (at != std::string::npos) name.replace(at, 3, std::to_string(layer));
    return name;
}

WeightLoader::WeightLoader(const io::TensorSet& tensors, const ModelConfig& config,
                           std::vector<std::string> prefixes)
    : tensors_(tensors), prefixes_(std::move(prefixes)) {
    if (prefixes_.empty()) prefixes_.push_back("");
    dims_ = {{"hidden", config.hidden_size},         {"intermediate", config.intermediate_size},
             {"vocab", config.vocab_size},           {"positions", config.max_positions},
             {"type_vocab", config.type_vocab_size}, {"heads", config.n_heads},
             {"kv_heads", config.n_kv_heads},        {"head_dim", config.head_dim}};
}

void WeightLoader::set_dim(const std::string& name, int64_t value) { dims_[name] = value; }

std::vector<int64_t> WeightLoader::evaluate_shape(std::string_view shape,
                                                  const std::string& tensor) const {
    std::vector<int64_t> dims;
    size_t start = 0;
    while (start <= shape.size() && !shape.empty()) {
        const size_t comma = std::min(shape.find(',', start), shape.size());
        std::string_view dim = shape.substr(start, comma - start);
        int64_t value = 1;
        size_t term_start = 0;
        while (term_start <= dim.size()) {
            const size_t star = std::min(dim.find('*', term_start), dim.size());
            std::string term(dim.substr(term_start, star - term_start));
            term.erase(0, term.find_first_not_of(' '));
            term.erase(term.find_last_not_of(' ') + 1);
            if (!term.empty() && std::isdigit(static_cast<unsigned char>(term[0]))) {
                value = checked_size(tensor, {{nullptr, value}, {nullptr, std::stoll(term)}},
                                     INT64_MAX);
            } else {
                const auto it = dims_.find(term);
                if (it == dims_.end())
                    throw Error("weight table for " + tensor + " uses unknown dimension \"" + term +
                                "\"");
                value =
                    checked_size(tensor, {{nullptr, value}, {term.c_str(), it->second}}, INT64_MAX);
            }
            term_start = star + 1;
        }
        dims.push_back(value);
        start = comma + 1;
    }
    return dims;
}

const io::TensorView* WeightLoader::find(const std::string& name, std::string& found_prefix) const {
    // Legacy TensorFlow-converted checkpoints call LayerNorm's weight gamma and its bias beta.
    std::vector<std::string> spellings = {name};
    const auto ends_with = [&](std::string_view suffix) {
        return name.size() >= suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".weight")) spellings.push_back(name.substr(0, name.size() - 7) + ".gamma");
    if (ends_with(".bias")) spellings.push_back(name.substr(0, name.size() - 5) + ".beta");
    for (const std::string& prefix : prefixes_) {
        if (prefix_known_ && prefix != prefix_) continue;
        for (const std::string& spelling : spellings) {
            if (const io::TensorView* tensor = tensors_.find(prefix + spelling)) {
                found_prefix = prefix;
                return tensor;
            }
        }
    }
    return nullptr;
}

const float* WeightLoader::get_optional(std::string_view pattern, std::string_view shape,
                                        int layer) {
    const std::string name = expand_name(pattern, layer);
    if (const size_t at = pattern.find("{L}"); at != std::string_view::npos && layer >= 0) {
        int& loaded = layers_loaded_[std::string(pattern.substr(0, at))];
        loaded = std::max(loaded, layer + 1);
    }
    std::string found_prefix;
    const io::TensorView* tensor = find(name, found_prefix);
    if (!tensor) return nullptr;
    if (!prefix_known_) {  // every later name must use the prefix of the first one found
        prefix_ = found_prefix;
        prefix_known_ = true;
    }
    const std::vector<int64_t> expected = evaluate_shape(shape, name);
    if (tensor->shape != expected)
        throw Error(tensor->file + ": tensor " + tensor->name + " has shape " +
                    io::shape_string(tensor->shape) + ", but config.json implies " +
                    io::shape_string(expected) + " (" + std::string(shape) + ")");
    const float* data = as_f32(*tensor);
    sizes_[data] = tensor->numel() * sizeof(float);
    // A token embedding read in place from the map: the forward touches only
    // the rows of the tokens it runs, not the whole [vocab, hidden] table.
    if (shape.starts_with("vocab") && reinterpret_cast<const uint8_t*>(data) == tensor->data)
        mapped_lookup_tables_.insert(data);
    return data;
}

std::vector<std::string> WeightLoader::extra_layer_warnings() const {
    std::vector<std::string> warnings;
    for (const auto& [stack, loaded] : layers_loaded_) {
        // "<prefix><stack><digits>.<rest>": a tensor of layer <digits>.
        const std::string start = prefix_ + stack;
        long long layers = loaded;
        const io::TensorView* example = nullptr;
        for (const io::TensorView& tensor : tensors_.tensors()) {
            const std::string_view name = tensor.name;
            if (name.size() <= start.size() || name.compare(0, start.size(), start) != 0) continue;
            const size_t digits = name.find_first_not_of("0123456789", start.size());
            if (digits == start.size() || digits == std::string_view::npos || name[digits] != '.' ||
                digits - start.size() > 9)
                continue;
            const long long layer =
                std::stoll(std::string(name.substr(start.size(), digits - start.size())));
            if (layer + 1 > layers) {
                layers = layer + 1;
                example = &tensor;
            }
        }
        if (example)
            warnings.push_back(example->file + ": the checkpoint has " + std::to_string(layers) +
                               " layers of " + start + "{L} (e.g. " + example->name +
                               "), but config.json gives " + std::to_string(loaded) +
                               "; the extra layers are ignored");
    }
    std::sort(warnings.begin(), warnings.end());
    return warnings;
}

void WeightLoader::release(const float* data) {
    const auto size = sizes_.find(data);
    if (!data || size == sizes_.end()) return;
    // Converted copies stay: another layer may share the weight (ALBERT), and
    // they are private memory, which madvise would zero, not reload.
    for (const auto& copy : converted_)
        if (copy.get() == data) return;
    // Only whole pages inside the tensor: its neighbours may still be in use.
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size->second) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

uint64_t WeightLoader::parameter_count() const {
    uint64_t count = 0;
    for (const auto& [data, size] : sizes_) count += size / sizeof(float);
    return count;
}

uint64_t WeightLoader::resident_bytes() const {
    uint64_t bytes = converted_source_bytes_;
    for (const auto& [data, size] : sizes_)
        if (!mapped_lookup_tables_.contains(data)) bytes += size;
    return bytes;
}

const float* WeightLoader::get(std::string_view pattern, std::string_view shape, int layer) {
    if (const float* data = get_optional(pattern, shape, layer)) return data;
    const std::string name = expand_name(pattern, layer);
    std::string tried;
    for (const std::string& prefix : prefixes_) {
        if (prefix_known_ && prefix != prefix_) continue;
        tried += (tried.empty() ? "" : ", ") + prefix + name;
    }
    throw Error(tensors_.description() + ": missing tensor " + name + " (looked for " + tried +
                ")");
}

namespace {

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);  // inf, nan
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                --exponent;
            }
            bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

}  // namespace

const float* WeightLoader::as_f32(const io::TensorView& tensor) {
    if (tensor.dtype == io::DType::f32 && tensor.data &&
        reinterpret_cast<uintptr_t>(tensor.data) % alignof(float) == 0)
        return reinterpret_cast<const float*>(tensor.data);  // the memory map itself
    if (tensor.dtype != io::DType::f32 && tensor.dtype != io::DType::f16 &&
        tensor.dtype != io::DType::bf16 && tensor.dtype != io::DType::f64)
        throw Error(tensor.file + ": tensor " + tensor.name + " has dtype " +
                    std::string(io::dtype_name(tensor.dtype)) +
                    ", but a floating-point weight (F32, F16, BF16) is expected");
    const size_t n = tensor.numel();
    auto values = std::make_unique<float[]>(n > 0 ? n : 1);
    float* out = values.get();
    // Converted as the bytes arrive: a deflated tensor inflates chunk by chunk
    // straight into `values` (chunks hold whole elements).
    tensor.read([&](const uint8_t* bytes, size_t count) {
        switch (tensor.dtype) {
            case io::DType::f32:
                std::memcpy(out, bytes, count);
                out += count / 4;
                break;
            case io::DType::f16:
                for (size_t i = 0; i + 2 <= count; i += 2) {
                    uint16_t h;
                    std::memcpy(&h, bytes + i, 2);
                    *out++ = half_to_float(h);
                }
                break;
            case io::DType::bf16:
                for (size_t i = 0; i + 2 <= count; i += 2) {
                    uint16_t h;
                    std::memcpy(&h, bytes + i, 2);
                    const uint32_t bits = static_cast<uint32_t>(h) << 16;
                    std::memcpy(out++, &bits, 4);
                }
                break;
            case io::DType::f64:
                for (size_t i = 0; i + 8 <= count; i += 8) {
                    double d;
                    std::memcpy(&d, bytes + i, 8);
                    *out++ = static_cast<float>(d);
                }
                break;
            default:
                break;  // refused above
        }
    });
    converted_.push_back(std::move(values));
    converted_source_bytes_ += tensor.n_bytes;
    return converted_.back().get();
}

}  // namespace attnviz::model
