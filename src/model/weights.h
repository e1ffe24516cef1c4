// From checkpoint tensors to the float arrays a forward pass reads.
//
// Each architecture lists its weights as data: a table of
// {field, Hugging Face name pattern, shape in config terms}, e.g.
//   {&BertLayerWeights::query_weight, "encoder.layer.{L}.attention.self.query.weight", "hidden,
//   hidden"}
// WeightLoader::bind fills the fields. For each name it tries every prefix the
// architecture allows ("" and "bert." for BERT: BertModel vs BertForMaskedLM),
// and the legacy LayerNorm spellings gamma/beta for weight/bias. It checks the
// shape against config.json and the dtype, and returns fp32: views into the
// memory map when stored as aligned F32, converted copies for F16/BF16/F64 (and
// for a deflated zip entry, inflated into the copy only now, after the shape check).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "attnviz/model.h"
#include "io/tensors.h"

namespace attnviz::model {

// One weight: the struct field it fills, its name ({L} = layer index), its shape.
// A shape is a comma-separated list of dimensions, each a product of names
// known to the loader ("hidden", "intermediate", "vocab", "positions",
// "type_vocab", "heads", "kv_heads", "head_dim", or set_dim's) and numbers:
// "hidden, hidden", "3*hidden", "heads*head_dim, hidden".
template <class Weights>
struct WeightSpec {
    const float* Weights::*field;
    const char* name;
    const char* shape;
    bool optional = false;  // absent -> the field stays null
};

// Keep the loader as long as the weights it returned: it owns the converted copies.
class WeightLoader {
public:
    WeightLoader(const io::TensorSet& tensors, const ModelConfig& config,
                 std::vector<std::string> prefixes);

    // Names a dimension for shapes ("embedding" -> 128 for ALBERT).
    void set_dim(const std::string& name, int64_t value);

    // The tensor `pattern` ({L} -> layer), shape-checked, as fp32. Throws Error
    // naming the file and the tensor when missing or mismatched.
    const float* get(std::string_view pattern, std::string_view shape, int layer = -1);
    // As get, but null when the checkpoint has no such tensor.
    const float* get_optional(std::string_view pattern, std::string_view shape, int layer = -1);

    template <class Weights, size_t N>
    void bind(const WeightSpec<Weights> (&table)[N], Weights& weights, int layer = -1) {
        for (const auto& spec : table)
            weights.*spec.field = spec.optional ? get_optional(spec.name, spec.shape, layer)
                                                : get(spec.name, spec.shape, layer);
    }

    // Drops a weight the network no longer reads (once packed into a
    // runtime::Linear) from this process's resident set: memory-mapped pages
    // are unmapped (the page cache keeps them; a later read maps them again).
    // Converted copies are kept. Thread-safe.
    void release(const float* data);
    // A callback that releases `weights`: runtime::Linear's on_packed.
    std::function<void()> releaser(std::initializer_list<const float*> weights) {
        return [this, list = std::vector<const float*>(weights)] {
            for (const float* weight : list) release(weight);
        };
    }

    // The parameters handed out (each tensor once), the default precision's measure.
    uint64_t parameter_count() const;
    // What the weights handed out occupy once read: float32 bytes, plus the
    // checkpoint's own pages that converted copies were read from. Token
    // embeddings read in place from the memory map count nothing: only the
    // rows of the tokens run are ever read.
    uint64_t resident_bytes() const;

    // The prefix the checkpoint's names use ("" or "bert."), once a tensor was found.
    const std::string& prefix() const { return prefix_; }

    // One warning per layer stack ("encoder.layer.{L}") for which the checkpoint
    // holds more layers than were loaded (config.json says fewer): those
    // tensors are ignored, and the user should know. Names the file and both counts.
    std::vector<std::string> extra_layer_warnings() const;

private:
    const io::TensorView* find(const std::string& name, std::string& found_prefix) const;
    std::vector<int64_t> evaluate_shape(std::string_view shape, const std::string& tensor) const;
    const float* as_f32(const io::TensorView& tensor);

    const io::TensorSet& tensors_;
    std::vector<std::string> prefixes_;
    std::string prefix_;
    bool prefix_known_ = false;
    std::unordered_map<std::string, int64_t> dims_;
    std::vector<std::unique_ptr<float[]>> converted_;        // F16/BF16/F64 -> F32 copies
    std::unordered_map<const float*, size_t> sizes_;         // bytes of every weight handed out
    uint64_t converted_source_bytes_ = 0;                    // what converted_ was read from
    std::unordered_set<const float*> mapped_lookup_tables_;  // "vocab, ..." views into the map
    // Per layer stack (the pattern's text before "{L}"), the layers loaded.
    std::unordered_map<std::string, int> layers_loaded_;
};

// "encoder.layer.{L}.x" with layer 3 -> "encoder.layer.3.x"
std::string expand_name(std::string_view pattern, int layer);

}  // namespace attnviz::model
