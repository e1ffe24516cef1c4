// arch_bench: times Model::trace (tokenize + forward, every attention kept) on a
// decoder checkpoint at N tokens. bench/arch_bench.py runs it next to the
// PyTorch peer on the same shapes and writes the comparison.
//
//   arch_bench MODEL_DIR TOKENS [THREADS] [RUNS]
//
// The text is common English words that gpt2's BPE keeps as one token each, so
// it is exactly TOKENS tokens long. Prints one JSON line: median and minimum
// milliseconds over RUNS runs after one warm-up, and the peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "attnviz/model.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL_DIR TOKENS [THREADS] [RUNS]\n", argv[0]);
        return 2;
    }
    const int tokens = std::atoi(argv[2]);
    const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
    const int runs = argc > 4 ? std::atoi(argv[4]) : 3;
    try {
        const auto load_start = std::chrono::steady_clock::now();
        attnviz::Model model = attnviz::Model::open(argv[1]);
        const double load_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
                .count();
        static const char* kWords[] = {"The",  " cat", " sat", " on",  " the",    " mat",
                                       " and", " it",  " was", " not", " amused", "."};
        attnviz::TraceRequest request;
        for (int i = 0; i < tokens; ++i) request.text += kWords[i % 12];
        const size_t got = model.tokenizer().encode(request.text).size();
        if (got != static_cast<size_t>(tokens)) {
            std::fprintf(stderr, "the bench text is %zu tokens, not %d\n", got, tokens);
            return 1;
        }
        attnviz::RunOptions options;
        options.threads = threads;
        std::vector<double> times;
        for (int run = 0; run <= runs; ++run) {
            const auto start = std::chrono::steady_clock::now();
            attnviz::AttentionTrace trace = model.trace(request, options);
            const auto end = std::chrono::steady_clock::now();
            if (run > 0)  // the first run warms up allocators, oneDNN's kernels, the page cache
                times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
        }
        std::sort(times.begin(), times.end());
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        std::printf(
            "{\"tokens\": %d, \"threads\": %d, \"runs\": %d, \"median_ms\": %.1f, \"min_ms\": "
            "%.1f, "
            "\"load_ms\": %.1f, \"peak_rss_mb\": %.0f}\n",
            tokens, threads, runs, times[times.size() / 2], times.front(), load_ms,
            usage.ru_maxrss / 1024.0);
    } catch (const attnviz::Error& e) {
        std::fprintf(stderr, "arch_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
