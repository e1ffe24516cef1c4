#include "serve/server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis_flags.h"
#include "attnviz/error.h"
#include "attnviz/export.h"
#include "attnviz/files.h"
#include "attnviz/views.h"
#include "cli.h"
#include "serve/page_assets.h"
#include "serve/queries.h"
#include "serve/trace_store.h"

namespace attnviz::serve {

std::string random_token() {
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    unsigned char bytes[32];
    if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes))
        throw Error("cannot read /dev/urandom for the server's token");
    static const char hex[] = "0123456789abcdef";
    std::string token;
    for (unsigned char byte : bytes) {
        token += hex[byte >> 4];
        token += hex[byte & 15];
    }
    return token;
}

namespace {

using json = nlohmann::json;

// An error the client caused (or could avoid), with its HTTP status.
struct HttpError : Error {
    int status;
    HttpError(int status_code, const std::string& message) : Error(message), status(status_code) {}
};

// JSON answers are sent uncompressed: cpp-httplib brotli-compresses a body whose type is
// exactly "application/json" when the browser accepts br, at its slowest quality (about
// 600 ms for an 85 KB payload, against 10 ms to send it over loopback). With the charset
// the type no longer matches its list.
constexpr const char* kJsonType = "application/json; charset=utf-8";

void send_json(httplib::Response& response, const json& body, int status = 200) {
    response.status = status;
    response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), kJsonType);
}

void send_error(httplib::Response& response, int status, std::string message) {
    std::replace(message.begin(), message.end(), '\n', ' ');
    send_json(response, {{"error", message}}, status);
}

bool same_secret(const std::string& given, const std::string& token) {
    // Constant time in the token's length: no early exit on the first difference.
    unsigned char difference = given.size() == token.size() ? 0 : 1;
    for (size_t i = 0; i < token.size(); ++i)
        difference |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    return difference == 0;
}

int int_param(const httplib::Request& request, const std::string& name,
              std::optional<int> fallback = std::nullopt) {
    if (!request.has_param(name.c_str())) {
        if (fallback) return *fallback;
        throw HttpError(400, "missing parameter " + name);
    }
    const std::string text = request.get_param_value(name.c_str());
    size_t used = 0;
    int value = 0;
    try {
        value = std::stoi(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size())
        throw HttpError(400, "parameter " + name + ": '" + text + "' is not a whole number");
    return value;
}

std::string param(const httplib::Request& request, const std::string& name,
                  const std::string& fallback = "") {
    return request.has_param(name.c_str()) ? request.get_param_value(name.c_str()) : fallback;
}

// A switch: "1" on, "0" off, absent nullopt (the default decides).
std::optional<bool> switch_param(const httplib::Request& request, const std::string& name) {
    if (!request.has_param(name.c_str())) return std::nullopt;
    const std::string text = request.get_param_value(name.c_str());
    if (text != "0" && text != "1")
        throw HttpError(400, "parameter " + name + ": '" + text + "' is not 0 or 1");
    return text == "1";
}

int head_param(const httplib::Request& request) {
    if (param(request, "head", "mean") == "mean") return kMeanOfHeads;
    return int_param(request, "head");
}

std::vector<View> parse_views(const std::string& text) {
    if (text == "all") return {View::head, View::model, View::neuron, View::matrix};
    std::vector<View> views;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        views.push_back(parse_view(text.substr(start, comma - start)));
        start = comma + 1;
    }
    return views;
}

// The view parameters, as `attnviz view`'s flags of the same names read them.
// The page's analysis tabs and word-level toggle (--rollout, --flow, --head-stats,
// --word-level): "1" or "0" where given, else the static page's default for this
// trace (default_view_analysis), decided where `attnviz view` decides it.
ViewOptions view_options(const httplib::Request& request, const std::string& default_views,
                         const AttentionTrace& trace) {
    ViewOptions options;
    options.views = parse_views(param(request, "view", default_views));
    if (request.has_param("layers"))
        options.layers = cli::parse_int_list(param(request, "layers"), "layers");
    if (request.has_param("heads"))
        options.heads = cli::parse_int_list(param(request, "heads"), "heads");
    if (request.has_param("open_layer")) options.open_layer = int_param(request, "open_layer");
    if (request.has_param("open_heads"))
        options.open_heads = cli::parse_int_list(param(request, "open_heads"), "open_heads");
    options.block = param(request, "block");
    options.analysis = cli::view_analysis(
        cli::AnalysisChoice{switch_param(request, "rollout"), switch_param(request, "flow"),
                            switch_param(request, "head_stats"),
                            switch_param(request, "word_level")},
        trace);
    return options;
}

// What `attnviz export` and `attnviz view` without the neuron view compute:
// the trace without the queries and keys the server keeps for that view.
AttentionTrace without_queries_keys(const AttentionTrace& trace) {
    AttentionTrace copy;
    copy.model_id = trace.model_id;
    copy.model_revision = trace.model_revision;
    copy.architecture = trace.architecture;
    copy.sequences = trace.sequences;
    copy.blocks.reserve(trace.blocks.size());
    copy.hidden_states = trace.hidden_states;
    copy.non_finite = trace.non_finite;
    for (const AttentionBlock& block : trace.blocks) {
        AttentionBlock stripped = block;
        stripped.head_dim = 0;
        stripped.queries.clear();
        stripped.keys.clear();
        stripped.score_bias_layers = 0;
        stripped.score_bias.clear();
        copy.blocks.push_back(std::move(stripped));
    }
    return copy;
}

json tokens_json(const TokenSequence& sequence) {
    json tokens = json::array();
    for (const TraceToken& token : sequence.tokens)
        tokens.push_back({{"text", token.text},
                          {"display", token.display},
                          {"special", token.special},
                          {"segment", token.segment},
                          {"offset", {token.offset.start, token.offset.end}}});
    return tokens;
}

// The placeholder answered while web/serve/serve.html is not written.
constexpr std::string_view kPlaceholderPage =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>attnviz "
    "serve</title><!--attnviz:style--></head><body><p>attnviz serve is running; its page "
    "(web/serve/serve.html) is not part of this build. The API is at /api/models.</p>"
    "<!--attnviz:script--></body></html>\n";

}  // namespace

struct Server::Impl {
    ServerOptions options;
    httplib::Server http;
    TraceStore traces;
    Tabs tabs;
    std::atomic<uint64_t> reserved{0};  // forward passes running: their estimates
    std::unique_ptr<ModelPool> pool;
    std::set<std::string> allowed_hosts;
    int port = 0;

    Impl(ServerOptions opts, std::vector<ModelSource> models)
        : options(std::move(opts)),
          traces(options.max_traces,
                 options.max_trace_bytes > 0 ? options.max_trace_bytes : options.budget / 4) {
        MemoryUse memory;
        memory.other_bytes = [this] { return traces.bytes() + reserved.load(); };
        memory.release_traces = [this](uint64_t bytes) { traces.release(bytes); };
        pool = std::make_unique<ModelPool>(
            std::move(models),
            ModelPool::Options{options.budget, options.max_tokens, options.offline},
            std::move(memory));
    }

    // Host must name this server (DNS rebinding); Origin, when sent, must be
    // this server's (cross-site requests); and the token must be given.
    bool allowed(const httplib::Request& request, httplib::Response& response) const {
        const std::string host = request.get_header_value("Host");
        if (!allowed_hosts.count(host)) {
            send_error(response, 403, "forbidden: the Host header must name this server");
            return false;
        }
        if (request.has_header("Origin")) {
            const std::string origin = request.get_header_value("Origin");
            if (!origin.starts_with("http://") || !allowed_hosts.count(origin.substr(7))) {
                send_error(response, 403, "forbidden: cross-origin request");
                return false;
            }
        }
        const std::string token = request.has_header("X-Attnviz-Token")
                                      ? request.get_header_value("X-Attnviz-Token")
                                      : request.get_param_value("token");
        if (!same_secret(token, options.token)) {
            send_error(response, 403,
                       "forbidden: a valid token is required (the URL attnviz "
                       "serve printed)");
            return false;
        }
        return true;
    }

    std::shared_ptr<const StoredTrace> stored(const std::string& id) {
        std::shared_ptr<const StoredTrace> trace = traces.get(id);
        if (!trace)
            throw HttpError(404, "no trace \"" + id +
                                     "\" (unknown, or evicted from the server's memory: run it "
                                     "again)");
        return trace;
    }

    void page(const httplib::Request&, httplib::Response& response) {
        const std::string nonce = random_token().substr(0, 32);
        std::string html(page_html.empty() ? kPlaceholderPage : page_html);
        const auto replace = [&html](std::string_view marker, const std::string& with) {
            const size_t at = html.find(marker);
            if (at != std::string::npos) html.replace(at, marker.size(), with);
        };
        replace("<!--attnviz:style-->",
                "<style>" + std::string(views_style()) + std::string(page_css) + "</style>");
        replace("<!--attnviz:script-->",
                "<script nonce=\"" + nonce + "\">(function () {\n\"use strict\";\n" +
                    std::string(views_script()) + "\n" + std::string(page_js) + "\n})();</script>");
        response.set_header("Content-Security-Policy",
                            "default-src 'none'; script-src 'nonce-" + nonce +
                                "'; style-src 'unsafe-inline'; img-src data: blob:; "
                                "connect-src 'self'");
        response.set_content(html, "text/html; charset=utf-8");
    }

    void models(const httplib::Request&, httplib::Response& response) {
        json list = json::array();
        for (const ModelStatus& model : pool->list())
            list.push_back({{"id", model.id},
                            {"path", model.path},
                            {"architecture", model.architecture},
                            {"state", state_name(model.state)},
                            {"progress", model.progress},
                            {"error", model.error},
                            {"encoder_decoder", model.encoder_decoder},
                            {"n_layers", model.n_layers},
                            {"n_heads", model.n_heads},
                            {"max_tokens", model.max_tokens},
                            {"weight_bytes", model.weight_bytes}});
        send_json(response, {{"models", list},
                             {"memory",
                              {{"budget", options.budget},
                               {"models", pool->model_bytes()},
                               {"traces", traces.bytes()},
                               {"running", reserved.load()},
                               {"kept_traces", traces.count()}}}});
    }

    static json body_json(const httplib::Request& request) {
        try {
            json body = json::parse(request.body);
            if (!body.is_object()) throw HttpError(400, "the request body must be a JSON object");
            return body;
        } catch (const json::parse_error& e) {
            const bool utf8 = valid_utf8_prefix(request.body) == request.body.size();
            throw HttpError(400, utf8 ? std::string("the request body is not JSON: ") + e.what()
                                      : "the request body is not valid UTF-8 (byte " +
                                            std::to_string(valid_utf8_prefix(request.body)) + ")");
        } catch (const json::exception& e) {  // a number too large for a double: 1e999
            throw HttpError(400, std::string("the request body is not usable JSON: ") + e.what());
        }
    }

    static std::optional<std::string> text_field(const json& body, const char* name,
                                                 bool required = false) {
        const auto found = body.find(name);
        if (found == body.end() || found->is_null()) {
            if (required) throw HttpError(400, std::string("missing \"") + name + "\"");
            return std::nullopt;
        }
        if (!found->is_string())
            throw HttpError(400, std::string("\"") + name + "\" must be a string");
        return found->get<std::string>();
    }

    void load(const httplib::Request& request, httplib::Response& response) {
        const json body = body_json(request);
        const std::string id = text_field(body, "model", true).value();
        if (!pool->has(id)) throw HttpError(404, "no model \"" + id + "\" on this server");
        pool->load(id);
        send_json(response, {{"model", id}}, 202);
    }

    void trace(const httplib::Request& request, httplib::Response& response) {
        const json body = body_json(request);
        const std::string model_id = text_field(body, "model", true).value();
        TraceRequest run_request;
        run_request.text = text_field(body, "text", true).value();
        run_request.text_pair = text_field(body, "text_pair");
        if (run_request.text_pair && run_request.text_pair->empty()) run_request.text_pair.reset();
        run_request.target = text_field(body, "target");
        const std::string tab = text_field(body, "tab").value_or("");
        int64_t seq = 0;
        if (body.contains("seq")) {
            if (!body["seq"].is_number_integer())
                throw HttpError(400, "\"seq\" must be an integer");
            seq = body["seq"].get<int64_t>();
        }
        // What the trace keeps (CaptureOptions): the request's choice, else all
        // of it for an input a page can hold, and less for a long one.
        CaptureOptions capture;
        const auto int_list = [&](const char* name) {
            std::vector<int> values;
            if (!body.contains(name)) return values;
            if (!body[name].is_array())
                throw HttpError(400, std::string("\"") + name + "\" must be a list of numbers");
            for (const json& value : body[name]) {
                if (!value.is_number_integer())
                    throw HttpError(400, std::string("\"") + name + "\" must be a list of numbers");
                values.push_back(value.get<int>());
            }
            return values;
        };
        capture.layers = int_list("layers");
        capture.heads = int_list("heads");
        if (body.contains("top_k")) {
            if (!body["top_k"].is_number_integer() || body["top_k"].get<int64_t>() < 0 ||
                body["top_k"].get<int64_t>() > 100000)
                throw HttpError(400, "\"top_k\" must be a whole number from 0 to 100000");
            capture.top_k = body["top_k"].get<int>();
        }
        if (body.contains("fp16")) {
            if (!body["fp16"].is_boolean()) throw HttpError(400, "\"fp16\" must be true or false");
            capture.fp16 = body["fp16"].get<bool>();
        }
        const bool capture_given = body.contains("layers") || body.contains("heads") ||
                                   body.contains("top_k") || body.contains("fp16");
        if (!pool->has(model_id))
            throw HttpError(400, "no model \"" + model_id + "\" on this server (see /api/models)");
        const auto superseded = [&] {
            return HttpError(409, "superseded by a newer request of the same tab");
        };
        if (!tabs.start(tab, seq)) throw superseded();
        pool->wake();  // an older request of this tab, waiting for its model, gives up
        const auto stale = [&] { return tabs.stale(tab, seq); };

        std::unique_ptr<ModelPool::Run> run;
        try {
            run = pool->acquire(model_id, stale);
        } catch (const HttpError&) {
            throw;
        } catch (const Error& e) {
            throw HttpError(503, e.what());
        }
        if (!run) throw superseded();
        const Model& model = run->model;

        // The token limit, counted before any forward pass.
        size_t tokens_total = 0;
        try {
            const Encoding input =
                run_request.text_pair
                    ? model.tokenizer().encode_pair(run_request.text, *run_request.text_pair)
                    : model.tokenizer().encode(run_request.text);
            tokens_total = input.size();
            size_t longest = input.size();
            if (run_request.target) {
                const size_t target = model.tokenizer().encode(*run_request.target).size();
                tokens_total += target;
                longest = std::max(longest, target);
            }
            if (longest > run->max_tokens)
                throw HttpError(400, "the text is " + std::to_string(longest) +
                                         " tokens; this server runs at most " +
                                         std::to_string(run->max_tokens) + " on " + model_id +
                                         " (the model's limit, or serve --max-tokens)");
        } catch (const HttpError&) {
            throw;
        } catch (const Error& e) {
            throw HttpError(400, e.what());  // invalid UTF-8, a missing target
        }
        const bool long_input = tokens_total > kLongInputTokens;

        RunOptions run_options;
        run_options.threads = options.threads;
        run_options.keep_queries_keys = !long_input;  // the neuron view, for pages of moderate size
        run_options.capture = capture;
        if (long_input && !capture_given) {
            // A long input keeps what the page asks of it (tiles, top-k keys):
            // each query's most attended keys in binary16, every layer and head.
            run_options.capture.top_k = kLongInputTopK;
            run_options.capture.fp16 = true;
        }
        if (!run_options.capture.full()) run_options.keep_queries_keys = false;
        AttentionTrace result;
        double forward_ms = 0;
        {
            uint64_t estimate = 0;  // the forward pass and its trace, weights apart
            try {
                const MemoryEstimate full = model.estimate_memory(run_request, run_options);
                estimate = full.total() - full.weights;
            } catch (const Error& e) {
                throw HttpError(400, e.what());
            }
            // What the budget leaves this run: the other models, the kept traces
            // and the other forward passes apart. Kept traces go first if need be.
            const auto left = [&] {
                const uint64_t used =
                    pool->model_bytes() - run->weight_bytes + traces.bytes() + reserved.load();
                return options.budget > used ? options.budget - used : uint64_t{0};
            };
            if (left() < run->weight_bytes + estimate)
                traces.release(run->weight_bytes + estimate - left());
            run_options.max_memory = left();
            reserved += estimate;
            const auto start = std::chrono::steady_clock::now();
            try {
                result = model.trace(run_request, run_options);
            } catch (const MemoryBudgetError& e) {
                reserved -= estimate;
                throw HttpError(400, std::string(e.what()) +
                                         (e.fitting_tokens() > 0
                                              ? "; at most " + std::to_string(e.fitting_tokens()) +
                                                    " tokens fit now (serve --max-memory)"
                                              : "; serve --max-memory allows more"));
            } catch (const Error& e) {
                reserved -= estimate;
                throw HttpError(400, e.what());
            } catch (...) {
                reserved -= estimate;
                throw;
            }
            reserved -= estimate;
            forward_ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
        }
        run.reset();                      // the model is free for the next request
        if (stale()) throw superseded();  // the result is dropped

        auto kept = std::make_shared<StoredTrace>();
        kept->model = model_id;
        kept->long_input = long_input;
        kept->forward_ms = forward_ms;
        kept->trace = std::move(result);
        AttentionTrace& trace = kept->trace;
        json answer = {{"model", model_id},
                       {"forward_ms", forward_ms},
                       {"tokens_total", tokens_total},
                       {"long", long_input},
                       {"non_finite", trace.non_finite}};
        json sequences = json::array();
        for (const TokenSequence& sequence : trace.sequences)
            sequences.push_back({{"name", sequence.name}, {"tokens", tokens_json(sequence)}});
        json blocks = json::array();
        for (const AttentionBlock& block : trace.blocks)
            blocks.push_back({{"name", block.name},
                              {"n_layers", block.n_layers},
                              {"n_heads", block.n_heads},
                              {"n_queries", block.n_queries},
                              {"n_keys", block.n_keys},
                              {"causal", block.causal},
                              {"query_sequence", block.query_sequence},
                              {"key_sequence", block.key_sequence},
                              {"layer_ids", block.layer_ids},
                              {"head_ids", block.head_ids},
                              {"dense", block.has_dense_probs()},
                              {"fp16", !block.probs_fp16.empty()},
                              {"top_k", block.capture.top_k}});
        answer["sequences"] = std::move(sequences);
        answer["blocks"] = std::move(blocks);
        answer["trace_id"] = traces.add(std::move(kept));
        // Kept traces share the budget with the models and the running forward passes.
        const uint64_t others = pool->model_bytes() + reserved.load();
        traces.shrink_to(options.budget > others ? options.budget - others : 0);
        send_json(response, answer);
    }

    void payload(const httplib::Request& request, httplib::Response& response) {
        const auto kept = stored(param(request, "trace"));
        if (kept->long_input)
            throw HttpError(413, "the input is longer than " + std::to_string(kLongInputTokens) +
                                     " tokens: ask for tiles and top-k keys instead");
        for (const AttentionBlock& block : kept->trace.blocks)
            if (!block.has_dense_probs())
                throw HttpError(400,
                                "the page's payload needs every probability; this trace "
                                "kept part of them (run it without layers, heads, top_k, fp16)");
        response.set_content(
            render_payload(kept->trace, view_options(request, "head,model", kept->trace)),
            kJsonType);
    }

    void tile_of(const httplib::Request& request, httplib::Response& response) {
        const auto kept = stored(param(request, "trace"));
        const MatrixRef matrix = matrix_ref(kept->trace, param(request, "block"),
                                            int_param(request, "layer"), head_param(request));
        const int q0 = int_param(request, "q0", 0), k0 = int_param(request, "k0", 0);
        const int q1 =
            int_param(request, "q1", std::min(matrix.block->n_queries, q0 + kMaxTileSide));
        const int k1 = int_param(request, "k1", std::min(matrix.block->n_keys, k0 + kMaxTileSide));
        const std::vector<float> values = tile(matrix, q0, q1, k0, k1);
        send_json(response, {{"q0", q0},
                             {"k0", k0},
                             {"rows", q1 - q0},
                             {"cols", k1 - k0},
                             {"data", base64_floats(values)}});
    }

    void topk(const httplib::Request& request, httplib::Response& response) {
        const auto kept = stored(param(request, "trace"));
        const MatrixRef matrix = matrix_ref(kept->trace, param(request, "block"),
                                            int_param(request, "layer"), head_param(request));
        const int q0 = int_param(request, "q0", 0);
        const int q1 = int_param(request, "q1", matrix.block->n_queries);
        json rows = json::array();
        for (const TopKeys& top : top_keys(matrix, q0, q1, int_param(request, "k", 8)))
            rows.push_back({{"query", top.query},
                            {"keys", top.keys},
                            {"probs", top.probs},
                            {"rest", top.rest}});
        send_json(response, {{"rows", rows}});
    }

    void diff(const httplib::Request& request, httplib::Response& response) {
        const auto a = stored(param(request, "a"));
        const auto b = stored(param(request, "b"));
        const std::string block = param(request, "block");
        const int layer = int_param(request, "layer");
        const int head = head_param(request);
        const MatrixRef ma = matrix_ref(a->trace, block, layer, head);
        const MatrixRef mb = matrix_ref(b->trace, block, layer, head);
        const auto& qa = a->trace.sequences[ma.block->query_sequence];
        const auto& qb = b->trace.sequences[mb.block->query_sequence];
        const auto& ka = a->trace.sequences[ma.block->key_sequence];
        const auto& kb = b->trace.sequences[mb.block->key_sequence];
        constexpr size_t kMostTokens = 2048;
        for (const TokenSequence* sequence : {&qa, &qb, &ka, &kb})
            if (sequence->tokens.size() > kMostTokens)
                throw HttpError(413, "a difference compares inputs of at most " +
                                         std::to_string(kMostTokens) + " tokens");
        const auto query_pairs = align_tokens(qa, qb);
        const bool self = ma.block->query_sequence == ma.block->key_sequence &&
                          mb.block->query_sequence == mb.block->key_sequence;
        const auto key_pairs = self ? query_pairs : align_tokens(ka, kb);
        json pairs = json::array(), keys = json::array();
        for (const auto& [i, j] : query_pairs) pairs.push_back({i, j});
        for (const auto& [i, j] : key_pairs) keys.push_back({i, j});
        send_json(response, {{"pairs", pairs},
                             {"key_pairs", keys},
                             {"rows", query_pairs.size()},
                             {"cols", key_pairs.size()},
                             {"data", base64_floats(difference(ma, mb, query_pairs, key_pairs))}});
    }

    void export_file(const httplib::Request& request, httplib::Response& response) {
        const auto kept = stored(param(request, "trace"));
        const std::string format = param(request, "format", "html");
        std::string bytes, type;
        if (format == "npz") {
            std::ostringstream out;
            if (param(request, "queries_keys") == "1") {
                if (!kept->trace.blocks.front().has_queries_keys())
                    throw HttpError(400, "this trace kept no queries and keys (a long input)");
                write_npz(kept->trace, out);
            } else {
                write_npz(without_queries_keys(kept->trace), out);
            }
            bytes = std::move(out).str();
            type = "application/octet-stream";
        } else if (format == "html") {
            if (kept->long_input)
                throw HttpError(413, "a page holds inputs of at most " +
                                         std::to_string(kLongInputTokens) + " tokens");
            bytes = render_html(kept->trace, view_options(request, "head,model", kept->trace));
            type = "text/html; charset=utf-8";
        } else if (format == "svg" || format == "png") {
            const ViewOptions options = view_options(request, "head", kept->trace);
            if (options.views.size() != 1)
                throw HttpError(400,
                                "format " + format + " draws one view: view=head, model or matrix");
            const std::vector<uint8_t> picture = render_static(
                kept->trace, options, format == "svg" ? StaticFormat::svg : StaticFormat::png);
            bytes.assign(reinterpret_cast<const char*>(picture.data()), picture.size());
            type = format == "svg" ? "image/svg+xml" : "image/png";
        } else {
            throw HttpError(400, "format must be html, npz, svg or png (not '" + format + "')");
        }
        response.set_header("Content-Disposition",
                            "attachment; filename=\"attention." + format + "\"");
        response.set_content(bytes, type.c_str());
    }

    // Every handler answers its errors as {"error": "..."}: a client's mistake
    // 4xx, a failure of the server 5xx; the server itself goes on.
    httplib::Server::Handler guarded(void (Impl::*handler)(const httplib::Request&,
                                                           httplib::Response&)) {
        return [this, handler](const httplib::Request& request, httplib::Response& response) {
            try {
                (this->*handler)(request, response);
            } catch (const HttpError& e) {
                send_error(response, e.status, e.what());
            } catch (const cli::UsageError& e) {
                send_error(response, 400, e.what());
            } catch (const Error& e) {
                send_error(response, 400, e.what());
            } catch (const std::bad_alloc&) {
                send_error(response, 503, "out of memory; try a shorter input or a smaller model");
            } catch (const std::exception& e) {
                send_error(response, 500, std::string("unexpected failure: ") + e.what());
            }
        };
    }

    void routes() {
        http.new_task_queue = [threads = options.http_threads] {
            return new httplib::ThreadPool(threads);
        };
        http.set_payload_max_length(options.max_body);
        http.set_pre_routing_handler(
            [this](const httplib::Request& request, httplib::Response& response) {
                response.set_header("Cache-Control", "no-store");
                response.set_header("Referrer-Policy", "no-referrer");
                response.set_header("X-Content-Type-Options", "nosniff");
                return allowed(request, response) ? httplib::Server::HandlerResponse::Unhandled
                                                  : httplib::Server::HandlerResponse::Handled;
            });
        http.set_error_handler([](const httplib::Request&, httplib::Response& response) {
            if (!response.body.empty()) return;
            send_error(response, response.status,
                       response.status == 413   ? "the request body is over the 1 MiB limit"
                       : response.status == 404 ? "no such endpoint"
                                                : "request refused");
        });
        http.Get("/", guarded(&Impl::page));
        http.Get("/api/models", guarded(&Impl::models));
        http.Post("/api/load", guarded(&Impl::load));
        http.Post("/api/trace", guarded(&Impl::trace));
        http.Get("/api/payload", guarded(&Impl::payload));
        http.Get("/api/tile", guarded(&Impl::tile_of));
        http.Get("/api/topk", guarded(&Impl::topk));
        http.Get("/api/diff", guarded(&Impl::diff));
        http.Get("/api/export", guarded(&Impl::export_file));
    }
};

Server::Server(ServerOptions options, std::vector<ModelSource> models)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(models))) {
    impl_->routes();
}

Server::~Server() = default;

int Server::bind(int port_asked) {
    Impl& impl = *impl_;
    const std::string& host = impl.options.host;
    impl.port = port_asked == 0
                    ? impl.http.bind_to_any_port(host.c_str())
                    : (impl.http.bind_to_port(host.c_str(), port_asked) ? port_asked : -1);
    if (impl.port <= 0)
        throw Error("cannot listen on " + host + ":" + std::to_string(port_asked) +
                    (port_asked ? " (in use? try another --port)" : ""));
    const std::string port = std::to_string(impl.port);
    const std::string bracketed = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    impl.allowed_hosts = {"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port,
                          bracketed + ":" + port};
    return impl.port;
}

std::string Server::url() const {
    const std::string& host = impl_->options.host;
    const std::string shown = host == "0.0.0.0" || host == "::"     ? "127.0.0.1"
                              : host.find(':') != std::string::npos ? "[" + host + "]"
                                                                    : host;
    return "http://" + shown + ":" + std::to_string(impl_->port) +
           "/?token=" + impl_->options.token;
}

void Server::listen() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }

}  // namespace attnviz::serve
