// PyTorch checkpoints (pytorch_model.bin) in both of torch.save's formats:
// - zip (torch 1.6 and later): data.pkl, the pickled state dict, and
//   data/<key>, one entry per storage;
// - legacy (before 1.6, or _use_new_zipfile_serialization=False): pickles one
//   after another (magic number, protocol version, system info, the state
//   dict, its storage keys), then each storage's element count and bytes.
// Pickles are read by a restricted unpickler that knows only the opcodes and
// globals that rebuild tensors, like torch.load(weights_only=True): it never
// executes anything, and any other global is an Error naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/tensors.h"

namespace attnviz::io {

// One entry of a zip archive, stored or deflated.
struct ZipEntry {
    std::string name;
    uint16_t method = 0;            // 0: stored, 8: deflate
    const uint8_t* data = nullptr;  // compressed bytes inside the archive
    size_t compressed_size = 0;
    size_t size = 0;
};

// Reads the central directory. Throws Error naming `file` and the entry at fault.
std::vector<ZipEntry> read_zip_directory(const uint8_t* bytes, size_t size,
                                         const std::string& file);

// A tensor as the pickle describes it: which storage, where, what shape.
struct PickledTensor {
    std::string name;  // the state dict key
    std::string storage_key;
    DType dtype = DType::f32;
    int64_t storage_offset = 0;  // in elements
    int64_t storage_numel = 0;   // the storage's size in elements (legacy files only)
    std::vector<int64_t> shape;
    std::vector<int64_t> stride;
};

// Unpickles a zip checkpoint's data.pkl, a state dict ({name: tensor}). Throws
// Error naming `file` for any opcode or global outside the tensor-rebuilding subset.
std::vector<PickledTensor> unpickle_state_dict(const uint8_t* bytes, size_t size,
                                               const std::string& file);

// The tensors of a torch zip checkpoint held in memory. Stored entries are
// viewed in place; deflated ones are inflated into buffers added to `owned`.
std::vector<TensorView> read_torch_zip(const uint8_t* bytes, size_t size, const std::string& file,
                                       std::vector<std::shared_ptr<const void>>& owned);

// The tensors of a legacy torch.save file held in memory, viewed in place.
// Every size it states is checked against the bytes that follow it.
std::vector<TensorView> read_torch_legacy(const uint8_t* bytes, size_t size,
                                          const std::string& file);

// Either format, told apart by the first byte: a legacy file opens with a
// pickle's PROTO opcode (0x80), a zip archive with "PK".
std::vector<TensorView> read_torch_checkpoint(const uint8_t* bytes, size_t size,
                                              const std::string& file,
                                              std::vector<std::shared_ptr<const void>>& owned);

}  // namespace attnviz::io
