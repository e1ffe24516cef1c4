// config.json -> ModelConfig. The common Hugging Face keys (and their aliases
// across architectures) are read here; an architecture reads its own extras
// with ConfigReader in its own file.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "attnviz/model.h"

namespace attnviz::model {

// Typed access to config.json with errors that name the file and the key.
// Each getter takes the key's spellings across architectures, first match wins.
class ConfigReader {
public:
    ConfigReader(nlohmann::json json, std::string file);

    bool has(std::initializer_list<const char*> keys) const;
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
};

ConfigReader read_config_file(const std::filesystem::path& folder);

// The fields every architecture shares: model_type, architectures, sizes, eps,
// activation, positions. Architecture-specific reading refines the result.
ModelConfig read_common_config(const ConfigReader& reader);

}  // namespace attnviz::model
