// Unit tests of src/viz: escaping, base64/deflate, quantization, the page's
// payload decoded back against the trace, layer/head selection, errors, and
// the static SVG/PNG export.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "viz/codec.h"
#include "viz/synthetic_traces.h"

namespace attnviz {
namespace {

using testing::kHostileText;

// Designated initializers would be shorter, but GCC 12's -Wextra flags the omitted fields.
ViewOptions options(std::vector<View> views, std::vector<int> layers = {},
                    std::vector<int> heads = {}, std::string block = "") {
    ViewOptions out;
    out.views = std::move(views);
    out.layers = std::move(layers);
    out.heads = std::move(heads);
    out.block = std::move(block);
    return out;
}

const ViewOptions kAllViews = options({View::head, View::model, View::neuron, View::matrix});

// The JSON inside <script type="application/json" class="attnviz-data">.
nlohmann::json payload_of(const std::string& html) {
    const std::string open = "<script type=\"application/json\" class=\"attnviz-data\">";
    const size_t start = html.find(open);
    EXPECT_NE(start, std::string::npos);
    const size_t begin = start + open.size();
    const size_t end = html.find("</script>", begin);
    return nlohmann::json::parse(html.substr(begin, end - begin));
}

std::vector<uint8_t> stream_bytes(const nlohmann::json& payload, int index) {
    return viz::inflate_bytes(viz::base64_decode(payload["streams"][index].get<std::string>()));
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

TEST(Codec, Base64RoundTripsEveryLength) {
    for (size_t n = 0; n < 10; ++n) {
        std::vector<uint8_t> bytes;
        for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(i * 97 + 3));
        const std::string text = viz::base64_encode(bytes);
        EXPECT_EQ(text.size(), (n + 2) / 3 * 4);
        EXPECT_EQ(viz::base64_decode(text), bytes);
    }
    EXPECT_EQ(viz::base64_encode(std::vector<uint8_t>{'M', 'a', 'n'}), "TWFu");
    EXPECT_THROW(viz::base64_decode("TW!u"), Error);
}

TEST(Codec, DeflateRoundTripsAndRejectsGarbage) {
    std::vector<uint8_t> bytes(100000);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i % 7);
    const std::vector<uint8_t> packed = viz::deflate_bytes(bytes, 6);
    EXPECT_LT(packed.size(), bytes.size() / 20);
    EXPECT_EQ(packed[0], 0x78);  // zlib header, as DecompressionStream("deflate") expects
    EXPECT_EQ(viz::inflate_bytes(packed), bytes);
    std::vector<uint8_t> cut(packed.begin(), packed.begin() + packed.size() / 2);
    EXPECT_THROW(viz::inflate_bytes(cut), Error);
}

TEST(Codec, EscapesHtmlAndScriptJson) {
    EXPECT_EQ(viz::escape_html(kHostileText), "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    EXPECT_EQ(viz::escape_html("a&\"'"), "a&amp;&quot;&#39;");
    const std::string json =
        nlohmann::json(std::string(kHostileText) + "<!-- & \xE2\x80\xA8").dump();
    const std::string escaped = viz::escape_json_for_script(json);
    EXPECT_EQ(escaped.find('<'), std::string::npos);
    EXPECT_EQ(escaped.find('>'), std::string::npos);
    EXPECT_EQ(escaped.find("\xE2\x80\xA8"), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(escaped), nlohmann::json::parse(json));  // same value
}

TEST(Codec, XmlTextReplacesControlCharactersAndInvalidUtf8) {
    EXPECT_EQ(viz::escape_xml("a\x01<\xFF\xC3\xA9\xE2\x82"),
              "a\xEF\xBF\xBD&lt;\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(viz::escape_xml("\xF0\x9F\x98\x80\t"), "\xF0\x9F\x98\x80\t");  // emoji and tab stay
    EXPECT_EQ(viz::escape_xml("\xC0\x80\xED\xA0\x80"),  // overlong NUL, a surrogate
              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Codec, QuantizedRowsStayWithinHalfAStep) {
    const std::vector<float> probs = {0.7f, 0.2f, 0.1f, 0.0f,  // one row
                                      0.0f, 0.0f, 0.0f, 0.0f,  // a row of zeros
                                      NAN,  0.5f, 0.5f, 0.0f};
    std::vector<uint8_t> levels(probs.size());
    std::vector<float> row_max(3);
    viz::quantize_rows(probs.data(), 3, 4, levels.data(), row_max.data());
    EXPECT_FLOAT_EQ(row_max[0], 0.7f);
    EXPECT_EQ(levels[0], 255);
    for (int k = 0; k < 4; ++k)
        EXPECT_LE(std::fabs(levels[k] * row_max[0] / 255 - probs[k]), row_max[0] / 510 + 1e-7f);
    EXPECT_EQ(row_max[1], 0.0f);
    EXPECT_EQ(levels[4] + levels[5] + levels[6] + levels[7], 0);
    EXPECT_EQ(levels[8], 0);  // NaN
    EXPECT_EQ(levels[9], 255);
}

TEST(Codec, QuantizedVectorsStayWithinHalfAStep) {
    const std::vector<float> vectors = {1.0f, -2.54f, 0.3f, 0.0f, 0.0f, 0.0f};
    std::vector<int8_t> values(6);
    std::vector<float> scales(2);
    viz::quantize_vectors(vectors.data(), 2, 3, values.data(), scales.data());
    EXPECT_FLOAT_EQ(scales[0], 2.54f / 127);
    EXPECT_EQ(values[1], -127);
    for (int i = 0; i < 3; ++i)
        EXPECT_LE(std::fabs(values[i] * scales[0] - vectors[i]), scales[0] / 2 + 1e-6f);
    EXPECT_EQ(scales[1], 0.0f);
}

TEST(Html, PayloadDecodesBackToTheTraceWithinTheStep) {
    const AttentionTrace trace = testing::pair_trace();
    const std::string html = render_html(trace, kAllViews);
    const nlohmann::json payload = payload_of(html);
    const AttentionBlock& block = trace.blocks[0];
    const nlohmann::json& meta = payload["meta"]["blocks"][0];
    ASSERT_EQ(meta["layers"].size(), 2u);
    ASSERT_EQ(meta["heads"].size(), 4u);
    const size_t nq = block.n_queries, nk = block.n_keys, nh = block.n_heads;
    for (int layer = 0; layer < block.n_layers; ++layer) {
        const std::vector<uint8_t> bytes = stream_bytes(payload, meta["probs"][layer].get<int>());
        ASSERT_EQ(bytes.size(), nh * nq * 4 + nh * nq * nk);
        const auto* row_max = reinterpret_cast<const float*>(bytes.data());
        const uint8_t* levels = bytes.data() + nh * nq * 4;
        double worst = 0;
        for (size_t head = 0; head < nh; ++head)
            for (size_t q = 0; q < nq; ++q) {
                const size_t row = head * nq + q;
                double sum = 0;
                for (size_t k = 0; k < nk; ++k) {
                    const float exact = block.prob(layer, head, q, k);
                    const float decoded = levels[row * nk + k] * row_max[row] / 255;
                    worst = std::max(worst,
                                     std::fabs(double{exact} - decoded) / (row_max[row] / 255.0));
                    sum += exact;
                }
                EXPECT_NEAR(sum, 1.0, 1e-5) << "row sums";
            }
        EXPECT_LE(worst, 0.5 + 1e-4) << "worst error in steps, layer " << layer;
    }
    // Queries and keys, 8-bit per vector.
    const std::vector<uint8_t> qk = stream_bytes(payload, meta["queriesKeys"][1].get<int>());
    const size_t dim = block.head_dim;
    ASSERT_EQ(qk.size(), nh * (nq + nk) * (4 + dim));
    const auto* query_scales = reinterpret_cast<const float*>(qk.data());
    const auto* queries = reinterpret_cast<const int8_t*>(qk.data() + nh * (nq + nk) * 4);
    for (size_t i = 0; i < nh * nq * dim; ++i) {
        const float exact = block.queries[(1 * nh * nq) * dim + i];
        EXPECT_LE(std::fabs(queries[i] * query_scales[i / dim] - exact),
                  query_scales[i / dim] / 2 + 1e-6f);
    }
}

TEST(Html, HostileTextIsEscapedEverywhere) {
    const AttentionTrace trace = testing::hostile_trace();
    for (const std::string& html :
         {render_html(trace, kAllViews), render_html_fragment(trace, kAllViews)}) {
        EXPECT_EQ(html.find(kHostileText), std::string::npos);
        EXPECT_EQ(html.find("<img"), std::string::npos);
        EXPECT_EQ(html.find("<b>bert"), std::string::npos);
        EXPECT_EQ(html.find("<!--"), std::string::npos);
        // Only our own elements close a script: the data and the code.
        EXPECT_EQ(count(html, "</script"), 2u);
        const nlohmann::json payload = payload_of(html);
        EXPECT_EQ(payload["meta"]["sequences"][0]["tokens"][1][0], kHostileText);  // intact as data
    }
    ViewOptions titled = options({View::head});
    titled.title = kHostileText;
    const std::string page = render_html(trace, titled);
    EXPECT_NE(page.find("<title>&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</title>"),
              std::string::npos);
}

TEST(Html, PageIsSelfContainedWithOneRootPerFragment) {
    const AttentionTrace trace = testing::causal_trace();
    const std::string page = render_html(trace, kAllViews);
    EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(page.find("Content-Security-Policy"), std::string::npos);
    EXPECT_EQ(page.find("http://"), std::string::npos);
    EXPECT_EQ(page.find("https://"), std::string::npos);
    EXPECT_EQ(page.find(" src="), std::string::npos);
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        const std::string fragment = render_html_fragment(trace, kAllViews);
        EXPECT_EQ(fragment.find("<html"), std::string::npos);
        const size_t at = fragment.find("id=\"attnviz-");
        ASSERT_NE(at, std::string::npos);
        const size_t begin = at + 4, end = fragment.find('"', begin);
        const std::string id = fragment.substr(begin, end - begin);
        EXPECT_EQ(id.find_first_not_of("attnviz-0123456789abcdef"), std::string::npos) << id;
        ids.insert(id);
        EXPECT_NE(fragment.find("document.getElementById(\"" + id + "\")"), std::string::npos);
    }
    EXPECT_EQ(ids.size(), 3u);
}

TEST(Html, IncludesOnlyChosenLayersAndHeads) {
    const AttentionTrace trace = testing::encoder_decoder_trace();
    const nlohmann::json payload =
        payload_of(render_html(trace, options({View::head}, {1}, {2, 0}, "cross")));
    EXPECT_EQ(payload["meta"]["firstBlock"], 2);
    for (const nlohmann::json& block : payload["meta"]["blocks"]) {
        EXPECT_EQ(block["layers"], nlohmann::json({1}));
        EXPECT_EQ(block["heads"], nlohmann::json({2, 0}));
        EXPECT_FALSE(block.contains("queriesKeys"));  // no neuron view, no vectors
    }
    const AttentionBlock& cross = trace.blocks[2];
    const std::vector<uint8_t> bytes =
        stream_bytes(payload, payload["meta"]["blocks"][2]["probs"][0].get<int>());
    const auto* row_max = reinterpret_cast<const float*>(bytes.data());
    const size_t nq = cross.n_queries, nk = cross.n_keys;
    const uint8_t* levels = bytes.data() + 2 * nq * 4;
    // Slot 0 is head 2, slot 1 is head 0.
    EXPECT_NEAR(levels[3 * nk + 4] * row_max[3] / 255, cross.prob(1, 2, 3, 4),
                row_max[3] / 510 + 1e-7);
    EXPECT_NEAR(levels[(nq + 3) * nk + 4] * row_max[nq + 3] / 255, cross.prob(1, 0, 3, 4),
                row_max[nq + 3] / 510 + 1e-7);
}

// GPT-2's scale_attn_by_inverse_layer_idx: the neuron view gets each shown
// layer's own score scale (the queries stay the model's own).
TEST(Html, PerLayerScoreScalesFollowTheChosenLayers) {
    AttentionTrace trace = testing::causal_trace();
    AttentionBlock& block = trace.blocks[0];
    for (int layer = 0; layer < block.n_layers; ++layer)
        block.layer_score_scales.push_back(block.score_scale / static_cast<float>(layer + 1));
    const nlohmann::json meta =
        payload_of(render_html(trace, options({View::neuron}, {2, 0})))["meta"]["blocks"][0];
    EXPECT_EQ(meta["layers"], nlohmann::json({2, 0}));
    ASSERT_EQ(meta["scoreScales"].size(), 2u);
    EXPECT_FLOAT_EQ(meta["scoreScales"][0].get<float>(), block.score_scale / 3);
    EXPECT_FLOAT_EQ(meta["scoreScales"][1].get<float>(), block.score_scale);
    // one scale for every layer: no per-layer list
    const nlohmann::json plain = payload_of(
        render_html(testing::causal_trace(), options({View::neuron})))["meta"]["blocks"][0];
    EXPECT_FALSE(plain.contains("scoreScales"));
}

TEST(Html, BadInputThrowsErrorsThatNameTheProblem) {
    const AttentionTrace trace = testing::pair_trace();
    auto message = [&](const AttentionTrace& t, const ViewOptions& o) {
        try {
            render_html(t, o);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message(trace, options({View::head}, {5})).find("layer 5 is out of range"),
              std::string::npos);
    EXPECT_NE(message(trace, options({View::head}, {}, {-1})).find("head -1 is out of range"),
              std::string::npos);
    EXPECT_NE(
        message(trace, options({View::head}, {}, {}, "cross")).find("no attention block \"cross\""),
        std::string::npos);
    AttentionTrace short_probs = trace;
    short_probs.blocks[0].probs.pop_back();
    EXPECT_NE(message(short_probs, {}).find("attention block \"self\" has"), std::string::npos);
    AttentionTrace wrong_tokens = trace;
    wrong_tokens.sequences[0].tokens.pop_back();
    EXPECT_NE(message(wrong_tokens, {}).find("sequences have"), std::string::npos);
    EXPECT_NE(message(AttentionTrace{}, {}).find("no attention blocks"), std::string::npos);
    AttentionTrace invalid_utf8 = trace;
    invalid_utf8.sequences[0].tokens[1].text = "\xFF\xFE";
    EXPECT_EQ(message(invalid_utf8, {}), "no error");  // replaced by U+FFFD, not thrown
}

TEST(Views, NamesRoundTrip) {
    for (View view : {View::head, View::model, View::neuron, View::matrix})
        EXPECT_EQ(parse_view(view_name(view)), view);
    EXPECT_THROW(parse_view("graph"), Error);
}

std::string as_text(const std::vector<uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

TEST(Static, HeadViewSvgDrawsTheChosenHeadsWithEscapedText) {
    const AttentionTrace trace = testing::hostile_trace();
    const std::string svg =
        as_text(render_static(trace, options({View::head}, {}, {1}), StaticFormat::svg));
    EXPECT_EQ(svg.find(kHostileText), std::string::npos);
    EXPECT_NE(svg.find("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
    EXPECT_EQ(svg.find("<script"), std::string::npos);
    EXPECT_NE(svg.find("<title>head 1</title>"), std::string::npos);
    EXPECT_EQ(svg.find("<title>head 0</title>"), std::string::npos);
    // Each visible weight of head 1 becomes one line with that opacity.
    const AttentionBlock& block = trace.blocks[0];
    size_t visible = 0;
    for (int q = 0; q < block.n_queries; ++q)
        for (int k = 0; k < block.n_keys; ++k) visible += block.prob(0, 1, q, k) >= 1.0 / 255;
    EXPECT_EQ(count(svg, "<line "), visible);
}

TEST(Static, ModelGridAndMatrixRenderToPng) {
    const AttentionTrace trace = testing::encoder_decoder_trace();
    const std::string grid =
        as_text(render_static(trace, options({View::model}, {}, {}, "decoder"), StaticFormat::svg));
    EXPECT_EQ(count(grid, "<image "), 2u * 3u);
    const std::vector<uint8_t> png =
        render_static(trace, options({View::matrix}, {1}, {2}, "cross"), StaticFormat::png);
    ASSERT_GT(png.size(), 8u);
    EXPECT_EQ(std::string(png.begin() + 1, png.begin() + 4), "PNG");
    EXPECT_THROW(render_static(trace, options({View::neuron}), StaticFormat::svg), Error);
    AttentionTrace odd_text = testing::pair_trace();
    odd_text.sequences[0].tokens[2].text = odd_text.sequences[0].tokens[2].display = "\x01\xFF";
    const std::vector<uint8_t> odd_png =
        render_static(odd_text, options({View::head}), StaticFormat::png);
    EXPECT_EQ(std::string(odd_png.begin() + 1, odd_png.begin() + 4), "PNG");
    const std::vector<uint8_t> head_png =
        render_static(testing::pair_trace(), options({View::head}), StaticFormat::png);
    EXPECT_EQ(std::string(head_png.begin() + 1, head_png.begin() + 4), "PNG");
}

}  // namespace
}  // namespace attnviz
