// attnviz serve's models: every --model and every model in the Hugging Face
// cache, each loaded once on demand in a background thread, kept within a
// memory budget (least recently used idle model goes first), and run one
// forward pass at a time per model.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "attnviz/model.h"

namespace attnviz::serve {

// Where a model comes from: a folder, or a Hugging Face id resolved (and
// downloaded, unless offline) when it is first loaded.
struct ModelSource {
    std::string id;     // unique among the server's models: what the page asks for
    std::string spec;   // the --model value, the cache's repo id, or the demo folder
    std::string label;  // the trace's model_id, as the CLI names it (model_label)
};

enum class LoadState { unloaded, loading, ready, failed };
const char* state_name(LoadState state);

struct ModelStatus {
    std::string id, path, architecture, error;
    LoadState state = LoadState::unloaded;
    double progress = 0;
    bool encoder_decoder = false;
    int n_layers = 0, n_heads = 0;
    size_t max_tokens = 0;  // 0: not known before loading
    uint64_t weight_bytes = 0;
};

// Memory the server accounts for, besides the models: kept traces and the
// forward passes running now. The pool asks it to shrink before evicting models.
struct MemoryUse {
    std::function<uint64_t()> other_bytes;         // traces kept + forwards reserved
    std::function<void(uint64_t)> release_traces;  // drop kept traces until this many bytes free
};

class ModelPool {
public:
    struct Options {
        uint64_t budget = 0;    // --max-memory, else the memory available at start
        size_t max_tokens = 0;  // --max-tokens; 0: each model's own limit
        bool offline = false;
    };
    ModelPool(std::vector<ModelSource> sources, Options options, MemoryUse memory);
    ~ModelPool();  // waits for loads under way
    ModelPool(const ModelPool&) = delete;
    ModelPool& operator=(const ModelPool&) = delete;

    std::vector<ModelStatus> list() const;
    bool has(const std::string& id) const;
    // Starts loading (in the background) a model that is unloaded or failed; a
    // no-op for one loading or ready. Throws Error for an unknown id.
    void load(const std::string& id);

    // A ready model held for one forward pass: while it lives the model is not
    // evicted. Only one Run per model at a time; see acquire().
    struct Run {
        explicit Run(Model m) : model(std::move(m)) {}
        Run(const Run&) = delete;
        Run& operator=(const Run&) = delete;
        Model model;
        std::string id, label, revision;
        size_t max_tokens = 0;
        uint64_t weight_bytes = 0;
        std::function<void()> release;
        ~Run() {
            if (release) release();
        }
    };
    // Loads the model if needed and waits until it is ready and no other
    // forward pass of it runs, or until `stale()` says the request is
    // superseded (then nullptr). Throws Error when the model failed to load.
    // `wake()` (from another thread) makes waiting callers re-check stale().
    std::unique_ptr<Run> acquire(const std::string& id, const std::function<bool()>& stale);
    void wake();

    uint64_t budget() const { return options_.budget; }
    uint64_t model_bytes() const;  // loaded and loading models' weights

private:
    struct Entry;
    void load_in_background(Entry& entry);
    bool make_room(uint64_t bytes, const Entry* keep, std::unique_lock<std::mutex>& lock);
    uint64_t model_bytes_locked() const;

    Options options_;
    MemoryUse memory_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::unique_ptr<Entry>> entries_;
    std::vector<std::thread> loaders_;
    uint64_t clock_ = 0;  // for least recently used
};

// The models a server offers: each --model (folder or Hugging Face id), then
// every model in the cache not already given; the demo model when neither
// gives any. Ids are made unique ("name", "name (2)").
std::vector<ModelSource> model_sources(const std::vector<std::string>& models,
                                       const std::filesystem::path& cache,
                                       const std::filesystem::path& demo);

}  // namespace attnviz::serve
