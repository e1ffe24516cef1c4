// render_static: views as standalone SVG for papers, and PNG through librsvg
// and cairo. No browser: the head view draws its lines as SVG <line>s; the
// model grid and the matrix embed their heatmaps as PNG images.
#include <cairo.h>
#include <librsvg/rsvg.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "attnviz/error.h"
#include "attnviz/views.h"
#include "viz/codec.h"
#include "viz/payload.h"

// fontconfig (under librsvg's text layout) keeps its caches for the life of
// the process by design; LeakSanitizer would report them from any program
// that exports PNG or SVG text. Sanitizer builds only.
#if defined(__SANITIZE_ADDRESS__)
#define ATTNVIZ_LSAN_SUPPRESSIONS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTNVIZ_LSAN_SUPPRESSIONS 1
#endif
#endif
#ifdef ATTNVIZ_LSAN_SUPPRESSIONS
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libfontconfig.so\nleak:libpangoft2\nleak:libpango-1.0.so\n";
}
#endif

namespace attnviz {

namespace {

// The page's head colours (web/core.js headColor): hues a golden angle apart
// and three lightness steps, so 16+ heads stay distinct.
std::string head_color(int head) {
    const double hue = std::fmod(head * 137.508, 360.0);
    const double lightness = (head % 3 == 0 ? 45 : head % 3 == 1 ? 58 : 36) / 100.0;
    const double saturation = 0.72;
    auto channel = [&](double n) {
        const double k = std::fmod(n + hue / 30.0, 12.0);
        const double a = saturation * std::min(lightness, 1 - lightness);
        return static_cast<int>(
            std::lround(255 * (lightness - a * std::max(-1.0, std::min({k - 3, 9 - k, 1.0})))));
    };
    char text[8];
    std::snprintf(text, sizeof text, "#%02x%02x%02x", channel(0), channel(8), channel(4));
    return text;
}

// White to dark blue, as the page's light theme draws heatmaps (web/core.js heatColor).
void heat_rgb(float x, uint8_t rgb[3]) {
    static const float stops[5][3] = {
        {255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    x = std::clamp(std::isfinite(x) ? x : 0.0f, 0.0f, 1.0f) * 4.0f;
    const int i = std::min(3, static_cast<int>(x));
    const float t = x - static_cast<float>(i);
    for (int c = 0; c < 3; ++c)
        rgb[c] =
            static_cast<uint8_t>(std::lround(stops[i][c] + t * (stops[i + 1][c] - stops[i][c])));
}

cairo_status_t append_to_vector(void* closure, const unsigned char* data, unsigned int length) {
    auto* out = static_cast<std::vector<uint8_t>*>(closure);
    out->insert(out->end(), data, data + length);
    return CAIRO_STATUS_SUCCESS;
}

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

std::vector<uint8_t> surface_png(cairo_surface_t* surface) {
    std::vector<uint8_t> png;
    if (cairo_surface_write_to_png_stream(surface, append_to_vector, &png) != CAIRO_STATUS_SUCCESS)
        throw Error("cairo could not write the PNG");
    return png;
}

// One head's [queries][keys] matrix as a PNG, one pixel per weight, scaled by its maximum.
std::string heatmap_data_uri(const AttentionBlock& block, int layer, int head) {
    const int rows = block.n_queries, cols = block.n_keys;
    Surface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, cols, rows),
                    cairo_surface_destroy);
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
        throw Error("cairo could not make a " + std::to_string(cols) + " x " +
                    std::to_string(rows) + " image");
    const float* probs = block.probs.data() + block.index(layer, head, 0, 0);
    float top = 0.0f;
    for (size_t i = 0; i < static_cast<size_t>(rows) * cols; ++i) top = std::max(top, probs[i]);
    cairo_surface_flush(surface.get());
    uint8_t* pixels = cairo_image_surface_get_data(surface.get());
    const int stride = cairo_image_surface_get_stride(surface.get());
    for (int q = 0; q < rows; ++q) {
        auto* row = reinterpret_cast<uint32_t*>(pixels + static_cast<size_t>(q) * stride);
        for (int k = 0; k < cols; ++k) {
            uint8_t rgb[3];
            heat_rgb(top > 0 ? probs[static_cast<size_t>(q) * cols + k] / top : 0.0f, rgb);
            row[k] = (uint32_t{rgb[0]} << 16) | (uint32_t{rgb[1]} << 8) | rgb[2];
        }
    }
    cairo_surface_mark_dirty(surface.get());
    return "data:image/png;base64," + viz::base64_encode(surface_png(surface.get()));
}

// "H3", "L11" (written this way: GCC 12 warns falsely on "H" + std::to_string(n)).
std::string prefixed(char letter, int index) {
    std::string text(1, letter);
    text += std::to_string(index);
    return text;
}

std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", value);
    return text;
}

std::string text_element(double x, double y, const std::string& anchor, const std::string& text,
                         const std::string& extra = "") {
    return "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\" text-anchor=\"" + anchor + "\"" +
           extra + ">" + viz::escape_xml(text) + "</text>\n";
}

std::string svg_open(double width, double height) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
           "width=\"" +
           number(width) + "\" height=\"" + number(height) + "\" viewBox=\"0 0 " + number(width) +
           " " + number(height) +
           "\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" "
           "height=\"100%\" fill=\"#ffffff\"/>\n";
}

const std::string& shown_text(const TraceToken& token) {
    return token.display.empty() ? token.text : token.display;
}

std::string head_view_svg(const AttentionTrace& trace, const AttentionBlock& block, int layer,
                          const std::vector<int>& heads) {
    const auto& queries = trace.sequences[block.query_sequence].tokens;
    const auto& keys = trace.sequences[block.key_sequence].tokens;
    size_t longest = 1;
    for (const auto* tokens : {&queries, &keys})
        for (const TraceToken& token : *tokens)
            longest = std::max(longest, shown_text(token).size());
    const double row = 20, top = 46, token_width = std::clamp(longest * 7.5 + 12, 50.0, 180.0);
    const double lines_width = 150, width = 2 * token_width + lines_width + 20;
    const double height = top + std::max(queries.size(), keys.size()) * row + 10;
    std::string svg = svg_open(width, height);
    svg += text_element(10, 16, "start",
                        trace.model_id + "  " + block.name + "  layer " + std::to_string(layer));
    for (size_t h = 0; h < heads.size(); ++h)
        svg += "<rect x=\"" + number(10 + h * 18.0) +
               "\" y=\"24\" width=\"14\" height=\"12\" fill=\"" + head_color(heads[h]) +
               "\"><title>head " + std::to_string(heads[h]) + "</title></rect>\n";
    const double x_left = 10 + token_width, x_right = x_left + lines_width;
    svg += "<g stroke-width=\"1.5\">\n";
    const double active = static_cast<double>(heads.size());
    for (int head : heads) {
        svg += "<g stroke=\"" + head_color(head) + "\">\n";
        for (int q = 0; q < block.n_queries; ++q)
            for (int k = 0; k < block.n_keys; ++k) {
                const double opacity = block.prob(layer, head, q, k) / active;
                if (!(opacity >= 1.0 / 255)) continue;  // invisible at 8-bit colour
                svg += "<line x1=\"" + number(x_left) + "\" y1=\"" + number(top + (q + 0.5) * row) +
                       "\" x2=\"" + number(x_right) + "\" y2=\"" + number(top + (k + 0.5) * row) +
                       "\" stroke-opacity=\"" + number(opacity) + "\"/>\n";
            }
        svg += "</g>\n";
    }
    svg += "</g>\n";
    for (size_t q = 0; q < queries.size(); ++q)
        svg += text_element(x_left - 6, top + (q + 0.5) * row + 4, "end", shown_text(queries[q]));
    for (size_t k = 0; k < keys.size(); ++k)
        svg += text_element(x_right + 6, top + (k + 0.5) * row + 4, "start", shown_text(keys[k]));
    return svg + "</svg>\n";
}

std::string model_grid_svg(const AttentionTrace& trace, const AttentionBlock& block,
                           const std::vector<int>& layers, const std::vector<int>& heads) {
    const double cell = 96, gap = 8, left = 40, top = 44;
    const double width = left + heads.size() * (cell + gap);
    const double height = top + layers.size() * (cell + gap);
    std::string svg = svg_open(width, height);
    svg += text_element(10, 16, "start",
                        trace.model_id + "  " + block.name + "  (rows: layers, columns: heads)");
    for (size_t h = 0; h < heads.size(); ++h)
        svg += text_element(left + h * (cell + gap) + cell / 2, top - 8, "middle",
                            prefixed('H', heads[h]));
    for (size_t l = 0; l < layers.size(); ++l) {
        const double y = top + l * (cell + gap);
        svg += text_element(left - 6, y + cell / 2 + 4, "end", prefixed('L', layers[l]));
        for (size_t h = 0; h < heads.size(); ++h)
            svg += "<image x=\"" + number(left + h * (cell + gap)) + "\" y=\"" + number(y) +
                   "\" width=\"" + number(cell) + "\" height=\"" + number(cell) +
                   "\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"" +
                   heatmap_data_uri(block, layers[l], heads[h]) + "\"/>\n";
    }
    return svg + "</svg>\n";
}

std::string matrix_svg(const AttentionTrace& trace, const AttentionBlock& block, int layer,
                       int head) {
    const auto& queries = trace.sequences[block.query_sequence].tokens;
    const auto& keys = trace.sequences[block.key_sequence].tokens;
    const double cell =
        std::clamp(std::floor(800.0 / std::max(block.n_queries, block.n_keys)), 1.0, 18.0);
    const bool labels = cell >= 8;
    size_t longest = 1;
    for (const auto* tokens : {&queries, &keys})
        for (const TraceToken& token : *tokens)
            longest = std::max(longest, shown_text(token).size());
    const double label_space = labels ? std::min(longest * 7.0 + 10, 160.0) : 10;
    const double left = label_space + 10, top = 30 + label_space;
    const double width = left + block.n_keys * cell + 10,
                 height = top + block.n_queries * cell + 10;
    std::string svg = svg_open(width, height);
    svg += text_element(10, 16, "start",
                        trace.model_id + "  " + block.name + "  layer " + std::to_string(layer) +
                            "  head " + std::to_string(head) + "  (rows: queries, columns: keys)");
    svg += "<image x=\"" + number(left) + "\" y=\"" + number(top) + "\" width=\"" +
           number(block.n_keys * cell) + "\" height=\"" + number(block.n_queries * cell) +
           "\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"" +
           heatmap_data_uri(block, layer, head) + "\"/>\n";
    if (labels) {
        svg += "<g font-size=\"" + number(std::min(cell - 1, 12.0)) + "\">\n";
        for (size_t q = 0; q < queries.size(); ++q)
            svg += text_element(left - 4, top + (q + 0.75) * cell, "end", shown_text(queries[q]));
        for (size_t k = 0; k < keys.size(); ++k) {
            const double x = left + (k + 0.75) * cell, y = top - 4;
            svg += text_element(x, y, "start", shown_text(keys[k]),
                                " transform=\"rotate(-90 " + number(x) + " " + number(y) + ")\"");
        }
        svg += "</g>\n";
    }
    return svg + "</svg>\n";
}

std::vector<uint8_t> svg_to_png(const std::string& svg) {
    GError* error = nullptr;
    RsvgHandle* handle =
        rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &error);
    if (!handle) {
        const std::string message = error ? error->message : "unknown error";
        if (error) g_error_free(error);
        throw Error("librsvg could not read the SVG: " + message);
    }
    std::unique_ptr<RsvgHandle, decltype(&g_object_unref)> owner(handle, g_object_unref);
    gdouble width = 0, height = 0;
    if (!rsvg_handle_get_intrinsic_size_in_pixels(handle, &width, &height))
        throw Error("librsvg could not size the SVG");
    constexpr double kMostPixels = 32767;  // cairo's largest image side
    if (width > kMostPixels || height > kMostPixels)
        throw Error("the picture is " + number(width) + " x " + number(height) +
                    " pixels, more than PNG export allows (32767); choose fewer tokens or SVG");
    Surface surface(
        cairo_image_surface_create(CAIRO_FORMAT_ARGB32, static_cast<int>(std::ceil(width)),
                                   static_cast<int>(std::ceil(height))),
        cairo_surface_destroy);
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
        throw Error("cairo could not make a " + number(width) + " x " + number(height) + " image");
    std::unique_ptr<cairo_t, decltype(&cairo_destroy)> context(cairo_create(surface.get()),
                                                               cairo_destroy);
    const RsvgRectangle viewport{0, 0, width, height};
    if (!rsvg_handle_render_document(handle, context.get(), &viewport, &error)) {
        const std::string message = error ? error->message : "unknown error";
        if (error) g_error_free(error);
        throw Error("librsvg could not draw the SVG: " + message);
    }
    return surface_png(surface.get());
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
    std::string svg;
    switch (options.views.front()) {
        case View::head:
            svg = head_view_svg(trace, block, layers.front(), heads);
            break;
        case View::model:
            svg = model_grid_svg(trace, block, layers, heads);
            break;
        case View::matrix:
            svg = matrix_svg(trace, block, layers.front(), heads.front());
            break;
        case View::neuron:
            throw Error("the neuron view has no static form; use head, model or matrix");
    }
    if (format == StaticFormat::png) return svg_to_png(svg);
    return std::vector<uint8_t>(svg.begin(), svg.end());
}

}  // namespace attnviz
