// Views: an AttentionTrace rendered as self-contained HTML (no network, no
// external file), or as static SVG/PNG for papers. Views know nothing of
// models. Owner: src/viz. docs/views.md describes the page and its payload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attnviz/trace.h"

namespace attnviz {

enum class View { head, model, neuron, matrix };

// What the page adds from src/analysis (docs/views.md, "Analysis views"):
// rollout and flow per self-attention block (a "Rollout" tab: saliency strip,
// token-to-token lines, matrix), the per-head statistics of this input (a
// "Head stats" tab: layers x heads heatmap), and a word-level copy of
// everything (a "Word level" toggle). Rollout and flow need every layer and
// head of the block (a selective capture gets a note in the page instead).
struct ViewAnalysis {
    bool rollout = false;
    bool flow = false;
    bool head_stats = false;
    bool word_level = false;       // include word-level data (when some word has several pieces)
    bool open_word_level = false;  // the page opens with "Word level" ticked
};

// The analysis a page gets when nobody chose (`attnviz view` without flags,
// Python's Trace views): head stats always, rollout up to kDefaultRolloutTokens
// tokens, the word-level copy (about as large again as the page's attention) up
// to kDefaultWordLevelTokens, flow (all-pairs max-flow) up to kDefaultFlowTokens
// (0.22 s at 64 tokens of the demo model's 4 layers, 2.8 s at 128;
// docs/performance.md, "Analysis: attention flow").
// The longest sequence of any block decides.
inline constexpr int kDefaultRolloutTokens = 512;
inline constexpr int kDefaultWordLevelTokens = 128;
inline constexpr int kDefaultFlowTokens = 64;
ViewAnalysis default_view_analysis(const AttentionTrace& trace);

struct ViewOptions {
    std::vector<View> views = {View::head, View::model};
    std::vector<int> layers;  // layers to include (and show), in this order; empty: all
    std::vector<int> heads;   // heads to include (and show), in this order; empty: all
    // What the page opens on, like bertviz's layer= and heads=: a model layer
    // among `layers` (-1: the first included) and the heads shown at first,
    // among `heads` (empty: all included). Applies to the block shown first.
    int open_layer = -1;
    std::vector<int> open_heads;
    // The page's look at first, like bertviz's display_mode="dark" and
    // prettify_tokens=False: the dark theme, and tokens as the tokenizer spells
    // them ("Subword markers" ticked). The page's controls switch both.
    bool open_dark = false;
    bool open_subword_markers = false;
    std::string title;  // page title; empty: "<model_id> attention"
    std::string
        block;  // block shown first ("self", "encoder", "decoder", "cross"); empty: the first
    ViewAnalysis analysis;  // none by default; `attnviz view` turns them on (docs/cli.md)
    int zlib_level = 3;     // deflate level of the attention payload (1 fastest .. 12 smallest)
};

// A whole page, and the same views as an embeddable fragment (a <div> with a
// unique root id, its data and its script; no globals, so several fragments
// can share one page). Throws Error for an inconsistent trace or a layer or
// head the trace does not have.
std::string render_html(const AttentionTrace& trace, const ViewOptions& options);
std::string render_html_fragment(const AttentionTrace& trace, const ViewOptions& options);

// The data render_html embeds, alone: the JSON that the page's
// <script type="application/json" class="attnviz-data"> holds (docs/views.md),
// for a page that builds its views itself (attnviz serve's /api/payload).
std::string render_payload(const AttentionTrace& trace, const ViewOptions& options);
// The views' own CSS and JavaScript (web/*.css, web/*.js), as render_html
// inlines them; the script defines attnvizBoot(root).
std::string_view views_style();
std::string_view views_script();

// The view name for flags and file names, and back ("head", "model", "neuron", "matrix").
std::string view_name(View view);
View parse_view(const std::string& name);  // throws Error naming the unknown view

enum class StaticFormat { svg, png };
// One static picture, as chosen by options.views.front():
//   head:   the head view of layer options.layers.front() (default 0) with the chosen heads;
//   model:  the layers x heads grid of attention heatmaps;
//   matrix: the heatmap of one head (layers.front(), heads.front(); default 0, 0).
// options.block picks the block. The neuron view has no static form (throws Error).
std::vector<uint8_t> render_static(const AttentionTrace& trace, const ViewOptions& options,
                                   StaticFormat format);

}  // namespace attnviz
