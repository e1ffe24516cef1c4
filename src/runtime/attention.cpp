#include "runtime/attention.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <limits>
#include <new>
#include <vector>

#include "attnviz/error.h"
#include "runtime/kernels.h"

namespace attnviz::runtime {

namespace {

void check_shape(const AttentionShape& shape) {
    if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.n_heads % shape.n_kv_heads != 0 ||
        shape.head_dim <= 0 || shape.n_queries < 0 || shape.n_keys < 0)
        throw Error("attention: bad shape (heads " + std::to_string(shape.n_heads) + ", kv heads " +
                    std::to_string(shape.n_kv_heads) + ", head_dim " +
                    std::to_string(shape.head_dim) + ")");
}

// -inf where the query may not look: padding keys, and future keys when causal.
void mask_scores(const AttentionShape& shape, const uint8_t* key_mask, float* scores) {
    constexpr float kMasked = -std::numeric_limits<float>::infinity();
    const int offset = shape.n_keys - shape.n_queries;
    for (int query = 0; query < shape.n_queries; ++query) {
        float* row = scores + static_cast<size_t>(query) * shape.n_keys;
        if (key_mask)
            for (int key = 0; key < shape.n_keys; ++key)
                if (!key_mask[key]) row[key] = kMasked;
        if (shape.causal)
            for (int key = std::max(0, query + offset + 1); key < shape.n_keys; ++key)
                row[key] = kMasked;
    }
}

// The first key the mask lets any query see: n_keys when the key mask hides every key.
int first_visible_key(const AttentionShape& shape, const uint8_t* key_mask) {
    int key = 0;
    while (key_mask && key < shape.n_keys && !key_mask[key]) ++key;
    return key;
}

// Whether the mask lets `query` see any key. A query that sees keys but whose
// scores are all -inf comes from the numbers, not the mask: torch.softmax gives
// NaN there, and so does attnviz (a query that sees no key gets zeros).
bool sees_a_key(const AttentionShape& shape, int first_visible, int query) {
    const int last = shape.causal ? query + shape.n_keys - shape.n_queries : shape.n_keys - 1;
    return first_visible <= std::min(last, shape.n_keys - 1);
}

// Soft-capped scores of one head, as Gemma 2 forms them: the product scaled, then
// (x / cap), tanh, (x * cap) in float32, then the scaled bias added.
void soft_cap(const AttentionShape& shape, const float* score_bias, int head, float* scores) {
    const size_t n = static_cast<size_t>(shape.n_queries) * shape.n_keys;
    const float* bias = score_bias ? score_bias + static_cast<size_t>(head) * n : nullptr;
    for (size_t i = 0; i < n; ++i) {
        scores[i] = std::tanh(scores[i] * shape.score_scale / shape.softcap) * shape.softcap;
        if (bias) scores[i] += shape.score_scale * bias[i];
    }
}

}  // namespace

// The GEMMs are oneDNN's (row-major dnnl_sgemm), not OpenBLAS's: OpenBLAS
// maps a 128 MiB buffer for each thread that calls it, and when that mapping
// fails (under ulimit -v) its allocator retries forever. oneDNN's returns
// dnnl_out_of_memory instead, which becomes std::bad_alloc here.
void attention(const AttentionShape& shape, const AttentionInputs& in, float* probs, float* context,
               int context_stride) {
    check_shape(shape);
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int group = shape.n_heads / shape.n_kv_heads;
    const int first_visible = first_visible_key(shape, in.key_mask);
    std::atomic<int> failure{dnnl_success};  // exceptions may not leave the parallel loop
#pragma omp parallel for schedule(dynamic, 1)
    for (int head = 0; head < shape.n_heads; ++head) {
        if (failure.load(std::memory_order_relaxed) != dnnl_success) continue;
        const int kv_head = head / group;
        float* scores = probs + static_cast<size_t>(head) * Q * K;  // [Q, K]
        const float* q = in.queries + static_cast<size_t>(head) * D;
        const float* k = in.keys + static_cast<size_t>(kv_head) * D;
        const float* v = in.values + static_cast<size_t>(kv_head) * D;
        float beta = 0.0f;
        const bool capped = shape.softcap > 0.0f;
        if (in.score_bias && !capped) {  // scores = bias, then += q k^T
            const float* bias = in.score_bias + static_cast<size_t>(head) * Q * K;
            std::copy(bias, bias + static_cast<size_t>(Q) * K, scores);
            beta = 1.0f;
        }
        // scores [Q, K] = q [Q, D] k^T [D, K] (+ bias), then x scale row by row: the
        // product is formed before the scale, as transformers computes it, so a
        // q.k past float32's range overflows to inf here exactly where it does there.
        dnnl_status_t status = dnnl_sgemm('N', 'T', Q, K, D, 1.0f, q, in.query_stride, k,
                                          in.key_stride, beta, scores, K);
        if (status == dnnl_success) {
            if (capped) soft_cap(shape, in.score_bias, head, scores);
            if (in.key_mask || shape.causal) mask_scores(shape, in.key_mask, scores);
            for (int query = 0; query < Q; ++query) {
                float* row = scores + static_cast<size_t>(query) * K;
                if (shape.score_scale != 1.0f && !capped)
                    for (int key = 0; key < K; ++key) row[key] *= shape.score_scale;
                if (!softmax_row(row, K) && sees_a_key(shape, first_visible, query))
                    std::fill(row, row + K, std::numeric_limits<float>::quiet_NaN());
            }
            // context [Q, D] = probs [Q, K] v [K, D]
            status = dnnl_sgemm('N', 'N', Q, D, K, 1.0f, scores, K, v, in.value_stride, 0.0f,
                                context + static_cast<size_t>(head) * D, context_stride);
        }
        if (status != dnnl_success) failure.store(status, std::memory_order_relaxed);
    }
    if (failure == dnnl_out_of_memory) throw std::bad_alloc();
    if (failure != dnnl_success)
        throw Error("attention: oneDNN's sgemm failed (status " + std::to_string(failure.load()) +
                    ")");
}

void attention_reference(const AttentionShape& shape, const AttentionInputs& in, float* probs,
                         float* context, int context_stride) {
    check_shape(shape);
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int group = shape.n_heads / shape.n_kv_heads;
    const int first_visible = first_visible_key(shape, in.key_mask);
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> row(static_cast<size_t>(K));
    for (int head = 0; head < shape.n_heads; ++head) {
        const int kv_head = head / group;
        for (int query = 0; query < Q; ++query) {
            const float* q = in.queries + static_cast<size_t>(query) * in.query_stride + head * D;
            double max = -std::numeric_limits<double>::infinity();
            bool nan = false;
            for (int key = 0; key < K; ++key) {
                const float* k = in.keys + static_cast<size_t>(key) * in.key_stride + kv_head * D;
                double dot = 0;
                for (int d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * k[d];
                const double bias =
                    in.score_bias ? in.score_bias[(static_cast<size_t>(head) * Q + query) * K + key]
                                  : 0.0;
                const bool masked =
                    (in.key_mask && !in.key_mask[key]) || (shape.causal && key > query + (K - Q));
                const double score =
                    shape.softcap > 0
                        ? shape.softcap * std::tanh(shape.score_scale * dot / shape.softcap) +
                              shape.score_scale * bias
                        : shape.score_scale * (dot + bias);
                row[key] = masked ? -std::numeric_limits<double>::infinity() : score;
                // float32 scores, as attention() computes them: overflow is inf there too
                row[key] = static_cast<float>(row[key]);
                nan = nan || std::isnan(row[key]);
                max = std::max(max, row[key]);
            }
            // torch.softmax: NaN or +inf anywhere -> NaN; all -inf -> zeros when the
            // mask hides every key, else NaN
            const bool all_masked = std::isinf(max) && max < 0;
            const bool nan_row = nan || (std::isinf(max) && max > 0) ||
                                 (all_masked && sees_a_key(shape, first_visible, query));
            double sum = 0;
            for (int key = 0; key < K; ++key) {
                row[key] = nan_row ? kNaN : all_masked ? 0.0 : std::exp(row[key] - max);
                sum += row[key];
            }
            float* p = probs + (static_cast<size_t>(head) * Q + query) * K;
            for (int key = 0; key < K; ++key)
                p[key] = nan_row || sum > 0 ? static_cast<float>(row[key] / sum) : 0.0f;
            float* out = context + static_cast<size_t>(query) * context_stride + head * D;
            for (int d = 0; d < D; ++d) {
                double value = 0;
                for (int key = 0; key < K; ++key)
                    value +=
                        row[key] / (nan_row || sum > 0 ? sum : 1.0) *
                        in.values[static_cast<size_t>(key) * in.value_stride + kv_head * D + d];
                out[d] = static_cast<float>(value);
            }
        }
    }
}

}  // namespace attnviz::runtime
