// Writes the pages the browser tests open: each synthetic trace of
// tests/viz/synthetic_traces.h as a whole page (<name>.html) with a JSON
// sidecar of its exact values (<name>.json: probabilities, queries, keys, score
// bias), and one page holding several
// fragments (fragments.html). Also long512.html, a BERT-base-shaped page of 512
// tokens (12 layers x 12 heads, all views) with its exact values as the npz
// `attnviz export` writes (long512.npz) and a sidecar of its tokens only, and
// pieces.html, byte-level BPE pieces of an emoji and a CJK character.
// Usage: make_pages <output folder>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "attnviz/export.h"
#include "attnviz/views.h"
#include "io/files.h"
#include "viz/synthetic_traces.h"

namespace {

// GPT-2's byte-level alphabet: a byte as the character its vocabulary spells it with.
std::string byte_level(unsigned char byte) {
    const bool self = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
    unsigned code = byte;
    if (!self) {
        code = 256;
        for (unsigned b = 0; b < byte; ++b)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) ++code;
    }
    std::string out;
    if (code < 0x80) {
        out += static_cast<char>(code);
    } else {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
    }
    return out;
}
std::string byte_level(const std::string& bytes) {
    std::string out;
    for (char c : bytes) out += byte_level(static_cast<unsigned char>(c));
    return out;
}

// GPT-2-like tokens of "Hi 😀 日本": the emoji in two byte pieces (their
// display, as the tokenizer decodes one piece alone, is U+FFFD), 日 and 本 whole.
attnviz::AttentionTrace pieces_trace() {
    attnviz::AttentionTrace trace;
    trace.model_id = "synthetic-byte-pieces";
    trace.architecture = "gpt2";
    const std::vector<std::string> raw = {"Hi", byte_level(" \xF0\x9F"), byte_level("\x98\x80"),
                                          byte_level(" \xE6\x97\xA5"), byte_level("\xE6\x9C\xAC")};
    trace.sequences.push_back(attnviz::testing::make_sequence(
        "input", {"Hi \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC"}, raw, {0, 0, 0, 0, 0}, {}));
    const std::vector<std::string> display = {"Hi", " \xEF\xBF\xBD\xEF\xBF\xBD",
                                              "\xEF\xBF\xBD\xEF\xBF\xBD", " \xE6\x97\xA5",
                                              "\xE6\x9C\xAC"};
    for (size_t i = 0; i < raw.size(); ++i) trace.sequences[0].tokens[i].display = display[i];
    trace.blocks.push_back(
        attnviz::testing::make_block("self", 0, 0, 1, 2, 5, 5, true, 8, false, 123));
    return trace;
}

nlohmann::json sidecar(const attnviz::AttentionTrace& trace, bool with_values = true) {
    nlohmann::json out;
    out["model"] = trace.model_id;
    for (const attnviz::TokenSequence& sequence : trace.sequences) {
        nlohmann::json tokens = nlohmann::json::array();
        for (const attnviz::TraceToken& token : sequence.tokens)
            tokens.push_back(
                {{"raw", token.text}, {"display", token.display}, {"special", token.special}});
        out["sequences"].push_back({{"name", sequence.name}, {"tokens", tokens}});
    }
    if (!with_values) return out;
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
        std::string page =
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>fragments</title></head><body>\n<h1>Three fragments</h1>\n";
        page += attnviz::render_html_fragment(pages[0].second, all);
        page += attnviz::render_html_fragment(pages[1].second, head_only);
        page += attnviz::render_html_fragment(pages[3].second, all);
        page += "</body></html>\n";
        attnviz::io::write_file(folder / "fragments.html", page);

        const attnviz::AttentionTrace pieces = pieces_trace();
        attnviz::io::write_file(folder / "pieces.html", attnviz::render_html(pieces, head_only));
        attnviz::io::write_file(folder / "pieces.json", sidecar(pieces).dump());

        // BERT-base-shaped, 512 tokens: the size the browser tests measure speed on,
        // and the matrix view's zoom, pan, labels and fit, the neuron view's columns.
        const attnviz::AttentionTrace long_trace =
            attnviz::testing::sized_trace(12, 12, 512, false, 64, true);
        attnviz::io::write_file(folder / "long512.html", attnviz::render_html(long_trace, all));
        attnviz::io::write_file(folder / "long512.json", sidecar(long_trace, false).dump());
        attnviz::write_npz(long_trace, folder / "long512.npz");
        std::cout << folder.string() << "\n";
    } catch (const attnviz::Error& e) {
        std::cerr << "make_pages: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
