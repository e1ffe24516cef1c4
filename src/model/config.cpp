#include "model/config.h"

#include <algorithm>
#include <climits>
#include <functional>

#include "attnviz/error.h"
#include "io/files.h"

namespace attnviz::model {

ConfigReader::ConfigReader(nlohmann::json json, std::string file, std::string key_prefix)
    : json_(std::move(json)), file_(std::move(file)), key_prefix_(std::move(key_prefix)) {
    if (json_.is_object()) return;
    if (key_prefix_.empty()) throw Error(file_ + ": not a JSON object");
    std::string key = key_prefix_;
    key.pop_back();  // the '.'
    throw Error(file_ + ": \"" + key + "\" is " + json_.dump() + ", not an object");
}

std::optional<ConfigReader> ConfigReader::object(const char* key) const {
    const nlohmann::json* value = find({key});
    if (!value) return std::nullopt;
    return ConfigReader(*value, file_, key_prefix_ + key + ".");
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
    for (const char* key : keys)
        names += std::string(names.empty() ? "\"" : " or \"") + key_prefix_ + key + "\"";
    throw Error(file_ + ": missing " + names);
}

std::string ConfigReader::key_name(std::initializer_list<const char*> keys) const {
    for (const char* key : keys)
        if (json_.contains(key)) return key_prefix_ + key;
    return key_prefix_ + *keys.begin();
}

int ConfigReader::integer(std::initializer_list<const char*> keys,
                          std::optional<int> fallback) const {
    const nlohmann::json* value = find(keys);
    if (!value) {
        if (fallback) return *fallback;
        missing(keys);
    }
    if (!value->is_number_integer() || value->get<int64_t>() < -1 ||
        value->get<int64_t>() > (int64_t{1} << 30))
        throw Error(file_ + ": \"" + key_name(keys) + "\" is " + value->dump() + ", not a size");
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
        throw Error(file_ + ": \"" + key_name(keys) + "\" is " + value->dump() + ", not a number");
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
        throw Error(file_ + ": \"" + key_name(keys) + "\" is " + value->dump() + ", not a string");
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
        throw Error(file_ + ": \"" + key_name(keys) + "\" is " + value->dump() +
                    ", not true or false");
    return value->get<bool>();
}

int64_t checked_size(const std::string& file, std::initializer_list<SizeFactor> factors,
                     int64_t limit) {
    int64_t product = 1;
    bool overflow = false;
    std::string named;
    for (const SizeFactor& factor : factors) {
        named += (named.empty() ? "" : " * ") +
                 (factor.key ? std::string(factor.key) + " " : std::string()) +
                 std::to_string(factor.value);
        overflow = overflow || factor.value < 0 ||
                   __builtin_mul_overflow(product, factor.value, &product) || product > limit;
    }
    if (overflow)
        throw Error(file + ": " + named + " is too large (more than " + std::to_string(limit) +
                    ")");
    return product;
}

namespace {

constexpr int kMaxCount = 1 << 16;  // layers, heads, groups
constexpr int kMaxWidth = 1 << 20;  // hidden, feed-forward, head and embedding widths
constexpr int kMaxVocab = 1 << 26;  // vocabulary entries, relative-position buckets

// Every size key of every architecture, under each of its spellings, with its bound.
struct SizeKey {
    std::initializer_list<const char*> keys;
    int max;
};
const SizeKey kSizeKeys[] = {
    {{"num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers"}, kMaxCount},
    {{"num_decoder_layers", "decoder_layers"}, kMaxCount},
    {{"num_attention_heads", "n_head", "n_heads", "num_heads", "encoder_attention_heads"},
     kMaxCount},
    {{"decoder_attention_heads"}, kMaxCount},
    {{"num_key_value_heads"}, kMaxCount},
    {{"num_hidden_groups"}, kMaxCount},
    {{"inner_group_num"}, kMaxCount},
    {{"hidden_size", "n_embd", "d_model", "dim"}, kMaxWidth},
    {{"head_dim", "d_kv"}, kMaxWidth},
    {{"intermediate_size", "n_inner", "d_ff", "encoder_ffn_dim", "hidden_dim"}, kMaxWidth},
    {{"decoder_ffn_dim"}, kMaxWidth},
    {{"embedding_size"}, kMaxWidth},
    {{"vocab_size"}, kMaxVocab},
    {{"decoder_vocab_size"}, kMaxVocab},
    {{"type_vocab_size"}, kMaxVocab},
    {{"relative_attention_num_buckets"}, kMaxVocab},
};

}  // namespace

namespace {

[[noreturn]] void refuse_size(const ConfigReader& reader, const std::string& key, int64_t value,
                              int max) {
    throw Error(reader.file() + ": \"" + key + "\" is " + std::to_string(value) +
                ", more than attnviz supports (" + std::to_string(max) + ")");
}

}  // namespace

void check_config_size_keys(const ConfigReader& reader) {
    for (const SizeKey& size : kSizeKeys) {
        const int value = reader.integer(size.keys, 0);
        if (value > size.max) refuse_size(reader, reader.key_name(size.keys), value, size.max);
    }
}

void check_config_sizes(const ConfigReader& reader, const ModelConfig& config) {
    const auto refuse = [&](const std::string& key, int64_t value, int max) {
        refuse_size(reader, key, value, max);
    };
    // The values the architecture derived (head_dim = hidden / heads, GPT-2's 4 * n_embd)
    const struct {
        std::initializer_list<const char*> keys;
        int value, max;
    } derived[] = {{{"head_dim", "d_kv"}, config.head_dim, kMaxWidth},
                   {{"intermediate_size", "n_inner"}, config.intermediate_size, kMaxWidth}};
    for (const auto& size : derived)
        if (size.value > size.max) refuse(reader.key_name(size.keys), size.value, size.max);
    // The products the forward pass computes in int: a fused q/k/v row, a gated
    // feed-forward's pair, every layer's (and ALBERT inner group's) attention maps.
    const std::string heads = reader.key_name(kSizeKeys[2].keys);
    const std::string head_dim = reader.key_name({"head_dim", "d_kv"});
    const std::string intermediate = reader.key_name(kSizeKeys[9].keys);
    const std::string layers = reader.key_name(kSizeKeys[0].keys);
    checked_size(
        reader.file(),
        {{nullptr, 3}, {heads.c_str(), config.n_heads}, {head_dim.c_str(), config.head_dim}});
    checked_size(reader.file(), {{nullptr, 2}, {intermediate.c_str(), config.intermediate_size}});
    checked_size(reader.file(),
                 {{layers.c_str(), std::max(config.n_layers, config.n_decoder_layers)},
                  {"inner_group_num", reader.integer({"inner_group_num"}, 1)},
                  {heads.c_str(), config.n_heads}});
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

void set_sliding_windows(ModelConfig& config, const std::vector<int>& per_layer) {
    for (const int window : per_layer)
        if (window > 0 && (config.sliding_window == 0 || window < config.sliding_window))
            config.sliding_window = window;
    if (std::adjacent_find(per_layer.begin(), per_layer.end(), std::not_equal_to<>()) !=
        per_layer.end())
        config.layer_sliding_windows = per_layer;
}

}  // namespace attnviz::model
