#include "runtime/attention.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <exception>
#include <limits>
#include <memory>
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

// Keys [0, visible_keys) are the ones `query` may see, the causal mask aside from the key mask.
int visible_keys(const AttentionShape& shape, int query) {
    if (!shape.causal) return shape.n_keys;
    return std::clamp(query + shape.n_keys - shape.n_queries + 1, 0, shape.n_keys);
}

// Queries per task: a tile of scores (tile x n_keys) that stays in L2 from the
// q.k product through the softmax to the product with the values.
int query_tile(int n_keys) {
    constexpr size_t kTileBytes = 256 * 1024;
    const size_t rows = kTileBytes / (sizeof(float) * std::max(1, n_keys));
    return static_cast<int>(std::clamp<size_t>(rows / 8 * 8, 8, 64));
}

constexpr int kKeyBlock = 256;  // keys per step of the context-only kernel

// Gemma 2's soft cap on raw products q.k (bias not yet added): the row becomes
// softcap * tanh(scale * q.k / softcap) + scale * bias, scaled already.
void soft_cap(const AttentionShape& shape, float* row, int n, const float* bias) {
    const float scale = shape.score_scale, cap = shape.softcap;
    for (int i = 0; i < n; ++i)
        row[i] = std::tanh(row[i] * scale / cap) * cap + (bias ? scale * bias[i] : 0.0f);
}

struct Task {
    int head, first_query, end_query;
};

std::vector<Task> tasks(const AttentionShape& shape, int tile) {
    std::vector<Task> list;
    for (int head = 0; head < shape.n_heads; ++head)
        for (int q0 = 0; q0 < shape.n_queries; q0 += tile)
            list.push_back({head, q0, std::min(q0 + tile, shape.n_queries)});
    // causal: the longest tiles first, so the dynamic schedule ends evenly
    if (shape.causal)
        std::stable_sort(list.begin(), list.end(),
                         [](const Task& a, const Task& b) { return a.end_query > b.end_query; });
    return list;
}

// Runs task(i) for i in [0, n) on the OpenMP pool; an exception (bad_alloc,
// a failed GEMM) may not leave the parallel loop, so the first is rethrown after.
template <typename Body>
void parallel_tasks(int n, Body&& body) {
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
#pragma omp parallel
    {
        try {
            auto worker = body();  // per-thread scratch
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < n; ++i)
                if (!failed.load(std::memory_order_relaxed)) worker(i);
        } catch (...) {
#pragma omp critical(attnviz_attention_failure)
            if (!failure) failure = std::current_exception();
            failed = true;
        }
    }
    if (failure) std::rethrow_exception(failure);
}

void check_gemm(dnnl_status_t status) {
    if (status == dnnl_success) return;
    if (status == dnnl_out_of_memory) throw std::bad_alloc();
    throw Error("attention: oneDNN's sgemm failed (status " + std::to_string(status) + ")");
}

// probs kept: each tile's scores are computed into its rows of probs, turned
// into probabilities there while they are in cache, then multiplied by the values.
void attention_with_probs(const AttentionShape& shape, const AttentionInputs& in, float* probs,
                          float* context, int context_stride) {
    constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int group = shape.n_heads / shape.n_kv_heads;
    const int first_visible = first_visible_key(shape, in.key_mask);
    const std::vector<Task> list = tasks(shape, query_tile(K));
    parallel_tasks(static_cast<int>(list.size()), [&] {
        return [&](int i) {
            const auto [head, q0, q1] = list[i];
            const int rows = q1 - q0, kv_head = head / group;
            // keys past the tile's last visible one (causal) are 0 without a product
            const int keys = visible_keys(shape, q1 - 1);
            float* scores = probs + (static_cast<size_t>(head) * Q + q0) * K;  // [rows, K]
            const float* q = in.queries + static_cast<size_t>(q0) * in.query_stride + head * D;
            const float* k = in.keys + static_cast<size_t>(kv_head) * D;
            const float* v = in.values + static_cast<size_t>(kv_head) * D;
            float* out = context + static_cast<size_t>(q0) * context_stride + head * D;
            if (keys == 0) {
                for (int r = 0; r < rows; ++r) {
                    std::fill(scores + static_cast<size_t>(r) * K,
                              scores + static_cast<size_t>(r + 1) * K, 0.0f);
                    const float fill = sees_a_key(shape, first_visible, q0 + r) ? kNaN : 0.0f;
                    std::fill(out + static_cast<size_t>(r) * context_stride,
                              out + static_cast<size_t>(r) * context_stride + D, fill);
                }
                return;
            }
            float beta = 0.0f;
            const bool capped = shape.softcap > 0;
            if (in.score_bias && !capped) {  // scores = bias, then += q k^T
                const float* bias = in.score_bias + (static_cast<size_t>(head) * Q + q0) * K;
                for (int r = 0; r < rows; ++r)
                    std::copy(bias + static_cast<size_t>(r) * K,
                              bias + static_cast<size_t>(r) * K + keys,
                              scores + static_cast<size_t>(r) * K);
                beta = 1.0f;
            }
            // The product before the scale, as transformers computes it: a q.k past
            // float32's range overflows to inf here exactly where it does there.
            check_gemm(dnnl_sgemm('N', 'T', rows, keys, D, 1.0f, q, in.query_stride, k,
                                  in.key_stride, beta, scores, K));
            for (int r = 0; r < rows; ++r) {
                const int query = q0 + r;
                float* row = scores + static_cast<size_t>(r) * K;
                std::fill(row + keys, row + K, 0.0f);
                if (capped)
                    soft_cap(shape, row, keys,
                             in.score_bias
                                 ? in.score_bias + (static_cast<size_t>(head) * Q + query) * K
                                 : nullptr);
                const RowMax stats = scale_mask_max(row, keys, capped ? 1.0f : shape.score_scale,
                                                    in.key_mask, visible_keys(shape, query));
                if (stats.non_finite) {  // torch: NaN, and inf - inf = NaN
                    std::fill(row, row + K, kNaN);
                } else if (stats.max == -std::numeric_limits<float>::infinity()) {
                    std::fill(row, row + K, sees_a_key(shape, first_visible, query) ? kNaN : 0.0f);
                } else {
                    scale_row(row, keys, 1.0f / exp_shifted_sum(row, keys, stats.max));
                }
            }
            // context [rows, D] = probs [rows, keys] v [keys, D]
            check_gemm(dnnl_sgemm('N', 'N', rows, D, keys, 1.0f, scores, K, v, in.value_stride,
                                  0.0f, out, context_stride));
        };
    });
}

// Context only: flash-attention's online softmax over blocks of keys. Per
// query row it keeps the running max m, the running sum l of e^(s - m) and the
// unnormalised context; a larger max rescales both by e^(m_old - m_new).
// Scratch per thread: a tile of scores (tile x kKeyBlock) and of context (tile x D).
void attention_context_only(const AttentionShape& shape, const AttentionInputs& in, float* context,
                            int context_stride) {
    constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
    constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();
    const int Q = shape.n_queries, K = shape.n_keys, D = shape.head_dim;
    const int group = shape.n_heads / shape.n_kv_heads;
    const int first_visible = first_visible_key(shape, in.key_mask);
    const int tile = 64;
    const std::vector<Task> list = tasks(shape, tile);
    parallel_tasks(static_cast<int>(list.size()), [&] {
        struct Scratch {
            std::vector<float> scores, sums, maxes, accumulated;
            std::vector<uint8_t> poisoned;  // a NaN or +inf score: the row is NaN
        };
        auto scratch = std::make_shared<Scratch>();
        scratch->scores.resize(static_cast<size_t>(tile) * kKeyBlock);
        scratch->accumulated.resize(static_cast<size_t>(tile) * D);
        scratch->sums.resize(tile), scratch->maxes.resize(tile), scratch->poisoned.resize(tile);
        return [&, scratch](int i) {
            Scratch& s = *scratch;
            const auto [head, q0, q1] = list[i];
            const int rows = q1 - q0, kv_head = head / group;
            const int keys = visible_keys(shape, q1 - 1);
            const float* q = in.queries + static_cast<size_t>(q0) * in.query_stride + head * D;
            std::fill(s.accumulated.begin(), s.accumulated.end(), 0.0f);
            std::fill(s.sums.begin(), s.sums.end(), 0.0f);
            std::fill(s.maxes.begin(), s.maxes.end(), kNegativeInfinity);
            std::fill(s.poisoned.begin(), s.poisoned.end(), 0);
            for (int k0 = 0; k0 < keys; k0 += kKeyBlock) {
                const int block = std::min(kKeyBlock, keys - k0);
                float beta = 0.0f;
                const bool capped = shape.softcap > 0;
                if (in.score_bias && !capped) {
                    const float* bias =
                        in.score_bias + (static_cast<size_t>(head) * Q + q0) * K + k0;
                    for (int r = 0; r < rows; ++r)
                        std::copy(bias + static_cast<size_t>(r) * K,
                                  bias + static_cast<size_t>(r) * K + block,
                                  s.scores.data() + static_cast<size_t>(r) * kKeyBlock);
                    beta = 1.0f;
                }
                const float* k = in.keys + static_cast<size_t>(k0) * in.key_stride + kv_head * D;
                check_gemm(dnnl_sgemm('N', 'T', rows, block, D, 1.0f, q, in.query_stride, k,
                                      in.key_stride, beta, s.scores.data(), kKeyBlock));
                for (int r = 0; r < rows; ++r) {
                    float* row = s.scores.data() + static_cast<size_t>(r) * kKeyBlock;
                    if (capped)
                        soft_cap(
                            shape, row, block,
                            in.score_bias
                                ? in.score_bias + (static_cast<size_t>(head) * Q + q0 + r) * K + k0
                                : nullptr);
                    const RowMax stats = scale_mask_max(
                        row, block, capped ? 1.0f : shape.score_scale,
                        in.key_mask ? in.key_mask + k0 : nullptr, visible_keys(shape, q0 + r) - k0);
                    s.poisoned[r] |= stats.non_finite;
                    const float max = std::max(s.maxes[r], stats.max);
                    if (s.poisoned[r] || max == kNegativeInfinity) {
                        std::fill(row, row + block, 0.0f);  // adds nothing to the context
                        continue;
                    }
                    const float rescale = std::exp(s.maxes[r] - max);  // 0 when m was -inf
                    s.sums[r] = s.sums[r] * rescale + exp_shifted_sum(row, block, max);
                    if (rescale != 1.0f)
                        scale_row(s.accumulated.data() + static_cast<size_t>(r) * D, D, rescale);
                    s.maxes[r] = max;
                }
                const float* v =
                    in.values + static_cast<size_t>(k0) * in.value_stride + kv_head * D;
                check_gemm(dnnl_sgemm('N', 'N', rows, D, block, 1.0f, s.scores.data(), kKeyBlock, v,
                                      in.value_stride, 1.0f, s.accumulated.data(), D));
            }
            for (int r = 0; r < rows; ++r) {
                const int query = q0 + r;
                float* out = context + static_cast<size_t>(query) * context_stride + head * D;
                const float* acc = s.accumulated.data() + static_cast<size_t>(r) * D;
                if (s.poisoned[r]) {
                    std::fill(out, out + D, kNaN);
                } else if (s.maxes[r] == kNegativeInfinity) {
                    std::fill(out, out + D, sees_a_key(shape, first_visible, query) ? kNaN : 0.0f);
                } else {
                    const float inverse = 1.0f / s.sums[r];
                    for (int d = 0; d < D; ++d) out[d] = acc[d] * inverse;
                }
            }
        };
    });
}

}  // namespace

// The GEMMs are oneDNN's (row-major dnnl_sgemm), not OpenBLAS's: OpenBLAS
// maps a 128 MiB buffer for each thread that calls it, and when that mapping
// fails (under ulimit -v) its allocator retries forever. oneDNN's returns
// dnnl_out_of_memory instead, which becomes std::bad_alloc here. Called inside
// the OpenMP loop, each runs on its calling thread.
void attention(const AttentionShape& shape, const AttentionInputs& in, float* probs, float* context,
               int context_stride) {
    check_shape(shape);
    if (shape.n_queries == 0) return;
    if (probs)
        attention_with_probs(shape, in, probs, context, context_stride);
    else
        attention_context_only(shape, in, context, context_stride);
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
                const double score =
                    shape.softcap > 0
                        ? shape.softcap * std::tanh(shape.score_scale * dot / shape.softcap) +
                              shape.score_scale * bias
                        : shape.score_scale * (dot + bias);
                const bool masked =
                    (in.key_mask && !in.key_mask[key]) || (shape.causal && key > query + (K - Q));
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
