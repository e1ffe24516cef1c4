// attnviz serve, run as a user runs it (ATTNVIZ_CLI serve --no-open) on an
// ephemeral port, with the demo model and a model whose checkpoint is corrupt,
// and asked over HTTP (cpp-httplib's client). Checks the token, Host and
// Origin checks, the limits, a failing model beside a working one, the 409 of
// a superseded request, that the payload and the exports are the bytes the
// CLI writes for the same input (the analysis included: without parameters,
// `attnviz view`'s default), and tiles, top-k and differences their values.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "attnviz/export.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kDemo = fs::path(ATTNVIZ_SOURCE_DIR) / "models" / "demo";
const std::string kTextA = "The cat sat on the mat.";
const std::string kTextB = "The cat lay on the rug.";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

int run_cli(const std::string& arguments) {
    const std::string command = std::string(ATTNVIZ_CLI) + " " + arguments + " >/dev/null 2>&1";
    return WEXITSTATUS(std::system(command.c_str()));
}

std::vector<float> decode_floats(const std::string& base64) {
    static const std::string alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bytes;
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : base64) {
        if (c == '=') break;
        buffer = (buffer << 6) | static_cast<uint32_t>(alphabet.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    std::vector<float> values(bytes.size() / sizeof(float));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
    return values;
}

class Serve : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = fs::temp_directory_path() / ("attnviz_serve_test_" + std::to_string(getpid()));
        fs::create_directories(root_ / "cache");
        // A model whose checkpoint is cut short: its load fails, the server goes on.
        const fs::path broken = root_ / "broken";
        fs::create_directories(broken);
        for (const char* file :
             {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"})
            fs::copy_file(kDemo / file, broken / file);
        const std::string weights = read_file(kDemo / "model.safetensors");
        write_file(broken / "model.safetensors", weights.substr(0, weights.size() / 2));

        int out[2];
        ASSERT_EQ(pipe(out), 0);
        const std::string cache = "HF_HUB_CACHE=" + (root_ / "cache").string();
        const std::string args[] = {
            ATTNVIZ_CLI, "serve",        "--no-open", "--port",        "0",
            "--model",   kDemo.string(), "--model",   broken.string(), "--max-memory",
            "2G",        "--threads",    "1"};
        std::vector<char*> argv;
        for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        server_ = fork();
        if (server_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            putenv(const_cast<char*>(cache.c_str()));
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(out[1]);
        std::string line;
        char c = 0;
        while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
        close(out[0]);
        url_ = line;
        // http://127.0.0.1:PORT/?token=<64 hex digits>, nothing else
        const std::string prefix = "http://127.0.0.1:", marker = "/?token=";
        const size_t at = line.find(marker);
        ASSERT_TRUE(line.starts_with(prefix) && at != std::string::npos) << "first line: " << line;
        const std::string port = line.substr(prefix.size(), at - prefix.size());
        token_ = line.substr(at + marker.size());
        ASSERT_TRUE(!port.empty() && port.find_first_not_of("0123456789") == std::string::npos)
            << "first line: " << line;
        ASSERT_TRUE(token_.size() == 64 &&
                    token_.find_first_not_of("0123456789abcdef") == std::string::npos)
            << "first line: " << line;
        port_ = std::stoi(port);
    }

    static void TearDownTestSuite() {
        if (server_ > 0) {
            kill(server_, SIGTERM);
            waitpid(server_, nullptr, 0);
        }
        fs::remove_all(root_);
    }

    static httplib::Client client() {
        httplib::Client client("127.0.0.1", port_);
        client.set_read_timeout(120, 0);
        return client;
    }
    static httplib::Headers with_token() { return {{"X-Attnviz-Token", token_}}; }

    static httplib::Result post_trace(const json& body) {
        return client().Post("/api/trace", with_token(), body.dump(), "application/json");
    }

    // A trace of the demo model, and its id.
    static std::string trace_id(const std::string& a, const std::string& b) {
        const auto result = post_trace({{"model", "demo"}, {"text", a}, {"text_pair", b}});
        EXPECT_TRUE(result);
        if (!result) return "";
        EXPECT_EQ(result->status, 200) << result->body;
        return json::parse(result->body).value("trace_id", "");
    }

    static std::string get(const std::string& path, int expected = 200) {
        const auto result = client().Get(path.c_str(), with_token());
        EXPECT_TRUE(result);
        if (!result) return "";
        EXPECT_EQ(result->status, expected) << path << ": " << result->body;
        return result->body;
    }

    // The payload a page of `attnviz view` embeds.
    static std::string embedded_payload(const std::string& html) {
        const std::string open = "<script type=\"application/json\" class=\"attnviz-data\">";
        const size_t start = html.find(open) + open.size();
        return html.substr(start, html.find("</script>", start) - start);
    }

    // The payload of `attnviz view --model demo --text A --text-b B <flags>`.
    static std::string cli_payload(const std::string& a, const std::string& b,
                                   const std::string& flags) {
        static int pages = 0;
        const fs::path page = root_ / ("analysis" + std::to_string(pages++) + ".html");
        EXPECT_EQ(run_cli("view --model " + quote(kDemo.string()) + " --text " + quote(a) +
                          " --text-b " + quote(b) + " " + flags + " -o " + quote(page.string())),
                  0);
        return embedded_payload(read_file(page));
    }

    static inline fs::path root_;
    static inline pid_t server_ = -1;
    static inline int port_ = 0;
    static inline std::string token_, url_;
};

TEST_F(Serve, RefusesRequestsWithoutTheToken) {
    auto result = client().Get("/api/models");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 403);
    EXPECT_NE(json::parse(result->body)["error"].get<std::string>().find("token"),
              std::string::npos);
    result = client().Get("/api/models", {{"X-Attnviz-Token", std::string(64, '0')}});
    EXPECT_EQ(result->status, 403);
    result = client().Get(("/api/models?token=" + token_.substr(0, 63)).c_str());
    EXPECT_EQ(result->status, 403);
    result = client().Get("/?token=wrong");
    EXPECT_EQ(result->status, 403);
    result = client().Get(("/?token=" + token_).c_str());
    EXPECT_EQ(result->status, 200);
    EXPECT_NE(result->get_header_value("Content-Security-Policy").find("script-src 'nonce-"),
              std::string::npos);
    EXPECT_EQ(client().Get(("/api/models?token=" + token_).c_str())->status, 200);
}

TEST_F(Serve, RefusesForeignHostAndOrigin) {
    const std::string port = std::to_string(port_);
    httplib::Headers headers = with_token();
    headers.emplace("Host", "evil.example:" + port);
    EXPECT_EQ(client().Get("/api/models", headers)->status, 403);
    headers = with_token();
    headers.emplace("Host", "127.0.0.1:1");  // another port: another origin
    EXPECT_EQ(client().Get("/api/models", headers)->status, 403);
    headers = with_token();
    headers.emplace("Host", "localhost:" + port);
    EXPECT_EQ(client().Get("/api/models", headers)->status, 200);

    headers = with_token();
    headers.emplace("Origin", "http://evil.example");
    EXPECT_EQ(client().Get("/api/models", headers)->status, 403);
    headers = with_token();
    headers.emplace("Origin", "null");
    EXPECT_EQ(
        client().Post("/api/load", headers, R"({"model":"demo"})", "application/json")->status,
        403);
    headers = with_token();
    headers.emplace("Origin", "http://127.0.0.1:" + port);
    EXPECT_EQ(client().Get("/api/models", headers)->status, 200);
}

TEST_F(Serve, RefusesBadRequestsWithClearErrors) {
    // Over 1 MiB: 413 before anything is read into a model.
    auto result = post_trace({{"model", "demo"}, {"text", std::string(1100000, 'a')}});
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 413);
    EXPECT_TRUE(json::parse(result->body).contains("error"));

    // More tokens than the demo model's 128 positions.
    std::string words;
    for (int i = 0; i < 200; ++i) words += "cat ";
    result = post_trace({{"model", "demo"}, {"text", words}});
    EXPECT_EQ(result->status, 400);
    const std::string message = json::parse(result->body)["error"];
    EXPECT_NE(message.find("202 tokens"), std::string::npos) << message;
    EXPECT_NE(message.find("at most 128"), std::string::npos) << message;

    // Not UTF-8.
    result =
        client().Post("/api/trace", with_token(),
                      std::string("{\"model\":\"demo\",\"text\":\"caf\xe9\"}"), "application/json");
    EXPECT_EQ(result->status, 400);
    EXPECT_NE(result->body.find("UTF-8"), std::string::npos) << result->body;

    result = post_trace({{"model", "no-such-model"}, {"text", "hi"}});
    EXPECT_EQ(result->status, 400);
    EXPECT_NE(result->body.find("no-such-model"), std::string::npos);
    result = client().Post("/api/load", with_token(), R"({"model":"no-such-model"})",
                           "application/json");
    EXPECT_EQ(result->status, 404);
    get("/api/payload?trace=nope", 404);
    get("/api/nothing-here", 404);
}

TEST_F(Serve, AFailingModelShowsItsErrorWhileAnotherServes) {
    auto result =
        client().Post("/api/load", with_token(), R"({"model":"broken"})", "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 202);
    json broken = json::object();
    for (int i = 0; i < 600 && broken.value("state", "") != "failed"; ++i) {
        const json models = json::parse(get("/api/models"));
        for (const json& model : models["models"])
            if (model["id"] == "broken") broken = model;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(broken["state"], "failed");
    EXPECT_NE(broken["error"].get<std::string>().find("model.safetensors"), std::string::npos)
        << broken.dump();
    result = post_trace({{"model", "broken"}, {"text", kTextA}});
    EXPECT_EQ(result->status, 503);
    EXPECT_FALSE(trace_id(kTextA, kTextB).empty());
}

TEST_F(Serve, PayloadAndExportsAreWhatTheCliWrites) {
    const std::string id = trace_id(kTextA, kTextB);
    ASSERT_FALSE(id.empty());
    const std::string texts = "--model " + quote(kDemo.string()) + " --text " + quote(kTextA) +
                              " --text-b " + quote(kTextB);
    const fs::path page = root_ / "view.html", npz = root_ / "export.npz", svg = root_ / "view.svg";
    // The page `attnviz view` writes by default (its analysis: default_view_analysis).
    ASSERT_EQ(run_cli("view " + texts + " -o " + quote(page.string())), 0);
    ASSERT_EQ(run_cli("export " + texts + " -o " + quote(npz.string())), 0);
    ASSERT_EQ(run_cli("view " + texts + " --layers 1 -o " + quote(svg.string())), 0);

    // The payload the static page embeds, byte for byte.
    const std::string html = read_file(page);
    EXPECT_EQ(get("/api/payload?trace=" + id), embedded_payload(html));

    // The .npz and the picture, byte for byte; the page up to its random nonce and root id.
    EXPECT_EQ(get("/api/export?format=npz&trace=" + id), read_file(npz));
    EXPECT_EQ(get("/api/export?format=svg&layers=1&trace=" + id), read_file(svg));
    // Each run of 17 or more hex digits after "nonce", "nonce-", "nonce=\"" or "attnviz-"
    // becomes NONCE or ROOT.
    const auto random_ids = [](std::string text) {
        const auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
        for (const auto& [tag, name] :
             {std::pair<std::string, std::string>{"nonce", "NONCE"}, {"attnviz-", "ROOT"}}) {
            for (size_t at = text.find(tag); at != std::string::npos; at = text.find(tag, at + 1)) {
                size_t begin = at + tag.size();
                while (begin < text.size() &&
                       (text[begin] == '-' || text[begin] == '=' || text[begin] == '"'))
                    ++begin;
                size_t end = begin;
                while (end < text.size() && is_hex(text[end])) ++end;
                if (end - begin >= 17) text.replace(at, end - at, name);
            }
        }
        return text;
    };
    const auto exported =
        client().Get(("/api/export?format=html&trace=" + id).c_str(), with_token());
    ASSERT_EQ(exported->status, 200);
    EXPECT_EQ(exported->get_header_value("Content-Disposition"),
              "attachment; filename=\"attention.html\"");
    EXPECT_EQ(random_ids(exported->body), random_ids(html));
}

// What a payload's meta holds of the analysis: its measures ("rollout", "flow"), the blocks
// with head statistics, and whether it has word-level data.
struct PayloadAnalysis {
    std::vector<std::string> measures;
    size_t stats_blocks = 0;
    bool words = false;
    bool opens_at_words = false;
};

PayloadAnalysis analysis_of(const std::string& payload) {
    const json meta = json::parse(payload)["meta"];
    PayloadAnalysis out;
    if (meta.contains("analysis")) {
        for (const json& block : meta["analysis"]["blocks"])
            out.measures.push_back(block["measure"]);
        out.stats_blocks = meta["analysis"]["stats"].size();
    }
    out.words = meta.contains("words");
    out.opens_at_words = out.words && meta["words"]["open"].get<bool>();
    return out;
}

// Without rollout, flow, head_stats or word_level the server decides as `attnviz view`
// does (default_view_analysis): head stats always, rollout up to 512 tokens, word level
// up to 128, flow up to 64. Given, each decides as the flag of the same name.
TEST_F(Serve, PayloadAnalysisIsAttnvizViewsDefault) {
    // 33 to 64 tokens (over the 32 the page once asked flow for) and 65 to 128 (over the
    // 64 of kDefaultFlowTokens; the demo model's limit is 128), both with words of
    // several pieces ("lighthouse", "floorboard").
    const std::string a = "The lighthouse keeper climbed the narrow stairs, carrying a lantern.";
    const std::string b =
        "His granddaughter found the notebooks afterwards, tucked beneath a loose floorboard "
        "near the window of the old cottage.";
    const std::string long_b =
        b +
        " The storm had passed by morning, and the harbour lay quiet under a pale sky. "
        "Fishermen mended their nets on the pier while gulls circled the masts, waiting "
        "for scraps from the first catch of the day.";
    for (const auto& [text_b, flow] : {std::pair{b, true}, std::pair{long_b, false}}) {
        const auto traced = post_trace({{"model", "demo"}, {"text", a}, {"text_pair", text_b}});
        ASSERT_EQ(traced->status, 200) << traced->body;
        const json info = json::parse(traced->body);
        const int tokens = info["tokens_total"];
        ASSERT_TRUE(flow ? tokens > 32 && tokens <= 64 : tokens > 64 && tokens <= 128) << tokens;
        const std::string id = info["trace_id"];

        // The default: the payload of `attnviz view` without analysis flags, byte for byte.
        const std::string served =
            get("/api/payload?trace=" + id + "&view=head,model,neuron,matrix");
        EXPECT_EQ(served, cli_payload(a, text_b, "--view all")) << tokens << " tokens";
        const PayloadAnalysis analysis = analysis_of(served);
        const std::vector<std::string> measures = flow ? std::vector<std::string>{"rollout", "flow"}
                                                       : std::vector<std::string>{"rollout"};
        EXPECT_EQ(analysis.measures, measures) << tokens << " tokens";
        EXPECT_EQ(analysis.stats_blocks, 1u);
        EXPECT_TRUE(analysis.words);
        EXPECT_FALSE(analysis.opens_at_words);
    }

    // Given parameters decide: none of them on the long input; on the short one, no flow
    // where the default has it, and word level asked for (which, as --word-level, opens the
    // page at word level). (Flow past the default's length is the same rule, but a max-flow
    // of 80 tokens would cost minutes in the sanitizer build.)
    const auto traced = post_trace({{"model", "demo"}, {"text", a}, {"text_pair", long_b}});
    const std::string id = json::parse(traced->body)["trace_id"];
    const std::string none =
        get("/api/payload?trace=" + id + "&rollout=0&flow=0&head_stats=0&word_level=0");
    EXPECT_EQ(none,
              cli_payload(a, long_b, "--no-rollout --no-flow --no-head-stats --no-word-level"));
    EXPECT_EQ(analysis_of(none).measures.size(), 0u);
    EXPECT_EQ(analysis_of(none).stats_blocks, 0u);
    EXPECT_FALSE(analysis_of(none).words);
    const auto short_traced = post_trace({{"model", "demo"}, {"text", a}, {"text_pair", b}});
    const std::string short_id = json::parse(short_traced->body)["trace_id"];
    const std::string asked =
        get("/api/payload?trace=" + short_id + "&flow=0&head_stats=0&word_level=1");
    EXPECT_EQ(asked, cli_payload(a, b, "--no-flow --no-head-stats --word-level"));
    EXPECT_EQ(analysis_of(asked).measures, (std::vector<std::string>{"rollout"}));
    EXPECT_EQ(analysis_of(asked).stats_blocks, 0u);
    EXPECT_TRUE(analysis_of(asked).opens_at_words);

    // Anything but 0 or 1 is refused in one line naming the parameter.
    for (const std::string name : {"rollout", "flow", "head_stats", "word_level"}) {
        const std::string error =
            json::parse(get("/api/payload?trace=" + id + "&" + name + "=yes", 400))["error"];
        EXPECT_EQ(error, "parameter " + name + ": 'yes' is not 0 or 1");
    }
    get("/api/export?format=html&trace=" + id + "&flow=2", 400);
}

TEST_F(Serve, TilesTopKeysAndDifferencesHoldTheExportedValues) {
    const std::string id = trace_id(kTextA, kTextB);
    const std::string other = trace_id("The cat lay on the mat.", kTextB);
    write_file(root_ / "a.npz", get("/api/export?format=npz&trace=" + id));
    write_file(root_ / "b.npz", get("/api/export?format=npz&trace=" + other));
    const attnviz::AttentionTrace a = attnviz::read_npz(root_ / "a.npz");
    const attnviz::AttentionTrace b = attnviz::read_npz(root_ / "b.npz");
    const attnviz::AttentionBlock& block = a.blocks.front();
    const int n = block.n_queries;

    // A tile of layer 2, head 3: rows 1..n-1, keys 2..n.
    json tile = json::parse(get("/api/tile?trace=" + id + "&layer=2&head=3&q0=1&q1=" +
                                std::to_string(n - 1) + "&k0=2&k1=" + std::to_string(n)));
    std::vector<float> values = decode_floats(tile["data"]);
    ASSERT_EQ(tile["rows"], n - 2);
    ASSERT_EQ(tile["cols"], n - 2);
    ASSERT_EQ(values.size(), static_cast<size_t>((n - 2) * (n - 2)));
    for (int q = 1; q < n - 1; ++q)
        for (int k = 2; k < n; ++k)
            ASSERT_EQ(values[(q - 1) * (n - 2) + (k - 2)], block.prob(2, 3, q, k));

    // The mean over heads, in double and rounded once.
    tile = json::parse(get("/api/tile?trace=" + id + "&layer=0&head=mean"));
    values = decode_floats(tile["data"]);
    ASSERT_EQ(values.size(), static_cast<size_t>(n * n));
    for (int q = 0; q < n; ++q)
        for (int k = 0; k < n; ++k) {
            double sum = 0;
            for (int h = 0; h < block.n_heads; ++h) sum += block.prob(0, h, q, k);
            ASSERT_EQ(values[q * n + k], static_cast<float>(sum / block.n_heads));
        }

    // The top 3 keys of each query: the largest probabilities, the rest the mass left.
    const json top = json::parse(get("/api/topk?trace=" + id + "&layer=3&head=1&k=3"));
    ASSERT_EQ(top["rows"].size(), static_cast<size_t>(n));
    for (const json& row : top["rows"]) {
        const int q = row["query"];
        std::vector<std::pair<float, int>> sorted;
        double total = 0;
        for (int k = 0; k < n; ++k) {
            sorted.emplace_back(-block.prob(3, 1, q, k), k);
            total += block.prob(3, 1, q, k);
        }
        std::sort(sorted.begin(), sorted.end());
        double shown = 0;
        for (int i = 0; i < 3; ++i) {
            EXPECT_EQ(row["keys"][i], sorted[i].second);
            EXPECT_EQ(row["probs"][i].get<float>(), -sorted[i].first);
            shown += -sorted[i].first;
        }
        EXPECT_NEAR(row["rest"].get<double>(), total - shown, 1e-12);
    }

    // "sat" and "lay" differ; every other token aligns, and the difference is b - a there.
    const json diff = json::parse(get("/api/diff?a=" + id + "&b=" + other + "&layer=1&head=2"));
    std::vector<std::pair<int, int>> pairs;
    for (const json& pair : diff["pairs"]) pairs.emplace_back(pair[0], pair[1]);
    ASSERT_EQ(pairs.size(), static_cast<size_t>(n - 1));
    for (const auto& [i, j] : pairs)
        EXPECT_EQ(a.sequences[0].tokens[i].text, b.sequences[0].tokens[j].text);
    EXPECT_EQ(
        std::count_if(pairs.begin(), pairs.end(),
                      [&](const auto& p) { return a.sequences[0].tokens[p.first].text == "sat"; }),
        0);
    values = decode_floats(diff["data"]);
    ASSERT_EQ(values.size(), pairs.size() * pairs.size());
    for (size_t r = 0; r < pairs.size(); ++r)
        for (size_t c = 0; c < pairs.size(); ++c)
            ASSERT_EQ(values[r * pairs.size() + c],
                      b.blocks[0].prob(1, 2, pairs[r].second, pairs[c].second) -
                          a.blocks[0].prob(1, 2, pairs[r].first, pairs[c].first));

    get("/api/tile?trace=" + id + "&layer=4&head=0", 400);  // the demo model has 4 layers
    get("/api/tile?trace=" + id + "&layer=0&head=0&q0=0&q1=9999", 400);
}

TEST_F(Serve, ASupersededRequestAnswers409AndTheServerGoesOn) {
    const json newer = {{"model", "demo"}, {"text", kTextA}, {"tab", "tab-1"}, {"seq", 5}};
    EXPECT_EQ(post_trace(newer)->status, 200);
    json older = newer;
    older["seq"] = 4;
    const auto result = post_trace(older);
    EXPECT_EQ(result->status, 409);
    EXPECT_NE(result->body.find("superseded"), std::string::npos);

    // A burst from one tab: the newest answers 200; each older one 200 (done
    // before it was superseded) or 409; other tabs are not affected.
    std::vector<std::future<int>> answers;
    for (int seq = 10; seq < 18; ++seq)
        answers.push_back(std::async(std::launch::async, [seq] {
            const auto r = post_trace({{"model", "demo"},
                                       {"text", kTextA + std::string(seq, '!')},
                                       {"tab", "tab-2"},
                                       {"seq", seq}});
            return r ? r->status : -1;
        }));
    EXPECT_EQ(
        post_trace({{"model", "demo"}, {"text", kTextB}, {"tab", "tab-3"}, {"seq", 0}})->status,
        200);
    for (size_t i = 0; i < answers.size(); ++i) {
        const int status = answers[i].get();
        EXPECT_TRUE(status == 200 || status == 409) << status;
    }
    EXPECT_EQ(
        post_trace({{"model", "demo"}, {"text", kTextB}, {"tab", "tab-2"}, {"seq", 18}})->status,
        200);
    EXPECT_EQ(client().Get("/api/models", with_token())->status, 200);
}

TEST_F(Serve, ASelectiveCaptureKeepsWhatWasAskedAndNoMore) {
    const std::string full = trace_id(kTextA, kTextB);
    write_file(root_ / "full.npz", get("/api/export?format=npz&trace=" + full));
    const attnviz::AttentionBlock block = attnviz::read_npz(root_ / "full.npz").blocks.front();
    // Layer 2 only, each query's 3 largest probabilities, in binary16 (what long inputs keep).
    const auto result = post_trace({{"model", "demo"},
                                    {"text", kTextA},
                                    {"text_pair", kTextB},
                                    {"layers", {2}},
                                    {"top_k", 3},
                                    {"fp16", true}});
    ASSERT_EQ(result->status, 200) << result->body;
    const json answer = json::parse(result->body);
    EXPECT_EQ(answer["blocks"][0]["layer_ids"], json({2}));
    EXPECT_EQ(answer["blocks"][0]["dense"], false);
    const std::string id = answer["trace_id"];
    const int n = block.n_queries;
    const std::vector<float> values =
        decode_floats(json::parse(get("/api/tile?trace=" + id + "&layer=2&head=1"))["data"]);
    ASSERT_EQ(values.size(), static_cast<size_t>(n * n));
    for (int q = 0; q < n; ++q) {
        std::vector<std::pair<float, int>> sorted;
        for (int k = 0; k < n; ++k) sorted.emplace_back(-block.prob(2, 1, q, k), k);
        std::sort(sorted.begin(), sorted.end());
        for (int i = 0; i < n; ++i) {
            const float exact = -sorted[i].first, kept = values[q * n + sorted[i].second];
            if (i < 3)  // binary16 keeps 11 significant bits: relative error at most 2^-11
                EXPECT_NEAR(kept, exact, exact * 0x1p-11f) << q << " " << sorted[i].second;
            else
                EXPECT_EQ(kept, 0.0f);
        }
    }
    // What was not kept is refused, naming what was.
    const std::string refused = get("/api/tile?trace=" + id + "&layer=0&head=1", 400);
    EXPECT_NE(refused.find("keeps layers 2"), std::string::npos) << refused;
    get("/api/payload?trace=" + id, 400);
    // The top keys' "rest" is what a whole row (1) leaves.
    const json top = json::parse(get("/api/topk?trace=" + id + "&layer=2&head=1&k=2"));
    for (const json& row : top["rows"])
        EXPECT_NEAR(row["rest"].get<double>(),
                    1.0 - row["probs"][0].get<double>() - row["probs"][1].get<double>(), 1e-12);
}

TEST_F(Serve, ListsItsModels) {
    const json models = json::parse(get("/api/models"))["models"];
    ASSERT_EQ(models.size(), 2u);
    EXPECT_EQ(models[0]["id"], "demo");
    EXPECT_EQ(models[0]["architecture"], "bert");
    EXPECT_EQ(models[0]["n_layers"], 4);
    EXPECT_EQ(models[0]["n_heads"], 4);
    EXPECT_EQ(models[0]["max_tokens"], 128);
    EXPECT_EQ(models[1]["id"], "broken");
}

}  // namespace
