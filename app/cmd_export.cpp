// attnviz export: exact float32 attentions (and optionally queries, keys and
// hidden states) as a numpy .npz.
#include <iostream>

#include "attnviz/export.h"
#include "attnviz/head_stats.h"
#include "attnviz/hub.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

// head_stats_<statistic> [layers, heads] float32 per block (NaN: not defined
// for the block); encoder-decoder models prefix the block's name.
std::vector<NpzArray> head_stat_arrays(const AttentionTrace& trace) {
    std::vector<NpzArray> arrays;
    for (const AttentionBlock& block : trace.blocks) {
        const analysis::HeadStatSums sums = analysis::head_stat_sums(trace, block);
        const std::string prefix = trace.blocks.size() == 1 ? "" : block.name + "_";
        for (int s = 0; s < analysis::kHeadStatCount; ++s) {
            const std::vector<double> means = sums.means(static_cast<analysis::HeadStat>(s));
            arrays.push_back({prefix + "head_stats_" + std::string(analysis::kHeadStatNames[s]),
                              {block.n_layers, block.n_heads},
                              std::vector<float>(means.begin(), means.end())});
        }
    }
    return arrays;
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        TextFlags text;
        std::string output = "attention.npz";
        bool queries_keys = false;
        bool hidden_states = false;
        bool head_stats = false;
        int threads = 0;
        std::optional<uint64_t> max_memory;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    add_text_flags(command, flags->text);
    command
        .add_option("-o,--output", flags->output, "the .npz file to write; - for standard output")
        ->capture_default_str();
    command.add_flag("--queries-keys", flags->queries_keys,
                     "also write queries and keys [layers, heads, tokens, head_dim]");
    command.add_flag("--hidden-states", flags->hidden_states,
                     "also write hidden_states [layers + 1, tokens, hidden]");
    command.add_flag("--head-stats", flags->head_stats,
                     "also write head_stats_<statistic> [layers, heads] (docs/analysis.md)");
    add_threads_flag(command, flags->threads);
    add_max_memory_flag(command, flags->max_memory);
    command.footer(
        "Arrays: input_ids, token_type_ids (int64), tokens (unicode), attentions (float32, "
        "[layers, heads, tokens, tokens]). Encoder-decoder models write encoder_/decoder_ "
        "input_ids, token_type_ids and tokens, and encoder_, decoder_ and cross_attentions.\n"
        "Example: attnviz export --model bert-base-uncased --text \"The cat sat\" -o cat.npz\n"
        "         python3 -c \"import numpy; print(numpy.load('cat.npz')['attentions'].shape)\"");
    return [flags] {
        read_text_files(flags->text);
        const std::filesystem::path folder = model_folder(flags->model);
        std::optional<Step> step(std::in_place, "loading the model");
        const Model model = Model::open(folder);
        RunOptions run;
        run.threads = flags->threads;
        run.max_memory = flags->max_memory;
        run.keep_queries_keys = flags->queries_keys;
        run.keep_hidden_states = flags->hidden_states;
        step.emplace("running the model");
        AttentionTrace trace = trace_text(model, flags->text, run);
        trace.model_id = model_label(flags->model);
        trace.model_revision = snapshot_commit(folder);
        step.emplace("writing the .npz");
        std::vector<NpzArray> extra;
        if (flags->head_stats) extra = head_stat_arrays(trace);
        OutputFile output(flags->output, "-o");
        write_npz(trace, output.stream(), extra);
        output.commit();
        print_written(flags->output);
        return result_code(trace);
    };
}

const RegisterCommand registered({"export", "Write exact attentions as a numpy .npz", 20, setup});

}  // namespace
}  // namespace attnviz::cli
