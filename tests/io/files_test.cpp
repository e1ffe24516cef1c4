#include "io/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "attnviz/error.h"
#include "attnviz/files.h"

namespace fs = std::filesystem;
using attnviz::Error;
using ::testing::HasSubstr;

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

// nlohmann's parser throws out_of_range, not parse_error, for a number no double
// holds: an Error naming the file, never an exception that ends the program
// (the tokenizer_json fuzzer's finding).
TEST(Files, JsonNumberTooLargeIsAnErrorNamingTheFile) {
    const fs::path path = temp_path("huge.json");
    attnviz::io::write_file(path, "{\"a\": 1e30102}");
    try {
        attnviz::io::read_json(path);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("invalid JSON in " + path.string()), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("number overflow"), std::string::npos) << e.what();
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

// ---- Outputs: whole or absent ----

namespace {

// A fresh, empty folder for one test.
fs::path fresh_folder(const std::string& name) {
    const fs::path folder = temp_path(name + "_" + std::to_string(getpid()));
    fs::remove_all(folder);
    fs::create_directories(folder);
    return folder;
}

std::set<std::string> names_in(const fs::path& folder) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder))
        names.insert(entry.path().filename().string());
    return names;
}

std::string error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// Runs `child` in a forked process (for resource limits and signals that must
// not touch the test itself); returns its wait status.
int in_child(const std::function<int()>& child) {
    const pid_t pid = fork();
    if (pid == 0) {
        const struct rlimit no_core { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        _exit(child());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

const std::string kOld = "the old page, which must survive\n";

// A character device to aim at. As root, a null device node of the test's own
// (so that a regression replaces that, never the system's /dev/null); as
// anyone else /dev/null itself, which they cannot replace.
fs::path character_device(const fs::path& folder) {
    if (geteuid() != 0) return "/dev/null";
    const fs::path node = folder / "null";
    if (mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
        ADD_FAILURE() << "mknod " << node << ": " << std::strerror(errno);
    return node;
}

}  // namespace

TEST(Output, ReplacesTheFileWholeAndKeepsItsMode) {
    const fs::path folder = fresh_folder("replace");
    const fs::path page = folder / "page.html";
    attnviz::io::write_file(page, kOld);
    fs::permissions(page, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    const std::string bytes(300000, 'x');
    attnviz::write_output(page, bytes);
    EXPECT_EQ(attnviz::io::read_file(page), bytes);
    EXPECT_EQ(fs::status(page).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    EXPECT_EQ(names_in(folder), std::set<std::string>{"page.html"});
    fs::remove_all(folder);
}

// Not committed (an exception on the way): the old file stays, no temporary file.
TEST(Output, UncommittedOutputLeavesTheOldFile) {
    const fs::path folder = fresh_folder("uncommitted");
    const fs::path page = folder / "page.html";
    attnviz::io::write_file(page, kOld);
    {
        attnviz::OutputFile out(page);
        out.stream() << std::string(200000, 'y');
        EXPECT_EQ(names_in(folder).size(), 2u);  // the temporary file beside the page
    }
    EXPECT_EQ(attnviz::io::read_file(page), kOld);
    EXPECT_EQ(names_in(folder), std::set<std::string>{"page.html"});
    fs::remove_all(folder);
}

// As cp does: the file a link points to is replaced, through a chain of
// links, relative or absolute; the links stay links. A dangling link gets its target.
TEST(Output, FollowsSymbolicLinks) {
    const fs::path folder = fresh_folder("links");
    fs::create_directories(folder / "real");
    attnviz::io::write_file(folder / "real" / "out.npz", kOld);
    fs::create_symlink("real/out.npz", folder / "link1");
    fs::create_symlink(folder / "link1", folder / "link2");
    attnviz::write_output(folder / "link2", "new");
    EXPECT_TRUE(fs::is_symlink(folder / "link1"));
    EXPECT_TRUE(fs::is_symlink(folder / "link2"));
    EXPECT_EQ(attnviz::io::read_file(folder / "real" / "out.npz"), "new");
    EXPECT_EQ(names_in(folder), (std::set<std::string>{"link1", "link2", "real"}));
    EXPECT_EQ(names_in(folder / "real"), std::set<std::string>{"out.npz"});

    fs::create_symlink("real/new.npz", folder / "dangling");
    attnviz::write_output(folder / "dangling", "created");
    EXPECT_TRUE(fs::is_symlink(folder / "dangling"));
    EXPECT_EQ(attnviz::io::read_file(folder / "real" / "new.npz"), "created");
    fs::remove_all(folder);
}

// A directory, a FIFO or a device is never replaced by a regular file (as root,
// `-o /dev/null` once replaced the system's /dev/null).
TEST(Output, RefusesWhatIsNotARegularFile) {
    const fs::path folder = fresh_folder("refuse");
    fs::create_directories(folder / "dir");
    ASSERT_EQ(mkfifo((folder / "fifo").c_str(), 0600), 0);
    fs::create_symlink("fifo", folder / "to_fifo");
    EXPECT_THAT(error_of([&] { attnviz::write_output(folder / "dir", "x", "-o"); }),
                HasSubstr("-o " + (folder / "dir").string() + ": is a directory"));
    EXPECT_THAT(error_of([&] { attnviz::write_output(folder / "fifo", "x", "-o"); }),
                HasSubstr("-o " + (folder / "fifo").string() + ": is a FIFO"));
    EXPECT_THAT(error_of([&] { attnviz::write_output(folder / "to_fifo", "x", "-o"); }),
                HasSubstr("points to " + (folder / "fifo").string() + ", a FIFO"));
    const fs::path device = character_device(folder);
    EXPECT_THAT(error_of([&] { attnviz::write_output(device, "x", "-o"); }),
                HasSubstr("-o " + device.string() + ": is a character device"));
    EXPECT_TRUE(fs::is_character_file(device));
    EXPECT_TRUE(fs::is_directory(folder / "dir"));
    EXPECT_TRUE(fs::is_fifo(folder / "fifo"));
    std::set<std::string> expected = {"dir", "fifo", "to_fifo"};
    if (device.parent_path() == folder) expected.insert(device.filename().string());
    EXPECT_EQ(names_in(folder), expected);
    EXPECT_TRUE(fs::is_empty(folder / "dir"));
    EXPECT_THAT(error_of([&] { attnviz::write_output(folder / "no" / "such.html", "x", "-o"); }),
                HasSubstr("-o " + (folder / "no" / "such.html").string()));
    fs::remove_all(folder);
}

// A full disk (here the file size limit, RLIMIT_FSIZE, with SIGXFSZ ignored so
// that write() fails with EFBIG) is an error naming the file; the old file stays.
TEST(Output, FailedWriteKeepsTheOldFile) {
    const fs::path folder = fresh_folder("full");
    const fs::path page = folder / "page.html";
    attnviz::io::write_file(page, kOld);
    const int status = in_child([&] {
        signal(SIGXFSZ, SIG_IGN);
        const struct rlimit limit { 100000, 100000 };
        setrlimit(RLIMIT_FSIZE, &limit);
        const std::string message =
            error_of([&] { attnviz::write_output(page, std::string(1000000, 'z'), "-o"); });
        return message == "cannot write -o " + page.string() + ": File too large" ? 0 : 1;
    });
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(attnviz::io::read_file(page), kOld);
    EXPECT_EQ(names_in(folder), std::set<std::string>{"page.html"});
    fs::remove_all(folder);
}

// A signal while the bytes are written (Ctrl-C; SIGXFSZ past the file size
// limit) removes the temporary file, then kills as the signal would have.
TEST(Output, SignalRemovesTheTemporaryFile) {
    const fs::path folder = fresh_folder("signal");
    const fs::path page = folder / "page.html";
    attnviz::io::write_file(page, kOld);
    for (const int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
        const int status = in_child([&] {
            attnviz::OutputFile out(page);
            out.stream() << std::string(500000, 's');
            if (names_in(folder).size() != 2) return 1;  // the temporary file is there
            raise(signal_number);
            return 2;  // not reached
        });
        ASSERT_TRUE(WIFSIGNALED(status)) << signal_number;
        EXPECT_EQ(WTERMSIG(status), signal_number);
        EXPECT_EQ(attnviz::io::read_file(page), kOld);
        EXPECT_EQ(names_in(folder), std::set<std::string>{"page.html"}) << signal_number;
    }
    const int status = in_child([&] {
        const struct rlimit limit { 100000, 100000 };
        setrlimit(RLIMIT_FSIZE, &limit);
        attnviz::write_output(page, std::string(1000000, 'z'));
        return 2;  // not reached: SIGXFSZ
    });
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGXFSZ);
    EXPECT_EQ(attnviz::io::read_file(page), kOld);
    EXPECT_EQ(names_in(folder), std::set<std::string>{"page.html"});
    fs::remove_all(folder);
}

// Two writers of one file at once: it ends as one of the two, whole; before,
// both wrote one fixed "<out>.partial" and could interleave.
TEST(Output, ConcurrentWritersLeaveOneWholeFile) {
    const fs::path folder = fresh_folder("concurrent");
    const fs::path out = folder / "out.npz";
    const std::string a(400000, 'a'), b(300000, 'b');
    for (int round = 0; round < 20; ++round) {
        std::thread first([&] { attnviz::write_output(out, a); });
        std::thread second([&] { attnviz::write_output(out, b); });
        first.join();
        second.join();
        const std::string result = attnviz::io::read_file(out);
        EXPECT_TRUE(result == a || result == b) << "round " << round << ": " << result.size();
        EXPECT_EQ(names_in(folder), std::set<std::string>{"out.npz"});
    }
    fs::remove_all(folder);
}

TEST(Output, StandardOutputIsDashOrDevStdout) {
    EXPECT_TRUE(attnviz::is_standard_output("-"));
    EXPECT_TRUE(attnviz::is_standard_output("/dev/stdout"));
    EXPECT_FALSE(attnviz::is_standard_output("./-"));
    EXPECT_FALSE(attnviz::is_standard_output("/dev/stderr"));
}

// ---- Text ----

TEST(Text, PrintableEscapesWhatDrivesATerminal) {
    EXPECT_EQ(attnviz::printable("models--evil\x1b]0;pwned\x07"), "models--evil\\x1b]0;pwned\\x07");
    EXPECT_EQ(attnviz::printable("a\nb\tc\rd\x7f"), "a\\nb\\tc\\rd\\x7f");
    EXPECT_EQ(attnviz::printable("csi \xc2\x9b"
                                 "31m"),
              "csi \\u009b31m");  // C1 CSI as UTF-8
    EXPECT_EQ(attnviz::printable("bad \xff\xfe end \xe2\x82"), "bad \\xff\\xfe end \\xe2\\x82");
    // Everything else as it is: UTF-8 letters, U+00A0 and up, backslashes.
    EXPECT_EQ(attnviz::printable("caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80 a\\b"),
              "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80 a\\b");
}

TEST(Text, Utf8ValidityAsTheStandardDefinesIt) {
    EXPECT_EQ(attnviz::valid_utf8_prefix("plain"), 5u);
    EXPECT_EQ(attnviz::valid_utf8_prefix("\xf4\x8f\xbf\xbf"), 4u);    // U+10FFFF
    EXPECT_EQ(attnviz::valid_utf8_prefix("ab\xc0\xaf"), 2u);          // overlong '/'
    EXPECT_EQ(attnviz::valid_utf8_prefix("ab\xed\xa0\x80"), 2u);      // a UTF-16 surrogate
    EXPECT_EQ(attnviz::valid_utf8_prefix("ab\xf4\x90\x80\x80"), 2u);  // past U+10FFFF
    EXPECT_EQ(attnviz::valid_utf8_prefix("ab\xe2\x82"), 2u);          // cut short
    EXPECT_EQ(attnviz::valid_utf8_prefix("ab\x80"), 2u);              // a lone continuation
}

TEST(Text, TextFileIsItsBytesExactly) {
    const fs::path folder = fresh_folder("text");
    const std::string text = "The cat sat.\nOn the mat.\n";
    attnviz::io::write_file(folder / "ok.txt", text);
    EXPECT_EQ(attnviz::read_text_file(folder / "ok.txt", "--text-file"), text);
    attnviz::io::write_file(folder / "bad.txt", "abc\xff");
    EXPECT_EQ(error_of([&] { attnviz::read_text_file(folder / "bad.txt", "--text-file"); }),
              "--text-file " + (folder / "bad.txt").string() +
                  ": not valid UTF-8 (byte 0xff at offset 3)");
    EXPECT_THAT(error_of([&] { attnviz::read_text_file(folder / "none.txt", "--text-b-file"); }),
                HasSubstr("--text-b-file: cannot open " + (folder / "none.txt").string()));
    EXPECT_THAT(error_of([&] { attnviz::read_text_file(folder, "--text-file"); }),
                HasSubstr("is a directory"));
    fs::remove_all(folder);
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
