// attnviz view: the seed's whole workflow in one command. Resolve the model,
// tokenize, run it keeping every attention, and write the views to one file.
#include <spawn.h>
#include <sys/wait.h>

#include <iostream>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "cli.h"

extern char** environ;

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

// Hands the file to the desktop's opener (xdg-open) without waiting for the browser.
void open_in_browser(const std::filesystem::path& path) {
    const std::string file = path.string();
    const char* argv[] = {"xdg-open", file.c_str(), nullptr};
    pid_t pid = 0;
    if (posix_spawnp(&pid, "xdg-open", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
        std::cerr << "attnviz: warning: cannot run xdg-open; open " << file << " yourself\n";
        return;
    }
    int status = 0;
    waitpid(pid, &status, 0);  // xdg-open returns once the browser has started
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        std::cerr << "attnviz: warning: xdg-open could not open " << file << "\n";
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        TextFlags text;
        std::string views;  // empty: head,model for a page, head for a picture
        std::string layers, heads;
        std::string output;
        std::string format;
        bool open = false;
        bool fragment = false;
        int threads = 0;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    add_text_flags(command, flags->text);
    command.add_option("--view", flags->views,
                       "head, model, neuron, matrix, a comma list of them, or all (default: "
                       "head,model; head for svg and png)");
    command.add_option("--layers", flags->layers, "layers to show, e.g. 0,3 (default: all)");
    command.add_option("--heads", flags->heads, "heads to show, e.g. 0,5,7 (default: all)");
    command.add_option("-o,--output", flags->output,
                       "the file to write (default: attention.html, .svg or .png)");
    command
        .add_option("--format", flags->format,
                    "html (interactive page), svg or png (one static picture for papers); "
                    "default: from the -o extension, else html")
        ->check(CLI::IsMember({"html", "svg", "png"}));
    command.add_flag("--fragment", flags->fragment,
                     "write an HTML fragment to embed in another page (a notebook cell)");
    command.add_flag("--open", flags->open, "open the page in the default browser");
    add_threads_flag(command, flags->threads);
    command.footer(
        "Example: attnviz view --model bert-base-uncased --text \"The cat sat on the mat\" "
        "--text-b \"The cat lay on the rug\"\nWrites the page (or picture) and prints its path. "
        "Static formats draw one view: head (the first of --layers), model, or matrix (the "
        "first of --layers and --heads).");
    return [flags] {
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
        if (format != "html") {
            if (flags->fragment) throw UsageError("--fragment needs --format html");
            if (options.views.size() != 1)
                throw UsageError("--format " + format +
                                 " draws one view: give --view head, model or matrix");
            if (options.views.front() == View::neuron)
                throw UsageError("the neuron view has no static form; use --format html");
        }
        const std::filesystem::path output =
            flags->output.empty() ? "attention." + format : flags->output;

        const std::filesystem::path folder = model_folder(flags->model);
        const Model model = Model::open(folder);
        RunOptions run;
        run.threads = flags->threads;
        run.keep_queries_keys = std::find(options.views.begin(), options.views.end(),
                                          View::neuron) != options.views.end();
        AttentionTrace trace = model.trace(trace_request(flags->text), run);
        trace.model_id = model_label(flags->model);

        if (format == "html") {
            write_output(output, flags->fragment ? render_html_fragment(trace, options)
                                                 : render_html(trace, options));
        } else {
            const std::vector<uint8_t> picture = render_static(
                trace, options, format == "svg" ? StaticFormat::svg : StaticFormat::png);
            write_output(output, std::string(picture.begin(), picture.end()));
        }
        const std::filesystem::path written = std::filesystem::absolute(output);
        std::cout << written.string() << "\n";
        if (flags->open) open_in_browser(written);
        return 0;
    };
}

const RegisterCommand registered({"view", "Write attention views (HTML page, SVG or PNG)", 10,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
