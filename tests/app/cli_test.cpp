// The attnviz program, run as a user runs it (ATTNVIZ_CLI), against a fake
// Hugging Face cache holding a tiny random BERT under the id bert-base-uncased
// with the real bert-base-uncased tokenizer files (tests/data/hf), and against
// a fake hub on 127.0.0.1. Checks the seed workflow, exit codes and messages.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/resource.h>
#include <chrono>
#include <csignal>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "hub/fake_hub.h"
#include "io/checkpoint_builder.h"
#include "io/files.h"
#include "io/torch_checkpoint.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const fs::path kFixture = fs::path(ATTNVIZ_TEST_DATA) / "app" / "bert-tiny-30522";
const fs::path kTokenizer = fs::path(ATTNVIZ_TEST_DATA) / "hf" / "bert-base-uncased";
const std::string kCommit = "86b5e0934494bd15c9632b12f734a8a67f723594";
const std::string kTextA = "The cat sat on the mat.";
const std::string kTextB = "The cat lay on the rug.";
const std::vector<std::string> kCommands = {"view",     "export", "tokenize", "bench",
                                            "download", "models", "info"};

// The files of the model the tests use: the tiny checkpoint with the real tokenizer.
std::map<std::string, fs::path> model_files() {
    return {{"config.json", kFixture / "config.json"},
            {"model.safetensors", kFixture / "model.safetensors"},
            {"tokenizer.json", kTokenizer / "tokenizer.json"},
            {"tokenizer_config.json", kTokenizer / "tokenizer_config.json"},
            {"vocab.txt", kTokenizer / "vocab.txt"}};
}

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

struct CliRun {
    int code = -1;
    std::string out, err;
};

// A run of attnviz with the peak resident set of that process alone.
struct MeasuredRun {
    int code = -1;  // -1: killed by a signal
    std::string err;
    long peak_rss_mib = 0;
};

class Cli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = fs::temp_directory_path() / ("attnviz_cli_test_" + std::to_string(getpid()));
        fs::remove_all(root_);
        cache_model(root_ / "cache", "bert-base-uncased", model_files());
    }
    // Puts files into a cache in huggingface_hub's layout, as Python would have left them.
    static void cache_model(const fs::path& cache, const std::string& repo_id,
                            const std::map<std::string, fs::path>& files) {
        const fs::path repo = cache / ("models--" + repo_id);
        fs::create_directories(repo / "blobs");
        fs::create_directories(repo / "refs");
        fs::create_directories(repo / "snapshots" / kCommit);
        for (const auto& [name, source] : files) {
            const std::string etag = fake_hub::sha256(attnviz::io::read_file(source));
            fs::copy_file(source, repo / "blobs" / etag, fs::copy_options::overwrite_existing);
            fs::create_symlink("../../blobs/" + etag, repo / "snapshots" / kCommit / name);
        }
        attnviz::io::write_file(repo / "refs" / "main", kCommit);
    }
    static void TearDownTestSuite() { fs::remove_all(root_); }

    void SetUp() override {
        work_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::create_directories(work_);
    }

    // Runs attnviz in this test's folder, offline against the fake cache unless
    // `environment` says otherwise; nothing from the user's environment leaks in.
    CliRun attnviz(const std::vector<std::string>& args,
                   std::map<std::string, std::string> environment = {}) {
        std::string command = shell_quote(ATTNVIZ_CLI);
        for (const std::string& arg : args) {
            command += ' ';
            command += shell_quote(arg);
        }
        return shell(command, std::move(environment), work_);
    }

    // The same for a shell command line, run in `folder`.
    CliRun shell(const std::string& command_line, std::map<std::string, std::string> environment,
                 const fs::path& folder) {
        std::string command = "cd " + shell_quote(folder.string()) + " && " +
                              with_environment(std::move(environment)) + command_line;
        command += " >" + shell_quote((work_ / "stdout.txt").string()) + " 2>" +
                   shell_quote((work_ / "stderr.txt").string());
        const int status = std::system(command.c_str());
        CliRun run;
        run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run.out = attnviz::io::read_file(work_ / "stdout.txt");
        run.err = attnviz::io::read_file(work_ / "stderr.txt");
        return run;
    }

    // "env ... ": the tests' environment, and nothing from the user's.
    std::string with_environment(std::map<std::string, std::string> environment) {
        environment.emplace("HF_HUB_CACHE", (root_ / "cache").string());
        environment.emplace("HF_HOME", (root_ / "home").string());
        environment.emplace("HF_HUB_OFFLINE", "1");
        environment.emplace("ATTNVIZ_NUM_THREADS", "1");
        std::string command =
            "env -u HF_TOKEN -u HF_ENDPOINT -u HF_HUB_OFFLINE -u DISPLAY -u WAYLAND_DISPLAY";
        for (const auto& [name, value] : environment) {
            if (value.empty()) continue;
            command += ' ';
            command += name;
            command += '=';
            command += shell_quote(value);
        }
        return command + ' ';
    }

    // attnviz started in this test's folder and left running: its process id
    // (the shell execs it), its output thrown away.
    pid_t start_attnviz(const std::vector<std::string>& args) {
        std::string command = "cd " + shell_quote(work_.string()) + " && exec " +
                              with_environment({}) + shell_quote(ATTNVIZ_CLI);
        for (const std::string& arg : args) command += ' ' + shell_quote(arg);
        command += " >/dev/null 2>&1";
        const pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        return pid;
    }

    // Runs attnviz as this process's own child, offline, and measures its peak
    // resident set (wait4's rusage: this child alone). The child may map at
    // most 4 GiB, so that a regression fails here rather than taking the
    // machine's memory, and SIGALRM ends it after 60 s, so that a hang fails
    // rather than blocking the suite.
    MeasuredRun measured_attnviz(const std::vector<std::string>& args) {
        std::vector<std::string> arguments = {ATTNVIZ_CLI};
        arguments.insert(arguments.end(), args.begin(), args.end());
        std::vector<std::string> environment = {
            "HF_HUB_CACHE=" + (root_ / "cache").string(), "HF_HOME=" + (root_ / "home").string(),
            "HF_HUB_OFFLINE=1", "ATTNVIZ_NUM_THREADS=1", "PATH=/usr/bin:/bin"};
        std::vector<char*> argv, envp;  // prepared before fork: the child only execs
        for (std::string& argument : arguments) argv.push_back(argument.data());
        for (std::string& variable : environment) envp.push_back(variable.data());
        argv.push_back(nullptr);
        envp.push_back(nullptr);
        const std::string err_path = (work_ / "stderr.txt").string();
        const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int out_fd =
            ::open((work_ / "stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const pid_t pid = fork();
        if (pid == 0) {
            if (chdir(work_.c_str()) != 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
            const rlimit address_space{rlim_t{4} << 30, rlim_t{4} << 30};
            setrlimit(RLIMIT_AS, &address_space);
            alarm(60);
            execve(argv[0], argv.data(), envp.data());
            _exit(127);
        }
        ::close(out_fd);
        ::close(err_fd);
        MeasuredRun run;
        int status = 0;
        rusage usage{};
        if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) return run;
        run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run.err = attnviz::io::read_file(err_path);
        run.peak_rss_mib = usage.ru_maxrss / 1024;
        return run;
    }

    std::string python(const std::string& script) {
        attnviz::io::write_file(work_ / "check.py", script);
        FILE* pipe = popen(
            ("cd " + shell_quote(work_.string()) + " && /usr/bin/python3 check.py 2>&1").c_str(),
            "r");
        std::string output;
        char buffer[4096];
        while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
        pclose(pipe);
        return output;
    }

    static fs::path root_;
    fs::path work_;
};
fs::path Cli::root_;

// What the page's JSON payload says about the trace (<script type="application/json"
// class="attnviz-data">{"meta": ..., "streams": [the compressed attentions]}).
nlohmann::json page_payload(const std::string& page) {
    const std::string marker = "class=\"attnviz-data\">";
    const size_t start = page.find(marker);
    if (start == std::string::npos) return nullptr;
    const size_t end = page.find("</script>", start);
    return nlohmann::json::parse(page.substr(start + marker.size(), end - start - marker.size()))
        .at("meta");
}

TEST_F(Cli, SeedTokenizationIsBertBaseUncased) {
    const CliRun run =
        attnviz({"tokenize", "--model", "bert-base-uncased", "--text", "This is a test"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json encoding = nlohmann::json::parse(run.out);
    EXPECT_EQ(encoding["ids"], nlohmann::json({101, 2023, 2003, 1037, 3231, 102}));
    EXPECT_EQ(encoding["tokens"], nlohmann::json({"[CLS]", "this", "is", "a", "test", "[SEP]"}));
    EXPECT_EQ(run.err, "");
}

TEST_F(Cli, TokenizeCasesFileInGoldenFormat) {
    attnviz::io::write_file(work_ / "cases.json",
                            R"(["Hello, world!", {"text": "a", "text_pair": "b"},
                               {"text": "x y", "add_special_tokens": false}])");
    const CliRun run =
        attnviz({"tokenize", "--model", "bert-base-uncased", "--input", "cases.json"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json results = nlohmann::json::parse(run.out);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0]["ids"], nlohmann::json({101, 7592, 1010, 2088, 999, 102}));
    EXPECT_EQ(results[1]["token_type_ids"], nlohmann::json({0, 0, 0, 1, 1}));
    EXPECT_EQ(results[2]["ids"], nlohmann::json({1060, 1061}));
    EXPECT_EQ(results[2]["offsets"], nlohmann::json({{0, 1}, {2, 3}}));
}

// Python's AutoTokenizer leaves a snapshot without weights: enough for tokenize.
TEST_F(Cli, TokenizeNeedsNoWeights) {
    const fs::path snapshot =
        work_ / "cache" / "models--org--tokenizer-only" / "snapshots" / kCommit;
    fs::create_directories(snapshot);
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "vocab.txt"})
        fs::copy_file(kTokenizer / name, snapshot / name);
    fs::copy_file(kFixture / "config.json", snapshot / "config.json");
    fs::create_directories(work_ / "cache" / "models--org--tokenizer-only" / "refs");
    attnviz::io::write_file(work_ / "cache" / "models--org--tokenizer-only" / "refs" / "main",
                            kCommit);
    const std::map<std::string, std::string> cache = {{"HF_HUB_CACHE", (work_ / "cache").string()}};
    CliRun run = attnviz({"tokenize", "--model", "org/tokenizer-only", "--text", "a test"}, cache);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(nlohmann::json::parse(run.out)["ids"], nlohmann::json({101, 1037, 3231, 102}));
    run = attnviz({"view", "--model", "org/tokenizer-only", "--text", "a test"}, cache);
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, HasSubstr("model.safetensors"));
}

// The seed article's five steps as one command: the page has the head view and
// the model view of the sentence pair, with text A and text B told apart.
TEST_F(Cli, SeedWorkflowIsOneCommand) {
    const CliRun run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA,
                                "--text-b", kTextB, "-o", "seed.html"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, (work_ / "seed.html").string() + "\n");
    const std::string page = attnviz::io::read_file(work_ / "seed.html");
    EXPECT_THAT(page, StartsWith("<!DOCTYPE html>"));
    const nlohmann::json payload = page_payload(page);
    ASSERT_FALSE(payload.is_null());
    EXPECT_EQ(payload["model"], "bert-base-uncased");
    EXPECT_EQ(payload["views"], nlohmann::json({"head", "model"}));
    ASSERT_EQ(payload["sequences"].size(), 1u);
    EXPECT_EQ(payload["sequences"][0]["texts"], nlohmann::json({kTextA, kTextB}));
    // [CLS] the cat sat on the mat . [SEP] the cat lay on the rug . [SEP]:
    // segments A (0) and B (1), which the head view's A/B filters split on.
    std::vector<int> segments;
    std::vector<std::string> tokens;
    for (const auto& token : payload["sequences"][0]["tokens"]) {
        tokens.push_back(token[0]);
        segments.push_back(token[3]);
    }
    EXPECT_EQ(tokens, (std::vector<std::string>{"[CLS]", "the", "cat", "sat", "on", "the", "mat",
                                                ".", "[SEP]", "the", "cat", "lay", "on", "the",
                                                "rug", ".", "[SEP]"}));
    EXPECT_EQ(segments, (std::vector<int>{-1, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, 1, -1}));
    ASSERT_EQ(payload["blocks"].size(), 1u);
    EXPECT_EQ(payload["blocks"][0]["layers"], nlohmann::json({0, 1}));
    EXPECT_EQ(payload["blocks"][0]["heads"], nlohmann::json({0, 1}));
    // tests/app/seed_page.test.mjs opens this page in Chromium and reads the filters.
}

// Provenance: a model from the HF cache is named with the snapshot's commit, in
// the npz and in the trace `view --attention` reads back from it (its page's
// meta.revision); a plain folder has no revision.
TEST_F(Cli, ExportNamesTheCachedCommit) {
    CliRun run =
        attnviz({"export", "--model", "bert-base-uncased", "--text", "a test", "-o", "cached.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    run = attnviz({"export", "--text", "a test", "-o", "folder.npz"});  // the demo model's folder
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(python(R"(
import numpy as np
cached, folder = np.load("cached.npz"), np.load("folder.npz")
assert str(cached["model_revision"]) == ")" +
                     kCommit + R"(", cached["model_revision"]
assert str(cached["model_id"]) == "bert-base-uncased"
assert "model_revision" not in folder.files, folder.files
print("ok")
)"),
              "ok\n");
    run = attnviz({"view", "--attention", "cached.npz", "-o", "cached.html"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(page_payload(attnviz::io::read_file(work_ / "cached.html"))["revision"], kCommit);
    // No model runs: an --open-layer past the file's layers names the file.
    run = attnviz({"view", "--attention", "cached.npz", "--open-layer", "9", "-o", "x.html"});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.err,
              "attnviz: error: --open-layer 9 is out of range: the attention file has 2 layers\n");
}

// The exported attentions are the PyTorch reference's (tools/reference/bert_reference.py
// ran the same checkpoint on [CLS] this is a test [SEP]).
TEST_F(Cli, ExportMatchesThePytorchReference) {
    const CliRun run =
        attnviz({"export", "--model", "bert-base-uncased", "--text", "This is a test", "-o",
                 "test.npz", "--queries-keys", "--hidden-states"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, (work_ / "test.npz").string() + "\n");
    const std::string output = python(R"(
import json, struct, numpy as np
def safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    types = {"F32": np.float32, "I64": np.int64}
    return {k: np.frombuffer(data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             types[v["dtype"]]).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}
ref = safetensors(")" + (kFixture / "reference.safetensors").string() +
                                      R"(")
z = np.load("test.npz")
assert z["input_ids"].tolist() == ref["input_ids"].ravel().tolist() == [101, 2023, 2003, 1037, 3231, 102]
assert z["tokens"].tolist() == ["[CLS]", "this", "is", "a", "test", "[SEP]"]
for name in ["attentions", "queries", "keys", "hidden_states"]:
    assert z[name].shape == ref[name].shape, (name, z[name].shape, ref[name].shape)
    diff = float(np.abs(z[name] - ref[name]).max())
    assert diff < (1e-5 if name == "attentions" else 1e-4), (name, diff)
print("ok")
)");
    EXPECT_EQ(output, "ok\n");
}

// --open hands the written page to xdg-open (here a stand-in that records its argument).
TEST_F(Cli, OpenHandsThePageToTheBrowser) {
    fs::create_directories(work_ / "bin");
    attnviz::io::write_file(work_ / "bin" / "xdg-open", "#!/bin/sh\nprintf '%s' \"$1\" > " +
                                                            (work_ / "opened.txt").string() + "\n");
    fs::permissions(work_ / "bin" / "xdg-open", fs::perms::owner_all);
    const CliRun run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--open"},
                               {{"PATH", (work_ / "bin").string() + ":" + std::getenv("PATH")}});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, (work_ / "attention.html").string() + "\n");
    EXPECT_EQ(attnviz::io::read_file(work_ / "opened.txt"), (work_ / "attention.html").string());
}

// An encoder-decoder model through the CLI: --target, the encoder_/decoder_/
// cross_ arrays (ids as in t5-small's tokenizer.json: ▁Hall 2501, o 32, </s> 1),
// and the three blocks in the page. The checkpoint is a random
// tiny T5 at t5-small's vocabulary, written by the architecture reference.
TEST_F(Cli, EncoderDecoderTakesATarget) {
    const fs::path folder = work_ / "t5";
    const std::string made = python(
        "import subprocess, sys\n"
        "sys.exit(subprocess.call(['/usr/bin/python3', '" +
        (fs::path(ATTNVIZ_SOURCE_DIR) / "tools" / "reference" / "arch_reference.py").string() +
        "', '--arch', 't5', '--size', 'tiny', '--ids', '1,2,3', '--target-ids', '0,4', "
        "'--set', 'vocab_size=32128', '--out', '" +
        folder.string() + "'], stdout=subprocess.DEVNULL))\n");
    ASSERT_EQ(made, "");
    for (const char* name : {"spiece.model", "tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(fs::path(ATTNVIZ_TEST_DATA) / "hf" / "t5-small" / name, folder / name);

    CliRun run = attnviz({"export", "--model", folder.string(), "--text",
                          "translate English to German: Hi", "--target", "Hallo", "-o", "t5.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(python(R"(
import numpy as np
z = np.load("t5.npz")
print(sorted(z.files))
print(z["encoder_attentions"].shape, z["decoder_attentions"].shape, z["cross_attentions"].shape)
print(z["decoder_tokens"].tolist(), z["decoder_input_ids"].tolist())
)"),
              "['architecture', 'attnviz_version', 'cross_attentions', 'decoder_attentions', "
              "'decoder_input_ids', 'decoder_texts', 'decoder_token_type_ids', 'decoder_tokens', "
              "'decoder_word_ids', 'encoder_attentions', 'encoder_input_ids', 'encoder_texts', "
              "'encoder_token_type_ids', 'encoder_tokens', 'encoder_word_ids', 'model_id']\n"
              "(2, 4, 7, 7) (2, 4, 3, 3) (2, 4, 3, 7)\n"
              "['\u2581Hall', 'o', '</s>'] [2501, 32, 1]\n");

    run = attnviz({"view", "--model", folder.string(), "--text", "translate English to German: Hi",
                   "--target", "Hallo", "-o", "t5.html"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json payload = page_payload(attnviz::io::read_file(work_ / "t5.html"));
    std::vector<std::string> blocks;
    for (const auto& block : payload["blocks"]) blocks.push_back(block["name"]);
    EXPECT_EQ(blocks, (std::vector<std::string>{"encoder", "decoder", "cross"}));
}

// --hidden-states on an encoder-decoder model (issue 11: it crashed) writes
// both stacks' states under their stack's name. The checkpoint is a random tiny
// BART with 2 encoder and 3 decoder layers (d_model 32), written by the
// architecture reference, with the roberta-base tokenizer.
TEST_F(Cli, EncoderDecoderExportsHiddenStates) {
    const fs::path folder = work_ / "bart";
    const std::string made = python(
        "import subprocess, sys\n"
        "sys.exit(subprocess.call(['/usr/bin/python3', '" +
        (fs::path(ATTNVIZ_SOURCE_DIR) / "tools" / "reference" / "arch_reference.py").string() +
        "', '--arch', 'bart', '--size', 'tiny', '--ids', '0,2', '--target-ids', '0,2', "
        "'--set', 'decoder_layers=3', '--out', '" +
        folder.string() + "'], stdout=subprocess.DEVNULL))\n");
    ASSERT_EQ(made, "");
    for (const char* name : {"merges.txt", "tokenizer.json", "tokenizer_config.json", "vocab.json"})
        fs::copy_file(fs::path(ATTNVIZ_TEST_DATA) / "hf" / "roberta-base" / name, folder / name);

    const CliRun run =
        attnviz({"export", "--model", folder.string(), "--text", "The cat sat.", "--target",
                 "It slept on the mat.", "-o", "bart.npz", "--hidden-states"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(python(R"(
import numpy as np
z = np.load("bart.npz")
print(sorted(f for f in z.files if "hidden" in f))
print(z["encoder_input_ids"].shape, z["encoder_hidden_states"].shape, z["encoder_hidden_states"].dtype)
print(z["decoder_input_ids"].shape, z["decoder_hidden_states"].shape, z["decoder_hidden_states"].dtype)
print(bool(np.isfinite(z["encoder_hidden_states"]).all() and np.isfinite(z["decoder_hidden_states"]).all()))
)"),
              "['decoder_hidden_states', 'encoder_hidden_states']\n"
              "(6,) (3, 6, 32) float32\n"
              "(8,) (4, 8, 32) float32\n"
              "True\n");
}

TEST_F(Cli, StaticPictures) {
    CliRun run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "-o",
                          "head.svg", "--layers", "1", "--heads", "0,1"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(attnviz::io::read_file(work_ / "head.svg"), HasSubstr("<svg"));
    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--view", "matrix",
                   "--format", "png", "-o", "matrix.out"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(attnviz::io::read_file(work_ / "matrix.out"), StartsWith("\x89PNG"));
    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--view", "model",
                   "-o", "grid.png"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(attnviz::io::read_file(work_ / "grid.png"), StartsWith("\x89PNG"));
    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--view", "matrix",
                   "--layers", "1", "--heads", "1", "-o", "matrix.svg"});
    ASSERT_EQ(run.code, 0) << run.err;
    const std::string matrix = attnviz::io::read_file(work_ / "matrix.svg");
    EXPECT_THAT(matrix, HasSubstr("layer 1  head 1"));
    EXPECT_THAT(matrix, HasSubstr("<image class=\"colour-bar\""));
    EXPECT_THAT(matrix, HasSubstr("image-rendering:pixelated"));
}

TEST_F(Cli, InfoNamesArchitectureAndSizes) {
    CliRun run = attnviz({"info", "bert-base-uncased", "--json"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json info = nlohmann::json::parse(run.out);
    EXPECT_EQ(info["model_type"], "bert");
    EXPECT_EQ(info["architecture"], "BertForMaskedLM");
    EXPECT_EQ(info["layers"], 2);
    EXPECT_EQ(info["heads"], 2);
    EXPECT_EQ(info["vocab_size"], 30522);
    EXPECT_EQ(info["max_positions"], 64);
    // a small model: fp32 by default whatever the CPU (bf16 only above 1e9 parameters)
    EXPECT_EQ(info["default_precision"], info.contains("parameters") ? "fp32" : "unknown");
    EXPECT_TRUE(info["cpu_native_bf16"].is_boolean());
    EXPECT_GT(info["bf16_max_prob_error_measured"].get<double>(), 0);
    run = attnviz({"info", "bert-base-uncased"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, HasSubstr("vocabulary     30522 tokens"));
    EXPECT_THAT(run.out, HasSubstr("bf16 against fp32: attention probabilities differ by up to"));

    fs::create_directories(work_ / "xlnet");
    attnviz::io::write_file(work_ / "xlnet" / "config.json",
                            R"({"model_type": "xlnet", "architectures": ["XLNetLMHeadModel"]})");
    run = attnviz({"info", "xlnet"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, StartsWith("attnviz: error: "));
    EXPECT_THAT(run.err, HasSubstr("unsupported model_type \"xlnet\""));
    EXPECT_THAT(run.err, HasSubstr("bert"));
    EXPECT_THAT(run.err, HasSubstr("gpt2"));
}

// info takes the model as --model, as every command does, and as an argument.
TEST_F(Cli, InfoTakesTheModelEitherWay) {
    const CliRun positional = attnviz({"info", "bert-base-uncased", "--json"});
    ASSERT_EQ(positional.code, 0) << positional.err;
    CliRun run = attnviz({"info", "--model", "bert-base-uncased", "--json"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, positional.out);
    EXPECT_EQ(nlohmann::json::parse(run.out)["model"], "bert-base-uncased");
    run = attnviz({"info", "-m", "bert-base-uncased", "bert-base-uncased", "--json"});
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, positional.out);

    run = attnviz({"info", "gpt2", "--model", "bert-base-uncased"});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.out, "");
    EXPECT_THAT(run.err, StartsWith("attnviz: error: two models given: 'gpt2' and --model "
                                    "'bert-base-uncased'"));
}

TEST_F(Cli, BenchPrintsLatencyJson) {
    const CliRun run = attnviz(
        {"bench", "--model", "bert-base-uncased", "--seq", "40", "--runs", "3", "--threads", "1"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json result = nlohmann::json::parse(run.out);
    EXPECT_EQ(result["tokens"], 40);
    EXPECT_EQ(result["threads"], 1);
    EXPECT_EQ(result["times_ms"].size(), 3u);
    EXPECT_GT(result["median_ms"].get<double>(), 0);
    EXPECT_LE(result["min_ms"].get<double>(), result["median_ms"].get<double>());
}

TEST_F(Cli, UsageErrorsExitWith2) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"nonsense"},
             {},
             {"view", "--bogus-flag"},
             {"view", "--model", "bert-base-uncased"},  // no --text
             {"view", "--text", "a", "--view", "sideways"},
             {"view", "--text", "a", "--layers", "one"},
             {"view", "--text", "a", "--format", "svg", "--view", "head,model"},
             {"view", "--text", "a", "--format", "gif"},
             {"export", "--text", "a", "--threads", "0"},
             {"tokenize", "--model", "bert-base-uncased"},
             {"download"},
             {"models", "extra"},
         }) {
        const CliRun run = attnviz(args);
        std::string joined;
        for (const std::string& arg : args) joined += arg + " ";
        EXPECT_EQ(run.code, 2) << joined << "\n" << run.err;
        EXPECT_EQ(run.out, "") << joined;
        if (!args.empty()) {
            EXPECT_THAT(run.err, StartsWith("attnviz: error: ")) << joined;
            EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
        }
    }
    EXPECT_THAT(attnviz({"nonsense"}).err, HasSubstr("unknown command 'nonsense'"));
}

// --open-layer / --open-heads choose what the page opens on, among what
// --layers / --heads include; anything else is a one-line usage error naming the flag.
TEST_F(Cli, OpenLayerAndHeadsChooseWhereThePageOpens) {
    CliRun run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--layers",
                          "0,1", "--open-layer", "1", "--open-heads", "1", "-o", "open.html"});
    ASSERT_EQ(run.code, 0) << run.err;
    const std::string page = attnviz::io::read_file(work_ / "open.html");
    EXPECT_THAT(page, HasSubstr("\"open\":{\"heads\":[1],\"layer\":1}"));
    const std::pair<std::vector<std::string>, std::string> errors[] = {
        {{"--layers", "0", "--open-layer", "1"},
         "attnviz: error: --open-layer 1 is not one of the layers the page includes (--layers "
         "0)\n"},
        {{"--heads", "0", "--open-heads", "1"},
         "attnviz: error: --open-heads: head 1 is not one of the heads the page includes "
         "(--heads 0)\n"},
        {{"--open-layer", "7"},
         "attnviz: error: --open-layer 7 is out of range: the model has 2 layers\n"},
        {{"--open-heads", "0,5"},
         "attnviz: error: --open-heads: head 5 is out of range: the model has 2 heads\n"},
        {{"--open-layer", "1", "-o", "x.svg"},
         "attnviz: error: --open-layer and --open-heads choose what a page opens on; --format "
         "svg draws --layers and --heads\n"},
    };
    for (const auto& [flags, message] : errors) {
        std::vector<std::string> args = {"view", "--model", "bert-base-uncased", "--text", kTextA};
        args.insert(args.end(), flags.begin(), flags.end());
        run = attnviz(args);
        EXPECT_EQ(run.code, 2) << message;
        EXPECT_EQ(run.err, message);
    }
}

TEST_F(Cli, EveryCommandHasHelp) {
    for (const std::string& command : kCommands) {
        const CliRun run = attnviz({command, "--help"});
        EXPECT_EQ(run.code, 0) << command;
        EXPECT_THAT(run.out, HasSubstr("Usage: attnviz " + command)) << command;
    }
    const CliRun run = attnviz({"--help"});
    EXPECT_EQ(run.code, 0);
    for (const std::string& command : kCommands) EXPECT_THAT(run.out, HasSubstr(command));
}

TEST_F(Cli, RuntimeErrorsExitWith1) {
    CliRun run = attnviz({"view", "--model", "org/not-cached", "--text", "a"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err,
                StartsWith("attnviz: error: org/not-cached is not in the Hugging Face cache"));
    EXPECT_THAT(run.err, HasSubstr("HF_HUB_OFFLINE=1"));

    // 64 positions: a longer text is an error unless --truncate is given.
    std::string long_text;
    for (int i = 0; i < 80; ++i) long_text += "word ";
    run = attnviz({"export", "--model", "bert-base-uncased", "--text", long_text, "-o", "x.npz"});
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err,
              "attnviz: error: text is 82 tokens; the model allows at most 64; add --truncate "
              "to cut it\n");
    EXPECT_FALSE(fs::exists(work_ / "x.npz"));
    run = attnviz({"export", "--model", "bert-base-uncased", "--text", long_text, "-o", "x.npz",
                   "--truncate"});
    EXPECT_EQ(run.code, 0) << run.err;

    run = attnviz({"view", "--model", (work_ / "missing").string(), "--text", "a"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, HasSubstr("no such folder"));
}

TEST_F(Cli, DemoModelByDefaultWithNotice) {
    const CliRun run = attnviz({"info"});
    const bool demo_present = fs::is_directory(fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo");
    EXPECT_EQ(run.code, demo_present ? 0 : 1) << run.err;
    // Either way, one line on stderr says how to get bert-base-uncased instead.
    EXPECT_THAT(run.err, HasSubstr("--model bert-base-uncased"));
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

// Through a (fake) hub: download into the cache, list it, use it, then use it
// offline without a single request.
TEST_F(Cli, DownloadThenViewOffline) {
    fake_hub::Server server;
    fake_hub::Repo repo;
    repo.commit = kCommit;
    for (const auto& [name, source] : model_files())
        repo.files[name] = {attnviz::io::read_file(source), name == "model.safetensors"};
    repo.files["README.md"] = {"# tiny", false};
    server.add_repo("org/tiny-bert", repo);
    const std::map<std::string, std::string> online = {
        {"HF_HUB_OFFLINE", ""},
        {"HF_ENDPOINT", server.endpoint()},
        {"HF_HUB_CACHE", (work_ / "cache").string()}};

    CliRun run = attnviz({"download", "org/tiny-bert", "--json"}, online);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.err, "");  // no progress bar when stderr is not a terminal
    const nlohmann::json downloaded = nlohmann::json::parse(run.out);
    EXPECT_EQ(downloaded["commit"], kCommit);
    EXPECT_EQ(downloaded["files"].size(), 5u);

    run = attnviz({"models", "--json"}, online);
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json models = nlohmann::json::parse(run.out)["models"];
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0]["model"], "org/tiny-bert");
    EXPECT_EQ(models[0]["size_bytes"], fs::file_size(kFixture / "model.safetensors") +
                                           fs::file_size(kFixture / "config.json") +
                                           fs::file_size(kTokenizer / "tokenizer.json") +
                                           fs::file_size(kTokenizer / "tokenizer_config.json") +
                                           fs::file_size(kTokenizer / "vocab.txt"));

    const size_t requests = server.request_count();
    std::map<std::string, std::string> offline = online;
    offline["HF_HUB_OFFLINE"] = "1";
    run = attnviz({"view", "--model", "org/tiny-bert", "--text", kTextA, "-o", "a.html"}, offline);
    ASSERT_EQ(run.code, 0) << run.err;
    run = attnviz({"view", "--model", "org/tiny-bert@" + kCommit, "--text", kTextA, "--offline",
                   "-o", "b.html"},
                  online);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(server.request_count(), requests);

    run = attnviz({"download", "org/no-such-model"}, online);
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, StartsWith("attnviz: error: no model org/no-such-model"));
}

// A fake hub serving the test model, and the environment that points attnviz at it.
struct OnlineModel {
    fake_hub::Server server;
    std::map<std::string, std::string> environment;

    OnlineModel(const std::string& repo_name, const fs::path& cache,
                const std::string& config_json = "") {
        fake_hub::Repo repo;
        repo.commit = kCommit;
        for (const auto& [name, source] : model_files())
            repo.files[name] = {attnviz::io::read_file(source), name == "model.safetensors"};
        if (!config_json.empty()) repo.files["config.json"] = {config_json, false};
        server.add_repo(repo_name, repo);
        environment = {{"HF_HUB_OFFLINE", ""},
                       {"HF_ENDPOINT", server.endpoint()},
                       {"HF_HUB_CACHE", cache.string()}};
    }
    // Requests for the weights: the file itself, or the CDN that serves LFS files.
    std::vector<std::string> weight_requests() {
        std::vector<std::string> paths;
        for (const fake_hub::Request& request : server.requests())
            if (request.path.find("model.safetensors") != std::string::npos ||
                request.path.starts_with("/cdn/"))
                paths.push_back(request.method + " " + request.path);
        return paths;
    }
};

// info needs config.json and the tokenizer: a model not yet cached is fetched
// without its weights.
TEST_F(Cli, InfoDownloadsNoWeights) {
    OnlineModel hub("org/tiny-bert", work_ / "cache");
    const CliRun run = attnviz({"info", "org/tiny-bert", "--json"}, hub.environment);
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json info = nlohmann::json::parse(run.out);
    EXPECT_EQ(info["model_type"], "bert");
    EXPECT_EQ(info["layers"], 2);
    EXPECT_EQ(info["tokenizer_max_length"], 512);
    EXPECT_EQ(hub.weight_requests(), std::vector<std::string>{});
    const fs::path snapshot = work_ / "cache" / "models--org--tiny-bert" / "snapshots" / kCommit;
    EXPECT_TRUE(fs::exists(snapshot / "config.json"));
    EXPECT_TRUE(fs::exists(snapshot / "vocab.txt"));
    EXPECT_FALSE(fs::exists(snapshot / "model.safetensors"));
}

// A model attnviz cannot run is refused from its config.json, before gigabytes
// of weights are downloaded, by every command that would fetch them.
TEST_F(Cli, UnsupportedModelIsRefusedBeforeItsWeights) {
    OnlineModel hub("org/xlnet", work_ / "cache",
                    R"({"model_type": "xlnet", "architectures": ["XLNetLMHeadModel"]})");
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"view", "--model", "org/xlnet", "--text", "a"},
             {"export", "--model", "org/xlnet", "--text", "a"},
             {"bench", "--model", "org/xlnet"},
             {"download", "org/xlnet"},
             {"info", "org/xlnet"},
         }) {
        const CliRun run = attnviz(args, hub.environment);
        EXPECT_EQ(run.code, 1) << args[0];
        EXPECT_THAT(run.err, StartsWith("attnviz: error: ")) << args[0];
        EXPECT_THAT(run.err, HasSubstr("unsupported model_type \"xlnet\"")) << args[0];
        EXPECT_THAT(run.err, HasSubstr("bert, gpt2")) << args[0];
    }
    EXPECT_EQ(hub.weight_requests(), std::vector<std::string>{});
    EXPECT_FALSE(
        fs::exists(work_ / "cache" / "models--org--xlnet" / "blobs" /
                   fake_hub::sha256(attnviz::io::read_file(kFixture / "model.safetensors"))));
}

TEST_F(Cli, ModelsJsonNamesTheFiles) {
    const CliRun run = attnviz({"models", "--json"});
    ASSERT_EQ(run.code, 0) << run.err;
    const nlohmann::json models = nlohmann::json::parse(run.out)["models"];
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0]["files"],
              nlohmann::json({"config.json", "model.safetensors", "tokenizer.json",
                              "tokenizer_config.json", "vocab.txt"}));
}

// bench has --seq, not --truncate: a length the model cannot take names --seq.
TEST_F(Cli, BenchLengthErrorNamesItsOwnFlag) {
    const CliRun run = attnviz({"bench", "--model", "bert-base-uncased", "--seq", "100"});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.out, "");
    EXPECT_EQ(run.err,
              "attnviz: error: --seq 100 is more than the 64 tokens bert-base-uncased takes\n");
}

// Weights that make the model compute NaN (issue 12: the rows came out as zeros
// and the exit code was 0): the outputs are written with the NaN rows PyTorch
// would give, a warning names the first layer, head and row, and the exit code
// is 3. Layer 1's query weight [0, 0] is NaN, so every query of layer 1, head 0
// is NaN and every row of that head is NaN.
TEST_F(Cli, NonFiniteResultIsWrittenWarnedAndExitsThree) {
    const fs::path folder = work_ / "nan-model";
    fs::create_directories(folder);
    for (const auto& [name, source] : model_files()) fs::copy_file(source, folder / name);
    ASSERT_EQ(python(R"(
import json, struct, numpy as np
path = ")" + (folder / "model.safetensors").string() +
                     R"("
data = bytearray(open(path, "rb").read())
size = struct.unpack("<Q", data[:8])[0]
entry = json.loads(data[8:8 + size])["encoder.layer.1.attention.self.query.weight"]
assert entry["dtype"] == "F16"
start = 8 + size + entry["data_offsets"][0]
data[start:start + 2] = np.array([np.nan], dtype=np.float16).tobytes()
open(path, "wb").write(data)
)"),
              "");
    const std::string warning =
        "attnviz: warning: the result holds NaN or inf values, first at layer 1, head 0, row 0 "
        "of the attention";
    CliRun run = attnviz({"export", "--model", folder.string(), "--text", kTextA, "-o", "nan.npz"});
    EXPECT_EQ(run.code, 3) << run.err;
    EXPECT_THAT(run.err, HasSubstr(warning));
    EXPECT_EQ(python(R"(
import numpy as np
a = np.load("nan.npz")["attentions"]
print(np.isnan(a).any(axis=-1).sum(axis=-1).tolist(), np.isfinite(a[0]).all())
)"),
              "[[0, 0], [9, 0]] True\n");  // 9 tokens: [CLS] the cat sat on the mat . [SEP]
    run = attnviz({"view", "--model", folder.string(), "--text", kTextA, "-o", "nan.html"});
    EXPECT_EQ(run.code, 3) << run.err;
    EXPECT_THAT(run.err, HasSubstr(warning));
    EXPECT_TRUE(fs::is_regular_file(work_ / "nan.html"));
    // the same model without the NaN: exit 0, no warning
    run = attnviz({"export", "--text", kTextA, "--model", "bert-base-uncased", "-o", "ok.npz"});
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.err, ::testing::Not(HasSubstr("NaN")));
}

// Number flags say their range in words, not as [2.22507e-308 - 1.79769e+308].
TEST_F(Cli, NumberFlagsSayTheirRange) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"export", "--text", "a", "--threads", "0"},
         "--threads: must be between 1 and 1024 (not '0')"},
        {{"view", "--text", "a", "--threads", "1025"},
         "--threads: must be between 1 and 1024 (not '1025')"},
        {{"bench", "--threads", "two"}, "--threads: must be between 1 and 1024 (not 'two')"},
        // issue 12: 100000 threads segfaulted inside libgomp
        {{"view", "--text", "a", "--threads", "100000"},
         "--threads: must be between 1 and 1024 (not '100000')"},
        {{"bench", "--runs", "0"}, "--runs: must be a whole number, at least 1 (not '0')"},
        {{"bench", "--seq", "-5"}, "--seq: must be a whole number, at least 1 (not '-5')"},
        {{"bench", "--warmup", "-1"}, "--warmup: must be a whole number, at least 0 (not '-1')"},
    };
    for (const auto& [args, message] : cases) {
        const CliRun run = attnviz(args);
        EXPECT_EQ(run.code, 2) << message;
        EXPECT_EQ(run.err, "attnviz: error: " + message + "; run 'attnviz " + args[0] +
                               " --help' for usage\n");
    }
}

// An unknown flag is the mistake to report, before any flag it made look missing.
TEST_F(Cli, UnknownFlagIsReportedFirst) {
    for (const std::string& command : kCommands) {
        const CliRun run = attnviz({command, "--bogus"});
        EXPECT_EQ(run.code, 2) << command;
        EXPECT_EQ(run.out, "") << command;
        EXPECT_EQ(run.err, "attnviz: error: unknown flag --bogus for 'attnviz " + command +
                               "'; run 'attnviz " + command + " --help' for usage\n");
    }
    // A misspelt --text is not a missing one.
    const CliRun run = attnviz({"view", "--txt", "a"});
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, StartsWith("attnviz: error: unknown flag --txt for 'attnviz view'"));
}

// -o - writes to standard output, as Unix tools do, and no file named "-".
TEST_F(Cli, DashOutputIsStandardOutput) {
    CliRun run = attnviz({"export", "--model", "bert-base-uncased", "--text", "This is a test",
                          "-o", "-", "--queries-keys"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.err, "");
    attnviz::io::write_file(work_ / "piped.npz", run.out);
    ASSERT_EQ(attnviz({"export", "--model", "bert-base-uncased", "--text", "This is a test", "-o",
                       "file.npz", "--queries-keys"})
                  .code,
              0);
    EXPECT_EQ(attnviz::io::read_file(work_ / "piped.npz"),
              attnviz::io::read_file(work_ / "file.npz"));
    EXPECT_EQ(python(R"(
import numpy as np
z = np.load("piped.npz")
print(z["tokens"].tolist(), z["attentions"].shape, z["queries"].shape)
)"),
              "['[CLS]', 'this', 'is', 'a', 'test', '[SEP]'] (2, 2, 6, 6) (2, 2, 6, 8)\n");

    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "-o", "-"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, StartsWith("<!DOCTYPE html>"));
    EXPECT_EQ(page_payload(run.out)["model"], "bert-base-uncased");
    run = attnviz(
        {"view", "--model", "bert-base-uncased", "--text", kTextA, "--format", "svg", "-o", "-"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, HasSubstr("<svg"));
    run = attnviz(
        {"view", "--model", "bert-base-uncased", "--text", kTextA, "--format", "png", "-o", "-"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, StartsWith("\x89PNG\r\n"));
    run = attnviz(
        {"view", "--model", "bert-base-uncased", "--text", kTextA, "--fragment", "-o", "-"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, StartsWith("<div"));
    EXPECT_FALSE(fs::exists(work_ / "-"));

    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "-o", "-", "--open"});
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, HasSubstr("--open needs a file"));
}

// ---- Outputs that are whole or absent (issue 12) ----

// What a folder holds besides the test's own stdout.txt and stderr.txt.
std::set<std::string> files_in(const fs::path& folder) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) {
        const std::string name = entry.path().filename().string();
        if (name != "stdout.txt" && name != "stderr.txt") names.insert(name);
    }
    return names;
}

// Two exports to one path at once, 20 times: the file is always one of the
// two whole exports. With one fixed "<out>.partial" they interleaved, and 2
// runs in 6 left a corrupt npz, once with exit code 0.
TEST_F(Cli, ConcurrentExportsLeaveOneWholeNpz) {
    const std::vector<std::string> a = {"export", "--model", "bert-base-uncased",
                                        "--text", kTextA,    "--queries-keys"};
    const std::vector<std::string> b = {
        "export",         "--model", "bert-base-uncased", "--text", kTextB + " And then it slept.",
        "--hidden-states"};
    auto with_output = [](std::vector<std::string> args, const std::string& output) {
        args.insert(args.end(), {"-o", output});
        return args;
    };
    ASSERT_EQ(attnviz(with_output(a, "a.npz")).code, 0);
    ASSERT_EQ(attnviz(with_output(b, "b.npz")).code, 0);
    const std::string whole_a = attnviz::io::read_file(work_ / "a.npz");
    const std::string whole_b = attnviz::io::read_file(work_ / "b.npz");
    ASSERT_NE(whole_a, whole_b);
    auto command = [](const std::vector<std::string>& args) {
        std::string line = shell_quote(ATTNVIZ_CLI);
        for (const std::string& arg : args) line += ' ' + shell_quote(arg);
        return line;
    };
    attnviz::io::write_file(work_ / "race.sh", command(with_output(a, "out.npz")) +
                                                   " & first=$!\n" +
                                                   command(with_output(b, "out.npz")) +
                                                   " & second=$!\nwait $first && wait $second\n");
    int a_won = 0, b_won = 0;
    for (int round = 0; round < 20; ++round) {
        const CliRun run = shell("sh race.sh", {}, work_);
        ASSERT_EQ(run.code, 0) << "round " << round << ": " << run.err;
        const std::string result = attnviz::io::read_file(work_ / "out.npz");
        EXPECT_TRUE(result == whole_a || result == whole_b)
            << "round " << round << ": " << result.size() << " bytes";
        a_won += result == whole_a;
        b_won += result == whole_b;
        EXPECT_EQ(files_in(work_), (std::set<std::string>{"a.npz", "b.npz", "out.npz", "race.sh"}))
            << "round " << round;
    }
    EXPECT_EQ(a_won + b_won, 20);
}

// -o at a directory, a FIFO or a device: refused in one line naming -o and the
// path, and the thing itself untouched (a FIFO stays a FIFO; as root, `-o
// /dev/null` once replaced the system's /dev/null with a regular file).
TEST_F(Cli, OutputThatIsNotARegularFileIsRefused) {
    fs::create_directories(work_ / "pages");
    ASSERT_EQ(mkfifo((work_ / "fifo.npz").c_str(), 0600), 0);
    CliRun run =
        attnviz({"export", "--model", "bert-base-uncased", "--text", kTextA, "-o", "pages"});
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err,
              "attnviz: error: -o pages: is a directory; attnviz replaces only regular files (- "
              "writes to standard output)\n");
    run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "-o", "fifo.npz"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, HasSubstr("-o fifo.npz: is a FIFO"));
    // As root, a null device node of the test's own, so that a regression
    // replaces that and never the system's /dev/null; as anyone else /dev/null.
    std::set<std::string> expected = {"fifo.npz", "pages"};
    std::string device = "/dev/null";
    if (geteuid() == 0) {
        device = "null.npz";
        ASSERT_EQ(mknod((work_ / device).c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
        expected.insert(device);
    }
    run = attnviz({"export", "--model", "bert-base-uncased", "--text", kTextA, "-o", device});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, HasSubstr("-o " + device + ": is a character device"));
    EXPECT_TRUE(fs::is_character_file(geteuid() == 0 ? work_ / device : fs::path(device)));
    EXPECT_TRUE(fs::is_fifo(work_ / "fifo.npz"));
    EXPECT_TRUE(fs::is_empty(work_ / "pages"));
    EXPECT_EQ(files_in(work_), expected);
}

// A symbolic link at -o is followed, as cp follows it: its target is replaced, the link stays.
TEST_F(Cli, OutputSymlinkIsFollowed) {
    fs::create_directories(work_ / "store");
    attnviz::io::write_file(work_ / "store" / "cat.npz", "old");
    fs::create_symlink("store/cat.npz", work_ / "cat.npz");
    ASSERT_EQ(
        attnviz({"export", "--model", "bert-base-uncased", "--text", kTextA, "-o", "ref.npz"}).code,
        0);
    const CliRun run =
        attnviz({"export", "--model", "bert-base-uncased", "--text", kTextA, "-o", "cat.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, (work_ / "cat.npz").string() + "\n");
    EXPECT_TRUE(fs::is_symlink(work_ / "cat.npz"));
    EXPECT_EQ(attnviz::io::read_file(work_ / "store" / "cat.npz"),
              attnviz::io::read_file(work_ / "ref.npz"));
    EXPECT_EQ(files_in(work_ / "store"), std::set<std::string>{"cat.npz"});

    // /dev/stdout is standard output, written through like -o -.
    const CliRun piped =
        attnviz({"export", "--model", "bert-base-uncased", "--text", kTextA, "-o", "/dev/stdout"});
    ASSERT_EQ(piped.code, 0) << piped.err;
    EXPECT_EQ(piped.out, attnviz::io::read_file(work_ / "ref.npz"));
}

// A full disk (here the file size limit; SIGXFSZ ignored, so write() fails
// with EFBIG) once truncated the old page: now it is an error and the old page stays.
TEST_F(Cli, FailedWriteKeepsTheOldPage) {
    const std::string old_page = "<!DOCTYPE html><p>the old page</p>\n";
    attnviz::io::write_file(work_ / "page.html", old_page);
    CliRun run = shell(
        "sh -c " + shell_quote("trap '' XFSZ; ulimit -f 64; exec " + shell_quote(ATTNVIZ_CLI) +
                               " view --model bert-base-uncased --view all "
                               "--text 'The cat sat on the mat' -o page.html"),
        {}, work_);
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err, "attnviz: error: cannot write -o page.html: File too large\n");
    EXPECT_EQ(attnviz::io::read_file(work_ / "page.html"), old_page);
    EXPECT_EQ(files_in(work_), std::set<std::string>{"page.html"});

    run =
        shell("sh -c " + shell_quote(shell_quote(ATTNVIZ_CLI) +
                                     " view --model bert-base-uncased --text cat -o - >/dev/full"),
              {}, work_);
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err,
              "attnviz: error: cannot write to standard output: No space left on device\n");
}

// A page differs from run to run only in its random nonce and element id, not
// in its length: whole is the length of one, from <!DOCTYPE to </html>.
bool is_whole_page(const std::string& page, size_t whole) {
    return page.size() == whole && page.starts_with("<!DOCTYPE html>") &&
           page.ends_with("</html>\n");
}

// Ctrl-C at any moment of `view` or `export`: the old file or the whole new
// one, never a part, and no temporary file. SIGINT goes at points spread over
// a whole run (loading, running, writing, renaming); where it lands varies,
// the invariant holds at each.
TEST_F(Cli, InterruptLeavesTheOldFileOrTheNewOne) {
    std::string text;
    for (int i = 0; i < 60; ++i) text += "cat ";
    const std::vector<std::vector<std::string>> commands = {
        {"view", "--model", "bert-base-uncased", "--view", "all", "--text", text, "-o", "out"},
        {"export", "--model", "bert-base-uncased", "--queries-keys", "--hidden-states", "--text",
         text, "-o", "out"}};
    const std::string old_file = "old\n";
    for (std::vector<std::string> args : commands) {
        args.back() = "new." + args.front();
        const auto started = std::chrono::steady_clock::now();
        ASSERT_EQ(attnviz(args).code, 0);
        const auto whole_run = std::chrono::steady_clock::now() - started;
        const std::string whole = attnviz::io::read_file(work_ / args.back());
        fs::remove(work_ / args.back());
        args.back() = "out";
        int interrupted = 0;
        for (int step = 0; step <= 24; ++step) {
            attnviz::io::write_file(work_ / "out", old_file);
            const pid_t pid = start_attnviz(args);
            std::this_thread::sleep_for(whole_run * step / 20);
            kill(pid, SIGINT);
            int status = 0;
            waitpid(pid, &status, 0);
            interrupted += WIFSIGNALED(status) && WTERMSIG(status) == SIGINT;
            const std::string result = attnviz::io::read_file(work_ / "out");
            const bool complete =
                args.front() == "export" ? result == whole : is_whole_page(result, whole.size());
            EXPECT_TRUE(result == old_file || complete)
                << args.front() << " step " << step << ": " << result.size() << " bytes";
            if (WIFEXITED(status)) {
                EXPECT_TRUE(complete) << args.front() << " step " << step;
            }
            EXPECT_EQ(files_in(work_), std::set<std::string>{"out"})
                << args.front() << " step " << step;
        }
        EXPECT_GT(interrupted, 0) << args.front();
    }
}

// ---- Text from files (issue 12) ----

// A command-line argument stops at 128 KiB; --text-file takes any length, and
// - reads standard input. The file's bytes are the text, exactly.
TEST_F(Cli, TextFileIsTheTextExactly) {
    attnviz::io::write_file(work_ / "a.txt", "This is a test");
    attnviz::io::write_file(work_ / "b.txt", "It slept.\n");
    ASSERT_EQ(attnviz({"export", "--model", "bert-base-uncased", "--text", "This is a test",
                       "--text-b", "It slept.\n", "-o", "inline.npz"})
                  .code,
              0);
    CliRun run = attnviz({"export", "--model", "bert-base-uncased", "--text-file", "a.txt",
                          "--text-b-file", "b.txt", "-o", "file.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    run = shell("sh -c " + shell_quote("printf 'It slept.\\n' | " + shell_quote(ATTNVIZ_CLI) +
                                       " export --model bert-base-uncased --text-file a.txt "
                                       "--text-b-file - -o stdin.npz"),
                {}, work_);
    ASSERT_EQ(run.code, 0) << run.err;
    const std::string inline_npz = attnviz::io::read_file(work_ / "inline.npz");
    EXPECT_EQ(attnviz::io::read_file(work_ / "file.npz"), inline_npz);
    EXPECT_EQ(attnviz::io::read_file(work_ / "stdin.npz"), inline_npz);

    const CliRun tokens = attnviz({"tokenize", "--model", "bert-base-uncased", "--text-file",
                                   "a.txt", "--text-b-file", "b.txt"});
    ASSERT_EQ(tokens.code, 0) << tokens.err;
    EXPECT_EQ(tokens.out, attnviz({"tokenize", "--model", "bert-base-uncased", "--text",
                                   "This is a test", "--text-b", "It slept.\n"})
                              .out);

    // 200 KiB: too long for a command line, one word a token.
    std::string words;
    const int count = 40000;
    for (int i = 0; i < count; ++i) words += i % 2 ? "cat " : "sat ";
    attnviz::io::write_file(work_ / "long.txt", words);
    const CliRun long_tokens =
        attnviz({"tokenize", "--model", "bert-base-uncased", "--text-file", "long.txt"});
    ASSERT_EQ(long_tokens.code, 0) << long_tokens.err;
    const nlohmann::json ids = nlohmann::json::parse(long_tokens.out)["ids"];
    ASSERT_EQ(ids.size(), count + 2u);  // [CLS] ... [SEP]
    EXPECT_EQ(ids[1], 2938);            // "sat"
    EXPECT_EQ(ids[2], 4937);            // "cat"
    run = attnviz({"view", "--model", "bert-base-uncased", "--text-file", "long.txt", "--truncate",
                   "-o", "long.html"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(page_payload(attnviz::io::read_file(work_ / "long.html"))["model"],
              "bert-base-uncased");
}

TEST_F(Cli, TextFileErrorsNameTheFlagAndTheFile) {
    attnviz::io::write_file(work_ / "a.txt", "cat");
    attnviz::io::write_file(work_ / "latin1.txt", std::string("caf\xe9", 4));
    CliRun run = attnviz({"view", "--text", "cat", "--text-file", "a.txt"});
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, HasSubstr("--text excludes --text-file"));
    run = attnviz({"view", "--model", "bert-base-uncased"});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.err,
              "attnviz: error: give the text: --text TEXT, or --text-file FILE (- for standard "
              "input)\n");
    run = attnviz({"export", "--text-file", "-", "--text-b-file", "-"});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.err,
              "attnviz: error: --text-b-file -: standard input is already --text-file's\n");
    run = attnviz({"export", "--model", "bert-base-uncased", "--text-file", "latin1.txt"});
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err,
              "attnviz: error: --text-file latin1.txt: not valid UTF-8 (byte 0xe9 at offset 3)\n");
    run = attnviz({"tokenize", "--model", "bert-base-uncased", "--text-file", "missing.txt"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err,
                StartsWith("attnviz: error: --text-file: cannot open missing.txt: No such file"));
    run = attnviz({"tokenize", "--model", "bert-base-uncased", "--text-b-file", "a.txt"});
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, HasSubstr("--text-b needs --text or --text-file"));
    EXPECT_FALSE(fs::exists(work_ / "attention.npz"));
}

// ---- What reaches the terminal (issue 12) ----

// Cache folder names, refs and error messages are anyone's bytes: escape
// sequences in them are printed escaped, never sent to the terminal.
TEST_F(Cli, ControlCharactersAreEscapedOnTheTerminal) {
    const fs::path cache = work_ / "cache";
    fs::create_directories(cache / "models--evil\x1b]0;pwned\x07" / "refs");
    attnviz::io::write_file(cache / "models--evil\x1b]0;pwned\x07" / "refs" / "main",
                            "\x1b[2J\xc2\x9b"
                            "31m");
    fs::create_directories(cache / "models--bad\xff\xfe" / "snapshots");
    const std::map<std::string, std::string> environment = {{"HF_HUB_CACHE", cache.string()}};
    CliRun run = attnviz({"models"}, environment);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out.find('\x1b'), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find("\xc2\x9b"), std::string::npos) << run.out;
    EXPECT_THAT(run.out, HasSubstr("evil\\x1b]0;pwned\\x07"));
    EXPECT_THAT(run.out, HasSubstr("main (\\x1b[2J\\u009b"));
    EXPECT_THAT(run.out, HasSubstr("bad\\xff\\xfe"));

    run = attnviz({"models", "--json"}, environment);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out.find('\x1b'), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find("\xc2\x9b"), std::string::npos) << run.out;
    const nlohmann::json models = nlohmann::json::parse(run.out)["models"];
    ASSERT_EQ(models.size(), 2u);
    EXPECT_EQ(models[0]["model"], "bad\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD for each bad byte
    EXPECT_EQ(models[1]["model"], "evil\x1b]0;pwned\x07");
    EXPECT_EQ(models[1]["refs"]["main"],
              "\x1b[2J\xc2\x9b"
              "31m");

    run = attnviz({"view", "--model", "./no\x1b[31mred", "--text", "cat"}, environment);
    EXPECT_EQ(run.code, 1);
    EXPECT_EQ(run.err.find('\x1b'), std::string::npos) << run.err;
    EXPECT_THAT(run.err, HasSubstr("no\\x1b[31mred"));
}

// Without a display, xdg-open fails noisily; attnviz keeps its chatter out and
// says in one line where the page is.
TEST_F(Cli, OpenWithoutADisplayIsOneLine) {
    fs::create_directories(work_ / "bin");
    attnviz::io::write_file(work_ / "bin" / "xdg-open",
                            "#!/bin/sh\n"
                            "echo 'xdg-open noise on stdout'\n"
                            "for i in 1 2 3 4 5 6 7 8; do echo \"xdg-open: noise $i\" >&2; done\n"
                            "exit 3\n");
    fs::permissions(work_ / "bin" / "xdg-open", fs::perms::owner_all);
    const CliRun run = attnviz({"view", "--model", "bert-base-uncased", "--text", kTextA, "--open"},
                               {{"PATH", (work_ / "bin").string() + ":" + std::getenv("PATH")}});
    ASSERT_EQ(run.code, 0) << run.err;
    const std::string page = (work_ / "attention.html").string();
    EXPECT_EQ(run.out, page + "\n");
    EXPECT_EQ(run.err,
              "attnviz: warning: could not open a browser (no DISPLAY or WAYLAND_DISPLAY); the "
              "page is " +
                  page + "\n");
}

// The examples of docs/cli.md, as its opening comment says: ```sh blocks are
// scripts that must succeed; in ```console blocks, each "$ attnviz ..." line must
// print the lines under it, a <placeholder> standing for any text.
struct DocBlock {
    std::string kind;  // "sh" or "console"
    int line = 0;      // of the opening fence, for messages
    std::vector<std::string> lines;
};

std::vector<DocBlock> doc_blocks(const fs::path& markdown) {
    std::vector<DocBlock> blocks;
    std::istringstream in(attnviz::io::read_file(markdown));
    std::string line;
    std::optional<DocBlock> open;
    for (int number = 1; std::getline(in, line); ++number) {
        if (open && line == "```") {
            if (open->kind == "sh" || open->kind == "console") blocks.push_back(*open);
            open.reset();
        } else if (open) {
            open->lines.push_back(line);
        } else if (line.starts_with("```")) {
            open = DocBlock{line.substr(3), number, {}};
        }
    }
    return blocks;
}

// An expected line with <placeholder>s: each matches one or more characters, the
// rest must match exactly. (No std::regex: GCC 12 warns inside it at -O1, and the
// sanitizer build treats warnings as errors.)
bool matches_sample(std::string_view expected, std::string_view actual) {
    auto is_name = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ' || c == '_' || c == '-';
    };
    size_t close = std::string_view::npos;
    if (expected.size() > 1 && expected[0] == '<' && expected[1] >= 'a' && expected[1] <= 'z') {
        size_t i = 2;
        while (i < expected.size() && is_name(expected[i])) ++i;
        if (i < expected.size() && expected[i] == '>') close = i;
    }
    if (close == std::string_view::npos) {
        if (expected.empty()) return actual.empty();
        return !actual.empty() && actual[0] == expected[0] &&
               matches_sample(expected.substr(1), actual.substr(1));
    }
    for (size_t taken = 1; taken <= actual.size(); ++taken)
        if (matches_sample(expected.substr(close + 1), actual.substr(taken))) return true;
    return false;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

TEST(DocSamples, PlaceholdersMatchAnyTextWithinTheLine) {
    EXPECT_TRUE(matches_sample("folder  <source>/models/demo", "folder  /x/y/models/demo"));
    EXPECT_TRUE(matches_sample("  \"load_ms\": <ms>,", "  \"load_ms\": 12.5,"));
    EXPECT_FALSE(matches_sample("  \"load_ms\": <ms>,", "  \"load_ms\": 12.5"));
    EXPECT_FALSE(matches_sample("a (b) [c]", "a b c"));
    EXPECT_TRUE(matches_sample("a (b) [c]. *", "a (b) [c]. *"));
    EXPECT_FALSE(matches_sample("<x>", ""));
}

class DocExamples : public Cli {
protected:
    // The tests' cache, a fake hub serving bert-base-uncased for `attnviz
    // download`, and a stand-in xdg-open that opens nothing.
    std::map<std::string, std::string> environment(const std::string& hub_endpoint) {
        const fs::path cache = work_ / "cache";
        if (!fs::exists(cache)) {
            cache_model(cache, "bert-base-uncased", model_files());
            const fs::path gpt2 = fs::path(ATTNVIZ_TEST_DATA) / "hf" / "gpt2";
            cache_model(cache, "gpt2",
                        {{"config.json", gpt2 / "config.json"},
                         {"tokenizer.json", gpt2 / "tokenizer.json"},
                         {"tokenizer_config.json", gpt2 / "tokenizer_config.json"},
                         {"vocab.json", gpt2 / "vocab.json"},
                         {"merges.txt", gpt2 / "merges.txt"}});
            fs::create_directories(work_ / "bin");
            attnviz::io::write_file(work_ / "bin" / "xdg-open", "#!/bin/sh\nexit 0\n");
            fs::permissions(work_ / "bin" / "xdg-open", fs::perms::owner_all);
        }
        return {{"HF_HUB_CACHE", cache.string()},
                {"HF_HUB_OFFLINE", ""},
                {"HF_ENDPOINT", hub_endpoint},
                {"PATH", fs::path(ATTNVIZ_CLI).parent_path().string() + ":" +
                             (work_ / "bin").string() + ":/usr/bin:/bin"}};
    }
    const fs::path doc_ = fs::path(ATTNVIZ_SOURCE_DIR) / "docs" / "cli.md";
};

TEST_F(DocExamples, ShellBlocksRun) {
    fake_hub::Server hub;
    fake_hub::Repo repo;
    repo.commit = kCommit;
    for (const auto& [name, source] : model_files())
        repo.files[name] = {attnviz::io::read_file(source), name == "model.safetensors"};
    hub.add_repo("bert-base-uncased", repo);
    const auto env = environment(hub.endpoint());
    int scripts = 0;
    for (const DocBlock& block : doc_blocks(doc_)) {
        if (block.kind != "sh") continue;
        const fs::path folder = work_ / ("sh-" + std::to_string(block.line));
        fs::create_directories(folder);
        std::string script;
        for (const std::string& line : block.lines) script += line + "\n";
        attnviz::io::write_file(folder / "example.sh", script);
        const CliRun run = shell("sh -e example.sh", env, folder);
        EXPECT_EQ(run.code, 0) << "docs/cli.md:" << block.line << "\n"
                               << script << "stderr:\n"
                               << run.err;
        ++scripts;
    }
    EXPECT_GE(scripts, 6);  // view, export, tokenize, bench, download, info
}

TEST_F(DocExamples, ConsoleSamplesMatchTheProgram) {
    const auto env = environment("http://127.0.0.1:1");  // nothing here needs the hub
    int commands = 0;
    for (const DocBlock& block : doc_blocks(doc_)) {
        if (block.kind != "console") continue;
        for (size_t i = 0; i < block.lines.size();) {
            ASSERT_TRUE(block.lines[i].starts_with("$ attnviz "))
                << "docs/cli.md:" << block.line + 1 + i << ": a sample starts with $ attnviz";
            const std::string command = block.lines[i].substr(2);
            std::vector<std::string> expected;
            for (++i; i < block.lines.size() && !block.lines[i].starts_with("$ "); ++i)
                expected.push_back(block.lines[i]);
            const CliRun run = shell("sh -c " + shell_quote(command + " 2>&1"), env, work_);
            const std::vector<std::string> actual = split_lines(run.out);
            bool same = actual.size() == expected.size();
            for (size_t k = 0; same && k < actual.size(); ++k)
                same = matches_sample(expected[k], actual[k]);
            EXPECT_TRUE(same) << "docs/cli.md:" << block.line << ": " << command << "\nprints:\n"
                              << run.out;
            ++commands;
        }
    }
    EXPECT_GE(commands, 4);  // errors, bench, models, info
}

}  // namespace

// --- issue 12: hostile checkpoint files -------------------------------------

namespace {

using attnviz::test::make_zip;
using attnviz::test::ZipEntrySpec;

// The tiny BERT's config and tokenizer in `folder`, without weights.
void tiny_bin_without_weights(const fs::path& folder) {
    const fs::path source = fs::path(ATTNVIZ_TEST_DATA) / "model" / "tiny-bin";
    fs::create_directories(folder);
    for (const char* name : {"config.json", "vocab.txt", "tokenizer_config.json"})
        fs::copy_file(source / name, folder / name);
}

// The entries of the tiny BERT's pytorch_model.bin (all stored), to re-zip.
std::vector<ZipEntrySpec> tiny_bin_entries() {
    const std::string bytes = attnviz::io::read_file(fs::path(ATTNVIZ_TEST_DATA) / "model" /
                                                     "tiny-bin" / "pytorch_model.bin");
    std::vector<ZipEntrySpec> entries;
    for (const auto& entry : attnviz::io::read_zip_directory(
             reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "tiny-bin"))
        entries.emplace_back(entry.name,
                             std::string(reinterpret_cast<const char*>(entry.data), entry.size));
    return entries;
}

std::string pseudo_random_bytes(size_t size) {
    std::string bytes(size, '\0');
    uint32_t state = 2026;
    for (char& c : bytes) c = static_cast<char>((state = state * 1103515245 + 12345) >> 24);
    return bytes;
}

}  // namespace

// Each file was built to take gigabytes from a few kilobytes or megabytes.
// attnviz must refuse it with one line naming the file, using well under 1 GiB.
TEST_F(Cli, HostileCheckpointsAreRefusedInOneLineWithBoundedMemory) {
    using attnviz::test::little_endian;
    using attnviz::test::state_dict_pickle;
    const std::string protocol("\x80\x02", 2);
    // 15 KB of memo writes, each a million past the last (before: 16 GB, then bad_alloc).
    std::string memo = protocol + "]";
    for (uint32_t i = 1; i <= 3000; ++i) {  // LONG_BINPUT i million
        memo += 'r';
        memo += little_endian(i * 1000000u, 4);
    }
    // 10 MB of list appends (before: 1.2 GB).
    std::string appends = protocol + "]";
    appends.reserve(10000004);
    for (int i = 0; i < 5000000; ++i) appends += "Na";
    // A deflated storage declaring 3 GB for a [100, 32] tensor (before: 3 GB allocated).
    const std::string lying_storage = pseudo_random_bytes(3000000000u / 1032 + 1);
    const std::string word_embeddings = "embeddings.word_embeddings.weight";
    const struct {
        const char* name;
        std::string zip;
        std::string message;
    } cases[] = {
        {"memo", make_zip({{"archive/data.pkl", memo + "."}}),
         "data.pkl byte 3: memo index 1000000 skips ahead of the 0 stored so far"},
        {"appends", make_zip({{"archive/data.pkl", appends + "."}}),
         "data.pkl is 10000004 bytes, more than any state dict needs"},
        {"lying_storage",
         make_zip({{"archive/data.pkl", state_dict_pickle({{word_embeddings, "0", {100, 32}}})},
                   {"archive/data/0", lying_storage, true, 3000000000u}}),
         "is not the whole of archive/data/0, which is deflated and declares 3000000000 bytes"},
        // Its shape agrees with the claim, so the file opens; config.json's shapes
        // are checked before any byte is inflated (before: 3 GB allocated at open).
        {"matching_bomb",
         make_zip({{"archive/data.pkl", state_dict_pickle({{word_embeddings, "0", {750000000}}})},
                   {"archive/data/0", lying_storage, true, 3000000000u}}),
         "tensor embeddings.word_embeddings.weight has shape [750000000], but config.json "
         "implies [100, 32]"},
    };
    for (const auto& hostile : cases) {
        SCOPED_TRACE(hostile.name);
        const fs::path folder = work_ / hostile.name;
        tiny_bin_without_weights(folder);
        attnviz::io::write_file(folder / "pytorch_model.bin", hostile.zip);
        const MeasuredRun run = measured_attnviz(
            {"export", "--model", folder.string(), "--text", "hello world", "-o", "out.npz"});
        EXPECT_EQ(run.code, 1);
        EXPECT_THAT(run.err, StartsWith(std::string("attnviz: error: ") +
                                        (folder / "pytorch_model.bin").string() + ": "));
        EXPECT_THAT(run.err, HasSubstr(hostile.message));
        EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
        EXPECT_LT(run.peak_rss_mib, 1024);
    }
}

// A deflated entry that no tensor names, claiming 1.5 GB: never inflated
// (before: inflated at open, 1.5 GB, and its garbage failed the checkpoint).
TEST_F(Cli, ZipEntriesNoTensorNamesAreNeverInflated) {
    // The same folder name: the npz records it as the model id.
    const fs::path plain = work_ / "plain" / "tiny", bomb = work_ / "bomb" / "tiny";
    tiny_bin_without_weights(plain);
    tiny_bin_without_weights(bomb);
    std::vector<ZipEntrySpec> entries = tiny_bin_entries();
    attnviz::io::write_file(plain / "pytorch_model.bin", make_zip(entries));
    entries.emplace_back("pytorch_model/data/unused", pseudo_random_bytes(1500000000u / 1032 + 1),
                         true, 1500000000u);
    attnviz::io::write_file(bomb / "pytorch_model.bin", make_zip(entries));
    const MeasuredRun expected = measured_attnviz(
        {"export", "--model", plain.string(), "--text", "hello world", "-o", "plain.npz"});
    ASSERT_EQ(expected.code, 0) << expected.err;
    const MeasuredRun run = measured_attnviz(
        {"export", "--model", bomb.string(), "--text", "hello world", "-o", "bomb.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_LT(run.peak_rss_mib, 1024);
    EXPECT_EQ(attnviz::io::read_file(work_ / "bomb.npz"),
              attnviz::io::read_file(work_ / "plain.npz"));
}

// A FIFO in place of the weights hung every command; a directory said "No such
// device". `info` never opens the weights at all.
TEST_F(Cli, WeightsThatAreNotRegularFilesAreRefusedAndInfoNeverOpensThem) {
    const fs::path fifo_model = work_ / "fifo", folder_model = work_ / "folder";
    tiny_bin_without_weights(fifo_model);
    tiny_bin_without_weights(folder_model);
    ASSERT_EQ(mkfifo((fifo_model / "pytorch_model.bin").c_str(), 0600), 0);
    fs::create_directories(folder_model / "model.safetensors");

    MeasuredRun run = measured_attnviz({"info", "--model", fifo_model.string(), "--json"});
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(nlohmann::json::parse(attnviz::io::read_file(work_ / "stdout.txt"))["layers"], 2);
    for (const auto& [folder, file, kind] :
         {std::tuple{fifo_model, "pytorch_model.bin", "a FIFO"},
          std::tuple{folder_model, "model.safetensors", "a directory"}}) {
        run = measured_attnviz(
            {"export", "--model", folder.string(), "--text", "hello world", "-o", "out.npz"});
        EXPECT_EQ(run.code, 1);
        EXPECT_EQ(run.err, std::string("attnviz: error: cannot open ") + (folder / file).string() +
                               ": it is " + kind + ", not a regular file\n");
    }
}

// --precision: fp32 is the default below 1B parameters, so asking for it gives
// the same bytes as not asking; bf16 changes the numbers (8 significant bits in
// the products) while every row still sums to 1; anything else is a usage error
// naming the flag.
TEST_F(Cli, PrecisionFlagChoosesTheMatrixProducts) {
    CliRun run = attnviz({"export", "--text", "a test of precision", "-o", "default.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    run = attnviz(
        {"export", "--text", "a test of precision", "--precision", "fp32", "-o", "fp32.npz"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(attnviz::io::read_file(work_ / "default.npz"),
              attnviz::io::read_file(work_ / "fp32.npz"));
    run = attnviz(
        {"export", "--text", "a test of precision", "--precision", "bf16", "-o", "bf16.npz"});
    if (run.code == 0) {
        EXPECT_EQ(python(R"(
import numpy as np
a, b = np.load("fp32.npz")["attentions"], np.load("bf16.npz")["attentions"]
assert not np.array_equal(a, b)
assert np.allclose(b.sum(-1), 1, atol=1e-5)
print("ok")
)"),
                  "ok\n");
    } else {  // a CPU without bf16 says so
        EXPECT_THAT(run.err, HasSubstr("bf16"));
    }
    run = attnviz({"export", "--text", "a", "--precision", "fp16"});
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, HasSubstr("--precision: 'fp16' is not fp32 or bf16"));
}
