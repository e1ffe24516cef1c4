// Writes the pages the browser tests open: each synthetic trace of
// tests/viz/synthetic_traces.h as a whole page (<name>.html) with a JSON
// sidecar of its exact values (<name>.json: probabilities, queries, keys, score
// bias), one page holding several fragments (fragments.html) and a
// 512-token page (long512.html). Usage: make_pages <output folder>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "io/files.h"
#include "viz/synthetic_traces.h"

namespace {

nlohmann::json sidecar(const attnviz::AttentionTrace& trace) {
    nlohmann::json out;
    out["model"] = trace.model_id;
    for (const attnviz::TokenSequence& sequence : trace.sequences) {
        nlohmann::json tokens = nlohmann::json::array();
        for (const attnviz::TraceToken& token : sequence.tokens)
            tokens.push_back(
                {{"raw", token.text}, {"display", token.display}, {"special", token.special}});
        out["sequences"].push_back({{"name", sequence.name}, {"tokens", tokens}});
    }
    for (const attnviz::AttentionBlock& block : trace.blocks) {
        // JSON has no -inf: a masked key's bias is null.
        nlohmann::json bias = nlohmann::json::array();
        for (float value : block.score_bias)
            bias.push_back(std::isfinite(value) ? nlohmann::json(value) : nlohmann::json());
        out["blocks"].push_back(
            {{"name", block.name},
             {"causal", block.causal},
             {"layers", block.n_layers},
             {"heads", block.n_heads},
             {"queries", block.n_queries},
             {"keys", block.n_keys},
             {"headDim", block.head_dim},
             {"scoreScale", block.score_scale},
             {"probs", block.probs},
             {"queryVectors", block.queries},
             {"keyVectors", block.keys},
             {"decomposable", block.score_form == attnviz::ScoreForm::scaled_dot_plus_bias},
             {"scoreBiasLayers", block.score_bias_layers},
             {"scoreBias", bias}});
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_pages <output folder>\n";
        return 2;
    }
    try {
        const std::filesystem::path folder = argv[1];
        std::filesystem::create_directories(folder);
        attnviz::ViewOptions all, head_only;
        all.views = {attnviz::View::head, attnviz::View::model, attnviz::View::neuron,
                     attnviz::View::matrix};
        head_only.views = {attnviz::View::head};
        const std::pair<const char*, attnviz::AttentionTrace> pages[] = {
            {"pair", attnviz::testing::pair_trace()},
            {"causal", attnviz::testing::causal_trace()},
            {"encdec", attnviz::testing::encoder_decoder_trace()},
            {"hostile", attnviz::testing::hostile_trace()},
            {"heads16", attnviz::testing::many_heads_trace()},
            {"t5bias", attnviz::testing::position_bias_trace()},
            {"relkey", attnviz::testing::relative_key_trace()},
        };
        for (const auto& [name, trace] : pages) {
            attnviz::io::write_file(folder / (std::string(name) + ".html"),
                                    attnviz::render_html(trace, all));
            attnviz::io::write_file(folder / (std::string(name) + ".json"), sidecar(trace).dump());
        }
        // BERT-base-shaped, 512 tokens (no sidecar: its values would be 400 MB of
        // JSON): the matrix view's zoom, pan, labels and fit, the neuron view's
        // columns, at a researcher's length.
        attnviz::io::write_file(
            folder / "long512.html",
            attnviz::render_html(attnviz::testing::sized_trace(12, 12, 512, false, 64, true), all));
        std::string page =
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>fragments</title></head><body>\n<h1>Three fragments</h1>\n";
        page += attnviz::render_html_fragment(pages[0].second, all);
        page += attnviz::render_html_fragment(pages[1].second, head_only);
        page += attnviz::render_html_fragment(pages[3].second, all);
        page += "</body></html>\n";
        attnviz::io::write_file(folder / "fragments.html", page);
        std::cout << folder.string() << "\n";
    } catch (const attnviz::Error& e) {
        std::cerr << "make_pages: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
