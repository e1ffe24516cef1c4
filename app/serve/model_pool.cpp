#include "serve/model_pool.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "attnviz/error.h"
#include "attnviz/files.h"
#include "attnviz/hub.h"

namespace fs = std::filesystem;

namespace attnviz::serve {

const char* state_name(LoadState state) {
    switch (state) {
        case LoadState::unloaded:
            return "unloaded";
        case LoadState::loading:
            return "loading";
        case LoadState::ready:
            return "ready";
        case LoadState::failed:
            return "failed";
    }
    return "unloaded";
}

struct ModelPool::Entry {
    ModelSource source;
    ModelStatus status;
    fs::path folder;             // known once resolved
    std::optional<Model> model;  // ready
    uint64_t estimate = 0;       // the weights' bytes reserved while loading
    uint64_t last_used = 0;
    bool running = false;  // a forward pass holds it
};

namespace {

HubOptions hub_options(bool offline, bool tokenizer_only) {
    HubOptions options;
    options.offline = offline;
    options.show_progress = false;
    options.tokenizer_only = tokenizer_only;
    options.check_config = [](const fs::path& folder) { read_model_config(folder); };
    return options;
}

// The longest input the server runs on a model: its learned positions, else
// the length it was made for, else the tokenizer's, else 4,096; --max-tokens caps it.
size_t token_limit(const ModelConfig& config, std::optional<size_t> tokenizer_limit, size_t flag) {
    size_t limit = config.max_positions > 0    ? static_cast<size_t>(config.max_positions)
                   : config.context_length > 0 ? static_cast<size_t>(config.context_length)
                   : tokenizer_limit && *tokenizer_limit > 0 && *tokenizer_limit < (1u << 20)
                       ? *tokenizer_limit
                       : 4096;
    return flag > 0 ? std::min(limit, flag) : limit;
}

void describe(ModelStatus& status, const ModelConfig& config, size_t max_tokens) {
    status.architecture = config.model_type;
    status.encoder_decoder = config.is_encoder_decoder;
    status.n_layers = config.n_layers;
    status.n_heads = config.n_heads;
    status.max_tokens = token_limit(config, std::nullopt, max_tokens);
}

// The weights as loaded: the checkpoint files' bytes, twice that for 16-bit
// checkpoints (the forward reads fp32). Known exactly once loaded.
uint64_t weight_estimate(const fs::path& folder) {
    uint64_t bytes = 0;
    std::error_code error;
    for (const fs::directory_entry& file : fs::directory_iterator(folder, error)) {
        const std::string name = file.path().filename().string();
        if (name.ends_with(".safetensors") || name.ends_with(".bin"))
            bytes += fs::file_size(file.path(), error);
    }
    try {
        const std::string text = read_text_file(folder / "config.json", "config.json");
        if (text.find("\"float16\"") != std::string::npos ||
            text.find("\"bfloat16\"") != std::string::npos)
            bytes *= 2;
    } catch (const Error&) {
    }
    return bytes;
}

}  // namespace

ModelPool::ModelPool(std::vector<ModelSource> sources, Options options, MemoryUse memory)
    : options_(options), memory_(std::move(memory)) {
    for (ModelSource& source : sources) {
        auto entry = std::make_unique<Entry>();
        entry->status.id = source.id;
        entry->status.path = source.spec;
        // What can be said before loading: config.json, when the folder is at hand.
        try {
            std::error_code error;
            const fs::path folder =
                fs::is_directory(source.spec, error)
                    ? fs::path(source.spec)
                    : resolve_model(source.spec, hub_options(/*offline=*/true, true));
            entry->status.path = folder.string();
            describe(entry->status, read_model_config(folder), options_.max_tokens);
        } catch (const Error&) {
            // Not downloaded yet, or not a model attnviz runs: said when it is loaded.
        }
        entry->source = std::move(source);
        entries_.push_back(std::move(entry));
    }
}

ModelPool::~ModelPool() {
    for (std::thread& loader : loaders_) loader.join();
}

std::vector<ModelStatus> ModelPool::list() const {
    std::lock_guard lock(mutex_);
    std::vector<ModelStatus> out;
    for (const auto& entry : entries_) out.push_back(entry->status);
    return out;
}

bool ModelPool::has(const std::string& id) const {
    std::lock_guard lock(mutex_);
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const auto& entry) { return entry->source.id == id; });
}

uint64_t ModelPool::model_bytes_locked() const {
    uint64_t bytes = 0;
    for (const auto& entry : entries_)
        if (entry->status.state == LoadState::ready || entry->status.state == LoadState::loading)
            bytes += entry->status.state == LoadState::ready ? entry->status.weight_bytes
                                                             : entry->estimate;
    return bytes;
}

uint64_t ModelPool::model_bytes() const {
    std::lock_guard lock(mutex_);
    return model_bytes_locked();
}

// Frees memory for `bytes` more: kept traces first, then idle ready models,
// least recently used first (never `keep`, never one running). False when
// even that is not enough.
bool ModelPool::make_room(uint64_t bytes, const Entry* keep, std::unique_lock<std::mutex>& lock) {
    const auto used = [&] { return model_bytes_locked() + memory_.other_bytes(); };
    if (used() + bytes <= options_.budget) return true;
    lock.unlock();
    memory_.release_traces(bytes);
    lock.lock();
    while (used() + bytes > options_.budget) {
        Entry* oldest = nullptr;
        for (const auto& entry : entries_)
            if (entry.get() != keep && entry->status.state == LoadState::ready && !entry->running &&
                (!oldest || entry->last_used < oldest->last_used))
                oldest = entry.get();
        if (!oldest) return false;
        oldest->model.reset();
        oldest->status.state = LoadState::unloaded;
        oldest->status.progress = 0;
        oldest->status.weight_bytes = 0;
    }
    return true;
}

void ModelPool::load(const std::string& id) {
    std::lock_guard lock(mutex_);
    for (const auto& entry : entries_) {
        if (entry->source.id != id) continue;
        if (entry->status.state == LoadState::unloaded ||
            entry->status.state == LoadState::failed) {
            entry->status.state = LoadState::loading;
            entry->status.progress = 0;
            entry->status.error.clear();
            loaders_.emplace_back([this, e = entry.get()] { load_in_background(*e); });
        }
        return;
    }
    throw Error("no model \"" + id + "\" on this server");
}

void ModelPool::load_in_background(Entry& entry) {
    const auto progress = [&](double value) {
        std::lock_guard lock(mutex_);
        entry.status.progress = value;
    };
    try {
        std::error_code error;
        const fs::path folder =
            fs::is_directory(entry.source.spec, error)
                ? fs::path(entry.source.spec)
                : resolve_model(entry.source.spec, hub_options(options_.offline, false));
        progress(0.1);
        const ModelConfig config = read_model_config(folder);
        {
            std::unique_lock lock(mutex_);
            entry.folder = folder;
            entry.status.path = folder.string();
            describe(entry.status, config, options_.max_tokens);
            entry.status.progress = 0.2;
            const uint64_t estimate = weight_estimate(folder);
            if (!make_room(estimate, &entry, lock))
                throw Error("its weights need about " + format_memory_size(estimate) +
                            ", more than the " + format_memory_size(options_.budget) +
                            " memory budget leaves (--max-memory) beside the other models and "
                            "the forward passes running");
            entry.estimate = estimate;
        }
        Model model = Model::open(folder);
        const uint64_t weights = model.estimate_memory(MemoryShape{}).weights;
        std::unique_lock lock(mutex_);
        entry.estimate = 0;
        entry.status.weight_bytes = weights;
        if (!make_room(weights, &entry, lock)) {
            entry.status.weight_bytes = 0;
            throw Error("its weights take " + format_memory_size(weights) + ", more than the " +
                        format_memory_size(options_.budget) +
                        " memory budget leaves (--max-memory)");
        }
        entry.status.max_tokens =
            token_limit(config, model.tokenizer().model_max_length(), options_.max_tokens);
        entry.model = std::move(model);
        entry.status.state = LoadState::ready;
        entry.status.progress = 1;
        entry.last_used = ++clock_;
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        entry.estimate = 0;
        entry.model.reset();
        entry.status.state = LoadState::failed;
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');
        entry.status.error = message;
    }
    changed_.notify_all();
}

std::unique_ptr<ModelPool::Run> ModelPool::acquire(const std::string& id,
                                                   const std::function<bool()>& stale) {
    load(id);  // throws for an unknown id; starts the load when needed
    std::unique_lock lock(mutex_);
    Entry* entry = nullptr;
    for (const auto& e : entries_)
        if (e->source.id == id) entry = e.get();
    while (true) {
        if (stale()) return nullptr;
        const LoadState state = entry->status.state;
        if (state == LoadState::failed)
            throw Error("model \"" + id + "\" failed to load: " + entry->status.error);
        if (state == LoadState::unloaded) {  // evicted while this request waited
            lock.unlock();
            load(id);
            lock.lock();
            continue;
        }
        if (state == LoadState::ready && !entry->running) break;
        changed_.wait_for(lock, std::chrono::milliseconds(200));
    }
    entry->running = true;
    entry->last_used = ++clock_;
    auto run = std::make_unique<Run>(*entry->model);
    run->id = id;
    run->label = entry->source.label;
    run->revision = snapshot_commit(entry->folder);
    run->max_tokens = entry->status.max_tokens;
    run->weight_bytes = entry->status.weight_bytes;
    run->release = [this, entry] {
        {
            std::lock_guard lock(mutex_);
            entry->running = false;
            entry->last_used = ++clock_;
        }
        changed_.notify_all();
    };
    return run;
}

void ModelPool::wake() { changed_.notify_all(); }

std::vector<ModelSource> model_sources(const std::vector<std::string>& models,
                                       const fs::path& cache, const fs::path& demo) {
    std::vector<ModelSource> sources;
    std::set<std::string> specs;
    const auto label_of = [](const std::string& spec) {
        std::error_code error;
        if (fs::is_directory(spec, error)) {
            const fs::path path = fs::path(spec).lexically_normal();
            return (path.has_filename() ? path.filename() : path.parent_path().filename()).string();
        }
        return spec;
    };
    for (const std::string& model : models)
        if (specs.insert(model).second) sources.push_back({"", model, label_of(model)});
    for (const CachedModel& cached : list_cached_models(cache))
        if (specs.insert(cached.repo).second) sources.push_back({"", cached.repo, cached.repo});
    if (sources.empty()) sources.push_back({"", demo.string(), "attnviz demo model"});
    std::map<std::string, int> seen;
    for (ModelSource& source : sources) {
        const int n = ++seen[source.label];
        source.id = n == 1 ? source.label : source.label + " (" + std::to_string(n) + ")";
    }
    return sources;
}

}  // namespace attnviz::serve
