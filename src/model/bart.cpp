// BART and Marian, as modeling_bart.py and modeling_marian.py compute them on the
// eager attention path: a post-norm encoder-decoder. They differ only in their
// positions and in the embedding LayerNorm:
//
//   embed(ids) = shared[id] * embed_scale + position[t]      embed_scale = sqrt(d_model) if
//   scale_embedding
//     BART:   position = embed_positions[t + 2] (learned, offset 2), then layernorm_embedding
//     Marian: position = sinusoid(t) (fixed: sin in the first half, cos in the second)
//   encoder layer: x = LN(x + SelfAttn(x));  x = LN(x + fc2(act(fc1(x))))     probs -> "encoder"
//   decoder layer: y = LN(y + CausalSelfAttn(y))                              probs -> "decoder"
//                  y = LN(y + CrossAttn(y, memory))                           probs -> "cross"
//                  y = LN(y + fc2(act(fc1(y))))
//   attention: softmax((q * head_dim^-0.5) k^T [+ mask])
//
// The decoder runs on the target text's own tokens (with its special tokens), as
// bertviz's BART example does. Checkpoints: BartModel / MarianModel names, or
// "model."-prefixed ones (...ForConditionalGeneration, MarianMTModel: lm_head and
// final_logits_bias are not read); "shared.weight" or the tied embed_tokens.
#include <cmath>

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

struct BartExtras {
    bool marian = false;
    int decoder_layers = 0;
    int encoder_heads = 0, decoder_heads = 0;
    int encoder_ffn = 0, decoder_ffn = 0;
    int decoder_vocab = 0;
    float embed_scale = 1.0f;
};

struct BartAttention {
    Linear qkv;  // self-attention: [d_model] -> [q | k | v]
    Linear q;    // cross-attention: [d_model] -> [q]
    Linear kv;   // cross-attention: memory [d_model] -> [k | v]
    Linear out;  // out_proj, added to the residual
    const float *norm_weight = nullptr, *norm_bias = nullptr;  // the LayerNorm after it
};

struct BartLayer {
    BartAttention self_attention;
    BartAttention cross_attention;  // decoder layers only
    Linear fc1;                     // activation fused
    Linear fc2;                     // added to the residual
    const float *final_norm_weight = nullptr, *final_norm_bias = nullptr;
};

struct BartStack {
    const float* token_embedding = nullptr;     // [vocab, d_model]
    const float* position_embedding = nullptr;  // BART: [positions + 2, d_model]
    const float *embedding_norm_weight = nullptr, *embedding_norm_bias = nullptr;  // BART only
    std::vector<BartLayer> layers;
    int heads = 0;
};

class Bart final : public Network {
public:
    Bart(const ModelConfig& config, const BartExtras& extras, const io::TensorSet& tensors)
        : config_(config), extras_(extras), loader_(tensors, config, {"", "model."}) {
        loader_.set_dim("learned_positions", config.max_positions + 2);
        loader_.set_dim("decoder_vocab", extras.decoder_vocab);
        const float* shared = loader_.get_optional("shared.weight", "vocab, hidden");
        encoder_.token_embedding =
            shared ? shared : loader_.get("encoder.embed_tokens.weight", "vocab, hidden");
        // Marian with share_encoder_decoder_embeddings false has its own decoder table
        decoder_.token_embedding =
            loader_.get_optional("decoder.embed_tokens.weight", "decoder_vocab, hidden");
        if (!decoder_.token_embedding) {
            if (extras.decoder_vocab != config.vocab_size)
                throw Error(
                    tensors.description() +
                    ": missing tensor decoder.embed_tokens.weight (decoder_vocab_size differs "
                    "from vocab_size, so the decoder cannot share the encoder's table)");
            decoder_.token_embedding = encoder_.token_embedding;
        }
        encoder_.heads = extras.encoder_heads, decoder_.heads = extras.decoder_heads;
        load_stack("encoder", config.n_layers, extras.encoder_ffn, false, encoder_);
        load_stack("decoder", extras.decoder_layers, extras.decoder_ffn, true, decoder_);
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const char* name = extras_.marian ? "Marian" : "BART";
        if (!input.decoder)
            throw Error(std::string(name) +
                        " is an encoder-decoder model: give it a target text for the decoder");
        const Encoding& source = *input.tokens;
        const Encoding& target = *input.decoder;
        check_token_ids(source.ids, config_.vocab_size, config_.max_positions,
                        std::string(name) + " encoder");
        check_token_ids(target.ids, extras_.decoder_vocab, config_.max_positions,
                        std::string(name) + " decoder");
        const int S = static_cast<int>(source.size()), T = static_cast<int>(target.size());
        const int D = config_.hidden_size, Le = config_.n_layers, Ld = extras_.decoder_layers;
        const int He = extras_.encoder_heads, Hd = extras_.decoder_heads;
        const bool keep = options.keep_queries_keys;
        const auto scale = [&](int heads) {
            return 1.0f / std::sqrt(static_cast<float>(D / heads));
        };

        ForwardOutput output;
        output.blocks.reserve(3);
        AttentionBlock& encoder = output.blocks.emplace_back(
            make_block("encoder", Le, He, S, S, D / He, scale(He), false, keep, 0, 0));
        AttentionBlock& decoder = output.blocks.emplace_back(
            make_block("decoder", Ld, Hd, T, T, D / Hd, scale(Hd), true, keep, 1, 1));
        AttentionBlock& cross = output.blocks.emplace_back(
            make_block("cross", Ld, Hd, T, S, D / Hd, scale(Hd), false, keep, 1, 0));
        const uint8_t* source_mask = padding_mask(source);
        for (AttentionBlock* b : {&encoder, &decoder, &cross})
            start_value_norms(*b, options.keep_value_norms);

        std::vector<float> memory(static_cast<size_t>(S) * D);
        embed(encoder_, source.ids, memory.data());
        HiddenStateRecorder encoder_hidden(options.keep_hidden_states, 0, Le + 1, S, D);
        encoder_hidden.add(memory.data());
        for (int layer = 0; layer < Le; ++layer) {
            const BartLayer& l = encoder_.layers[static_cast<size_t>(layer)];
            self_attention(l.self_attention, memory.data(), S, source_mask, encoder, layer);
            feed_forward(l, memory.data(), S, extras_.encoder_ffn);
            encoder_hidden.add(memory.data());
        }
        encoder_hidden.move_into(output.hidden_states);

        std::vector<float> y(static_cast<size_t>(T) * D);
        embed(decoder_, target.ids, y.data());
        HiddenStateRecorder decoder_hidden(options.keep_hidden_states, 1, Ld + 1, T, D);
        decoder_hidden.add(y.data());
        for (int layer = 0; layer < Ld; ++layer) {
            const BartLayer& l = decoder_.layers[static_cast<size_t>(layer)];
            self_attention(l.self_attention, y.data(), T, nullptr, decoder, layer);
            cross_attention(l.cross_attention, y.data(), T, memory.data(), S, source_mask, cross,
                            layer);
            feed_forward(l, y.data(), T, extras_.decoder_ffn);
            decoder_hidden.add(y.data());
        }
        decoder_hidden.move_into(output.hidden_states);
        return output;
    }

private:
    // Self-attention packs [q | k | v] into one matmul; cross-attention reads
    // q from the decoder and [k | v] from the encoder's output.
    BartAttention load_attention(const std::string& prefix, int layer, bool cross) {
        const int D = config_.hidden_size;
        const auto get = [&](const char* name, const char* shape) {
            return loader_.get(prefix + name, shape, layer);
        };
        BartAttention a;
        const float *qw = get("q_proj.weight", "hidden, hidden"),
                    *qb = get("q_proj.bias", "hidden");
        const float *kw = get("k_proj.weight", "hidden, hidden"),
                    *kb = get("k_proj.bias", "hidden");
        const float *vw = get("v_proj.weight", "hidden, hidden"),
                    *vb = get("v_proj.bias", "hidden");
        if (cross) {
            a.q = Linear(qw, qb, D, D);
            a.kv = Linear({{kw, kb, D}, {vw, vb, D}}, D);
        } else {
            a.qkv = Linear({{qw, qb, D}, {kw, kb, D}, {vw, vb, D}}, D);
        }
        a.out =
            Linear(get("out_proj.weight", "hidden, hidden"), get("out_proj.bias", "hidden"), D, D);
        return a;
    }

    void load_stack(const std::string& stack, int n_layers, int ffn, bool is_decoder,
                    BartStack& out) {
        const int D = config_.hidden_size;
        loader_.set_dim("ffn", ffn);
        const auto activation = runtime::activation_from_name(config_.hidden_act);
        const std::string p = stack + ".layers.{L}.";
        out.layers.resize(static_cast<size_t>(n_layers));
        for (int layer = 0; layer < n_layers; ++layer) {
            BartLayer& l = out.layers[static_cast<size_t>(layer)];
            const auto get = [&](const std::string& name, const char* shape) {
                return loader_.get(p + name, shape, layer);
            };
            l.self_attention = load_attention(p + "self_attn.", layer, false);
            l.self_attention.norm_weight = get("self_attn_layer_norm.weight", "hidden");
            l.self_attention.norm_bias = get("self_attn_layer_norm.bias", "hidden");
            if (is_decoder) {
                l.cross_attention = load_attention(p + "encoder_attn.", layer, true);
                l.cross_attention.norm_weight = get("encoder_attn_layer_norm.weight", "hidden");
                l.cross_attention.norm_bias = get("encoder_attn_layer_norm.bias", "hidden");
            }
            l.fc1 = Linear(get("fc1.weight", "ffn, hidden"), get("fc1.bias", "ffn"), D, ffn,
                           runtime::WeightLayout::out_in, activation);
            l.fc2 = Linear(get("fc2.weight", "hidden, ffn"), get("fc2.bias", "hidden"), ffn, D);
            l.final_norm_weight = get("final_layer_norm.weight", "hidden");
            l.final_norm_bias = get("final_layer_norm.bias", "hidden");
        }
        if (!extras_.marian) {
            out.position_embedding =
                loader_.get(stack + ".embed_positions.weight", "learned_positions, hidden");
            out.embedding_norm_weight =
                loader_.get(stack + ".layernorm_embedding.weight", "hidden");
            out.embedding_norm_bias = loader_.get(stack + ".layernorm_embedding.bias", "hidden");
        }
    }

    // x [T, D] = shared[id] * embed_scale + position(t) (then BART's layernorm_embedding)
    void embed(const BartStack& stack, const std::vector<int32_t>& ids, float* x) const {
        const int D = config_.hidden_size, T = static_cast<int>(ids.size());
        // Marian's sinusoids for the T positions run: a row depends on its
        // position alone, and a table of max_position_embeddings rows could be
        // far larger than the model (issue 12)
        const std::vector<float> sinusoids =
            extras_.marian ? sinusoidal_positions(T, D) : std::vector<float>();
        const float* positions = extras_.marian
                                     ? sinusoids.data()
                                     : stack.position_embedding + 2 * static_cast<size_t>(D);
        for (int t = 0; t < T; ++t) {
            const float* token = stack.token_embedding + static_cast<size_t>(ids[t]) * D;
            const float* position = positions + static_cast<size_t>(t) * D;
            float* row = x + static_cast<size_t>(t) * D;
            for (int i = 0; i < D; ++i) row[i] = token[i] * extras_.embed_scale + position[i];
        }
        if (!extras_.marian)
            runtime::layer_norm(x, stack.embedding_norm_weight, stack.embedding_norm_bias, x, T, D,
                                kLayerNormEps);
    }

    // x = LN(x + SelfAttn(x))
    void self_attention(const BartAttention& a, float* x, int n, const uint8_t* key_mask,
                        AttentionBlock& block, int layer) const {
        const int D = config_.hidden_size;
        std::vector<float> qkv(static_cast<size_t>(n) * 3 * D), context(static_cast<size_t>(n) * D);
        a.qkv.forward(x, qkv.data(), n);
        attend_fused_qkv(block, layer, qkv.data(), D / block.n_heads, key_mask, nullptr,
                         context.data());
        keep_value_norms(block, layer, qkv.data() + 2 * D, 3 * D, D / block.n_heads, block.n_heads,
                         a.out);
        a.out.forward_add(context.data(), x, n);
        runtime::layer_norm(x, a.norm_weight, a.norm_bias, x, n, D, kLayerNormEps);
    }

    // y = LN(y + CrossAttn(y, memory))
    void cross_attention(const BartAttention& a, float* y, int n, const float* memory, int m,
                         const uint8_t* memory_mask, AttentionBlock& block, int layer) const {
        const int D = config_.hidden_size;
        std::vector<float> q(static_cast<size_t>(n) * D), kv(static_cast<size_t>(m) * 2 * D);
        std::vector<float> context(static_cast<size_t>(n) * D);
        a.q.forward(y, q.data(), n);
        a.kv.forward(memory, kv.data(), m);
        attend_fused_kv(block, layer, q.data(), kv.data(), D / block.n_heads, memory_mask,
                        context.data());
        keep_value_norms(block, layer, kv.data() + D, 2 * D, D / block.n_heads, block.n_heads,
                         a.out);
        a.out.forward_add(context.data(), y, n);
        runtime::layer_norm(y, a.norm_weight, a.norm_bias, y, n, D, kLayerNormEps);
    }

    // x = LN(x + fc2(act(fc1(x))))
    void feed_forward(const BartLayer& l, float* x, int n, int ffn) const {
        const int D = config_.hidden_size;
        std::vector<float> h(static_cast<size_t>(n) * ffn);
        l.fc1.forward(x, h.data(), n);
        l.fc2.forward_add(h.data(), x, n);
        runtime::layer_norm(x, l.final_norm_weight, l.final_norm_bias, x, n, D, kLayerNormEps);
    }

    static constexpr float kLayerNormEps = 1e-5f;  // nn.LayerNorm's default; not in config.json

    ModelConfig config_;
    BartExtras extras_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    BartStack encoder_, decoder_;
};

BartExtras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    BartExtras extras;
    extras.marian = config.model_type == "marian";
    extras.decoder_layers = reader.integer({"decoder_layers"});
    extras.encoder_heads = reader.integer({"encoder_attention_heads"});
    extras.decoder_heads = reader.integer({"decoder_attention_heads"});
    extras.encoder_ffn = reader.integer({"encoder_ffn_dim"});
    extras.decoder_ffn = reader.integer({"decoder_ffn_dim"});
    extras.decoder_vocab = reader.integer({"decoder_vocab_size"}, config.vocab_size);
    // BartConfig and MarianConfig both default to false (Marian checkpoints say true)
    const bool scale_embedding = reader.boolean({"scale_embedding"}, false);
    extras.embed_scale = scale_embedding ? std::sqrt(static_cast<float>(config.hidden_size)) : 1.0f;
    const int D = config.hidden_size;
    for (int heads : {extras.encoder_heads, extras.decoder_heads})
        if (heads < 1 || D % heads != 0)
            throw Error(reader.file() + ": d_model " + std::to_string(D) +
                        " is not a multiple of the attention heads " + std::to_string(heads));
    if (extras.decoder_layers < 1 || extras.encoder_ffn < 1 || extras.decoder_ffn < 1 ||
        extras.decoder_vocab < 1)
        throw Error(reader.file() +
                    ": decoder_layers, encoder_ffn_dim, decoder_ffn_dim and "
                    "decoder_vocab_size must be positive");
    return extras;
}

}  // namespace

void read_bart_config(const ConfigReader& reader, ModelConfig& config) {
    config.hidden_size = reader.integer({"d_model"});
    config.n_layers = reader.integer({"encoder_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"encoder_attention_heads"});
    config.intermediate_size = reader.integer({"encoder_ffn_dim"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"max_position_embeddings"});
    config.hidden_act = reader.string({"activation_function"}, "gelu");
    config.norm_eps = 1e-5f;
    config.type_vocab_size = 0;
    config.is_encoder_decoder = true;
    if (config.hidden_size < 1 || config.n_layers < 1 || config.vocab_size < 1 ||
        config.max_positions < 1)
        throw Error(reader.file() + ": " + config.model_type +
                    " needs positive d_model, encoder_layers, vocab_size, max_position_embeddings");
    const BartExtras extras = read_extras(reader, config);
    config.head_dim = config.hidden_size / config.n_heads;
    config.n_decoder_layers = extras.decoder_layers;
    check_activation(config.hidden_act, reader.file(), "activation_function");
}

std::unique_ptr<Network> load_bart(const LoadContext& context) {
    return std::make_unique<Bart>(context.config, read_extras(context.config_file, context.config),
                                  context.tensors);
}

}  // namespace attnviz::model
