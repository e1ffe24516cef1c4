// Attention flow for every token pair of a BERT-base-shaped input (12 layers,
// 12 heads, 128 tokens of random softmax attention; or, with --attention
// peaked, the views' synthetic stand-in for a trained model: [CLS] sinks and
// sharp heads, tests/viz/synthetic_traces.h), or of real attention read from
// --probs (float32 [layers][heads][tokens][tokens], e.g. an `attnviz export`),
// timed; bench/analysis_bench.py runs it beside the networkx reference on the
// same matrices (--dump).
//
//   analysis_bench [--tokens 128] [--layers 12] [--heads 12] [--threads 2]
//                  [--repeat 3] [--seed 1] [--attention random|peaked]
//                  [--probs probs.f32] [--dump matrices.f32] [--flow flow.f32]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../tests/viz/synthetic_traces.h"
#include "attnviz/analysis.h"

using namespace attnviz;

int main(int argc, char** argv) {
    int tokens = 128, layers = 12, heads = 12, threads = 2, repeat = 3;
    unsigned seed = 1;
    std::string dump, flow_out, probs, attention = "random";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const char* value = argv[i + 1];
        if (flag == "--tokens")
            tokens = std::atoi(value);
        else if (flag == "--layers")
            layers = std::atoi(value);
        else if (flag == "--heads")
            heads = std::atoi(value);
        else if (flag == "--threads")
            threads = std::atoi(value);
        else if (flag == "--repeat")
            repeat = std::atoi(value);
        else if (flag == "--seed")
            seed = static_cast<unsigned>(std::atoi(value));
        else if (flag == "--dump")
            dump = value;
        else if (flag == "--flow")
            flow_out = value;
        else if (flag == "--attention")
            attention = value;
        else if (flag == "--probs")
            probs = value;
        else {
            std::fprintf(stderr, "analysis_bench: unknown flag %s\n", flag.c_str());
            return 2;
        }
    }
    if (attention != "random" && attention != "peaked") {
        std::fprintf(stderr, "analysis_bench: --attention is random or peaked\n");
        return 2;
    }
    if (attention == "peaked" && !probs.empty()) {
        std::fprintf(stderr, "analysis_bench: --probs or --attention peaked, not both\n");
        return 2;
    }
    AttentionBlock block;
    block.name = "self";
    block.n_layers = layers, block.n_heads = heads, block.n_queries = block.n_keys = tokens;
    block.probs.resize(static_cast<size_t>(layers) * heads * tokens * tokens);
    if (!probs.empty()) {
        std::ifstream in(probs, std::ios::binary);
        in.read(reinterpret_cast<char*>(block.probs.data()),
                static_cast<std::streamsize>(block.probs.size() * sizeof(float)));
        if (!in || in.peek() != EOF) {
            std::fprintf(stderr, "analysis_bench: %s is not %d x %d x %d x %d float32\n",
                         probs.c_str(), layers, heads, tokens, tokens);
            return 2;
        }
    } else if (attention == "peaked") {
        block = testing::sized_trace(layers, heads, tokens, false, 64, false, testing::kPeaked)
                    .blocks[0];
    } else {  // softmax of N(0, 3^2) scores: peaked rows, like trained heads
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        for (size_t row = 0; row < block.probs.size() / tokens; ++row) {
            float* p = block.probs.data() + row * tokens;
            float top = -1e30f;
            for (int k = 0; k < tokens; ++k) top = std::max(top, p[k] = normal(rng));
            double sum = 0;
            for (int k = 0; k < tokens; ++k) sum += p[k] = std::exp(p[k] - top);
            for (int k = 0; k < tokens; ++k) p[k] = static_cast<float>(p[k] / sum);
        }
    }
    const std::vector<float> matrices = analysis::residual_attention(block);
    if (!dump.empty())
        std::ofstream(dump, std::ios::binary)
            .write(reinterpret_cast<const char*>(matrices.data()),
                   static_cast<std::streamsize>(matrices.size() * sizeof(float)));
    std::vector<int> all(static_cast<size_t>(tokens));
    for (int i = 0; i < tokens; ++i) all[static_cast<size_t>(i)] = i;
    double best = 1e30, best_cpu = 0;
    std::vector<float> flow;
    for (int r = 0; r < repeat; ++r) {
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();  // CPU time of every thread
        flow = analysis::flow_from_matrices(matrices, layers, tokens, all, threads);
        const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (s < best) best = s, best_cpu = cpu;
    }
    if (!flow_out.empty())
        std::ofstream(flow_out, std::ios::binary)
            .write(reinterpret_cast<const char*>(flow.data()),
                   static_cast<std::streamsize>(flow.size() * sizeof(float)));
    std::printf(
        "{\"tokens\": %d, \"layers\": %d, \"threads\": %d, \"pairs\": %d, "
        "\"flow_all_seconds\": %.4f, \"flow_all_cpu_seconds\": %.4f}\n",
        tokens, layers, threads, tokens * tokens, best, best_cpu);
    return 0;
}
