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

// The most bytes a pickle may take (data.pkl, or one pickle of a legacy file).
// torch.save writes about 100 bytes per tensor, so this is room for 80,000
// tensors, more than any checkpoint file holds; everything the unpickler builds
// is bounded by the pickle's size, which bounds its memory too.
constexpr size_t kMaxPickleBytes = size_t{8} << 20;

// Unpickles a zip checkpoint's data.pkl, a state dict ({name: tensor}). Throws
// Error naming `file` for any opcode or global outside the tensor-rebuilding
// subset, and for any structure larger than the pickle's size justifies (see
// torch_checkpoint.cpp): a small pickle cannot make it allocate much.
std::vector<PickledTensor> unpickle_state_dict(const uint8_t* bytes, size_t size,
                                               const std::string& file);

// The tensors of a torch zip checkpoint held in memory. Stored entries are
// viewed in place. A deflated entry is inflated only when its tensor is read
// (TensorView::read), and only if it is exactly that tensor's bytes; entries no
// tensor names are never inflated.
std::vector<TensorView> read_torch_zip(const uint8_t* bytes, size_t size, const std::string& file);

// Inflates a raw deflate stream (`compressed_size` bytes) that must yield
// exactly `size` bytes, handing them to `consume` in order, in chunks that are
// multiples of 64 KiB but the last; never more than `size` bytes are inflated.
// Throws Error naming `what` when the stream is invalid, short or long.
void inflate_entry(const uint8_t* compressed, size_t compressed_size, size_t size,
                   const std::string& what, const ByteConsumer& consume);

// The tensors of a legacy torch.save file held in memory, viewed in place.
// Every size it states is checked against the bytes that follow it.
std::vector<TensorView> read_torch_legacy(const uint8_t* bytes, size_t size,
                                          const std::string& file);

// Either format, told apart by the first byte: a legacy file opens with a
// pickle's PROTO opcode (0x80), a zip archive with "PK".
std::vector<TensorView> read_torch_checkpoint(const uint8_t* bytes, size_t size,
                                              const std::string& file);

}  // namespace attnviz::io
