// attnviz export: exact float32 attentions (and optionally queries, keys and
// hidden states) as a numpy .npz.
#include <iostream>

#include "analysis_flags.h"
#include "attnviz/export.h"
#include "attnviz/hub.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        TextFlags text;
        std::string output = "attention.npz";
        bool queries_keys = false;
        bool hidden_states = false;
        int threads = 0;
        std::optional<uint64_t> max_memory;
        std::optional<Precision> precision;
        CaptureFlags capture;
        AnalysisFlags analysis;
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
    add_capture_flags(command, flags->capture, /*with_selection=*/true);
    add_analysis_flags(command, flags->analysis);
    add_threads_flag(command, flags->threads);
    add_max_memory_flag(command, flags->max_memory);
    add_precision_flag(command, flags->precision);
    command.footer(
        "Arrays: input_ids, token_type_ids (int64), tokens (unicode), attentions (float32, "
        "[layers, heads, tokens, tokens]; float16 with --fp16; with --top-k / --top-mass CSR rows "
        "attentions_row_start, attentions_keys, attentions_probs, attentions_shape: see "
        "docs/export.md). Encoder-decoder models write encoder_/decoder_ "
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
        run.precision = flags->precision;
        run.keep_queries_keys = flags->queries_keys;
        run.keep_hidden_states = flags->hidden_states;
        run.capture = capture_options(flags->capture);
        apply_analysis_flags(flags->analysis, run);
        step.emplace("running the model");
        AttentionTrace trace = trace_text(model, flags->text, run);
        trace.model_id = model_label(flags->model);
        trace.model_revision = snapshot_commit(folder);
        step.emplace("analysing");
        const std::vector<ExtraArray> analysis = analysis_arrays(trace, flags->analysis);
        step.emplace("writing the .npz");
        OutputFile output(flags->output, "-o");
        write_npz(trace, analysis, output.stream());
        output.commit();
        print_written(flags->output);
        return result_code(trace);
    };
}

const RegisterCommand registered({"export", "Write exact attentions as a numpy .npz", 20, setup});

}  // namespace
}  // namespace attnviz::cli
