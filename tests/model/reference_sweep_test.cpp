// The reference-fixture sweep's check (tools/reference/sweep.py writes the
// cases and runs this test with ATTNVIZ_SWEEP_DIR; the test discovery in
// CMakeLists.txt leaves it out, as it needs those cases). Each case either matches its reference
// within 1e-5 on every attention probability, or is refused with a one-line Error saying "not
// supported": where transformers itself refuses the config, attnviz must refuse it too. The test
// writes results.json (one entry per case) for the script's table.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "arch_reference_check.h"
#include "attnviz/error.h"
#include "io/files.h"
#include "model/network.h"

namespace attnviz::model {
namespace {

namespace fs = std::filesystem;
using testing::reference_floats;
using testing::reference_ids;

Encoding encoding_of(const std::vector<int32_t>& ids) {
    Encoding e;
    e.ids = ids;
    e.type_ids.assign(ids.size(), 0);
    e.attention_mask.assign(ids.size(), 1);
    return e;
}

// Runs one case; returns {status, message, largest |attention - reference|}.
nlohmann::json run_case(const nlohmann::json& c) {
    const fs::path folder = c.at("folder").get<std::string>();
    const bool transformers_refuses = c.contains("transformers_refuses");
    nlohmann::json result = {{"name", c.at("name")}, {"arch", c.at("arch")}};
    try {
        LoadedNetwork loaded = load_network(folder);
        if (transformers_refuses) {
            result["status"] = "attnviz ran what transformers refuses";
            result["message"] = c.at("transformers_refuses");
            return result;
        }
        io::TensorSet ref = io::TensorSet::open_safetensors(folder / "reference.safetensors");
        Encoding source = encoding_of(reference_ids(ref, "input_ids")), target;
        ForwardInput input{&source, nullptr};
        if (ref.find("decoder_input_ids")) {
            target = encoding_of(reference_ids(ref, "decoder_input_ids"));
            input.decoder = &target;
        }
        RunOptions options;
        options.threads = 1;
        ForwardOutput out = run_network(*loaded.network, input, options);
        double worst = 0;
        for (const AttentionBlock& block : out.blocks) {
            const std::string name = out.blocks.size() == 1 ? "self" : block.name;
            const std::span<const float> want = reference_floats(ref, name + ".attentions");
            if (want.size() != block.probs.size())
                throw std::runtime_error(block.name + ": " + std::to_string(block.probs.size()) +
                                         " probabilities, the reference has " +
                                         std::to_string(want.size()));
            for (size_t i = 0; i < want.size(); ++i) {
                const double d = std::fabs(static_cast<double>(block.probs[i]) - want[i]);
                if (!(d <= worst)) worst = d;  // NaN counts as worst
            }
        }
        result["max_diff"] = worst;
        result["status"] = worst <= testing::kArchTolerance ? "match" : "MISMATCH";
    } catch (const Error& error) {
        // a deliberate refusal says so in one line; any other Error is a failure
        const std::string message = error.what();
        const bool one_line = message.find('\n') == std::string::npos;
        const bool deliberate =
            transformers_refuses || message.find("not supported") != std::string::npos;
        result["status"] = one_line && deliberate ? "refused" : "error";
        result["message"] = message.substr(message.find(": ") + 2);  // without the folder
    } catch (const std::exception& error) {
        result["status"] = "error";
        result["message"] = error.what();
    }
    return result;
}

TEST(ReferenceSweep, Cases) {
    const char* dir = std::getenv("ATTNVIZ_SWEEP_DIR");
    ASSERT_NE(dir, nullptr) << "run tools/reference/sweep.py, which sets ATTNVIZ_SWEEP_DIR";
    const nlohmann::json cases = io::read_json(fs::path(dir) / "manifest.json");
    ASSERT_FALSE(cases.empty());
    nlohmann::json results = nlohmann::json::array();
    for (const nlohmann::json& c : cases) {
        nlohmann::json result = run_case(c);
        const std::string status = result.at("status");
        EXPECT_TRUE(status == "match" || status == "refused")
            << c.at("name").get<std::string>() << ": " << status << " " << result.dump();
        if (c.contains("transformers_refuses")) {
            EXPECT_EQ(status, "refused") << c.at("name");
        }
        results.push_back(std::move(result));
    }
    io::write_file(fs::path(dir) / "results.json", results.dump(1));
}

}  // namespace
}  // namespace attnviz::model
