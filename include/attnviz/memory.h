// How much memory a run takes, and how much there is: checked before the
// forward pass allocates, so that a request too big for the machine is refused
// with its numbers instead of ending in std::bad_alloc, the OOM killer, or a
// hang inside an allocator that cannot fail (OpenBLAS under `ulimit -v`).
// Owner: src/model (memory.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "attnviz/error.h"
#include "attnviz/trace.h"

namespace attnviz {

struct ModelConfig;

// The peak a forward pass reaches, in bytes, by what holds it.
struct MemoryEstimate {
    uint64_t weights = 0;        // the parameters as the forward reads them (fp32)
    uint64_t activations = 0;    // working buffers of the forward at their largest, and
                                 // the process's own start-up memory (libraries, tokenizer)
    uint64_t attention = 0;      // every attention probability the trace keeps
    uint64_t queries_keys = 0;   // RunOptions::keep_queries_keys (with their score biases)
    uint64_t hidden_states = 0;  // RunOptions::keep_hidden_states
    uint64_t output = 0;  // what the caller makes of the trace (MemoryShape::output_fraction)
    uint64_t total() const {
        return weights + activations + attention + queries_keys + hidden_states + output;
    }
};

// The process's own memory before a forward allocates anything, weights
// apart: the libraries (oneDNN, OpenBLAS, libstdc++), the tokenizer, the
// views' assets. Part of MemoryEstimate::activations; measured at 40 to 50 MiB
// resident after loading a model.
inline constexpr uint64_t kProcessBaselineBytes = 48ull << 20;

// The sizes a run's memory depends on.
struct MemoryShape {
    size_t tokens = 0;          // the input (encoder-only, decoder-only) or the source
    size_t decoder_tokens = 0;  // encoder-decoder models: the target
    bool keep_queries_keys = false;
    bool keep_hidden_states = false;
    CaptureOptions capture;  // RunOptions::capture: what the attention term counts
    int threads = 1;         // the forward's threads: each holds a scratch row block
    // What the caller builds from the trace while it still holds it, as a
    // fraction of the attention's bytes (RunOptions::output_fraction).
    double output_fraction = 0;
};

// The forward pass of `config`'s architecture on `shape`, weights excluded
// (they come from the checkpoint: Model::estimate_memory adds them). One
// formula per architecture family, from the buffers its forward allocates.
MemoryEstimate estimate_forward_memory(const ModelConfig& config, const MemoryShape& shape);

// What a run may use: the smaller of the memory available now (MemAvailable,
// and the cgroup's memory.max less its memory.current) and the address space
// left under RLIMIT_AS (`ulimit -v`) less what is mapped already. `source`
// says which bound it was, for messages.
struct MemoryBudget {
    uint64_t bytes = 0;
    std::string source;  // "available memory", "ulimit -v", "cgroup memory.max", or the caller's
};
MemoryBudget available_memory();

// "3G", "500M", "1.5GiB", "800000K", "1073741824": bytes (K, M, G, T are powers
// of 1024, with or without a trailing B or iB). Nothing for anything else.
std::optional<uint64_t> parse_memory_size(std::string_view text);
// 1288490188 -> "1.2 GiB", for messages.
std::string format_memory_size(uint64_t bytes);

// The command-line flags of a capture: "--layers 0,11,23 --top-k 32 --fp16"
// ("" for the full capture).
std::string capture_flags(const CaptureOptions& capture);

// What Model::trace throws when its estimate exceeds RunOptions::max_memory (or
// the available memory): "needs about 2.3 GiB (...), more than the 1.0 GiB
// budget (ulimit -v)", followed, when keeping less attention would make the run
// fit, by the capture options that would ("--layers 0,11,23 --top-k 32 would
// fit in about 1.9 GiB"). A program adds how its users raise the budget
// (attnviz --max-memory) or shrink the run (--truncate N).
class MemoryBudgetError : public Error {
public:
    MemoryBudgetError(const std::string& message, MemoryEstimate estimate, MemoryBudget budget,
                      size_t fitting_tokens)
        : Error(message),
          estimate_(estimate),
          budget_(std::move(budget)),
          fitting_tokens_(fitting_tokens) {}
    const MemoryEstimate& estimate() const { return estimate_; }
    const MemoryBudget& budget() const { return budget_; }
    // The most input tokens that would fit the budget (0: not even one: the
    // weights alone are too big).
    size_t fitting_tokens() const { return fitting_tokens_; }

private:
    MemoryEstimate estimate_;
    MemoryBudget budget_;
    size_t fitting_tokens_;
};

}  // namespace attnviz
