// The attnviz program, run as a user runs it (ATTNVIZ_CLI), against a fake
// Hugging Face cache holding a tiny random BERT under the id bert-base-uncased
// with the real bert-base-uncased tokenizer files (tests/data/hf), and against
// a fake hub on 127.0.0.1. Checks the seed workflow, exit codes and messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hub/fake_hub.h"
#include "io/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const fs::path kFixture = fs::path(ATTNVIZ_TEST_DATA) / "app" / "bert-tiny-30522";
const fs::path kTokenizer = fs::path(ATTNVIZ_TEST_DATA) / "hf" / "bert-base-uncased";
const std::string kCommit = "86b5e0934494bd15c9632b12f734a8a67f723594";
const std::string kTextA = "The cat sat on the mat.";
const std::string kTextB = "The cat lay on the rug.";

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

class Cli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = fs::temp_directory_path() / ("attnviz_cli_test_" + std::to_string(getpid()));
        fs::remove_all(root_);
        // huggingface_hub's layout, as Python would have left it.
        const fs::path repo = root_ / "cache" / "models--bert-base-uncased";
        fs::create_directories(repo / "blobs");
        fs::create_directories(repo / "refs");
        fs::create_directories(repo / "snapshots" / kCommit);
        for (const auto& [name, source] : model_files()) {
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
        environment.emplace("HF_HUB_CACHE", (root_ / "cache").string());
        environment.emplace("HF_HOME", (root_ / "home").string());
        environment.emplace("HF_HUB_OFFLINE", "1");
        environment.emplace("ATTNVIZ_NUM_THREADS", "1");
        std::string command = "cd " + shell_quote(work_.string()) +
                              " && env -u HF_TOKEN -u HF_ENDPOINT -u HF_HUB_OFFLINE";
        for (const auto& [name, value] : environment) {
            if (value.empty()) continue;
            command += ' ';
            command += name;
            command += '=';
            command += shell_quote(value);
        }
        command += ' ';
        command += shell_quote(ATTNVIZ_CLI);
        for (const std::string& arg : args) {
            command += ' ';
            command += shell_quote(arg);
        }
        command += " >stdout.txt 2>stderr.txt";
        const int status = std::system(command.c_str());
        CliRun run;
        run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run.out = attnviz::io::read_file(work_ / "stdout.txt");
        run.err = attnviz::io::read_file(work_ / "stderr.txt");
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
              "['cross_attentions', 'decoder_attentions', 'decoder_input_ids', "
              "'decoder_token_type_ids', 'decoder_tokens', 'encoder_attentions', "
              "'encoder_input_ids', 'encoder_token_type_ids', 'encoder_tokens']\n"
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
    run = attnviz({"info", "bert-base-uncased"});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, HasSubstr("vocabulary     30522 tokens"));

    fs::create_directories(work_ / "xlnet");
    attnviz::io::write_file(work_ / "xlnet" / "config.json",
                            R"({"model_type": "xlnet", "architectures": ["XLNetLMHeadModel"]})");
    run = attnviz({"info", "xlnet"});
    EXPECT_EQ(run.code, 1);
    EXPECT_THAT(run.err, StartsWith("attnviz: error: "));
    EXPECT_THAT(run.err, HasSubstr("'xlnet' (XLNetLMHeadModel) is not supported"));
    EXPECT_THAT(run.err, HasSubstr("bert"));
    EXPECT_THAT(run.err, HasSubstr("gpt2"));
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
        }
    }
    EXPECT_THAT(attnviz({"nonsense"}).err, HasSubstr("unknown command 'nonsense'"));
}

TEST_F(Cli, EveryCommandHasHelp) {
    for (const char* command :
         {"view", "export", "tokenize", "bench", "download", "models", "info"}) {
        const CliRun run = attnviz({command, "--help"});
        EXPECT_EQ(run.code, 0) << command;
        EXPECT_THAT(run.out, HasSubstr(std::string("Usage: attnviz ") + command)) << command;
    }
    const CliRun run = attnviz({"--help"});
    EXPECT_EQ(run.code, 0);
    for (const char* command :
         {"view", "export", "tokenize", "bench", "download", "models", "info"})
        EXPECT_THAT(run.out, HasSubstr(command));
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
    EXPECT_THAT(run.err, StartsWith("attnviz: error: "));
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

}  // namespace
