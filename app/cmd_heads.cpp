// attnviz heads: per-head attention statistics averaged over a corpus (Clark
// et al. 2019), streamed one example at a time, written as stats.json and a
// self-contained report page.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "attnviz/analysis.h"
#include "attnviz/head_stats.h"
#include "attnviz/heads_report.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

using analysis::HeadDivergenceSums;
using analysis::HeadStat;
using analysis::HeadStatSums;
using analysis::kHeadStatCount;
using analysis::kHeadStatNames;

// A line longer than this is refused: memory stays bounded whatever the file.
constexpr size_t kMaxLineBytes = 1 << 20;

// The corpus, one example per line, read one line at a time.
class CorpusReader {
public:
    CorpusReader(const std::filesystem::path& path, bool pairs, bool needs_target)
        : path_(path),
          pairs_(pairs),
          needs_target_(needs_target),
          jsonl_(path.extension() == ".jsonl"),
          buffer_(kMaxLineBytes + 1) {
        in_.open(path, std::ios::binary);
        if (!in_) throw Error("--input: cannot read " + path.string());
    }

    // The next example; false at the end. Blank lines are skipped.
    bool next(TraceRequest& request) {
        std::string line;
        while (read_line(line)) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            request = parse(line);
            return true;
        }
        return false;
    }
    size_t line_number() const { return line_; }

    // The examples in the file, counted by a first streaming pass (for the progress bar).
    static size_t count(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::vector<char> chunk(1 << 16);
        size_t examples = 0;
        bool blank = true;
        while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) ||
               in.gcount() > 0) {
            for (std::streamsize i = 0; i < in.gcount(); ++i) {
                const char c = chunk[static_cast<size_t>(i)];
                if (c == '\n') {
                    examples += blank ? 0 : 1;
                    blank = true;
                } else if (c != ' ' && c != '\t' && c != '\r') {
                    blank = false;
                }
            }
        }
        return examples + (blank ? 0 : 1);
    }

private:
    Error error(const std::string& what) const {
        return Error("--input " + path_.string() + ":" + std::to_string(line_) + ": " + what);
    }

    bool read_line(std::string& line) {
        in_.getline(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        const auto got = static_cast<size_t>(in_.gcount());
        if (got == 0 && in_.eof()) return false;
        ++line_;
        if (in_.fail() && !in_.eof())
            throw error("the line is longer than " + std::to_string(kMaxLineBytes) + " bytes");
        const size_t size = got > 0 && buffer_[got - 1] == '\0' ? got - 1 : got;
        line.assign(buffer_.data(), size);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (valid_utf8_prefix(line) != line.size()) throw error("the line is not UTF-8");
        return true;
    }

    TraceRequest parse(const std::string& line) const {
        TraceRequest request;
        std::optional<std::string> second;
        if (jsonl_) {
            nlohmann::json object;
            try {
                object = nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception& e) {
                throw error(std::string("not JSON (") + e.what() + ")");
            }
            auto text_of = [&](const char* key) -> std::optional<std::string> {
                if (!object.is_object()) throw error("expected a JSON object");
                const auto found = object.find(key);
                if (found == object.end() || found->is_null()) return std::nullopt;
                if (!found->is_string())
                    throw error(std::string("\"") + key + "\" is not a string");
                return found->get<std::string>();
            };
            const std::optional<std::string> text = text_of("text");
            if (!text) throw error("no \"text\"");
            request.text = *text;
            request.text_pair = text_of("text_pair");
            request.target = text_of("target");
            if (pairs_ && !request.text_pair && !request.target)
                throw error("--pairs: no \"text_pair\"");
            if (!pairs_ && request.text_pair)
                throw error("\"text_pair\" needs --pairs (each example is then a sentence pair)");
        } else {
            const size_t tab = line.find('\t');
            if (pairs_) {
                if (tab == std::string::npos) throw error("--pairs: no tab between the two texts");
                request.text = line.substr(0, tab);
                second = line.substr(tab + 1);
            } else {
                request.text = line;
            }
        }
        if (second) request.text_pair = second;
        // Encoder-decoder models read the second text as the decoder's target.
        if (needs_target_ && request.text_pair) {
            if (!request.target) request.target = request.text_pair;
            request.text_pair.reset();
        }
        if (needs_target_ && !request.target)
            throw error(
                "an encoder-decoder model needs a target: give pairs (--pairs) or "
                "\"target\" in the .jsonl");
        return request;
    }

    std::filesystem::path path_;
    bool pairs_, needs_target_, jsonl_;
    std::ifstream in_;
    std::vector<char> buffer_;
    size_t line_ = 0;
};

// "heads  45% [#########-----------] 4520/10000 examples  310/s  ETA 0:17" on stderr.
class Progress {
public:
    Progress(size_t total, bool enabled) : total_(total), enabled_(enabled) {}
    ~Progress() {
        if (!drawn_) return;
        draw();
        std::fputc('\n', stderr);
    }
    void update(size_t done) {
        done_ = done;
        const auto now = std::chrono::steady_clock::now();
        if (!enabled_ || (drawn_ && now - last_ < std::chrono::milliseconds(100))) return;
        last_ = now;
        draw();
    }

private:
    void draw() {
        drawn_ = true;
        constexpr int kWidth = 24;
        const double fraction =
            total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1;
        const int filled = static_cast<int>(fraction * kWidth);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
        const long left =
            rate > 0 ? static_cast<long>(static_cast<double>(total_ - done_) / rate) : 0;
        std::fprintf(stderr, "\rheads %3d%% [%s%s] %zu/%zu examples  %.0f/s  ETA %ld:%02ld\033[K",
                     static_cast<int>(fraction * 100), std::string(filled, '#').c_str(),
                     std::string(kWidth - filled, '-').c_str(), done_, total_, rate, left / 60,
                     left % 60);
    }

    size_t total_, done_ = 0;
    bool enabled_, drawn_ = false;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_;
};

nlohmann::ordered_json layer_head_array(const std::vector<double>& values, int layers, int heads) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (int layer = 0; layer < layers; ++layer) {
        nlohmann::ordered_json row = nlohmann::ordered_json::array();
        for (int head = 0; head < heads; ++head) {
            const double v = values[static_cast<size_t>(layer) * heads + head];
            row.push_back(std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json());
        }
        out.push_back(std::move(row));
    }
    return out;
}

template <typename T>
nlohmann::ordered_json stat_arrays(const HeadStatSums& sums, const std::vector<T>& values) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (int s = 0; s < kHeadStatCount; ++s) {
        nlohmann::ordered_json layers = nlohmann::ordered_json::array();
        for (int layer = 0; layer < sums.n_layers; ++layer) {
            nlohmann::ordered_json row = nlohmann::ordered_json::array();
            for (int head = 0; head < sums.n_heads; ++head)
                row.push_back(values[sums.index(s, layer, head)]);
            layers.push_back(std::move(row));
        }
        out[std::string(kHeadStatNames[s])] = std::move(layers);
    }
    return out;
}

nlohmann::ordered_json block_json(const HeadStatSums& sums, const HeadDivergenceSums* divergences) {
    nlohmann::ordered_json block;
    block["name"] = sums.block;
    block["n_layers"] = sums.n_layers;
    block["n_heads"] = sums.n_heads;
    block["examples"] = sums.examples;
    block["query_rows"] = sums.query_rows;
    block["uniform_entropy"] = sums.mean_uniform_entropy();
    nlohmann::ordered_json means = nlohmann::ordered_json::object();
    for (int s = 0; s < kHeadStatCount; ++s)
        means[std::string(kHeadStatNames[s])] =
            layer_head_array(sums.means(static_cast<HeadStat>(s)), sums.n_layers, sums.n_heads);
    block["means"] = std::move(means);
    block["sums"] = stat_arrays(sums, sums.sums);
    block["rows"] = stat_arrays(sums, sums.rows);
    block["non_finite"] = stat_arrays(sums, sums.non_finite);
    if (divergences && divergences->rows > 0) {
        const int n = sums.n_layers * sums.n_heads;
        const std::vector<double> distances = divergences->distances();
        const std::vector<double> points = analysis::classical_mds_2d(distances, n);
        nlohmann::ordered_json js;
        js["examples"] = divergences->examples;
        js["query_rows"] = divergences->rows;
        nlohmann::ordered_json matrix = nlohmann::ordered_json::array();
        for (int i = 0; i < n; ++i)
            matrix.push_back(
                std::vector<double>(distances.begin() + static_cast<ptrdiff_t>(i) * n,
                                    distances.begin() + static_cast<ptrdiff_t>(i + 1) * n));
        js["distance"] = std::move(matrix);
        nlohmann::ordered_json mds = nlohmann::ordered_json::array();
        for (int i = 0; i < n; ++i) mds.push_back({points[2 * i], points[2 * i + 1]});
        js["mds"] = std::move(mds);
        block["jensen_shannon"] = std::move(js);
    }
    return block;
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        std::string input;
        bool pairs = false;
        size_t max_tokens = 0;
        std::string output = "heads.html";
        std::string json;
        size_t js_examples = 1000;
        bool progress = false, quiet = false, word_level = false;
        int threads = 0;
        std::optional<uint64_t> max_memory;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    command
        .add_option("--input", flags->input,
                    "the corpus: a .txt file (one example per line; with --pairs, two texts "
                    "separated by a tab) or a .jsonl file ({\"text\", \"text_pair\", \"target\"} "
                    "per line)")
        ->required();
    command.add_flag("--pairs", flags->pairs,
                     "each example is a sentence pair ([CLS] A [SEP] B [SEP]); for "
                     "encoder-decoder models, source and target");
    command
        .add_option("--max-tokens", flags->max_tokens,
                    "cut each text to N tokens, special tokens included (default: the model's "
                    "limit)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    command.add_option("-o,--output", flags->output, "the report page to write")
        ->capture_default_str();
    command.add_option("--json", flags->json,
                       "also write the statistics (means, exact sums and row counts) as JSON");
    command
        .add_option("--js-examples", flags->js_examples,
                    "Jensen-Shannon distances between heads from the first N examples "
                    "(0: none)")
        ->capture_default_str();
    command.add_flag("--word-level", flags->word_level,
                     "statistics over words instead of subword pieces (Clark et al.: attention "
                     "to a word sums its pieces, from a word averages them)");
    command.add_flag("--progress", flags->progress,
                     "draw the progress bar even when stderr is not a terminal");
    command.add_flag("--quiet", flags->quiet, "no progress bar");
    add_threads_flag(command, flags->threads);
    add_max_memory_flag(command, flags->max_memory);
    command.footer(
        "Statistics (docs/analysis.md): entropy, distance, cls, sep, punct, self, prev, next, "
        "top1, per layer and head, averaged over every query row of the corpus.\n"
        "Example: attnviz heads --input sentences.txt -o heads.html --json heads.json");
    return [flags] {
        const std::filesystem::path folder = model_folder(flags->model);
        std::optional<Step> step(std::in_place, "loading the model");
        const Model model = Model::open(folder);
        const bool encoder_decoder = model.config().is_encoder_decoder;
        const size_t total = CorpusReader::count(flags->input);
        CorpusReader reader(flags->input, flags->pairs, encoder_decoder);
        RunOptions run;
        run.threads = flags->threads;
        run.max_memory = flags->max_memory;

        std::vector<HeadStatSums> totals;
        std::vector<HeadDivergenceSums> divergences;
        double forward_seconds = 0, statistics_seconds = 0, distance_seconds = 0;
        size_t examples = 0, tokens = 0;
        std::string non_finite;
        step.emplace("running the model over the corpus");
        {
            Progress progress(total, !flags->quiet && (flags->progress || ::isatty(STDERR_FILENO)));
            TraceRequest request;
            while (reader.next(request)) {
                request.truncate = true;
                request.max_tokens = flags->max_tokens;
                using clock = std::chrono::steady_clock;
                const auto start = clock::now();
                AttentionTrace trace;
                try {
                    trace = model.trace(request, run);
                } catch (const MemoryBudgetError& e) {
                    throw explain_memory_error(e, "--max-tokens");
                } catch (const Error& e) {
                    throw Error("--input " + flags->input + ":" +
                                std::to_string(reader.line_number()) + ": " + e.what());
                }
                if (flags->word_level) trace = analysis::word_level(trace);
                const auto traced = clock::now();
                if (non_finite.empty() && !trace.non_finite.empty())
                    non_finite =
                        "line " + std::to_string(reader.line_number()) + ": " + trace.non_finite;
                std::vector<HeadStatSums> sums = analysis::head_stat_sums(trace);
                if (totals.empty())
                    totals = std::move(sums);
                else
                    for (size_t b = 0; b < totals.size(); ++b) totals[b].merge(sums[b]);
                const auto counted = clock::now();
                if (examples < flags->js_examples)
                    for (size_t b = 0; b < trace.blocks.size(); ++b) {
                        HeadDivergenceSums d = analysis::head_divergence_sums(trace.blocks[b]);
                        if (divergences.size() <= b)
                            divergences.push_back(std::move(d));
                        else
                            divergences[b].merge(d);
                    }
                forward_seconds += std::chrono::duration<double>(traced - start).count();
                statistics_seconds += std::chrono::duration<double>(counted - traced).count();
                distance_seconds += std::chrono::duration<double>(clock::now() - counted).count();
                for (const TokenSequence& sequence : trace.sequences)
                    tokens += sequence.tokens.size();
                progress.update(++examples);
            }
        }
        if (examples == 0)
            throw Error("--input " + flags->input + ": no examples (every line is blank)");

        step.emplace("writing the report");
        nlohmann::ordered_json stats;
        stats["format"] = "attnviz-head-stats";
        stats["version"] = 1;
        stats["model"] = model_label(flags->model);
        stats["architecture"] = model.config().model_type;
        stats["input"] = std::filesystem::path(flags->input).filename().string();
        stats["pairs"] = flags->pairs;
        stats["max_tokens"] = flags->max_tokens;
        stats["word_level"] = flags->word_level;
        stats["examples"] = examples;
        stats["tokens"] = tokens;
        stats["scale"] = analysis::kHeadStatScale;
        stats["statistics"] =
            std::vector<std::string>(kHeadStatNames.begin(), kHeadStatNames.end());
        stats["non_finite"] = non_finite;
        nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
        for (size_t b = 0; b < totals.size(); ++b)
            blocks.push_back(
                block_json(totals[b], b < divergences.size() ? &divergences[b] : nullptr));
        stats["blocks"] = std::move(blocks);
        stats["timing"] = {{"forward_seconds", forward_seconds},
                           {"statistics_seconds", statistics_seconds},
                           {"distance_seconds", distance_seconds}};
        const std::string json = json_text(stats);
        if (!flags->json.empty()) write_output(flags->json, json, "--json");
        write_output(flags->output, render_heads_report(json), "-o");
        if (!flags->json.empty()) print_written(flags->json);
        print_written(flags->output);
        if (!non_finite.empty()) {
            warn("the model produced NaN or inf (" + non_finite + "); those statistics are NaN");
            return kNonFiniteResult;
        }
        return 0;
    };
}

const RegisterCommand registered({"heads", "Average per-head attention statistics over a corpus",
                                  25, setup});

}  // namespace
}  // namespace attnviz::cli
