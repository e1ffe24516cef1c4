#include "model/config.h"

#include "attnviz/error.h"
#include "io/files.h"

namespace attnviz::model {

ConfigReader::ConfigReader(nlohmann::json json, std::string file)
    : json_(std::move(json)), file_(std::move(file)) {
    if (!json_.is_object()) throw Error(file_ + ": not a JSON object");
}

const nlohmann::json* ConfigReader::find(std::initializer_list<const char*> keys) const {
    for (const char* key : keys) {
        const auto it = json_.find(key);
        if (it != json_.end() && !it->is_null()) return &*it;
    }
    return nullptr;
}

bool ConfigReader::has(std::initializer_list<const char*> keys) const { return find(keys); }

void ConfigReader::missing(std::initializer_list<const char*> keys) const {
    std::string names;
    for (const char* key : keys) names += std::string(names.empty() ? "\"" : " or \"") + key + "\"";
    throw Error(file_ + ": missing " + names);
}

namespace {
std::string key_name(std::initializer_list<const char*> keys, const nlohmann::json& json) {
    for (const char* key : keys)
        if (json.contains(key)) return key;
    return *keys.begin();
}
}  // namespace

int ConfigReader::integer(std::initializer_list<const char*> keys,
                          std::optional<int> fallback) const {
    const nlohmann::json* value = find(keys);
    if (!value) {
        if (fallback) return *fallback;
        missing(keys);
    }
    if (!value->is_number_integer() || value->get<int64_t>() < -1 ||
        value->get<int64_t>() > (int64_t{1} << 30))
        throw Error(file_ + ": \"" + key_name(keys, json_) + "\" is " + value->dump() +
                    ", not a size");
    return value->get<int>();
}

double ConfigReader::number(std::initializer_list<const char*> keys,
                            std::optional<double> fallback) const {
    const nlohmann::json* value = find(keys);
    if (!value) {
        if (fallback) return *fallback;
        missing(keys);
    }
    if (!value->is_number())
        throw Error(file_ + ": \"" + key_name(keys, json_) + "\" is " + value->dump() +
                    ", not a number");
    return value->get<double>();
}

std::string ConfigReader::string(std::initializer_list<const char*> keys,
                                 std::optional<std::string> fallback) const {
    const nlohmann::json* value = find(keys);
    if (!value) {
        if (fallback) return *fallback;
        missing(keys);
    }
    if (!value->is_string())
        throw Error(file_ + ": \"" + key_name(keys, json_) + "\" is " + value->dump() +
                    ", not a string");
    return value->get<std::string>();
}

bool ConfigReader::boolean(std::initializer_list<const char*> keys,
                           std::optional<bool> fallback) const {
    const nlohmann::json* value = find(keys);
    if (!value) {
        if (fallback) return *fallback;
        missing(keys);
    }
    if (!value->is_boolean())
        throw Error(file_ + ": \"" + key_name(keys, json_) + "\" is " + value->dump() +
                    ", not true or false");
    return value->get<bool>();
}

ConfigReader read_config_file(const std::filesystem::path& folder) {
    const std::filesystem::path file = folder / "config.json";
    if (!std::filesystem::exists(file))
        throw Error(folder.string() + ": no config.json (not a Hugging Face model folder?)");
    return ConfigReader(io::read_json(file), file.string());
}

ModelConfig read_common_config(const ConfigReader& reader) {
    ModelConfig config;
    config.model_type = reader.string({"model_type"});
    const auto architectures = reader.json().find("architectures");
    if (architectures != reader.json().end() && architectures->is_array() &&
        !architectures->empty() && architectures->front().is_string())
        config.architecture = architectures->front().get<std::string>();
    config.n_layers =
        reader.integer({"num_hidden_layers", "n_layer", "num_layers", "encoder_layers"}, 0);
    config.n_heads = reader.integer(
        {"num_attention_heads", "n_head", "num_heads", "encoder_attention_heads"}, 0);
    config.n_kv_heads = reader.integer({"num_key_value_heads"}, config.n_heads);
    config.hidden_size = reader.integer({"hidden_size", "n_embd", "d_model", "dim"}, 0);
    config.head_dim = reader.integer({"head_dim", "d_kv"},
                                     config.n_heads > 0 ? config.hidden_size / config.n_heads : 0);
    config.intermediate_size = reader.integer(
        {"intermediate_size", "n_inner", "d_ff", "encoder_ffn_dim", "hidden_dim"}, 0);
    config.vocab_size = reader.integer({"vocab_size"}, 0);
    config.max_positions = reader.integer({"max_position_embeddings", "n_positions"}, 0);
    config.type_vocab_size = reader.integer({"type_vocab_size"}, 0);
    config.norm_eps = static_cast<float>(
        reader.number({"layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps"}, 1e-12));
    config.hidden_act = reader.string(
        {"hidden_act", "activation_function", "hidden_activation", "activation"}, "gelu");
    config.position_embedding_type = reader.string({"position_embedding_type"}, "absolute");
    config.pad_token_id = reader.integer({"pad_token_id"}, -1);
    config.is_encoder_decoder = reader.boolean({"is_encoder_decoder"}, false);
    return config;
}

}  // namespace attnviz::model
