// The config.json key table (src/model/config_keys.cpp) against transformers'
// configuration classes (tests/data/config_fields, extracted from their
// source by tools/reference/extract_config_fields.py), against docs/config-keys.md,
// and what loading does with refused and unknown keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "attnviz/model.h"
#include "io/files.h"
#include "model/config_keys.h"
#include "model/network.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kFields = fs::path(ATTNVIZ_TEST_DATA) / "config_fields";

nlohmann::json read_fields(const std::string& model_type) {
    const fs::path file = kFields / (model_type + ".json");
    if (!fs::exists(file)) throw std::runtime_error("missing " + file.string());
    return io::read_json(file);
}

// Every field the class for model_type takes, its parents' included.
std::vector<std::string> class_fields(const std::string& model_type) {
    std::vector<std::string> fields;
    for (std::string type = model_type; !type.empty();) {
        const nlohmann::json data = read_fields(type);
        for (const auto& [name, value] : data.at("fields").items()) fields.push_back(name);
        type = data.value("inherits", "");
    }
    return fields;
}

// A tiny checkpoint's config.json of each architecture (tests/data/arch).
fs::path fixture_of(const std::string& model_type) {
    const fs::path arch = fs::path(ATTNVIZ_TEST_DATA) / "arch";
    const std::string name = model_type == "bert" ? "bert_is_decoder" : model_type + "_tiny";
    if (fs::exists(arch / name / "config.json")) return arch / name;
    for (const auto& [type, folder] :
         {std::pair{"mistral", "mistral_sliding_window"}, std::pair{"qwen2", "qwen2_head_dim"},
          std::pair{"llama", "llama_linear_rope_mha"}})
        if (model_type == type) return arch / folder;
    throw std::runtime_error("no fixture for " + model_type);
}

TEST(ConfigKeys, EveryArchitectureHasItsConfigClassFields) {
    for (const std::string& type : supported_model_types()) {
        SCOPED_TRACE(type);
        EXPECT_TRUE(fs::exists(kFields / (type + ".json")));
        EXPECT_NE(std::find(config_key_model_types().begin(), config_key_model_types().end(), type),
                  config_key_model_types().end());
    }
}

TEST(ConfigKeys, TableListsEveryConfigClassField) {
    size_t checked = 0;
    for (const std::string& type : config_key_model_types()) {
        std::vector<std::string> missing;
        for (const std::string& field : class_fields(type)) {
            ++checked;
            if (!find_config_key(type, field)) missing.push_back(field);
        }
        EXPECT_TRUE(missing.empty())
            << type << ": fields of its configuration class that src/model/config_keys.cpp does "
            << "not list: " << ::testing::PrintToString(missing);
    }
    EXPECT_GT(checked, 400u);  // 12 classes, each with PretrainedConfig's 39 fields
}

TEST(ConfigKeys, FieldFilesNameTheirSource) {
    for (const std::string& type : config_key_model_types()) {
        const nlohmann::json data = read_fields(type);
        EXPECT_EQ(data.at("source").at("repository"), "huggingface/transformers") << type;
        EXPECT_EQ(data.at("source").at("commit").get<std::string>().size(), 40u) << type;
        EXPECT_EQ(data.at("extracted_by"), "tools/reference/extract_config_fields.py") << type;
    }
}

TEST(ConfigKeys, RefusedKeysHaveANoOpAndARefusedValue) {
    for (const ConfigKey& key : config_keys()) {
        if (key.use != KeyUse::refused) continue;
        ASSERT_NE(key.no_op, nullptr) << key.name;
        ASSERT_NE(key.refused_example, nullptr) << key.name;
        EXPECT_TRUE(nlohmann::json::accept(key.refused_example)) << key.name;
    }
}

TEST(ConfigKeys, DocsAreTheTable) {
    const fs::path doc = fs::path(ATTNVIZ_SOURCE_DIR) / "docs" / "config-keys.md";
    if (std::getenv("ATTNVIZ_UPDATE_DOCS")) io::write_file(doc, config_keys_markdown());
    EXPECT_EQ(io::read_file(doc), config_keys_markdown())
        << "docs/config-keys.md is out of date: rerun this test with ATTNVIZ_UPDATE_DOCS=1";
}

// A folder with only config.json: the key checks run before any weight is read.
class ConfigKeyLoad : public ::testing::Test {
protected:
    void SetUp() override {
        folder_ = fs::temp_directory_path() /
                  ("attnviz_config_keys_" + std::to_string(getpid()) + "_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(folder_);
    }
    void TearDown() override { fs::remove_all(folder_); }

    void write_config(const nlohmann::json& config) {
        io::write_file(folder_ / "config.json", config.dump(2));
    }

    fs::path folder_;
};

TEST_F(ConfigKeyLoad, EveryRefusedKeyStopsLoadingNamingFileKeyAndValue) {
    size_t refusals = 0;
    for (const ConfigKey& key : config_keys()) {
        if (key.use != KeyUse::refused) continue;
        for (const std::string& type : config_key_model_types()) {
            if (find_config_key(type, key.name) != &key) continue;
            SCOPED_TRACE(type + " " + key.name);
            nlohmann::json config = io::read_json(fixture_of(type) / "config.json");
            config[key.name] = nlohmann::json::parse(key.refused_example);
            write_config(config);
            try {
                (void)load_network(folder_);
                ADD_FAILURE() << "loaded";
            } catch (const Error& error) {
                const std::string message = error.what();
                EXPECT_THAT(message, HasSubstr((folder_ / "config.json").string()));
                EXPECT_THAT(message, HasSubstr("\"" + std::string(key.name) + "\" is " +
                                               nlohmann::json::parse(key.refused_example).dump()));
                EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 0);
            }
            // every no-op value, and null (absent), passes the key check
            config[key.name] = nullptr;
            EXPECT_EQ(check_config_keys(ConfigReader(config, "config.json"), type).size(), 0u);
            std::string no_op = key.no_op;
            for (size_t start = 0; start <= no_op.size();) {
                const size_t end = std::min(no_op.find('|', start), no_op.size());
                config[key.name] = nlohmann::json::parse(no_op.substr(start, end - start));
                EXPECT_EQ(check_config_keys(ConfigReader(config, "config.json"), type).size(), 0u)
                    << config[key.name].dump();
                start = end + 1;
            }
            ++refusals;
        }
    }
    // pruned_heads everywhere, add_cross_attention on 4, partial_rotary_factor on 3,
    // normalize_before and add_final_layer_norm on 2, static_position_embeddings on BART
    EXPECT_GE(refusals, 12u + 4u + 3u + 4u + 1u);
}

TEST_F(ConfigKeyLoad, UnknownKeyIsAWarningNamingIt) {
    nlohmann::json config = io::read_json(fixture_of("gpt2") / "config.json");
    config["attention_sink_tokens"] = 4;
    const std::vector<std::string> warnings =
        check_config_keys(ConfigReader(config, "some/config.json"), "gpt2");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_THAT(warnings[0], HasSubstr("some/config.json"));
    EXPECT_THAT(warnings[0], HasSubstr("\"attention_sink_tokens\""));

    // load_network passes it to attnviz::warn: one line on stderr, and the model loads
    fs::copy(fixture_of("gpt2"), folder_,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    write_config(config);
    ::testing::internal::CaptureStderr();
    (void)load_network(folder_);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, HasSubstr("attnviz: warning: "));
    EXPECT_THAT(err, HasSubstr("\"attention_sink_tokens\""));
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
}

// Helsinki-NLP's opus-mt config.json files still carry transformers 3's BART
// keys; for Marian they describe what it is (sinusoidal positions, post-norm).
TEST(ConfigKeys, OldMarianKeysAreAcceptedQuietly) {
    nlohmann::json config = io::read_json(fixture_of("marian") / "config.json");
    config.update({{"static_position_embeddings", true},
                   {"normalize_before", false},
                   {"normalize_embedding", false},
                   {"add_final_layer_norm", false},
                   {"add_bias_logits", false},
                   {"extra_pos_embeddings", 58101},
                   {"classif_dropout", 0.0}});
    EXPECT_EQ(check_config_keys(ConfigReader(config, "config.json"), "marian"),
              std::vector<std::string>{});
    config["model_type"] = "bart";
    EXPECT_THROW(check_config_keys(ConfigReader(config, "config.json"), "bart"), Error);
}

TEST(ConfigKeys, CommittedConfigsHaveNoUnknownKeys) {
    std::vector<fs::path> configs;
    for (const char* root : {"arch", "hf", "model", "app"})
        for (const auto& entry :
             fs::recursive_directory_iterator(fs::path(ATTNVIZ_TEST_DATA) / root))
            if (entry.path().filename() == "config.json") configs.push_back(entry.path());
    EXPECT_GT(configs.size(), 30u);
    for (const fs::path& file : configs) {
        const nlohmann::json config = io::read_json(file);
        const std::string type = config.value("model_type", "");
        if (std::find(config_key_model_types().begin(), config_key_model_types().end(), type) ==
            config_key_model_types().end())
            continue;  // tests/data/model/bad holds broken configs on purpose
        try {
            EXPECT_EQ(check_config_keys(ConfigReader(config, file.string()), type),
                      std::vector<std::string>{})
                << file;
        } catch (const Error& error) {
            ADD_FAILURE() << error.what();
        }
    }
}

}  // namespace
}  // namespace attnviz::model
