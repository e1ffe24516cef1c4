#include "io/files.h"

#include <gtest/gtest.h>

#include <filesystem>

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
