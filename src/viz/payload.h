// The page's data: a trace checked, reduced to the chosen layers and heads,
// and written once as inert JSON for <script type="application/json">.
#pragma once

#include <string>
#include <vector>

#include "attnviz/trace.h"
#include "attnviz/views.h"

namespace attnviz::viz {

// Throws Error naming the block or sequence whose sizes disagree.
void check_trace(const AttentionTrace& trace);

// The block options.block names (empty: the first); throws Error if absent.
int find_block(const AttentionTrace& trace, const std::string& name);
// options.layers / options.heads as they apply to one block (empty options:
// all); throws Error for an index no block of the trace has.
std::vector<int> chosen_layers(const AttentionTrace& trace, const AttentionBlock& block,
                               const ViewOptions& options);
std::vector<int> chosen_heads(const AttentionTrace& trace, const AttentionBlock& block,
                              const ViewOptions& options);

// {"meta": {...}, "streams": ["<base64 zlib>", ...]}, already escaped for a
// <script> element. docs/views.md describes the layout.
std::string build_payload(const AttentionTrace& trace, const ViewOptions& options);

}  // namespace attnviz::viz
