#include "hub/http.h"

#include <curl/curl.h>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "attnviz/error.h"

namespace attnviz::hub {

namespace {

CURL* handle(void* curl) { return static_cast<CURL*>(curl); }

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string trim(const std::string& text) {
    const size_t begin = text.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) return "";
    const size_t end = text.find_last_not_of(" \t\r\n");
    return text.substr(begin, end - begin + 1);
}

// Collects the headers of the last response: a new status line starts afresh,
// so after redirects only the final response's headers remain.
size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* headers = static_cast<std::map<std::string, std::string>*>(user);
    const std::string line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {
        headers->clear();
    } else if (const size_t colon = line.find(':'); colon != std::string::npos) {
        (*headers)[lowercase(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return size * count;
}

size_t on_body_to_string(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

// What a download's write callback needs: where to write, what was there, and
// what went wrong if it stops the transfer.
struct DownloadSink {
    CURL* curl = nullptr;
    FILE* file = nullptr;
    std::filesystem::path path;
    uint64_t resumed_from = 0;  // bytes already in the file when the request went out
    uint64_t written = 0;       // bytes in the file now
    uint64_t total = 0;         // expected final size, 0 while unknown
    bool started = false;
    bool to_body = false;  // an error status: the body is the server's message
    std::string body;
    std::string failure;  // why the callback stopped the transfer
    const ProgressCallback* progress = nullptr;
};

uint64_t content_length(CURL* curl) {
    curl_off_t length = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    return length > 0 ? static_cast<uint64_t>(length) : 0;
}

// The first bytes of a body decide where it goes: a 206 continues the file, a
// 200 replaces it (the server ignored Range), anything else is an error text.
bool start_body(DownloadSink& sink, const std::map<std::string, std::string>& headers) {
    long status = 0;
    curl_easy_getinfo(sink.curl, CURLINFO_RESPONSE_CODE, &status);
    sink.started = true;
    if (status == 206) {
        const auto range = headers.find("content-range");  // "bytes 100-999/1000"
        unsigned long long first = 0, last = 0, size = 0;
        if (range == headers.end() ||
            std::sscanf(range->second.c_str(), "bytes %llu-%llu/%llu", &first, &last, &size) != 3 ||
            first != sink.resumed_from) {
            sink.failure = "the server answered a resume request from byte " +
                           std::to_string(sink.resumed_from) + " with Content-Range '" +
                           (range == headers.end() ? std::string() : range->second) + "'";
            return false;
        }
        sink.total = size;
        return true;
    }
    if (status == 200) {
        if (sink.resumed_from > 0) {
            if (std::fflush(sink.file) != 0 || ::ftruncate(fileno(sink.file), 0) != 0) {
                sink.failure =
                    "cannot truncate " + sink.path.string() + ": " + std::strerror(errno);
                return false;
            }
            std::rewind(sink.file);
            sink.resumed_from = sink.written = 0;
        }
        sink.total = content_length(sink.curl);
        return true;
    }
    sink.to_body = true;
    return true;
}

struct DownloadCallbackData {
    DownloadSink* sink;
    std::map<std::string, std::string>* headers;
};

size_t on_body_to_file(char* data, size_t size, size_t count, void* user) {
    auto* callback = static_cast<DownloadCallbackData*>(user);
    DownloadSink& sink = *callback->sink;
    const size_t bytes = size * count;
    if (!sink.started && !start_body(sink, *callback->headers)) return 0;
    if (sink.to_body) {
        if (sink.body.size() < 65536) sink.body.append(data, bytes);
        return bytes;
    }
    if (std::fwrite(data, 1, bytes, sink.file) != bytes) {
        sink.failure = "cannot write " + sink.path.string() + ": " + std::strerror(errno);
        return 0;
    }
    sink.written += bytes;
    if (*sink.progress) (*sink.progress)(sink.written, sink.total);
    return bytes;
}

void classify(CURL* curl, CURLcode code, const char* error_buffer, HttpResponse& response) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    if (code == CURLE_OK) return;
    response.transport_error = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    // No status line at all means we never reached the server.
    response.transport = response.status == 0 ? Transport::unreachable : Transport::interrupted;
}

std::string origin_of(const std::string& url) {  // "http://host:port" of a URL
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return "";
    const size_t path = url.find('/', scheme + 3);
    return path == std::string::npos ? url : url.substr(0, path);
}

}  // namespace

std::string HttpResponse::header(const std::string& lowercase_name) const {
    const auto found = headers.find(lowercase_name);
    return found == headers.end() ? std::string() : found->second;
}

HttpClient::HttpClient(std::string authorization) : authorization_(std::move(authorization)) {
    static std::once_flag initialized;
    std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (!curl_) throw Error("cannot initialize libcurl");
}

HttpClient::~HttpClient() { curl_easy_cleanup(handle(curl_)); }

std::vector<std::string> HttpClient::headers(bool send_authorization) const {
    std::vector<std::string> list;
    if (send_authorization && !authorization_.empty())
        list.push_back("Authorization: " + authorization_);
    return list;
}

namespace {

// Options every request shares; the caller adds method and body handling.
struct PreparedRequest {
    curl_slist* header_list = nullptr;
    char error_buffer[CURL_ERROR_SIZE] = {};
    ~PreparedRequest() { curl_slist_free_all(header_list); }
};

void prepare(CURL* curl, const std::string& url, const std::vector<std::string>& headers,
             PreparedRequest& request, std::map<std::string, std::string>* response_headers) {
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "attnviz/" ATTNVIZ_HUB_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, request.error_buffer);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    // A stalled transfer (under 1 byte/s for 30 s) ends as interrupted.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    for (const std::string& header : headers)
        request.header_list = curl_slist_append(request.header_list, header.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, request.header_list);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, response_headers);
}

}  // namespace

HttpResponse HttpClient::head(const std::string& url) {
    std::string current = url;
    for (int redirects = 0;; ++redirects) {
        HttpResponse response;
        PreparedRequest request;
        // Each hop of a relative redirect stays on the hub's host.
        std::vector<std::string> list = headers(true);
        list.push_back("Accept-Encoding: identity");
        prepare(handle(curl_), current, list, request, &response.headers);
        curl_easy_setopt(handle(curl_), CURLOPT_NOBODY, 1L);
        const CURLcode code = curl_easy_perform(handle(curl_));
        classify(handle(curl_), code, request.error_buffer, response);
        const std::string location = response.header("location");
        const bool relative_redirect = response.status >= 300 && response.status < 400 &&
                                       location.rfind("/", 0) == 0 && location.rfind("//", 0) != 0;
        if (response.transport != Transport::ok || !relative_redirect || redirects == 10)
            return response;
        current = origin_of(current) + location;
    }
}

HttpResponse HttpClient::get(const std::string& url) {
    HttpResponse response;
    PreparedRequest request;
    prepare(handle(curl_), url, headers(true), request, &response.headers);
    curl_easy_setopt(handle(curl_), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(handle(curl_), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(handle(curl_), CURLOPT_WRITEFUNCTION, on_body_to_string);
    curl_easy_setopt(handle(curl_), CURLOPT_WRITEDATA, &response.body);
    const CURLcode code = curl_easy_perform(handle(curl_));
    classify(handle(curl_), code, request.error_buffer, response);
    return response;
}

HttpResponse HttpClient::download(const std::string& url, const std::filesystem::path& file,
                                  const ProgressCallback& progress, bool send_authorization) {
    DownloadSink sink;
    sink.curl = handle(curl_);
    sink.path = file;
    sink.progress = &progress;
    sink.file = std::fopen(file.c_str(), "ab");
    if (!sink.file) throw Error("cannot open " + file.string() + ": " + std::strerror(errno));
    sink.resumed_from = sink.written = static_cast<uint64_t>(std::ftell(sink.file));

    HttpResponse response;
    PreparedRequest request;
    std::vector<std::string> list = headers(send_authorization);
    list.push_back("Accept-Encoding: identity");
    if (sink.resumed_from > 0)
        list.push_back("Range: bytes=" + std::to_string(sink.resumed_from) + "-");
    prepare(handle(curl_), url, list, request, &response.headers);
    DownloadCallbackData callback{&sink, &response.headers};
    curl_easy_setopt(handle(curl_), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(handle(curl_), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(handle(curl_), CURLOPT_WRITEFUNCTION, on_body_to_file);
    curl_easy_setopt(handle(curl_), CURLOPT_WRITEDATA, &callback);
    const CURLcode code = curl_easy_perform(handle(curl_));
    const bool closed = std::fclose(sink.file) == 0;
    if (!sink.failure.empty()) throw Error(sink.failure);
    if (!closed) throw Error("cannot write " + file.string() + ": " + std::strerror(errno));
    classify(handle(curl_), code, request.error_buffer, response);
    response.body = std::move(sink.body);
    return response;
}

}  // namespace attnviz::hub
