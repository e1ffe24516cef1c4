// Views: an AttentionTrace rendered as self-contained HTML (no network), or as
// static SVG/PNG for papers. Views know nothing of models. Owner: src/viz.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz {

enum class View { head, model, neuron, matrix };

struct ViewOptions {
    std::vector<View> views = {View::head, View::model};
    std::vector<int> layers;  // empty: all
    std::vector<int> heads;   // empty: all
    std::string title;
};

// A whole page, and the same views as an embeddable fragment with a unique root id.
std::string render_html(const AttentionTrace& trace, const ViewOptions& options);
std::string render_html_fragment(const AttentionTrace& trace, const ViewOptions& options);

enum class StaticFormat { svg, png };
// One static picture: a head view of one layer, a model-view grid, or one
// head's matrix, as chosen by options.views.front(), layers and heads.
std::vector<uint8_t> render_static(const AttentionTrace& trace, const ViewOptions& options,
                                   StaticFormat format);

}  // namespace attnviz
