// What the subcommands share: how they register, how they find the model, and
// how flags become library options. Each subcommand lives in its own
// app/cmd_<name>.cpp and registers itself, so main.cpp lists none of them.
#pragma once

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "attnviz/files.h"
#include "attnviz/hub.h"
#include "attnviz/memory.h"
#include "attnviz/model.h"

namespace attnviz::cli {

// A wrong flag value found after parsing: exit code 2, like a parse error.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Exit code 3: the command ran and wrote its outputs, but the result holds NaN
// or inf (AttentionTrace::non_finite; Model::trace has warned where).
constexpr int kNonFiniteResult = 3;
// 0, or kNonFiniteResult when the trace holds NaN or inf.
inline int result_code(const AttentionTrace& trace) {
    return trace.non_finite.empty() ? 0 : kNonFiniteResult;
}

// A subcommand: `setup` adds its flags to `command` and returns what runs it
// (the exit code), called only when the user chose this subcommand.
struct Command {
    const char* name;
    const char* description;
    int order;  // place in `attnviz --help`
    std::function<std::function<int()>(CLI::App& command)> setup;
};
std::vector<Command>& commands();
struct RegisterCommand {
    explicit RegisterCommand(Command command) { commands().push_back(std::move(command)); }
};

// --model, --offline: which model, and whether the network may be used.
struct ModelFlags {
    std::string model;  // empty: the bundled demo model
    bool offline = false;
};
void add_model_flags(CLI::App& command, ModelFlags& flags);
// The same, with the model also taken as a positional argument (download,
// info): `attnviz info gpt2` and `attnviz info --model gpt2` are one; two
// different models are a usage error.
void add_model_argument(CLI::App& command, ModelFlags& flags);

// The model's folder: --model resolved through the hub and its cache, or the
// demo model with a one-line notice on stderr. tokenizer_only: config.json
// and the tokenizer will do, and no weights are downloaded (tokenize, info).
std::filesystem::path model_folder(const ModelFlags& flags, bool tokenizer_only = false);
// "bert-base-uncased", or the folder's name, for traces and reports.
std::string model_label(const ModelFlags& flags);
// The hub options the flags ask for; a model_type attnviz cannot run is
// refused from its config.json, before any weights are downloaded.
HubOptions hub_options(const ModelFlags& flags);

// --text A [--text-b B] [--target T] [--truncate [N]]: what the model runs on.
// Each text may come from a file instead (--text-file, --text-b-file,
// --target-file; - for standard input), for texts too long for a command line.
struct TextFlags {
    std::optional<std::string> text;
    std::optional<std::string> text_b;
    std::optional<std::string> target;
    std::optional<std::string> text_file, text_b_file, target_file;
    std::string truncate;  // empty: not given; "max": the model's limit; else N tokens
};
// model_run: also --target, --target-file and --truncate (view and export, not tokenize).
void add_text_flags(CLI::App& command, TextFlags& flags, bool model_run = true);
// Reads the --*-file flags into their texts; throws UsageError when
// `text_required` and neither --text nor --text-file was given, or when more
// than one reads standard input, and Error naming the flag and the file when
// one cannot be read or is not UTF-8.
void read_text_files(TextFlags& flags, bool text_required = true);
// model.trace on the flags' text; a text too long for the model names
// --truncate, and one too big for the memory --max-memory and --truncate N.
AttentionTrace trace_text(const Model& model, const TextFlags& flags, const RunOptions& run);

// --max-memory SIZE (3G, 500M): the most memory a run may take
// (RunOptions::max_memory); not given: what is available (attnviz/memory.h).
void add_max_memory_flag(CLI::App& command, std::optional<uint64_t>& max_memory);
// A MemoryBudgetError as the user answers it: its numbers, then --max-memory,
// and `fewer` ("--truncate", "--seq") with the token count that would fit.
Error explain_memory_error(const MemoryBudgetError& error, const std::string& fewer);

// What the command is doing now, for "out of memory while <doing>" (main.cpp);
// an exception leaving the step leaves it named.
class Step {
public:
    explicit Step(const char* doing);
    ~Step();
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;
    static const char* current();  // null: nothing named

private:
    const char* previous_;
};

// A whole-number flag from min to max: "--threads: must be between 1 and 1024".
CLI::Validator whole_number(int min, int max = std::numeric_limits<int>::max());

// --threads N (1 to kMaxThreads); not given: ATTNVIZ_NUM_THREADS, else one per core.
void add_threads_flag(CLI::App& command, int& threads);

// --precision fp32|bf16; unset: the model's default (bf16 over 1B parameters
// where the CPU runs it natively, include/attnviz/model.h).
void add_precision_flag(CLI::App& command, std::optional<Precision>& precision);

// "0,3,5" -> {0, 3, 5}; throws UsageError naming the flag.
std::vector<int> parse_int_list(const std::string& text, const std::string& flag);

// --top-k K, --top-mass P, --fp16 (and, for export, --layers / --heads):
// what the forward keeps of the attention (RunOptions::capture).
struct CaptureFlags {
    std::string layers, heads;  // comma lists, any order
    int top_k = 0;
    double top_mass = 0;
    bool fp16 = false;
};
// with_selection: also --layers and --heads (view has its own, which it passes on).
void add_capture_flags(CLI::App& command, CaptureFlags& flags, bool with_selection);
CaptureOptions capture_options(const CaptureFlags& flags);

// Makes every block's probabilities dense float32 (a sparse or fp16 capture,
// for the views), refusing with the flag to drop when that would take more
// than `budget` bytes.
void densify_for_views(AttentionTrace& trace, std::optional<uint64_t> budget);

// JSON as a command prints it: indented, a string that is not UTF-8 (a hostile
// vocabulary or folder name) shown with U+FFFD rather than an exception, and
// C1 controls and DEL escaped as \u0080 (dump escapes the C0 ones), so that
// nothing in it drives the terminal. Ends with a newline.
std::string json_text(const nlohmann::json& json);
std::string json_text(const nlohmann::ordered_json& json);

// What a command prints after writing `path`: its absolute path, or nothing
// when it went to standard output.
void print_written(const std::filesystem::path& path);

// Hands `target` (a file or URL) to the desktop's opener, xdg-open; when that
// fails, one warning line says why and where `shown` is.
void open_in_browser(const std::string& target, const std::string& shown);

}  // namespace attnviz::cli
