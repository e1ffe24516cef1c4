// attnviz models: what the Hugging Face cache holds, with sizes.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"

namespace attnviz::cli {
namespace {

std::function<int()> setup(CLI::App& command) {
    auto json = std::make_shared<bool>(false);
    command.add_flag("--json", *json, "print the list as JSON");
    command.footer(
        "Lists every model in the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else "
        "$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub), whether attnviz or "
        "Python downloaded it.");
    return [json] {
        const std::filesystem::path cache = hub_cache_dir();
        const std::vector<CachedModel> models = list_cached_models(cache);
        if (*json) {
            nlohmann::ordered_json list = nlohmann::ordered_json::array();
            for (const CachedModel& model : models)
                list.push_back({{"model", model.repo},
                                {"folder", model.folder.string()},
                                {"size_bytes", model.size_bytes},
                                {"refs", model.refs},
                                {"snapshots", model.snapshots},
                                {"files", model.files}});
            std::cout << json_text(
                nlohmann::ordered_json{{"cache", cache.string()}, {"models", list}});
            return 0;
        }
        if (models.empty()) {
            std::cout << "No models in " << printable(cache.string())
                      << ". Fetch one with: attnviz download bert-base-uncased\n";
            return 0;
        }
        // Folder names and refs are anyone's bytes: printable() keeps escape
        // sequences in them from reaching the terminal.
        std::vector<std::string> names;
        size_t width = 5;
        for (const CachedModel& model : models) {
            names.push_back(printable(model.repo));
            width = std::max(width, names.back().size());
        }
        std::printf("%-*s  %10s  %s\n", static_cast<int>(width), "MODEL", "SIZE", "REVISIONS");
        uint64_t total = 0;
        for (size_t i = 0; i < models.size(); ++i) {
            const CachedModel& model = models[i];
            std::string revisions;
            for (const auto& [revision, commit] : model.refs)
                revisions +=
                    (revisions.empty() ? "" : ", ") + revision + " (" + commit.substr(0, 7) + ")";
            if (revisions.empty() && !model.snapshots.empty())
                revisions = model.snapshots.front().substr(0, 7);
            std::printf("%-*s  %10s  %s\n", static_cast<int>(width), names[i].c_str(),
                        format_size(model.size_bytes).c_str(), printable(revisions).c_str());
            total += model.size_bytes;
        }
        std::printf("%zu models, %s in %s\n", models.size(), format_size(total).c_str(),
                    printable(cache.string()).c_str());
        return 0;
    };
}

const RegisterCommand registered({"models", "List the models in the Hugging Face cache", 60,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
