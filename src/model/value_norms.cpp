#include "model/value_norms.h"

#include <cmath>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "model/arch_blocks.h"

namespace attnviz::model {

void start_value_norms(AttentionBlock& block, bool keep) {
    if (keep)
        block.value_norms.assign(static_cast<size_t>(block.n_layers) * block.n_heads * block.n_keys,
                                 0.0f);
}

void keep_value_norms(AttentionBlock& block, int layer, const float* values, int value_stride,
                      int head_dim, int n_kv_heads, const runtime::Linear& out_proj) {
    if (!block.has_value_norms()) return;
    const int kept = kept_layer(block, layer);  // a capture may keep some layers and heads only
    if (kept < 0) return;
    const int H = block.n_model_heads, K = block.n_keys, width = H * head_dim, out = out_proj.out();
    if (out_proj.in() != width)
        throw Error("value norms: the output projection takes " + std::to_string(out_proj.in()) +
                    " inputs, not " + std::to_string(width));
    const int group = H / n_kv_heads;
    // f_h(x_k) = [0 .. v_k^h .. 0] W_O^T: the projection of a context holding
    // only head h's value, less the bias (the projection of zeros).
    std::vector<float> zero(static_cast<size_t>(width), 0.0f), bias(static_cast<size_t>(out));
    out_proj.forward(zero.data(), bias.data(), 1);
    std::vector<float> context(static_cast<size_t>(K) * width, 0.0f);
    std::vector<float> projected(static_cast<size_t>(K) * out);
    for (int head = 0; head < H; ++head) {
        const int kept_h = kept_head(block, head);
        if (kept_h < 0) continue;
        const int source = head / group;
        for (int k = 0; k < K; ++k) {
            float* row = context.data() + static_cast<size_t>(k) * width;
            std::fill(row, row + width, 0.0f);
            const float* v = values + static_cast<size_t>(k) * value_stride + source * head_dim;
            std::copy(v, v + head_dim, row + head * head_dim);
        }
        out_proj.forward(context.data(), projected.data(), K);
        float* norms =
            block.value_norms.data() +
            (static_cast<size_t>(kept) * block.n_heads + kept_h) * static_cast<size_t>(K);
        for (int k = 0; k < K; ++k) {
            const float* y = projected.data() + static_cast<size_t>(k) * out;
            double sum = 0;
            for (int i = 0; i < out; ++i) {
                const double d = static_cast<double>(y[i]) - bias[static_cast<size_t>(i)];
                sum += d * d;
            }
            norms[k] = static_cast<float>(std::sqrt(sum));
        }
    }
}

}  // namespace attnviz::model
