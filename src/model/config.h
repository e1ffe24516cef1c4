// config.json -> ModelConfig. The common Hugging Face keys (and their aliases
// across architectures) are read here; an architecture reads its own extras
// with ConfigReader in its own file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnviz/model.h"

namespace attnviz::model {

// Typed access to config.json with errors that name the file and the key: the
// one place config values are read. A value of the wrong JSON type (a string
// for a number, 2.0 for a size, 1 for true) is an Error naming the key, never a
// silent fallback; null counts as absent, as for transformers' optional keys.
// Each getter takes the key's spellings across architectures, first match wins.
class ConfigReader {
public:
    // key_prefix: for a nested object ("rope_scaling."), so errors name the full key.
    ConfigReader(nlohmann::json json, std::string file, std::string key_prefix = "");

    bool has(std::initializer_list<const char*> keys) const;
    // The nested object under `key` (errors name "key.inner"), or none when it
    // is absent or null; any other type is an Error.
    std::optional<ConfigReader> object(const char* key) const;
    // The spelling present in the file, prefixed ("rope_scaling.factor"), else the first.
    std::string key_name(std::initializer_list<const char*> keys) const;
    int integer(std::initializer_list<const char*> keys, std::optional<int> fallback = {}) const;
    double number(std::initializer_list<const char*> keys,
                  std::optional<double> fallback = {}) const;
    std::string string(std::initializer_list<const char*> keys,
                       std::optional<std::string> fallback = {}) const;
    bool boolean(std::initializer_list<const char*> keys, std::optional<bool> fallback = {}) const;

    const nlohmann::json& json() const { return json_; }
    const std::string& file() const { return file_; }

private:
    const nlohmann::json* find(std::initializer_list<const char*> keys) const;
    [[noreturn]] void missing(std::initializer_list<const char*> keys) const;

    nlohmann::json json_;
    std::string file_;
    std::string key_prefix_;
};

// One factor of a size computed from config.json: the key it comes from (or
// null for a constant of the architecture) and its value.
struct SizeFactor {
    const char* key;
    int64_t value;
};

// The most elements a size computed from config.json may reach where the
// forward pass indexes with int: one row of activations, a weight's dimension.
inline constexpr int64_t kMaxConfigSize = INT32_MAX;

// The one place sizes derived from config.json are multiplied: in 64 bits with
// overflow checks. A product of non-negative factors past `limit` throws
// "<file>: n_embd 1073741824 * 4 is too large (more than 2147483647)".
int64_t checked_size(const std::string& file, std::initializer_list<SizeFactor> factors,
                     int64_t limit = kMaxConfigSize);

// Before an architecture reads its config (which may size per-layer tables):
// refuses, naming the key, sizes no real model has: more than 65536 layers or
// heads, widths over 2^20, a vocabulary over 2^26.
void check_config_size_keys(const ConfigReader& reader);
// After it: the values it derived, and the products the forward pass indexes
// with int (3 * heads * head_dim, 2 * intermediate, layers * heads) within
// 2^31, before any weight or activation is allocated.
void check_config_sizes(const ConfigReader& reader, const ModelConfig& config);

ConfigReader read_config_file(const std::filesystem::path& folder);

// The fields every architecture shares: model_type, architectures, sizes, eps,
// activation, positions. Architecture-specific reading refines the result.
ModelConfig read_common_config(const ConfigReader& reader);

// Each layer's sliding window (0: none) into the config: the narrowest as
// sliding_window, and all of them as layer_sliding_windows where they differ.
void set_sliding_windows(ModelConfig& config, const std::vector<int>& per_layer);

}  // namespace attnviz::model
