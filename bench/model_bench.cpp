// model_bench: attnviz's BERT forward pass (all attentions kept) on a model
// folder, for the side-by-side comparison run by bench/model_bench.sh.
//
//   model_bench --model DIR --seq 128 --threads 2 --runs 10 [--load-runs 5]
//
// Prints one JSON object: load time (config.json, memory map, header and shape
// validation), the first forward (on the checkpoint's weights in place), the
// second (which packs them), forward latency over the runs after those
// (median, min, mean, stddev; wall and process CPU time), and peak RSS (VmHWM). Token ids are fixed
// pseudo-random ids below vocab_size, [CLS]=2 ... [SEP]=3 like the reference.
// Also the forward's arithmetic rate against this CPU's fp32 FMA peak, the peak
// measured in the same process just before the forwards (an FMA-only loop on
// the same number of threads): on a shared machine both see the same load.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include <omp.h>

#include "model/network.h"
#include "runtime/threads.h"

namespace {

double now_ms() {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// CPU time of the whole process (all threads): on a shared machine, the work
// done, where wall time also counts other processes' turns.
double cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

long peak_rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// fp32 FLOP/s of independent FMA chains on `threads` threads: the CPU's peak
// as far as this process gets it (16 chains hide the FMA latency); and per
// CPU-second of one thread (the rate while actually on a core, which a busy
// machine's time slicing does not dilute).
struct Peak {
    double flops, flops_per_cpu_second;
};
Peak fma_peak(int threads) {
#if defined(__AVX512F__)
    using Vector = __m512;
    constexpr int kLanes = 16;
    const auto fma = [](Vector a, Vector b, Vector c) { return _mm512_fmadd_ps(a, b, c); };
    const auto splat = [](float x) { return _mm512_set1_ps(x); };
    const auto sum = [](Vector v) { return _mm512_reduce_add_ps(v); };
#elif defined(__AVX2__)
    using Vector = __m256;
    constexpr int kLanes = 8;
    const auto fma = [](Vector a, Vector b, Vector c) { return _mm256_fmadd_ps(a, b, c); };
    const auto splat = [](float x) { return _mm256_set1_ps(x); };
    const auto sum = [](Vector v) {
        float lanes[8];
        _mm256_storeu_ps(lanes, v);
        return lanes[0] + lanes[7];
    };
#else
    using Vector = float;
    constexpr int kLanes = 1;
    const auto fma = [](Vector a, Vector b, Vector c) { return a * b + c; };
    const auto splat = [](float x) { return x; };
    const auto sum = [](Vector v) { return v; };
#endif
    constexpr int kChains = 16;
    constexpr long kIterations = 20'000'000;
    volatile float sink = 0;
    Peak best{0, 0};
    for (int attempt = 0; attempt < 3; ++attempt) {
        const double start = now_ms(), cpu_start = cpu_ms();
#pragma omp parallel num_threads(threads)
        {
            Vector chains[kChains];
            for (int c = 0; c < kChains; ++c) chains[c] = splat(0.001f * c);
            const Vector a = splat(0.999999f), b = splat(1e-7f);
            for (long i = 0; i < kIterations; ++i)
                for (int c = 0; c < kChains; ++c) chains[c] = fma(chains[c], a, b);
            float total = 0;
            for (int c = 0; c < kChains; ++c) total += sum(chains[c]);
            sink = sink + total;
        }
        const double seconds = (now_ms() - start) / 1e3, cpu_seconds = (cpu_ms() - cpu_start) / 1e3;
        const double flops = 2.0 * kLanes * kChains * kIterations * threads;
        best.flops = std::max(best.flops, flops / seconds);
        best.flops_per_cpu_second = std::max(best.flops_per_cpu_second, flops / cpu_seconds);
    }
    return best;
}

// The forward's floating-point operations: per layer the q/k/v/output
// projections, the feed-forward pair, and the two attention products (q k^T and
// probs v); the softmax, norms and activations are not counted.
double bert_forward_flops(const attnviz::ModelConfig& config, int seq) {
    const double hidden = config.hidden_size, inner = config.intermediate_size, s = seq;
    const double per_layer =
        2 * s * hidden * hidden * 4 + 2 * s * hidden * inner * 2 + 2 * 2 * s * s * hidden;
    return per_layer * config.n_layers;
}

struct Stats {
    double median, min, mean, stddev;
};
Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    const size_t n = v.size();
    const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {median, v.front(), mean, std::sqrt(var / n)};
}

}  // namespace

int main(int argc, char** argv) {
    std::string model;
    int seq = 128, threads = 0, runs = 10, load_runs = 1;
    std::string precision = "fp32";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--model")
            model = argv[i + 1];
        else if (flag == "--seq")
            seq = std::stoi(argv[i + 1]);
        else if (flag == "--threads")
            threads = std::stoi(argv[i + 1]);
        else if (flag == "--runs")
            runs = std::stoi(argv[i + 1]);
        else if (flag == "--load-runs")
            load_runs = std::stoi(argv[i + 1]);
        else if (flag == "--precision")
            precision = argv[i + 1];
        else {
            std::fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (model.empty()) {
        std::fprintf(stderr, "usage: model_bench --model DIR [--seq N] [--threads T] [--runs R]\n");
        return 2;
    }
    try {
        using namespace attnviz;
        std::vector<double> load_times, map_times, load_cpu, forward_cpu;
        model::LoadedNetwork loaded;
        for (int run = 0; run < load_runs; ++run) {
            double start = now_ms();
            { io::TensorSet tensors = io::TensorSet::open_folder(model); }
            map_times.push_back(now_ms() - start);
            loaded = model::LoadedNetwork();
            start = now_ms();
            const double cpu_start = cpu_ms();
            loaded = model::load_network(model);
            load_times.push_back(now_ms() - start);
            load_cpu.push_back(cpu_ms() - cpu_start);
        }
        Encoding encoding;
        uint32_t state = 12345;
        for (int t = 0; t < seq; ++t) {
            state = state * 1664525u + 1013904223u;
            int32_t id = 1000 + static_cast<int32_t>(state % 20000u);
            if (t == 0) id = 2;
            if (t == seq - 1) id = 3;
            encoding.ids.push_back(id % loaded.config.vocab_size);
        }
        encoding.type_ids.assign(seq, 0);
        encoding.attention_mask.assign(seq, 1);
        encoding.tokens.resize(seq);
        RunOptions options;
        options.threads = threads;
        options.precision = precision == "bf16" ? Precision::bf16 : Precision::fp32;
        std::vector<double> times;
        size_t probs = 0;
        double first_ms = 0, second_ms = 0;
        for (int run = 0; run < runs + 2; ++run) {
            const double start = now_ms(), cpu_start = cpu_ms();
            model::ForwardOutput output = model::run_network(*loaded.network, {&encoding}, options);
            const double elapsed = now_ms() - start;
            probs = output.blocks[0].probs.size();
            if (run == 0)
                first_ms = elapsed;  // on the checkpoint's weights in place
            else if (run == 1)
                second_ms = elapsed;  // packs the weights
            else
                times.push_back(elapsed), forward_cpu.push_back(cpu_ms() - cpu_start);
        }
        // bf16: how far its probabilities are from fp32's on the same input.
        double max_prob_error = 0, mean_prob_error = 0;
        if (options.precision == Precision::bf16) {
            RunOptions fp32 = options;
            fp32.precision = Precision::fp32;
            const auto exact = model::run_network(*loaded.network, {&encoding}, fp32);
            const auto rounded = model::run_network(*loaded.network, {&encoding}, options);
            const auto& a = exact.blocks[0].probs;
            const auto& b = rounded.blocks[0].probs;
            for (size_t i = 0; i < a.size(); ++i) {
                const double error = std::fabs(double(a[i]) - b[i]);
                max_prob_error = std::max(max_prob_error, error);
                mean_prob_error += error / a.size();
            }
        }
        const Stats forward = stats(times), load = stats(load_times), map = stats(map_times);
        const int thread_count = attnviz::runtime::resolve_thread_count(threads);
        const Peak peak = fma_peak(thread_count);
        const double flops = bert_forward_flops(loaded.config, seq);
        const double rate = flops / (forward.median / 1e3);
        const double rate_per_cpu_second = flops / (stats(forward_cpu).median / 1e3);
        std::printf(
            "{\"tool\": \"attnviz\", \"precision\": \"%s\", \"max_prob_error\": %.3g, "
            "\"mean_prob_error\": %.3g, \"seq\": %d, \"threads\": %d, \"runs\": %d, "
            "\"first_ms\": %.2f, \"second_ms\": %.2f, \"median_ms\": %.2f, \"min_ms\": %.2f, "
            "\"mean_ms\": %.2f, \"stddev_ms\": %.2f, "
            "\"cpu_ms\": %.2f, \"load_ms\": %.2f, \"load_cpu_ms\": %.2f, \"map_validate_ms\": "
            "%.2f, \"attention_mib\": %.1f, "
            "\"peak_rss_mib\": %.1f, \"gflops\": %.1f, \"fma_peak_gflops\": %.1f, "
            "\"fraction_of_peak\": %.3f, \"fraction_of_peak_cpu\": %.3f}\n",
            precision.c_str(), max_prob_error, mean_prob_error, seq, thread_count, runs, first_ms,
            second_ms, forward.median, forward.min, forward.mean, forward.stddev,
            stats(forward_cpu).median, load.median, stats(load_cpu).median, map.median,
            probs * 4.0 / (1 << 20), peak_rss_kib() / 1024.0, rate / 1e9, peak.flops / 1e9,
            rate / peak.flops, rate_per_cpu_second / peak.flops_per_cpu_second);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "model_bench: %s\n", e.what());
        return 1;
    }
}
