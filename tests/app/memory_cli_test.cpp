// Memory bounds of the attnviz program (issue 12): a run too big for its budget
// is refused up front with its estimate, --truncate cuts every architecture,
// and running out of memory or address space (setrlimit(RLIMIT_AS), as
// `ulimit -v` sets it) is an exit code of 1 with one line, never a crash or a
// hang. Each run is a child with a watchdog, so a hang fails the test.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "io/files.h"
#include "io/tensors.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const fs::path kData = ATTNVIZ_TEST_DATA;

struct ChildRun {
    int code = -1;           // the exit code; -1 when killed by a signal
    int signal = 0;          // the signal that ended it, if any
    bool timed_out = false;  // the watchdog killed it
    uint64_t peak_rss = 0;   // bytes (the child's ru_maxrss)
    std::string out, err;
};

// Runs attnviz with `args` in `folder`, under an address-space limit (bytes,
// 0: none), killing it after `watchdog_seconds`: a hang is a failed test, not
// a stuck ctest.
ChildRun run_attnviz(const std::vector<std::string>& args, const fs::path& folder,
                     uint64_t address_space = 0, int watchdog_seconds = 120) {
    const fs::path out = folder / "stdout.txt", err = folder / "stderr.txt";
    const pid_t pid = fork();
    if (pid == 0) {
        if (chdir(folder.c_str()) != 0) _exit(126);
        const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out_fd < 0 || err_fd < 0) _exit(126);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        // the program's own restart (OMP_WAIT_POLICY) would hide nothing, but skip it
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        setenv("ATTNVIZ_NUM_THREADS", "1", 1);
        setenv("HF_HUB_OFFLINE", "1", 1);
        setenv("HF_HUB_CACHE", (folder / "no-cache").c_str(), 1);
        if (address_space > 0) {
            const rlimit limit{address_space, address_space};
            if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(125);
        }
        std::vector<char*> argv;
        static const std::string program = ATTNVIZ_CLI;
        argv.push_back(const_cast<char*>(program.c_str()));
        for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        execv(program.c_str(), argv.data());
        _exit(127);
    }
    ChildRun run;
    int status = 0;
    rusage usage{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(watchdog_seconds);
    while (wait4(pid, &status, WNOHANG, &usage) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &usage);
            run.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (WIFEXITED(status)) run.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
    run.peak_rss = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
    run.out = attnviz::io::read_file(out);
    run.err = attnviz::io::read_file(err);
    return run;
}

// One line on stderr, as every attnviz error is.
bool one_line(const std::string& text) {
    return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

// An 8-byte header length, the JSON header, the data: the safetensors layout.
void write_safetensors(const fs::path& path,
                       const std::vector<std::pair<std::string, std::vector<float>>>& tensors,
                       const std::vector<std::vector<int64_t>>& shapes) {
    nlohmann::json header = nlohmann::json::object();
    size_t offset = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const size_t bytes = tensors[i].second.size() * sizeof(float);
        header[tensors[i].first] = {
            {"dtype", "F32"}, {"shape", shapes[i]}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string file(8, '\0');
    const uint64_t length = text.size();
    std::memcpy(file.data(), &length, 8);
    file += text;
    for (const auto& tensor : tensors)
        file.append(reinterpret_cast<const char*>(tensor.second.data()),
                    tensor.second.size() * sizeof(float));
    attnviz::io::write_file(path, file);
}

// A tiny architecture fixture (tests/data/arch) with a real tokenizer
// (tests/data/hf): its vocabulary-sized tensors are tiled up to the
// tokenizer's vocabulary, so that the tokenizer's ids fit. The values do not
// matter here: these tests check sizes, exit codes and messages.
fs::path make_model(const fs::path& folder, const std::string& fixture,
                    const std::string& tokenizer, int vocab,
                    const std::vector<std::string>& tokenizer_files,
                    const nlohmann::json& overrides = nlohmann::json::object()) {
    fs::create_directories(folder);
    nlohmann::json config =
        nlohmann::json::parse(attnviz::io::read_file(kData / "arch" / fixture / "config.json"));
    const int64_t old_vocab = config["vocab_size"].get<int64_t>();
    config["vocab_size"] = vocab;
    if (overrides.is_object()) config.update(overrides);
    attnviz::io::write_file(folder / "config.json", config.dump(2));
    const attnviz::io::TensorSet tensors =
        attnviz::io::TensorSet::open_safetensors(kData / "arch" / fixture / "model.safetensors");
    std::vector<std::pair<std::string, std::vector<float>>> out;
    std::vector<std::vector<int64_t>> shapes;
    for (const attnviz::io::TensorView& tensor : tensors.tensors()) {
        std::vector<float> values(tensor.numel());
        std::memcpy(values.data(), tensor.data, values.size() * sizeof(float));
        std::vector<int64_t> shape = tensor.shape;
        const bool vocabulary_table = tensor.name.find("wte") != std::string::npos ||
                                      tensor.name.find("embed_tokens") != std::string::npos ||
                                      tensor.name.find("shared") != std::string::npos ||
                                      tensor.name.find("word_embeddings") != std::string::npos ||
                                      tensor.name.find("lm_head") != std::string::npos;
        if (vocabulary_table && shape.size() == 2 && shape[0] == old_vocab) {
            const size_t row = values.size() / static_cast<size_t>(old_vocab);
            std::vector<float> tiled(static_cast<size_t>(vocab) * row);
            for (size_t i = 0; i < tiled.size(); ++i) tiled[i] = values[i % values.size()];
            values = std::move(tiled);
            shape[0] = vocab;
        }
        out.emplace_back(tensor.name, std::move(values));
        shapes.push_back(std::move(shape));
    }
    write_safetensors(folder / "model.safetensors", out, shapes);
    for (const std::string& name : tokenizer_files)
        fs::copy_file(kData / "hf" / tokenizer / name, folder / name);
    return folder;
}

std::string words(int n) {
    std::string text;
    for (int i = 0; i < n; ++i) text += "word ";
    return text;
}

class MemoryCli : public ::testing::Test {
protected:
    void SetUp() override {
        work_ = fs::temp_directory_path() /
                ("attnviz_memory_test_" + std::to_string(getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(work_);
        fs::create_directories(work_);
    }
    void TearDown() override { fs::remove_all(work_); }

    fs::path llama() {
        return make_model(work_ / "llama", "llama_linear_rope_mha", "gpt2", 50257,
                          {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"});
    }
    fs::path t5() {
        return make_model(work_ / "t5", "t5_tiny", "t5-small", 32128,
                          {"tokenizer.json", "tokenizer_config.json", "spiece.model"});
    }
    fs::path gpt2() {
        return make_model(work_ / "gpt2", "gpt2_tiny", "gpt2", 50257,
                          {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"});
    }

    // The shape of an array in an .npz, read by numpy.
    std::string npz_shape(const fs::path& npz, const std::string& array) {
        const std::string command = "/usr/bin/python3 -c \"import numpy; print(numpy.load('" +
                                    npz.string() + "')['" + array + "'].shape)\" 2>&1";
        FILE* pipe = popen(command.c_str(), "r");
        std::string output;
        char buffer[4096];
        while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
        pclose(pipe);
        while (!output.empty() && output.back() == '\n') output.pop_back();
        return output;
    }

    fs::path work_;
};

// --max-memory below what the run needs: refused before the forward, with the
// estimate, the budget and the flags that fix it, and no file written.
TEST_F(MemoryCli, MaxMemoryRefusesUpFrontWithTheEstimate) {
    const fs::path model = gpt2();
    const ChildRun run = run_attnviz({"export", "--model", model.string(), "--text", "hello world",
                                      "--max-memory", "10M", "-o", "out.npz"},
                                     work_);
    EXPECT_EQ(run.code, 1) << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, StartsWith("attnviz: error: gpt2 on 2 tokens needs about "));
    EXPECT_THAT(run.err, HasSubstr("more than the 10.0 MiB it may use (the limit given)"));
    EXPECT_THAT(run.err, HasSubstr("allow more with --max-memory SIZE"));
    EXPECT_FALSE(fs::exists(work_ / "out.npz"));
}

// The refusal names how many tokens fit; --truncate N with that N then runs
// within the same budget. Llama has no position table, so only memory bounds it.
TEST_F(MemoryCli, RefusalNamesTheTokensThatFitAndTruncateRunsThem) {
    const fs::path model = llama();
    const std::vector<std::string> args = {"export", "--model",   model.string(),
                                           "--text", words(3000), "--max-memory",
                                           "100M",   "-o",        "out.npz"};
    ChildRun run = run_attnviz(args, work_);
    ASSERT_EQ(run.code, 1) << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    const std::string marker = "or run fewer tokens with --truncate ";
    const size_t at = run.err.find(marker);
    ASSERT_NE(at, std::string::npos) << run.err;
    const int fitting = std::stoi(run.err.substr(at + marker.size()));
    EXPECT_GT(fitting, 100);
    EXPECT_LT(fitting, 3000);
    std::vector<std::string> truncated = args;
    truncated.insert(truncated.end(), {"--truncate", std::to_string(fitting)});
    run = run_attnviz(truncated, work_);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(npz_shape(work_ / "out.npz", "attentions"),
              "(2, 4, " + std::to_string(fitting) + ", " + std::to_string(fitting) + ")");
}

// --truncate cuts Llama to its max_position_embeddings (128 in the fixture) and
// T5 to its tokenizer's model_max_length (512); --truncate N to N tokens.
TEST_F(MemoryCli, TruncateCutsEveryArchitecture) {
    const fs::path llama_model = llama();
    ChildRun run = run_attnviz({"export", "--model", llama_model.string(), "--text", words(300),
                                "--truncate", "-o", "llama.npz"},
                               work_);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(npz_shape(work_ / "llama.npz", "attentions"), "(2, 4, 128, 128)");
    run = run_attnviz({"export", "--model", llama_model.string(), "--text", words(300),
                       "--truncate", "7", "-o", "llama7.npz"},
                      work_);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(npz_shape(work_ / "llama7.npz", "attentions"), "(2, 4, 7, 7)");

    const fs::path t5_model = t5();
    run = run_attnviz({"export", "--model", t5_model.string(), "--text", words(600), "--target",
                       words(600), "--truncate", "-o", "t5.npz"},
                      work_);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(npz_shape(work_ / "t5.npz", "encoder_attentions"), "(2, 4, 512, 512)");
    EXPECT_EQ(npz_shape(work_ / "t5.npz", "cross_attentions"), "(2, 4, 512, 512)");
    run = run_attnviz({"export", "--model", t5_model.string(), "--text", words(600), "--target",
                       words(600), "--truncate", "5", "-o", "t5five.npz"},
                      work_);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(npz_shape(work_ / "t5five.npz", "cross_attentions"), "(2, 4, 5, 5)");

    run = run_attnviz(
        {"export", "--model", t5_model.string(), "--text", "a", "--target", "b", "--truncate", "0"},
        work_);
    EXPECT_EQ(run.code, 2);
    EXPECT_THAT(run.err, HasSubstr("--truncate: must be a number of tokens, at least 1 (not '0')"));
}

// bench --seq on a model without a position table used to grow its sample
// text without bound (11 GB for --seq 1000000000): the memory estimate refuses
// it before the text is made.
TEST_F(MemoryCli, BenchSeqIsBoundedByMemory) {
    const fs::path model = llama();
    const ChildRun run =
        run_attnviz({"bench", "--model", model.string(), "--seq", "1000000000"}, work_);
    EXPECT_EQ(run.code, 1) << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, HasSubstr("on 1000000000 tokens needs more than 2.00 EiB"));
    EXPECT_THAT(run.err, HasSubstr("allow more with --max-memory SIZE, or run fewer tokens with "
                                   "--seq "));
    EXPECT_EQ(run.out, "");
}

// An allocation that fails after the estimate let the run through (here the
// estimate is overruled with --max-memory) is "out of memory while running the
// model", exit code 1, not "unexpected failure" or an abort.
TEST_F(MemoryCli, FailedAllocationIsOutOfMemory) {
    const fs::path model = llama();
    const ChildRun run = run_attnviz({"export", "--model", model.string(), "--text", words(6000),
                                      "--max-memory", "1T", "-o", "out.npz"},
                                     work_, uint64_t{1} << 30);
    EXPECT_FALSE(run.timed_out) << "hung under RLIMIT_AS";
    EXPECT_EQ(run.code, 1) << "signal " << run.signal << ": " << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, StartsWith("attnviz: error: out of memory while running the model; "));
    EXPECT_THAT(run.err, HasSubstr("--max-memory"));
    EXPECT_FALSE(fs::exists(work_ / "out.npz"));
}

// Over its budget, the refusal suggests the capture options that would fit,
// with their estimates; the first suggestion then runs within that budget and
// writes what it said (sparse rows of the kept layers).
TEST_F(MemoryCli, RefusalSuggestsCaptureOptionsThatFitAndTheyRun) {
    const fs::path model = llama();
    const std::vector<std::string> args = {"export", "--model",   model.string(),
                                           "--text", words(3000), "--max-memory",
                                           "120M",   "-o",        "out.npz"};
    ChildRun run = run_attnviz(args, work_);
    ASSERT_EQ(run.code, 1) << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, HasSubstr("(weights "));
    const std::string marker = "keep less attention: ";
    const size_t at = run.err.find(marker);
    ASSERT_NE(at, std::string::npos) << run.err;
    const std::string first =
        run.err.substr(at + marker.size(), run.err.find(" would fit", at) - at - marker.size());
    EXPECT_THAT(run.err.substr(at), HasSubstr(" would fit in about "));
    std::vector<std::string> flags = args;
    std::istringstream words_of(first);
    for (std::string flag; words_of >> flag;) flags.push_back(flag);
    run = run_attnviz(flags, work_);
    ASSERT_EQ(run.code, 0) << first << ": " << run.err;
    if (first.find("--top-k") != std::string::npos) {
        EXPECT_THAT(npz_shape(work_ / "out.npz", "attentions_shape"), HasSubstr("(4,)"));
    }
}

// A long view under an address-space limit too small for it: the estimate's
// refusal, one line, exit 1 (it used to be "unexpected failure:
// std::bad_alloc"), naming the capture options that would fit. (The issue's
// case, 2,048 tokens of a Qwen2.5-0.5B-shaped model under 3 GB, is run by
// bench/long_context.py.)
TEST_F(MemoryCli, LongViewUnderUlimitIsRefusedWithSuggestions) {
    const fs::path model = llama();
    const ChildRun run = run_attnviz({"view", "--model", model.string(), "--text", words(4000),
                                      "--threads", "1", "-o", "page.html"},
                                     work_, uint64_t{600} << 20);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.signal, 0);
    ASSERT_EQ(run.code, 1) << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, StartsWith("attnviz: error: llama on "));
    EXPECT_THAT(run.err, HasSubstr(" tokens needs about "));
    EXPECT_THAT(run.err, HasSubstr("(ulimit -v"));
    EXPECT_THAT(run.err, HasSubstr("keep less attention: "));
    EXPECT_FALSE(fs::exists(work_ / "page.html"));
}

// Under any address-space limit (`ulimit -v`) from where the program can start
// to where the run fits, it either runs or exits 1 with one line naming
// --max-memory: never a hang (OpenBLAS's allocator retried a failed 128 MiB
// mapping forever), never an abort (an allocation failing on a worker thread).
TEST_F(MemoryCli, UnderAnyAddressSpaceLimitItRunsOrSaysWhy) {
    const fs::path model = llama();
    int ran = 0;
    for (const uint64_t mib : {100, 150, 200, 250, 300, 400, 500, 700, 1000, 1500}) {
        const ChildRun run = run_attnviz({"export", "--model", model.string(), "--text",
                                          words(1500), "--threads", "2", "-o", "out.npz"},
                                         work_, mib << 20);
        SCOPED_TRACE("RLIMIT_AS " + std::to_string(mib) + " MiB: " + run.err);
        EXPECT_FALSE(run.timed_out) << "hung";
        EXPECT_EQ(run.signal, 0);
        if (run.code == 0) {
            ++ran;
            continue;
        }
        EXPECT_EQ(run.code, 1);
        EXPECT_TRUE(one_line(run.err));
        EXPECT_THAT(run.err, StartsWith("attnviz: error: "));
        EXPECT_THAT(run.err, HasSubstr("--max-memory"));
    }
    EXPECT_GT(ran, 0) << "not even 1.5 GiB of address space was enough";
}

}  // namespace

namespace {

// "needs about 1.23 GiB": the estimate a refusal prints, in bytes.
double estimate_in(const std::string& message) {
    const size_t at = message.find("needs about ");
    if (at == std::string::npos) return 0;
    std::istringstream in(message.substr(at + 12));
    double value = 0;
    std::string unit;
    in >> value >> unit;
    const double scale = unit == "KiB"   ? 1024.0
                         : unit == "MiB" ? 1024.0 * 1024
                         : unit == "GiB" ? 1024.0 * 1024 * 1024
                                         : 1.0;
    return value * scale;
}

}  // namespace

// The estimate against the real need: the peak resident memory of the run it
// estimates, within 10% (the bound issue 18 sets for refusing up front). The
// sizes make the terms that grow with the tokens most of the peak, as at the
// lengths where a refusal matters: 2,048 tokens through tiny models of the
// architectures whose forwards hold extra [H, T, T] buffers (a sliding window's
// mask, DeBERTa-v2's disentangled bias and its position indices) and a plain
// one, each kept whole (full capture) and, for two, a selective capture, and
// two whose queries and keys are kept with their score biases. The
// error model: the estimate leaves out small allocations (token lists, oneDNN's
// primitives, allocator slack) and takes the process's start-up memory as a
// constant measured at 40 to 50 MiB, a few MiB either way, and it adds a
// buffer held only before the peak (a window mask grown from one head's
// [T, T], 16 MiB here) to it; at these sizes (130 to 600 MiB) that stays
// inside 10%.
TEST_F(MemoryCli, EstimateIsWithinTenPercentOfThePeak) {
    const std::vector<std::string> gpt2_files = {"tokenizer.json", "tokenizer_config.json",
                                                 "vocab.json", "merges.txt"};
    const std::vector<std::string> bert_files = {"tokenizer.json", "tokenizer_config.json",
                                                 "vocab.txt"};
    struct Case {
        std::string fixture, tokenizer;
        int vocab;
        std::vector<std::string> files;
        nlohmann::json overrides;
        std::vector<std::string> capture;
    };
    const std::vector<Case> cases = {
        {"llama_linear_rope_mha", "gpt2", 50257, gpt2_files, {}, {}},
        {"mistral_sliding_window", "gpt2", 50257, gpt2_files, {}, {}},
        {"mistral_sliding_window",
         "gpt2",
         50257,
         gpt2_files,
         {},
         {"--layers", "1", "--top-k", "8"}},
        {"gemma2_tiny", "gpt2", 50257, gpt2_files, {}, {}},
        {"phi3_su_short_sliding", "gpt2", 50257, gpt2_files, {}, {}},
        {"deberta_v3_tiny",
         "bert-base-uncased",
         30522,
         bert_files,
         {{"max_position_embeddings", 4096}},
         {}},
        {"deberta_v3_tiny",
         "bert-base-uncased",
         30522,
         bert_files,
         {{"max_position_embeddings", 4096}},
         {"--layers", "0", "--top-k", "8"}},
        // the neuron view's score biases: Gemma 2 without soft-capping keeps
        // one per layer (its first layer has no window), ALiBi one for all
        {"gemma2_layer_types_no_softcap", "gpt2", 50257, gpt2_files, {}, {"--queries-keys"}},
        {"falcon_alibi_sequential", "gpt2", 50257, gpt2_files, {}, {"--queries-keys"}},
    };
    attnviz::io::write_file(work_ / "text.txt", words(2100));
    int index = 0;
    for (const Case& c : cases) {
        const fs::path model = make_model(work_ / ("model" + std::to_string(index++)), c.fixture,
                                          c.tokenizer, c.vocab, c.files, c.overrides);
        std::vector<std::string> args = {"export",      "--model",  model.string(),
                                         "--text-file", "text.txt", "--truncate",
                                         "2048",        "-o",       "out.npz"};
        args.insert(args.end(), c.capture.begin(), c.capture.end());
        const ChildRun ran = run_attnviz(args, work_);
        ASSERT_EQ(ran.code, 0) << c.fixture << ": " << ran.err;
        args.insert(args.end(), {"--max-memory", "1M"});
        const ChildRun refused = run_attnviz(args, work_);
        ASSERT_EQ(refused.code, 1) << refused.err;
        const double estimate = estimate_in(refused.err);
        ASSERT_GT(estimate, 0) << refused.err;
        const double peak = static_cast<double>(ran.peak_rss);
        EXPECT_NEAR(estimate / peak, 1.0, 0.10)
            << c.fixture << " " << ::testing::PrintToString(c.capture) << ": estimate "
            << estimate / (1 << 20) << " MiB, peak " << peak / (1 << 20) << " MiB";
        std::string flags;
        for (const std::string& flag : c.capture) flags += " " + flag;
        std::printf("%s%s: estimate %.1f MiB, peak %.1f MiB, ratio %.3f\n", c.fixture.c_str(),
                    flags.empty() ? " (full)" : flags.c_str(), estimate / (1 << 20),
                    peak / (1 << 20), estimate / peak);
        fs::remove(work_ / "out.npz");
    }
}
