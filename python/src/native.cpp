// attnviz._native: the C++ library for Python (pybind11). The Python half
// (python/attnviz/*.py) checks what users pass and turns it into these calls;
// this file moves data between numpy and AttentionTrace, and hands numpy views
// of the trace's own memory rather than copies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnviz/attnviz.h"
#include "attnviz/head_stats.h"

namespace py = pybind11;

namespace attnviz::python {
namespace {

using TracePtr = std::shared_ptr<AttentionTrace>;

// A float32 numpy array over memory the trace owns. The capsule (the array's
// base) holds a reference to the trace, so the memory lives as long as any view.
py::array float_view(const TracePtr& trace, const std::vector<float>& values,
                     std::vector<py::ssize_t> shape) {
    py::capsule owner(new TracePtr(trace),
                      [](void* pointer) { delete static_cast<TracePtr*>(pointer); });
    return py::array_t<float>(std::move(shape), values.data(), owner);
}

const AttentionBlock& block_at(const AttentionTrace& trace, int index) {
    if (index < 0 || static_cast<size_t>(index) >= trace.blocks.size())
        throw py::index_error("attention block " + std::to_string(index) +
                              " is out of range: the trace has " +
                              std::to_string(trace.blocks.size()));
    return trace.blocks[static_cast<size_t>(index)];
}

py::dict sequence_dict(const TokenSequence& sequence) {
    std::vector<std::string> tokens, displays;
    std::vector<int64_t> ids, type_ids;
    std::vector<int> segments;
    std::vector<bool> special;
    for (const TraceToken& token : sequence.tokens) {
        tokens.push_back(token.text);
        displays.push_back(token.display);
        ids.push_back(token.id);
        type_ids.push_back(token.type_id);
        segments.push_back(token.segment);
        special.push_back(token.special);
    }
    py::dict out;
    out["name"] = sequence.name;
    out["texts"] = sequence.texts;
    out["tokens"] = tokens;
    out["displays"] = displays;
    out["input_ids"] = py::array_t<int64_t>(static_cast<py::ssize_t>(ids.size()), ids.data());
    out["token_type_ids"] =
        py::array_t<int64_t>(static_cast<py::ssize_t>(type_ids.size()), type_ids.data());
    out["segments"] = segments;
    out["special"] = special;
    return out;
}

py::dict block_dict(const AttentionBlock& block) {
    py::dict out;
    out["name"] = block.name;
    out["query_sequence"] = block.query_sequence;
    out["key_sequence"] = block.key_sequence;
    out["causal"] = block.causal;
    out["shape"] = py::make_tuple(block.n_layers, block.n_heads, block.n_queries, block.n_keys);
    out["has_queries_keys"] = block.has_queries_keys();
    // a selective capture: the model's numbers of the kept layers and heads
    std::vector<int> layers, heads;
    for (int l = 0; l < block.n_layers; ++l) layers.push_back(block.layer_id(l));
    for (int h = 0; h < block.n_heads; ++h) heads.push_back(block.head_id(h));
    out["layers"] = layers;
    out["heads"] = heads;
    out["storage"] = block.is_sparse()           ? "sparse"
                     : !block.probs_fp16.empty() ? "float16"
                                                 : "float32";
    return out;
}

// Tokens as bertviz takes them (strings only): the segment follows
// sentence_b_start, where bertviz slices the pair.
TokenSequence external_sequence(const std::string& name, const std::vector<std::string>& tokens,
                                const std::vector<std::string>& displays, int sentence_b_start,
                                const std::vector<std::string>& texts) {
    TokenSequence sequence;
    sequence.name = name;
    sequence.texts = texts;
    for (size_t i = 0; i < tokens.size(); ++i) {
        TraceToken token;
        token.text = tokens[i];
        token.display = i < displays.size() ? displays[i] : tokens[i];
        token.id = -1;  // not known: the caller gave strings only
        token.segment = sentence_b_start >= 0 && static_cast<int>(i) >= sentence_b_start ? 1 : 0;
        token.type_id = token.segment;
        sequence.tokens.push_back(std::move(token));
    }
    return sequence;
}

using Float32Array = py::array_t<float, py::array::c_style | py::array::forcecast>;

// sequences: (name, tokens, displays, sentence_b_start or -1, texts);
// blocks: (name, query sequence, key sequence, per-layer [heads, queries, keys]
// float32 arrays), each layer copied once into place. Shapes were checked in
// Python (with the user's argument names); this checks again, so nothing
// inconsistent reaches a view.
TracePtr trace_from_arrays(
    const std::vector<std::tuple<std::string, std::vector<std::string>, std::vector<std::string>,
                                 int, std::vector<std::string>>>& sequences,
    const std::vector<std::tuple<std::string, int, int, std::vector<Float32Array>>>& blocks,
    const std::string& model_id) {
    auto trace = std::make_shared<AttentionTrace>();
    trace->model_id = model_id;
    for (const auto& [name, tokens, displays, sentence_b_start, texts] : sequences)
        trace->sequences.push_back(
            external_sequence(name, tokens, displays, sentence_b_start, texts));
    for (const auto& [name, query_sequence, key_sequence, layers] : blocks) {
        if (layers.empty()) throw py::value_error("attention block '" + name + "' has no layers");
        AttentionBlock block;
        block.name = name;
        block.query_sequence = query_sequence;
        block.key_sequence = key_sequence;
        for (const Float32Array& layer : layers)
            if (layer.ndim() != 3 || layer.shape(0) != layers.front().shape(0) ||
                layer.shape(1) != layers.front().shape(1) ||
                layer.shape(2) != layers.front().shape(2))
                throw py::value_error("attention block '" + name +
                                      "': every layer must be [heads, queries, keys] of one shape");
        block.n_layers = static_cast<int>(layers.size());
        block.n_heads = static_cast<int>(layers.front().shape(0));
        block.n_queries = static_cast<int>(layers.front().shape(1));
        block.n_keys = static_cast<int>(layers.front().shape(2));
        const auto per_layer = static_cast<size_t>(layers.front().size());
        block.probs.resize(per_layer * layers.size());
        std::vector<const float*> sources;
        for (const Float32Array& layer : layers) sources.push_back(layer.data());
        {
            py::gil_scoped_release released;
            for (size_t l = 0; l < sources.size(); ++l)
                std::memcpy(block.probs.data() + l * per_layer, sources[l],
                            per_layer * sizeof(float));
        }
        trace->blocks.push_back(std::move(block));
    }
    infer_causal_and_special(*trace);
    return trace;
}

ViewOptions view_options(const std::vector<std::string>& views, const std::vector<int>& layers,
                         const std::vector<int>& heads, const std::string& block,
                         const std::string& title) {
    ViewOptions options;
    options.views.clear();
    for (const std::string& view : views) options.views.push_back(parse_view(view));
    options.layers = layers;
    options.heads = heads;
    options.block = block;
    options.title = title;
    return options;
}

// What Model.open and resolve_model need, resolved as the CLI does (a folder, a
// cached snapshot, or a download), refusing an unsupported model_type before
// any weights are fetched.
struct LoadedModel {
    std::filesystem::path folder;
    std::string model_id;
    std::string model_revision;  // the commit, when the folder is a cache snapshot
    std::optional<Model> model;
};

std::shared_ptr<LoadedModel> open_model(const std::string& name, bool offline) {
    auto loaded = std::make_shared<LoadedModel>();
    py::gil_scoped_release released;
    HubOptions options;
    options.offline = offline;
    options.show_progress = true;
    options.check_config = [](const std::filesystem::path& folder) { read_model_config(folder); };
    loaded->folder = resolve_model(name, options);
    std::error_code error;
    if (std::filesystem::is_directory(name, error)) {
        const std::filesystem::path path = std::filesystem::path(name).lexically_normal();
        loaded->model_id =
            (path.has_filename() ? path.filename() : path.parent_path().filename()).string();
    } else {
        loaded->model_id = name;
    }
    loaded->model_revision = snapshot_commit(loaded->folder);
    loaded->model.emplace(Model::open(loaded->folder));
    return loaded;
}

TracePtr run_model(const LoadedModel& loaded, const std::string& text,
                   std::optional<std::string> text_pair, std::optional<std::string> target,
                   bool queries_keys, bool hidden_states, int threads, bool truncate,
                   size_t max_tokens) {
    TraceRequest request;
    request.text = text;
    request.text_pair = std::move(text_pair);
    request.target = std::move(target);
    request.truncate = truncate;
    request.max_tokens = max_tokens;
    RunOptions run;
    run.keep_queries_keys = queries_keys;
    run.keep_hidden_states = hidden_states;
    run.threads = threads;
    auto trace = std::make_shared<AttentionTrace>();
    {
        py::gil_scoped_release released;
        try {
            *trace = loaded.model->trace(request, run);
        } catch (const TooLongError& e) {
            throw TooLongError(std::string(e.what()) + "; pass truncate=True to cut it");
        }
    }
    trace->model_id = loaded.model_id;
    trace->model_revision = loaded.model_revision;
    return trace;
}

// One block's head statistic sums as numpy: exact int64 arrays [stat, layer,
// head] that add across examples (attnviz.dask reduces them).
py::dict head_stat_dict(const analysis::HeadStatSums& sums) {
    const std::vector<py::ssize_t> shape = {analysis::kHeadStatCount, sums.n_layers, sums.n_heads};
    py::dict out;
    out["block"] = sums.block;
    out["examples"] = sums.examples;
    out["sums"] = py::array_t<int64_t>(shape, sums.sums.data());
    out["rows"] = py::array_t<int64_t>(shape, sums.rows.data());
    out["non_finite"] = py::array_t<int64_t>(shape, sums.non_finite.data());
    out["uniform_entropy"] = sums.uniform_entropy;
    out["query_rows"] = sums.query_rows;
    return out;
}

py::list head_stat_sums_of(const AttentionTrace& trace) {
    std::vector<analysis::HeadStatSums> sums;
    {
        py::gil_scoped_release released;
        sums = analysis::head_stat_sums(trace);
    }
    py::list out;
    for (const analysis::HeadStatSums& block : sums) out.append(head_stat_dict(block));
    return out;
}

}  // namespace
}  // namespace attnviz::python

PYBIND11_MODULE(_native, m) {
    using namespace attnviz;
    using namespace attnviz::python;
    m.doc() = "attnviz's C++ library: native forward passes and the HTML views";
    m.attr("version") = ATTNVIZ_VERSION;
    m.attr("source_dir") = ATTNVIZ_SOURCE_DIR;
    m.attr("max_threads") = kMaxThreads;
    m.attr("default_rollout_tokens") = kDefaultRolloutTokens;
    m.attr("default_word_level_tokens") = kDefaultWordLevelTokens;
    m.attr("default_flow_tokens") = kDefaultFlowTokens;

    // Translators run newest first: the derived class is registered last.
    auto& error_type = py::register_exception<Error>(m, "Error", PyExc_RuntimeError);
    py::register_exception<TooLongError>(m, "TooLongError", error_type.ptr());

    // What a page adds from src/analysis (ViewOptions::analysis, docs/views.md).
    py::class_<ViewAnalysis>(m, "ViewAnalysis")
        .def(py::init([](bool rollout, bool flow, bool head_stats, bool word_level,
                         bool open_word_level) {
                 return ViewAnalysis{rollout, flow, head_stats, word_level, open_word_level};
             }),
             py::arg("rollout") = false, py::arg("flow") = false, py::arg("head_stats") = false,
             py::arg("word_level") = false, py::arg("open_word_level") = false)
        .def_readwrite("rollout", &ViewAnalysis::rollout)
        .def_readwrite("flow", &ViewAnalysis::flow)
        .def_readwrite("head_stats", &ViewAnalysis::head_stats)
        .def_readwrite("word_level", &ViewAnalysis::word_level)
        .def_readwrite("open_word_level", &ViewAnalysis::open_word_level);

    py::class_<AttentionTrace, TracePtr>(m, "Trace")
        .def_readwrite("model_id", &AttentionTrace::model_id)
        .def_readwrite("model_revision", &AttentionTrace::model_revision)
        .def_readonly("architecture", &AttentionTrace::architecture)
        .def_property_readonly("sequences",
                               [](const AttentionTrace& trace) {
                                   py::list out;
                                   for (const TokenSequence& sequence : trace.sequences)
                                       out.append(sequence_dict(sequence));
                                   return out;
                               })
        .def_property_readonly("blocks",
                               [](const AttentionTrace& trace) {
                                   py::list out;
                                   for (const AttentionBlock& block : trace.blocks)
                                       out.append(block_dict(block));
                                   return out;
                               })
        .def(
            "attention",
            [](const TracePtr& trace, int index) -> py::array {
                const AttentionBlock& block = block_at(*trace, index);
                std::vector<py::ssize_t> shape = {block.n_layers, block.n_heads, block.n_queries,
                                                  block.n_keys};
                if (block.is_sparse())
                    throw py::value_error("attention block \"" + block.name +
                                          "\" holds sparse rows (a top_k / top_mass capture): "
                                          "read them with attention_csr()");
                if (!block.probs_fp16.empty()) {
                    py::capsule owner(new TracePtr(trace), [](void* pointer) {
                        delete static_cast<TracePtr*>(pointer);
                    });
                    return py::array(py::dtype("float16"), shape, block.probs_fp16.data(), owner);
                }
                return float_view(trace, block.probs, shape);
            },
            py::arg("block"),
            "The block's probabilities [layers, heads, queries, keys], a view of the trace "
            "(float16 for an fp16 capture)")
        .def(
            "attention_csr",
            [](const TracePtr& trace, int index) -> py::object {
                const AttentionBlock& block = block_at(*trace, index);
                if (!block.is_sparse()) return py::none();
                py::dict out;
                out["row_start"] =
                    py::array_t<int64_t>(static_cast<py::ssize_t>(block.row_start.size()),
                                         reinterpret_cast<const int64_t*>(block.row_start.data()));
                out["keys"] = py::array_t<int32_t>(static_cast<py::ssize_t>(block.row_keys.size()),
                                                   block.row_keys.data());
                if (block.probs_fp16.empty())
                    out["probs"] = py::array_t<float>(static_cast<py::ssize_t>(block.probs.size()),
                                                      block.probs.data());
                else
                    out["probs"] = py::array(py::dtype("float16"),
                                             {static_cast<py::ssize_t>(block.probs_fp16.size())},
                                             block.probs_fp16.data());
                out["shape"] =
                    py::make_tuple(block.n_layers, block.n_heads, block.n_queries, block.n_keys);
                return out;
            },
            py::arg("block"),
            "A sparse capture's rows, CSR-style (docs/export.md): row_start, keys, probs, shape; "
            "None for a dense block")
        .def(
            "queries_keys",
            [](const TracePtr& trace, int index) -> py::object {
                const AttentionBlock& block = block_at(*trace, index);
                if (!block.has_queries_keys()) return py::none();
                std::vector<float> scales;
                for (int layer = 0; layer < block.n_layers; ++layer)
                    scales.push_back(block.layer_score_scale(layer));
                return py::make_tuple(
                    float_view(trace, block.queries,
                               {block.n_layers, block.n_heads, block.n_queries, block.head_dim}),
                    float_view(trace, block.keys,
                               {block.n_layers, block.n_heads, block.n_keys, block.head_dim}),
                    py::array_t<float>(static_cast<py::ssize_t>(scales.size()), scales.data()));
            },
            py::arg("block"),
            "(queries, keys, score_scale) views, or None when the run did not keep them")
        .def(
            "hidden_states",
            [](const TracePtr& trace, int sequence) -> py::object {
                for (const HiddenStates& states : trace->hidden_states)
                    if (states.sequence == sequence)
                        return float_view(trace, states.values,
                                          {states.n_states, states.n_tokens, states.hidden_size});
                return py::none();
            },
            py::arg("sequence"))
        .def(
            "render",
            [](const AttentionTrace& trace, const std::vector<std::string>& views,
               const std::vector<int>& layers, const std::vector<int>& heads,
               const std::string& block, const std::string& title, bool fragment, int open_layer,
               const std::vector<int>& open_heads, bool open_dark, bool open_subword_markers,
               const ViewAnalysis& analysis) {
                ViewOptions options = view_options(views, layers, heads, block, title);
                options.open_layer = open_layer;
                options.open_heads = open_heads;
                options.open_dark = open_dark;
                options.open_subword_markers = open_subword_markers;
                options.analysis = analysis;
                std::string html;
                {
                    py::gil_scoped_release released;
                    html = fragment ? render_html_fragment(trace, options)
                                    : render_html(trace, options);
                }
                return html;
            },
            py::arg("views"), py::arg("layers"), py::arg("heads"), py::arg("block") = "",
            py::arg("title") = "", py::arg("fragment") = false, py::arg("open_layer") = -1,
            py::arg("open_heads") = std::vector<int>{}, py::arg("open_dark") = false,
            py::arg("open_subword_markers") = false, py::arg("analysis") = ViewAnalysis{})
        .def("default_analysis", &default_view_analysis,
             "What `attnviz view` adds to this trace's page when no flag says otherwise")
        .def(
            "save_npz",
            [](const AttentionTrace& trace, const std::filesystem::path& path) {
                py::gil_scoped_release released;
                write_npz(trace, path);
            },
            py::arg("path"))
        .def("head_stat_sums", &head_stat_sums_of);
    m.attr("head_stat_names") =
        std::vector<std::string>(analysis::kHeadStatNames.begin(), analysis::kHeadStatNames.end());
    m.attr("head_stat_scale") = analysis::kHeadStatScale;

    m.def(
        "read_npz",
        [](const std::filesystem::path& path) {
            py::gil_scoped_release released;
            return std::make_shared<AttentionTrace>(read_npz(path));
        },
        py::arg("path"));
    m.def("trace_from_arrays", &trace_from_arrays, py::arg("sequences"), py::arg("blocks"),
          py::arg("model_id"));

    py::class_<LoadedModel, std::shared_ptr<LoadedModel>>(m, "Model")
        .def(py::init(&open_model), py::arg("model"), py::arg("offline") = false)
        .def_readonly("folder", &LoadedModel::folder)
        .def_readonly("model_id", &LoadedModel::model_id)
        .def_property_readonly("config",
                               [](const LoadedModel& loaded) {
                                   const ModelConfig& config = loaded.model->config();
                                   py::dict out;
                                   out["model_type"] = config.model_type;
                                   out["architecture"] = config.architecture;
                                   out["n_layers"] = config.n_layers;
                                   out["n_decoder_layers"] = config.n_decoder_layers;
                                   out["n_heads"] = config.n_heads;
                                   out["hidden_size"] = config.hidden_size;
                                   out["is_encoder_decoder"] = config.is_encoder_decoder;
                                   out["is_causal"] = config.is_causal;
                                   return out;
                               })
        .def("trace", &run_model, py::arg("text"), py::arg("text_pair"), py::arg("target"),
             py::arg("queries_keys"), py::arg("hidden_states"), py::arg("threads"),
             py::arg("truncate"), py::arg("max_tokens") = 0);
}
