// BERT, as modeling_bert.py computes it on its eager attention path (the one
// transformers takes with output_attentions=True): a post-norm encoder.
//
//   x = LayerNorm(word[id] + token_type[type] + position[t])   (position: when "absolute")
//   per layer:
//     q, k, v = x Wq, x Wk, x Wv                     (one fused matmul)
//     probs   = softmax((q k^T + relative) / sqrt(head_dim) + padding mask)   -> the trace
//               (relative: position_embedding_type relative_key(_query) only;
//                is_decoder (BertLMHeadModel) adds a causal mask)
//     x = LayerNorm(x + (probs v) Wo)
//     x = LayerNorm(x + act(x W_up) W_down)
//
// The layers (encoder.layer.{L}.*, relative scores included) are the
// BERT-style stack RoBERTa and ELECTRA share: bert_layers.h.
//
// Checkpoints: BertModel names, or "bert."-prefixed ones (BertForMaskedLM,
// BertForSequenceClassification...: their heads are not read), and the legacy
// LayerNorm gamma/beta names.
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "model/value_norms.h"
#include "runtime/kernels.h"

namespace attnviz::model {

namespace {

// --- weights: checkpoint name -> field, shape in config terms ----------------

constexpr WeightSpec<BertStyleEmbeddingWeights> kEmbeddingTable[] = {
    // rows of "hidden" (bert_layers.h reads the same names at other widths)
    {&BertStyleEmbeddingWeights::word, "embeddings.word_embeddings.weight", "vocab, hidden"},
    {&BertStyleEmbeddingWeights::position, "embeddings.position_embeddings.weight",
     "positions, hidden"},
    {&BertStyleEmbeddingWeights::token_type, "embeddings.token_type_embeddings.weight",
     "type_vocab, hidden"},
    {&BertStyleEmbeddingWeights::norm_weight, "embeddings.LayerNorm.weight", "hidden"},
    {&BertStyleEmbeddingWeights::norm_bias, "embeddings.LayerNorm.bias", "hidden"},
};

// --- the network -------------------------------------------------------------

class Bert final : public Network {
public:
    Bert(const ModelConfig& config, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "bert."}) {
        loader_.bind(kEmbeddingTable, embeddings_);
        layers_.load(loader_, config, tensors.description());
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers;
        check_input(tokens);

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
                       config_.is_causal, options.keep_queries_keys));
        start_value_norms(block, options.keep_value_norms);
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        std::vector<float> x(static_cast<size_t>(T) * D);  // [T, D] the residual stream
        embed(tokens, x.data());
        hidden.add(x.data());
        layers_.forward(x.data(), T, padding_mask(tokens), block, hidden);
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    void check_input(const Encoding& tokens) const {
        const size_t T = tokens.size();
        if (T == 0) throw Error("BERT: no tokens to run");
        if (config_.max_positions > 0 && T > static_cast<size_t>(config_.max_positions))
            throw Error("BERT: " + std::to_string(T) + " tokens, but max_position_embeddings is " +
                        std::to_string(config_.max_positions));
        if (tokens.type_ids.size() != T || tokens.attention_mask.size() != T)
            throw Error(
                "BERT: the encoding's type_ids and attention_mask must have one entry per token");
        for (size_t t = 0; t < T; ++t) {
            if (tokens.ids[t] < 0 || tokens.ids[t] >= config_.vocab_size)
                throw Error("BERT: token id " + std::to_string(tokens.ids[t]) + " at position " +
                            std::to_string(t) + " is outside the vocabulary (vocab_size " +
                            std::to_string(config_.vocab_size) + ")");
            if (tokens.type_ids[t] < 0 || tokens.type_ids[t] >= config_.type_vocab_size)
                throw Error("BERT: token type id " + std::to_string(tokens.type_ids[t]) +
                            " at position " + std::to_string(t) + " is outside type_vocab_size " +
                            std::to_string(config_.type_vocab_size));
        }
    }

    // x [T, D] = LayerNorm(word[id] + token_type[type] (+ position[t] when absolute)).
    void embed(const Encoding& tokens, float* x) const {
        std::vector<int> positions;  // none: relative_key(_query) scores positions in attention
        if (!relative_positions(config_))
            for (int t = 0; t < static_cast<int>(tokens.size()); ++t) positions.push_back(t);
        bert_style_embed(embeddings_, tokens, positions, config_.hidden_size, config_.norm_eps, x);
    }

    ModelConfig config_;
    WeightLoader loader_;  // owns the fp32 copies of F16/BF16 weights
    BertStyleEmbeddingWeights embeddings_;
    BertStyleLayers layers_;
};

}  // namespace

void read_bert_style_config(const ConfigReader& reader, ModelConfig& config, const char* name) {
    config.n_layers = reader.integer({"num_hidden_layers"});
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"});
    config.hidden_size = reader.integer({"hidden_size"});
    config.intermediate_size = reader.integer({"intermediate_size"});
    config.vocab_size = reader.integer({"vocab_size"});
    config.max_positions = reader.integer({"max_position_embeddings"});
    config.type_vocab_size = reader.integer({"type_vocab_size"}, 2);
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-12));
    config.hidden_act = reader.string({"hidden_act"}, "gelu");
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 || config.max_positions < 1 ||
        config.type_vocab_size < 1)
        throw Error(reader.file() + ": " + name +
                    " needs positive num_hidden_layers, num_attention_heads, hidden_size, "
                    "intermediate_size, vocab_size, max_position_embeddings, type_vocab_size");
    if (config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() + ": hidden_size " + std::to_string(config.hidden_size) +
                    " is not a multiple of num_attention_heads " + std::to_string(config.n_heads));
    config.head_dim = config.hidden_size / config.n_heads;
    const std::string& type = config.position_embedding_type;
    if (type != "absolute" && !relative_positions(config))
        throw Error(reader.file() + ": position_embedding_type \"" + type +
                    "\" is not supported (supported: absolute, relative_key, relative_key_query)");
    check_activation(config.hidden_act, reader.file(), "hidden_act");
}

void read_bert_decoder_keys(const ConfigReader& reader, ModelConfig& config) {
    config.is_causal = reader.boolean({"is_decoder"}, false);
}

void read_bert_config(const ConfigReader& reader, ModelConfig& config) {
    read_bert_style_config(reader, config, "BERT");
    read_bert_decoder_keys(reader, config);
}

std::unique_ptr<Network> load_bert(const LoadContext& context) {
    return std::make_unique<Bert>(context.config, context.tensors);
}

}  // namespace attnviz::model
