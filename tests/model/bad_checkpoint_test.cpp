// Checkpoints that disagree with their config.json, or lack what BERT needs:
// each is an Error naming the file and the tensor (or the key), never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "attnviz/error.h"
#include "io/files.h"
#include "io/tensors.h"
#include "model/network.h"
#include "model/weights.h"

namespace fs = std::filesystem;
using namespace attnviz;

namespace {

const fs::path kTiny = fs::path(ATTNVIZ_TEST_DATA) / "model" / "tiny-safetensors";

// A copy of the tiny model in a temporary folder, removed at the end.
class ModelCopy {
public:
    explicit ModelCopy(const std::string& name, const fs::path& source = kTiny)
        : folder_(fs::temp_directory_path() / ("attnviz_bad_checkpoint_" + name)) {
        fs::remove_all(folder_);
        fs::create_directories(folder_);
        for (const auto& entry : fs::directory_iterator(source))
            fs::copy(entry.path(), folder_ / entry.path().filename());
    }
    ~ModelCopy() { fs::remove_all(folder_); }
    const fs::path& folder() const { return folder_; }

    void edit_config(const std::string& key, const nlohmann::json& value) {
        nlohmann::json config = io::read_json(folder_ / "config.json");
        config[key] = value;
        io::write_file(folder_ / "config.json", config.dump());
    }

    // Rewrites model.safetensors, letting `edit` change each tensor's header entry
    // (return false to drop the tensor).
    template <class Edit>
    void rewrite_weights(Edit edit) {
        const io::TensorSet tensors = io::TensorSet::open_folder(kTiny);
        nlohmann::json header = nlohmann::json::object();
        std::string data;
        for (const io::TensorView& tensor : tensors.tensors()) {
            nlohmann::json entry = {{"dtype", std::string(io::dtype_name(tensor.dtype))},
                                    {"shape", tensor.shape}};
            if (!edit(tensor.name, entry)) continue;
            entry["data_offsets"] = {data.size(), data.size() + tensor.n_bytes};
            header[tensor.name] = entry;
            data.append(reinterpret_cast<const char*>(tensor.data), tensor.n_bytes);
        }
        std::string text = header.dump();
        text.append((8 - text.size() % 8) % 8, ' ');
        std::string bytes(8, '\0');
        for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
        io::write_file(folder_ / "model.safetensors", bytes + text + data);
    }

    std::string load_error() const {
        try {
            model::load_network(folder_);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }

private:
    fs::path folder_;
};

#define EXPECT_CONTAINS(text, part) \
    EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text)

}  // namespace

TEST(BadCheckpoint, ShapeThatDoesNotMatchConfig) {
    ModelCopy copy("shape");
    copy.edit_config("intermediate_size", 65);
    const std::string error = copy.load_error();
    EXPECT_CONTAINS(error, "model.safetensors: tensor encoder.layer.0.intermediate.dense.weight");
    EXPECT_CONTAINS(error, "has shape [64, 32], but config.json implies [65, 32]");
}

TEST(BadCheckpoint, MissingTensorNamesEverySpellingTried) {
    ModelCopy copy("missing");
    copy.rewrite_weights([](const std::string& name, nlohmann::json&) {
        return name != "encoder.layer.1.attention.self.key.bias";
    });
    const std::string error = copy.load_error();
    EXPECT_CONTAINS(error,
                    "model.safetensors: missing tensor encoder.layer.1.attention.self.key.bias");
}

TEST(BadCheckpoint, IntegerDtypeWhereAWeightBelongs) {
    ModelCopy copy("dtype");
    copy.rewrite_weights([](const std::string& name, nlohmann::json& entry) {
        if (name == "embeddings.LayerNorm.weight") entry["dtype"] = "I32";
        return true;
    });
    const std::string error = copy.load_error();
    EXPECT_CONTAINS(error, "tensor embeddings.LayerNorm.weight has dtype I32");
}

TEST(BadCheckpoint, UnknownModelTypeListsTheSupportedOnes) {
    ModelCopy copy("type");
    copy.edit_config("model_type", "perceiver");
    const std::string error = copy.load_error();
    EXPECT_CONTAINS(error, "config.json: unsupported model_type \"perceiver\" (supported: bert");
}

TEST(BadCheckpoint, ConfigValuesOfTheWrongKind) {
    ModelCopy copy("config");
    copy.edit_config("num_attention_heads", "twelve");
    EXPECT_CONTAINS(copy.load_error(), "\"num_attention_heads\" is \"twelve\", not a size");
    copy.edit_config("num_attention_heads", 5);
    EXPECT_CONTAINS(copy.load_error(), "hidden_size 32 is not a multiple of num_attention_heads 5");
    copy.edit_config("num_attention_heads", 2);
    copy.edit_config("hidden_act", "cubic");
    EXPECT_CONTAINS(copy.load_error(), "hidden_act: unsupported activation \"cubic\"");
}

// Issue 12: a value of the wrong JSON type fell back to the default
// (rope_theta "10000" ran with 10000.0). Every key read is type-checked.
TEST(BadCheckpoint, ConfigValueOfTheWrongJsonTypeNamesTheKey) {
    const fs::path llama = fs::path(ATTNVIZ_TEST_DATA) / "arch" / "llama_gqa_llama3_rope";
    const struct {
        fs::path source;
        const char* key;
        nlohmann::json value;
        const char* message;
    } cases[] = {
        {llama, "rope_theta", "10000", "config.json: \"rope_theta\" is \"10000\", not a number"},
        {llama, "rope_theta", nlohmann::json::array({10000}),
         "\"rope_theta\" is [10000], not a number"},
        {llama,
         "rope_scaling",
         {{"rope_type", "linear"}, {"factor", "2"}},
         "config.json: \"rope_scaling.factor\" is \"2\", not a number"},
        {llama, "attention_bias", "false", "\"attention_bias\" is \"false\", not true or false"},
        {llama, "num_hidden_layers", 2.0, "\"num_hidden_layers\" is 2.0, not a size"},
        {kTiny, "layer_norm_eps", "1e-12", "\"layer_norm_eps\" is \"1e-12\", not a number"},
        {kTiny, "hidden_act", 1, "\"hidden_act\" is 1, not a string"},
    };
    for (const auto& c : cases) {
        ModelCopy copy("json_type", c.source);
        copy.edit_config(c.key, c.value);
        EXPECT_CONTAINS(copy.load_error(), c.message);
    }
}

// Issue 12: rotary settings that make angles infinite or NaN gave rows of zeros.
TEST(BadCheckpoint, ImpossibleRotarySettingsAreRefusedAtLoad) {
    const fs::path llama = fs::path(ATTNVIZ_TEST_DATA) / "arch" / "llama_gqa_llama3_rope";
    ModelCopy copy("rope", llama);
    copy.edit_config("rope_theta", 0);
    EXPECT_CONTAINS(copy.load_error(),
                    "config.json: \"rope_theta\" is 0.0; rotary embeddings need a positive number");
    copy.edit_config("rope_theta", 10000.0);
    copy.edit_config("rope_scaling", {{"rope_type", "llama3"},
                                      {"factor", 0},
                                      {"low_freq_factor", 0},
                                      {"high_freq_factor", 0},
                                      {"original_max_position_embeddings", 0}});
    EXPECT_CONTAINS(copy.load_error(), "config.json: \"rope_scaling.factor\" is 0.0");
}

// Issue 12: sizes from config.json overflowed int (UBSan: gpt2.cpp, llama.cpp)
// or asked for absurd allocations. They are refused naming the key, before
// any weight is read.
TEST(BadCheckpoint, AbsurdSizesAreRefusedNamingTheKey) {
    const fs::path arch = fs::path(ATTNVIZ_TEST_DATA) / "arch";
    const struct {
        fs::path source;
        nlohmann::json edits;
        const char* message;
    } cases[] = {
        {kTiny,
         {{"hidden_size", int64_t{1} << 40}},
         "\"hidden_size\" is 1099511627776, not a size"},
        {kTiny,
         {{"vocab_size", int64_t{1} << 62}},
         "\"vocab_size\" is 4611686018427387904, not a size"},
        {kTiny,
         {{"num_hidden_layers", 1000000000}},
         "config.json: \"num_hidden_layers\" is 1000000000, more than attnviz supports (65536)"},
        {kTiny,
         {{"vocab_size", 1 << 30}},
         "\"vocab_size\" is 1073741824, more than attnviz supports"},
        {arch / "gpt2_tiny",
         {{"n_embd", 1 << 30}},
         "config.json: \"n_embd\" is 1073741824, more than attnviz supports (1048576)"},
        {arch / "llama_gqa_llama3_rope",
         {{"num_attention_heads", 65536}, {"num_key_value_heads", 65536}, {"head_dim", 1 << 20}},
         "config.json: 3 * num_attention_heads 65536 * head_dim 1048576 is too large"},
        {arch / "albert_tiny",
         {{"inner_group_num", 65536}, {"num_hidden_layers", 65536}},
         "num_hidden_layers 65536 * inner_group_num 65536 * num_attention_heads 4 is too large"},
        {arch / "bart_tiny",
         {{"decoder_ffn_dim", 1 << 29}},
         "\"decoder_ffn_dim\" is 536870912, more than attnviz supports (1048576)"},
    };
    for (const auto& c : cases) {
        ModelCopy copy("sizes", c.source);
        for (const auto& [key, value] : c.edits.items()) copy.edit_config(key, value);
        EXPECT_CONTAINS(copy.load_error(), c.message);
    }
}

TEST(BadCheckpoint, TruncatedLegacyBinNamesTheFile) {
    // A legacy torch.save file (before torch 1.6) cut short, as an interrupted download leaves it.
    ModelCopy copy("legacy_truncated", fs::path(ATTNVIZ_TEST_DATA) / "model" / "tiny-bin-legacy");
    const fs::path weights = copy.folder() / "pytorch_model.bin";
    const std::string bytes = io::read_file(weights);
    for (const size_t size : {size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
        SCOPED_TRACE(size);
        io::write_file(weights, std::string_view(bytes).substr(0, size));
        const std::string error = copy.load_error();
        EXPECT_EQ(error.rfind(weights.string() + ": ", 0), 0u) << "message: " << error;
        EXPECT_EQ(error.find('\n'), std::string::npos) << "message: " << error;
    }
    io::write_file(weights, bytes);
    EXPECT_EQ(copy.load_error(), "no error");
}

TEST(BadCheckpoint, InputsOutsideTheModel) {
    const model::LoadedNetwork loaded = model::load_network(kTiny);
    Encoding encoding;
    encoding.ids = {2, 100, 3};  // vocab_size is 100
    encoding.type_ids = {0, 0, 0};
    encoding.attention_mask = {1, 1, 1};
    try {
        model::run_network(*loaded.network, {&encoding}, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(), "token id 100 at position 1 is outside the vocabulary");
    }
    encoding.ids.assign(65, 5);  // max_position_embeddings is 64
    encoding.type_ids.assign(65, 0);
    encoding.attention_mask.assign(65, 1);
    EXPECT_THROW(model::run_network(*loaded.network, {&encoding}, {}), Error);
}

TEST(Weights, Fp32WeightsAreTheMemoryMapItself) {
    const io::TensorSet tensors = io::TensorSet::open_folder(kTiny);
    ModelConfig config;
    config.hidden_size = 32;
    config.vocab_size = 100;
    model::WeightLoader loader(tensors, config, {"", "bert."});
    const float* word = loader.get("embeddings.word_embeddings.weight", "vocab, hidden");
    EXPECT_EQ(reinterpret_cast<const uint8_t*>(word),
              tensors.find("embeddings.word_embeddings.weight")->data);
}

// Issue 12: layers the checkpoint has beyond config.json's count were ignored
// without a word. Now one warning names the file and both counts.
TEST(BadCheckpoint, MoreLayersThanConfigIsAWarning) {
    ModelCopy copy("extra_layers");
    ::testing::internal::CaptureStderr();
    model::load_network(copy.folder());
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // 2 layers, as config.json says
    copy.edit_config("num_hidden_layers", 1);
    ::testing::internal::CaptureStderr();
    const model::LoadedNetwork loaded = model::load_network(copy.folder());
    const std::string warnings = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(loaded.config.n_layers, 1);
    EXPECT_EQ(warnings, "attnviz: warning: " + (copy.folder() / "model.safetensors").string() +
                            ": the checkpoint has 2 layers of encoder.layer.{L} (e.g. "
                            "encoder.layer.1.attention.output.LayerNorm.bias), but config.json "
                            "gives 1; the extra layers are ignored\n");
}
