// Hub: turns --model (a folder, or a Hugging Face repo id with an optional
// @revision) into a local folder, through the Hugging Face cache layout that
// Python's huggingface_hub uses, downloading when allowed. Owner: src/hub.
//
// Resolution order: an existing folder; a complete snapshot in the cache
// (hub_cache_dir()); a download
// from HF_ENDPOINT (default https://huggingface.co) with HF_TOKEN, into
//   models--org--name/blobs/<etag>               the files, named by etag
//   models--org--name/snapshots/<commit>/<file>  -> ../../blobs/<etag>
//   models--org--name/refs/<revision>            the commit it points at
// so that Python finds what attnviz downloaded, and the other way round.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace attnviz {

struct HubOptions {
    bool offline = false;             // never touch the network; HF_HUB_OFFLINE=1 sets it too
    bool show_progress = true;        // a bar on stderr: only on a terminal, and not with
                                      // HF_HUB_DISABLE_PROGRESS_BARS=1
    std::string endpoint;             // empty: HF_ENDPOINT, else https://huggingface.co
    std::string token;                // empty: HF_TOKEN, else the file HF_HOME/token
    std::filesystem::path cache_dir;  // empty: hub_cache_dir()
    // Only config.json and the tokenizer files (attnviz tokenize, info): a
    // snapshot without weights will do, and none are downloaded.
    bool tokenizer_only = false;
    // Called with the snapshot folder once its config.json is there and before
    // any weights are fetched; throws to refuse the model (the CLI: a model_type
    // attnviz cannot run), so that no gigabytes are downloaded for nothing.
    std::function<void(const std::filesystem::path& folder)> check_config;
};

// "org/name@revision" split; revision "main" when not given.
struct RepoId {
    std::string repo;  // "bert-base-uncased" or "google-bert/bert-base-uncased"
    std::string revision = "main";
};

// Throws Error when `model` is not a valid repo id (huggingface_hub's rules).
RepoId parse_repo_id(std::string_view model);

// As huggingface_hub's constants: HF_HUB_CACHE (or the older
// HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, where HF_HOME defaults to
// $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. A leading ~ is the
// home folder, as Python's expanduser makes it.
std::filesystem::path hub_cache_dir();

// The folder that holds the model's files: config.json, tokenizer files and
// weights (unless options.tokenizer_only). Throws Error for 401/403/404 and
// for no network, saying what to do.
std::filesystem::path resolve_model(const std::string& model, const HubOptions& options = {});

// Asks the hub for the revision's current commit and fetches what the cache
// lacks, even when an older snapshot is cached. Returns the snapshot folder.
std::filesystem::path download_model(const std::string& model, const HubOptions& options = {});

// One repo in the cache, for `attnviz models`.
struct CachedModel {
    std::string repo;                         // "google-bert/bert-base-uncased"
    std::filesystem::path folder;             // .../models--google-bert--bert-base-uncased
    uint64_t size_bytes = 0;                  // the blobs, partial downloads excluded
    std::map<std::string, std::string> refs;  // revision -> commit
    std::vector<std::string> snapshots;       // commits present
    std::vector<std::string> files;           // files of the newest snapshot
};
std::vector<CachedModel> list_cached_models(const std::filesystem::path& cache_dir);

// The commit a cache snapshot folder holds (the <commit> of
// .../models--org--name/snapshots/<commit>, as resolve_model returns it), or ""
// for any other folder: provenance for what a trace was computed with.
std::string snapshot_commit(const std::filesystem::path& folder);

// A size as the hub shows it: "570 B", "231.5 kB", "440.5 MB", "1.3 GB".
std::string format_size(uint64_t bytes);

}  // namespace attnviz
