// How much the per-head statistics add to a forward pass (issue 17: at most 10%).
// For each model: the median over inputs of the forward time (Model::trace), of
// head_stat_sums on its trace, and of head_divergence_sums (the Jensen-Shannon
// matrix, computed by `attnviz heads` on the first --js-examples inputs only).
//
//   build/head_stats_bench [model folder ...]   (default: the demo model)
//   ATTNVIZ_BENCH_PAIRS=N: inputs per model (default 200)
// Inputs: held-out sentence pairs of the demo corpus (tests/data/demo/heldout_sentences.txt),
// the same for every model; one forward thread (ATTNVIZ_NUM_THREADS to change it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "attnviz/head_stats.h"
#include "attnviz/model.h"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> models;
    for (int i = 1; i < argc; ++i) models.push_back(argv[i]);
    if (models.empty()) models.push_back(std::string(ATTNVIZ_SOURCE_DIR) + "/models/demo");
    std::ifstream in(std::string(ATTNVIZ_TEST_DATA) + "/demo/heldout_sentences.txt");
    std::vector<std::string> sentences;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) sentences.push_back(line);
    const char* pairs_env = std::getenv("ATTNVIZ_BENCH_PAIRS");
    const size_t kPairs = pairs_env ? std::strtoul(pairs_env, nullptr, 10) : 200;
    std::printf("%-20s %7s %11s %11s %11s %9s %9s %11s %9s\n", "model", "tokens", "forward ms",
                "stats ms", "stats max", "stats %", "total %", "JS ms", "JS %");
    for (const std::string& folder : models) {
        const attnviz::Model model = attnviz::Model::open(folder);
        attnviz::RunOptions run;
        run.threads = 1;
        std::vector<double> forward, stats, divergence, tokens;
        for (size_t i = 0; i + 1 < sentences.size() && forward.size() < kPairs; i += 2) {
            attnviz::TraceRequest request;
            request.text = sentences[i];
            request.text_pair = sentences[i + 1];
            request.truncate = true;
            if (model.config().is_encoder_decoder)
                request.target = request.text_pair, request.text_pair.reset();
            auto start = clock_type::now();
            const attnviz::AttentionTrace trace = model.trace(request, run);
            forward.push_back(seconds_since(start));
            start = clock_type::now();
            const auto sums = attnviz::analysis::head_stat_sums(trace);
            stats.push_back(seconds_since(start));
            start = clock_type::now();
            for (const attnviz::AttentionBlock& block : trace.blocks)
                attnviz::analysis::head_divergence_sums(block);
            divergence.push_back(seconds_since(start));
            tokens.push_back(static_cast<double>(trace.sequences[0].tokens.size()));
            if (sums.empty()) return 1;
        }
        double f = 0, s = 0, d = 0;
        for (size_t i = 0; i < forward.size(); ++i)
            f += forward[i], s += stats[i], d += divergence[i];
        std::printf("%-20.20s %7.0f %11.3f %11.3f %11.3f %8.1f%% %8.1f%% %11.3f %8.1f%%\n",
                    folder.substr(folder.find_last_of('/') + 1).c_str(), median(tokens),
                    1e3 * median(forward), 1e3 * median(stats),
                    1e3 * *std::max_element(stats.begin(), stats.end()),
                    100 * median(stats) / median(forward), 100 * s / f, 1e3 * median(divergence),
                    100 * median(divergence) / median(forward));
    }
    std::printf(
        "(medians per input over %zu held-out pairs; %%: median over median forward; total %%: sum "
        "over sum)\n",
        kPairs);
    return 0;
}
