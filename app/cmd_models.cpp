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
            std::cout << nlohmann::ordered_json{{"cache", cache.string()}, {"models", list}}.dump(2)
                      << "\n";
            return 0;
        }
        if (models.empty()) {
            std::cout << "No models in " << cache.string()
                      << ". Fetch one with: attnviz download bert-base-uncased\n";
            return 0;
        }
        size_t width = 5;
        for (const CachedModel& model : models) width = std::max(width, model.repo.size());
        std::printf("%-*s  %10s  %s\n", static_cast<int>(width), "MODEL", "SIZE", "REVISIONS");
        uint64_t total = 0;
        for (const CachedModel& model : models) {
            std::string revisions;
            for (const auto& [revision, commit] : model.refs)
                revisions +=
                    (revisions.empty() ? "" : ", ") + revision + " (" + commit.substr(0, 7) + ")";
            if (revisions.empty() && !model.snapshots.empty())
                revisions = model.snapshots.front().substr(0, 7);
            std::printf("%-*s  %10s  %s\n", static_cast<int>(width), model.repo.c_str(),
                        format_size(model.size_bytes).c_str(), revisions.c_str());
            total += model.size_bytes;
        }
        std::printf("%zu models, %s in %s\n", models.size(), format_size(total).c_str(),
                    cache.c_str());
        return 0;
    };
}

const RegisterCommand registered({"models", "List the models in the Hugging Face cache", 60,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
