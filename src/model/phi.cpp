// Phi-1, Phi-1.5 and Phi-2 (modeling_phi.py), on the eager attention path: a
// decoder whose attention and feed-forward read the same LayerNorm output and
// are added to the residual together, with rotary positions on part of each head.
//
//   x = embed_tokens[id]
//   per layer:
//     h       = LayerNorm(x)
//     q, k, v = h Wq + bq, h Wk + bk, h Wv + bv         k, v: num_key_value_heads heads
//     q, k    = LayerNorm_q(q), LayerNorm_k(k) per head  qk_layernorm only
//     q, k    = rotate the first partial_rotary_factor * head_dim dims of each head
//     probs   = softmax(q k^T / sqrt(head_dim), causal)  -> the trace
//     x = (probs v) W_dense + b + fc2(act(fc1(h))) + x
//   final_layernorm(x) is the last hidden state
//
// Checkpoints: PhiModel names, or "model."-prefixed (PhiForCausalLM).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct PhiLayerWeights {
    const float *norm_weight, *norm_bias;  // input_layernorm
    const float *query_weight, *query_bias;
    const float *key_weight, *key_bias;
    const float *value_weight, *value_bias;
    const float *dense_weight, *dense_bias;                                  // attention output
    const float *q_norm_weight, *q_norm_bias, *k_norm_weight, *k_norm_bias;  // qk_layernorm
    const float *fc1_weight, *fc1_bias, *fc2_weight, *fc2_bias;
};

constexpr WeightSpec<PhiLayerWeights> kLayerTable[] = {
    {&PhiLayerWeights::norm_weight, "layers.{L}.input_layernorm.weight", "hidden"},
    {&PhiLayerWeights::norm_bias, "layers.{L}.input_layernorm.bias", "hidden"},
    {&PhiLayerWeights::query_weight, "layers.{L}.self_attn.q_proj.weight",
     "heads*head_dim, hidden"},
    {&PhiLayerWeights::query_bias, "layers.{L}.self_attn.q_proj.bias", "heads*head_dim"},
    {&PhiLayerWeights::key_weight, "layers.{L}.self_attn.k_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&PhiLayerWeights::key_bias, "layers.{L}.self_attn.k_proj.bias", "kv_heads*head_dim"},
    {&PhiLayerWeights::value_weight, "layers.{L}.self_attn.v_proj.weight",
     "kv_heads*head_dim, hidden"},
    {&PhiLayerWeights::value_bias, "layers.{L}.self_attn.v_proj.bias", "kv_heads*head_dim"},
    {&PhiLayerWeights::dense_weight, "layers.{L}.self_attn.dense.weight", "hidden, heads*head_dim"},
    {&PhiLayerWeights::dense_bias, "layers.{L}.self_attn.dense.bias", "hidden"},
    {&PhiLayerWeights::q_norm_weight, "layers.{L}.self_attn.q_layernorm.weight", "head_dim", true},
    {&PhiLayerWeights::q_norm_bias, "layers.{L}.self_attn.q_layernorm.bias", "head_dim", true},
    {&PhiLayerWeights::k_norm_weight, "layers.{L}.self_attn.k_layernorm.weight", "head_dim", true},
    {&PhiLayerWeights::k_norm_bias, "layers.{L}.self_attn.k_layernorm.bias", "head_dim", true},
    {&PhiLayerWeights::fc1_weight, "layers.{L}.mlp.fc1.weight", "intermediate, hidden"},
    {&PhiLayerWeights::fc1_bias, "layers.{L}.mlp.fc1.bias", "intermediate"},
    {&PhiLayerWeights::fc2_weight, "layers.{L}.mlp.fc2.weight", "hidden, intermediate"},
    {&PhiLayerWeights::fc2_bias, "layers.{L}.mlp.fc2.bias", "hidden"},
};

struct PhiLayer {
    PhiLayerWeights weights;
    Linear qkv, dense, fc1, fc2;
};

class Phi final : public Network {
public:
    Phi(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "model."}) {
        const int Dh = config.head_dim;
        rotary_dim_ = rotary_dims(reader, Dh);
        rope_ = read_rope_config(reader, rotary_dim_,
                                 reader.integer({"max_position_embeddings"}, 2048));
        qk_layernorm_ = reader.boolean({"qk_layernorm"}, false);
        embedding_ = loader_.get("embed_tokens.weight", "vocab, hidden");
        final_norm_weight_ = loader_.get("final_layernorm.weight", "hidden");
        final_norm_bias_ = loader_.get("final_layernorm.bias", "hidden");
        const int D = config.hidden_size, I = config.intermediate_size;
        const int Dq = config.n_heads * Dh, Dkv = config.n_kv_heads * Dh;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            PhiLayer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            const PhiLayerWeights& w = l.weights;
            if (qk_layernorm_ &&
                !(w.q_norm_weight && w.q_norm_bias && w.k_norm_weight && w.k_norm_bias))
                throw Error("layer " + std::to_string(layer) +
                            ": config.json sets qk_layernorm, but the checkpoint lacks "
                            "self_attn.q_layernorm / k_layernorm");
            l.qkv = Linear({{w.query_weight, w.query_bias, Dq},
                            {w.key_weight, w.key_bias, Dkv},
                            {w.value_weight, w.value_bias, Dkv}},
                           D);
            l.dense = Linear(w.dense_weight, w.dense_bias, Dq, D);
            l.fc1 =
                Linear(w.fc1_weight, w.fc1_bias, D, I, runtime::WeightLayout::out_in, activation);
            l.fc2 = Linear(w.fc2_weight, w.fc2_bias, I, D);
        }
    }

    // int(head_dim * partial_rotary_factor), as PhiAttention computes rotary_ndims
    static int rotary_dims(const ConfigReader& reader, int head_dim) {
        const double factor = reader.number({"partial_rotary_factor"}, 0.5);
        const int dims = static_cast<int>(head_dim * factor);
        if (!(factor > 0 && factor <= 1) || dims < 2 || dims % 2 != 0)
            throw Error(reader.file() + ": \"partial_rotary_factor\" " +
                        nlohmann::json(factor).dump() + " gives " + std::to_string(dims) +
                        " rotary dims of head_dim " + std::to_string(head_dim) +
                        "; they must be even, at least 2 and at most head_dim");
        return dims;
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
            make_block("self", L, H, T, T, Dh, static_cast<float>(1.0 / std::sqrt(double(Dh))),
                       /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        const RopeTables rope = rope_tables(rope_, T);

        std::vector<float> x(static_cast<size_t>(T) * D), h(static_cast<size_t>(T) * D);
        std::vector<float> out(static_cast<size_t>(T) * D);  // attention + feed-forward
        std::vector<float> qkv(static_cast<size_t>(T) * W);
        std::vector<float> context(static_cast<size_t>(T) * Dq);
        std::vector<float> ffn(static_cast<size_t>(T) * I);
        for (int t = 0; t < T; ++t)
            std::copy_n(embedding_ + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const PhiLayer& l = layers_[static_cast<size_t>(layer)];
            const PhiLayerWeights& w = l.weights;
            runtime::layer_norm(x.data(), w.norm_weight, w.norm_bias, h.data(), T, D,
                                config_.norm_eps);
            l.qkv.forward(h.data(), qkv.data(), T);
            for (int t = 0; qk_layernorm_ && t < T; ++t) {  // each head's row on its own
                float* row = qkv.data() + static_cast<size_t>(t) * W;
                runtime::layer_norm(row, w.q_norm_weight, w.q_norm_bias, row, H, Dh,
                                    config_.norm_eps);
                runtime::layer_norm(row + Dq, w.k_norm_weight, w.k_norm_bias, row + Dq, Hkv, Dh,
                                    config_.norm_eps);
            }
            for (int head = 0; head < H; ++head)  // the first rotary_dim_ dims of each head
                apply_rope(qkv.data() + head * Dh, W, T, 1, rotary_dim_, rope);
            for (int head = 0; head < Hkv; ++head)
                apply_rope(qkv.data() + Dq + head * Dh, W, T, 1, rotary_dim_, rope);
            keep_queries_keys(block, layer, qkv.data(), W, qkv.data() + Dq, W, Hkv);
            attend(block, layer,
                   {.head_dim = Dh,
                    .queries = qkv.data(),
                    .query_stride = W,
                    .keys = qkv.data() + Dq,
                    .key_stride = W,
                    .values = qkv.data() + Dq + Dkv,
                    .value_stride = W,
                    .n_kv_heads = Hkv},
                   context.data(), Dq);
            // attn_outputs + feed_forward_hidden_states + residual
            l.dense.forward(context.data(), out.data(), T);
            l.fc1.forward(h.data(), ffn.data(), T);
            l.fc2.forward_add(ffn.data(), out.data(), T);
            runtime::add_in_place(x.data(), out.data(), x.size());
            hidden.add(x.data());
        }
        runtime::layer_norm(x.data(), final_norm_weight_, final_norm_bias_, h.data(), T, D,
                            config_.norm_eps);
        hidden.replace_last(h.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    WeightLoader loader_;
    RopeConfig rope_;
    int rotary_dim_ = 0;
    bool qk_layernorm_ = false;
    const float* embedding_ = nullptr;
    const float *final_norm_weight_ = nullptr, *final_norm_bias_ = nullptr;
    std::vector<PhiLayer> layers_;
};

}  // namespace

void read_phi_config(const ConfigReader& reader, ModelConfig& config) {
    read_rotary_decoder_config(reader, config,
                               {"layer_norm_eps", 1e-5, "hidden_act", "gelu_new", 2048});
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    const int rotary = Phi::rotary_dims(reader, config.head_dim);
    (void)read_rope_config(reader, rotary, config.context_length);
}

std::unique_ptr<Network> load_phi(const LoadContext& context) {
    return std::make_unique<Phi>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
