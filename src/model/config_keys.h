// Every config.json key attnviz knows, per architecture, as one table of data:
// what transformers does with it and what attnviz does about it. At load,
// check_config_keys refuses a known key attnviz does not implement when its
// value would change the forward pass, and warns about keys it does not know.
// docs/config-keys.md is this table, rendered (config_keys_markdown), and
// tests/model/config_keys_test.cpp checks it against the fields of
// transformers' configuration classes (tests/data/config_fields).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "model/config.h"

namespace attnviz::model {

enum class KeyUse {
    implemented,  // read, and honoured as transformers honours it
    refused,      // changes the forward pass; attnviz refuses any value but the no-op ones
    no_effect,    // changes nothing attnviz shows (training, generation, heads, metadata)
};

struct ConfigKey {
    const char* model_types;  // space-separated model types, or "*": every architecture
    const char* name;
    KeyUse use;
    const char* reason;  // one line: what it does, why it has no effect, or why refused
    // Refused keys only: the JSON values that change nothing ("false", "1|1.0",
    // "{}"), '|'-separated (null always counts as absent), and one value attnviz
    // refuses (for tests and docs).
    const char* no_op = nullptr;
    const char* refused_example = nullptr;
};

// The table. An entry for a model type overrides a "*" entry of the same name.
std::span<const ConfigKey> config_keys();

// The entry that applies to `name` for `model_type`, or null when attnviz does not know it.
const ConfigKey* find_config_key(const std::string& model_type, const std::string& name);

// The architectures the table covers, in the order docs/config-keys.md lists them.
const std::vector<std::string>& config_key_model_types();

// Throws Error "<file>: \"key\" is VALUE: ..." for a refused key with another
// value than its no-op ones; returns one warning per key attnviz does not know
// for this model type (the caller passes them to warn()).
std::vector<std::string> check_config_keys(const ConfigReader& reader,
                                           const std::string& model_type);

// docs/config-keys.md: one table per architecture.
std::string config_keys_markdown();

}  // namespace attnviz::model
