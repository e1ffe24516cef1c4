// attnviz view: the seed's whole workflow in one command. Resolve the model,
// tokenize, run it keeping every attention, and write the views to one file.
#include <algorithm>
#include <iostream>

#include "analysis_flags.h"
#include "attnviz/error.h"
#include "attnviz/export.h"
#include "attnviz/hub.h"
#include "attnviz/views.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

std::vector<View> parse_views(const std::string& text) {
    if (text == "all") return {View::head, View::model, View::neuron, View::matrix};
    std::vector<View> views;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        try {
            views.push_back(parse_view(text.substr(start, comma - start)));
        } catch (const Error& e) {
            throw UsageError(std::string("--view: ") + e.what() +
                             " (expected head, model, neuron, matrix, a comma list, or all)");
        }
        start = comma + 1;
    }
    return views;
}

// --attention FILE.npz: attention attnviz did not compute (numpy.savez, or
// `attnviz export`), drawn instead of running a model. --text is then not
// needed, and a model or text beside it is a usage error.
void add_attention_flag(CLI::App& command, std::string& attention) {
    command.add_option(
        "--attention", attention,
        "draw the attention in this .npz (attentions [layers, heads, tokens, tokens] "
        "or attentions_0..N, tokens, optional sentence_b_start; encoder-decoder: "
        "export's names) instead of running a model");
    command.get_option("--text")->required(false);
}

AttentionTrace trace_from_attention_file(const CLI::App& command, const std::string& attention) {
    for (const char* flag : {"--model", "--text", "--text-b", "--target", "--text-file",
                             "--text-b-file", "--target-file", "--truncate", "--threads", "--top-k",
                             "--top-mass", "--fp16", "--precision"})
        if (command.get_option(flag)->count() > 0)
            throw UsageError(
                std::string(flag) +
                " runs a model; --attention draws the file's attention: give one or the other");
    return read_npz(attention);
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        TextFlags text;
        std::string views;  // empty: head,model for a page, head for a picture
        std::string layers, heads;
        int open_layer = -1;
        std::string open_heads;
        std::string output;
        std::string format;
        bool open = false;
        bool fragment = false;
        int threads = 0;
        std::string attention;
        std::optional<uint64_t> max_memory;
        std::optional<Precision> precision;
        CaptureFlags capture;
        AnalysisFlags analysis;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    add_text_flags(command, flags->text);
    command.add_option("--view", flags->views,
                       "head, model, neuron, matrix, a comma list of them, or all (default: "
                       "head,model; head for svg and png)");
    command.add_option("--layers", flags->layers, "layers to show, e.g. 0,3 (default: all)");
    command.add_option("--heads", flags->heads, "heads to show, e.g. 0,5,7 (default: all)");
    command.add_option("--open-layer", flags->open_layer,
                       "the layer the page opens on, one of --layers (default: the first)");
    command.add_option("--open-heads", flags->open_heads,
                       "the heads the page shows at first, e.g. 0,3, among --heads (default: all)");
    command.add_option("-o,--output", flags->output,
                       "the file to write (default: attention.html, .svg or .png); - for "
                       "standard output");
    command
        .add_option("--format", flags->format,
                    "html (interactive page), svg or png (one static picture for papers); "
                    "default: from the -o extension, else html")
        ->check(CLI::IsMember({"html", "svg", "png"}));
    command.add_flag("--fragment", flags->fragment,
                     "write an HTML fragment to embed in another page (a notebook cell)");
    command.add_flag("--open", flags->open, "open the page in the default browser");
    add_threads_flag(command, flags->threads);
    add_attention_flag(command, flags->attention);
    add_max_memory_flag(command, flags->max_memory);
    add_precision_flag(command, flags->precision);
    add_capture_flags(command, flags->capture, /*with_selection=*/false);
    add_view_analysis_flags(command, flags->analysis);
    command.footer(
        "Example: attnviz view --model bert-base-uncased --text \"The cat sat on the mat\" "
        "--text-b \"The cat lay on the rug\"\nWrites the page (or picture) and prints its path. "
        "Static formats draw one view: head (the first of --layers), model, or matrix (the "
        "first of --layers and --heads).");
    return [flags, &command] {
        read_text_files(flags->text, /*text_required=*/flags->attention.empty());
        std::string format = flags->format;
        const std::string extension = std::filesystem::path(flags->output).extension().string();
        if (format.empty())
            format = extension == ".svg" ? "svg" : extension == ".png" ? "png" : "html";
        ViewOptions options;
        options.views =
            parse_views(flags->views.empty() ? std::string(format == "html" ? "head,model" : "head")
                                             : flags->views);
        if (!flags->layers.empty()) options.layers = parse_int_list(flags->layers, "--layers");
        if (!flags->heads.empty()) options.heads = parse_int_list(flags->heads, "--heads");
        options.open_layer = flags->open_layer;
        if (!flags->open_heads.empty())
            options.open_heads = parse_int_list(flags->open_heads, "--open-heads");
        const auto has = [](const std::vector<int>& set, int value) {
            return std::find(set.begin(), set.end(), value) != set.end();
        };
        if (flags->open_layer < -1 || (flags->open_layer >= 0 && !options.layers.empty() &&
                                       !has(options.layers, flags->open_layer)))
            throw UsageError("--open-layer " + std::to_string(flags->open_layer) +
                             " is not one of the layers the page includes (--layers " +
                             flags->layers + ")");
        for (int head : options.open_heads)
            if (!options.heads.empty() && !has(options.heads, head))
                throw UsageError("--open-heads: head " + std::to_string(head) +
                                 " is not one of the heads the page includes (--heads " +
                                 flags->heads + ")");
        if (format != "html" && (flags->open_layer >= 0 || !options.open_heads.empty()))
            throw UsageError(
                "--open-layer and --open-heads choose what a page opens on; "
                "--format " +
                format + " draws --layers and --heads");
        if (format != "html") {
            if (flags->fragment) throw UsageError("--fragment needs --format html");
            if (options.views.size() != 1)
                throw UsageError("--format " + format +
                                 " draws one view: give --view head, model or matrix");
            if (options.views.front() == View::neuron)
                throw UsageError("the neuron view has no static form; use --format html");
            for (const char* flag : {"--rollout", "--flow", "--head-stats", "--word-level"})
                if (command.count(flag) > 0)
                    throw UsageError(std::string(flag) + " adds a tab to the HTML page; --format " +
                                     format + " draws --view");
        }
        const std::filesystem::path output =
            flags->output.empty() ? "attention." + format : flags->output;
        if (flags->open && is_standard_output(output))
            throw UsageError("--open needs a file to open, not -o -");

        AttentionTrace trace;
        std::optional<Step> step;
        if (!flags->attention.empty()) {
            step.emplace("reading the attention file");
            trace = trace_from_attention_file(command, flags->attention);
        } else {
            const std::filesystem::path folder = model_folder(flags->model);
            step.emplace("loading the model");
            const Model model = Model::open(folder);
            RunOptions run;
            run.threads = flags->threads;
            run.max_memory = flags->max_memory;
            run.precision = flags->precision;
            if (format == "html") run.output_fraction = 0.3;  // the page's quantized attention
            run.keep_queries_keys = std::find(options.views.begin(), options.views.end(),
                                              View::neuron) != options.views.end();
            // What the page does not show is not kept: --layers and --heads
            // choose the capture, and the page shows all of it (labelled with
            // the model's numbers).
            run.capture = capture_options(flags->capture);
            run.capture.layers = options.layers;
            run.capture.heads = options.heads;
            for (std::vector<int>* ids : {&run.capture.layers, &run.capture.heads}) {
                std::sort(ids->begin(), ids->end());
                ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
            }
            options.layers.clear();
            options.heads.clear();
            step.emplace("running the model");
            trace = trace_text(model, flags->text, run);
            trace.model_id = model_label(flags->model);
            trace.model_revision = snapshot_commit(folder);
        }
        densify_for_views(trace, flags->max_memory);
        // Without --layers / --heads the page includes all: check against the model.
        const AttentionBlock& shown = trace.blocks.front();
        const char* source = flags->attention.empty() ? "the model" : "the attention file";
        const int layers = std::max(shown.n_layers, shown.n_model_layers),
                  heads = std::max(shown.n_heads, shown.n_model_heads);
        if (flags->open_layer >= layers)
            throw UsageError("--open-layer " + std::to_string(flags->open_layer) +
                             " is out of range: " + source + " has " + std::to_string(layers) +
                             " layers");
        for (int head : options.open_heads)
            if (head < 0 || head >= heads)
                throw UsageError("--open-heads: head " + std::to_string(head) +
                                 " is out of range: " + source + " has " + std::to_string(heads) +
                                 " heads");

        if (format == "html") options.analysis = view_analysis(command, flags->analysis, trace);
        const ViewAnalysis& analysis = options.analysis;
        step.emplace(analysis.rollout || analysis.flow || analysis.head_stats || analysis.word_level
                         ? "computing the analysis and writing the view"
                         : "writing the view");
        if (format == "html") {
            write_output(output,
                         flags->fragment ? render_html_fragment(trace, options)
                                         : render_html(trace, options),
                         "-o");
        } else {
            const std::vector<uint8_t> picture = render_static(
                trace, options, format == "svg" ? StaticFormat::svg : StaticFormat::png);
            write_output(
                output,
                std::string_view(reinterpret_cast<const char*>(picture.data()), picture.size()),
                "-o");
        }
        print_written(output);
        if (flags->open) {
            const std::string page = std::filesystem::absolute(output).string();
            open_in_browser(page, page);
        }
        return result_code(trace);
    };
}

const RegisterCommand registered({"view", "Write attention views (HTML page, SVG or PNG)", 10,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
