// A small blocking HTTP client over libcurl for the hub: HEAD without following
// cross-host redirects, GET into memory, and GET into a file with resume (Range).
// It knows nothing of Hugging Face; hub.cpp builds the URLs and reads the headers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace attnviz::hub {

enum class Transport {
    ok,           // a response arrived (any HTTP status)
    unreachable,  // no connection: no network, unknown host, refused, timed out
    interrupted,  // the connection broke while the body arrived
};

struct HttpResponse {
    Transport transport = Transport::ok;
    std::string transport_error;  // libcurl's words when transport != ok
    long status = 0;
    std::map<std::string, std::string> headers;  // lowercase names, of the last response
    std::string body;                            // empty for HEAD and for downloads

    std::string header(const std::string& lowercase_name) const;
};

// Called while a body arrives: bytes in the file so far (a resumed prefix
// included) and the expected total, or 0 while unknown.
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

class HttpClient {
public:
    // `authorization` ("Bearer hf_...", or empty) goes with requests to the hub;
    // libcurl drops it when a redirect leaves the original host.
    explicit HttpClient(std::string authorization);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // HEAD, following only relative redirects (same host) as huggingface_hub
    // does: an LFS file's redirect to its CDN carries the file's metadata.
    HttpResponse head(const std::string& url);
    // GET into memory, following every redirect.
    HttpResponse get(const std::string& url);
    // GET appended to `file`, resuming from its current size with a Range
    // request; a server that ignores Range restarts the file. A non-2xx
    // status leaves the file as it was and puts the server's text in body.
    // A CDN's signed URL gets no credentials: send_authorization false.
    HttpResponse download(const std::string& url, const std::filesystem::path& file,
                          const ProgressCallback& progress, bool send_authorization);

private:
    std::vector<std::string> headers(bool send_authorization) const;

    void* curl_;  // CURL*, reused so that requests share one connection
    std::string authorization_;
};

}  // namespace attnviz::hub
