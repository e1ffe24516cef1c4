// attnviz command line: parses flags and calls the library. Nothing else.
#include <CLI/CLI.hpp>

#include <iostream>

#include "attnviz/error.h"

int main(int argc, char** argv) {
    CLI::App app{"attnviz: see what a transformer attends to"};
    app.set_version_flag("--version", std::string("attnviz ") + ATTNVIZ_VERSION);
    app.require_subcommand(1);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    } catch (const attnviz::Error& e) {
        std::cerr << "attnviz: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
