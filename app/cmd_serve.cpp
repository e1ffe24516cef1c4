// attnviz serve: a local server for the live explorer page (web/serve/). Its
// first line of output is the URL with the token; docs/serve.md has the
// endpoints and the security model.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "attnviz/hub.h"
#include "attnviz/memory.h"
#include "cli.h"
#include "serve/server.h"

namespace fs = std::filesystem;

namespace attnviz::cli {
namespace {

// The browser is handed a file that redirects to the URL, not the URL itself:
// another local user would read the token in xdg-open's command line (as
// Jupyter does it). The file is the user's alone (0600).
void open_page(const std::string& url) {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    const fs::path folder =
        runtime && fs::is_directory(runtime) ? fs::path(runtime) : fs::temp_directory_path();
    const fs::path file = folder / ("attnviz-serve-" + std::to_string(getpid()) + "-open.html");
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        std::cerr << "attnviz: warning: could not open a browser (cannot write "
                  << printable(file.string()) << "); open the URL above\n";
        return;
    }
    const std::string page =
        "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0; url=" +
        url + "\"><title>attnviz serve</title><a href=\"" + url + "\">attnviz serve</a>\n";
    const bool written = ::write(fd, page.data(), page.size()) == static_cast<ssize_t>(page.size());
    ::close(fd);
    if (written) open_in_browser("file://" + file.string(), "the URL above");
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        std::vector<std::string> models;
        int port = 8765;
        std::string host = "127.0.0.1";
        bool no_open = false;
        bool offline = false;
        std::optional<uint64_t> max_memory;
        int max_tokens = 0;
        int max_traces = 64;
        int threads = 0;
    };
    auto flags = std::make_shared<Flags>();
    command.add_option("-m,--model", flags->models,
                       "a model to offer (a folder or a Hugging Face id; repeat for more); "
                       "every model in the Hugging Face cache is offered too (default when "
                       "neither: the bundled demo model)");
    command
        .add_option("--port", flags->port,
                    "the port to listen on; 0: any free one (default 8765, else any free one)")
        ->check(whole_number(0, 65535));
    command.add_option("--host", flags->host,
                       "the address to listen on (default 127.0.0.1: this machine only)");
    command.add_flag("--no-open", flags->no_open, "do not open the page in a browser");
    command.add_flag("--offline", flags->offline,
                     "never download a --model id; use the Hugging Face cache only");
    add_max_memory_flag(command, flags->max_memory);
    command.get_option("--max-memory")
        ->description(
            "the memory the loaded models, the kept traces and the running forward passes may "
            "take together, e.g. 4G (default: the memory available at start); the least "
            "recently used model is unloaded first");
    command
        .add_option("--max-tokens", flags->max_tokens,
                    "the most tokens an input may have (default: each model's limit, its "
                    "positions)")
        ->check(whole_number(1));
    command.add_option("--max-traces", flags->max_traces, "traces kept for the page (default 64)")
        ->check(whole_number(1, 100000));
    add_threads_flag(command, flags->threads);
    command.footer(
        "Prints http://127.0.0.1:PORT/?token=TOKEN first, then serves until interrupted. "
        "Every request needs the token; see docs/serve.md.\n"
        "Example: attnviz serve --model bert-base-uncased");
    return [flags, &command] {
        // Big buffers straight from mmap, so that an evicted model or trace
        // goes back to the system rather than staying in the heap.
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        serve::ServerOptions options;
        options.host = flags->host;
        options.token = serve::random_token();
        options.budget = flags->max_memory ? *flags->max_memory : available_memory().bytes;
        options.max_tokens = static_cast<size_t>(flags->max_tokens);
        options.max_traces = static_cast<size_t>(flags->max_traces);
        options.threads = flags->threads;
        options.offline = flags->offline;
        const fs::path demo = fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo";
        serve::Server server(options, serve::model_sources(flags->models, hub_cache_dir(), demo));
        if (command.get_option("--port")->count() > 0) {
            server.bind(flags->port);
        } else {
            try {
                server.bind(flags->port);
            } catch (const Error&) {
                server.bind(0);  // the default port is taken: any free one
            }
        }
        std::cout << server.url() << std::endl;
        if (flags->host != "127.0.0.1" && flags->host != "localhost" && flags->host != "::1")
            std::cerr << "attnviz: warning: listening on " << printable(flags->host)
                      << ": other machines may reach the server (the token still guards it)\n";
        if (!flags->no_open) open_page(server.url());
        server.listen();
        return 0;
    };
}

const RegisterCommand registered({"serve", "Serve the live explorer page on this machine", 15,
                                  setup});

}  // namespace
}  // namespace attnviz::cli
