#include "io/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>

#include "attnviz/error.h"

namespace fs = std::filesystem;
using attnviz::Error;

namespace {
fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("attnviz_files_test_" + name);
}
}  // namespace

TEST(Files, WriteThenReadAndMap) {
    const fs::path path = temp_path("roundtrip.bin");
    const std::string bytes("ab\0cd", 5);
    attnviz::io::write_file(path, bytes);
    EXPECT_EQ(attnviz::io::read_file(path), bytes);
    attnviz::io::MappedFile mapped(path);
    ASSERT_EQ(mapped.size(), 5u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(mapped.data()), mapped.size()), bytes);
    fs::remove(path);
}

TEST(Files, MissingFileErrorNamesTheFile) {
    try {
        attnviz::io::read_file("/nonexistent/attnviz/x.json");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/attnviz/x.json"), std::string::npos);
    }
}

TEST(Files, InvalidJsonErrorNamesFileAndByte) {
    const fs::path path = temp_path("bad.json");
    attnviz::io::write_file(path, "{\"a\": [1, 2,, 3]}");
    try {
        attnviz::io::read_json(path);
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(path.string()), std::string::npos) << message;
        EXPECT_NE(message.find("at byte 13"), std::string::npos) << message;
    }
    fs::remove(path);
}

// Issue 12: a FIFO in place of a model file hung every reader forever (open
// waits for a writer), and a directory gave "No such device" (from mmap).
// Every reader opens through InputFile, which refuses both and says which.
TEST(Files, OnlyRegularFilesAreOpened) {
    alarm(60);  // a regression hangs in open(): die rather than block the suite
    const fs::path fifo = temp_path("fifo_" + std::to_string(getpid()));
    const fs::path folder = temp_path("folder_" + std::to_string(getpid()));
    fs::remove(fifo);
    fs::remove_all(folder);
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    fs::create_directories(folder);
    const auto error_of = [](const auto& open) -> std::string {
        try {
            open();
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    };
    for (const auto& [path, kind] :
         {std::pair{fifo, std::string("a FIFO")}, std::pair{folder, std::string("a directory")}}) {
        const std::string expected =
            "cannot open " + path.string() + ": it is " + kind + ", not a regular file";
        EXPECT_EQ(error_of([&] { attnviz::io::read_file(path); }), expected);
        EXPECT_EQ(error_of([&] { attnviz::io::read_json(path); }), expected);
        EXPECT_EQ(error_of([&] { attnviz::io::MappedFile mapped(path); }), expected);
    }
    EXPECT_EQ(error_of([] { attnviz::io::read_file("/dev/zero"); }),
              "cannot open /dev/zero: it is a character device, not a regular file");
    // A symlink to a regular file is a regular file (the hub cache is made of them).
    const fs::path target = temp_path("target.json"), link = temp_path("link.json");
    fs::remove(link);
    attnviz::io::write_file(target, "{\"a\": 1}");
    fs::create_symlink(target, link);
    EXPECT_EQ(attnviz::io::read_json(link)["a"], 1);
    fs::remove(link);
    fs::remove(target);
    fs::remove(fifo);
    fs::remove_all(folder);
    alarm(0);
}
