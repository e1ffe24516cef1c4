// resolve_model against a fake hub on 127.0.0.1: the cache layout must be
// exactly huggingface_hub's, downloads resume, corrupt bytes never enter the
// cache, and offline mode never connects.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "attnviz/error.h"
#include "attnviz/hub.h"
#include "hub/cache.h"
#include "hub/fake_hub.h"
#include "io/files.h"

namespace fs = std::filesystem;
using attnviz::Error;
using attnviz::HubOptions;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string random_bytes(size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(generator() & 0xff);
    return bytes;
}

// A small repo shaped like bert-base-uncased's: what attnviz needs, and files it must skip.
fake_hub::Repo tiny_bert() {
    fake_hub::Repo repo;
    repo.commit = kCommit;
    repo.files["config.json"] = {R"({"model_type": "bert", "num_hidden_layers": 2})", false};
    repo.files["tokenizer.json"] = {R"({"version": "1.0"})", false};
    repo.files["tokenizer_config.json"] = {R"({"do_lower_case": true})", false};
    repo.files["vocab.txt"] = {"[PAD]\n[UNK]\n[CLS]\n[SEP]\n", false};
    repo.files["README.md"] = {"# tiny", false};
    repo.files["model.safetensors"] = {random_bytes(300000, 1), true};
    repo.files["pytorch_model.bin"] = {random_bytes(1000, 2), true};
    repo.files["tf_model.h5"] = {random_bytes(1000, 3), true};
    return repo;
}

std::string read_link(const fs::path& link) { return fs::read_symlink(link).string(); }

std::set<std::string> names_in(const fs::path& dir) {
    std::set<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error))
        names.insert(entry.path().filename().string());
    return names;
}

class Hub : public ::testing::Test {
protected:
    void SetUp() override {
        // Nothing from the user's environment may change what the tests see.
        for (const char* name : {"HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_CACHE",
                                 "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH"})
            unsetenv(name);
        const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
        root = fs::temp_directory_path() /
               ("attnviz_hub_test_" + std::to_string(getpid()) + "_" + test->name());
        fs::remove_all(root);
        fs::create_directories(root);
        setenv("HF_HOME", (root / "home").c_str(), 1);
        options.cache_dir = root / "cache";
        options.endpoint = server.endpoint();
        options.show_progress = false;
    }
    void TearDown() override { fs::remove_all(root); }

    fs::path repo_dir(const std::string& repo) {
        return attnviz::hub::repo_folder(options.cache_dir, repo);
    }
    std::vector<std::string> requested_paths() {
        std::vector<std::string> paths;
        for (const auto& request : server.requests()) paths.push_back(request.path);
        return paths;
    }

    fake_hub::Server server;
    fs::path root;
    HubOptions options;
};

TEST_F(Hub, DownloadMakesHuggingfaceHubCacheLayout) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);

    const fs::path dir = root / "cache" / "models--org--tiny-bert";
    EXPECT_EQ(folder, dir / "snapshots" / kCommit);
    EXPECT_EQ(names_in(dir), (std::set<std::string>{"blobs", "refs", "snapshots"}));
    EXPECT_EQ(attnviz::io::read_file(dir / "refs" / "main"), kCommit);
    EXPECT_EQ(names_in(dir / "snapshots"), std::set<std::string>{kCommit});

    // Blobs are named by etag: the git blob sha1 of small files, the sha256 of LFS files.
    std::set<std::string> expected_blobs;
    const std::vector<std::string> wanted = {
        "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "model.safetensors"};
    for (const std::string& name : wanted) {
        const fake_hub::File& file = repo.files.at(name);
        const std::string etag =
            file.lfs ? fake_hub::sha256(file.bytes) : fake_hub::git_blob_sha1(file.bytes);
        expected_blobs.insert(etag);
        const fs::path link = folder / name;
        ASSERT_TRUE(fs::is_symlink(link)) << name;
        EXPECT_EQ(read_link(link), "../../blobs/" + etag) << name;
        EXPECT_EQ(attnviz::io::read_file(link), file.bytes) << name;
    }
    EXPECT_EQ(names_in(dir / "blobs"), expected_blobs);
    EXPECT_EQ(names_in(folder), std::set<std::string>(wanted.begin(), wanted.end()));
    EXPECT_TRUE(fs::is_directory(root / "cache" / ".locks" / "models--org--tiny-bert"));

    // Only the needed files were fetched: not the README, the .bin or the .h5.
    for (const std::string& path : requested_paths()) {
        EXPECT_THAT(path, ::testing::Not(HasSubstr("README")));
        EXPECT_THAT(path, ::testing::Not(HasSubstr("pytorch_model.bin")));
        EXPECT_THAT(path, ::testing::Not(HasSubstr("tf_model")));
        EXPECT_NE(path, "/cdn/" + fake_hub::sha256(repo.files.at("pytorch_model.bin").bytes));
    }
}

// bert-base-uncased now lives at google-bert/bert-base-uncased: the hub
// redirects, and the cache keeps the name the user gave, as huggingface_hub does.
TEST_F(Hub, RenamedRepoFollowsTheHubsRedirect) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("google-bert/bert-base-uncased", repo);
    server.renamed["bert-base-uncased"] = "google-bert/bert-base-uncased";
    const fs::path folder = attnviz::resolve_model("bert-base-uncased", options);
    EXPECT_EQ(folder, root / "cache" / "models--bert-base-uncased" / "snapshots" / kCommit);
    EXPECT_EQ(attnviz::io::read_file(folder / "config.json"), repo.files.at("config.json").bytes);
    EXPECT_EQ(attnviz::io::read_file(folder / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    bool redirected = false;
    for (const std::string& path : requested_paths())
        redirected |= path == "/google-bert/bert-base-uncased/resolve/" + kCommit + "/config.json";
    EXPECT_TRUE(redirected);
}

TEST_F(Hub, CachedModelIsUsedWithoutTheNetwork) {
    server.add_repo("org/tiny-bert", tiny_bert());
    const fs::path first = attnviz::resolve_model("org/tiny-bert", options);
    const size_t requests = server.request_count();
    EXPECT_EQ(attnviz::resolve_model("org/tiny-bert", options), first);
    EXPECT_EQ(server.request_count(), requests);
}

// `download` asks the hub for the revision's commit every time: nothing more
// when the snapshot is whole, a new snapshot (the old one kept) when main moved.
TEST_F(Hub, DownloadFollowsTheRevision) {
    fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const fs::path first = attnviz::download_model("org/tiny-bert", options);
    size_t before = server.request_count();
    EXPECT_EQ(attnviz::download_model("org/tiny-bert", options), first);
    EXPECT_EQ(requested_paths().size(), before + 1);
    EXPECT_THAT(requested_paths().back(), StartsWith("/api/models/org/tiny-bert/revision/main"));

    const std::string new_commit = "fedcba9876543210fedcba9876543210fedcba98";
    repo.commit = new_commit;
    repo.files["config.json"].bytes = R"({"model_type": "bert", "num_hidden_layers": 3})";
    server.add_repo("org/tiny-bert", repo);
    before = server.request_count();
    const fs::path second = attnviz::download_model("org/tiny-bert", options);
    EXPECT_EQ(second, repo_dir("org/tiny-bert") / "snapshots" / new_commit);
    EXPECT_EQ(attnviz::io::read_file(repo_dir("org/tiny-bert") / "refs" / "main"), new_commit);
    EXPECT_EQ(attnviz::io::read_file(second / "config.json"), repo.files["config.json"].bytes);
    EXPECT_TRUE(fs::exists(first / "config.json"));  // the old snapshot stays
    // Unchanged blobs are linked again, not downloaded again.
    for (size_t i = before; i < server.requests().size(); ++i)
        EXPECT_THAT(server.requests()[i].path, ::testing::Not(StartsWith("/cdn/")));
    EXPECT_EQ(read_link(second / "model.safetensors"), read_link(first / "model.safetensors"));
    EXPECT_EQ(attnviz::resolve_model("org/tiny-bert", options), second);
}

TEST_F(Hub, OfflineModeNeverConnects) {
    server.add_repo("org/tiny-bert", tiny_bert());
    options.offline = true;
    try {
        attnviz::resolve_model("org/tiny-bert", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("org/tiny-bert"));
        EXPECT_THAT(e.what(), HasSubstr("offline"));
        EXPECT_THAT(e.what(), HasSubstr("--model"));
    }
    options.offline = false;
    setenv("HF_HUB_OFFLINE", "1", 1);
    EXPECT_THROW(attnviz::resolve_model("org/tiny-bert", options), Error);
    EXPECT_THROW(attnviz::download_model("org/tiny-bert", options), Error);
    EXPECT_EQ(server.request_count(), 0u);
    EXPECT_FALSE(fs::exists(repo_dir("org/tiny-bert")));

    // A cached model still resolves offline, and still without a connection.
    unsetenv("HF_HUB_OFFLINE");
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    const size_t requests = server.request_count();
    setenv("HF_HUB_OFFLINE", "1", 1);
    EXPECT_EQ(attnviz::resolve_model("org/tiny-bert", options), folder);
    EXPECT_EQ(server.request_count(), requests);
    unsetenv("HF_HUB_OFFLINE");
}

// Two downloads of one model at once (two programs, or attnviz and Python):
// the blob lock lets one fetch each blob, the other finds it in place.
TEST_F(Hub, ConcurrentDownloadsShareTheBlobs) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    std::vector<fs::path> folders(4);
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < folders.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                folders[i] = attnviz::resolve_model("org/tiny-bert", options);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (std::thread& thread : threads) thread.join();
    for (size_t i = 0; i < folders.size(); ++i) {
        EXPECT_EQ(errors[i], "");
        EXPECT_EQ(folders[i], repo_dir("org/tiny-bert") / "snapshots" / kCommit);
    }
    EXPECT_EQ(attnviz::io::read_file(folders[0] / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    int cdn_gets = 0;
    for (const auto& request : server.requests())
        cdn_gets += request.path.rfind("/cdn/", 0) == 0 && request.method == "GET";
    EXPECT_EQ(cdn_gets, 1);
    std::set<std::string> leftovers;
    for (const auto& entry : fs::recursive_directory_iterator(repo_dir("org/tiny-bert")))
        if (entry.path().string().find(".attnviz-") != std::string::npos ||
            entry.path().string().ends_with(".incomplete"))
            leftovers.insert(entry.path().string());
    EXPECT_EQ(leftovers, std::set<std::string>{});
}

TEST_F(Hub, DroppedConnectionResumesWithRange) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    server.drop_next_cdn_gets = 1;
    server.drop_after_bytes = 100000;
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(attnviz::io::read_file(folder / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    const std::string cdn = "/cdn/" + fake_hub::sha256(repo.files.at("model.safetensors").bytes);
    std::vector<std::string> ranges;
    for (const auto& request : server.requests())
        if (request.path == cdn && request.method == "GET") ranges.push_back(request.range);
    EXPECT_EQ(ranges, (std::vector<std::string>{"", "bytes=100000-"}));
}

TEST_F(Hub, InterruptedDownloadResumesInTheNextRun) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const std::string hash = fake_hub::sha256(repo.files.at("model.safetensors").bytes);
    server.drop_next_cdn_gets = 100;  // every attempt of this run breaks off
    server.drop_after_bytes = 120000;
    try {
        attnviz::resolve_model("org/tiny-bert", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("model.safetensors"));
        EXPECT_THAT(e.what(), HasSubstr("resume"));
    }
    const fs::path blobs = repo_dir("org/tiny-bert") / "blobs";
    EXPECT_EQ(fs::file_size(blobs / (hash + ".incomplete")), 120000u);
    EXPECT_FALSE(fs::exists(blobs / hash));
    EXPECT_FALSE(
        fs::exists(repo_dir("org/tiny-bert") / "snapshots" / kCommit / "model.safetensors"));

    server.drop_next_cdn_gets = 0;
    const size_t before = server.request_count();
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(attnviz::io::read_file(folder / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    EXPECT_FALSE(fs::exists(blobs / (hash + ".incomplete")));
    const auto requests = server.requests();
    std::vector<std::string> ranges;
    for (size_t i = before; i < requests.size(); ++i)
        if (requests[i].path == "/cdn/" + hash && requests[i].method == "GET")
            ranges.push_back(requests[i].range);
    EXPECT_EQ(ranges, std::vector<std::string>{"bytes=120000-"});
}

TEST_F(Hub, BusyServerIsTriedAgain) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    server.busy_next_cdn_gets = 2;
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(attnviz::io::read_file(folder / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    server.busy_next_cdn_gets = 100;
    fs::remove_all(options.cache_dir);
    EXPECT_THAT([&] { attnviz::resolve_model("org/tiny-bert", options); },
                ::testing::ThrowsMessage<Error>(HasSubstr("HTTP 503")));
}

// A partial file longer than the blob is no prefix of it: it is started afresh.
TEST_F(Hub, OverlongPartialFileStartsAgain) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const std::string hash = fake_hub::sha256(repo.files.at("model.safetensors").bytes);
    fs::create_directories(repo_dir("org/tiny-bert") / "blobs");
    attnviz::io::write_file(repo_dir("org/tiny-bert") / "blobs" / (hash + ".incomplete"),
                            std::string(400000, 'x'));
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(fake_hub::sha256(attnviz::io::read_file(folder / "model.safetensors")), hash);
}

TEST_F(Hub, CorruptedDownloadNeverEntersTheCache) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const std::string hash = fake_hub::sha256(repo.files.at("model.safetensors").bytes);
    std::string corrupted = repo.files.at("model.safetensors").bytes;
    corrupted[150000] ^= 0x20;
    server.corrupt[hash] = corrupted;
    try {
        attnviz::resolve_model("org/tiny-bert", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("corrupted"));
        EXPECT_THAT(e.what(), HasSubstr(hash));
        EXPECT_THAT(e.what(), HasSubstr(fake_hub::sha256(corrupted)));
    }
    const fs::path dir = repo_dir("org/tiny-bert");
    EXPECT_FALSE(fs::exists(dir / "blobs" / hash));
    EXPECT_FALSE(fs::exists(dir / "blobs" / (hash + ".incomplete")));
    EXPECT_FALSE(fs::exists(dir / "snapshots" / kCommit / "model.safetensors"));
    EXPECT_FALSE(fs::exists(dir / "refs" / "main"));

    // Once the hub serves the right bytes, the same call succeeds.
    server.corrupt.clear();
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(fake_hub::sha256(attnviz::io::read_file(folder / "model.safetensors")), hash);
}

TEST_F(Hub, ShardedSafetensorsFetchEveryShard) {
    fake_hub::Repo repo = tiny_bert();
    repo.files.erase("model.safetensors");
    repo.files["model.safetensors.index.json"] = {
        R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})",
        false};
    repo.files["model-00001-of-00002.safetensors"] = {random_bytes(5000, 4), true};
    repo.files["model-00002-of-00002.safetensors"] = {random_bytes(6000, 5), true};
    server.add_repo("org/sharded", repo);
    const fs::path folder = attnviz::resolve_model("org/sharded", options);
    for (const char* name : {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors"})
        EXPECT_EQ(attnviz::io::read_file(folder / name), repo.files.at(name).bytes) << name;
    EXPECT_FALSE(fs::exists(folder / "pytorch_model.bin"));
}

TEST_F(Hub, PytorchBinWhenThereIsNoSafetensors) {
    fake_hub::Repo repo = tiny_bert();
    repo.files.erase("model.safetensors");
    server.add_repo("org/old", repo);
    const fs::path folder = attnviz::resolve_model("org/old", options);
    EXPECT_EQ(attnviz::io::read_file(folder / "pytorch_model.bin"),
              repo.files.at("pytorch_model.bin").bytes);
}

TEST_F(Hub, MirrorWithoutTheApiIsProbedFileByFile) {
    server.api_enabled = false;
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(folder, repo_dir("org/tiny-bert") / "snapshots" / kCommit);
    EXPECT_EQ(attnviz::io::read_file(folder / "model.safetensors"),
              repo.files.at("model.safetensors").bytes);
    EXPECT_EQ(names_in(folder),
              (std::set<std::string>{"config.json", "tokenizer.json", "tokenizer_config.json",
                                     "vocab.txt", "model.safetensors"}));
}

// What `attnviz tokenize` asks for: the tokenizer without the weights, from
// the cache (as Python's AutoTokenizer leaves it) or from the hub.
TEST_F(Hub, TokenizerOnlySkipsTheWeights) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    options.tokenizer_only = true;
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(names_in(folder), (std::set<std::string>{"config.json", "tokenizer.json",
                                                       "tokenizer_config.json", "vocab.txt"}));
    for (const std::string& path : requested_paths()) {
        EXPECT_THAT(path, ::testing::Not(HasSubstr("model.safetensors")));
        EXPECT_THAT(path, ::testing::Not(StartsWith("/cdn/")));
    }
    const size_t requests = server.request_count();
    EXPECT_EQ(attnviz::resolve_model("org/tiny-bert", options), folder);
    EXPECT_EQ(server.request_count(), requests);
    // The whole model is still wanted by everything else.
    options.tokenizer_only = false;
    options.offline = true;
    EXPECT_THAT([&] { attnviz::resolve_model("org/tiny-bert", options); },
                ::testing::ThrowsMessage<Error>(HasSubstr("model.safetensors")));
}

// check_config sees config.json before any weights are fetched, and its
// refusal fetches none, from the hub's API or from a mirror without it.
TEST_F(Hub, CheckConfigRefusesBeforeTheWeights) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    std::vector<std::string> seen;
    options.check_config = [&](const fs::path& folder) {
        seen.push_back(attnviz::io::read_file(folder / "config.json"));
        throw Error("refused");
    };
    for (const bool api : {true, false}) {
        server.api_enabled = api;
        EXPECT_THAT([&] { attnviz::resolve_model("org/tiny-bert", options); },
                    ::testing::ThrowsMessage<Error>(::testing::StrEq("refused")));
        EXPECT_THAT([&] { attnviz::download_model("org/tiny-bert", options); },
                    ::testing::ThrowsMessage<Error>(::testing::StrEq("refused")));
    }
    EXPECT_EQ(seen, std::vector<std::string>(4, repo.files.at("config.json").bytes));
    for (const std::string& path : requested_paths()) {
        EXPECT_THAT(path, ::testing::Not(HasSubstr("model.safetensors")));
        EXPECT_THAT(path, ::testing::Not(HasSubstr("pytorch_model.bin")));
        EXPECT_THAT(path, ::testing::Not(StartsWith("/cdn/")));
    }
    EXPECT_FALSE(fs::exists(repo_dir("org/tiny-bert") / "refs" / "main"));

    // Without weights to fetch there is nothing to refuse.
    options.tokenizer_only = true;
    EXPECT_TRUE(fs::exists(attnviz::resolve_model("org/tiny-bert", options) / "config.json"));
    EXPECT_EQ(seen.size(), 4u);
}

TEST_F(Hub, CommitRevisionNeedsNoRef) {
    server.add_repo("org/tiny-bert", tiny_bert());
    const fs::path folder = attnviz::resolve_model("org/tiny-bert@" + kCommit, options);
    EXPECT_EQ(folder, repo_dir("org/tiny-bert") / "snapshots" / kCommit);
    EXPECT_FALSE(fs::exists(repo_dir("org/tiny-bert") / "refs"));
}

TEST_F(Hub, UnknownModelSays404Style) {
    try {
        attnviz::resolve_model("org/no-such-model", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("no model org/no-such-model"));
        EXPECT_THAT(e.what(), HasSubstr("HTTP 401"));
    }
    server.add_repo("org/tiny-bert", tiny_bert());
    EXPECT_THAT([&] { attnviz::resolve_model("org/tiny-bert@v9", options); },
                ::testing::ThrowsMessage<Error>(HasSubstr("has no revision 'v9'")));
}

TEST_F(Hub, MissingFileSays404) {
    server.api_enabled = false;
    fake_hub::Repo repo = tiny_bert();
    repo.files.erase("config.json");
    server.add_repo("org/no-config", repo);
    EXPECT_THAT([&] { attnviz::resolve_model("org/no-config", options); },
                ::testing::ThrowsMessage<Error>(
                    HasSubstr("has no file config.json at revision main (HTTP 404)")));
}

TEST_F(Hub, GatedModelNeedsToken) {
    fake_hub::Repo repo = tiny_bert();
    repo.gated = true;
    server.add_repo("org/gated", repo);
    EXPECT_THAT([&] { attnviz::resolve_model("org/gated", options); },
                ::testing::ThrowsMessage<Error>(
                    AllOf(HasSubstr("set HF_TOKEN"), HasSubstr("log in with `hf auth login`"))));
    options.token = "wrong";
    EXPECT_THAT([&] { attnviz::resolve_model("org/gated", options); },
                ::testing::ThrowsMessage<Error>(HasSubstr("HTTP 403")));

    // HF_TOKEN from the environment works, and never goes to a CDN on another origin.
    options.token.clear();
    setenv("HF_TOKEN", server.token.c_str(), 1);
    server.cdn_host = "localhost";
    const size_t before = server.request_count();
    const fs::path folder = attnviz::resolve_model("org/gated", options);
    unsetenv("HF_TOKEN");
    EXPECT_TRUE(fs::exists(folder / "model.safetensors"));
    const auto requests = server.requests();
    int cdn_requests = 0;
    for (size_t i = before; i < requests.size(); ++i) {
        if (requests[i].path.rfind("/cdn/", 0) == 0) {
            ++cdn_requests;
            EXPECT_EQ(requests[i].authorization, "");
        } else {
            EXPECT_EQ(requests[i].authorization, "Bearer " + server.token) << requests[i].path;
        }
    }
    EXPECT_EQ(cdn_requests, 1);

    // The token file `hf auth login` writes (HF_HOME/token) works too.
    fs::remove_all(options.cache_dir);
    fs::create_directories(root / "home");
    attnviz::io::write_file(root / "home" / "token", server.token + "\n");
    EXPECT_TRUE(fs::exists(attnviz::resolve_model("org/gated", options) / "model.safetensors"));
}

TEST_F(Hub, NoNetworkNamesTheModelAndTheWayOut) {
    options.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
    try {
        attnviz::resolve_model("bert-base-uncased", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("cannot reach http://127.0.0.1:1"));
        EXPECT_THAT(e.what(), HasSubstr("bert-base-uncased"));
        EXPECT_THAT(e.what(), HasSubstr("attnviz download bert-base-uncased"));
        // The Hugging Face CLI is `hf` now; huggingface-cli is deprecated.
        EXPECT_THAT(e.what(), HasSubstr("`hf download bert-base-uncased`"));
        EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("huggingface-cli")));
        EXPECT_THAT(e.what(), HasSubstr("--model"));
    }
}

TEST_F(Hub, FoldersAreUsedAsTheyAre) {
    const fs::path folder = root / "my-model";
    fs::create_directories(folder);
    EXPECT_EQ(attnviz::resolve_model(folder.string(), options), folder);
    EXPECT_THAT([&] { attnviz::resolve_model((root / "missing").string(), options); },
                ::testing::ThrowsMessage<Error>(HasSubstr("no such folder")));
    EXPECT_EQ(server.request_count(), 0u);
}

// A trace's provenance: the commit of the snapshot a model resolves to, and
// nothing for a folder outside the cache.
TEST_F(Hub, SnapshotCommitNamesTheResolvedRevision) {
    server.add_repo("org/tiny-bert", tiny_bert());
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    EXPECT_EQ(attnviz::snapshot_commit(folder), kCommit);
    EXPECT_EQ(attnviz::snapshot_commit(folder.string() + "/"), kCommit);
    EXPECT_EQ(attnviz::snapshot_commit(folder / "." / ""), kCommit);
    EXPECT_EQ(attnviz::snapshot_commit(root / "my-model"), "");
    EXPECT_EQ(attnviz::snapshot_commit(root / "snapshots" / kCommit), "");  // not a models-- repo
    EXPECT_EQ(attnviz::snapshot_commit(repo_dir("org/tiny-bert")), "");
}

TEST(RepoId, ParsesAsHuggingfaceHubDoes) {
    EXPECT_EQ(attnviz::parse_repo_id("bert-base-uncased").repo, "bert-base-uncased");
    EXPECT_EQ(attnviz::parse_repo_id("bert-base-uncased").revision, "main");
    const attnviz::RepoId id = attnviz::parse_repo_id("google-bert/bert-base-uncased@v1.0");
    EXPECT_EQ(id.repo, "google-bert/bert-base-uncased");
    EXPECT_EQ(id.revision, "v1.0");
    EXPECT_EQ(attnviz::parse_repo_id("org/name@refs/pr/1").revision, "refs/pr/1");
    for (const char* bad :
         {"a/b/c", "a--b", "-a", "a.", "a..b", "a b", "x@", "x@../y", "", "org/name.git"})
        EXPECT_THROW(attnviz::parse_repo_id(bad), Error) << bad;
}

TEST(CacheDir, FollowsHuggingfaceHubEnvironment) {
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    setenv("HF_HOME", "/tmp/hf-home", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), fs::path("/tmp/hf-home/hub"));
    setenv("HF_HUB_CACHE", "/tmp/hub-cache", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), fs::path("/tmp/hub-cache"));
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), fs::path("/tmp/xdg/huggingface/hub"));
    setenv("HF_HOME", "/tmp/hf-home", 1);  // HF_HOME over XDG_CACHE_HOME
    EXPECT_EQ(attnviz::hub_cache_dir(), fs::path("/tmp/hf-home/hub"));
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
    const fs::path home = std::getenv("HOME");
    EXPECT_EQ(attnviz::hub_cache_dir(), home / ".cache" / "huggingface" / "hub");
    // A leading ~ is the home folder, as Python's os.path.expanduser makes it.
    setenv("HF_HOME", "~/hf", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), home / "hf" / "hub");
    setenv("HF_HUB_CACHE", "~", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), home);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", "~/xdg", 1);
    EXPECT_EQ(attnviz::hub_cache_dir(), home / "xdg" / "huggingface" / "hub");
    unsetenv("XDG_CACHE_HOME");
}

TEST(WantedFiles, PrefersSafetensorsAndSkipsTheRest) {
    EXPECT_EQ(attnviz::hub::wanted_files(
                  {"README.md", "pytorch_model.bin", "config.json", "model.safetensors",
                   "vocab.txt", "tf_model.h5", "flax_model.msgpack", "merges.txt", "vocab.json"},
                  true),
              (std::vector<std::string>{"config.json", "vocab.txt", "vocab.json", "merges.txt",
                                        "model.safetensors"}));
    EXPECT_EQ(
        attnviz::hub::wanted_files({"config.json", "pytorch_model.bin", "spiece.model"}, true),
        (std::vector<std::string>{"config.json", "spiece.model", "pytorch_model.bin"}));
    EXPECT_EQ(
        attnviz::hub::wanted_files({"config.json", "pytorch_model.bin", "spiece.model"}, false),
        (std::vector<std::string>{"config.json", "spiece.model"}));
}

TEST_F(Hub, ListsCachedModelsWithSizes) {
    const fake_hub::Repo repo = tiny_bert();
    server.add_repo("org/tiny-bert", repo);
    attnviz::resolve_model("org/tiny-bert", options);
    const auto models = attnviz::list_cached_models(options.cache_dir);
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0].repo, "org/tiny-bert");
    uint64_t expected = 0;
    for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                             "model.safetensors"})
        expected += repo.files.at(name).bytes.size();
    EXPECT_EQ(models[0].size_bytes, expected);
    EXPECT_EQ(models[0].refs.at("main"), kCommit);
    EXPECT_EQ(models[0].snapshots, std::vector<std::string>{kCommit});
    // The files' names, not the blobs the snapshot's links point at.
    EXPECT_EQ(models[0].files,
              (std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json", "vocab.txt"}));
    EXPECT_EQ(attnviz::format_size(438000000), "438.0 MB");
    EXPECT_EQ(attnviz::format_size(570), "570 B");
}

// refs/<revision> becomes a path (snapshots/<commit>): a ref holding "../.." or
// an absolute path once loaded a model from outside the cache. It must be a
// commit id, as the hub's answers are.
TEST_F(Hub, RefThatIsNotACommitIdIsRefused) {
    server.add_repo("org/tiny-bert", tiny_bert());
    const fs::path folder = attnviz::resolve_model("org/tiny-bert", options);
    // A complete model elsewhere, where the bad refs point.
    const fs::path outside = root / "outside";
    fs::create_directories(outside.parent_path());
    fs::copy(folder, outside, fs::copy_options::recursive);
    const fs::path ref = repo_dir("org/tiny-bert") / "refs" / "main";
    options.offline = true;
    for (const std::string& bad : {std::string("../../../outside"), outside.string(),
                                   std::string("main"), kCommit.substr(0, 39), kCommit + "0",
                                   std::string("0123456789ABCDEF0123456789abcdef01234567")}) {
        attnviz::io::write_file(ref, bad + "\n");
        try {
            const fs::path loaded = attnviz::resolve_model("org/tiny-bert", options);
            FAIL() << bad << " loaded " << loaded;
        } catch (const Error& e) {
            EXPECT_THAT(e.what(), AllOf(HasSubstr(ref.string()), HasSubstr("not a commit id")))
                << bad;
        }
    }
    attnviz::io::write_file(ref, kCommit + "\n");
    EXPECT_EQ(attnviz::resolve_model("org/tiny-bert", options), folder);
}

// The same rule for the hub's answers, so that no ref attnviz writes is one it refuses to read.
TEST_F(Hub, HubCommitMustBeACommitId) {
    fake_hub::Repo repo = tiny_bert();
    repo.commit = "abc123";
    server.add_repo("org/tiny-bert", repo);
    try {
        attnviz::resolve_model("org/tiny-bert", options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("'abc123'"));
    }
    EXPECT_FALSE(fs::exists(repo_dir("org/tiny-bert") / "refs" / "main"));
}

}  // namespace
