// render_heads_report: the page skeleton around stats.json, web/heads/ and the
// views' heat scale (web/heat_scale.js: the summary heatmap colours a statistic
// as the views' Head stats tab does).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <random>
#include <string_view>

#include "attnviz/error.h"
#include "attnviz/heads_report.h"
#include "viz/codec.h"

namespace attnviz {
namespace viz {
extern const std::string_view heads_report_css, heads_report_js, heat_scale_js;
}

namespace {

// JSON that cannot end or open an element inside <script>: '<', '>' and '&'
// appear only in strings, where \u escapes mean the same.
std::string script_safe(const std::string& json) {
    std::string out;
    out.reserve(json.size());
    for (char c : json) {
        if (c == '<')
            out += "\\u003c";
        else if (c == '>')
            out += "\\u003e";
        else if (c == '&')
            out += "\\u0026";
        else
            out += c;
    }
    return out;
}

std::string nonce() {
    std::random_device device;
    char text[40];
    std::snprintf(text, sizeof text, "%08x%08x%08x", device(), device(), device());
    return text;
}

}  // namespace

std::string render_heads_report(const std::string& stats_json) {
    nlohmann::json stats;
    try {
        stats = nlohmann::json::parse(stats_json);
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("head statistics report: not JSON (") + e.what() + ")");
    }
    const std::string model = stats.value("model", std::string("model"));
    const std::string n = nonce();
    std::string out;
    out.reserve(stats_json.size() + viz::heat_scale_js.size() + viz::heads_report_js.size() + 4096);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    out +=
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src "
        "'nonce-" +
        n + "'; style-src 'unsafe-inline'; img-src data: blob:\">\n";
    out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<meta name=\"generator\" content=\"attnviz\">\n<title>" +
           viz::escape_xml(model + " attention heads") + "</title>\n<style>";
    out += viz::heads_report_css;
    out += "</style>\n</head>\n<body>\n<main id=\"heads-report\"></main>\n";
    out += "<script type=\"application/json\" id=\"heads-data\">";
    out += script_safe(stats_json);
    out += "</script>\n<noscript>The report needs JavaScript.</noscript>\n<script nonce=\"" + n +
           "\">(function () {\n\"use strict\";\n";
    out += viz::heat_scale_js;
    out += viz::heads_report_js;
    out +=
        "\nheadsReportBoot(document.getElementById(\"heads-report\"), "
        "JSON.parse(document.getElementById(\"heads-data\").textContent));\n})();</script>\n";
    out += "</body>\n</html>\n";
    return out;
}

}  // namespace attnviz
