// ELECTRA, as modeling_electra.py computes it (the discriminator; generators use
// the same encoder): BERT's embeddings at embedding_size, a linear projection to
// hidden_size when the two differ, then BERT's encoder (bert_layers.h).
//
//   e = LayerNorm(word[id] + token_type[type] + position[t])      [T, embedding_size]
//       (embedding_size: 128 when config.json omits it, as ElectraConfig;
//        no position term for relative_key(_query))
//   x = e W_project + b   (embeddings_project, only when embedding_size != hidden_size)
//   then BERT's post-norm layers; probs -> the trace (causal when is_decoder)
//
// Checkpoints: ElectraModel names, or "electra."-prefixed ones
// (ElectraForPreTraining, ElectraForMaskedLM, ...: their heads are not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "model/value_norms.h"
#include "runtime/linear.h"

namespace attnviz::model {

namespace {

constexpr int kDefaultEmbeddingSize = 128;  // ElectraConfig's, when config.json omits it

class Electra final : public Network {
public:
    Electra(const ModelConfig& config, const ConfigReader& reader, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "electra."}) {
        embedding_size_ = reader.integer({"embedding_size"}, kDefaultEmbeddingSize);
        loader_.set_dim("embedding", embedding_size_);
        embeddings_ = load_bert_style_embeddings(loader_, "embedding");
        if (embedding_size_ != config.hidden_size)
            project_ =
                runtime::Linear(loader_.get("embeddings_project.weight", "hidden, embedding"),
                                loader_.get("embeddings_project.bias", "hidden"), embedding_size_,
                                config.hidden_size);
        layers_.load(loader_, config, tensors.description());
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "ELECTRA");
        check_type_ids(tokens, config_.type_vocab_size, "ELECTRA");
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, E = embedding_size_, L = config_.n_layers;
        const int Dh = config_.head_dim;

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(make_block(
            "self", L, config_.n_heads, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
            config_.is_causal, options.keep_queries_keys));
        start_value_norms(block, options.keep_value_norms);
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        std::vector<int> positions;  // none for relative_key(_query)
        if (!relative_positions(config_))
            for (int t = 0; t < T; ++t) positions.push_back(t);
        std::vector<float> x(static_cast<size_t>(T) * D);  // [T, D] the residual stream
        if (E == D) {
            bert_style_embed(embeddings_, tokens, positions, E, config_.norm_eps, x.data());
        } else {
            std::vector<float> e(static_cast<size_t>(T) * E);  // [T, E]
            bert_style_embed(embeddings_, tokens, positions, E, config_.norm_eps, e.data());
            project_.forward(e.data(), x.data(), T);
        }
        hidden.add(x.data());
        layers_.forward(x.data(), T, padding_mask(tokens), block, hidden);
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    ModelConfig config_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    int embedding_size_ = 0;
    BertStyleEmbeddingWeights embeddings_;
    runtime::Linear project_;  // [embedding] -> [hidden]
    BertStyleLayers layers_;
};

}  // namespace

void read_electra_config(const ConfigReader& reader, ModelConfig& config) {
    read_bert_style_config(reader, config, "ELECTRA");
    read_bert_decoder_keys(reader, config);
    if (reader.integer({"embedding_size"}, kDefaultEmbeddingSize) < 1)
        throw Error(reader.file() + ": embedding_size must be positive");
}

std::unique_ptr<Network> load_electra(const LoadContext& context) {
    return std::make_unique<Electra>(context.config, context.config_file, context.tensors);
}

}  // namespace attnviz::model
