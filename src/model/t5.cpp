// T5 (and T5 v1.1), as modeling_t5.py computes it on its eager attention path:
// a pre-norm encoder-decoder with RMS LayerNorm, no biases anywhere, no
// 1/sqrt(d) score scaling, and relative position buckets instead of positions.
//
//   encoder: x = shared[id]
//     bias   = relative_attention_bias[bucket(k - q, bidirectional)]   block 0's table, all layers
//     per layer: h = RMSNorm(x); probs = softmax(q k^T + bias [+ padding mask])  -> "encoder"
//                x = x + (probs v) Wo;  x = x + FFN(RMSNorm(x))
//     memory = RMSNorm_final(x)
//   decoder: y = shared[target id]
//     per layer: self-attention with causal buckets and a causal mask     -> "decoder"
//                cross-attention on memory, no position bias              -> "cross"
//                y = y + FFN(RMSNorm(y))
//   FFN: relu(h Wi) Wo, or for feed_forward_proj "gated-gelu" (v1.1)
//        (gelu_new(h Wi_0) * (h Wi_1)) Wo
//
// The decoder runs on the target text's own tokens (with its special tokens), as
// bertviz's encoder-decoder example does. Checkpoints: T5Model and
// T5ForConditionalGeneration share names ("shared.weight", or the tied
// "encoder.embed_tokens.weight"); lm_head is not read. T5ForSequenceClassification
// and T5ForQuestionAnswering put the same names under "transformer.".
#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "model/value_norms.h"
#include "runtime/kernels.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct T5Extras {
    int num_buckets = 32;
    int max_distance = 128;
    int decoder_layers = 0;
    bool gated = false;
    runtime::Activation activation = runtime::Activation::relu;
};

struct T5Attention {
    Linear qkv;  // self-attention: [d_model] -> [q | k | v]; cross: q only
    Linear kv;   // cross-attention: memory [d_model] -> [k | v]
    Linear out;  // [inner] -> [d_model], added to the residual
    const float* norm_weight = nullptr;
};

struct T5Block {
    T5Attention self_attention;
    T5Attention cross_attention;  // decoder blocks only
    const float* ffn_norm_weight = nullptr;
    Linear ffn_in;    // wi, or wi_0 (activation fused)
    Linear ffn_gate;  // wi_1 (gated variants)
    Linear ffn_out;   // wo, added to the residual
};

struct T5Stack {
    std::vector<T5Block> blocks;
    const float* relative_bias = nullptr;  // [num_buckets, heads], block 0
    const float* final_norm_weight = nullptr;
};

class T5 final : public Network {
public:
    T5(const ModelConfig& config, const T5Extras& extras, const io::TensorSet& tensors)
        : config_(config), extras_(extras), loader_(tensors, config, {"", "transformer."}) {
        loader_.set_dim("inner", static_cast<int64_t>(config.n_heads) * config.head_dim);
        loader_.set_dim("buckets", extras.num_buckets);
        embedding_ = loader_.get_optional("shared.weight", "vocab, hidden");
        if (!embedding_) embedding_ = loader_.get("encoder.embed_tokens.weight", "vocab, hidden");
        decoder_embedding_ = loader_.get_optional("decoder.embed_tokens.weight", "vocab, hidden");
        if (!decoder_embedding_) decoder_embedding_ = embedding_;
        load_stack("encoder", config.n_layers, false, encoder_);
        load_stack("decoder", extras.decoder_layers, true, decoder_);
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        if (!input.decoder)
            throw Error("T5 is an encoder-decoder model: give it a target text for the decoder");
        const Encoding& source = *input.tokens;
        const Encoding& target = *input.decoder;
        check_token_ids(source.ids, config_.vocab_size, 0, "T5 encoder");
        check_token_ids(target.ids, config_.vocab_size, 0, "T5 decoder");
        const int S = static_cast<int>(source.size()), T = static_cast<int>(target.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int Le = config_.n_layers, Ld = extras_.decoder_layers;
        const bool keep = options.keep_queries_keys;

        ForwardOutput output;
        output.blocks.reserve(3);
        AttentionBlock& encoder = output.blocks.emplace_back(
            make_block("encoder", Le, H, S, S, Dh, 1.0f, false, keep, 0, 0));
        AttentionBlock& decoder = output.blocks.emplace_back(
            make_block("decoder", Ld, H, T, T, Dh, 1.0f, true, keep, 1, 1));
        AttentionBlock& cross = output.blocks.emplace_back(
            make_block("cross", Ld, H, T, S, Dh, 1.0f, false, keep, 1, 0));
        const uint8_t* source_mask = padding_mask(source);
        for (AttentionBlock* b : {&encoder, &decoder, &cross})
            start_value_norms(*b, options.keep_value_norms);

        // encoder
        std::vector<float> memory(static_cast<size_t>(S) * D);
        embed(embedding_, source.ids, memory.data());
        HiddenStateRecorder encoder_hidden(options.keep_hidden_states, 0, Le + 1, S, D);
        encoder_hidden.add(memory.data());
        std::vector<float> bias = position_bias(encoder_, S, S, true);
        for (int layer = 0; layer < Le; ++layer) {
            const T5Block& b = encoder_.blocks[static_cast<size_t>(layer)];
            self_attention(b.self_attention, memory.data(), S, bias.data(), source_mask, encoder,
                           layer);
            feed_forward(b, memory.data(), S);
            encoder_hidden.add(memory.data());
        }
        runtime::rms_norm(memory.data(), encoder_.final_norm_weight, memory.data(), S, D,
                          config_.norm_eps);
        encoder_hidden.replace_last(memory.data());
        encoder_hidden.move_into(output.hidden_states);

        // decoder
        std::vector<float> y(static_cast<size_t>(T) * D);
        embed(decoder_embedding_, target.ids, y.data());
        HiddenStateRecorder decoder_hidden(options.keep_hidden_states, 1, Ld + 1, T, D);
        decoder_hidden.add(y.data());
        bias = position_bias(decoder_, T, T, false);
        for (int layer = 0; layer < Ld; ++layer) {
            const T5Block& b = decoder_.blocks[static_cast<size_t>(layer)];
            self_attention(b.self_attention, y.data(), T, bias.data(), nullptr, decoder, layer);
            cross_attention(b.cross_attention, y.data(), T, memory.data(), S, source_mask, cross,
                            layer);
            feed_forward(b, y.data(), T);
            decoder_hidden.add(y.data());
        }
        runtime::rms_norm(y.data(), decoder_.final_norm_weight, y.data(), T, D, config_.norm_eps);
        decoder_hidden.replace_last(y.data());
        decoder_hidden.move_into(output.hidden_states);
        return output;
    }

private:
    void load_stack(const std::string& stack, int n_layers, bool is_decoder, T5Stack& out) {
        const int D = config_.hidden_size, inner = config_.n_heads * config_.head_dim;
        const int F = config_.intermediate_size;
        const std::string block = stack + ".block.{L}.layer.";
        out.blocks.resize(static_cast<size_t>(n_layers));
        for (int layer = 0; layer < n_layers; ++layer) {
            T5Block& b = out.blocks[static_cast<size_t>(layer)];
            const auto weight = [&](const std::string& name, const char* shape) {
                return loader_.get(block + name, shape, layer);
            };
            const std::string self = "0.SelfAttention.";
            b.self_attention.qkv =
                Linear({{weight(self + "q.weight", "inner, hidden"), nullptr, inner},
                        {weight(self + "k.weight", "inner, hidden"), nullptr, inner},
                        {weight(self + "v.weight", "inner, hidden"), nullptr, inner}},
                       D);
            b.self_attention.out =
                Linear(weight(self + "o.weight", "hidden, inner"), nullptr, inner, D);
            b.self_attention.norm_weight = weight("0.layer_norm.weight", "hidden");
            std::string ffn = "1.";
            if (is_decoder) {
                const std::string cross = "1.EncDecAttention.";
                b.cross_attention.qkv =
                    Linear(weight(cross + "q.weight", "inner, hidden"), nullptr, D, inner);
                b.cross_attention.kv =
                    Linear({{weight(cross + "k.weight", "inner, hidden"), nullptr, inner},
                            {weight(cross + "v.weight", "inner, hidden"), nullptr, inner}},
                           D);
                b.cross_attention.out =
                    Linear(weight(cross + "o.weight", "hidden, inner"), nullptr, inner, D);
                b.cross_attention.norm_weight = weight("1.layer_norm.weight", "hidden");
                ffn = "2.";
            }
            const auto layout = runtime::WeightLayout::out_in;
            if (extras_.gated) {
                b.ffn_in =
                    Linear(weight(ffn + "DenseReluDense.wi_0.weight", "intermediate, hidden"),
                           nullptr, D, F, layout, extras_.activation);
                b.ffn_gate =
                    Linear(weight(ffn + "DenseReluDense.wi_1.weight", "intermediate, hidden"),
                           nullptr, D, F);
            } else {
                b.ffn_in = Linear(weight(ffn + "DenseReluDense.wi.weight", "intermediate, hidden"),
                                  nullptr, D, F, layout, extras_.activation);
            }
            b.ffn_out = Linear(weight(ffn + "DenseReluDense.wo.weight", "hidden, intermediate"),
                               nullptr, F, D);
            b.ffn_norm_weight = weight(ffn + "layer_norm.weight", "hidden");
        }
        out.relative_bias =
            loader_.get(stack + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                        "buckets, heads");
        out.final_norm_weight = loader_.get(stack + ".final_layer_norm.weight", "hidden");
    }

    void embed(const float* table, const std::vector<int32_t>& ids, float* x) const {
        const int D = config_.hidden_size;
        for (size_t t = 0; t < ids.size(); ++t)
            std::copy_n(table + static_cast<size_t>(ids[t]) * D, D, x + t * D);
    }

    // [H, Q, K]: the stack's learned bias for each (query, key) bucket.
    std::vector<float> position_bias(const T5Stack& stack, int Q, int K, bool bidirectional) const {
        const int H = config_.n_heads;
        std::vector<int> bucket_of(static_cast<size_t>(Q + K));  // by key - query + Q
        for (int r = -Q; r < K; ++r)
            bucket_of[static_cast<size_t>(r + Q)] = t5_relative_position_bucket(
                r, bidirectional, extras_.num_buckets, extras_.max_distance);
        std::vector<float> bias(static_cast<size_t>(H) * Q * K);
        for (int head = 0; head < H; ++head)
            for (int q = 0; q < Q; ++q) {
                float* row = bias.data() + (static_cast<size_t>(head) * Q + q) * K;
                for (int k = 0; k < K; ++k)
                    row[k] =
                        stack.relative_bias[bucket_of[static_cast<size_t>(k - q + Q)] * H + head];
            }
        return bias;
    }

    // x = x + SelfAttention(RMSNorm(x))
    void self_attention(const T5Attention& a, float* x, int n, const float* bias,
                        const uint8_t* key_mask, AttentionBlock& block, int layer) const {
        const int D = config_.hidden_size, inner = config_.n_heads * config_.head_dim;
        std::vector<float> h(static_cast<size_t>(n) * D), qkv(static_cast<size_t>(n) * 3 * inner);
        std::vector<float> context(static_cast<size_t>(n) * inner);
        runtime::rms_norm(x, a.norm_weight, h.data(), n, D, config_.norm_eps);
        a.qkv.forward(h.data(), qkv.data(), n);
        attend_fused_qkv(block, layer, qkv.data(), config_.head_dim, key_mask, bias,
                         context.data());
        keep_value_norms(block, layer, qkv.data() + 2 * inner, 3 * inner, config_.head_dim,
                         config_.n_heads, a.out);
        a.out.forward_add(context.data(), x, n);
    }

    // y = y + EncDecAttention(RMSNorm(y), memory)
    void cross_attention(const T5Attention& a, float* y, int n, const float* memory, int m,
                         const uint8_t* memory_mask, AttentionBlock& block, int layer) const {
        const int D = config_.hidden_size, inner = config_.n_heads * config_.head_dim;
        std::vector<float> h(static_cast<size_t>(n) * D), q(static_cast<size_t>(n) * inner);
        std::vector<float> kv(static_cast<size_t>(m) * 2 * inner),
            context(static_cast<size_t>(n) * inner);
        runtime::rms_norm(y, a.norm_weight, h.data(), n, D, config_.norm_eps);
        a.qkv.forward(h.data(), q.data(), n);
        a.kv.forward(memory, kv.data(), m);
        attend_fused_kv(block, layer, q.data(), kv.data(), config_.head_dim, memory_mask,
                        context.data());
        keep_value_norms(block, layer, kv.data() + inner, 2 * inner, config_.head_dim,
                         config_.n_heads, a.out);
        a.out.forward_add(context.data(), y, n);
    }

    // x = x + FFN(RMSNorm(x))
    void feed_forward(const T5Block& b, float* x, int n) const {
        const int D = config_.hidden_size, F = config_.intermediate_size;
        std::vector<float> h(static_cast<size_t>(n) * D), up(static_cast<size_t>(n) * F);
        runtime::rms_norm(x, b.ffn_norm_weight, h.data(), n, D, config_.norm_eps);
        b.ffn_in.forward(h.data(), up.data(), n);
        if (extras_.gated) {
            std::vector<float> gate(static_cast<size_t>(n) * F);
            b.ffn_gate.forward(h.data(), gate.data(), n);
            for (size_t i = 0; i < up.size(); ++i) up[i] *= gate[i];
        }
        b.ffn_out.forward_add(up.data(), x, n);
    }

    ModelConfig config_;
    T5Extras extras_;
    WeightLoader loader_;                       // owns converted (fp16/bf16) weights
    const float* embedding_ = nullptr;          // shared [vocab, d_model]
    const float* decoder_embedding_ = nullptr;  // the same table unless untied
    T5Stack encoder_, decoder_;
};

T5Extras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    T5Extras extras;
    extras.num_buckets = reader.integer({"relative_attention_num_buckets"}, 32);
    extras.max_distance = reader.integer({"relative_attention_max_distance"}, 128);
    extras.decoder_layers = reader.integer({"num_decoder_layers"}, config.n_layers);
    // T5Config: "relu", "gated-gelu" (-> gelu_new), "gated-silu", ...
    const std::string proj = reader.string({"feed_forward_proj"}, "relu");
    const size_t dash = proj.find('-');
    extras.gated = dash != std::string::npos && proj.substr(0, dash) == "gated";
    std::string act = dash == std::string::npos ? proj : proj.substr(dash + 1);
    if (dash != std::string::npos && !extras.gated)
        throw Error(reader.file() + ": feed_forward_proj \"" + proj +
                    "\" is not \"ACT\" or \"gated-ACT\"");
    if (proj == "gated-gelu") act = "gelu_new";
    // T5Config derives dense_act_fn and is_gated_act from feed_forward_proj, then
    // lets config.json's own values of them win
    act = reader.string({"dense_act_fn"}, act);
    extras.gated = reader.boolean({"is_gated_act"}, extras.gated);
    check_activation(act, reader.file(),
                     reader.has({"dense_act_fn"}) ? "dense_act_fn" : "feed_forward_proj");
    extras.activation = runtime::activation_from_name(act);
    if (extras.num_buckets < 2 || extras.max_distance < 2 || extras.decoder_layers < 1)
        throw Error(reader.file() +
                    ": relative_attention_num_buckets, relative_attention_max_distance "
                    "and num_decoder_layers must be at least 2, 2 and 1");
    return extras;
}

}  // namespace

void read_t5_config(const ConfigReader& reader, ModelConfig& config) {
    config.hidden_size = reader.integer({"d_model"});
    config.head_dim = reader.integer({"d_kv"});
    config.intermediate_size = reader.integer({"d_ff"});
    config.n_layers = reader.integer({"num_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"num_heads"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_epsilon"}, 1e-6));
    config.max_positions = 0;  // relative positions: no learned limit
    config.type_vocab_size = 0;
    config.is_encoder_decoder = true;
    if (config.hidden_size < 1 || config.head_dim < 1 || config.intermediate_size < 1 ||
        config.n_layers < 1 || config.n_heads < 1 || config.vocab_size < 1)
        throw Error(reader.file() +
                    ": T5 needs positive d_model, d_kv, d_ff, num_layers, num_heads, vocab_size");
    const T5Extras extras = read_extras(reader, config);
    config.n_decoder_layers = extras.decoder_layers;
    config.hidden_act = reader.string({"feed_forward_proj"}, "relu");
}

std::unique_ptr<Network> load_t5(const LoadContext& context) {
    return std::make_unique<T5>(context.config, read_extras(context.config_file, context.config),
                                context.tensors);
}

}  // namespace attnviz::model
