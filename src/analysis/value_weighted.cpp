// Value-weighted attention (Kobayashi et al. 2020, "Attention is not only a
// weight"): ‖α_ij f_h(x_j)‖ = α_ij ‖f_h(x_j)‖ since α_ij >= 0, from the
// norms the forward kept (AttentionBlock::value_norms).
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

namespace {

void require_value_norms(const AttentionBlock& block) {
    require_dense(block, "value-weighted attention");
    const size_t expected = static_cast<size_t>(block.n_layers) * block.n_heads * block.n_keys;
    if (block.value_norms.size() != expected)
        throw Error("value-weighted attention needs the value norms of block \"" + block.name +
                    "\": run with --value-norms (RunOptions::keep_value_norms)");
}

}  // namespace

std::vector<float> value_weighted(const AttentionBlock& block) {
    require_value_norms(block);
    std::vector<float> out(block.probs.size());
    const int K = block.n_keys;
    for (int layer = 0; layer < block.n_layers; ++layer)
        for (int head = 0; head < block.n_heads; ++head) {
            const float* norms =
                block.value_norms.data() +
                (static_cast<size_t>(layer) * block.n_heads + head) * static_cast<size_t>(K);
            for (int q = 0; q < block.n_queries; ++q) {
                const size_t row = block.index(layer, head, q, 0);
                for (int k = 0; k < K; ++k) out[row + k] = block.probs[row + k] * norms[k];
            }
        }
    return out;
}

std::vector<float> value_weighted_layer(const AttentionBlock& block) {
    const std::vector<float> per_head = value_weighted(block);
    const size_t map_size = static_cast<size_t>(block.n_queries) * block.n_keys;
    std::vector<float> out(map_size * block.n_layers, 0.0f);
    for (int layer = 0; layer < block.n_layers; ++layer)
        for (int head = 0; head < block.n_heads; ++head) {
            const float* map = per_head.data() + block.index(layer, head, 0, 0);
            float* sum = out.data() + map_size * layer;
            for (size_t i = 0; i < map_size; ++i) sum[i] += map[i];
        }
    return out;
}

}  // namespace attnviz::analysis
