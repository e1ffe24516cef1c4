// RoBERTa, as modeling_roberta.py computes it: BERT's encoder (bert_layers.h)
// with one difference in the embeddings. Positions start at padding_idx + 1 and
// count only non-padding tokens; padding tokens sit at padding_idx
// (create_position_ids_from_input_ids). type_vocab_size is 1.
//
//   position[t] = pad_token_id + (number of non-pad ids in 0..t), or pad_token_id for a pad
//   (so max_position_embeddings 514 holds 512 tokens: ModelConfig::max_positions says 512)
//   x = LayerNorm(word[id] + token_type[type] + position_embeddings[position[t]])
//   then BERT's post-norm layers; probs -> the trace
//   (relative_key(_query): no position term, BERT's relative scores instead,
//    over max_position_embeddings distances; is_decoder: causal, RobertaForCausalLM)
//
// Checkpoints: RobertaModel names, or "roberta."-prefixed ones (RobertaForMaskedLM,
// RobertaForSequenceClassification, ...: their heads are not read).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "model/value_norms.h"

namespace attnviz::model {

namespace {

class Roberta final : public Network {
public:
    Roberta(const ModelConfig& config, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "roberta."}) {
        // the table has max_position_embeddings rows; config.max_positions counts tokens
        loader_.set_dim("positions", position_rows());
        embeddings_ = load_bert_style_embeddings(loader_, "hidden");
        layers_.load(loader_, config, tensors.description(), position_rows());
    }

    bool supports_value_norms() const override { return true; }
    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "RoBERTa");
        check_type_ids(tokens, config_.type_vocab_size, "RoBERTa");
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, L = config_.n_layers, Dh = config_.head_dim;
        // relative_key(_query): no position term (the distances live in attention)
        const std::vector<int> positions =
            relative_positions(config_) ? std::vector<int>{} : position_ids(tokens.ids);

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(make_block(
            "self", L, config_.n_heads, T, T, Dh, 1.0f / std::sqrt(static_cast<float>(Dh)),
            config_.is_causal, options.keep_queries_keys));
        start_value_norms(block, options.keep_value_norms);
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        std::vector<float> x(static_cast<size_t>(T) * D);  // [T, D] the residual stream
        bert_style_embed(embeddings_, tokens, positions, D, config_.norm_eps, x.data());
        hidden.add(x.data());
        layers_.forward(x.data(), T, padding_mask(tokens), block, hidden);
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    std::vector<int> position_ids(const std::vector<int32_t>& ids) const {
        const int pad = config_.pad_token_id;
        std::vector<int> positions(ids.size());
        int count = 0;
        for (size_t t = 0; t < ids.size(); ++t) {
            if (ids[t] != pad) ++count;
            positions[t] = ids[t] != pad ? pad + count : pad;
        }
        return positions;  // at most pad + T < position_rows(): check_token_ids saw T
    }

    int position_rows() const { return config_.max_positions + config_.pad_token_id + 1; }

    ModelConfig config_;
    WeightLoader loader_;  // owns converted (fp16/bf16) weights
    BertStyleEmbeddingWeights embeddings_;
    BertStyleLayers layers_;
};

}  // namespace

void read_roberta_config(const ConfigReader& reader, ModelConfig& config) {
    read_bert_style_config(reader, config, "RoBERTa");
    read_bert_decoder_keys(reader, config);
    config.type_vocab_size = reader.integer({"type_vocab_size"}, 1);
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-5));
    config.pad_token_id = reader.integer({"pad_token_id"}, 1);
    if (config.pad_token_id < 0 || config.pad_token_id + 1 >= config.max_positions)
        throw Error(reader.file() + ": pad_token_id " + std::to_string(config.pad_token_id) +
                    " leaves no positions below max_position_embeddings " +
                    std::to_string(config.max_positions));
    // positions run from pad_token_id + 1: 514 rows hold 512 tokens
    config.max_positions -= config.pad_token_id + 1;
}

std::unique_ptr<Network> load_roberta(const LoadContext& context) {
    return std::make_unique<Roberta>(context.config, context.tensors);
}

}  // namespace attnviz::model
