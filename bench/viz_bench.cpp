// viz_bench: how big the HTML views are and how long they take to write, on
// model-shaped synthetic traces (tests/viz/synthetic_traces.h): BERT-base
// (12 layers x 12 heads, head_dim 64) at 16, 128 and 512 tokens, and GPT-2
// (12 x 12, causal) at 1024 and 2048 tokens; at 128 and 512 tokens also with
// the analysis tabs (rollout, flow, head stats, word level). The trace is made before the
// clock starts ("after the forward pass"). Pages are written to a folder so
// that bench/viz_browser_bench.mjs can time them in headless chromium.
//
// Usage: viz_bench [output folder (default viz-bench)] [repetitions (default 3)]
//        [--max-tokens N]   skip shapes longer than N tokens
//        [--zlib-level L]   deflate level of the payload (default: ViewOptions' 6)
// Prints one JSON object per line; cpu_s is the process CPU time (all threads),
// which a busy shared machine inflates less than wall time.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../tests/viz/synthetic_traces.h"
#include "attnviz/error.h"
#include "attnviz/views.h"
#include "io/files.h"

namespace {

struct Shape {
    const char* name;
    int layers, heads, tokens;
    bool causal;
    bool diffuse;
};

// What a page adds from src/analysis: nothing (the --no- flags), what `attnviz
// view` adds for the length, or everything.
enum class Analysis { none, defaults, everything };

// Word ids as a WordPiece tokenizer gives them: every other word in two pieces
// ("attends" -> "att", "##ends"), so the word-level copy is not the tokens' own.
void add_word_ids(attnviz::AttentionTrace& trace) {
    int word = 0;
    std::vector<attnviz::TraceToken>& tokens = trace.sequences.front().tokens;
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].special) continue;
        tokens[i].word_id = word;
        if (i % 3 != 1) ++word;  // tokens 1-2, 4-5, ... share a word
    }
}

struct Stats {
    double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& values) {
    Stats s;
    for (double v : values) s.mean += v;
    s.mean /= static_cast<double>(values.size());
    for (double v : values) s.stddev += (v - s.mean) * (v - s.mean);
    s.stddev = values.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(values.size() - 1)) : 0;
    return s;
}

double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path folder = "viz-bench";
    int repetitions = 3, max_tokens = 1 << 30, positional = 0,
        zlib_level = attnviz::ViewOptions{}.zlib_level;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--max-tokens") == 0 && i + 1 < argc) {
            max_tokens = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--zlib-level") == 0 && i + 1 < argc) {
            zlib_level = std::atoi(argv[++i]);
        } else if (positional++ == 0) {
            folder = argv[i];
        } else {
            repetitions = std::max(1, std::atoi(argv[i]));
        }
    }
    std::filesystem::create_directories(folder);
    // The peaked profile stands in for a trained model; the diffuse one is the
    // worst case for size (broad rows spread their 8-bit levels).
    const Shape shapes[] = {{"bert-base-16", 12, 12, 16, false, false},
                            {"bert-base-128", 12, 12, 128, false, false},
                            {"bert-base-512", 12, 12, 512, false, false},
                            {"bert-base-512-diffuse", 12, 12, 512, false, true},
                            {"gpt2-1024", 12, 12, 1024, true, false},
                            {"gpt2-2048", 12, 12, 2048, true, false}};
    try {
        for (const Shape& shape : shapes) {
            if (shape.tokens > max_tokens) continue;
            const auto made = std::chrono::steady_clock::now();
            attnviz::AttentionTrace trace = attnviz::testing::sized_trace(
                shape.layers, shape.heads, shape.tokens, shape.causal, 64, true,
                shape.diffuse ? attnviz::testing::kDiffuse : attnviz::testing::kPeaked);
            add_word_ids(trace);
            const double make_s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - made).count();
            struct Variant {
                const char* name;
                std::vector<attnviz::View> views;
                Analysis analysis = Analysis::none;
            };
            const std::vector<attnviz::View> all_views = {attnviz::View::head, attnviz::View::model,
                                                          attnviz::View::neuron,
                                                          attnviz::View::matrix};
            // The analysis tabs at 128 and 512 tokens (the BERT shapes): `attnviz
            // view`'s defaults for the length against the --no- flags ("all"), and
            // everything (flow too, an all-pairs max-flow) at 128.
            std::vector<Variant> variants = {{"all", all_views}, {"head", {attnviz::View::head}}};
            if (!shape.causal && (shape.tokens == 128 || shape.tokens == 512)) {
                variants.push_back({"all+analysis-defaults", all_views, Analysis::defaults});
                if (shape.tokens == 128)
                    variants.push_back(
                        {"all+analysis-everything", all_views, Analysis::everything});
            }
            for (const Variant& variant : variants) {
                attnviz::ViewOptions options;
                options.views = variant.views;
                options.zlib_level = zlib_level;
                if (variant.analysis == Analysis::defaults)
                    options.analysis = attnviz::default_view_analysis(trace);
                if (variant.analysis == Analysis::everything)
                    options.analysis = {true, true, true, true, false};
                const attnviz::ViewAnalysis& a = options.analysis;
                const std::string analysis_name =
                    std::string(a.rollout ? "rollout," : "") + (a.flow ? "flow," : "") +
                    (a.head_stats ? "head_stats," : "") + (a.word_level ? "word_level," : "");
                std::vector<double> render_s, write_s, cpu_s;
                std::string page;
                const std::filesystem::path path =
                    folder / (std::string(shape.name) + "-" + variant.name + ".html");
                for (int r = 0; r < repetitions; ++r) {
                    const double cpu_start = cpu_seconds();
                    const auto start = std::chrono::steady_clock::now();
                    page = attnviz::render_html(trace, options);
                    const auto rendered = std::chrono::steady_clock::now();
                    attnviz::io::write_file(path, page);
                    const auto written = std::chrono::steady_clock::now();
                    cpu_s.push_back(cpu_seconds() - cpu_start);
                    render_s.push_back(std::chrono::duration<double>(rendered - start).count());
                    write_s.push_back(std::chrono::duration<double>(written - start).count());
                }
                const Stats render = stats(render_s), total = stats(write_s), cpu = stats(cpu_s);
                std::printf(
                    "{\"shape\":\"%s\",\"layers\":%d,\"heads\":%d,\"tokens\":%d,\"causal\":%s,"
                    "\"views\":\"%s\",\"bytes\":%zu,\"render_s\":%.4f,\"render_sd\":%.4f,"
                    "\"render_and_write_s\":%.4f,\"render_and_write_sd\":%.4f,\"cpu_s\":%.4f,"
                    "\"zlib_level\":%d,\"repetitions\":%d,\"analysis\":\"%s\","
                    "\"trace_make_s\":%.2f,\"file\":\"%s\"}\n",
                    shape.name, shape.layers, shape.heads, shape.tokens,
                    shape.causal ? "true" : "false", variant.name, page.size(), render.mean,
                    render.stddev, total.mean, total.stddev, cpu.mean, zlib_level, repetitions,
                    analysis_name.empty()
                        ? "none"
                        : analysis_name.substr(0, analysis_name.size() - 1).c_str(),
                    make_s, path.string().c_str());
                std::fflush(stdout);
            }
        }
    } catch (const attnviz::Error& e) {
        std::fprintf(stderr, "viz_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
