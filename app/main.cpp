// attnviz command line: parses flags and calls the library. Nothing else.
// Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 ran and wrote its outputs
// but the result holds NaN or inf (view, export: cli.h's kNonFiniteResult).
// Errors go to stderr as one line, "attnviz: error: ...".
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <new>

#include "attnviz/error.h"
#include "attnviz/files.h"
#include "cli.h"

namespace {

constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;

// One line, whatever the message holds, so that `2>&1 | head -1` tells it all.
int report(std::string message, int code) {
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::cerr << "attnviz: error: " << attnviz::printable(message) << "\n";
    return code;
}

// A failed allocation: said without allocating (the heap may be exhausted),
// with what the command was doing and the flags that bound a run's memory.
int report_out_of_memory() {
    const char* doing = attnviz::cli::Step::current();
    std::fputs("attnviz: error: out of memory", stderr);
    if (doing) {
        std::fputs(" while ", stderr);
        std::fputs(doing, stderr);
    }
    std::fputs(
        "; run fewer tokens (--truncate N), or set --max-memory SIZE to what this machine "
        "can spare, to be refused up front with an estimate\n",
        stderr);
    return kRuntimeError;
}

// libgomp reads OMP_WAIT_POLICY once, as the program starts. Its default lets
// idle threads spin, which on a busy machine burns the time slice their partner
// needs: a 2-thread forward then runs several times slower than a 1-thread one.
// Unless the user chose a policy, restart once with PASSIVE (as PyTorch users
// are told to); if the restart fails, go on with the default.
void prefer_passive_openmp_threads(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
    prefer_passive_openmp_threads(argv);
    CLI::App app{
        "attnviz: see what a transformer attends to. Loads a Hugging Face model, runs it "
        "natively and writes self-contained attention views.",
        "attnviz"};
    app.set_version_flag("--version", std::string("attnviz ") + ATTNVIZ_VERSION);
    app.require_subcommand(1);
    app.footer("Run 'attnviz <command> --help' for a command's flags. Documentation: docs/cli.md");

    std::vector<attnviz::cli::Command>& commands = attnviz::cli::commands();
    std::sort(commands.begin(), commands.end(),
              [](const auto& a, const auto& b) { return a.order < b.order; });
    std::function<int()> run;
    for (const attnviz::cli::Command& command : commands) {
        CLI::App* sub = app.add_subcommand(command.name, command.description);
        std::function<int()> runner = command.setup(*sub);
        sub->callback([&run, runner] { run = runner; });
    }

    if (argc == 1) {
        std::cerr << app.help();
        return kUsageError;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        if (app.get_subcommands().empty() && argv[1][0] != '-') {
            std::string names;
            for (const attnviz::cli::Command& command : commands)
                names += std::string(names.empty() ? "" : ", ") + command.name;
            return report("unknown command '" + std::string(argv[1]) + "' (commands: " + names +
                              "); run 'attnviz --help' for usage",
                          kUsageError);
        }
        std::string where = "attnviz";
        for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
        // CLI11 checks for missing flags before it looks at the ones it did not
        // know; an unknown flag is the real mistake (`view --txt a` is not a
        // missing --text), so it is reported first.
        const std::vector<std::string> unknown = app.remaining(true);
        std::string message = e.what();
        if (!unknown.empty())
            message =
                (unknown.front().starts_with("-") ? "unknown flag " : "unexpected argument ") +
                unknown.front() + " for '" + where + "'";
        return report(message + "; run '" + where + " --help' for usage", kUsageError);
    }
    try {
        return run();
    } catch (const attnviz::cli::UsageError& e) {
        return report(e.what(), kUsageError);
    } catch (const attnviz::Error& e) {
        return report(e.what(), kRuntimeError);
    } catch (const std::filesystem::filesystem_error& e) {
        return report(e.what(), kRuntimeError);
    } catch (const std::bad_alloc&) {
        return report_out_of_memory();
    } catch (const std::exception& e) {
        return report(std::string("unexpected failure: ") + e.what(), kRuntimeError);
    }
}
