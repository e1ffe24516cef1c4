// The report page of `attnviz heads`: per-head statistics over a corpus drawn
// as Clark et al. (2019) draw them. Owner: src/viz (web/heads/ holds its code).
#pragma once

#include <string>

namespace attnviz {

// A self-contained HTML page (no network) showing `stats_json`, the document
// `attnviz heads --json` writes (docs/analysis.md): a summary heatmap, the
// [CLS]/[SEP]/punctuation scatter, entropy by layer, and the heads' 2-D
// embedding by Jensen-Shannon distance. Throws Error when it is not JSON.
std::string render_heads_report(const std::string& stats_json);

}  // namespace attnviz
