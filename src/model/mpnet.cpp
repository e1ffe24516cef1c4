// MPNet (modeling_mpnet.py), as sentence-transformers' all-mpnet-base-v2 runs it:
// BERT's post-norm encoder with RoBERTa's position numbering, no token types,
// and one relative position bias that the encoder computes once and every
// layer adds after the 1/sqrt(d) scale.
//
//   position[t] = 1 + (number of non-pad ids in 0..t), or 1 for a pad (padding_idx is 1)
//   x    = LayerNorm(word[id] + position_embeddings[position[t]])
//   bias = relative_attention_bias[bucket(k - q)][h]       32 buckets, max distance 128,
//                                                          T5's bidirectional buckets
//   per layer: probs = softmax(q k^T / sqrt(d) + bias [+ padding])    -> the trace
//              x = LayerNorm(x + (probs v) Wo);  x = LayerNorm(x + act(x W1) W2)
//
// MPNetEncoder.compute_position_bias always passes num_buckets=32:
// relative_attention_num_buckets only sizes the table.
// Checkpoints: MPNetModel names, or "mpnet."-prefixed (MPNetForMaskedLM, ...).
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "model/position_encodings.h"
#include "runtime/kernels.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

constexpr int kPaddingIdx = 1;  // MPNetEmbeddings fixes it
constexpr int kBuckets = 32, kMaxDistance = 128;

struct MpnetLayerWeights {
    const float *query_weight, *query_bias, *key_weight, *key_bias;
    const float *value_weight, *value_bias, *out_weight, *out_bias;
    const float *attn_norm_weight, *attn_norm_bias;
    const float *up_weight, *up_bias, *down_weight, *down_bias;
    const float *out_norm_weight, *out_norm_bias;
};

constexpr WeightSpec<MpnetLayerWeights> kLayerTable[] = {
    {&MpnetLayerWeights::query_weight, "encoder.layer.{L}.attention.attn.q.weight",
     "hidden, hidden"},
    {&MpnetLayerWeights::query_bias, "encoder.layer.{L}.attention.attn.q.bias", "hidden"},
    {&MpnetLayerWeights::key_weight, "encoder.layer.{L}.attention.attn.k.weight", "hidden, hidden"},
    {&MpnetLayerWeights::key_bias, "encoder.layer.{L}.attention.attn.k.bias", "hidden"},
    {&MpnetLayerWeights::value_weight, "encoder.layer.{L}.attention.attn.v.weight",
     "hidden, hidden"},
    {&MpnetLayerWeights::value_bias, "encoder.layer.{L}.attention.attn.v.bias", "hidden"},
    {&MpnetLayerWeights::out_weight, "encoder.layer.{L}.attention.attn.o.weight", "hidden, hidden"},
    {&MpnetLayerWeights::out_bias, "encoder.layer.{L}.attention.attn.o.bias", "hidden"},
    {&MpnetLayerWeights::attn_norm_weight, "encoder.layer.{L}.attention.LayerNorm.weight",
     "hidden"},
    {&MpnetLayerWeights::attn_norm_bias, "encoder.layer.{L}.attention.LayerNorm.bias", "hidden"},
    {&MpnetLayerWeights::up_weight, "encoder.layer.{L}.intermediate.dense.weight",
     "intermediate, hidden"},
    {&MpnetLayerWeights::up_bias, "encoder.layer.{L}.intermediate.dense.bias", "intermediate"},
    {&MpnetLayerWeights::down_weight, "encoder.layer.{L}.output.dense.weight",
     "hidden, intermediate"},
    {&MpnetLayerWeights::down_bias, "encoder.layer.{L}.output.dense.bias", "hidden"},
    {&MpnetLayerWeights::out_norm_weight, "encoder.layer.{L}.output.LayerNorm.weight", "hidden"},
    {&MpnetLayerWeights::out_norm_bias, "encoder.layer.{L}.output.LayerNorm.bias", "hidden"},
};

class Mpnet final : public Network {
public:
    Mpnet(const ModelConfig& config, int n_buckets, const io::TensorSet& tensors)
        : config_(config), loader_(tensors, config, {"", "mpnet."}) {
        loader_.set_dim("positions", position_rows());
        loader_.set_dim("buckets", n_buckets);
        word_ = loader_.get("embeddings.word_embeddings.weight", "vocab, hidden");
        position_ = loader_.get("embeddings.position_embeddings.weight", "positions, hidden");
        norm_weight_ = loader_.get("embeddings.LayerNorm.weight", "hidden");
        norm_bias_ = loader_.get("embeddings.LayerNorm.bias", "hidden");
        relative_bias_ = loader_.get("encoder.relative_attention_bias.weight", "buckets, heads");
        const int D = config.hidden_size, I = config.intermediate_size;
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            MpnetLayerWeights w;
            loader_.bind(kLayerTable, w, layer);
            PostNormLayer& l = layers_[static_cast<size_t>(layer)];
            l.qkv = Linear({{w.query_weight, w.query_bias, D},
                            {w.key_weight, w.key_bias, D},
                            {w.value_weight, w.value_bias, D}},
                           D, runtime::WeightLayout::out_in, runtime::Activation::none,
                           loader_.releaser({w.query_weight, w.key_weight, w.value_weight}));
            l.attn_out = Linear(w.out_weight, w.out_bias, D, D, runtime::WeightLayout::out_in,
                                runtime::Activation::none, loader_.releaser({w.out_weight}));
            l.ffn_up = Linear(w.up_weight, w.up_bias, D, I, runtime::WeightLayout::out_in,
                              activation, loader_.releaser({w.up_weight}));
            l.ffn_down = Linear(w.down_weight, w.down_bias, I, D, runtime::WeightLayout::out_in,
                                runtime::Activation::none, loader_.releaser({w.down_weight}));
            l.attn_norm_weight = w.attn_norm_weight, l.attn_norm_bias = w.attn_norm_bias;
            l.out_norm_weight = w.out_norm_weight, l.out_norm_bias = w.out_norm_bias;
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "MPNet");
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size;
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));

        ForwardOutput output;
        AttentionBlock& block =
            output.blocks.emplace_back(make_block("self", L, H, T, T, Dh, scale, false, options));
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);

        // word + position, then LayerNorm
        std::vector<float> x(static_cast<size_t>(T) * D);
        int count = 0;
        for (int t = 0; t < T; ++t) {
            const int id = tokens.ids[static_cast<size_t>(t)];
            if (id != kPaddingIdx) ++count;
            const int position = id != kPaddingIdx ? kPaddingIdx + count : kPaddingIdx;
            const float* word = word_ + static_cast<size_t>(id) * D;
            const float* pos = position_ + static_cast<size_t>(position) * D;
            float* row = x.data() + static_cast<size_t>(t) * D;
            for (int i = 0; i < D; ++i) row[i] = word[i] + pos[i];
        }
        runtime::layer_norm(x.data(), norm_weight_, norm_bias_, x.data(), T, D, config_.norm_eps);
        hidden.add(x.data());

        // the relative bias, added after the scale: attention adds its bias before
        // it, so it gets bias / scale
        std::vector<int> bucket_of(static_cast<size_t>(2 * T));  // by k - q + T
        for (int r = -T; r < T; ++r)
            bucket_of[static_cast<size_t>(r + T)] =
                t5_relative_position_bucket(r, true, kBuckets, kMaxDistance);
        std::vector<float> bias(static_cast<size_t>(H) * T * T);
        for (int head = 0; head < H; ++head)
            for (int q = 0; q < T; ++q)
                for (int k = 0; k < T; ++k)
                    bias[(static_cast<size_t>(head) * T + q) * T + k] =
                        relative_bias_[bucket_of[static_cast<size_t>(k - q + T)] * H + head] /
                        scale;

        const uint8_t* key_mask = padding_mask(tokens);
        std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);
        std::vector<float> context(static_cast<size_t>(T) * D), ffn(static_cast<size_t>(T) * I);
        for (int layer = 0; layer < L; ++layer) {
            const PostNormLayer& l = layers_[static_cast<size_t>(layer)];
            l.qkv.forward(x.data(), qkv.data(), T);
            attend_fused_qkv(block, layer, qkv.data(), Dh, key_mask, bias.data(), context.data());
            l.add_output_and_ffn(context.data(), x.data(), ffn.data(), T, D, config_.norm_eps);
            hidden.add(x.data());
        }
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    int position_rows() const { return config_.max_positions + kPaddingIdx + 1; }

    ModelConfig config_;
    WeightLoader loader_;
    const float *word_ = nullptr, *position_ = nullptr;
    const float *norm_weight_ = nullptr, *norm_bias_ = nullptr;
    const float* relative_bias_ = nullptr;  // [buckets, heads]
    std::vector<PostNormLayer> layers_;
};

int read_buckets(const ConfigReader& reader) {
    const int buckets = reader.integer({"relative_attention_num_buckets"}, 32);
    if (buckets < kBuckets)
        throw Error(reader.file() + ": \"relative_attention_num_buckets\" is " +
                    std::to_string(buckets) + "; MPNet looks up 32 buckets, so the table needs " +
                    "at least 32 rows");
    return buckets;
}

}  // namespace

void read_mpnet_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"}, 12);
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"}, 12);
    config.hidden_size = reader.integer({"hidden_size"}, 768);
    config.intermediate_size = reader.integer({"intermediate_size"}, 3072);
    config.vocab_size = reader.integer({"vocab_size"}, 30527);
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-12));
    config.hidden_act = reader.string({"hidden_act"}, "gelu");
    const int max_position_embeddings = reader.integer({"max_position_embeddings"}, 512);
    config.type_vocab_size = 0;
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 ||
        config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() +
                    ": MPNet needs positive num_hidden_layers, num_attention_heads, "
                    "intermediate_size, vocab_size and a hidden_size that is a multiple of "
                    "num_attention_heads");
    config.head_dim = config.hidden_size / config.n_heads;
    // positions run from padding_idx + 1 = 2: 514 rows hold 512 tokens
    if (max_position_embeddings <= kPaddingIdx + 1)
        throw Error(reader.file() + ": \"max_position_embeddings\" " +
                    std::to_string(max_position_embeddings) + " leaves no positions");
    config.max_positions = max_position_embeddings - kPaddingIdx - 1;
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    (void)read_buckets(reader);
}

std::unique_ptr<Network> load_mpnet(const LoadContext& context) {
    return std::make_unique<Mpnet>(context.config, read_buckets(context.config_file),
                                   context.tensors);
}

}  // namespace attnviz::model
