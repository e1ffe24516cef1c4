// Named tensors read from checkpoint files (safetensors, sharded safetensors,
// PyTorch checkpoints, zip or legacy). Tensors are views into memory-mapped files: nothing
// here copies or converts data; src/model/weights.h does that where needed. The
// one exception, a deflated zip entry, is inflated only when read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/files.h"

namespace attnviz::io {

enum class DType { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // safetensors spelling: "F32", "BF16", ...

// Receives bytes in order: (bytes, count).
using ByteConsumer = std::function<void(const uint8_t*, size_t)>;

struct TensorView {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // n_bytes bytes inside a mapped file; null when deflated
    size_t n_bytes = 0;
    // A deflated zip entry (the compressed bytes, inside the mapped file) that
    // inflates to exactly n_bytes, instead of `data`.
    const uint8_t* deflated = nullptr;
    size_t deflated_size = 0;
    std::string file;  // the file it came from, for error messages

    size_t numel() const;
    // Hands the tensor's n_bytes bytes to `consume` in order: `data` at once, or
    // a deflated entry chunk by chunk as it inflates (each chunk a multiple of 8
    // bytes but the last), so that nothing larger than the reader's own buffer
    // is ever allocated. Throws Error naming the file and the tensor when the
    // entry does not inflate to n_bytes.
    void read(const ByteConsumer& consume) const;
};

// "[768, 3072]"
std::string shape_string(const std::vector<int64_t>& shape);

// Every tensor of a checkpoint, keyed by name, with the memory maps that back them.
class TensorSet {
public:
    // A Hugging Face model folder: model.safetensors, else
    // model.safetensors.index.json (sharded), else pytorch_model.bin
    // (or pytorch_model.bin.index.json). Throws Error naming what is missing.
    static TensorSet open_folder(const std::filesystem::path& folder);
    static TensorSet open_safetensors(const std::filesystem::path& file);
    static TensorSet open_safetensors_index(const std::filesystem::path& index_file);
    // pytorch_model.bin in either torch.save format (zip, or legacy before torch 1.6).
    static TensorSet open_torch_checkpoint(const std::filesystem::path& file);

    const TensorView* find(std::string_view name) const;
    const std::vector<TensorView>& tensors() const { return tensors_; }
    // The files read, joined by ", ", for messages.
    const std::string& description() const { return description_; }

    // Adds tensors from another set (a shard); a duplicate name is an Error.
    void merge(TensorSet&& other);

private:
    void add(TensorView tensor);

    std::vector<std::shared_ptr<const void>> owned_;  // memory maps
    std::vector<TensorView> tensors_;
    std::unordered_map<std::string, size_t> index_;
    std::string description_;
};

}  // namespace attnviz::io
