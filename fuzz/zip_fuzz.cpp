// libFuzzer target: the zip reader of torch checkpoints on arbitrary bytes:
// the central directory, then the whole checkpoint with every tensor read
// (deflated storages inflated). Any input must end in entries and tensors that
// lie inside the buffer and read to exactly their size, or in an
// attnviz::Error; never a crash, a hang, or memory beyond what the input
// justifies (tools/fuzz runs it under -rss_limit_mb=2048).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>

#include "attnviz/error.h"
#include "io/torch_checkpoint.h"
#include "tensor_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        for (const auto& entry : attnviz::io::read_zip_directory(data, size, "fuzz.bin"))
            if (entry.data < data || entry.compressed_size > size ||
                entry.data + entry.compressed_size > data + size)
                std::abort();
    } catch (const attnviz::Error&) {
    }
    try {
        std::set<const uint8_t*> inflated;  // tied tensors share a storage: inflate it once
        for (const auto& tensor : attnviz::io::read_torch_zip(data, size, "fuzz.bin")) {
            if (tensor.deflated && !inflated.insert(tensor.deflated).second) continue;
            read_tensor_within(tensor, data, size);
        }
    } catch (const attnviz::Error&) {
    }
    return 0;
}
