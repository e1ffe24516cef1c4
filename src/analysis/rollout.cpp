// Attention rollout (Abnar & Zuidema 2020, eq. 1 and their
// compute_joint_attention): each layer's heads fused to one matrix, the
// residual connection added as I, rows renormalised, then multiplied from
// the first layer up.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

std::vector<float> residual_attention(const AttentionBlock& block, const RolloutOptions& options) {
    require_dense(block, "rollout and flow");
    if (block.n_queries != block.n_keys || block.query_sequence != block.key_sequence)
        throw Error("rollout and flow need self-attention; block \"" + block.name + "\" is " +
                    std::to_string(block.n_queries) + " queries by " +
                    std::to_string(block.n_keys) + " keys of another sequence");
    if (!(options.discard_ratio >= 0 && options.discard_ratio < 1))
        throw Error("discard ratio must be in [0, 1), not " +
                    std::to_string(options.discard_ratio));
    const int n = block.n_queries;
    const size_t map_size = static_cast<size_t>(n) * n;
    std::vector<float> out;
    out.reserve(map_size * block.n_layers);
    const Reduce how = options.fusion == HeadFusion::mean ? Reduce::mean : Reduce::max;
    std::vector<float> fused = reduce_heads(block, how);
    const size_t discard = static_cast<size_t>(std::floor(options.discard_ratio * map_size));
    std::vector<uint32_t> order(map_size);
    for (int layer = 0; layer < block.n_layers; ++layer) {
        float* a = fused.data() + map_size * layer;
        if (discard > 0) {  // the lowest entries, ties to the lower index
            std::iota(order.begin(), order.end(), 0u);
            std::nth_element(
                order.begin(), order.begin() + static_cast<long>(discard - 1), order.end(),
                [a](uint32_t x, uint32_t y) { return a[x] < a[y] || (a[x] == a[y] && x < y); });
            for (size_t k = 0; k < discard; ++k) a[order[k]] = 0.0f;
        }
        for (int i = 0; i < n; ++i) {
            float* row = a + static_cast<size_t>(i) * n;
            row[i] += 1.0f;
            double sum = 0;
            for (int j = 0; j < n; ++j) sum += row[j];
            for (int j = 0; j < n; ++j) row[j] = static_cast<float>(row[j] / sum);
        }
    }
    return fused;
}

std::vector<float> rollout(const AttentionBlock& block, const RolloutOptions& options) {
    const std::vector<float> a = residual_attention(block, options);
    const int n = block.n_queries, L = block.n_layers;
    const size_t map_size = static_cast<size_t>(n) * n;
    std::vector<float> out(a.begin(), a.begin() + static_cast<long>(map_size));
    out.resize(map_size * L);
    std::vector<double> row(static_cast<size_t>(n));
    for (int layer = 1; layer < L; ++layer) {
        const float* al = a.data() + map_size * layer;
        const float* previous = out.data() + map_size * (layer - 1);
        float* current = out.data() + map_size * layer;
        for (int i = 0; i < n; ++i) {
            std::fill(row.begin(), row.end(), 0.0);
            for (int k = 0; k < n; ++k) {
                const double w = al[static_cast<size_t>(i) * n + k];
                if (w == 0) continue;
                const float* p = previous + static_cast<size_t>(k) * n;
                for (int j = 0; j < n; ++j) row[static_cast<size_t>(j)] += w * p[j];
            }
            for (int j = 0; j < n; ++j)
                current[static_cast<size_t>(i) * n + j] =
                    static_cast<float>(row[static_cast<size_t>(j)]);
        }
    }
    return out;
}

}  // namespace attnviz::analysis
