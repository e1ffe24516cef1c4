// Hub: turns --model (a folder, or a Hugging Face repo id with an optional
// @revision) into a local folder, through the Hugging Face cache layout that
// Python's huggingface_hub uses, downloading when allowed. Owner: src/hub.
#pragma once

#include <filesystem>
#include <string>

namespace attnviz {

struct HubOptions {
    bool offline = false;       // also set by HF_HUB_OFFLINE=1
    bool show_progress = true;  // only drawn when stderr is a terminal
};

// The folder that holds the model's files. Throws Error for 401/403/404 and
// for no network, with what to do about it.
std::filesystem::path resolve_model(const std::string& model, const HubOptions& options = {});

}  // namespace attnviz
