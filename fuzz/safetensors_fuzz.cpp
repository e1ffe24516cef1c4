// libFuzzer target: the safetensors header parser on arbitrary bytes. Any
// input must either parse into views that lie inside the buffer, or throw
// attnviz::Error; never crash, hang or read outside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "attnviz/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        for (const auto& tensor : attnviz::io::parse_safetensors(data, size, "fuzz.safetensors")) {
            if (tensor.data < data || tensor.data + tensor.n_bytes > data + size) std::abort();
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < tensor.n_bytes; i += 4096) sink = sink + tensor.data[i];
        }
    } catch (const attnviz::Error&) {
    }
    return 0;
}
