// DeBERTa-v2 and -v3 (modeling_deberta_v2.py): BERT's post-norm encoder with
// disentangled attention. Each score adds to the content term a content-to-position
// term (c2p: the query against the relative position's key projection) and a
// position-to-content term (p2c: the key against its query projection):
//
//   x = LayerNorm((word[id] [+ position[t]] [+ token_type[type]]) [W_embed_proj])
//   rel = relative position q - k, log-bucketed when position_buckets > 0
//   R   = rel_embeddings[0 : 2 * span] (LayerNorm'd when norm_rel_ebd has layer_norm)
//         span = position_buckets, or max_relative_positions (max_position_embeddings if < 1)
//   per layer, per head, s = sqrt(head_dim * (1 + |pos_att_type|)):
//     score[q][k] = ( q.k + q.Kr[clamp(rel(q, k) + span)] + k.Qr[clamp(-rel(k, q) + span)] ) / s
//       Kr = R W_pos_key (share_att_key: W_key), Qr = R W_pos_query (share_att_key: W_query)
//     probs = softmax(score)                                          -> the trace
//     x = LayerNorm(x + (probs v) Wo);  x = LayerNorm(x + act(x W1) W2)
//
// The c2p and p2c terms depend on the query's and the key's content: the block
// says not_decomposable, and the neuron view says so. The probabilities are
// XSoftmax's, as transformers returns them: with padding, 0 for a padding key
// and for a padding query's whole row.
// Checkpoints: DebertaV2Model names, or "deberta."-prefixed (…ForMaskedLM, …).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "attnviz/error.h"
#include "model/arch_blocks.h"
#include "model/bert_layers.h"
#include "model/network.h"
#include "runtime/kernels.h"

namespace attnviz::model {

namespace {

using runtime::Linear;

struct DebertaExtras {
    int embedding_size = 0;
    bool position_biased_input = true;
    bool relative_attention = false;
    bool c2p = false, p2c = false;
    bool share_att_key = false;
    bool norm_rel_embeddings = false;
    int position_buckets = -1;
    int max_relative_positions = 0;
    int span = 0;  // att_span: rel_embeddings rows are 2 * span
};

struct DebertaLayerWeights {
    const float *query_weight, *query_bias, *key_weight, *key_bias;
    const float *value_weight, *value_bias;
    const float *pos_key_weight, *pos_key_bias, *pos_query_weight, *pos_query_bias;
    const float *out_weight, *out_bias, *attn_norm_weight, *attn_norm_bias;
    const float *up_weight, *up_bias, *down_weight, *down_bias;
    const float *out_norm_weight, *out_norm_bias;
};

constexpr WeightSpec<DebertaLayerWeights> kLayerTable[] = {
    {&DebertaLayerWeights::query_weight, "encoder.layer.{L}.attention.self.query_proj.weight",
     "heads*head_dim, hidden"},
    {&DebertaLayerWeights::query_bias, "encoder.layer.{L}.attention.self.query_proj.bias",
     "heads*head_dim"},
    {&DebertaLayerWeights::key_weight, "encoder.layer.{L}.attention.self.key_proj.weight",
     "heads*head_dim, hidden"},
    {&DebertaLayerWeights::key_bias, "encoder.layer.{L}.attention.self.key_proj.bias",
     "heads*head_dim"},
    {&DebertaLayerWeights::value_weight, "encoder.layer.{L}.attention.self.value_proj.weight",
     "heads*head_dim, hidden"},
    {&DebertaLayerWeights::value_bias, "encoder.layer.{L}.attention.self.value_proj.bias",
     "heads*head_dim"},
    {&DebertaLayerWeights::pos_key_weight, "encoder.layer.{L}.attention.self.pos_key_proj.weight",
     "heads*head_dim, hidden", true},
    {&DebertaLayerWeights::pos_key_bias, "encoder.layer.{L}.attention.self.pos_key_proj.bias",
     "heads*head_dim", true},
    {&DebertaLayerWeights::pos_query_weight,
     "encoder.layer.{L}.attention.self.pos_query_proj.weight", "heads*head_dim, hidden", true},
    {&DebertaLayerWeights::pos_query_bias, "encoder.layer.{L}.attention.self.pos_query_proj.bias",
     "heads*head_dim", true},
    {&DebertaLayerWeights::out_weight, "encoder.layer.{L}.attention.output.dense.weight",
     "hidden, heads*head_dim"},
    {&DebertaLayerWeights::out_bias, "encoder.layer.{L}.attention.output.dense.bias", "hidden"},
    {&DebertaLayerWeights::attn_norm_weight, "encoder.layer.{L}.attention.output.LayerNorm.weight",
     "hidden"},
    {&DebertaLayerWeights::attn_norm_bias, "encoder.layer.{L}.attention.output.LayerNorm.bias",
     "hidden"},
    {&DebertaLayerWeights::up_weight, "encoder.layer.{L}.intermediate.dense.weight",
     "intermediate, hidden"},
    {&DebertaLayerWeights::up_bias, "encoder.layer.{L}.intermediate.dense.bias", "intermediate"},
    {&DebertaLayerWeights::down_weight, "encoder.layer.{L}.output.dense.weight",
     "hidden, intermediate"},
    {&DebertaLayerWeights::down_bias, "encoder.layer.{L}.output.dense.bias", "hidden"},
    {&DebertaLayerWeights::out_norm_weight, "encoder.layer.{L}.output.LayerNorm.weight", "hidden"},
    {&DebertaLayerWeights::out_norm_bias, "encoder.layer.{L}.output.LayerNorm.bias", "hidden"},
};

struct DebertaLayer {
    PostNormLayer run;
    Linear pos_key;    // rel_embeddings -> Kr (c2p)
    Linear pos_query;  // rel_embeddings -> Qr (p2c)
};

// make_log_bucket_position, in the float32 steps of its tensor expression.
int log_bucket(int relative, int bucket_size, int max_position) {
    const int mid = bucket_size / 2;
    const int sign = (relative > 0) - (relative < 0);
    const int abs_pos = relative < mid && relative > -mid ? mid - 1 : std::abs(relative);
    if (abs_pos <= mid) return relative;
    const float ratio = static_cast<float>(abs_pos) / static_cast<float>(mid);
    const float denominator =
        std::log(static_cast<float>(static_cast<double>(max_position - 1) / mid));
    const float log_pos = std::ceil(std::log(ratio) / denominator * static_cast<float>(mid - 1)) +
                          static_cast<float>(mid);
    return static_cast<int>(log_pos * static_cast<float>(sign));
}

class DebertaV2 final : public Network {
public:
    DebertaV2(const ModelConfig& config, const DebertaExtras& extras, const io::TensorSet& tensors)
        : config_(config), extras_(extras), loader_(tensors, config, {"", "deberta."}) {
        const int D = config.hidden_size, E = extras.embedding_size, I = config.intermediate_size;
        const int Dq = config.n_heads * config.head_dim;
        loader_.set_dim("embedding", E);
        loader_.set_dim("rel", 2 * static_cast<int64_t>(extras.span));
        word_ = loader_.get("embeddings.word_embeddings.weight", "vocab, embedding");
        if (extras.position_biased_input)
            position_ =
                loader_.get("embeddings.position_embeddings.weight", "positions, embedding");
        if (config.type_vocab_size > 0)
            token_type_ =
                loader_.get("embeddings.token_type_embeddings.weight", "type_vocab, embedding");
        if (E != D)
            embed_proj_ = Linear(loader_.get("embeddings.embed_proj.weight", "hidden, embedding"),
                                 nullptr, E, D);
        embed_norm_weight_ = loader_.get("embeddings.LayerNorm.weight", "hidden");
        embed_norm_bias_ = loader_.get("embeddings.LayerNorm.bias", "hidden");
        if (extras.relative_attention) {
            const float* rel = loader_.get_optional("encoder.rel_embeddings.weight", "rel, hidden");
            if (!rel) throw_missing_rel();
            rel_embeddings_.assign(rel, rel + static_cast<size_t>(2 * extras.span) * D);
            if (extras.norm_rel_embeddings)
                runtime::layer_norm(rel_embeddings_.data(),
                                    loader_.get("encoder.LayerNorm.weight", "hidden"),
                                    loader_.get("encoder.LayerNorm.bias", "hidden"),
                                    rel_embeddings_.data(), 2 * extras.span, D, config.norm_eps);
        }
        const auto activation = runtime::activation_from_name(config.hidden_act);
        layers_.resize(static_cast<size_t>(config.n_layers));
        for (int layer = 0; layer < config.n_layers; ++layer) {
            DebertaLayerWeights w;
            loader_.bind(kLayerTable, w, layer);
            DebertaLayer& l = layers_[static_cast<size_t>(layer)];
            l.run.qkv = Linear({{w.query_weight, w.query_bias, Dq},
                                {w.key_weight, w.key_bias, Dq},
                                {w.value_weight, w.value_bias, Dq}},
                               D);
            l.run.attn_out = Linear(w.out_weight, w.out_bias, Dq, D);
            l.run.ffn_up =
                Linear(w.up_weight, w.up_bias, D, I, runtime::WeightLayout::out_in, activation);
            l.run.ffn_down = Linear(w.down_weight, w.down_bias, I, D);
            l.run.attn_norm_weight = w.attn_norm_weight, l.run.attn_norm_bias = w.attn_norm_bias;
            l.run.out_norm_weight = w.out_norm_weight, l.run.out_norm_bias = w.out_norm_bias;
            if (!extras.relative_attention) continue;
            if (extras.share_att_key) {
                l.pos_key = Linear(w.key_weight, w.key_bias, D, Dq);
                l.pos_query = Linear(w.query_weight, w.query_bias, D, Dq);
                continue;
            }
            if (extras.c2p) {
                if (!w.pos_key_weight || !w.pos_key_bias) throw_missing(layer, "pos_key_proj");
                l.pos_key = Linear(w.pos_key_weight, w.pos_key_bias, D, Dq);
            }
            if (extras.p2c) {
                if (!w.pos_query_weight || !w.pos_query_bias)
                    throw_missing(layer, "pos_query_proj");
                l.pos_query = Linear(w.pos_query_weight, w.pos_query_bias, D, Dq);
            }
        }
    }

    const WeightLoader& weights() const override { return loader_; }

    ForwardOutput forward(const ForwardInput& input, const RunOptions& options) const override {
        const Encoding& tokens = *input.tokens;
        check_token_ids(tokens.ids, config_.vocab_size, config_.max_positions, "DeBERTa-v2");
        if (config_.type_vocab_size > 0)
            check_type_ids(tokens, config_.type_vocab_size, "DeBERTa-v2");
        // Padding (DebertaV2Encoder.get_attention_mask): a position is visible
        // where both its query and its key are tokens; XSoftmax gives the
        // padding keys 0 and a padding query's whole row 0 (zero_padding_rows).
        const uint8_t* key_mask = padding_mask(tokens);
        const int T = static_cast<int>(tokens.size());
        const int D = config_.hidden_size, H = config_.n_heads, Dh = config_.head_dim;
        const int L = config_.n_layers, I = config_.intermediate_size, Dq = H * Dh;
        const int factor = 1 + extras_.c2p + extras_.p2c;
        // torch.sqrt(torch.tensor(head_dim, dtype=float) * scale_factor), in float32
        const float scale = std::sqrt(static_cast<float>(Dh) * static_cast<float>(factor));

        ForwardOutput output;
        AttentionBlock& block = output.blocks.emplace_back(
            make_block("self", L, H, T, T, Dh, 1.0f / scale, false, options));
        const bool disentangled = extras_.relative_attention && (extras_.c2p || extras_.p2c);
        // a padding query's row is 0, not a softmax of its scores
        if (disentangled || key_mask) block.score_form = ScoreForm::not_decomposable;
        HiddenStateRecorder hidden(options.keep_hidden_states, 0, L + 1, T, D);
        std::vector<float> x(static_cast<size_t>(T) * D);
        embed(tokens, x.data());
        if (key_mask)  // DebertaV2Embeddings: embeddings * mask
            for (int t = 0; t < T; ++t)
                if (!key_mask[t]) std::fill_n(x.data() + static_cast<size_t>(t) * D, D, 0.0f);
        hidden.add(x.data());

        // c2p index clamp(rel(q, k) + span) and p2c index clamp(-rel(k, q) + span), [q][k]
        const int span = extras_.span, R = 2 * span;
        std::vector<int> c2p_index, p2c_index;
        if (disentangled) {
            c2p_index.resize(static_cast<size_t>(T) * T), p2c_index.resize(c2p_index.size());
            const auto rel = [&](int a, int b) {
                return extras_.position_buckets > 0 ? log_bucket(a - b, extras_.position_buckets,
                                                                 extras_.max_relative_positions)
                                                    : a - b;
            };
            const auto clamp = [&](int i) { return std::min(std::max(i, 0), R - 1); };
            for (int q = 0; q < T; ++q)
                for (int k = 0; k < T; ++k) {
                    c2p_index[static_cast<size_t>(q) * T + k] = clamp(rel(q, k) + span);
                    p2c_index[static_cast<size_t>(q) * T + k] = clamp(-rel(k, q) + span);
                }
        }

        std::vector<float> qkv(static_cast<size_t>(T) * 3 * Dq);
        std::vector<float> context(static_cast<size_t>(T) * Dq), ffn(static_cast<size_t>(T) * I);
        std::vector<float> pos_key(static_cast<size_t>(R) * Dq), pos_query(pos_key.size());
        std::vector<float> bias(disentangled ? static_cast<size_t>(H) * T * T : 0);
        std::vector<float> c2p(static_cast<size_t>(T) * R), p2c(static_cast<size_t>(T) * R);
        for (int layer = 0; layer < L; ++layer) {
            const DebertaLayer& l = layers_[static_cast<size_t>(layer)];
            l.run.qkv.forward(x.data(), qkv.data(), T);
            if (disentangled) {
                if (extras_.c2p) l.pos_key.forward(rel_embeddings_.data(), pos_key.data(), R);
                if (extras_.p2c) l.pos_query.forward(rel_embeddings_.data(), pos_query.data(), R);
                disentangled_bias(qkv.data(), pos_key.data(), pos_query.data(), c2p_index,
                                  p2c_index, T, c2p, p2c, bias.data());
            }
            attend_fused_qkv(block, layer, qkv.data(), Dh, key_mask,
                             disentangled ? bias.data() : nullptr, context.data());
            if (key_mask) zero_padding_rows(block, layer, key_mask, context.data(), Dq);
            l.run.add_output_and_ffn(context.data(), x.data(), ffn.data(), T, D, config_.norm_eps);
            hidden.add(x.data());
        }
        hidden.move_into(output.hidden_states);
        return output;
    }

private:
    // XSoftmax's zeros for a padding query (its mask row is all 0): the row
    // attention() wrote over the visible keys becomes 0, however the capture
    // stores it (a sparse row keeps its keys, with value 0), and so does the
    // row's context, XSoftmax's zeros times the values.
    static void zero_padding_rows(AttentionBlock& block, int layer, const uint8_t* mask,
                                  float* context, int width) {
        const int T = block.n_queries;
        for (int q = 0; q < T; ++q)
            if (!mask[q]) std::fill_n(context + static_cast<size_t>(q) * width, width, 0.0f);
        const int slot = kept_layer(block, layer);
        if (slot < 0) return;
        const auto clear = [&](size_t begin, size_t end) {
            if (block.probs_fp16.empty())
                std::fill(block.probs.begin() + begin, block.probs.begin() + end, 0.0f);
            else  // binary16 +0
                std::fill(block.probs_fp16.begin() + begin, block.probs_fp16.begin() + end, 0);
        };
        for (int head = 0; head < block.n_heads; ++head)
            for (int q = 0; q < T; ++q) {
                if (mask[q]) continue;
                const size_t row = block.row_index(slot, head, q);
                if (block.is_sparse())
                    clear(block.row_start[row], block.row_start[row + 1]);
                else
                    clear(row * block.n_keys, (row + 1) * block.n_keys);
            }
    }

    [[noreturn]] void throw_missing(int layer, const char* what) const {
        throw Error("layer " + std::to_string(layer) + ": pos_att_type asks for " + what +
                    " (share_att_key is false), but the checkpoint lacks encoder.layer." +
                    std::to_string(layer) + ".attention.self." + what);
    }
    [[noreturn]] void throw_missing_rel() const {
        throw Error("relative_attention is true, but the checkpoint lacks encoder.rel_embeddings");
    }

    // x = LayerNorm((word + position + token_type) [W_proj]), DebertaV2Embeddings' order
    void embed(const Encoding& tokens, float* x) const {
        const int T = static_cast<int>(tokens.size()), D = config_.hidden_size;
        const int E = extras_.embedding_size;
        std::vector<float> e(static_cast<size_t>(T) * E);
        for (int t = 0; t < T; ++t) {
            float* row = e.data() + static_cast<size_t>(t) * E;
            const float* word = word_ + static_cast<size_t>(tokens.ids[static_cast<size_t>(t)]) * E;
            for (int i = 0; i < E; ++i) row[i] = word[i];
            if (position_) {
                const float* pos = position_ + static_cast<size_t>(t) * E;
                for (int i = 0; i < E; ++i) row[i] += pos[i];
            }
            if (token_type_) {
                const int type =
                    tokens.type_ids.empty() ? 0 : tokens.type_ids[static_cast<size_t>(t)];
                const float* tt = token_type_ + static_cast<size_t>(type) * E;
                for (int i = 0; i < E; ++i) row[i] += tt[i];
            }
        }
        if (E != D)
            embed_proj_.forward(e.data(), x, T);
        else
            std::copy(e.begin(), e.end(), x);
        runtime::layer_norm(x, embed_norm_weight_, embed_norm_bias_, x, T, D, config_.norm_eps);
    }

    // bias[h][q][k] = c2p[q][c2p_index] + p2c[k][p2c_index] (before the 1/s scale)
    void disentangled_bias(const float* qkv, const float* pos_key, const float* pos_query,
                           const std::vector<int>& c2p_index, const std::vector<int>& p2c_index,
                           int T, std::vector<float>& c2p, std::vector<float>& p2c,
                           float* bias) const {
        const int H = config_.n_heads, Dh = config_.head_dim, Dq = H * Dh, R = 2 * extras_.span;
        for (int head = 0; head < H; ++head) {
            // c2p[q][r] = q . Kr[r],  p2c[k][r] = k . Qr[r]
            for (int t = 0; t < T; ++t) {
                const float* query = qkv + static_cast<size_t>(t) * 3 * Dq + head * Dh;
                const float* key = query + Dq;
                for (int r = 0; r < R; ++r) {
                    float a = 0, b = 0;
                    const float* kr = pos_key + static_cast<size_t>(r) * Dq + head * Dh;
                    const float* qr = pos_query + static_cast<size_t>(r) * Dq + head * Dh;
                    if (extras_.c2p)
                        for (int d = 0; d < Dh; ++d) a += query[d] * kr[d];
                    if (extras_.p2c)
                        for (int d = 0; d < Dh; ++d) b += key[d] * qr[d];
                    c2p[static_cast<size_t>(t) * R + r] = a;
                    p2c[static_cast<size_t>(t) * R + r] = b;
                }
            }
            float* out = bias + static_cast<size_t>(head) * T * T;
            for (int q = 0; q < T; ++q)
                for (int k = 0; k < T; ++k) {
                    const size_t at = static_cast<size_t>(q) * T + k;
                    float value = 0;
                    if (extras_.c2p) value += c2p[static_cast<size_t>(q) * R + c2p_index[at]];
                    if (extras_.p2c) value += p2c[static_cast<size_t>(k) * R + p2c_index[at]];
                    out[at] = value;
                }
        }
    }

    ModelConfig config_;
    DebertaExtras extras_;
    WeightLoader loader_;
    const float *word_ = nullptr, *position_ = nullptr, *token_type_ = nullptr;
    Linear embed_proj_;
    const float *embed_norm_weight_ = nullptr, *embed_norm_bias_ = nullptr;
    std::vector<float> rel_embeddings_;  // [2 * span, hidden], normalized when configured
    std::vector<DebertaLayer> layers_;
};

DebertaExtras read_extras(const ConfigReader& reader, const ModelConfig& config) {
    DebertaExtras extras;
    extras.embedding_size = reader.integer({"embedding_size"}, config.hidden_size);
    extras.position_biased_input = reader.boolean({"position_biased_input"}, true);
    extras.relative_attention = reader.boolean({"relative_attention"}, false);
    extras.share_att_key = reader.boolean({"share_att_key"}, false);
    // pos_att_type: a list, or DebertaV2Config's "c2p|p2c" string form
    std::vector<std::string> types;
    const auto it = reader.json().find("pos_att_type");
    if (it != reader.json().end() && !it->is_null()) {
        if (it->is_string()) {
            std::string text = it->get<std::string>();
            for (size_t start = 0; start <= text.size();) {
                const size_t bar = std::min(text.find('|', start), text.size());
                std::string type = text.substr(start, bar - start);
                type.erase(0, type.find_first_not_of(' '));
                type.erase(type.find_last_not_of(' ') + 1);
                for (char& c : type) c = static_cast<char>(std::tolower(c));
                types.push_back(type);
                start = bar + 1;
            }
        } else if (it->is_array()) {
            for (const auto& v : *it) {
                if (!v.is_string())
                    throw Error(reader.file() + ": \"pos_att_type\" must list strings, not " +
                                it->dump());
                types.push_back(v.get<std::string>());
            }
        } else {
            throw Error(reader.file() + ": \"pos_att_type\" must be a list or \"c2p|p2c\", not " +
                        it->dump());
        }
    }
    for (const std::string& type : types) {
        if (type == "c2p")
            extras.c2p = true;
        else if (type == "p2c")
            extras.p2c = true;
        else if (type != "p2p" && type != "none" && !type.empty())
            throw Error(reader.file() + ": \"pos_att_type\" holds \"" + type +
                        "\", not supported (supported: c2p, p2c)");
    }
    const std::string norm = reader.string({"norm_rel_ebd"}, "none");
    extras.norm_rel_embeddings = norm.find("layer_norm") != std::string::npos;
    if (reader.integer({"conv_kernel_size"}, 0) > 0)
        throw Error(reader.file() + ": \"conv_kernel_size\" is " +
                    std::to_string(reader.integer({"conv_kernel_size"})) +
                    ", not supported: DeBERTa-v2's convolution layer is not implemented");
    const int max_position_embeddings = reader.integer({"max_position_embeddings"}, 512);
    extras.max_relative_positions = reader.integer({"max_relative_positions"}, -1);
    if (extras.max_relative_positions < 1) extras.max_relative_positions = max_position_embeddings;
    extras.position_buckets = reader.integer({"position_buckets"}, -1);
    extras.span =
        extras.position_buckets > 0 ? extras.position_buckets : extras.max_relative_positions;
    if (extras.embedding_size < 1 || extras.span < 1 ||
        (extras.position_buckets > 0 && extras.position_buckets < 4) ||
        (extras.position_buckets > 0 && extras.max_relative_positions < 2))
        throw Error(reader.file() +
                    ": DeBERTa-v2 needs a positive embedding_size, position_buckets of at least "
                    "4 (or -1) and max_relative_positions of at least 2");
    return extras;
}

}  // namespace

void read_deberta_v2_config(const ConfigReader& reader, ModelConfig& config) {
    config.n_layers = reader.integer({"num_hidden_layers"}, 24);
    config.n_heads = config.n_kv_heads = reader.integer({"num_attention_heads"}, 24);
    config.hidden_size = reader.integer({"hidden_size"}, 1536);
    config.intermediate_size = reader.integer({"intermediate_size"}, 6144);
    config.vocab_size = reader.integer({"vocab_size"}, 128100);
    config.norm_eps = static_cast<float>(reader.number({"layer_norm_eps"}, 1e-7));
    config.hidden_act = reader.string({"hidden_act"}, "gelu");
    config.max_positions = reader.integer({"max_position_embeddings"}, 512);
    config.type_vocab_size = reader.integer({"type_vocab_size"}, 0);
    if (config.n_layers < 1 || config.n_heads < 1 || config.hidden_size < 1 ||
        config.intermediate_size < 1 || config.vocab_size < 1 || config.max_positions < 1 ||
        config.type_vocab_size < 0 || config.hidden_size % config.n_heads != 0)
        throw Error(reader.file() +
                    ": DeBERTa-v2 needs positive num_hidden_layers, num_attention_heads, "
                    "intermediate_size, vocab_size, max_position_embeddings and a hidden_size "
                    "that is a multiple of num_attention_heads");
    config.head_dim = reader.integer({"attention_head_size"}, config.hidden_size / config.n_heads);
    if (config.head_dim < 1) throw Error(reader.file() + ": attention_head_size must be positive");
    check_activation(config.hidden_act, reader.file(), "hidden_act");
    const DebertaExtras extras = read_extras(reader, config);
    // for the memory estimate: the c2p and p2c scores [T, 2 span], the bias [H, T, T]
    if (extras.relative_attention && (extras.c2p || extras.p2c))
        config.relative_positions = 2 * extras.span;
}

std::unique_ptr<Network> load_deberta_v2(const LoadContext& context) {
    return std::make_unique<DebertaV2>(
        context.config, read_extras(context.config_file, context.config), context.tensors);
}

}  // namespace attnviz::model
