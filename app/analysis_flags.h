// The analysis flags of `attnviz export` (--rollout, --flow, --value-norms,
// --head-stats, --word-level) in one place: what they ask of the run, and the arrays they
// add to the .npz (docs/analysis.md).
#pragma once

#include <optional>
#include <vector>

#include <CLI/CLI.hpp>

#include "attnviz/export.h"
#include "attnviz/model.h"
#include "attnviz/views.h"

namespace attnviz::cli {

struct AnalysisFlags {
    bool rollout = false;
    bool flow = false;
    bool value_norms = false;
    bool head_stats = false;
    bool word_level = false;
};

void add_analysis_flags(CLI::App& command, AnalysisFlags& flags);

// What a page's maker asked of its analysis: on, off, or not said (nullopt).
struct AnalysisChoice {
    std::optional<bool> rollout, flow, head_stats, word_level;
};
// A page's analysis: attnviz::default_view_analysis (include/attnviz/views.h)
// where nothing was said, the choice where something was; asked for, word
// level opens the page at word level. `attnviz view` (its flags) and `attnviz
// serve` (its /api/payload and html export parameters) both decide here.
ViewAnalysis view_analysis(const AnalysisChoice& choice, const AttentionTrace& trace);

// attnviz view: the same flags (but --value-norms, which the page does not
// show), each with a --no- form; what is not given takes the page's default
// (docs/cli.md).
void add_view_analysis_flags(CLI::App& command, AnalysisFlags& flags);
ViewAnalysis view_analysis(const CLI::App& command, const AnalysisFlags& flags,
                           const AttentionTrace& trace);
// What the run must keep for them (value norms).
void apply_analysis_flags(const AnalysisFlags& flags, RunOptions& run);
// rollout [L,S,S] and flow [S,S] per self-attention block, value_norms
// [L,H,Q,K] per block, prefixed encoder_/decoder_/cross_ for encoder-decoder
// models, head_stats_<statistic> [L,H] per block; with --word-level all of
// them over words, plus words per sequence.
std::vector<ExtraArray> analysis_arrays(const AttentionTrace& trace, const AnalysisFlags& flags);

}  // namespace attnviz::cli
