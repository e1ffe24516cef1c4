// What an architecture implements: a Network built from config.json and the
// checkpoint, whose forward pass returns attention blocks (and hidden states).
// Model (model.cpp) does the rest: tokenizing, threads, tokens in the trace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnviz/encoding.h"
#include "attnviz/model.h"
#include "attnviz/trace.h"
#include "io/tensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace attnviz::model {

struct ForwardInput {
    const Encoding* tokens = nullptr;   // the input (encoder-only and decoder-only), or the source
    const Encoding* decoder = nullptr;  // encoder-decoder models: the target's tokens
};

struct ForwardOutput {
    // "self" for single-stack models; "encoder", "decoder", "cross" otherwise.
    // query_sequence / key_sequence: 0 = ForwardInput::tokens, 1 = ForwardInput::decoder.
    std::vector<AttentionBlock> blocks;
    std::vector<HiddenStates> hidden_states;  // only when RunOptions::keep_hidden_states
    std::string non_finite;  // AttentionTrace::non_finite: empty when all is finite
};

class Network {
public:
    virtual ~Network() = default;
    // Runs on the calling thread's OpenMP pool (Model sets its size).
    virtual ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const = 0;
    // The loader that bound the weights, which load_network asks about
    // checkpoint layers config.json left out.
    virtual const WeightLoader& weights() const = 0;
    // Whether forward fills AttentionBlock::value_norms when
    // RunOptions::keep_value_norms asks (model/value_norms.h).
    virtual bool supports_value_norms() const { return false; }
    // The bytes its weights occupy once the forward has read them all, for the
    // memory estimate.
    uint64_t weight_bytes() const { return weights().resident_bytes(); }
};

// What a factory gets: the config (common fields already read; an
// architecture may refine them in its read_config) and the checkpoint.
struct LoadContext {
    const ModelConfig& config;
    const ConfigReader& config_file;
    const io::TensorSet& tensors;
};

// One architecture: config.json's model_type, how to refine the common
// config, and how to build the network. The registry (architectures.cpp) is
// one table of these.
struct Architecture {
    const char* model_type;
    void (*read_config)(const ConfigReader& reader, ModelConfig& config);  // may be null
    std::unique_ptr<Network> (*load)(const LoadContext& context);
};

// The entry for model_type, or an Error listing the supported ones.
const Architecture& find_architecture(const std::string& model_type,
                                      const std::string& config_file);

// config.json -> ModelConfig: the common fields refined by the architecture,
// the key table's checks and the size checks, before anything is allocated.
// Returns the architecture's entry.
const Architecture& read_architecture_config(const ConfigReader& reader, ModelConfig& config);

// Everything Model::open reads except the tokenizer: config.json and weights.
struct LoadedNetwork {
    ModelConfig config;
    io::TensorSet tensors;  // the memory maps the network's weights point into
    std::unique_ptr<Network> network;
};
LoadedNetwork load_network(const std::filesystem::path& folder);

// Where the output first holds a NaN or inf (AttentionTrace::non_finite), or "".
// Reads one probability per attention row (a row is finite or NaN throughout)
// and every kept hidden state, query and key.
std::string find_non_finite(const ForwardOutput& output);

// Runs network.forward with RunOptions::threads applied (OpenMP, oneDNN,
// OpenBLAS), then find_non_finite.
ForwardOutput run_network(const Network& network, const ForwardInput& input,
                          const RunOptions& options);

}  // namespace attnviz::model
