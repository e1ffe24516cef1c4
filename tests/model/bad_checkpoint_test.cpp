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
