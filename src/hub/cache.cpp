#include "hub/cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include "attnviz/error.h"
#include "attnviz/files.h"
#include "attnviz/hub.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace attnviz::hub {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// One of these is enough for the tokenizer to load.
const char* const kTokenizerModels[] = {"tokenizer.json", "vocab.txt",  "vocab.json",
                                        "spiece.model",   "source.spm", "sentencepiece.bpe.model"};

bool is_index(const std::string& file) { return file.ends_with(".index.json"); }

// A name for a file that is renamed into place: unique per process and thread,
// so that two downloads of one model never trip over each other's.
std::string unique_suffix() {
    static std::atomic<unsigned> counter{0};
    return ".attnviz-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".tmp";
}

}  // namespace

bool is_commit_id(const std::string& revision) {
    return revision.size() == 40 && std::all_of(revision.begin(), revision.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Tokenizer files in the order the tokenizer reads them; all present are fetched.
const std::vector<std::string> kTokenizerFiles = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "source.spm",
    "target.spm",
};
// The weights, in order of preference.
const std::vector<std::string> kWeightFiles = {"model.safetensors", "model.safetensors.index.json",
                                               "pytorch_model.bin", "pytorch_model.bin.index.json"};

fs::path repo_folder(const fs::path& cache, const std::string& repo) {
    std::string name = "models--";
    for (char c : repo) {
        if (c == '/')
            name += "--";
        else
            name += c;
    }
    return cache / name;
}

std::optional<std::string> cached_commit(const fs::path& repo_dir, const std::string& revision) {
    if (is_commit_id(revision)) return revision;
    std::error_code error;
    const fs::path ref = repo_dir / "refs" / revision;
    if (!fs::is_regular_file(ref, error)) return std::nullopt;
    std::string commit = io::read_file(ref);
    while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r')) commit.pop_back();
    if (commit.empty()) return std::nullopt;
    // The commit becomes a path (snapshots/<commit>): anything but a commit id,
    // "../../x" or "/tmp/x", would load a model from outside the cache.
    if (!is_commit_id(commit))
        throw Error(ref.string() + " holds '" + printable(commit.substr(0, 80)) +
                    "', not a commit id (40 hex digits); delete it and download the model again");
    return commit;
}

std::vector<std::string> index_shards(const fs::path& index_file) {
    const nlohmann::json index = io::read_json(index_file);
    const auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object())
        throw Error(index_file.string() + ": no \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : map->items()) {
        if (!shard.is_string())
            throw Error(index_file.string() + ": weight_map[\"" + tensor +
                        "\"] is not a file name");
        const std::string name = shard.get<std::string>();
        // Shards sit beside the index; anything else could escape the snapshot.
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
            throw Error(index_file.string() + ": bad shard name \"" + name + "\"");
        shards.insert(name);
    }
    return {shards.begin(), shards.end()};
}

std::vector<std::string> missing_model_files(const fs::path& folder, bool with_weights) {
    std::vector<std::string> missing;
    std::error_code error;
    auto present = [&](const std::string& name) {
        return fs::is_regular_file(folder / name, error);
    };
    if (!present("config.json")) missing.push_back("config.json");
    if (std::none_of(std::begin(kTokenizerModels), std::end(kTokenizerModels), present))
        missing.push_back("tokenizer.json (or vocab.txt, vocab.json, spiece.model)");
    if (!with_weights) return missing;
    const auto weights = std::find_if(kWeightFiles.begin(), kWeightFiles.end(), present);
    if (weights == kWeightFiles.end()) {
        missing.push_back("model.safetensors (or pytorch_model.bin)");
    } else if (is_index(*weights)) {
        for (const std::string& shard : index_shards(folder / *weights))
            if (!present(shard)) missing.push_back(shard);
    }
    return missing;
}

std::vector<std::string> wanted_files(const std::vector<std::string>& repo_files,
                                      bool with_weights) {
    std::vector<std::string> wanted;
    if (contains(repo_files, "config.json")) wanted.push_back("config.json");
    for (const std::string& file : kTokenizerFiles)
        if (contains(repo_files, file)) wanted.push_back(file);
    if (!with_weights) return wanted;
    for (const std::string& file : kWeightFiles) {
        if (contains(repo_files, file)) {
            wanted.push_back(file);
            break;
        }
    }
    return wanted;
}

void link_snapshot_file(const fs::path& repo_dir, const std::string& commit,
                        const std::string& file, const std::string& etag) {
    const fs::path link = repo_dir / "snapshots" / commit / file;
    fs::create_directories(link.parent_path());
    // Relative, as huggingface_hub makes it, so that the cache can move.
    std::string target;
    for (size_t depth = std::count(file.begin(), file.end(), '/') + 2; depth > 0; --depth)
        target += "../";
    target += "blobs/" + etag;
    const fs::path temporary = link.string() + unique_suffix();
    std::error_code error;
    fs::remove(temporary, error);
    fs::create_symlink(target, temporary, error);
    if (error) throw Error("cannot create the link " + temporary.string() + ": " + error.message());
    fs::rename(temporary, link, error);
    if (error) throw Error("cannot create the link " + link.string() + ": " + error.message());
}

void write_ref(const fs::path& repo_dir, const std::string& revision, const std::string& commit) {
    if (revision == commit) return;
    const fs::path ref = repo_dir / "refs" / revision;
    fs::create_directories(ref.parent_path());
    io::write_file(ref, commit);
}

BlobLock::BlobLock(const fs::path& cache, const std::string& repo, const std::string& etag) {
    const fs::path dir = cache / ".locks" / repo_folder(cache, repo).filename();
    std::error_code error;
    fs::create_directories(dir, error);
    if (error) throw Error("cannot create " + dir.string() + ": " + error.message());
    const fs::path path = dir / (etag + ".lock");
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        const std::string reason = std::strerror(errno);
        ::close(fd_);
        throw Error("cannot lock " + path.string() + ": " + reason);
    }
}

BlobLock::~BlobLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

std::string file_sha256(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot open " + file.string() + ": " + std::strerror(errno));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                    EVP_MD_CTX_free);
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
        throw Error("cannot start SHA-256");
    std::vector<char> buffer(1 << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0) EVP_DigestUpdate(context.get(), buffer.data(), in.gcount());
    }
    if (in.bad()) throw Error("cannot read " + file.string() + ": " + std::strerror(errno));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), digest, &length);
    static const char hex[] = "0123456789abcdef";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 15];
    }
    return text;
}

}  // namespace attnviz::hub

namespace attnviz {

std::string snapshot_commit(const fs::path& folder) {
    fs::path path = folder.lexically_normal();
    if (!path.has_filename()) path = path.parent_path();  // ".../<commit>/"
    const fs::path snapshots = path.parent_path();
    if (snapshots.filename() != "snapshots" ||
        !snapshots.parent_path().filename().string().starts_with("models--"))
        return "";
    return path.filename().string();
}

std::vector<CachedModel> list_cached_models(const fs::path& cache_dir) {
    std::vector<CachedModel> models;
    std::error_code error;
    if (!fs::is_directory(cache_dir, error)) return models;
    for (const fs::directory_entry& entry : fs::directory_iterator(cache_dir, error)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_directory() || !name.starts_with("models--")) continue;
        CachedModel model;
        model.folder = entry.path();
        model.repo = name.substr(8);
        if (const size_t dashes = model.repo.find("--"); dashes != std::string::npos)
            model.repo.replace(dashes, 2, "/");
        for (const auto& blob : fs::directory_iterator(model.folder / "blobs", error))
            if (blob.is_regular_file() && !blob.path().string().ends_with(".incomplete"))
                model.size_bytes += blob.file_size();
        const fs::path refs = model.folder / "refs";
        for (const auto& ref : fs::recursive_directory_iterator(refs, error)) {
            if (!ref.is_regular_file()) continue;
            std::string commit = io::read_file(ref.path());
            while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back())))
                commit.pop_back();
            model.refs[fs::relative(ref.path(), refs).string()] = commit;
        }
        fs::file_time_type newest{};
        fs::path newest_snapshot;
        for (const auto& snapshot : fs::directory_iterator(model.folder / "snapshots", error)) {
            if (!snapshot.is_directory()) continue;
            model.snapshots.push_back(snapshot.path().filename().string());
            if (newest_snapshot.empty() || snapshot.last_write_time() > newest) {
                newest = snapshot.last_write_time();
                newest_snapshot = snapshot.path();
            }
        }
        std::sort(model.snapshots.begin(), model.snapshots.end());
        if (!newest_snapshot.empty()) {
            // Lexically: fs::relative would follow the links into ../../blobs/<etag>.
            for (const auto& file : fs::recursive_directory_iterator(newest_snapshot, error))
                if (!file.is_directory())
                    model.files.push_back(
                        file.path().lexically_relative(newest_snapshot).generic_string());
            std::sort(model.files.begin(), model.files.end());
        }
        models.push_back(std::move(model));
    }
    std::sort(models.begin(), models.end(),
              [](const CachedModel& a, const CachedModel& b) { return a.repo < b.repo; });
    return models;
}

std::string format_size(uint64_t bytes) {
    if (bytes < 1000) return std::to_string(bytes) + " B";
    const char* const units[] = {"kB", "MB", "GB", "TB"};
    double value = static_cast<double>(bytes);
    int unit = -1;
    while (value >= 1000 && unit < 3) {
        value /= 1000;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

}  // namespace attnviz
