// Scaled dot-product attention that keeps its probabilities: the one place
// every architecture's attention maps come from.
//
//   score[h][q][k] = score_scale * (dot(query[q, h], key[k, h']) + score_bias[h][q][k])
//   (soft-capped: softcap * tanh(score_scale * dot / softcap) + score_scale * score_bias)
//   probs[h][q]    = softmax over keys, masked keys (padding, or k > q when causal) = 0
//
// Non-finite scores propagate as torch.softmax propagates them: a row with a NaN
// or +inf score, or whose visible keys all score -inf, is NaN throughout. A
// query the mask lets see no key at all gets a row of zeros.
//   context[q, h]  = sum_k probs[h][q][k] * value[k, h']
//
// h' = h / (n_heads / n_kv_heads): grouped-query heads share keys and values.
#pragma once

#include <cstdint>

namespace attnviz::runtime {

struct AttentionShape {
    int n_heads = 0;
    int n_kv_heads = 0;  // = n_heads unless grouped-query
    int n_queries = 0;
    int n_keys = 0;
    int head_dim = 0;
    float score_scale = 1.0f;  // 1/sqrt(head_dim) for most models; T5 uses 1
    // Query q sees keys k <= q + (n_keys - n_queries): decoders, incl. cached prefixes.
    bool causal = false;
    // Gemma 2's attn_logit_softcapping: when > 0 the score is
    // softcap * tanh(score_scale * q.k / softcap) + score_scale * score_bias, i.e. the cap
    // applies to the scaled product before the bias and the masks; 0: off (the usual form).
    float softcap = 0.0f;
};

struct AttentionInputs {
    const float* queries = nullptr;  // [n_queries, *]: head h at columns h*head_dim...
    int query_stride = 0;            // floats between query rows
    const float* keys = nullptr;     // [n_keys, *]: kv head h' at columns h'*head_dim...
    int key_stride = 0;
    const float* values = nullptr;  // [n_keys, *], as keys
    int value_stride = 0;
    const uint8_t* key_mask = nullptr;  // [n_keys]: 0 = padding, never attended; or null
    const float* score_bias = nullptr;  // [n_heads, n_queries, n_keys], or null
};

// probs: [n_heads, n_queries, n_keys], written; or null: context only, by a
// fused kernel (online softmax over blocks of keys, flash-attention style) that
// never holds more than a tile of scores per thread. context: [n_queries,
// n_heads*head_dim] with rows context_stride floats apart, written. Threads:
// tiles of (head, queries), via OpenMP. Causal keys past a tile's last visible
// key are skipped, not multiplied by 0 (a non-finite value there is not read).
void attention(const AttentionShape& shape, const AttentionInputs& inputs, float* probs,
               float* context, int context_stride);

// The definition in loops (double accumulation): what tests compare against.
void attention_reference(const AttentionShape& shape, const AttentionInputs& inputs, float* probs,
                         float* context, int context_stride);

}  // namespace attnviz::runtime
