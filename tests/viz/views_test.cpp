// Unit tests of src/viz: escaping, base64/deflate, quantization, the page's
// payload decoded back against the trace, layer/head selection, errors, and
// the static SVG/PNG export.
#include <gtest/gtest.h>

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
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

// The printed digits of a weight are printf's "%.2e" of the float (glibc rounds
// the exact binary value to nearest): the reference for every code.
TEST(Codec, Decimal3CodesAreTheFloatsCorrectlyRoundedDigits) {
    std::vector<float> values = {1.0f,      0.5f,        0.03125f,        0.0625f,
                                 0.9995f,   0.99949998f, 0.1235f,         1e-3f,
                                 9.995e-4f, 1.4e-45f,    1.17549435e-38f, 3.4e-39f,
                                 2.5e-7f,   0.12345f,    0.000999999f,    0.0012345f};
    testing::Random random(5);
    for (int i = 0; i < 200000; ++i) {
        // log-uniform over 1e-4 .. 1, and over float32's whole range below 1 (subnormals too)
        const float exponent = (i % 2 ? -4.0f : -45.0f) * random.uniform();
        values.push_back(std::pow(10.0f, exponent) * (0.5f + random.uniform()));
    }
    int below = 0;
    for (float value : values) {
        if (!(value > 0.0f)) continue;
        char text[32];
        std::snprintf(text, sizeof text, "%.2e", static_cast<double>(value));
        const double expected = std::strtod(text, nullptr);
        const uint16_t code = viz::decimal3_code(value);
        if (expected < 0.001) {  // the 3 digits round below 0.00100: only "below 0.001"
            ASSERT_EQ(code, viz::kBelowThousandthCode) << value << " printed " << text;
            ++below;
            continue;
        }
        ASSERT_EQ(viz::decimal3_value(code), expected) << value << " printed " << text;
    }
    EXPECT_GT(below, 1000);
    EXPECT_EQ(viz::decimal3_code(0.00099949998f), viz::kBelowThousandthCode);
    EXPECT_EQ(viz::decimal3_value(viz::decimal3_code(0.0009995f)), 0.001);
    EXPECT_TRUE(std::isnan(viz::decimal3_value(viz::kBelowThousandthCode)));
    EXPECT_EQ(viz::decimal3_code(0.0f), 0);
    EXPECT_EQ(viz::decimal3_code(-0.0f), 0);
    EXPECT_EQ(viz::decimal3_value(0), 0.0);
    EXPECT_EQ(viz::decimal3_code(NAN), viz::kNotAProbabilityCode);
    EXPECT_EQ(viz::decimal3_code(-0.5f), viz::kNotAProbabilityCode);
    EXPECT_EQ(viz::decimal3_code(INFINITY), viz::kNotAProbabilityCode);
    EXPECT_TRUE(std::isnan(viz::decimal3_value(viz::kNotAProbabilityCode)));
    // Two byte planes: high bytes first.
    const float pair[] = {1.0f, 0.5f};
    uint8_t planes[4];
    viz::decimal3_planes(pair, 2, planes);
    const uint16_t one = viz::decimal3_code(1.0f), half = viz::decimal3_code(0.5f);
    EXPECT_EQ(planes[0], one >> 8);
    EXPECT_EQ(planes[1], half >> 8);
    EXPECT_EQ(planes[2], one & 0xFF);
    EXPECT_EQ(planes[3], half & 0xFF);
    EXPECT_EQ(viz::decimal3_value(one), 1.0);
    EXPECT_EQ(viz::decimal3_value(half), 0.5);
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

// Each layer's exact stream holds every weight of 0.001 or more to 3
// significant digits: within half a unit of the third digit of the trace's
// float32; smaller non-zero weights as "below 0.001", never as 0.
TEST(Html, ExactStreamHoldsEveryWeightToThreeDigits) {
    const AttentionTrace trace = testing::encoder_decoder_trace();
    const nlohmann::json payload =
        payload_of(render_html(trace, options({View::head}, {}, {2, 0})));
    for (size_t b = 0; b < trace.blocks.size(); ++b) {
        const AttentionBlock& block = trace.blocks[b];
        const nlohmann::json& meta = payload["meta"]["blocks"][b];
        ASSERT_EQ(meta["exact"].size(), meta["layers"].size());
        const size_t nq = block.n_queries, nk = block.n_keys, cells = 2 * nq * nk;
        for (int layer = 0; layer < block.n_layers; ++layer) {
            const std::vector<uint8_t> bytes =
                stream_bytes(payload, meta["exact"][layer].get<int>());
            ASSERT_EQ(bytes.size(), 2 * cells);
            for (size_t i = 0; i < cells; ++i) {
                const uint16_t code = static_cast<uint16_t>((bytes[i] << 8) | bytes[cells + i]);
                const int head = i < nq * nk ? 2 : 0;  // heads in the chosen order
                const size_t q = (i / nk) % nq, k = i % nk;
                const double exact = block.prob(layer, head, q, k),
                             shown = viz::decimal3_value(code);
                if (exact == 0) {
                    EXPECT_EQ(shown, 0.0);
                    continue;
                }
                if (code ==
                    viz::kBelowThousandthCode) {  // "<0.001", for weights that print below it
                    ASSERT_LT(exact, 0.0009995) << block.name << " layer " << layer;
                    continue;
                }
                const double unit = std::pow(10.0, std::floor(std::log10(exact)) - 2);
                ASSERT_LE(std::fabs(shown - exact), unit / 2 * (1 + 1e-9))
                    << block.name << " layer " << layer << " " << q << "," << k;
            }
        }
    }
}

// --open-layer / --open-heads: what the page opens on, in model numbering,
// among what it includes; anything else is an error naming the layer or head.
TEST(Html, OpenSelectionIsAmongTheIncludedLayersAndHeads) {
    const AttentionTrace trace = testing::pair_trace();
    ViewOptions chosen = options({View::head}, {1, 0}, {3, 1, 2});
    nlohmann::json open = payload_of(render_html(trace, chosen))["meta"]["open"];
    EXPECT_EQ(open["layer"], 1);
    EXPECT_EQ(open["heads"], nlohmann::json({3, 1, 2}));
    chosen.open_layer = 0;
    chosen.open_heads = {2};
    open = payload_of(render_html(trace, chosen))["meta"]["open"];
    EXPECT_EQ(open["layer"], 0);
    EXPECT_EQ(open["heads"], nlohmann::json({2}));
    chosen.open_heads = {0};
    try {
        render_html(trace, chosen);
        FAIL() << "head 0 is not included";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "the page cannot open on head 0: it includes heads 3, 1, 2 of block \"self\"");
    }
    chosen.open_heads = {};
    chosen.layers = {1};
    try {
        render_html(trace, chosen);
        FAIL() << "layer 0 is not included";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "the page cannot open on layer 0: it includes layers 1 of block \"self\"");
    }
}

// The score bias travels exactly (float32, -inf included), once for a bias all
// layers share, once per chosen layer otherwise, for the chosen heads only.
TEST(Html, ScoreBiasDecodesExactlyOncePerSharedBias) {
    AttentionTrace trace = testing::position_bias_trace();
    AttentionBlock& encoder = trace.blocks[0];
    const size_t nq = encoder.n_queries, nk = encoder.n_keys;
    encoder.score_bias[encoder.index(0, 2, 3, 4)] = -std::numeric_limits<float>::infinity();
    // The decoder: a bias per layer (layer 1's differs from layer 0's).
    AttentionBlock& decoder = trace.blocks[1];
    const size_t per_layer = decoder.score_bias.size();
    decoder.score_bias.insert(decoder.score_bias.end(), decoder.score_bias.begin(),
                              decoder.score_bias.end());
    decoder.score_bias_layers = 2;
    for (size_t i = per_layer; i < 2 * per_layer; ++i) decoder.score_bias[i] += 0.25f;

    const nlohmann::json payload =
        payload_of(render_html(trace, options({View::neuron}, {1}, {2, 0})));
    const nlohmann::json& blocks = payload["meta"]["blocks"];
    EXPECT_EQ(blocks[0]["scoreForm"], "scaled_dot_plus_bias");
    ASSERT_EQ(blocks[0]["scoreBias"].size(), 1u);   // shared: one stream
    ASSERT_EQ(blocks[1]["scoreBias"].size(), 1u);   // per layer: the one chosen layer
    EXPECT_FALSE(blocks[2].contains("scoreBias"));  // cross attention adds none
    const auto decoded = [&](int block) {
        const std::vector<uint8_t> bytes =
            stream_bytes(payload, blocks[block]["scoreBias"][0].get<int>());
        std::vector<float> values(bytes.size() / sizeof(float));
        std::memcpy(values.data(), bytes.data(), bytes.size());
        return values;
    };
    const std::vector<float> encoder_bias = decoded(0), decoder_bias = decoded(1);
    ASSERT_EQ(encoder_bias.size(), 2 * nq * nk);  // slot 0 is head 2, slot 1 is head 0
    for (size_t q = 0; q < nq; ++q)
        for (size_t k = 0; k < nk; ++k) {
            EXPECT_EQ(encoder_bias[q * nk + k], encoder.score_bias[encoder.index(0, 2, q, k)]);
            EXPECT_EQ(encoder_bias[(nq + q) * nk + k],
                      encoder.score_bias[encoder.index(0, 0, q, k)]);
        }
    EXPECT_EQ(encoder_bias[3 * nk + 4], -std::numeric_limits<float>::infinity());
    const size_t dq = decoder.n_queries, dk = decoder.n_keys;
    ASSERT_EQ(decoder_bias.size(), 2 * dq * dk);
    for (size_t q = 0; q < dq; ++q)
        for (size_t k = 0; k < dk; ++k)
            EXPECT_EQ(decoder_bias[q * dk + k], decoder.score_bias[decoder.index(1, 2, q, k)]);

    // Without the neuron view there are no vectors and no bias.
    const nlohmann::json heads_only = payload_of(render_html(trace, options({View::head})));
    EXPECT_FALSE(heads_only["meta"]["blocks"][0].contains("scoreBias"));
    // A block the model cannot decompose says so.
    const nlohmann::json relative =
        payload_of(render_html(testing::relative_key_trace(), kAllViews));
    EXPECT_EQ(relative["meta"]["blocks"][0]["scoreForm"], "not_decomposable");
    EXPECT_FALSE(relative["meta"]["blocks"][0].contains("scoreBias"));
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
    AttentionTrace short_bias = testing::position_bias_trace();
    short_bias.blocks[0].score_bias.pop_back();
    EXPECT_NE(message(short_bias, {}).find("attention block \"encoder\" has 362 score bias values"),
              std::string::npos)
        << message(short_bias, {});
    AttentionTrace bad_layers = testing::position_bias_trace();
    bad_layers.blocks[0].score_bias_layers = 3;
    EXPECT_NE(message(bad_layers, {}).find("score_bias_layers 3, expected 0, 1 or 2"),
              std::string::npos);
    AttentionTrace undecomposable = testing::position_bias_trace();
    undecomposable.blocks[1].score_form = ScoreForm::not_decomposable;
    EXPECT_NE(
        message(undecomposable, {}).find("has a score bias but its score is not decomposable"),
        std::string::npos);
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
    EXPECT_EQ(count(grid, "<image class=\"heatmap\""), 2u * 3u);
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

// ---- static pictures: reading back what render_static drew ----

struct Rgb {
    int r = 0, g = 0, b = 0;
    bool operator==(const Rgb&) const = default;
};
std::ostream& operator<<(std::ostream& out, const Rgb& c) {
    return out << "rgb(" << c.r << ", " << c.g << ", " << c.b << ")";
}

// The heatmap colour stops of web/heat_scale.js heatTable (light theme): weight / maximum = 0,
// 0.25, 0.5, 0.75 and 1 land exactly on them.
const Rgb kHeatStops[5] = {
    {255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
Rgb heat_reference(double x) {  // web/heat_scale.js: linear between the stops
    x = std::clamp(x, 0.0, 1.0) * 4;
    const int i = std::min(3, static_cast<int>(x));
    const double t = x - i;
    const Rgb &a = kHeatStops[i], &b = kHeatStops[i + 1];
    return {static_cast<int>(std::lround(a.r + t * (b.r - a.r))),
            static_cast<int>(std::lround(a.g + t * (b.g - a.g))),
            static_cast<int>(std::lround(a.b + t * (b.b - a.b)))};
}

using Image = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

Image read_png(const std::vector<uint8_t>& png) {
    struct Reader {
        const std::vector<uint8_t>* bytes;
        size_t at = 0;
    } reader{&png};
    auto read = [](void* closure, unsigned char* data, unsigned int length) {
        auto* r = static_cast<Reader*>(closure);
        if (r->at + length > r->bytes->size()) return CAIRO_STATUS_READ_ERROR;
        std::copy_n(r->bytes->data() + r->at, length, data);
        r->at += length;
        return CAIRO_STATUS_SUCCESS;
    };
    Image image(cairo_image_surface_create_from_png_stream(read, &reader), cairo_surface_destroy);
    EXPECT_EQ(cairo_surface_status(image.get()), CAIRO_STATUS_SUCCESS);
    return image;
}

Rgb pixel(cairo_surface_t* image, int x, int y) {
    cairo_surface_flush(image);
    const unsigned char* row = cairo_image_surface_get_data(image) +
                               static_cast<size_t>(y) * cairo_image_surface_get_stride(image);
    uint32_t value;
    std::memcpy(&value, row + 4 * static_cast<size_t>(x), 4);
    return {static_cast<int>((value >> 16) & 0xFF), static_cast<int>((value >> 8) & 0xFF),
            static_cast<int>(value & 0xFF)};
}

// The value of attribute name in the element starting at text[at].
std::string attribute(const std::string& text, size_t at, const std::string& name) {
    const size_t end = text.find('>', at);
    const size_t found = text.find(" " + name + "=\"", at);
    if (found == std::string::npos || found > end) return "";
    const size_t begin = found + name.size() + 3;
    return text.substr(begin, text.find('"', begin) - begin);
}

struct Placed {
    double x = 0, y = 0, width = 0, height = 0;
    std::string element;  // the whole <image .../>
};

// The width and height the <svg> element declares.
std::pair<double, double> svg_size(const std::string& svg) {
    const size_t at = svg.find("<svg");
    return {std::stod(attribute(svg, at, "width")), std::stod(attribute(svg, at, "height"))};
}

void expect_png_size(cairo_surface_t* png, const std::string& svg) {
    EXPECT_EQ(cairo_image_surface_get_width(png), svg_size(svg).first);
    EXPECT_EQ(cairo_image_surface_get_height(png), svg_size(svg).second);
}

// Every <image class="role"> of an SVG, in drawing order.
std::vector<Placed> images(const std::string& svg, const std::string& role) {
    std::vector<Placed> found;
    const std::string open = "<image class=\"" + role + "\"";
    for (size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1))
        found.push_back({std::stod(attribute(svg, at, "x")), std::stod(attribute(svg, at, "y")),
                         std::stod(attribute(svg, at, "width")),
                         std::stod(attribute(svg, at, "height")),
                         svg.substr(at, svg.find("/>", at) + 2 - at)});
    return found;
}

// The PNG an <image>'s data URI carries.
Image embedded_png(const Placed& image) {
    const std::string prefix = "data:image/png;base64,";
    const std::string href = attribute(image.element, 0, "href");
    EXPECT_EQ(href.rfind(prefix, 0), 0u);
    return read_png(viz::base64_decode(std::string_view(href).substr(prefix.size())));
}

// One sequence of n tokens "t0".."t(n-1)" and one block of the given [layer][head][q][k] weights.
AttentionTrace hand_trace(int layers, int heads, int n, std::vector<float> probs) {
    AttentionTrace trace;
    trace.model_id = "hand";
    trace.architecture = "bert";
    std::vector<std::string> raw;
    for (int i = 0; i < n; ++i) {  // not "t" + to_string: GCC 12 warns falsely
        raw.emplace_back(1, 't');
        raw.back() += std::to_string(i);
    }
    trace.sequences.push_back(
        testing::make_sequence("input", {"hand"}, raw, std::vector<int>(n, 0), {}));
    AttentionBlock block;
    block.name = "self";
    block.n_layers = layers;
    block.n_heads = heads;
    block.n_queries = block.n_keys = n;
    block.probs = std::move(probs);
    trace.blocks.push_back(std::move(block));
    return trace;
}

// Rows sum to 1; every weight / 0.5 (the maximum) is 0, 0.25, 0.5, 0.75 or 1, so each cell
// is one colour stop, and every cell differs from its neighbours.
const float kCheckerboard[4][4] = {{0.5f, 0.0f, 0.5f, 0.0f},
                                   {0.0f, 0.5f, 0.125f, 0.375f},
                                   {0.5f, 0.125f, 0.375f, 0.0f},
                                   {0.25f, 0.5f, 0.0f, 0.25f}};

// Head 0: the checkerboard (maximum 0.5); head 1: one-hot on the previous token (maximum 1).
AttentionTrace checkerboard_trace() {
    std::vector<float> probs;
    for (const auto& row : kCheckerboard) probs.insert(probs.end(), row, row + 4);
    for (int q = 0; q < 4; ++q)
        for (int k = 0; k < 4; ++k) probs.push_back(k == std::max(0, q - 1) ? 1.0f : 0.0f);
    return hand_trace(1, 2, 4, probs);
}

// Every pixel of the n x n heatmap placed at `at` in the PNG has exactly its cell's colour.
void expect_crisp_cells(cairo_surface_t* png, const Placed& at, int n,
                        const std::function<Rgb(int q, int k)>& colour) {
    const double cell = at.width / n;
    ASSERT_EQ(cell, std::floor(cell)) << "cells of whole pixels";
    ASSERT_EQ(at.x, std::floor(at.x));
    ASSERT_EQ(at.y, std::floor(at.y));
    int wrong = 0;
    for (int q = 0; q < n; ++q)
        for (int k = 0; k < n; ++k)
            for (int dy = 0; dy < cell; ++dy)
                for (int dx = 0; dx < cell; ++dx) {
                    const Rgb got = pixel(png, static_cast<int>(at.x + k * cell) + dx,
                                          static_cast<int>(at.y + q * cell) + dy);
                    if (got != colour(q, k) && wrong++ < 5)
                        ADD_FAILURE() << "cell (" << q << ", " << k << ") pixel (" << dx << ", "
                                      << dy << "): " << got << ", expected " << colour(q, k);
                }
    EXPECT_EQ(wrong, 0);
}

TEST(Static, HeatmapCellsAreCrispInPngAndSvg) {
    const AttentionTrace trace = checkerboard_trace();
    auto checkerboard = [](int q, int k) { return heat_reference(kCheckerboard[q][k] / 0.5); };
    auto one_hot = [](int q, int k) { return kHeatStops[k == std::max(0, q - 1) ? 4 : 0]; };
    for (const ViewOptions& view : {options({View::matrix}), options({View::model})}) {
        const std::string svg = as_text(render_static(trace, view, StaticFormat::svg));
        const std::vector<Placed> heatmaps = images(svg, "heatmap");
        ASSERT_EQ(heatmaps.size(), view.views[0] == View::matrix ? 1u : 2u);
        for (const Placed& heatmap : heatmaps) {
            EXPECT_NE(heatmap.element.find("style=\"image-rendering:optimizeSpeed;image-rendering:"
                                           "crisp-edges;image-rendering:pixelated\""),
                      std::string::npos);
            EXPECT_NE(heatmap.element.find("preserveAspectRatio=\"none\""), std::string::npos);
        }
        // The SVG embeds one pixel per cell, exactly the cell's colour.
        const Image embedded = embedded_png(heatmaps[0]);
        ASSERT_EQ(cairo_image_surface_get_width(embedded.get()), 4);
        ASSERT_EQ(cairo_image_surface_get_height(embedded.get()), 4);
        for (int q = 0; q < 4; ++q)
            for (int k = 0; k < 4; ++k)
                EXPECT_EQ(pixel(embedded.get(), k, q), checkerboard(q, k)) << q << ", " << k;
        // The PNG puts the heatmaps where the SVG does, every pixel of a cell in its colour.
        const Image png = read_png(render_static(trace, view, StaticFormat::png));
        expect_png_size(png.get(), svg);
        expect_crisp_cells(png.get(), heatmaps[0], 4, checkerboard);
        if (heatmaps.size() == 2) expect_crisp_cells(png.get(), heatmaps[1], 4, one_hot);
    }
}

TEST(Static, HeatmapsCarryAColourBarWithTheirMaximum) {
    const AttentionTrace trace = checkerboard_trace();
    // The matrix: one vertical bar from white (0, bottom) to dark blue (the maximum, top).
    const std::string matrix =
        as_text(render_static(trace, options({View::matrix}, {0}, {0}), StaticFormat::svg));
    const std::vector<Placed> bars = images(matrix, "colour-bar");
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_GE(bars[0].height, 100);
    EXPECT_EQ(matrix.find("style=\"image-rendering:pixelated"), std::string::npos);
    EXPECT_NE(matrix.find(">max 0.5</text>"), std::string::npos);
    EXPECT_NE(matrix.find(">0</text>"), std::string::npos);
    const Image png = read_png(render_static(trace, options({View::matrix}), StaticFormat::png));
    const int bar_x = static_cast<int>(bars[0].x + bars[0].width / 2);
    EXPECT_EQ(pixel(png.get(), bar_x, static_cast<int>(bars[0].y)),
              heat_reference(1.0 - 1.0 / 256));
    EXPECT_EQ(pixel(png.get(), bar_x, static_cast<int>(bars[0].y + bars[0].height) - 1),
              heat_reference(1.0 / 256));
    // Another head, another maximum.
    EXPECT_NE(as_text(render_static(trace, options({View::matrix}, {0}, {1}), StaticFormat::svg))
                  .find(">max 1</text>"),
              std::string::npos);
    // The grid: one shared bar that says each heatmap has its own scale, and each
    // heatmap's maximum under it.
    const std::string grid =
        as_text(render_static(trace, options({View::model}), StaticFormat::svg));
    EXPECT_EQ(images(grid, "colour-bar").size(), 1u);
    EXPECT_NE(grid.find("each heatmap is scaled to its own maximum"), std::string::npos);
    const size_t first = grid.find(">max 0.5</text>"), second = grid.find(">max 1</text>");
    EXPECT_NE(first, std::string::npos);
    EXPECT_NE(second, std::string::npos);
    EXPECT_LT(first, second);  // head 0, then head 1
    EXPECT_EQ(count(grid, ">max 0.5</text>"), 1u);
    EXPECT_EQ(count(grid, ">max 1</text>"), 1u);
}

// The number of code points of UTF-8 text.
size_t code_points(const std::string& text) {
    return static_cast<size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

TEST(Static, TitleFitsAndNamesTheLayerAndHead) {
    const AttentionTrace trace = testing::pair_trace();
    for (const ViewOptions& view : {options({View::matrix}, {1}, {3}), options({View::head}, {1}),
                                    options({View::model}, {1}, {3})}) {
        const std::string svg = as_text(render_static(trace, view, StaticFormat::svg));
        const double width = svg_size(svg).first;
        const size_t at = svg.find("<text ");
        ASSERT_NE(at, std::string::npos);
        const double x = std::stod(attribute(svg, at, "x"));
        const size_t begin = svg.find('>', at) + 1;
        const std::string title = svg.substr(begin, svg.find("</text>", begin) - begin);
        EXPECT_NE(title.find("synthetic-bert"), std::string::npos) << title;
        if (view.views[0] != View::model) {
            EXPECT_NE(title.find("layer 1"), std::string::npos) << title;
        }
        if (view.views[0] == View::matrix) {
            EXPECT_NE(title.find("head 3"), std::string::npos) << title;
        }
        // 12 px DejaVu Sans: digits are 0.64 em, lower-case letters 0.6 em on average.
        EXPECT_LE(x + code_points(title) * 0.62 * 12, width) << title;
        // And as cairo sets it in the PNG.
        Image scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1), cairo_surface_destroy);
        std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(scratch.get()),
                                                              cairo_destroy);
        cairo_select_font_face(cr.get(), "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr.get(), 12);
        cairo_text_extents_t extents;
        cairo_text_extents(cr.get(), title.c_str(), &extents);
        EXPECT_LE(x + extents.x_advance, width) << title;
    }
}

TEST(Static, UnicodeAndBrokenTokenTextDrawsInPng) {
    AttentionTrace trace = testing::pair_trace();
    const std::vector<std::string> odd = {
        "\xE7\x8C\xAB", "\xF0\x9F\x98\x80",    "e\xCC\x81", "\x01\xFF\xC3",
        "\xE2\x80\xA8", std::string(300, 'w'), "",          "\xD9\x82\xD8\xB7"};
    for (size_t i = 0; i < odd.size(); ++i)
        trace.sequences[0].tokens[i + 1].text = trace.sequences[0].tokens[i + 1].display = odd[i];
    for (View view : {View::head, View::matrix, View::model}) {
        const Image png = read_png(render_static(trace, options({view}), StaticFormat::png));
        EXPECT_GT(cairo_image_surface_get_width(png.get()), 100) << view_name(view);
        const std::string svg = as_text(render_static(trace, options({view}), StaticFormat::svg));
        EXPECT_EQ(svg.find(std::string(300, 'w')), std::string::npos) << "long tokens are cut";
    }
}

// One thumbnail pixel of a long input: the largest weight of the tokens it pools
// (q * 96 / n == row, k * 96 / n == column), over the head's maximum.
Rgb pooled_reference(const AttentionBlock& block, int layer, int head, int row, int column) {
    const int n = block.n_queries, side = 96;
    float top = 0, peak = 0;
    for (int q = 0; q < n; ++q)
        for (int k = 0; k < n; ++k) {
            const float p = block.prob(layer, head, q, k);
            top = std::max(top, p);
            if (q * side / n == row && k * side / n == column) peak = std::max(peak, p);
        }
    return heat_reference(peak / top);
}

TEST(Static, BertBaseGridOf490TokensExportsToPng) {
    // 12 x 12 diffuse heatmaps of 480-500 tokens made a 23 MB SVG that librsvg stopped reading
    // ("Premature end of data"); the PNG is now drawn directly and thumbnails are pooled.
    const AttentionTrace trace =
        testing::sized_trace(12, 12, 490, false, 4, false, testing::kDiffuse);
    const std::string svg =
        as_text(render_static(trace, options({View::model}), StaticFormat::svg));
    EXPECT_EQ(images(svg, "heatmap").size(), 144u);
    EXPECT_LT(svg.size(), 4000000u);
    const Image png = read_png(render_static(trace, options({View::model}), StaticFormat::png));
    expect_png_size(png.get(), svg);
}

TEST(Static, LongInputGridExportsToPngAndSvg) {
    // 490 tokens used to fail ("librsvg could not read the SVG"); 2048 is the longest model input.
    for (int tokens : {500, 2048}) {
        const AttentionTrace trace = testing::sized_trace(2, 2, tokens, true, 4, false);
        const std::string svg =
            as_text(render_static(trace, options({View::model}), StaticFormat::svg));
        EXPECT_LT(svg.size(), 400000u) << "thumbnails are pooled to 96 x 96";
        const std::vector<Placed> heatmaps = images(svg, "heatmap");
        ASSERT_EQ(heatmaps.size(), 4u);
        const Image embedded = embedded_png(heatmaps[3]);
        EXPECT_EQ(cairo_image_surface_get_width(embedded.get()), 96);
        EXPECT_EQ(cairo_image_surface_get_height(embedded.get()), 96);
        const Image png = read_png(render_static(trace, options({View::model}), StaticFormat::png));
        expect_png_size(png.get(), svg);
        const AttentionBlock& block = trace.blocks[0];
        // Layer 1, head 1: the first token attends only to itself (the maximum, dark
        // blue), the top right is masked (white), and a pixel on the diagonal.
        const Placed& at = heatmaps[3];
        auto png_pixel = [&](int row, int column) {
            return pixel(png.get(), static_cast<int>(at.x) + column, static_cast<int>(at.y) + row);
        };
        EXPECT_EQ(png_pixel(0, 0), kHeatStops[4]);
        EXPECT_EQ(png_pixel(0, 95), kHeatStops[0]);
        for (int diagonal : {40, 77})
            EXPECT_EQ(png_pixel(diagonal, diagonal),
                      pooled_reference(block, 1, 1, diagonal, diagonal))
                << tokens << " tokens";
        EXPECT_EQ(pixel(embedded.get(), 40, 40), pooled_reference(block, 1, 1, 40, 40));
    }
    // A 2048-token head view is 41006 pixels tall: more than a PNG may be, said in one line.
    try {
        render_static(testing::sized_trace(1, 1, 2048, true, 4, false), options({View::head}),
                      StaticFormat::png);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("more than PNG export allows (32767)"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace attnviz
