// OPT (Meta's Open Pre-trained Transformers), as modeling_opt.py computes it on
// its eager attention path: a decoder with learned positions offset by 2.
//
//   x = embed_tokens[id] + embed_positions[t + 2]
//   per layer (do_layer_norm_before: pre-norm, as every OPT but 350m):
//     h       = self_attn_layer_norm(x)            (post-norm: h = x, the norm after the sum)
//     probs   = softmax((h Wq + b) * head_dim^-0.5 . (h Wk + b)^T, causal)   -> the trace
//     x = x + (probs (h Wv + b)) W_out + b
//     x = x + fc2(act(fc1(final_layer_norm(x))))
//   decoder.final_layer_norm(x) is the last hidden state (pre-norm, unless
//   _remove_final_layer_norm)
//
// The trace keeps the unscaled queries with score_scale head_dim^-0.5.
// enable_bias: false drops every projection's bias; layer_norm_elementwise_affine:
// false gives LayerNorms without weight and bias. OPT-350m's project_in /
// project_out (word_embed_proj_dim < hidden_size) is refused.
// Checkpoints: OPTModel names ("decoder.*"), or "model."-prefixed ones
// (OPTForCausalLM: lm_head is not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

constexpr float kOptNormEps = 1e-5f;  // nn.LayerNorm's default: OPT has no eps key

struct OptWeights {
    const float* token_embedding = nullptr;     // [vocab, hidden]
    const float* position_embedding = nullptr;  // [positions + 2, hidden]
    const float* final_norm_weight = nullptr;
    const float* final_norm_bias = nullptr;
};

constexpr WeightSpec<OptWeights> kModelTable[] = {
    {&OptWeights::token_embedding, "decoder.embed_tokens.weight", "vocab, hidden"},
    {&OptWeights::position_embedding, "decoder.embed_positions.weight", "positions, hidden"},
};

constexpr WeightSpec<OptWeights> kFinalNormTable[] = {
    {&OptWeights::final_norm_weight, "decoder.final_layer_norm.weight", "hidden"},
    {&OptWeights::final_norm_bias, "decoder.final_layer_norm.bias", "hidden"},
};

struct OptLayerWeights {
    const float *query_weight, *query_bias;
    const float *key_weight, *key_bias;
    const float *value_weight, *value_bias;
    const float *attn_out_weight, *attn_out_bias;
    const float *attn_norm_weight, *attn_norm_bias;  // self_attn_layer_norm
    const float *ffn_up_weight, *ffn_up_bias;        // fc1
    const float *ffn_down_weight, *ffn_down_bias;    // fc2
    const float *ffn_norm_weight, *ffn_norm_bias;    // final_layer_norm
};

// Biases and norm weights are optional here; config.json decides (enable_bias,
// layer_norm_elementwise_affine).
constexpr WeightSpec<OptLayerWeights> kLayerTable[] = {
    {&OptLayerWeights::query_weight, "decoder.layers.{L}.self_attn.q_proj.weight",
     "hidden, hidden"},
    {&OptLayerWeights::query_bias, "decoder.layers.{L}.self_attn.q_proj.bias", "hidden", true},
    {&OptLayerWeights::key_weight, "decoder.layers.{L}.self_attn.k_proj.weight", "hidden, hidden"},
    {&OptLayerWeights::key_bias, "decoder.layers.{L}.self_attn.k_proj.bias", "hidden", true},
    {&OptLayerWeights::value_weight, "decoder.layers.{L}.self_attn.v_proj.weight",
     "hidden, hidden"},
    {&OptLayerWeights::value_bias, "decoder.layers.{L}.self_attn.v_proj.bias", "hidden", true},
    {&OptLayerWeights::attn_out_weight, "decoder.layers.{L}.self_attn.out_proj.weight",
     "hidden, hidden"},
    {&OptLayerWeights::attn_out_bias, "decoder.layers.{L}.self_attn.out_proj.bias", "hidden", true},
    {&OptLayerWeights::attn_norm_weight, "decoder.layers.{L}.self_attn_layer_norm.weight", "hidden",
     true},
    {&OptLayerWeights::attn_norm_bias, "decoder.layers.{L}.self_attn_layer_norm.bias", "hidden",
     true},
    {&OptLayerWeights::ffn_up_weight, "decoder.layers.{L}.fc1.weight", "intermediate, hidden"},
    {&OptLayerWeights::ffn_up_bias, "decoder.layers.{L}.fc1.bias", "intermediate", true},
    {&OptLayerWeights::ffn_down_weight, "decoder.layers.{L}.fc2.weight", "hidden, intermediate"},
    {&OptLayerWeights::ffn_down_bias, "decoder.layers.{L}.fc2.bias", "hidden", true},
    {&OptLayerWeights::ffn_norm_weight, "decoder.layers.{L}.final_layer_norm.weight", "hidden",
     true},
    {&OptLayerWeights::ffn_norm_bias, "decoder.layers.{L}.final_layer_norm.bias", "hidden", true},
};

struct OptLayer {
    OptLayerWeights weights;
    Linear qkv;       // [hidden] -> [query | key | value]
    Linear attn_out;  // added to the residual
    Linear ffn_up;    // activation fused
    Linear ffn_down;  // added to the residual
};

class Opt final : public Network {
public:
    Opt(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          pre_norm_(reader.boolean({"do_layer_norm_before"}, true)),
          final_norm_(pre_norm_ && !reader.boolean({"_remove_final_layer_norm"}, false)),
          bias_(reader.boolean({"enable_bias"}, true)),
          affine_(reader.boolean({"layer_norm_elementwise_affine"}, true)),
          loader_(tensors, config, {"", "model."}) {
        loader_.set_dim("positions", config.max_positions + 2);
        loader_.bind(kModelTable, weights_);
        if (final_norm_ && affine_) loader_.bind(kFinalNormTable, weights_);
        const int D = config.hidden_size, I = config.intermediate_size;
        ones_.assign(static_cast<size_t>(D), 1.0f);
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            OptLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            OptLayerWeights& w = l.weights;
            require(!bias_ || (w.query_bias && w.key_bias && w.value_bias && w.attn_out_bias &&
                               w.ffn_up_bias && w.ffn_down_bias),
                    layer, "enable_bias asks for biases");
            require(!affine_ || (w.attn_norm_weight && w.attn_norm_bias && w.ffn_norm_weight &&
                                 w.ffn_norm_bias),
                    layer, "layer_norm_elementwise_affine asks for LayerNorm weights");
            if (!bias_)
                w.query_bias = w.key_bias = w.value_bias = w.attn_out_bias = w.ffn_up_bias =
                    w.ffn_down_bias = nullptr;
            if (!affine_) {  // nn.LayerNorm(elementwise_affine=False): weight 1, no bias
                w.attn_norm_weight = w.ffn_norm_weight = ones_.data();
                w.attn_norm_bias = w.ffn_norm_bias = nullptr;
            }
            l.qkv = Linear({{w.query_weight, w.query_bias, D},
                            {w.key_weight, w.key_bias, D},
                            {w.value_weight, w.value_bias, D}},
                           D);
            l.attn_out = Linear(w.attn_out_weight, w.attn_out_bias, D, D);
            l.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              activation);
            l.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D);
        }
        if (final_norm_ && !affine_) weights_.final_norm_weight = ones_.data();
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, config_.max_positions, "OPT");
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> h(static_cast<size_t>(T) * D);        // [T, D] normalized
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);  // [T, 3D] query | key | value
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]

        for (int t = 0; t < T; ++t) {  // OPTLearnedPositionalEmbedding: position t at row t + 2
            const float* token = weights_.token_embedding + static_cast<size_t>(ids[t]) * D;
            const float* position = weights_.position_embedding + static_cast<size_t>(t + 2) * D;
            for (int i = 0; i < D; ++i) x[static_cast<size_t>(t) * D + i] = token[i] + position[i];
        }
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const OptLayer& l = layers_[static_cast<size_t>(layer)];
            const OptLayerWeights& w = l.weights;
            if (pre_norm_)
                runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, h.data(), T, D,
                                    kOptNormEps);
            l.qkv.forward(pre_norm_ ? h.data() : x.data(), qkv.data(), T);
            attend_fused_qkv(block, layer, qkv.data(), Dh, nullptr, nullptr, context.data());
            l.attn_out.forward_add(context.data(), x.data(), T);
            if (!pre_norm_)
                runtime::layer_norm(x.data(), w.attn_norm_weight, w.attn_norm_bias, x.data(), T, D,
                                    kOptNormEps);
            if (pre_norm_)
                runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, h.data(), T, D,
                                    kOptNormEps);
            l.ffn_up.forward(pre_norm_ ? h.data() : x.data(), ffn.data(), T);
            l.ffn_down.forward_add(ffn.data(), x.data(), T);
            if (!pre_norm_)
                runtime::layer_norm(x.data(), w.ffn_norm_weight, w.ffn_norm_bias, x.data(), T, D,
                                    kOptNormEps);
            hidden.add(x.data());
        }
        if (final_norm_) {
            runtime::layer_norm(x.data(), weights_.final_norm_weight, weights_.final_norm_bias,
                                h.data(), T, D, kOptNormEps);
            hidden.replace_last(h.data());
        }
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    static void require(bool present, int layer, const char* what) {
        if (!present)
            throw Error("layer " + std::to_string(layer) + ": config.json's " + what +
                        ", but the checkpoint lacks them");
    }

    ModelConfig config_;
    bool pre_norm_ = true, final_norm_ = true, bias_ = true, affine_ = true;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    OptWeights weights_;
    std::vector<float> ones_;  // the weight of a LayerNorm without elementwise_affine
    std::vector<OptLayer> layers_;
};

}  // namespace

void read_opt_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size"});
    config.intermediate_size = reader.integer({"ffn_dim"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"max_position_embeddings"});
    config.norm_eps = kOptNormEps;
    config.hidden_act = reader.string({"activation_function"}, "relu");
    config.type_vocab_size = 0;
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 || config.max_positions < 1)
        throw Error(reader.file() +
                    ": OPT needs positive num_hidden_layers, num_attention_heads, hidden_size, "
                    "ffn_dim, vocab_size, max_position_embeddings");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    // OPT-350m's narrower embeddings; every other OPT repeats hidden_size here
    if (reader.has({"word_embed_proj_dim"}) &&
        reader.integer({"word_embed_proj_dim"}, config.hidden_size) != config.hidden_size)
        throw Error(reader.file() + ": \"word_embed_proj_dim\" is " +
                    std::to_string(reader.integer({"word_embed_proj_dim"})) +
                    ", not supported: embeddings narrower than hidden_size " +
                    std::to_string(config.hidden_size) + " with project_in/project_out (OPT-350m)");
    check_activation(config.hidden_act, reader.file(), "activation_function");
}

std::unique_ptr<Network> load_opt(const LoadContext& context) {
    return std::make_unique<Opt>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
