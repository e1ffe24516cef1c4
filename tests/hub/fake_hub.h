// A fake Hugging Face hub on 127.0.0.1 (ephemeral port) for tests, with the
// real URL scheme and headers:
//   GET  /api/models/{repo}/revision/{rev}     {"id", "sha", "siblings": [{"rfilename"}]}
//   HEAD/GET /{repo}/resolve/{rev}/{file}       small files: 200, ETag = git blob sha1;
//                                               LFS files: 302 to /cdn/{sha256}, with
//                                               X-Linked-Etag and X-Linked-Size
//   GET  /cdn/{sha256}                          the LFS bytes, with Range requests
// plus X-Repo-Commit, 401 RepoNotFound / GatedRepo, 404 EntryNotFound, and knobs
// to drop a connection mid-file or to serve corrupted bytes. Every request is
// counted and logged.
#pragma once

#include <httplib.h>
#include <openssl/evp.h>

#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace fake_hub {

inline std::string hex_digest(const EVP_MD* md, const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &length, md, nullptr);
    static const char hex[] = "0123456789abcdef";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 15];
    }
    return text;
}
inline std::string sha256(const std::string& bytes) { return hex_digest(EVP_sha256(), bytes); }
// What git names a file: sha1("blob <size>\0" + bytes), the hub's ETag for small files.
inline std::string git_blob_sha1(const std::string& bytes) {
    return hex_digest(EVP_sha1(),
                      "blob " + std::to_string(bytes.size()) + std::string(1, '\0') + bytes);
}

// "\"etag\"", built by appending: GCC 12 sees a false -Wrestrict overlap in
// "\"" + std::string&& once enough of the caller is inlined.
inline std::string quoted(const std::string& text) {
    std::string result = "\"";
    result += text;
    result += '"';
    return result;
}

struct File {
    std::string bytes;
    bool lfs = false;
};

struct Repo {
    std::string commit;
    std::map<std::string, File> files;
    bool gated = false;  // needs "Authorization: Bearer <token>"
};

struct Request {
    std::string method, path, range, authorization;
};

class Server {
public:
    std::string token = "hf_test_token";
    std::string cdn_host = "127.0.0.1";      // "localhost": a CDN on another origin
    bool api_enabled = true;                 // false: a mirror without /api (404, no error code)
    std::atomic<int> drop_next_cdn_gets{0};  // that many /cdn GETs break off mid-body
    std::atomic<int> busy_next_cdn_gets{0};  // that many /cdn GETs answer 503
    size_t drop_after_bytes = 0;             // where they break off (bytes of the body sent)
    std::map<std::string, std::string> corrupt;  // sha256 -> bytes served instead
    // Renamed repos (bert-base-uncased -> google-bert/bert-base-uncased): the hub
    // answers the old name with a relative 307 to the new one.
    std::map<std::string, std::string> renamed;

    Server() {
        // Logged as they arrive: a logger runs after the response, too late for a
        // test that looks right after the client returns.
        server_.set_pre_routing_handler([this](const httplib::Request& request,
                                               httplib::Response&) {
            std::lock_guard<std::mutex> lock(mutex_);
            requests_.push_back({request.method, request.path, request.get_header_value("Range"),
                                 request.get_header_value("Authorization")});
            return httplib::Server::HandlerResponse::Unhandled;
        });
        server_.Get(R"(/api/models/(.+)/revision/([^/]+))",
                    [this](const httplib::Request& request, httplib::Response& response) {
                        api(request, response);
                    });
        server_.Get(R"(/(.+?)/resolve/([^/]+)/(.+))",
                    [this](const httplib::Request& request, httplib::Response& response) {
                        resolve(request, response);
                    });
        server_.Get(R"(/cdn/([0-9a-f]{64}))",
                    [this](const httplib::Request& request, httplib::Response& response) {
                        cdn(request, response);
                    });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::yield();
    }
    ~Server() {
        server_.stop();
        thread_.join();
    }

    void add_repo(const std::string& name, Repo repo) {
        std::lock_guard<std::mutex> lock(mutex_);
        repos_[name] = std::move(repo);
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<Request> requests() {
        std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }
    size_t request_count() {
        std::lock_guard<std::mutex> lock(mutex_);
        return requests_.size();
    }

private:
    // The repo a request names, or an error response as the hub gives it.
    const Repo* find_repo(const std::string& name, const httplib::Request& request,
                          httplib::Response& response) {
        const auto found = repos_.find(name);
        if (found == repos_.end()) {  // the hub says 401 so as not to reveal private repos
            response.status = 401;
            response.set_header("X-Error-Code", "RepoNotFound");
            response.set_content("Repository not found", "text/plain");
            return nullptr;
        }
        if (found->second.gated && request.get_header_value("Authorization") != "Bearer " + token) {
            response.status = request.has_header("Authorization") ? 403 : 401;
            response.set_header("X-Error-Code", "GatedRepo");
            response.set_header("X-Error-Message", "Access to model " + name + " is restricted.");
            response.set_content("gated", "text/plain");
            return nullptr;
        }
        return &found->second;
    }

    // A relative 307 from an old repo name to its new one; false for other names.
    bool redirect_renamed(const httplib::Request& request, httplib::Response& response,
                          const std::string& prefix) {
        const std::string name = request.matches[1];
        const auto found = renamed.find(name);
        if (found == renamed.end()) return false;
        response.status = 307;
        response.set_header(
            "Location", prefix + found->second + request.path.substr(prefix.size() + name.size()));
        return true;
    }

    void api(const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (redirect_renamed(request, response, "/api/models/")) return;
        if (!api_enabled) {
            response.status = 404;
            response.set_content("Not Found", "text/plain");
            return;
        }
        const Repo* repo = find_repo(request.matches[1], request, response);
        if (!repo) return;
        if (request.matches[2] != "main" && request.matches[2] != repo->commit) {
            response.status = 404;
            response.set_header("X-Error-Code", "RevisionNotFound");
            return;
        }
        std::string siblings;
        for (const auto& [name, file] : repo->files)
            siblings +=
                std::string(siblings.empty() ? "" : ",") + "{\"rfilename\":\"" + name + "\"}";
        response.set_content("{\"id\":\"" + std::string(request.matches[1]) + "\",\"sha\":\"" +
                                 repo->commit + "\",\"siblings\":[" + siblings + "]}",
                             "application/json");
    }

    void resolve(const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (redirect_renamed(request, response, "/")) return;
        const Repo* repo = find_repo(request.matches[1], request, response);
        if (!repo) return;
        if (request.matches[2] != "main" && request.matches[2] != repo->commit) {
            response.status = 404;
            response.set_header("X-Error-Code", "RevisionNotFound");
            return;
        }
        response.set_header("X-Repo-Commit", repo->commit);
        const auto file = repo->files.find(request.matches[3]);
        if (file == repo->files.end()) {
            response.status = 404;
            response.set_header("X-Error-Code", "EntryNotFound");
            response.set_content("Entry not found", "text/plain");
            return;
        }
        if (file->second.lfs) {
            const std::string hash = sha256(file->second.bytes);
            response.status = 302;
            response.set_header(
                "Location", "http://" + cdn_host + ":" + std::to_string(port_) + "/cdn/" + hash);
            response.set_header("X-Linked-Etag", quoted(hash));
            response.set_header("X-Linked-Size", std::to_string(file->second.bytes.size()));
            response.set_header("ETag", quoted(git_blob_sha1("pointer " + hash)));
            return;
        }
        response.set_header("ETag", quoted(git_blob_sha1(file->second.bytes)));
        response.set_content(file->second.bytes, "application/octet-stream");
    }

    void cdn(const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::string hash = request.matches[1];
        const std::string* bytes = nullptr;
        for (const auto& [name, repo] : repos_)
            for (const auto& [file_name, file] : repo.files)
                if (file.lfs && sha256(file.bytes) == hash) bytes = &file.bytes;
        if (!bytes) {
            response.status = 404;
            return;
        }
        if (request.method == "GET" && busy_next_cdn_gets > 0) {
            --busy_next_cdn_gets;
            response.status = 503;
            response.set_content("Slow down", "text/plain");
            return;
        }
        std::string body = corrupt.count(hash) ? corrupt[hash] : *bytes;
        // httplib cuts the Range out of the content and answers 206 itself.
        const bool drop = request.method == "GET" && drop_next_cdn_gets > 0;
        if (drop) --drop_next_cdn_gets;
        const size_t limit = drop ? drop_after_bytes : std::string::npos;
        response.set_content_provider(
            body.size(), "application/octet-stream",
            [body, limit](size_t offset, size_t length, httplib::DataSink& sink) {
                if (offset >= limit) return false;  // hang up mid-body
                const size_t end = std::min(offset + length, limit);
                sink.write(body.data() + offset, end - offset);
                return end == offset + length;
            });
    }

    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::map<std::string, Repo> repos_;
    std::vector<Request> requests_;
};

}  // namespace fake_hub
