// attnviz bench: latency of the forward pass (every attention kept) on N tokens
// of sample text, as JSON, for side-by-side runs with other tools.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <thread>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

// Public-domain prose (Melville, Moby-Dick, 1851), repeated as needed.
constexpr const char* kSampleText =
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money "
    "in my purse, and nothing particular to interest me on shore, I thought I would sail about "
    "a little and see the watery part of the world. It is a way I have of driving off the "
    "spleen and regulating the circulation. Whenever I find myself growing grim about the "
    "mouth; whenever it is a damp, drizzly November in my soul; whenever I find myself "
    "involuntarily pausing before coffin warehouses, and bringing up the rear of every funeral "
    "I meet; and especially whenever my hypos get such an upper hand of me, that it requires a "
    "strong moral principle to prevent me from deliberately stepping into the street, and "
    "methodically knocking people's hats off, then, I account it high time to get to sea as "
    "soon as I can. ";

// A prefix of the sample text that encodes to exactly `tokens` tokens with the
// model's special tokens, found from the offsets of a longer encoding.
std::string text_of_length(const Tokenizer& tokenizer, size_t tokens) {
    const size_t specials = tokenizer.encode("").size();
    if (tokens <= specials)
        throw UsageError("--seq must be more than the " + std::to_string(specials) +
                         " special tokens the model adds");
    std::string corpus = kSampleText;
    EncodeOptions plain;
    plain.add_special_tokens = false;
    Encoding encoding = tokenizer.encode(corpus, plain);
    while (encoding.size() < tokens) {
        corpus += corpus;
        encoding = tokenizer.encode(corpus, plain);
    }
    // Cutting after a token can re-split the last word; step until the count is exact.
    size_t wanted = tokens - specials;
    for (int attempt = 0; attempt < 16; ++attempt) {
        const std::string text = corpus.substr(0, encoding.byte_offsets[wanted - 1].end);
        const size_t got = tokenizer.encode(text).size();
        if (got == tokens) return text;
        wanted = got > tokens ? wanted - 1 : wanted + 1;
        if (wanted == 0 || wanted > encoding.size()) break;
    }
    throw Error("cannot cut the sample text to exactly " + std::to_string(tokens) + " tokens");
}

double microsecond_rounded(double ms) { return std::round(ms * 1000) / 1000; }

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        size_t seq = 128;
        int threads = 0;
        int runs = 10;
        int warmup = 1;
        std::optional<uint64_t> max_memory;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    command.add_option("--seq", flags->seq, "tokens per forward pass, special tokens included")
        ->capture_default_str()
        ->check(whole_number(1));
    add_threads_flag(command, flags->threads);
    command.add_option("--runs", flags->runs, "timed runs")
        ->capture_default_str()
        ->check(whole_number(1));
    command.add_option("--warmup", flags->warmup, "untimed runs first")
        ->capture_default_str()
        ->check(whole_number(0));
    add_max_memory_flag(command, flags->max_memory);
    command.footer(
        "Prints JSON: median_ms and min_ms of the forward pass with every attention "
        "probability kept (tokenization included, a few microseconds), load_ms of "
        "Model::open, and each run's time.");
    return [flags] {
        using Clock = std::chrono::steady_clock;
        const std::filesystem::path folder = model_folder(flags->model);
        const auto load_start = Clock::now();
        std::optional<Step> step(std::in_place, "loading the model");
        const Model model = Model::open(folder);
        const double load_ms =
            std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();

        const int max_positions = model.config().max_positions;
        if (max_positions > 0 && flags->seq > static_cast<size_t>(max_positions))
            throw UsageError("--seq " + std::to_string(flags->seq) + " is more than the " +
                             std::to_string(max_positions) + " tokens " +
                             model_label(flags->model) + " takes");
        RunOptions run;
        run.threads = flags->threads;
        run.max_memory = flags->max_memory;
        // Models without a position table take any --seq: the memory bounds it,
        // checked before the sample text is made.
        try {
            MemoryShape shape;
            shape.tokens = flags->seq;
            if (model.config().is_encoder_decoder) shape.decoder_tokens = flags->seq;
            model.check_memory(shape, run);
        } catch (const MemoryBudgetError& e) {
            throw explain_memory_error(e, "--seq");
        }
        step.emplace("making the sample text");
        TraceRequest request;
        request.text = text_of_length(model.tokenizer(), flags->seq);
        if (model.config().is_encoder_decoder) request.target = request.text;
        step.emplace("running the model");
        for (int i = 0; i < flags->warmup; ++i) model.trace(request, run);
        std::vector<double> times;
        size_t tokens = 0;
        for (int i = 0; i < flags->runs; ++i) {
            const auto start = Clock::now();
            const AttentionTrace trace = model.trace(request, run);
            times.push_back(microsecond_rounded(
                std::chrono::duration<double, std::milli>(Clock::now() - start).count()));
            tokens = trace.sequences.front().tokens.size();
        }
        int threads = flags->threads;
        if (threads == 0) {
            const char* env = std::getenv("ATTNVIZ_NUM_THREADS");
            threads = env && std::atoi(env) > 0
                          ? std::atoi(env)
                          : static_cast<int>(std::thread::hardware_concurrency());
        }
        const nlohmann::ordered_json result = {
            {"model", model_label(flags->model)},
            {"model_type", model.config().model_type},
            {"seq", flags->seq},
            {"tokens", tokens},
            {"threads", threads},
            {"runs", flags->runs},
            {"warmup", flags->warmup},
            {"load_ms", microsecond_rounded(load_ms)},
            {"median_ms", microsecond_rounded(median(times))},
            {"min_ms", *std::min_element(times.begin(), times.end())},
            {"mean_ms",
             microsecond_rounded(std::accumulate(times.begin(), times.end(), 0.0) / times.size())},
            {"max_ms", *std::max_element(times.begin(), times.end())},
            {"times_ms", times},
        };
        std::cout << json_text(result);
        return 0;
    };
}

const RegisterCommand registered({"bench", "Time the forward pass on N tokens (JSON)", 40, setup});

}  // namespace
}  // namespace attnviz::cli
