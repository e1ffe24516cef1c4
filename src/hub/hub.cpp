// resolve_model and download_model: the steps huggingface_hub's snapshot_download
// takes, for the few files a model needs. Ask the API for the revision's commit
// and file list (or, from a mirror without the API, probe the files one by one);
// HEAD each file for its etag; download missing blobs with resume and checks;
// link them from snapshots/<commit>/ and point refs/<revision> at the commit.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "attnviz/error.h"
#include "attnviz/hub.h"
#include "hub/cache.h"
#include "hub/http.h"
#include "hub/progress.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace attnviz {

namespace {

using hub::HttpClient;
using hub::HttpResponse;
using hub::Transport;

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
constexpr int kDownloadAttempts = 5;

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// huggingface_hub's constants._is_true.
bool env_is_true(const char* name) {
    std::string value = env(name);
    for (char& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return value == "1" || value == "ON" || value == "YES" || value == "TRUE";
}

// "~" and "~/x" as Python's os.path.expanduser reads them, for the variables
// huggingface_hub expands.
fs::path expand_home(const std::string& path) {
    if (path == "~") return env("HOME");
    if (path.starts_with("~/")) return fs::path(env("HOME")) / path.substr(2);
    return path;
}

// huggingface_hub's HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface.
fs::path hf_home() {
    if (const std::string home = env("HF_HOME"); !home.empty()) return expand_home(home);
    if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty())
        return expand_home(xdg) / "huggingface";
    return fs::path(env("HOME")) / ".cache" / "huggingface";
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// huggingface_hub's validate_repo_id, for one side of the '/'.
bool valid_repo_part(std::string_view part) {
    return !part.empty() && part.size() <= 96 &&
           std::all_of(part.begin(), part.end(), is_name_char) && part.front() != '-' &&
           part.front() != '.' && part.back() != '-' && part.back() != '.';
}

// Percent-encoding for one URL path; '/' kept where a path may have several parts.
std::string quote(std::string_view text, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    std::string quoted;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
            (keep_slash && c == '/')) {
            quoted += static_cast<char>(c);
        } else {
            quoted += '%';
            quoted += hex[c >> 4];
            quoted += hex[c & 15];
        }
    }
    return quoted;
}

bool safe_file_name(const std::string& file) {
    if (file.empty() || file.front() == '/') return false;
    for (const auto& part : fs::path(file))
        if (part == ".." || part == ".") return false;
    return true;
}

bool safe_token(const std::string& text) {  // etags become file names
    return !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
}

bool is_sha256(const std::string& text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
           });
}

// '"abc"' and 'W/"abc"' -> 'abc'.
std::string normalize_etag(std::string etag) {
    if (etag.starts_with("W/")) etag.erase(0, 2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
        etag = etag.substr(1, etag.size() - 2);
    return etag;
}

// The token goes only to the hub itself, never to a CDN it redirects to.
bool same_origin(const std::string& url, const std::string& endpoint) {
    return url == endpoint || url.starts_with(endpoint + "/");
}

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    if (line.size() > 200) line = line.substr(0, 200) + "...";
    return line;
}

// Everything one resolution needs: where to look, whom to ask, and how.
struct Session {
    RepoId id;
    std::string model;  // as the user wrote it, for messages
    fs::path cache;
    fs::path repo_dir;
    std::string endpoint;
    bool has_token = false;
    bool show_progress = true;
    bool with_weights = true;
    std::function<void(const fs::path&)> check_config;
    std::unique_ptr<HttpClient> http;

    std::string resolve_url(const std::string& commit, const std::string& file) const {
        return endpoint + "/" + id.repo + "/resolve/" + quote(commit, false) + "/" +
               quote(file, true);
    }

    [[noreturn]] void fail_unreachable(const HttpResponse& response) const {
        throw Error("cannot reach " + endpoint + " to download " + model + " (" +
                    response.transport_error +
                    "). Download it on a machine with network access (`attnviz download " + model +
                    "`, or `hf download " + id.repo +
                    "` from Python's huggingface_hub) and copy its folder " +
                    repo_dir.filename().string() + " into " + cache.string() +
                    " (HF_HUB_CACHE), or point --model at a folder holding config.json, the "
                    "tokenizer files and the weights");
    }

    // An HTTP error as something the user can act on. `file` is empty for the API.
    [[noreturn]] void fail_status(const HttpResponse& response, const std::string& file) const {
        const std::string code = response.header("x-error-code");
        const std::string server_says = response.header("x-error-message").empty()
                                            ? first_line(response.body)
                                            : response.header("x-error-message");
        const std::string status = "HTTP " + std::to_string(response.status);
        const std::string what = file.empty() ? model : file + " of " + model;
        if (code == "RepoNotFound")
            throw Error("no model " + id.repo + " on " + endpoint + " (" + status +
                        "): check the name" +
                        (has_token ? ""
                                   : "; if it is private, set HF_TOKEN to a token that can "
                                     "read it"));
        if (code == "RevisionNotFound")
            throw Error("model " + id.repo + " has no revision '" + id.revision + "' (" + status +
                        ")");
        if (code == "EntryNotFound" || (response.status == 404 && !file.empty()))
            throw Error("model " + id.repo + " has no file " + file + " at revision " +
                        id.revision + " (" + status + ")");
        if (response.status == 401 || response.status == 403 || code == "GatedRepo")
            throw Error("access to " + what + " was refused (" + status +
                        (server_says.empty() ? "" : ": " + server_says) +
                        "). The model is gated or private: accept its terms on " + endpoint + "/" +
                        id.repo + " and set HF_TOKEN to an access token " +
                        (has_token ? "that has been granted access"
                                   : "(none is set), or log in with `hf auth login`"));
        if (response.status == 404)
            throw Error("no model " + id.repo + " on " + endpoint + " (" + status + ")");
        throw Error("the hub answered " + status + " for " + what +
                    (server_says.empty() ? "" : ": " + server_says));
    }
};

struct FileMetadata {
    std::string commit;
    std::string etag;
    uint64_t size = 0;
    bool lfs = false;
    std::string url;  // where the bytes are: the CDN for LFS files
};

// HEAD /{repo}/resolve/{commit}/{file}: the headers say which blob it is.
// nullopt for a file the repo does not have, when `may_be_absent`.
std::optional<FileMetadata> file_metadata(Session& session, const std::string& revision,
                                          const std::string& file, bool may_be_absent) {
    const std::string url = session.resolve_url(revision, file);
    const HttpResponse response = session.http->head(url);
    if (response.transport != Transport::ok) session.fail_unreachable(response);
    if (response.status == 404 && may_be_absent &&
        response.header("x-error-code") != "RepoNotFound" &&
        response.header("x-error-code") != "RevisionNotFound")
        return std::nullopt;
    if (response.status >= 400) session.fail_status(response, file);
    FileMetadata metadata;
    metadata.commit = response.header("x-repo-commit");
    const std::string linked_etag = response.header("x-linked-etag");
    metadata.lfs = !linked_etag.empty();
    metadata.etag = normalize_etag(metadata.lfs ? linked_etag : response.header("etag"));
    const std::string size = response.header(metadata.lfs ? "x-linked-size" : "content-length");
    metadata.size = size.empty() ? 0 : std::strtoull(size.c_str(), nullptr, 10);
    const std::string location = response.header("location");
    metadata.url =
        response.status >= 300 && response.status < 400 && !location.empty() ? location : url;
    if (metadata.url.starts_with("/")) metadata.url = session.endpoint + metadata.url;
    if (!hub::is_commit_id(metadata.commit))
        throw Error(session.endpoint + " gave no usable X-Repo-Commit for " + file + " of " +
                    session.model + ": '" + metadata.commit + "'");
    if (!safe_token(metadata.etag))
        throw Error(session.endpoint + " gave no usable ETag for " + file + " of " + session.model +
                    ": '" + metadata.etag + "'");
    return metadata;
}

// Downloads one blob into blobs/<etag>: resume from <etag>.incomplete, check
// its size and (for LFS files) its SHA-256, then rename it into place, so a
// blob in the cache is always whole and right.
void fetch_blob(Session& session, const std::string& file, const FileMetadata& metadata) {
    const fs::path blobs = session.repo_dir / "blobs";
    const fs::path blob = blobs / metadata.etag;
    hub::BlobLock lock(session.cache, session.id.repo, metadata.etag);
    std::error_code error;
    if (fs::is_regular_file(blob, error)) return;
    fs::create_directories(blobs, error);
    if (error) throw Error("cannot create " + blobs.string() + ": " + error.message());
    const fs::path incomplete = blob.string() + ".incomplete";

    // Longer than the file can be: not a prefix of it, so start again.
    if (metadata.size > 0 && fs::exists(incomplete, error) &&
        fs::file_size(incomplete, error) > metadata.size)
        fs::remove(incomplete, error);
    hub::ProgressBar progress(file, session.show_progress);
    if (fs::exists(incomplete, error)) progress.resumed_from(fs::file_size(incomplete, error));
    const hub::ProgressCallback on_progress = [&](uint64_t done, uint64_t total) {
        progress.update(done, total ? total : metadata.size);
    };
    for (int attempt = 1;; ++attempt) {
        // Already whole: an earlier run stopped between the last byte and the rename.
        if (metadata.size > 0 && fs::exists(incomplete, error) &&
            fs::file_size(incomplete, error) == metadata.size)
            break;
        const HttpResponse response = session.http->download(
            metadata.url, incomplete, on_progress, same_origin(metadata.url, session.endpoint));
        // Busy or failing for a moment (429, 5xx): worth another try, like a drop.
        const bool transient = response.transport == Transport::ok &&
                               (response.status == 429 || response.status >= 500);
        if (response.transport == Transport::ok && response.status >= 400 && !transient)
            session.fail_status(response, file);
        if (response.transport == Transport::ok && !transient) break;
        if (attempt == kDownloadAttempts) {
            if (response.transport == Transport::unreachable) session.fail_unreachable(response);
            if (transient) session.fail_status(response, file);
            throw Error("downloading " + file + " of " + session.model + " failed " +
                        std::to_string(attempt) + " times (" + response.transport_error +
                        "); run the command again to resume from " + incomplete.string());
        }
        // A dropped connection resumes at once; a refused or busy server gets a moment.
        if (response.transport == Transport::unreachable || transient)
            std::this_thread::sleep_for(std::chrono::milliseconds(250 * attempt));
    }

    const uint64_t size = fs::file_size(incomplete);
    if (metadata.size > 0 && size != metadata.size) {
        fs::remove(incomplete, error);
        throw Error("downloaded " + file + " of " + session.model + " has " + std::to_string(size) +
                    " bytes, but the hub says " + std::to_string(metadata.size) +
                    "; the partial file was deleted, run again");
    }
    if (metadata.lfs && is_sha256(metadata.etag)) {
        const std::string sha256 = hub::file_sha256(incomplete);
        if (sha256 != metadata.etag) {
            fs::remove(incomplete, error);
            throw Error("downloaded " + file + " of " + session.model +
                        " is corrupted: its SHA-256 is " + sha256 + " but the hub says " +
                        metadata.etag + "; it was deleted and not put in the cache");
        }
    }
    fs::rename(incomplete, blob, error);
    if (error)
        throw Error("cannot move " + incomplete.string() + " to " + blob.string() + ": " +
                    error.message());
}

// Fetches `file` at `commit` unless the snapshot already has it. Returns false
// for a file the repo does not have, when `may_be_absent`.
bool fetch_file(Session& session, const std::string& commit, const std::string& file,
                bool may_be_absent) {
    if (!safe_file_name(file)) throw Error("the hub listed an unsafe file name: " + file);
    std::error_code error;
    if (fs::is_regular_file(session.repo_dir / "snapshots" / commit / file, error)) return true;
    const std::optional<FileMetadata> metadata =
        file_metadata(session, commit, file, may_be_absent);
    if (!metadata) return false;
    fetch_blob(session, file, *metadata);
    hub::link_snapshot_file(session.repo_dir, commit, file, metadata->etag);
    return true;
}

struct RepoListing {
    std::string commit;
    std::vector<std::string> files;
    bool known = false;  // false: a mirror without the API; probe file by file
};

// GET /api/models/{repo}/revision/{revision}: the commit and the file list.
RepoListing list_repo(Session& session) {
    const std::string url = session.endpoint + "/api/models/" + session.id.repo + "/revision/" +
                            quote(session.id.revision, false);
    const HttpResponse response = session.http->get(url);
    if (response.transport != Transport::ok) session.fail_unreachable(response);
    RepoListing listing;
    if (response.status != 200) {
        // The hub names its errors; a server that does not is a mirror without the API.
        if (!response.header("x-error-code").empty() || response.status == 401 ||
            response.status == 403)
            session.fail_status(response, "");
        return listing;
    }
    try {
        const nlohmann::json info = nlohmann::json::parse(response.body);
        listing.commit = info.at("sha").get<std::string>();
        for (const auto& sibling : info.at("siblings"))
            listing.files.push_back(sibling.at("rfilename").get<std::string>());
    } catch (const nlohmann::json::exception& e) {
        throw Error("unexpected answer from " + url + ": " + e.what());
    }
    if (!hub::is_commit_id(listing.commit))
        throw Error("unexpected commit id from " + url + ": '" + listing.commit + "'");
    listing.known = true;
    return listing;
}

fs::path download(Session& session) {
    RepoListing listing = list_repo(session);
    std::vector<std::string> wanted;
    if (listing.known) {
        wanted = hub::wanted_files(listing.files, session.with_weights);
        if (std::find(wanted.begin(), wanted.end(), "config.json") == wanted.end())
            throw Error("model " + session.id.repo +
                        " has no config.json: it is not a transformers model attnviz can load");
    } else {
        // Without a file list, config.json's HEAD gives the commit; the other
        // files are tried one by one.
        listing.commit = file_metadata(session, session.id.revision, "config.json", false)->commit;
        wanted = {"config.json"};
    }
    const std::string& commit = listing.commit;
    const fs::path snapshot = session.repo_dir / "snapshots" / commit;
    // config.json first: it may refuse the model before any weights are fetched.
    fetch_file(session, commit, "config.json", false);
    if (session.with_weights && session.check_config) session.check_config(snapshot);
    for (const std::string& file : wanted) fetch_file(session, commit, file, false);
    if (!listing.known) {
        for (const std::string& file : hub::kTokenizerFiles)
            if (fetch_file(session, commit, file, true)) wanted.push_back(file);
        if (session.with_weights) {
            const auto weights = std::find_if(
                hub::kWeightFiles.begin(), hub::kWeightFiles.end(),
                [&](const std::string& file) { return fetch_file(session, commit, file, true); });
            if (weights == hub::kWeightFiles.end())
                throw Error("model " + session.id.repo +
                            " has neither model.safetensors nor pytorch_model.bin");
            wanted.push_back(*weights);
        }
    }
    for (const std::string& file : wanted)
        if (file.ends_with(".index.json"))
            for (const std::string& shard : hub::index_shards(snapshot / file))
                fetch_file(session, commit, shard, false);
    hub::write_ref(session.repo_dir, session.id.revision, commit);
    const std::vector<std::string> missing =
        hub::missing_model_files(snapshot, session.with_weights);
    if (!missing.empty())
        throw Error("model " + session.id.repo + " lacks files attnviz needs: " + missing.front());
    return snapshot;
}

Session open_session(const std::string& model, const HubOptions& options) {
    Session session;
    session.model = model;
    session.id = parse_repo_id(model);
    session.cache = options.cache_dir.empty() ? hub_cache_dir() : options.cache_dir;
    session.repo_dir = hub::repo_folder(session.cache, session.id.repo);
    session.endpoint = !options.endpoint.empty()     ? options.endpoint
                       : !env("HF_ENDPOINT").empty() ? env("HF_ENDPOINT")
                                                     : kDefaultEndpoint;
    while (session.endpoint.ends_with("/")) session.endpoint.pop_back();
    session.show_progress = options.show_progress && !env_is_true("HF_HUB_DISABLE_PROGRESS_BARS");
    session.with_weights = !options.tokenizer_only;
    session.check_config = options.check_config;
    return session;
}

void connect(Session& session, const HubOptions& options) {
    std::string token = options.token.empty() ? env("HF_TOKEN") : options.token;
    if (token.empty()) {
        const fs::path token_file =
            env("HF_TOKEN_PATH").empty() ? hf_home() / "token" : expand_home(env("HF_TOKEN_PATH"));
        std::error_code error;
        if (fs::is_regular_file(token_file, error)) {
            token = io::read_file(token_file);
            while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
                token.pop_back();
        }
    }
    session.has_token = !token.empty();
    session.http = std::make_unique<HttpClient>(session.has_token ? "Bearer " + token : "");
}

bool offline(const HubOptions& options) { return options.offline || env_is_true("HF_HUB_OFFLINE"); }

}  // namespace

RepoId parse_repo_id(std::string_view model) {
    RepoId id;
    std::string_view name = model;
    if (const size_t at = model.find('@'); at != std::string_view::npos) {
        id.revision = std::string(model.substr(at + 1));
        name = model.substr(0, at);
        if (id.revision.empty() || id.revision.front() == '/' || id.revision.back() == '/' ||
            !safe_file_name(id.revision))
            throw Error("invalid revision in '" + std::string(model) + "'");
    }
    const size_t slash = name.find('/');
    const bool valid =
        (slash == std::string_view::npos
             ? valid_repo_part(name)
             : valid_repo_part(name.substr(0, slash)) && valid_repo_part(name.substr(slash + 1))) &&
        name.find("--") == std::string_view::npos && name.find("..") == std::string_view::npos &&
        !name.ends_with(".git");
    if (!valid)
        throw Error("'" + std::string(model) +
                    "' is neither a folder nor a Hugging Face model id (name, org/name, or "
                    "org/name@revision)");
    id.repo = std::string(name);
    return id;
}

fs::path hub_cache_dir() {
    if (const std::string cache = env("HF_HUB_CACHE"); !cache.empty()) return expand_home(cache);
    if (const std::string legacy = env("HUGGINGFACE_HUB_CACHE"); !legacy.empty())
        return expand_home(legacy);
    return hf_home() / "hub";
}

fs::path resolve_model(const std::string& model, const HubOptions& options) {
    std::error_code error;
    if (fs::is_directory(model, error)) return model;
    const bool looks_like_path = model.starts_with("/") || model.starts_with("./") ||
                                 model.starts_with("../") || model.starts_with("~") ||
                                 std::count(model.begin(), model.end(), '/') > 1;
    if (looks_like_path) throw Error("no such folder: " + model);

    Session session = open_session(model, options);
    std::vector<std::string> missing = {"no snapshot for revision " + session.id.revision};
    if (const auto commit = hub::cached_commit(session.repo_dir, session.id.revision)) {
        const fs::path snapshot = session.repo_dir / "snapshots" / *commit;
        if (fs::is_directory(snapshot, error)) {
            missing = hub::missing_model_files(snapshot, session.with_weights);
            if (missing.empty()) return snapshot;
        }
    }
    if (offline(options))
        throw Error(model + " is not in the Hugging Face cache (" + session.repo_dir.string() +
                    ": " + missing.front() +
                    ") and offline mode (--offline or HF_HUB_OFFLINE=1) forbids downloading it. "
                    "Download it where there is network (`attnviz download " +
                    model + "`) and copy the folder into " + session.cache.string() +
                    ", or point --model at a folder holding the model's files");
    connect(session, options);
    return download(session);
}

fs::path download_model(const std::string& model, const HubOptions& options) {
    Session session = open_session(model, options);
    if (offline(options))
        throw Error("cannot download " + model +
                    ": offline mode (--offline or HF_HUB_OFFLINE=1) forbids the network");
    connect(session, options);
    return download(session);
}

}  // namespace attnviz
