// The architecture registry: config.json's model_type -> its recipe. To add an
// architecture, write src/model/<name>.cpp and add one line to each list below
// (see docs/add-an-architecture.md).
#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/config_keys.h"
#include "model/more_architectures.h"
#include "model/network.h"
#include "runtime/linear.h"
#include "runtime/threads.h"

namespace attnviz::model {

// Defined in src/model/<architecture>.cpp.
void read_bert_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_bert(const LoadContext& context);

namespace {

const Architecture kArchitectures[] = {
    {"bert", read_bert_config, load_bert},
    {"gpt2", read_gpt2_config, load_gpt2},
    {"llama", read_llama_config, load_llama},
    {"mistral", read_llama_config, load_llama},
    {"qwen2", read_llama_config, load_llama},
    {"roberta", read_roberta_config, load_roberta},
    {"electra", read_electra_config, load_electra},
    {"t5", read_t5_config, load_t5},
    {"bart", read_bart_config, load_bart},
    {"marian", read_bart_config, load_bart},
    {"distilbert", read_distilbert_config, load_distilbert},
    {"albert", read_albert_config, load_albert},
    // issue 18 (arch1)
    {"gpt_neox", read_gpt_neox_config, load_gpt_neox},
    {"opt", read_opt_config, load_opt},
    {"bloom", read_bloom_config, load_bloom},
    {"falcon", read_falcon_config, load_falcon},
    {"xlm-roberta", read_roberta_config, load_roberta},
    // issue 18, stream arch2
    {"gemma", read_gemma_config, load_gemma},
    {"gemma2", read_gemma_config, load_gemma},
    {"phi", read_phi_config, load_phi},
    {"phi3", read_phi3_config, load_phi3},
    {"mpnet", read_mpnet_config, load_mpnet},
    {"deberta-v2", read_deberta_v2_config, load_deberta_v2},
};

}  // namespace

const Architecture& find_architecture(const std::string& model_type,
                                      const std::string& config_file) {
    for (const Architecture& architecture : kArchitectures)
        if (model_type == architecture.model_type) return architecture;
    std::string supported;
    for (const std::string& type : supported_model_types())
        supported += (supported.empty() ? "" : ", ") + type;
    throw Error(config_file + ": unsupported model_type \"" + model_type +
                "\" (supported: " + supported + ")");
}

const Architecture& read_architecture_config(const ConfigReader& reader, ModelConfig& config) {
    config = read_common_config(reader);
    const Architecture& architecture = find_architecture(config.model_type, reader.file());
    // refused keys stop here; unknown ones are worth a word (config_keys.h)
    for (const std::string& warning : check_config_keys(reader, config.model_type)) warn(warning);
    check_config_size_keys(reader);
    if (architecture.read_config) architecture.read_config(reader, config);
    check_config_sizes(reader, config);  // before any weight or activation is allocated
    return architecture;
}

LoadedNetwork load_network(const std::filesystem::path& folder) {
    const ConfigReader reader = read_config_file(folder);
    LoadedNetwork loaded;
    const Architecture& architecture = read_architecture_config(reader, loaded.config);
    loaded.tensors = io::TensorSet::open_folder(folder);
    loaded.network = architecture.load(LoadContext{loaded.config, reader, loaded.tensors});
    for (const std::string& warning : loaded.network->weights().extra_layer_warnings())
        warn(warning);
    return loaded;
}

ForwardOutput run_network(const Network& network, const ForwardInput& input,
                          const RunOptions& options) {
    runtime::ThreadScope threads(runtime::resolve_thread_count(options.threads));
    const Precision chosen =
        options.precision.value_or(default_precision(network.weights().parameter_count()));
    runtime::PrecisionScope precision(chosen == Precision::bf16 ? runtime::Precision::bf16
                                                                : runtime::Precision::fp32);
    ForwardOutput output = network.forward(input, options);
    for (AttentionBlock& block : output.blocks) finish_block(block);
    output.non_finite = find_non_finite(output);
    return output;
}

namespace {

// The first of `rows` rows of `cols` floats that holds a NaN or inf, or rows
// (hidden states, queries and keys: small beside the attention maps).
size_t first_non_finite_row(const float* x, size_t rows, size_t cols) {
    for (size_t row = 0; row < rows; ++row) {
        const float* v = x + row * cols;
        bool non_finite = false;
        for (size_t i = 0; i < cols; ++i) non_finite |= !std::isfinite(v[i]);
        if (non_finite) return row;
    }
    return rows;
}

// The first row of attention probabilities that is NaN. runtime::attention
// writes each row finite or NaN throughout, so the first entry of a row tells:
// one read per row, not a pass over every probability.
// Sparse rows store that entry first, whatever the capture keeps (select_row).
size_t first_nan_probability_row(const AttentionBlock& block) {
    const size_t rows = block.n_rows();
    const size_t cols = static_cast<size_t>(block.n_keys);
    for (size_t row = 0; row < rows; ++row) {
        if (block.is_sparse()) {
            if (block.row_start[row] < block.row_start[row + 1] &&
                std::isnan(block.stored(block.row_start[row])))
                return row;
        } else if (std::isnan(block.stored(row * cols))) {
            return row;
        }
    }
    return rows;
}

}  // namespace

std::string find_non_finite(const ForwardOutput& output) {
    // Blocks in the order the forward computes them: a stack over its own tokens
    // (the encoder, or the only one) first, then the decoder's self- and
    // cross-attention layer by layer.
    struct Found {
        int stage, layer;
        size_t block;
        int head, row;
    };
    std::optional<Found> first;
    for (size_t b = 0; b < output.blocks.size(); ++b) {
        const AttentionBlock& block = output.blocks[b];
        const size_t rows = block.n_rows();
        const size_t stored = block.is_sparse()          ? block.row_start.size() - 1
                              : block.probs_fp16.empty() ? block.probs.size() / block.n_keys
                                                         : block.probs_fp16.size() / block.n_keys;
        if (block.n_keys <= 0 || stored != rows) continue;
        const size_t row = first_nan_probability_row(block);
        if (row == rows) continue;
        const Found found{block.query_sequence == 0 && block.key_sequence == 0 ? 0 : 1,
                          block.layer_id(static_cast<int>(row / block.n_queries / block.n_heads)),
                          b, block.head_id(static_cast<int>(row / block.n_queries % block.n_heads)),
                          static_cast<int>(row % block.n_queries)};
        if (!first || std::tie(found.stage, found.layer) < std::tie(first->stage, first->layer))
            first = found;
    }
    if (first) {
        const AttentionBlock& block = output.blocks[first->block];
        return "layer " + std::to_string(first->layer) + ", head " + std::to_string(first->head) +
               ", row " + std::to_string(first->row) + " of the " +
               (output.blocks.size() > 1 ? "\"" + block.name + "\" " : "") + "attention";
    }
    for (const HiddenStates& states : output.hidden_states) {
        const size_t rows = static_cast<size_t>(states.n_states) * states.n_tokens;
        if (states.hidden_size <= 0 || states.values.size() != rows * states.hidden_size) continue;
        const size_t row = first_non_finite_row(states.values.data(), rows, states.hidden_size);
        if (row == rows) continue;
        const size_t state = row / states.n_tokens;
        return "token " + std::to_string(row % states.n_tokens) + " of hidden state " +
               std::to_string(state) +
               (state == 0 ? " (the embeddings)"
                           : " (after layer " + std::to_string(state - 1) + ")") +
               (output.hidden_states.size() > 1 ? " of sequence " + std::to_string(states.sequence)
                                                : "");
    }
    for (const AttentionBlock& block : output.blocks)
        for (const std::vector<float>* kept : {&block.queries, &block.keys})
            if (first_non_finite_row(kept->data(), 1, kept->size()) == 0)
                return std::string("the kept ") + (kept == &block.queries ? "queries" : "keys") +
                       (output.blocks.size() > 1 ? " of \"" + block.name + "\"" : "");
    return "";
}

}  // namespace attnviz::model

namespace attnviz {

ModelConfig read_model_config(const std::filesystem::path& folder) {
    ModelConfig config;
    model::read_architecture_config(model::read_config_file(folder), config);
    return config;
}

std::vector<std::string> supported_model_types() {
    std::vector<std::string> types;
    for (const auto& architecture : model::kArchitectures) types.push_back(architecture.model_type);
    return types;
}

}  // namespace attnviz
