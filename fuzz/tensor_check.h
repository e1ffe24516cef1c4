// Shared by the checkpoint fuzz targets: reads a tensor whole and aborts (a
// finding) when a stored tensor's bytes lie outside the input or it reads to
// anything but its size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "io/tensors.h"

inline void read_tensor_within(const attnviz::io::TensorView& tensor, const uint8_t* data,
                               size_t size) {
    size_t total = 0;
    tensor.read([&](const uint8_t* bytes, size_t count) {
        if (!tensor.deflated && (bytes < data || bytes + count > data + size)) std::abort();
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < count; i += 4096) sink = sink + bytes[i];
        total += count;
    });
    if (total != tensor.n_bytes) std::abort();
}
