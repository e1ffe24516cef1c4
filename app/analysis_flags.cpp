#include "analysis_flags.h"

#include <algorithm>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/head_stats.h"

namespace attnviz::cli {

namespace {

constexpr const char* kRolloutHelp =
    "rollout (Abnar & Zuidema: head mean, 0.5 I + 0.5 A, multiplied up the layers)";
constexpr const char* kFlowHelp =
    "flow: the max-flow from each last-layer token to each input token (Abnar & Zuidema)";
constexpr const char* kHeadStatsHelp = "per-head statistics (Clark et al.; docs/analysis.md)";
constexpr const char* kWordLevelHelp =
    "word level (to a word: sum over its pieces; from a word: mean)";

}  // namespace

void add_view_analysis_flags(CLI::App& command, AnalysisFlags& flags) {
    command.add_flag("--rollout,!--no-rollout", flags.rollout,
                     std::string("the Rollout tab's ") + kRolloutHelp + " (default: on up to " +
                         std::to_string(kDefaultRolloutTokens) + " tokens)");
    command.add_flag("--flow,!--no-flow", flags.flow,
                     std::string("the Rollout tab's ") + kFlowHelp + " (default: on up to " +
                         std::to_string(kDefaultFlowTokens) + " tokens; all-pairs max-flow)");
    command.add_flag("--head-stats,!--no-head-stats", flags.head_stats,
                     std::string("the Head stats tab: ") + kHeadStatsHelp +
                         " of this input, layers x heads (default: on)");
    command.add_flag("--word-level,!--no-word-level", flags.word_level,
                     std::string("the Word level toggle: every view's data also at ") +
                         kWordLevelHelp + " (default: included up to " +
                         std::to_string(kDefaultWordLevelTokens) +
                         " tokens; given: the page opens at word level)");
}

ViewAnalysis view_analysis(const AnalysisChoice& choice, const AttentionTrace& trace) {
    ViewAnalysis out = default_view_analysis(trace);
    out.rollout = choice.rollout.value_or(out.rollout);
    out.flow = choice.flow.value_or(out.flow);
    out.head_stats = choice.head_stats.value_or(out.head_stats);
    out.word_level = choice.word_level.value_or(out.word_level);
    out.open_word_level = choice.word_level.value_or(false);
    return out;
}

ViewAnalysis view_analysis(const CLI::App& command, const AnalysisFlags& flags,
                           const AttentionTrace& trace) {
    const auto given = [&](const char* name, bool value) {
        return command.count(name) > 0 ? std::optional<bool>(value) : std::nullopt;
    };
    return view_analysis(
        AnalysisChoice{given("--rollout", flags.rollout), given("--flow", flags.flow),
                       given("--head-stats", flags.head_stats),
                       given("--word-level", flags.word_level)},
        trace);
}

void add_analysis_flags(CLI::App& command, AnalysisFlags& flags) {
    command.add_flag("--rollout", flags.rollout,
                     "also write rollout [layers, tokens, tokens] (Abnar & Zuidema: head mean, "
                     "0.5 I + 0.5 A, multiplied up the layers)");
    command.add_flag("--flow", flags.flow,
                     "also write flow [tokens, tokens]: the max-flow from each last-layer token "
                     "to each input token (Abnar & Zuidema)");
    command.add_flag("--value-norms", flags.value_norms,
                     "also write value_norms [layers, heads, tokens, tokens]: ||a_ij f(x_j)|| "
                     "(Kobayashi et al.)");
    command.add_flag("--head-stats", flags.head_stats,
                     "also write head_stats_<statistic> [layers, heads] (Clark et al.; "
                     "docs/analysis.md)");
    command.add_flag("--word-level", flags.word_level,
                     "compute the analysis arrays over words (to a word: sum over its pieces; "
                     "from a word: mean) and write words");
}

void apply_analysis_flags(const AnalysisFlags& flags, RunOptions& run) {
    run.keep_value_norms = run.keep_value_norms || flags.value_norms;
}

std::vector<ExtraArray> analysis_arrays(const AttentionTrace& trace, const AnalysisFlags& flags) {
    std::vector<ExtraArray> out;
    if (!flags.rollout && !flags.flow && !flags.value_norms && !flags.head_stats) {
        if (flags.word_level)
            throw Error(
                "--word-level applies to --rollout, --flow, --value-norms or --head-stats: give "
                "one");
        return out;
    }
    const AttentionTrace words = flags.word_level ? analysis::word_level(trace) : AttentionTrace{};
    const AttentionTrace& over = flags.word_level ? words : trace;
    const bool single = trace.blocks.size() == 1;
    for (size_t b = 0; b < trace.blocks.size(); ++b) {
        const AttentionBlock& block = over.blocks[b];
        const std::string prefix = single ? "" : block.name + "_";
        const int64_t L = block.n_layers, H = block.n_heads, Q = block.n_queries, K = block.n_keys;
        const bool self = block.query_sequence == block.key_sequence;
        if (flags.rollout && self)
            out.push_back({prefix + "rollout", {L, Q, K}, analysis::rollout(block), {}});
        if (flags.flow && self) out.push_back({prefix + "flow", {Q, K}, analysis::flow(block), {}});
        if (flags.value_norms) {
            // per token, then (with --word-level) the word rule on the weighted maps
            const AttentionBlock& tokens = trace.blocks[b];
            std::vector<float> weighted = analysis::value_weighted(tokens);
            if (flags.word_level)
                weighted = analysis::word_level_maps(
                    weighted, tokens.n_layers * tokens.n_heads,
                    analysis::words_of(
                        trace.sequences.at(static_cast<size_t>(tokens.query_sequence))),
                    analysis::words_of(
                        trace.sequences.at(static_cast<size_t>(tokens.key_sequence))));
            out.push_back({prefix + "value_norms", {L, H, Q, K}, std::move(weighted), {}});
        }
        if (flags.head_stats) {  // NaN where a statistic is not defined for the block
            const analysis::HeadStatSums sums = analysis::head_stat_sums(over, block);
            for (int s = 0; s < analysis::kHeadStatCount; ++s) {
                const std::vector<double> means = sums.means(static_cast<analysis::HeadStat>(s));
                out.push_back({prefix + "head_stats_" + std::string(analysis::kHeadStatNames[s]),
                               {L, H},
                               std::vector<float>(means.begin(), means.end()),
                               {}});
            }
        }
    }
    if (flags.word_level)
        for (const TokenSequence& sequence : words.sequences) {
            ExtraArray array;
            array.name = (trace.sequences.size() == 1 ? "" : sequence.name + "_") + "words";
            for (const TraceToken& word : sequence.tokens) array.strings.push_back(word.display);
            out.push_back(std::move(array));
        }
    return out;
}

}  // namespace attnviz::cli
