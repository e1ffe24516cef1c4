// Falcon, as modeling_falcon.py computes it on its eager attention path: a
// decoder whose attention and MLP read the same normalized input (parallel_attn)
// or follow each other, with rotary positions or ALiBi (alibi), and one fused
// query_key_value projection in one of three layouts:
//   new_decoder_architecture (40B/180B): per key/value group, its query heads,
//     then its key head and value head (num_kv_heads groups; ln_attn + ln_mlp);
//   multi_query (7B): [all query heads | one key head | one value head];
//   neither (falcon-rw): [h0: q k v | h1: q k v ...].
//
//   x = word_embeddings[id]
//   per layer:
//     a_in    = ln_attn(x) or input_layernorm(x)
//     q, k, v = a_in W_qkv (+ b)
//     rotary:  q, k rotated;  probs = softmax(q k^T / sqrt(head_dim), causal)
//     alibi:   probs = softmax((q k^T + alibi) / sqrt(head_dim), causal)  alibi = bf16(slope_h) * k
//     a       = (probs v) W_dense (+ b)                                      probs -> the trace
//     parallel: x = x + a + mlp(ln_mlp(x) or a_in);  else: x = x + a; x = x +
//     mlp(post_attention_layernorm(x))
//   ln_f(x) is the last hidden state
//
// The trace shows every query head; grouped keys are repeated per query head.
// With ALiBi its score bias is alibi / sqrt(head_dim), the neuron view's bias column.
// Checkpoints: FalconModel names, or "transformer."-prefixed ones
// (FalconForCausalLM: lm_head is not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/alibi.h"
#include "model/arch_blocks.h"
#include "model/fused_qkv.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct FalconWeights {
    const float* token_embedding = nullptr;  // word_embeddings [vocab, hidden]
    const float *final_norm_weight = nullptr, *final_norm_bias = nullptr;
};

constexpr WeightSpec<FalconWeights> kModelTable[] = {
    {&FalconWeights::token_embedding, "word_embeddings.weight", "vocab, hidden"},
    {&FalconWeights::final_norm_weight, "ln_f.weight", "hidden"},
    {&FalconWeights::final_norm_bias, "ln_f.bias", "hidden"},
};

struct FalconLayerWeights {
    const float *qkv_weight, *qkv_bias;  // [(heads + 2 kv_heads) * head_dim, hidden]
    const float *attn_out_weight, *attn_out_bias;
    const float *ffn_up_weight, *ffn_up_bias;
    const float *ffn_down_weight, *ffn_down_bias;
    // the norms present depend on the layout (input_layernorm [+ post_attention_layernorm],
    // or ln_attn + ln_mlp)
    const float *input_norm_weight, *input_norm_bias;
    const float *post_attn_norm_weight, *post_attn_norm_bias;
    const float *ln_attn_weight, *ln_attn_bias;
    const float *ln_mlp_weight, *ln_mlp_bias;
};

constexpr WeightSpec<FalconLayerWeights> kLayerTable[] = {
    {&FalconLayerWeights::qkv_weight, "h.{L}.self_attention.query_key_value.weight", "qkv, hidden"},
    {&FalconLayerWeights::qkv_bias, "h.{L}.self_attention.query_key_value.bias", "qkv", true},
    {&FalconLayerWeights::attn_out_weight, "h.{L}.self_attention.dense.weight", "hidden, hidden"},
    {&FalconLayerWeights::attn_out_bias, "h.{L}.self_attention.dense.bias", "hidden", true},
    {&FalconLayerWeights::ffn_up_weight, "h.{L}.mlp.dense_h_to_4h.weight", "intermediate, hidden"},
    {&FalconLayerWeights::ffn_up_bias, "h.{L}.mlp.dense_h_to_4h.bias", "intermediate", true},
    {&FalconLayerWeights::ffn_down_weight, "h.{L}.mlp.dense_4h_to_h.weight",
     "hidden, intermediate"},
    {&FalconLayerWeights::ffn_down_bias, "h.{L}.mlp.dense_4h_to_h.bias", "hidden", true},
    {&FalconLayerWeights::input_norm_weight, "h.{L}.input_layernorm.weight", "hidden", true},
    {&FalconLayerWeights::input_norm_bias, "h.{L}.input_layernorm.bias", "hidden", true},
    {&FalconLayerWeights::post_attn_norm_weight, "h.{L}.post_attention_layernorm.weight", "hidden",
     true},
    {&FalconLayerWeights::post_attn_norm_bias, "h.{L}.post_attention_layernorm.bias", "hidden",
     true},
    {&FalconLayerWeights::ln_attn_weight, "h.{L}.ln_attn.weight", "hidden", true},
    {&FalconLayerWeights::ln_attn_bias, "h.{L}.ln_attn.bias", "hidden", true},
    {&FalconLayerWeights::ln_mlp_weight, "h.{L}.ln_mlp.weight", "hidden", true},
    {&FalconLayerWeights::ln_mlp_bias, "h.{L}.ln_mlp.bias", "hidden", true},
};

// What config.json says about the layout beyond the common fields.
struct FalconLayout {
    bool alibi = false, new_architecture = false, multi_query = true, parallel_attn = true;
    bool bias = false;
    int norms_in_parallel = 1;  // 2: ln_attn and ln_mlp
};

FalconLayout read_layout(const ConfigReader& reader) {
    FalconLayout layout;
    layout.alibi = reader.boolean({"alibi"}, false);
    layout.new_architecture = reader.boolean({"new_decoder_architecture"}, false);
    layout.multi_query = reader.boolean({"multi_query"}, true);
    layout.parallel_attn = reader.boolean({"parallel_attn"}, true);
    layout.bias = reader.boolean({"bias"}, false);
    // FalconDecoderLayer: None becomes 2 under the new architecture
    layout.norms_in_parallel =
        reader.integer({"num_ln_in_parallel_attn"}, layout.new_architecture ? 2 : 1);
    if (layout.norms_in_parallel != 1 && layout.norms_in_parallel != 2)
        throw Error(reader.file() + ": \"num_ln_in_parallel_attn\" is " +
                    std::to_string(layout.norms_in_parallel) + ", not 1 or 2");
    // modeling_falcon cannot run these either: its norms would not exist
    if (layout.new_architecture && !layout.parallel_attn)
        throw Error(reader.file() +
                    ": \"parallel_attn\" is false with new_decoder_architecture, which "
                    "modeling_falcon does not run");
    return layout;
}

class Falcon final : public Network {
public:
    Falcon(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config),
          layout_(read_layout(reader)),
          loader_(tensors, config, {"", "transformer."}) {
        const int D = config.hidden_size, I = config.intermediate_size;
        const int H = config.n_heads, Hkv = config.n_kv_heads, Dh = config.head_dim;
        if (!layout_.alibi) rope_ = read_rope_config(reader, Dh, config.context_length);
        loader_.set_dim("qkv", static_cast<int64_t>(H + 2 * Hkv) * Dh);
        loader_.bind(kModelTable, weights_);
        const auto activation = runtime::activation_from_name(config.hidden_act);
        // the rows of query_key_value: groups of (queries, key, value) heads
        const int groups = layout_.new_architecture ? Hkv : (layout_.multi_query ? 1 : H);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            Layer& l = layers_[static_cast<size_t>(layer)];
            loader_.bind(kLayerTable, l.weights, layer);
            FalconLayerWeights& w = l.weights;
            if (layout_.bias &&
                !(w.qkv_bias && w.attn_out_bias && w.ffn_up_bias && w.ffn_down_bias))
                missing(layer, "config.json's bias asks for biases");
            if (!layout_.bias)
                w.qkv_bias = w.attn_out_bias = w.ffn_up_bias = w.ffn_down_bias = nullptr;
            if (two_norms()) {
                if (!(w.ln_attn_weight && w.ln_attn_bias && w.ln_mlp_weight && w.ln_mlp_bias))
                    missing(layer, "the layout needs ln_attn and ln_mlp");
            } else if (!(w.input_norm_weight && w.input_norm_bias) ||
                       (!layout_.parallel_attn &&
                        !(w.post_attn_norm_weight && w.post_attn_norm_bias))) {
                missing(layer,
                        "the layout needs input_layernorm (and post_attention_layernorm "
                        "without parallel_attn)");
            }
            l.qkv =
                Linear(grouped_qkv_parts(w.qkv_weight, w.qkv_bias, D, groups, H / groups, Dh), D);
            l.attn_out = Linear(w.attn_out_weight, w.attn_out_bias, D, D);
            l.ffn_up = Linear(w.ffn_up_weight, w.ffn_up_bias, D, I, runtime::WeightLayout::out_in,
                              activation);
            l.ffn_down = Linear(w.ffn_down_weight, w.ffn_down_bias, I, D);
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const std::vector<int32_t>& ids = input.tokens->ids;
        check_token_ids(ids, config_.vocab_size, 0, "Falcon");
        const int T = static_cast<int>(ids.size());
        const int D = config_.hidden_size, H = config_.n_heads, Hkv = config_.n_kv_heads;
        const int Dh = config_.head_dim, L = config_.n_layers, I = config_.intermediate_size;
        const int Dkv = Hkv * Dh, W = D + 2 * Dkv;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       /*causal=*/true, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        // (q.k + alibi) / sqrt(head_dim): the form runtime::attention computes
        std::vector<float> alibi;
        RopeTables rope;
        if (layout_.alibi)
            alibi = alibi_bias(H, T, nullptr, AlibiRounding::bfloat16);
        else
            rope = rope_tables(rope_, T);

        std::vector<float> x(static_cast<size_t>(T) * D);        // [T, D] the residual stream
        std::vector<float> a_in(static_cast<size_t>(T) * D);     // [T, D] attention's input
        std::vector<float> m_in(static_cast<size_t>(T) * D);     // [T, D] MLP's input
        std::vector<float> qkv(static_cast<size_t>(T) * W);      // [T, D + 2 Dkv]
        std::vector<float> context(static_cast<size_t>(T) * D);  // [T, D]
        std::vector<float> ffn(static_cast<size_t>(T) * I);      // [T, I]

        for (int t = 0; t < T; ++t)
            std::copy_n(weights_.token_embedding + static_cast<size_t>(ids[t]) * D, D,
                        x.data() + static_cast<size_t>(t) * D);
        hidden.add(x.data());

        for (int layer = 0; layer < L; ++layer) {
            const Layer& l = layers_[static_cast<size_t>(layer)];
            const FalconLayerWeights& w = l.weights;
            const float eps = config_.norm_eps;
            if (two_norms()) {
                runtime::layer_norm(x.data(), w.ln_attn_weight, w.ln_attn_bias, a_in.data(), T, D,
                                    eps);
                runtime::layer_norm(x.data(), w.ln_mlp_weight, w.ln_mlp_bias, m_in.data(), T, D,
                                    eps);
            } else {
                runtime::layer_norm(x.data(), w.input_norm_weight, w.input_norm_bias, a_in.data(),
                                    T, D, eps);
            }
            l.qkv.forward(a_in.data(), qkv.data(), T);
            if (!layout_.alibi) {
                apply_rope(qkv.data(), W, T, H, Dh, rope);        // queries
                apply_rope(qkv.data() + D, W, T, Hkv, Dh, rope);  // keys
            }
            keep_queries_keys(block, layer, qkv.data(), W, qkv.data() + D, W, Hkv);
            attend(block, layer,
                   {.head_dim = Dh,
                    .queries = qkv.data(),
                    .query_stride = W,
                    .keys = qkv.data() + D,
                    .key_stride = W,
                    .values = qkv.data() + D + Dkv,
                    .value_stride = W,
                    .n_kv_heads = Hkv,
                    .score_bias = layout_.alibi ? alibi.data() : nullptr},
                   context.data(), D);
            l.attn_out.forward_add(context.data(), x.data(), T);
            const float* mlp_in = two_norms() ? m_in.data() : a_in.data();
            if (!layout_.parallel_attn) {  // the MLP reads the sum
                runtime::layer_norm(x.data(), w.post_attn_norm_weight, w.post_attn_norm_bias,
                                    m_in.data(), T, D, eps);
                mlp_in = m_in.data();
            }
            l.ffn_up.forward(mlp_in, ffn.data(), T);
            l.ffn_down.forward_add(ffn.data(), x.data(), T);
            hidden.add(x.data());
        }
        runtime::layer_norm(x.data(), weights_.final_norm_weight, weights_.final_norm_bias,
                            a_in.data(), T, D, config_.norm_eps);
        hidden.replace_last(a_in.data());
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    struct Layer {
        FalconLayerWeights weights;
        Linear qkv;       // [hidden] -> [queries | keys | values]
        Linear attn_out;  // added to the residual
        Linear ffn_up;    // activation fused
        Linear ffn_down;  // added to the residual
    };

    bool two_norms() const { return layout_.new_architecture && layout_.norms_in_parallel == 2; }

    static void missing(int layer, const char* what) {
        throw Error("layer " + std::to_string(layer) + ": " + what +
                    ", but the checkpoint lacks them");
    }

    ModelConfig config_;
    FalconLayout layout_;
    RopeConfig rope_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    FalconWeights weights_;
    std::vector<Layer> layers_;
};

}  // namespace

void read_falcon_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = reader.integer({"num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size", "n_embed"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_epsilon"}, 1e-5));
    config.hidden_act = reader.string({"activation"}, "gelu");
    config.max_positions = 0;  // rotary or ALiBi: no learned table
    config.context_length = reader.integer({"max_position_embeddings"}, 2048);
    config.type_vocab_size = 0;
    config.is_causal = true;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.vocab_size < 1)
        throw Error(reader.file() +
                    ": Falcon needs positive num_hidden_layers, num_attention_heads, hidden_size, "
                    "vocab_size");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    config.intermediate_size =
        reader.integer({"ffn_hidden_size"},
                       static_cast<int>(checked_size(
                           reader.file(), {{"hidden_size", config.hidden_size}, {nullptr, 4}})));
    const FalconLayout layout = read_layout(reader);
    if (layout.alibi) config.position_embedding_type = "alibi";  // the memory estimate's [H, T, T]
    // FalconAttention: num_kv_heads counts only with the new architecture or without
    // multi_query; multi_query alone has one key/value head
    const int kv_heads = reader.integer({"num_kv_heads"}, config.n_heads);
    config.n_kv_heads =
        layout.new_architecture ? kv_heads : (layout.multi_query ? 1 : config.n_heads);
    if (!layout.new_architecture && !layout.multi_query && kv_heads != config.n_heads)
        throw Error(reader.file() + ": \"num_kv_heads\" " + std::to_string(kv_heads) +
                    " differs from num_attention_heads without new_decoder_architecture or "
                    "multi_query, which modeling_falcon cannot run");
    if (config.intermediate_size < 1 || config.n_kv_heads < 1 ||
        config.n_heads % config.n_kv_heads != 0)
        throw Error(reader.file() + ": num_attention_heads " + std::to_string(config.n_heads) +
                    " is not a multiple of num_kv_heads " + std::to_string(config.n_kv_heads) +
                    " (or ffn_hidden_size is not positive)");
    check_activation(config.hidden_act, reader.file(), "activation");
    if (!layout.alibi) {
        if (config.head_dim % 2 != 0)
            throw Error(reader.file() + ": head_dim " + std::to_string(config.head_dim) +
                        " must be even for rotary embeddings");
        (void)read_rope_config(reader, config.head_dim, config.context_length);
    }
}

std::unique_ptr<Network> load_falcon(const LoadContext& context) {
    return std::make_unique<Falcon>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
