// What attnviz writes and what it prints: outputs that are whole or absent,
// text files read as UTF-8, and text made safe to print to a terminal.
// Owner: src/io (files.cpp).
#pragma once

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace attnviz {

// "-" and "/dev/stdout": standard output, written through rather than replaced.
bool is_standard_output(const std::filesystem::path& path);

// The one way attnviz writes an output file (pages, pictures, .npz, the
// cache's refs). The bytes go to a new file with a unique name beside the
// target; commit() syncs it to disk and renames it over the target in one
// step, so the target is at every moment either its old self or the whole new
// output. Not committed (an exception, a write error, a full disk) or
// interrupted (SIGINT, SIGTERM, SIGHUP, SIGXFSZ, while their default action is
// in force), the temporary file is removed and the target is left as it was.
//
// A symbolic link is followed, as cp follows it: the file it points to is
// replaced and the link stays. A target that exists and is not a regular file
// (a directory, a device such as /dev/null, a FIFO, a socket) is refused.
// Standard output (see is_standard_output) is written directly.
class OutputFile {
public:
    // `flag` names where the path came from, for messages: "-o". Throws Error
    // naming the flag and the path when the target cannot be written.
    explicit OutputFile(const std::filesystem::path& path, std::string flag = "");
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    // Where the bytes go. A failed write throws Error naming the output (the
    // stream has badbit in its exception mask).
    std::ostream& stream();
    // Syncs and renames into place (or flushes standard output).
    void commit();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// An OutputFile holding `bytes`, committed.
void write_output(const std::filesystem::path& path, std::string_view bytes,
                  const std::string& flag = "");

// A text for the model: a file's bytes exactly (a final newline included), or
// standard input for "-". Throws Error naming the flag and the file when it
// cannot be read or is not valid UTF-8.
std::string read_text_file(const std::filesystem::path& path, const std::string& flag);

// `text` as it may safely reach a terminal: control characters (C0, DEL, C1)
// become \n, \t, \x1b or \u009b, and bytes that are not UTF-8 become \xff, so
// that a file or folder name cannot move the cursor, retitle the window or
// hide what follows. Everything else, backslashes included, is unchanged.
std::string printable(std::string_view text);

// The length of the longest valid UTF-8 prefix of `text` (its size when valid).
size_t valid_utf8_prefix(std::string_view text);

}  // namespace attnviz
