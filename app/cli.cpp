#include "cli.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>

#include "attnviz/error.h"

namespace fs = std::filesystem;

extern char** environ;

namespace attnviz::cli {

namespace {
// Where the demo model lives: models/demo in the source tree (see docs/demo-model.md).
fs::path demo_model_folder() { return fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo"; }
}  // namespace

std::vector<Command>& commands() {
    static std::vector<Command> registered;
    return registered;
}

void add_model_flags(CLI::App& command, ModelFlags& flags) {
    command.add_option("-m,--model", flags.model,
                       "a folder, or a Hugging Face model id: bert-base-uncased, "
                       "org/name, org/name@revision (default: the bundled demo model)");
    command.add_flag("--offline", flags.offline,
                     "use only the folder or the Hugging Face cache, never the network "
                     "(also HF_HUB_OFFLINE=1)");
}

void add_model_argument(CLI::App& command, ModelFlags& flags) {
    // CLI11 runs the callbacks in the order the options were added, so --model
    // has its value when the positional one compares against it.
    add_model_flags(command, flags);
    command.add_option_function<std::string>(
        "model",
        [&flags](const std::string& model) {
            if (!flags.model.empty() && flags.model != model)
                throw CLI::ValidationError("two models given: '" + model + "' and --model '" +
                                           flags.model + "'");
            flags.model = model;
        },
        "the model, as with --model");
}

HubOptions hub_options(const ModelFlags& flags) {
    HubOptions options;
    options.offline = flags.offline;
    options.check_config = [](const fs::path& folder) { read_model_config(folder); };
    return options;
}

fs::path model_folder(const ModelFlags& flags, bool tokenizer_only) {
    if (!flags.model.empty()) {
        HubOptions options = hub_options(flags);
        options.tokenizer_only = tokenizer_only;
        return resolve_model(flags.model, options);
    }
    const fs::path demo = demo_model_folder();
    if (!fs::is_directory(demo))
        throw Error("no --model given and the bundled demo model is missing (" + demo.string() +
                    "); use --model bert-base-uncased or a folder");
    std::cerr << "attnviz: using the bundled demo model; add --model bert-base-uncased for "
                 "BERT itself (a 440 MB download, cached for Python too)\n";
    return demo;
}

std::string model_label(const ModelFlags& flags) {
    if (flags.model.empty()) return "attnviz demo model";
    std::error_code error;
    if (fs::is_directory(flags.model, error)) {
        const fs::path path = fs::path(flags.model).lexically_normal();
        return (path.has_filename() ? path.filename() : path.parent_path().filename()).string();
    }
    return flags.model;
}

void add_text_flags(CLI::App& command, TextFlags& flags, bool model_run) {
    // A text, and the flag that reads it from a file instead; giving both is a usage error.
    auto add_text = [&command](const std::string& name, std::optional<std::string>& text,
                               std::optional<std::string>& file, const std::string& what,
                               const std::string& more) {
        CLI::Option* inline_text = command.add_option(name, text, what + more);
        const std::string long_name = name.substr(name.find("--"));
        command
            .add_option(long_name + "-file", file,
                        what + " from a file, its bytes exactly (UTF-8); - for standard input")
            ->excludes(inline_text);
    };
    add_text("-t,--text", flags.text, flags.text_file, "the text",
             " (text A of a pair; the source text of an encoder-decoder model)");
    add_text("-b,--text-b", flags.text_b, flags.text_b_file, "the second text of a sentence pair",
             "");
    if (!model_run) return;
    add_text("--target", flags.target, flags.target_file, "the decoder's text",
             ", for encoder-decoder models (BART, T5, Marian)");
    command
        .add_option("--truncate", flags.truncate,
                    "cut each text to N tokens, or without N to the model's maximum length "
                    "(its positions, else its context length, else the tokenizer's), instead "
                    "of failing")
        ->expected(0, 1)
        ->default_str("max")
        ->type_name("[N]")
        ->check(CLI::Validator(
            [](const std::string& value) -> std::string {
                if (value == "max") return "";
                return whole_number(1)(value).empty()
                           ? ""
                           : "must be a number of tokens, at least 1 (not '" + value + "')";
            },
            "[N]"));
}

void read_text_files(TextFlags& flags, bool text_required) {
    const std::pair<const char*, std::optional<std::string>*> files[] = {
        {"--text-file", &flags.text_file},
        {"--text-b-file", &flags.text_b_file},
        {"--target-file", &flags.target_file}};
    const char* reads_input = nullptr;
    for (const auto& [flag, file] : files) {
        if (!*file || **file != "-") continue;
        if (reads_input)
            throw UsageError(std::string(flag) + " -: standard input is already " + reads_input +
                             "'s");
        reads_input = flag;
    }
    if (text_required && !flags.text && !flags.text_file)
        throw UsageError("give the text: --text TEXT, or --text-file FILE (- for standard input)");
    if (flags.text_file) flags.text = read_text_file(*flags.text_file, "--text-file");
    if (flags.text_b_file) flags.text_b = read_text_file(*flags.text_b_file, "--text-b-file");
    if (flags.target_file) flags.target = read_text_file(*flags.target_file, "--target-file");
}

AttentionTrace trace_text(const Model& model, const TextFlags& flags, const RunOptions& run) {
    TraceRequest request;
    request.text = flags.text.value_or("");
    request.text_pair = flags.text_b;
    request.target = flags.target;
    request.truncate = !flags.truncate.empty();
    if (request.truncate && flags.truncate != "max")
        request.max_tokens = static_cast<size_t>(std::stoull(flags.truncate));
    try {
        return model.trace(request, run);
    } catch (const TooLongError& e) {
        throw Error(std::string(e.what()) + "; add --truncate to cut it");
    } catch (const MemoryBudgetError& e) {
        throw explain_memory_error(e, "--truncate");
    }
}

void add_max_memory_flag(CLI::App& command, std::optional<uint64_t>& max_memory) {
    command
        .add_option_function<std::string>(
            "--max-memory",
            [&max_memory](const std::string& value) {
                max_memory = parse_memory_size(value);
                if (!max_memory)
                    throw CLI::ValidationError("--max-memory", "'" + value +
                                                                   "' is not a size (expected "
                                                                   "e.g. 3G, 500M, 1.5GiB)");
            },
            "the most memory the run may take, e.g. 3G or 500M (default: the memory "
            "available, and the address space left under ulimit -v); a bigger run is "
            "refused up front with its estimate")
        ->type_name("SIZE");
}

Error explain_memory_error(const MemoryBudgetError& error, const std::string& fewer) {
    std::string message = error.what();
    message += "; allow more with --max-memory SIZE";
    if (error.fitting_tokens() > 0)
        message += ", or run fewer tokens with " + fewer + " " +
                   std::to_string(error.fitting_tokens()) + " (the most that fit)";
    else
        message += " (the weights alone do not fit)";
    if (error.budget().source.find("threads") != std::string::npos)
        message += ", or use fewer --threads";
    return Error(message);
}

namespace {
thread_local const char* current_step = nullptr;
}  // namespace

Step::Step(const char* doing) : previous_(current_step) { current_step = doing; }
// While an exception unwinds, the step stays named, for main's report.
Step::~Step() {
    if (std::uncaught_exceptions() == 0) current_step = previous_;
}
const char* Step::current() { return current_step; }

CLI::Validator whole_number(int min, int max) {
    const bool bounded = max != std::numeric_limits<int>::max();
    const std::string range = bounded ? std::to_string(min) + " to " + std::to_string(max)
                                      : "at least " + std::to_string(min);
    return CLI::Validator(
        [min, max, bounded](const std::string& value) -> std::string {
            size_t used = 0;
            long long number = 0;
            try {
                number = std::stoll(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != 0 && used == value.size() && number >= min && number <= max) return "";
            return (bounded
                        ? "must be between " + std::to_string(min) + " and " + std::to_string(max)
                        : "must be a whole number, at least " + std::to_string(min)) +
                   " (not '" + value + "')";
        },
        range);
}

void add_precision_flag(CLI::App& command, std::optional<Precision>& precision) {
    command
        .add_option_function<std::string>(
            "--precision",
            [&precision](const std::string& value) {
                if (value == "fp32")
                    precision = Precision::fp32;
                else if (value == "bf16")
                    precision = Precision::bf16;
                else
                    throw CLI::ValidationError("--precision",
                                               "'" + value + "' is not fp32 or bf16");
            },
            "fp32 or bf16 for the matrix products (default: bf16 for models over 1B "
            "parameters where the CPU has AVX-512 BF16 or AMX, fp32 otherwise; "
            "`attnviz info` states bf16's error)")
        ->type_name("fp32|bf16");
}

void add_threads_flag(CLI::App& command, int& threads) {
    command
        .add_option("--threads", threads,
                    "threads for the forward pass (default: ATTNVIZ_NUM_THREADS, else one per "
                    "core)")
        ->check(whole_number(1, kMaxThreads));
}

std::vector<int> parse_int_list(const std::string& text, const std::string& flag) {
    std::vector<int> values;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, comma - start);
        size_t used = 0;
        int value = -1;
        try {
            value = std::stoi(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (item.empty() || used != item.size() || value < 0)
            throw UsageError(flag + ": '" + item + "' is not a number (expected e.g. 0,3,5)");
        values.push_back(value);
        start = comma + 1;
    }
    return values;
}

void add_capture_flags(CLI::App& command, CaptureFlags& flags, bool with_selection) {
    if (with_selection) {
        command.add_option("--layers", flags.layers,
                           "keep the attention of these layers only, e.g. 0,11,23 (default: all)");
        command.add_option("--heads", flags.heads,
                           "keep these heads of each kept layer only, e.g. 0,5 (default: all)");
    }
    command
        .add_option("--top-k", flags.top_k,
                    "keep the K largest probabilities of each query row (sparse rows)")
        ->check(whole_number(1));
    command
        .add_option("--top-mass", flags.top_mass,
                    "keep the fewest largest probabilities of each row that sum to P, 0 < P <= 1")
        ->check(CLI::Range(0.0, 1.0));
    command.add_flag("--fp16", flags.fp16,
                     "store the kept probabilities as float16 (each within 2^-11 of its value, "
                     "relative)");
}

CaptureOptions capture_options(const CaptureFlags& flags) {
    CaptureOptions capture;
    const auto sorted = [](std::vector<int> ids) {
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        return ids;
    };
    if (!flags.layers.empty()) capture.layers = sorted(parse_int_list(flags.layers, "--layers"));
    if (!flags.heads.empty()) capture.heads = sorted(parse_int_list(flags.heads, "--heads"));
    capture.top_k = flags.top_k;
    capture.top_mass = flags.top_mass;
    capture.fp16 = flags.fp16;
    return capture;
}

void densify_for_views(AttentionTrace& trace, std::optional<uint64_t> budget) {
    uint64_t bytes = 0;
    for (const AttentionBlock& block : trace.blocks)
        if (!block.has_dense_probs()) bytes += block.n_rows() * block.n_keys * sizeof(float);
    if (bytes == 0) return;
    const uint64_t room = budget ? *budget : available_memory().bytes;
    const AttentionBlock& first =
        *std::find_if(trace.blocks.begin(), trace.blocks.end(),
                      [](const AttentionBlock& block) { return !block.has_dense_probs(); });
    const std::string flag =
        first.is_sparse() ? (first.capture.top_k > 0 ? "--top-k" : "--top-mass") : "--fp16";
    if (bytes > room / 2)
        throw Error("the views draw every probability: " + format_memory_size(bytes) +
                    " as float32, more than half of the " + format_memory_size(room) +
                    " this run may use; export the " + flag +
                    " capture instead (attnviz export), or keep fewer --layers / --heads");
    for (AttentionBlock& block : trace.blocks) {
        if (block.has_dense_probs()) continue;
        std::vector<float> dense(block.n_rows() * block.n_keys);
        for (int l = 0; l < block.n_layers; ++l)
            for (int h = 0; h < block.n_heads; ++h)
                for (int q = 0; q < block.n_queries; ++q)
                    block.row(l, h, q, dense.data() + block.row_index(l, h, q) * block.n_keys);
        block.probs = std::move(dense);
        block.probs_fp16.clear();
        block.probs_fp16.shrink_to_fit();
        block.row_start.clear();
        block.row_keys.clear();
    }
}

namespace {
std::string escape_json_controls(const std::string& dumped) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(dumped.size());
    for (size_t i = 0; i < dumped.size(); ++i) {
        const auto byte = static_cast<unsigned char>(dumped[i]);
        // In dump's output, C2 80..9F is always U+0080..U+009F inside a string.
        if (byte == 0xC2 && i + 1 < dumped.size() &&
            static_cast<unsigned char>(dumped[i + 1]) < 0xA0) {
            const auto low = static_cast<unsigned char>(dumped[++i]);
            out += "\\u00";
            out += hex[low >> 4];
            out += hex[low & 15];
        } else if (byte == 0x7F) {
            out += "\\u007f";
        } else {
            out += dumped[i];
        }
    }
    return out + "\n";
}
}  // namespace

std::string json_text(const nlohmann::json& json) {
    return escape_json_controls(json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string json_text(const nlohmann::ordered_json& json) {
    return escape_json_controls(
        json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

// Hands the file or URL to the desktop's opener (xdg-open). Its own chatter (a
// headless machine gets several lines of it) goes to /dev/null, and so does its
// input, lest it start a text-mode browser; a failure is one line saying where
// the page is.
void open_in_browser(const std::string& target, const std::string& shown) {
    const char* argv[] = {"xdg-open", target.c_str(), nullptr};
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
        posix_spawn_file_actions_addopen(&quiet, fd, "/dev/null",
                                         fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0);
    pid_t pid = 0;
    const int spawn_error =
        posix_spawnp(&pid, "xdg-open", &quiet, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&quiet);
    int status = 0;
    if (spawn_error == 0) waitpid(pid, &status, 0);  // xdg-open returns once the browser started
    if (spawn_error == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    const bool has_display = std::getenv("DISPLAY") || std::getenv("WAYLAND_DISPLAY");
    std::cerr << "attnviz: warning: could not open a browser ("
              << (spawn_error != 0 ? "cannot run xdg-open"
                  : !has_display   ? "no DISPLAY or WAYLAND_DISPLAY"
                                   : "xdg-open failed")
              << "); the page is " << printable(shown) << "\n";
}

void print_written(const fs::path& path) {
    if (!is_standard_output(path)) std::cout << printable(fs::absolute(path).string()) << "\n";
}

}  // namespace attnviz::cli
