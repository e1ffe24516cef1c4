// Exports of a trace for numpy: exact float32 values, unlike the views'
// quantized payload. Owner: src/viz (it consumes a trace like any view).
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz {

// Writes an uncompressed .npz that numpy.load reads: input_ids, token_type_ids,
// tokens, attentions (and queries, keys, hidden_states when the trace has them);
// encoder-decoder traces use the encoder_/decoder_/cross_ names. The file is
// written whole or not at all (an OutputFile, attnviz/files.h).
void write_npz(const AttentionTrace& trace, const std::filesystem::path& path);
// The same bytes to a stream, front to back with no seeking (a pipe will do:
// `attnviz export -o -`). A bad trace throws before anything is written.
void write_npz(const AttentionTrace& trace, std::ostream& out);

// A float32 array written after the trace's own: what analysis adds to an
// export (head_stats_<name>, rollout, flow, value_norms). C order.
struct NpzArray {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
};
// write_npz with `extra` arrays; a name the trace's arrays (or another extra)
// already use, or a shape that does not match the values, throws Error first.
void write_npz(const AttentionTrace& trace, std::ostream& out, const std::vector<NpzArray>& extra);

// Attention attnviz did not compute, from a .npz: what write_npz writes (the
// round trip), or numpy.savez(path, attentions=[L,H,S,S] or attentions_0..N,
// tokens=[S] str, sentence_b_start=n); encoder-decoder files use write_npz's
// encoder_/decoder_/cross_ names. Throws Error naming the file and the array.
AttentionTrace read_npz(const std::filesystem::path& path);

// What a trace from outside attnviz cannot say: a block is causal when every
// key after its query has probability 0; a token is special when it is
// spelled like one ([CLS], <s>, </s>, <pad>, <|endoftext|>).
void infer_causal_and_special(AttentionTrace& trace);

}  // namespace attnviz
