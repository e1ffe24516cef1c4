// attnviz download MODEL: fetch a model into the Hugging Face cache.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"

namespace attnviz::cli {
namespace {

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    add_model_argument(command, flags->model);
    command.get_option("--model")->description(
        "a Hugging Face model id: bert-base-uncased, org/name, org/name@revision");
    command.add_flag("--json", flags->json, "print the result as JSON");
    command.footer(
        "Fetches config.json, the tokenizer files and the weights (model.safetensors, "
        "sharded or not, else pytorch_model.bin) into the Hugging Face cache (HF_HUB_CACHE, "
        "else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else "
        "~/.cache/huggingface/hub), where Python's huggingface_hub finds them too, and prints "
        "the snapshot folder. A model_type attnviz cannot run is refused before its weights "
        "are fetched. HF_ENDPOINT picks the hub, HF_TOKEN the token for gated models.");
    return [flags] {
        if (flags->model.model.empty())
            throw UsageError("give the model to download: attnviz download MODEL");
        const std::filesystem::path folder =
            download_model(flags->model.model, hub_options(flags->model));
        if (!flags->json) {
            std::cout << printable(folder.string()) << "\n";
            return 0;
        }
        nlohmann::json files = nlohmann::json::array();
        uint64_t total = 0;
        for (const auto& entry : std::filesystem::directory_iterator(folder)) {
            const uint64_t size = std::filesystem::file_size(entry.path());
            total += size;
            files.push_back({{"name", entry.path().filename().string()}, {"size_bytes", size}});
        }
        std::sort(files.begin(), files.end(),
                  [](const auto& a, const auto& b) { return a["name"] < b["name"]; });
        std::cout << json_text(nlohmann::ordered_json{{"model", flags->model.model},
                                                      {"folder", folder.string()},
                                                      {"commit", folder.filename().string()},
                                                      {"size_bytes", total},
                                                      {"files", files}});
        return 0;
    };
}

const RegisterCommand registered({"download", "Download a model into the Hugging Face cache", 50,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
