// attnviz info [MODEL]: architecture and sizes, from config.json and the
// tokenizer; the weights are neither read nor downloaded (their count comes
// from the checkpoint's headers when it is there), and the precision a run takes.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "attnviz/model.h"
#include "attnviz/tokenizer.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

// binary16's rounding to nearest: half an ulp (docs/export.md)
constexpr const char* kFp16CaptureError =
    "each kept probability p within 2^-11 * p of its float32 value (p >= 2^-14), within "
    "2^-25 below";

// bf16 against fp32, measured by bench/model_bench (--precision bf16 reruns the
// same input in fp32 and compares) on the BERT-base-shaped benchmark model at
// 128 tokens: the largest difference in any attention probability
// (docs/performance.md: 0.010 / 0.0059 / 0.0058 at 8 / 128 / 512 tokens).
constexpr double kBf16MeasuredProbError = 0.0059;

std::string parameter_text(uint64_t parameters) {
    char text[32];
    std::snprintf(text, sizeof text, parameters >= 1e9 ? "%.2f B" : "%.1f M",
                  parameters >= 1e9 ? parameters / 1e9 : parameters / 1e6);
    return text;
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    add_model_argument(command, flags->model);
    command.add_flag("--json", flags->json, "print the result as JSON");
    command.footer(
        "Reads config.json and the tokenizer only: a model not yet cached is fetched "
        "without its weights. A model_type attnviz cannot run is an error listing those it "
        "can.");
    return [flags] {
        const std::filesystem::path folder = model_folder(flags->model, true);
        const ModelConfig config = read_model_config(folder);
        const std::optional<size_t> tokenizer_max =
            Tokenizer::from_folder(folder).model_max_length();
        nlohmann::ordered_json info = {
            {"model", model_label(flags->model)}, {"folder", folder.string()},
            {"model_type", config.model_type},    {"architecture", config.architecture},
            {"layers", config.n_layers},          {"heads", config.n_heads},
            {"kv_heads", config.n_kv_heads},      {"hidden_size", config.hidden_size},
            {"head_dim", config.head_dim},        {"intermediate_size", config.intermediate_size},
            {"vocab_size", config.vocab_size},    {"max_positions", config.max_positions},
            {"hidden_act", config.hidden_act},    {"encoder_decoder", config.is_encoder_decoder},
            {"causal", config.is_causal},
        };
        if (config.is_encoder_decoder) info["decoder_layers"] = config.n_decoder_layers;
        if (tokenizer_max) info["tokenizer_max_length"] = *tokenizer_max;
        const std::optional<uint64_t> parameters = checkpoint_parameters(folder);
        const bool cpu_bf16 = cpu_has_native_bf16();
        if (parameters) info["parameters"] = *parameters;
        // Without the weights the count is unknown: the run decides once it has them.
        const bool bf16 = parameters && default_precision(*parameters) == Precision::bf16;
        info["default_precision"] = parameters ? (bf16 ? "bf16" : "fp32") : "unknown";
        info["cpu_native_bf16"] = cpu_bf16;
        info["bf16_max_prob_error_measured"] = kBf16MeasuredProbError;
        info["fp16_capture_error"] = kFp16CaptureError;
        if (flags->json) {
            std::cout << json_text(info);
            return 0;
        }
        const std::string kind = config.is_encoder_decoder ? "encoder-decoder"
                                 : config.is_causal        ? "decoder-only"
                                                           : "encoder";
        // Names from config.json and the cache are printable()'d: they are the file's, not ours.
        std::cout << "model          " << printable(info["model"].get<std::string>()) << "\n"
                  << "folder         " << printable(folder.string()) << "\n"
                  << "architecture   " << printable(config.model_type)
                  << (config.architecture.empty() ? ""
                                                  : " (" + printable(config.architecture) + ")")
                  << ", " << kind << "\n"
                  << "layers         " << config.n_layers;
        if (config.is_encoder_decoder)
            std::cout << " encoder + " << config.n_decoder_layers << " decoder";
        std::cout << "\nheads          " << config.n_heads;
        if (config.n_kv_heads != config.n_heads && config.n_kv_heads > 0)
            std::cout << " (" << config.n_kv_heads << " key/value heads)";
        std::cout << ", " << config.head_dim << " dimensions each\n"
                  << "hidden size    " << config.hidden_size << " (feed-forward "
                  << config.intermediate_size << ", " << printable(config.hidden_act) << ")\n"
                  << "vocabulary     " << config.vocab_size << " tokens\n"
                  << "max length     ";
        if (config.max_positions > 0)
            std::cout << config.max_positions << " positions";
        else
            std::cout << "no learned limit";
        if (tokenizer_max) std::cout << " (tokenizer: " << *tokenizer_max << ")";
        std::cout << "\nparameters     "
                  << (parameters ? parameter_text(*parameters) : "unknown (weights not here)")
                  << "\nprecision      "
                  << (!parameters ? "fp32, or bf16 if over 1B parameters"
                      : bf16      ? "bf16"
                                  : "fp32")
                  << " by default (bf16 above 1B parameters where the CPU has AVX-512 BF16 or "
                     "AMX; this CPU "
                  << (cpu_bf16 ? "has it" : "does not") << ")\n"
                  << "               bf16 against fp32: attention probabilities differ by up to "
                  << kBf16MeasuredProbError
                  << " (measured, BERT-base, 128 tokens; docs/performance.md)\n"
                  << "--fp16 capture " << kFp16CaptureError << "\n";
        return 0;
    };
}

const RegisterCommand registered({"info", "Show a model's architecture and sizes", 70, setup});

}  // namespace
}  // namespace attnviz::cli
