// render_html and render_html_fragment: the page skeleton around the payload
// (src/viz/payload.cpp) and the embedded web/ code (src/viz/web_assets.h).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "viz/codec.h"
#include "viz/payload.h"
#include "viz/web_assets.h"

namespace attnviz {

std::string view_name(View view) {
    switch (view) {
        case View::head:
            return "head";
        case View::model:
            return "model";
        case View::neuron:
            return "neuron";
        case View::matrix:
            return "matrix";
    }
    return "head";
}

View parse_view(const std::string& name) {
    for (View view : {View::head, View::model, View::neuron, View::matrix})
        if (view_name(view) == name) return view;
    throw Error("unknown view \"" + name + "\" (expected head, model, neuron or matrix)");
}

ViewAnalysis default_view_analysis(const AttentionTrace& trace) {
    int longest = 0;
    for (const AttentionBlock& block : trace.blocks)
        longest = std::max({longest, block.n_queries, block.n_keys});
    ViewAnalysis out;
    out.rollout = longest <= kDefaultRolloutTokens;
    out.flow = longest <= kDefaultFlowTokens;
    out.head_stats = true;
    out.word_level = longest <= kDefaultWordLevelTokens;
    return out;
}

namespace {

// 64 random bits plus a process-wide counter: unique among fragments on one page.
std::string random_hex() {
    static std::atomic<uint64_t> counter{0};
    static thread_local std::mt19937_64 generator{std::random_device{}()};
    char text[40];
    std::snprintf(text, sizeof text, "%016llx%llx", static_cast<unsigned long long>(generator()),
                  static_cast<unsigned long long>(counter++));
    return text;
}

std::string fragment(const AttentionTrace& trace, const ViewOptions& options,
                     const std::string& nonce) {
    if (options.views.empty()) throw Error("no view chosen");
    const std::string payload = viz::build_payload(trace, options);
    const std::string root_id = "attnviz-" + random_hex();
    const std::string nonce_attribute = nonce.empty() ? "" : " nonce=\"" + nonce + "\"";
    std::string out;
    out.reserve(payload.size() + viz::web_js.size() + viz::web_css.size() + 1024);
    out += "<div id=\"" + root_id + "\" class=\"attnviz\">\n<style>";
    out += viz::web_css;
    out += "</style>\n<script type=\"application/json\" class=\"attnviz-data\">";
    out += payload;
    out += "</script>\n<noscript>The attnviz views need JavaScript.</noscript>\n<script";
    out += nonce_attribute;
    out += ">(function () {\n\"use strict\";\n";
    out += viz::web_js;
    out += "\nattnvizBoot(document.getElementById(\"" + root_id + "\"));\n})();</script>\n</div>\n";
    return out;
}

}  // namespace

std::string render_payload(const AttentionTrace& trace, const ViewOptions& options) {
    return viz::build_payload(trace, options);
}
std::string_view views_style() { return viz::web_css; }
std::string_view views_script() { return viz::web_js; }

std::string render_html_fragment(const AttentionTrace& trace, const ViewOptions& options) {
    return fragment(trace, options, "");
}

std::string render_html(const AttentionTrace& trace, const ViewOptions& options) {
    const std::string title =
        options.title.empty()
            ? (trace.model_id.empty() ? "attention" : trace.model_id + " attention")
            : options.title;
    // The page may run only its own script: no network, no injected script or handler.
    const std::string nonce = random_hex();
    std::string body = fragment(trace, options, nonce);
    std::string out;
    out.reserve(body.size() + 1024);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    out +=
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'nonce-" +
        nonce + "'; style-src 'unsafe-inline'; img-src data: blob:\">\n";
    out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<meta name=\"generator\" content=\"attnviz\">\n<title>" + viz::escape_xml(title) +
           "</title>\n</head>\n<body class=\"attnviz-page\">\n";
    out += body;
    out += "</body>\n</html>\n";
    return out;
}

}  // namespace attnviz
