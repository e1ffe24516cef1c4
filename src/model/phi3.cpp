// Phi-3 (modeling_phi3.py), on the eager attention path: Llama's pre-norm
// decoder with one fused q/k/v projection and one fused gate/up projection.
//
//   x = embed_tokens[id]
//   per layer:
//     q | k | v = RMSNorm(x) W_qkv               rows: heads, kv_heads, kv_heads
//     q, k      = rotate the first partial_rotary_factor * head_dim dims of each head
//                 rope_scaling "longrope" (or its old names "su", "yarn"): inverse frequencies
//                 divided by short_factor, or long_factor past original_max_position_embeddings,
//                 cos and sin times the attention factor
//     probs     = softmax(q k^T / sqrt(head_dim), causal [, sliding_window])  -> the trace
//     x = x + (probs v) Wo
//     gate | up = RMSNorm(x) W_gate_up;  x = x + (up * act(gate)) W_down
//   norm(x) is the last hidden state
//
// Checkpoints: Phi3Model names, or "model."-prefixed (Phi3ForCausalLM).
#include <cmath>
#include <limits>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct Phi3LayerWeights {
    const float* attn_norm_weight;  // input_layernorm
    const float* qkv_weight;        // [(heads + 2 kv_heads) * head_dim, hidden]
    const float* out_weight;        // o_proj [hidden, heads * head_dim]
    const float* ffn_norm_weight;   // post_attention_layernorm
    const float* gate_up_weight;    // [2 * intermediate, hidden]: gate rows, then up rows
    const float* down_weight;       // [hidden, intermediate]
};

constexpr WeightSpec<Phi3LayerWeights> kLayerTable[] = {
    {&Phi3LayerWeights::attn_norm_weight, "layers.{L}.input_layernorm.weight", "hidden"},
    {&Phi3LayerWeights::qkv_weight, "layers.{L}.self_attn.qkv_proj.weight", "qkv, hidden"},
    {&Phi3LayerWeights::out_weight, "layers.{L}.self_attn.o_proj.weight", "hidden, heads*head_dim"},
    {&Phi3LayerWeights::ffn_norm_weight, "layers.{L}.post_attention_layernorm.weight", "hidden"},
    {&Phi3LayerWeights::gate_up_weight, "layers.{L}.mlp.gate_up_proj.weight",
     "2*intermediate, hidden"},
    {&Phi3LayerWeights::down_weight, "layers.{L}.mlp.down_proj.weight", "hidden, intermediate"},
};

struct Phi3Layer {
    Phi3LayerWeights weights;
    Linear qkv, out, gate, up, down;
};

// What config.json says beyond the common fields.
struct Phi3Extras {
    int rotary_dim = 0;
    double theta = 10000.0;
    bool longrope = false;
    std::vector<double> short_factor, long_factor;
    int original_max_positions = 0;
    double attention_factor = 1.0;
    int sliding_window = 0;  // 0: none
};

std::vector<double> factor_list(const ConfigReader& scaling, const char* key, int n) {
    const auto it = scaling.json().find(key);
    if (it == scaling.json().end() || !it->is_array() || it->size() != static_cast<size_t>(n))
        throw Error(scaling.file() + ": \"rope_scaling." + key + "\" must list " +
                    std::to_string(n) + " numbers (rotary dims / 2)");
    std::vector<double> out;
    for (const auto& v : *it) {
        if (!v.is_number() || !(v.get<double>() > 0))
            throw Error(scaling.file() + ": \"rope_scaling." + key + "\" holds " + v.dump() +
                        "; factors must be positive numbers");
        out.push_back(v.get<double>());
    }
    return out;
}

Phi3Extras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    Phi3Extras extras;
    const double partial = reader.number({"partial_rotary_factor"}, 1.0);
    extras.rotary_dim = static_cast<int>(config.head_dim * partial);
    if (!(partial > 0 && partial <= 1) || extras.rotary_dim < 2 || extras.rotary_dim % 2 != 0)
        throw Error(reader.file() + ": \"partial_rotary_factor\" " +
                    nlohmann::json(partial).dump() + " gives " + std::to_string(extras.rotary_dim) +
                    " rotary dims of head_dim " + std::to_string(config.head_dim) +
                    "; they must be even and at least 2");
    extras.theta = reader.number({"rope_theta"}, 10000.0);
    if (!(extras.theta > 0)) throw Error(reader.file() + ": \"rope_theta\" must be positive");
    const int max_positions = reader.integer({"max_position_embeddings"}, 4096);
    extras.original_max_positions =
        reader.integer({"original_max_position_embeddings"}, max_positions);
    if (const std::optional<ConfigReader> scaling = reader.object("rope_scaling")) {
        const std::string type = scaling->string({"rope_type", "type"});
        // Phi3Config renames the old "su" and "yarn" to longrope
        if (type != "longrope" && type != "su" && type != "yarn" && type != "default")
            throw Error(reader.file() + ": rope_scaling type \"" + type +
                        "\" is not supported for phi3 (supported: default, longrope, su, yarn)");
        extras.longrope = type != "default";
    }
    if (extras.longrope) {
        const ConfigReader scaling = *reader.object("rope_scaling");
        extras.short_factor = factor_list(scaling, "short_factor", extras.rotary_dim / 2);
        extras.long_factor = factor_list(scaling, "long_factor", extras.rotary_dim / 2);
        if (extras.original_max_positions < 1)
            throw Error(reader.file() + ": \"original_max_position_embeddings\" must be positive");
        // _compute_longrope_parameters: factor from the two lengths, the paper's attention factor
        const double factor = static_cast<double>(max_positions) / extras.original_max_positions;
        const auto given = scaling.json().find("attention_factor");
        if (given != scaling.json().end() && !given->is_null())
            extras.attention_factor = scaling.number({"attention_factor"});
        else if (factor > 1.0)
            extras.attention_factor =
                std::sqrt(1 + std::log(factor) / std::log(extras.original_max_positions));
    }
    const int window = reader.integer({"sliding_window"}, 0);
    if (window < 0) throw Error(reader.file() + ": \"sliding_window\" must be positive or null");
    extras.sliding_window = window;
    return extras;
}

// cos and sin [T, rotary_dim] as Phi3RotaryEmbedding makes them: inv_freq =
// 1 / (ext_factor * base ** (2i / dim)) in float32, angle = position * inv_freq,
// then times the attention factor.
RopeTables phi3_rope_tables(const Phi3Extras& extras, int T) {
    const int dim = extras.rotary_dim, half = dim / 2;
    const bool long_factors = extras.longrope && T > extras.original_max_positions;
    const std::vector<double>& ext = long_factors ? extras.long_factor : extras.short_factor;
    std::vector<float> inv_freq(static_cast<size_t>(half));
    const float base = static_cast<float>(extras.theta);
    for (int i = 0; i < half; ++i) {
        const float power = std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
        inv_freq[static_cast<size_t>(i)] =
            extras.longrope ? 1.0f / (static_cast<float>(ext[static_cast<size_t>(i)]) * power)
                            : 1.0f / power;
    }
    const float scale = static_cast<float>(extras.attention_factor);
    RopeTables tables{T, dim, std::vector<float>(static_cast<size_t>(T) * dim),
                      std::vector<float>(static_cast<size_t>(T) * dim)};
    for (int position = 0; position < T; ++position)
        for (int i = 0; i < half; ++i) {
            const float angle = static_cast<float>(position) * inv_freq[static_cast<size_t>(i)];
            float c = static_cast<float>(std::cos(static_cast<double>(angle)));
            float s = static_cast<float>(std::sin(static_cast<double>(angle)));
            if (extras.longrope) c *= scale, s *= scale;
            const size_t row = static_cast<size_t>(position) * dim;
            tables.cos[row + i] = tables.cos[row + i + half] = c;
            tables.sin[row + i] = tables.sin[row + i + half] = s;
        }
    return tables;
}

class Phi3 final : public Network {
public:
    Phi3(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          extras_(read_extras(reader, config)),
          loader_(tensors, config, {"", "model."}) {
        loader_.set_dim(
            "qkv", static_cast<int64_t>(config.n_heads + 2 * config.n_kv_heads) * config.head_dim);
        embedding_ = loader_.get("embed_tokens.weight", "vocab, hidden");
        final_norm_weight_ = loader_.get("norm.weight", "hidden");
        const int D = config.hidden_size, I = config.intermediate_size;
        const int Dq = config.n_heads * config.head_dim, Dkv = config.n_kv_heads * config.head_dim;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            Phi3Layer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const Phi3LayerWeights& w = l.weights;
            l.qkv = Linear(w.qkv_weight, nullptr, D, Dq + 2 * Dkv);
            l.out = Linear(w.out_weight, nullptr, Dq, D);
            l.gate =
                Linear(w.gate_up_weight, nullptr, D, I, runtime::WeightLayout::out_in, activation);
            l.up = Linear(w.gate_up_weight + static_cast<size_t>(I) * D, nullptr, D, I);
            l.down = Linear(w.down_weight, nullptr, I, D);
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, config_.model_type);
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Hkv = config_.n_kv_heads;
        const int Dh = config_.head_dim, L = config_.n_layers, I = config_.intermediate_size;
        const int Dq = H * Dh, Dkv = Hkv * Dh, W = Dq + 2 * Dkv;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, static_cast<float>(std::pow(double(Dh), -0.5)),
                       /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        const RopeTables rope = phi3_rope_tables(extras_, T);
        const int R = extras_.rotary_dim;

        std::vector<float> x(static_cast<size_t>(T) * D), h(static_cast<size_t>(T) * D);
        std::vector<float> qkv(static_cast<size_t>(T) * W);
        std::vector<float> context(static_cast<size_t>(T) * Dq);
        std::vector<float> gate(static_cast<size_t>(T) * I), up(static_cast<size_t>(T) * I);
        std::vector<float> window_bias;  // [H, T, T]: -inf outside the sliding window
        const int window = extras_.sliding_window;
        if (window > 0 && window < T) {
            window_bias.assign(static_cast<size_t>(H) * T * T, 0.0f);
            for (int head = 0; head < H; ++head)
                for (int q = 0; q < T; ++q)
                    for (int k = 0; k <= q - window; ++k)
                        window_bias[(static_cast<size_t>(head) * T + q) * T + k] =
                            -std::numeric_limits<float>::infinity();
        }
        for (int t = 0; t < T; ++t)
            std::copy_n(embedding_ + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const Phi3Layer& l = layers_[static_cast<size_t>(layer)];
            runtime::rms_norm(x.data(), l.weights.attn_norm_weight, h.data(), T, D,
                              config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            for (int head = 0; head < H; ++head)
                apply_rope(qkv.data() + head * Dh, W, T, 1, R, rope);
            for (int head = 0; head < Hkv; ++head)
                apply_rope(qkv.data() + Dq + head * Dh, W, T, 1, R, rope);
            keep_queries_keys(block, layer, qkv.data(), W, qkv.data() + Dq, W, Hkv);
            attend(block, layer,
                   {.head_dim = Dh,
                    .queries = qkv.data(),
                    .query_stride = W,
                    .keys = qkv.data() + Dq,
                    .key_stride = W,
                    .values = qkv.data() + Dq + Dkv,
                    .value_stride = W,
                    .n_kv_heads = Hkv,
                    .score_bias = window_bias.empty() ? nullptr : window_bias.data()},
                   context.data(), Dq);
            l.out.forward_add(context.data(), x.data(), T);
            runtime::rms_norm(x.data(), l.weights.ffn_norm_weight, h.data(), T, D,
                              config_.norm_eps);
            l.gate.forward(h.data(), gate.data(), T);
            l.up.forward(h.data(), up.data(), T);
            for (size_t i = 0; i < up.size(); ++i) up[i] *= gate[i];  // up * act(gate)
            l.down.forward_add(up.data(), x.data(), T);
            hidden.add(x.data());
        }
        runtime::rms_norm(x.data(), final_norm_weight_, h.data(), T, D, config_.norm_eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    Phi3Extras extras_;
    WeightLoader loader_;
    const float* embedding_ = nullptr;
    const float* final_norm_weight_ = nullptr;
    std::vector<Phi3Layer> layers_;
};

}  // namespace

void read_phi3_config(const ConfigReader& reader, ModelConfig& config) {
    read_rotary_decoder_config(reader, config, {"rms_norm_eps", 1e-5, "hidden_act", "silu", 4096});
    config.head_dim = reader.integer({"head_dim"}, config.hidden_size / config.n_heads);
    if (config.head_dim < 2)
        throw Error(reader.file() + ": head_dim " + std::to_string(config.head_dim) +
                    " is too small for rotary embeddings");
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    config.sliding_window = read_extras(reader, config).sliding_window;  // validates it too
}

std::unique_ptr<Network> load_phi3(const LoadContext& context) {
    return std::make_unique<Phi3>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
