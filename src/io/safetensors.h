// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data. Every offset is checked before any tensor is handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensors.h"

namespace attnviz::io {

// Parses and validates the header of a safetensors file held in memory.
// Views point into `bytes`. Throws Error naming `file_name` and the tensor at fault.
std::vector<TensorView> parse_safetensors(const uint8_t* bytes, size_t size,
                                          const std::string& file_name);

}  // namespace attnviz::io
