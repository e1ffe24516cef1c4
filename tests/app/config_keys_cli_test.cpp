// `attnviz info` on a checkpoint whose config.json sets a key attnviz refuses
// (src/model/config_keys.cpp): for every refused key and every architecture it
// applies to, exit code 1 and one error line naming the file, the key and the value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "io/files.h"
#include "model/config_keys.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const fs::path kArch = fs::path(ATTNVIZ_TEST_DATA) / "arch";

// A tiny checkpoint of the architecture (tests/data/arch): its config.json.
fs::path config_of(const std::string& model_type) {
    for (const std::string& name :
         {model_type + "_tiny", std::string("bert_is_decoder"),
          std::string("mistral_sliding_window"), std::string("qwen2_head_dim"),
          std::string("llama_linear_rope_mha"), std::string("deberta_v3_tiny")}) {
        const fs::path file = kArch / name / "config.json";
        if (fs::exists(file) && attnviz::io::read_json(file).value("model_type", "") == model_type)
            return file;
    }
    throw std::runtime_error("no tiny checkpoint of " + model_type + " in " + kArch.string());
}

TEST(ConfigKeysCli, EveryRefusedKeyExitsOneWithItsMessage) {
    using attnviz::model::config_keys;
    using attnviz::model::KeyUse;
    const fs::path work =
        fs::temp_directory_path() / ("attnviz_config_keys_cli_" + std::to_string(getpid()));
    const fs::path folder = work / "model";
    fs::create_directories(folder);
    int runs = 0;
    for (const attnviz::model::ConfigKey& key : config_keys()) {
        if (key.use != KeyUse::refused) continue;
        for (const std::string& type : attnviz::model::config_key_model_types()) {
            if (attnviz::model::find_config_key(type, key.name) != &key) continue;
            SCOPED_TRACE(type + " " + key.name);
            nlohmann::json config = attnviz::io::read_json(config_of(type));
            const nlohmann::json value = nlohmann::json::parse(key.refused_example);
            config[key.name] = value;
            attnviz::io::write_file(folder / "config.json", config.dump(2));
            const std::string command = "cd '" + work.string() +
                                        "' && '" ATTNVIZ_CLI
                                        "' info model >stdout.txt 2>stderr.txt";
            const int status = std::system(command.c_str());
            ASSERT_TRUE(WIFEXITED(status));
            EXPECT_EQ(WEXITSTATUS(status), 1);
            const std::string err = attnviz::io::read_file(work / "stderr.txt");
            EXPECT_THAT(err, StartsWith("attnviz: error: "));
            EXPECT_THAT(err, HasSubstr("model/config.json: \"" + std::string(key.name) + "\" is " +
                                       value.dump() + ", not supported: " + key.reason));
            EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
            ++runs;
        }
    }
    fs::remove_all(work);
    EXPECT_GE(runs, 24);
}

// Keys attnviz implements, with a value it does not run: the same one-line
// error naming the file, the key and the value, exit code 1.
TEST(ConfigKeysCli, UnsupportedValuesOfImplementedKeysExitOne) {
    struct Case {
        std::string model_type, key;
        nlohmann::json value;
        std::string expected;  // what the error says about the value
    };
    const std::vector<Case> cases = {
        {"llama", "rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}, "\"yarn\""},
        {"qwen2", "rope_scaling", {{"rope_type", "longrope"}, {"factor", 4.0}}, "\"longrope\""},
        {"qwen2", "layer_types", {"chunked_attention", "full_attention"}, "\"chunked_attention\""},
        {"roberta", "position_embedding_type", "alibi", "\"alibi\""},
        {"gpt2", "activation_function", "sparsemax", "sparsemax"},
    };
    const fs::path work =
        fs::temp_directory_path() / ("attnviz_config_values_cli_" + std::to_string(getpid()));
    fs::create_directories(work / "model");
    for (const Case& c : cases) {
        SCOPED_TRACE(c.model_type + " " + c.key);
        nlohmann::json config = attnviz::io::read_json(config_of(c.model_type));
        config[c.key] = c.value;
        attnviz::io::write_file(work / "model" / "config.json", config.dump(2));
        const std::string command =
            "cd '" + work.string() + "' && '" ATTNVIZ_CLI "' info model >stdout.txt 2>stderr.txt";
        const int status = std::system(command.c_str());
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 1);
        const std::string err = attnviz::io::read_file(work / "stderr.txt");
        EXPECT_THAT(err, StartsWith("attnviz: error: model/config.json: "));
        EXPECT_THAT(err, HasSubstr(c.key));
        EXPECT_THAT(err, HasSubstr(c.expected));
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    }
    fs::remove_all(work);
}

}  // namespace
