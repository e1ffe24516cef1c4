// write_npz with the size from which zip64 records are written as a
// parameter, so that tests (and fuzz/npz_roundtrip_fuzz.cpp) can check the
// zip64 path without 4 GiB files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>

#include "attnviz/export.h"
#include "attnviz/trace.h"

namespace attnviz::npz {

void write_npz(const AttentionTrace& trace, const std::filesystem::path& path, uint64_t zip64_from);
void write_npz(const AttentionTrace& trace, std::ostream& out, uint64_t zip64_from);
// With arrays beside the trace's (attnviz/export.h ExtraArray).
void write_npz(const AttentionTrace& trace, const std::vector<ExtraArray>& extra, std::ostream& out,
               uint64_t zip64_from);

}  // namespace attnviz::npz
