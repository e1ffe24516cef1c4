// The architecture registry: config.json's model_type -> its recipe. To add an
// architecture, write src/model/<name>.cpp and add one line to each list below
// (see docs/add-an-architecture.md).
#include "attnviz/error.h"
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
    return loaded;
}

ForwardOutput run_network(const Network& network, const ForwardInput& input,
                          const RunOptions& options) {
    runtime::ThreadScope threads(runtime::resolve_thread_count(options.threads));
    runtime::PrecisionScope precision(
        options.precision == Precision::bf16 ? runtime::Precision::bf16 : runtime::Precision::fp32);
    return network.forward(input, options);
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
