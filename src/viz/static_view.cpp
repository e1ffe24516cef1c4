// render_static: views as standalone SVG for papers, and as PNG drawn by
// cairo. Each view is laid out once and drawn through a Canvas, which writes
// either SVG elements or cairo calls, so the two formats cannot drift apart.
// No browser: the head view draws its lines one by one; the model grid and the
// matrix draw their heatmaps as images of one pixel per cell, scaled with
// nearest-neighbour sampling so cells stay crisp.
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numbers>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "viz/codec.h"
#include "viz/payload.h"

// fontconfig (under cairo's text) keeps its caches for the life of the
// process by design; LeakSanitizer would report them from any program that
// exports a PNG. Sanitizer builds only.
#if defined(__SANITIZE_ADDRESS__)
#define ATTNVIZ_LSAN_SUPPRESSIONS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTNVIZ_LSAN_SUPPRESSIONS 1
#endif
#endif
#ifdef ATTNVIZ_LSAN_SUPPRESSIONS
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace attnviz {

namespace {

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
};

// The page's head colours (web/core.js headColor): hues a golden angle apart
// and three lightness steps, so 16+ heads stay distinct.
Rgb head_color(int head) {
    const double hue = std::fmod(head * 137.508, 360.0);
    const double lightness = (head % 3 == 0 ? 45 : head % 3 == 1 ? 58 : 36) / 100.0;
    const double saturation = 0.72;
    auto channel = [&](double n) {
        const double k = std::fmod(n + hue / 30.0, 12.0);
        const double a = saturation * std::min(lightness, 1 - lightness);
        return static_cast<uint8_t>(
            std::lround(255 * (lightness - a * std::max(-1.0, std::min({k - 3, 9 - k, 1.0})))));
    };
    return {channel(0), channel(8), channel(4)};
}

// White to dark blue, as the page's light theme draws heatmaps (web/heat_scale.js heatTable).
// x is the weight over the heatmap's maximum.
Rgb heat_color(float x) {
    static const float stops[5][3] = {
        {255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    x = std::clamp(std::isfinite(x) ? x : 0.0f, 0.0f, 1.0f) * 4.0f;
    const int i = std::min(3, static_cast<int>(x));
    const float t = x - static_cast<float>(i);
    uint8_t rgb[3];
    for (int c = 0; c < 3; ++c)
        rgb[c] =
            static_cast<uint8_t>(std::lround(stops[i][c] + t * (stops[i + 1][c] - stops[i][c])));
    return {rgb[0], rgb[1], rgb[2]};
}

// An image of one pixel per heatmap cell, in cairo's RGB24 layout (0x00RRGGBB).
struct Pixels {
    int width = 0, height = 0;
    std::vector<uint32_t> rgb;

    Pixels(int width_, int height_)
        : width(width_), height(height_), rgb(static_cast<size_t>(width_) * height_) {}
    void set(int x, int y, Rgb c) {
        rgb[static_cast<size_t>(y) * width + x] =
            (uint32_t{c.r} << 16) | (uint32_t{c.g} << 8) | c.b;
    }
};

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

// A cairo surface over pixels' memory (no copy); pixels must outlive it.
Surface pixels_surface(const Pixels& pixels) {
    // An RGB24 row is width * 4 bytes, always a stride cairo accepts.
    Surface surface(cairo_image_surface_create_for_data(
                        reinterpret_cast<unsigned char*>(const_cast<uint32_t*>(pixels.rgb.data())),
                        CAIRO_FORMAT_RGB24, pixels.width, pixels.height, pixels.width * 4),
                    cairo_surface_destroy);
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
        throw Error("cairo could not make a " + std::to_string(pixels.width) + " x " +
                    std::to_string(pixels.height) + " image");
    return surface;
}

cairo_status_t append_to_vector(void* closure, const unsigned char* data, unsigned int length) {
    auto* out = static_cast<std::vector<uint8_t>*>(closure);
    out->insert(out->end(), data, data + length);
    return CAIRO_STATUS_SUCCESS;
}

std::vector<uint8_t> surface_png(cairo_surface_t* surface) {
    std::vector<uint8_t> png;
    if (cairo_surface_write_to_png_stream(surface, append_to_vector, &png) != CAIRO_STATUS_SUCCESS)
        throw Error("cairo could not write the PNG");
    return png;
}

// Six significant digits: whole pixels up to 999999 (a 2048-token head view is 41006 tall).
std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

// A weight as a colour bar labels it: three significant digits ("0.734", "1", "0.00488").
std::string weight_label(float weight) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", static_cast<double>(weight));
    return text;
}

// "H3", "L11" (written this way: GCC 12 warns falsely on "H" + std::to_string(n)).
std::string prefixed(char letter, int index) {
    std::string text(1, letter);
    text += std::to_string(index);
    return text;
}

constexpr const char* kFontFamily = "DejaVu Sans";
constexpr double kFontSize = 12;

// A generous estimate of how wide text is in DejaVu Sans (what both formats
// ask for), from its code points: 0.65 em for most (DejaVu's Latin letters
// and digits are 0.28-0.75 em, about 0.6 on average), 1 em from U+1100 on
// (East Asian and other wide scripts), 0 for combining marks. Layout uses it
// so that the SVG, whose font the viewer picks, needs no font to lay out.
double text_width(std::string_view text, double size) {
    const std::string valid = viz::valid_text(text);
    double em = 0;
    for (size_t i = 0; i < valid.size();) {
        const auto lead = static_cast<unsigned char>(valid[i]);
        const size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
        for (size_t k = 1; k < length; ++k)
            code = (code << 6) | (static_cast<unsigned char>(valid[i + k]) & 0x3F);
        i += length;
        em += code >= 0x0300 && code < 0x0370 ? 0 : code >= 0x1100 ? 1.0 : 0.65;
    }
    return em * size;
}

// text, cut to at most width (by text_width) with an ellipsis: long tokens
// stay beside their row instead of running over the picture's edge.
std::string fit_text(const std::string& text, double size, double width) {
    if (text_width(text, size) <= width) return text;
    std::string cut = viz::valid_text(text);
    const std::string ellipsis = "\xE2\x80\xA6";
    while (!cut.empty() && text_width(cut + ellipsis, size) > width) {
        size_t end = cut.size() - 1;
        while (end > 0 && (static_cast<unsigned char>(cut[end]) & 0xC0) == 0x80) --end;
        cut.resize(end);
    }
    return cut + ellipsis;
}

enum class Anchor { start, middle, end };

// What a view draws with. Coordinates are pixels from the top left; text is
// placed by its baseline.
class Canvas {
public:
    virtual ~Canvas() = default;
    // tooltip: SVG only (a <title>), where a reader can hover.
    virtual void rect(double x, double y, double width, double height, Rgb fill,
                      const std::string& tooltip) = 0;
    virtual void line(double x1, double y1, double x2, double y2, Rgb stroke, double line_width,
                      double opacity) = 0;
    // upward: turned 90 degrees counter-clockwise about (x, y), read bottom to top.
    virtual void text(double x, double y, const std::string& text, Anchor anchor, double size,
                      bool upward = false) = 0;
    // pixels scaled to the rectangle, nearest-neighbour: one crisp cell per pixel.
    // role names the image in the SVG (class="heatmap", "colour-bar").
    virtual void image(double x, double y, double width, double height, const Pixels& pixels,
                       const char* role) = 0;
};

class SvgCanvas final : public Canvas {
public:
    // xml:space="preserve": the titles' double spaces stay, as in the PNG.
    SvgCanvas(double width, double height) {
        svg_ =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
            "xmlns=\"http://www.w3.org/2000/svg\" xml:space=\"preserve\" width=\"" +
            number(width) + "\" height=\"" + number(height) + "\" viewBox=\"0 0 " + number(width) +
            " " + number(height) + "\" font-family=\"" + kFontFamily +
            ", sans-serif\" font-size=\"" + number(kFontSize) +
            "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    }

    void rect(double x, double y, double width, double height, Rgb fill,
              const std::string& tooltip) override {
        end_lines();
        svg_ += "<rect x=\"" + number(x) + "\" y=\"" + number(y) + "\" width=\"" + number(width) +
                "\" height=\"" + number(height) + "\" fill=\"" + hex(fill) +
                "\" shape-rendering=\"crispEdges\"";
        if (tooltip.empty()) {
            svg_ += "/>\n";
        } else {
            svg_ += "><title>";
            svg_ += viz::escape_xml(tooltip);
            svg_ += "</title></rect>\n";
        }
    }

    // Lines of one colour and width share a <g>: the head view draws thousands.
    void line(double x1, double y1, double x2, double y2, Rgb stroke, double line_width,
              double opacity) override {
        const std::string group =
            "<g stroke=\"" + hex(stroke) + "\" stroke-width=\"" + number(line_width) + "\">\n";
        if (group != line_group_) {
            end_lines();
            svg_ += group;
            line_group_ = group;
        }
        svg_ += "<line x1=\"" + number(x1) + "\" y1=\"" + number(y1) + "\" x2=\"" + number(x2) +
                "\" y2=\"" + number(y2) + "\" stroke-opacity=\"" + opacity_text(opacity) + "\"/>\n";
    }

    void text(double x, double y, const std::string& text, Anchor anchor, double size,
              bool upward) override {
        end_lines();
        svg_ += "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\"";
        if (anchor != Anchor::start)
            svg_ += anchor == Anchor::middle ? " text-anchor=\"middle\"" : " text-anchor=\"end\"";
        if (size != kFontSize) svg_ += " font-size=\"" + number(size) + "\"";
        if (upward) svg_ += " transform=\"rotate(-90 " + number(x) + " " + number(y) + ")\"";
        svg_ += '>';  // appended piece by piece: GCC 12 warns falsely on ">" + string
        svg_ += viz::escape_xml(text);
        svg_ += "</text>\n";
    }

    // The SVG 1.1 attribute, then CSS values from oldest to newest: each
    // viewer keeps the last one it knows, so none smooths the cells.
    void image(double x, double y, double width, double height, const Pixels& pixels,
               const char* role) override {
        end_lines();
        const Surface surface = pixels_surface(pixels);
        svg_ += "<image class=\"" + std::string(role) + "\" x=\"" + number(x) + "\" y=\"" +
                number(y) + "\" width=\"" + number(width) + "\" height=\"" + number(height) +
                "\" preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" "
                "style=\"image-rendering:optimizeSpeed;image-rendering:crisp-edges;"
                "image-rendering:pixelated\" href=\"data:image/png;base64," +
                viz::base64_encode(surface_png(surface.get())) + "\"/>\n";
    }

    std::vector<uint8_t> finish() {
        end_lines();
        svg_ += "</svg>\n";
        return std::vector<uint8_t>(svg_.begin(), svg_.end());
    }

private:
    static std::string opacity_text(double opacity) {  // 8-bit colour needs no more
        char text[16];
        std::snprintf(text, sizeof text, "%.3g", opacity);
        return text;
    }
    static std::string hex(Rgb c) {
        char text[8];
        std::snprintf(text, sizeof text, "#%02x%02x%02x", c.r, c.g, c.b);
        return text;
    }
    void end_lines() {
        if (line_group_.empty()) return;
        svg_ += "</g>\n";
        line_group_.clear();
    }

    std::string svg_;
    std::string line_group_;  // the open <g> of lines, or empty
};

class CairoCanvas final : public Canvas {
public:
    CairoCanvas(double width, double height)
        : surface_(nullptr, cairo_surface_destroy), cairo_(nullptr, cairo_destroy) {
        constexpr double kMostPixels = 32767;  // cairo's largest image side
        if (width > kMostPixels || height > kMostPixels)
            throw Error("the picture is " + number(width) + " x " + number(height) +
                        " pixels, more than PNG export allows (32767); choose fewer tokens or SVG");
        surface_.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24,
                                                  static_cast<int>(std::ceil(width)),
                                                  static_cast<int>(std::ceil(height))));
        if (cairo_surface_status(surface_.get()) != CAIRO_STATUS_SUCCESS)
            throw Error("cairo could not make a " + number(width) + " x " + number(height) +
                        " image");
        cairo_.reset(cairo_create(surface_.get()));
        cairo_set_source_rgb(cairo_.get(), 1, 1, 1);
        cairo_paint(cairo_.get());
        cairo_select_font_face(cairo_.get(), kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_NORMAL);
    }

    void rect(double x, double y, double width, double height, Rgb fill,
              const std::string&) override {
        set_colour(fill, 1);
        cairo_rectangle(cairo_.get(), x, y, width, height);
        cairo_fill(cairo_.get());
    }

    void line(double x1, double y1, double x2, double y2, Rgb stroke, double line_width,
              double opacity) override {
        set_colour(stroke, opacity);
        cairo_set_line_width(cairo_.get(), line_width);
        cairo_move_to(cairo_.get(), x1, y1);
        cairo_line_to(cairo_.get(), x2, y2);
        cairo_stroke(cairo_.get());
    }

    // cairo's text API wants valid UTF-8 (it stops drawing for good on a bad
    // string), so the text is cleaned as the SVG's is.
    void text(double x, double y, const std::string& text, Anchor anchor, double size,
              bool upward) override {
        const std::string valid = viz::valid_text(text);
        cairo_t* cr = cairo_.get();
        cairo_save(cr);
        set_colour({0, 0, 0}, 1);
        cairo_set_font_size(cr, size);
        cairo_text_extents_t extents;
        cairo_text_extents(cr, valid.c_str(), &extents);
        const double shift = anchor == Anchor::start    ? 0
                             : anchor == Anchor::middle ? extents.x_advance / 2
                                                        : extents.x_advance;
        cairo_translate(cr, x, y);
        if (upward) cairo_rotate(cr, -std::numbers::pi / 2);
        cairo_move_to(cr, -shift, 0);
        cairo_show_text(cr, valid.c_str());
        cairo_restore(cr);
    }

    void image(double x, double y, double width, double height, const Pixels& pixels,
               const char*) override {
        const Surface source = pixels_surface(pixels);
        cairo_t* cr = cairo_.get();
        cairo_save(cr);
        cairo_rectangle(cr, x, y, width, height);
        cairo_clip(cr);
        cairo_translate(cr, x, y);
        cairo_scale(cr, width / pixels.width, height / pixels.height);
        cairo_set_source_surface(cr, source.get(), 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        // PAD: the edge cells reach the clip's edge instead of fading into nothing.
        cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
        cairo_paint(cr);
        cairo_restore(cr);
    }

    std::vector<uint8_t> finish() {
        if (cairo_status(cairo_.get()) != CAIRO_STATUS_SUCCESS)
            throw Error(std::string("cairo could not draw the picture: ") +
                        cairo_status_to_string(cairo_status(cairo_.get())));
        cairo_surface_flush(surface_.get());
        return surface_png(surface_.get());
    }

private:
    void set_colour(Rgb c, double opacity) {
        cairo_set_source_rgba(cairo_.get(), c.r / 255.0, c.g / 255.0, c.b / 255.0, opacity);
    }

    Surface surface_;
    Context cairo_;
};

// A view laid out: its size, and how to draw it on either canvas.
struct Picture {
    double width = 0, height = 0;
    std::function<void(Canvas&)> draw;
};

const std::string& shown_text(const TraceToken& token) {
    return token.display.empty() ? token.text : token.display;
}

double widest_token(const std::vector<TraceToken>& queries, const std::vector<TraceToken>& keys,
                    double size) {
    double widest = 0;
    for (const auto* tokens : {&queries, &keys})
        for (const TraceToken& token : *tokens)
            widest = std::max(widest, text_width(shown_text(token), size));
    return widest;
}

// Every picture's title sits at (10, 16); the picture is at least wide enough for it.
constexpr double kMargin = 10, kTitleBaseline = 16;
double width_for_title(double content_width, const std::string& title) {
    return std::max(content_width, std::ceil(2 * kMargin + text_width(title, kFontSize)));
}

// One head's [queries][keys] weights, one value per heatmap cell. Beyond
// most_side tokens a side is max-pooled to most_side cells (cell r holds the
// tokens t with t * most_side / n == r, as the page's thumbnails), so no peak
// disappears.
struct Heatmap {
    int rows = 0, cols = 0;
    std::vector<float> cells;  // [rows][cols]
    float maximum = 0;         // of every weight (NaN ignored), so of the cells
};

Heatmap pooled_heatmap(const AttentionBlock& block, int layer, int head, int most_side) {
    Heatmap map;
    map.rows = std::min(block.n_queries, most_side);
    map.cols = std::min(block.n_keys, most_side);
    map.cells.assign(static_cast<size_t>(map.rows) * map.cols, 0.0f);
    std::vector<int> first_key(map.cols + 1);  // cell column c: keys first_key[c] .. [c + 1]
    for (int c = 0; c <= map.cols; ++c)
        first_key[c] =
            static_cast<int>((static_cast<int64_t>(c) * block.n_keys + map.cols - 1) / map.cols);
    for (int q = 0; q < block.n_queries; ++q) {
        const int row = static_cast<int>(static_cast<int64_t>(q) * map.rows / block.n_queries);
        const float* weights = block.probs.data() + block.index(layer, head, q, 0);
        float* out = map.cells.data() + static_cast<size_t>(row) * map.cols;
        for (int c = 0; c < map.cols; ++c) {
            float top = out[c];
            for (int k = first_key[c]; k < first_key[c + 1]; ++k) top = std::max(top, weights[k]);
            out[c] = top;
        }
    }
    for (float cell : map.cells) map.maximum = std::max(map.maximum, cell);
    return map;
}

// Each cell over the heatmap's maximum, as colour.
Pixels heat_pixels(const Heatmap& map) {
    Pixels pixels(map.cols, map.rows);
    for (int r = 0; r < map.rows; ++r)
        for (int c = 0; c < map.cols; ++c) {
            const float cell = map.cells[static_cast<size_t>(r) * map.cols + c];
            pixels.set(c, r, heat_color(map.maximum > 0 ? cell / map.maximum : 0.0f));
        }
    return pixels;
}

// The heatmap colours from 0 to the maximum, in steps finer than the eye sees.
Pixels colour_bar(bool vertical) {
    constexpr int kSteps = 128;
    Pixels pixels(vertical ? 1 : kSteps, vertical ? kSteps : 1);
    for (int i = 0; i < kSteps; ++i) {
        const float x = (static_cast<float>(i) + 0.5f) / kSteps;
        if (vertical)
            pixels.set(0, kSteps - 1 - i, heat_color(x));  // the maximum at the top
        else
            pixels.set(i, 0, heat_color(x));
    }
    return pixels;
}

Picture head_view(const AttentionTrace& trace, const AttentionBlock& block, int layer,
                  const std::vector<int>& heads) {
    const auto& queries = trace.sequences[block.query_sequence].tokens;
    const auto& keys = trace.sequences[block.key_sequence].tokens;
    const std::string title =
        trace.model_id + "  " + block.name + "  layer " + std::to_string(block.layer_id(layer));
    const double row = 20, top = 46;
    const double token_width = std::clamp(widest_token(queries, keys, kFontSize) + 12, 50.0, 180.0);
    const double lines_width = 150;
    const double x_left = kMargin + token_width, x_right = x_left + lines_width;
    Picture picture;
    picture.width = width_for_title(2 * token_width + lines_width + 2 * kMargin, title);
    picture.height = top + std::max(queries.size(), keys.size()) * row + 10;
    picture.draw = [=, &block, &queries, &keys](Canvas& canvas) {
        canvas.text(kMargin, kTitleBaseline, title, Anchor::start, kFontSize);
        for (size_t h = 0; h < heads.size(); ++h)
            canvas.rect(kMargin + h * 18.0, 24, 14, 12, head_color(heads[h]),
                        "head " + std::to_string(block.head_id(heads[h])));
        const double active = static_cast<double>(heads.size());
        for (int head : heads)
            for (int q = 0; q < block.n_queries; ++q)
                for (int k = 0; k < block.n_keys; ++k) {
                    const double opacity = block.prob(layer, head, q, k) / active;
                    if (!(opacity >= 1.0 / 255)) continue;  // invisible at 8-bit colour
                    canvas.line(x_left, top + (q + 0.5) * row, x_right, top + (k + 0.5) * row,
                                head_color(head), 1.5, opacity);
                }
        const double label_width = token_width - 6;
        for (size_t q = 0; q < queries.size(); ++q)
            canvas.text(x_left - 6, top + (q + 0.5) * row + 4,
                        fit_text(shown_text(queries[q]), kFontSize, label_width), Anchor::end,
                        kFontSize);
        for (size_t k = 0; k < keys.size(); ++k)
            canvas.text(x_right + 6, top + (k + 0.5) * row + 4,
                        fit_text(shown_text(keys[k]), kFontSize, label_width), Anchor::start,
                        kFontSize);
    };
    return picture;
}

// Layers x heads thumbnails, each scaled to its own maximum (printed under
// it): a shared scale would leave every diffuse head blank.
Picture model_grid(const AttentionTrace& trace, const AttentionBlock& block,
                   const std::vector<int>& layers, const std::vector<int>& heads) {
    constexpr int kThumbnail = 96;  // pixels a side; longer inputs are max-pooled to it
    const double cell = kThumbnail, gap = 8, label = 14, left = 40, top = 70;
    const double legend_y = 26, legend_bar = 96, legend_font = 11;
    const std::string title =
        trace.model_id + "  " + block.name + "  (rows: layers, columns: heads)";
    const std::string legend = "max (each heatmap is scaled to its own maximum, printed under it)";
    const double legend_x = std::round(kMargin + text_width("0", legend_font) + 4);
    const double legend_text_x = legend_x + legend_bar + 4;
    Picture picture;
    picture.width =
        std::max({width_for_title(left + heads.size() * (cell + gap), title),
                  std::ceil(legend_text_x + text_width(legend, legend_font) + kMargin)});
    picture.height = top + layers.size() * (cell + label + gap);
    picture.draw = [=, &block](Canvas& canvas) {
        canvas.text(kMargin, kTitleBaseline, title, Anchor::start, kFontSize);
        canvas.text(kMargin, legend_y + 9, "0", Anchor::start, legend_font);
        canvas.image(legend_x, legend_y, legend_bar, 10, colour_bar(false), "colour-bar");
        canvas.text(legend_text_x, legend_y + 9, legend, Anchor::start, legend_font);
        for (size_t h = 0; h < heads.size(); ++h)
            canvas.text(left + h * (cell + gap) + cell / 2, top - 8,
                        prefixed('H', block.head_id(heads[h])), Anchor::middle, kFontSize);
        for (size_t l = 0; l < layers.size(); ++l) {
            const double y = top + l * (cell + label + gap);
            canvas.text(left - 6, y + cell / 2 + 4, prefixed('L', block.layer_id(layers[l])),
                        Anchor::end, kFontSize);
            for (size_t h = 0; h < heads.size(); ++h) {
                const double x = left + h * (cell + gap);
                const Heatmap map = pooled_heatmap(block, layers[l], heads[h], kThumbnail);
                canvas.image(x, y, cell, cell, heat_pixels(map), "heatmap");
                canvas.text(x + cell / 2, y + cell + 11, "max " + weight_label(map.maximum),
                            Anchor::middle, 10);
            }
        }
    };
    return picture;
}

Picture matrix(const AttentionTrace& trace, const AttentionBlock& block, int layer, int head) {
    const auto& queries = trace.sequences[block.query_sequence].tokens;
    const auto& keys = trace.sequences[block.key_sequence].tokens;
    const std::string title =
        trace.model_id + "  " + block.name + "  layer " + std::to_string(block.layer_id(layer)) +
        "  head " + std::to_string(block.head_id(head)) + "  (rows: queries, columns: keys)";
    const double cell =
        std::clamp(std::floor(800.0 / std::max(block.n_queries, block.n_keys)), 1.0, 18.0);
    const bool labels = cell >= 8;
    const double label_font = std::min(cell - 1, 12.0);
    const double label_space =
        labels ? std::ceil(std::min(widest_token(queries, keys, label_font) + 10, 160.0)) : 10;
    const double left = label_space + kMargin, top = 30 + label_space;
    const double map_width = block.n_keys * cell, map_height = block.n_queries * cell;
    // The colour bar: right of the heatmap, at least 100 pixels tall.
    const double bar_x = left + map_width + 14, bar_width = 12;
    const double bar_height = std::clamp(map_height, 100.0, 300.0), bar_font = 11;
    Heatmap heatmap = pooled_heatmap(block, layer, head, std::max(block.n_queries, block.n_keys));
    const std::string max_label = "max " + weight_label(heatmap.maximum);
    const double bar_text_x = bar_x + bar_width + 4;
    Picture picture;
    picture.width =
        width_for_title(std::ceil(bar_text_x + text_width(max_label, bar_font) + kMargin), title);
    picture.height = top + std::max(map_height, bar_height) + 10;
    picture.draw = [=, &queries, &keys, heatmap = std::move(heatmap)](Canvas& canvas) {
        canvas.text(kMargin, kTitleBaseline, title, Anchor::start, kFontSize);
        canvas.image(left, top, map_width, map_height, heat_pixels(heatmap), "heatmap");
        canvas.image(bar_x, top, bar_width, bar_height, colour_bar(true), "colour-bar");
        canvas.text(bar_text_x, top + 9, max_label, Anchor::start, bar_font);
        canvas.text(bar_text_x, top + bar_height, "0", Anchor::start, bar_font);
        if (!labels) return;
        const double label_width = label_space - 6;
        for (size_t q = 0; q < queries.size(); ++q)
            canvas.text(left - 4, top + (q + 0.75) * cell,
                        fit_text(shown_text(queries[q]), label_font, label_width), Anchor::end,
                        label_font);
        for (size_t k = 0; k < keys.size(); ++k)
            canvas.text(left + (k + 0.75) * cell, top - 4,
                        fit_text(shown_text(keys[k]), label_font, label_width), Anchor::start,
                        label_font, true);
    };
    return picture;
}

}  // namespace

std::vector<uint8_t> render_static(const AttentionTrace& trace, const ViewOptions& options,
                                   StaticFormat format) {
    viz::check_trace(trace);
    if (options.views.empty()) throw Error("no view chosen");
    const AttentionBlock& block = trace.blocks[viz::find_block(trace, options.block)];
    const std::vector<int> layers = viz::chosen_layers(trace, block, options);
    const std::vector<int> heads = viz::chosen_heads(trace, block, options);
    if (layers.empty() || heads.empty())
        throw Error("no chosen layer or head exists in attention block \"" + block.name + "\"");
    Picture picture;
    switch (options.views.front()) {
        case View::head:
            picture = head_view(trace, block, layers.front(), heads);
            break;
        case View::model:
            picture = model_grid(trace, block, layers, heads);
            break;
        case View::matrix:
            picture = matrix(trace, block, layers.front(), heads.front());
            break;
        case View::neuron:
            throw Error("the neuron view has no static form; use head, model or matrix");
    }
    if (format == StaticFormat::png) {
        CairoCanvas canvas(picture.width, picture.height);
        picture.draw(canvas);
        return canvas.finish();
    }
    SvgCanvas canvas(picture.width, picture.height);
    picture.draw(canvas);
    return canvas.finish();
}

}  // namespace attnviz
