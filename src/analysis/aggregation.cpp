// Aggregation: mean or max of attention maps over heads, layers or a chosen
// set of (layer, head) maps.
#include <algorithm>
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

bool has_full_attention(const AttentionBlock& block) {
    const size_t expected =
        static_cast<size_t>(block.n_layers) * block.n_heads * block.n_queries * block.n_keys;
    return block.probs.size() == expected && expected > 0 && !block.capture.sparse() &&
           !block.capture.fp16;
}

void require_dense(const AttentionBlock& block, const char* what) {
    if (!has_full_attention(block))
        throw Error(std::string(what) + " needs the full attention of block \"" + block.name +
                    "\" (every probability, fp32): drop --top-k, --top-mass and --fp16");
}

namespace {

void check_index(int index, int limit, const char* what) {
    if (index < 0 || index >= limit)
        throw Error(std::string(what) + " " + std::to_string(index) + " is outside 0.." +
                    std::to_string(limit - 1));
}

// out = reduce(out, map) over one [queries][keys] map.
void fold(std::vector<float>& out, const float* map, Reduce how, bool first) {
    if (first) {
        std::copy(map, map + out.size(), out.begin());
    } else if (how == Reduce::mean) {
        for (size_t i = 0; i < out.size(); ++i) out[i] += map[i];
    } else {
        for (size_t i = 0; i < out.size(); ++i) out[i] = std::max(out[i], map[i]);
    }
}

std::vector<float> reduce_maps(const AttentionBlock& block, Reduce how,
                               const std::vector<HeadRef>& set) {
    require_dense(block, "aggregation");
    if (set.empty()) throw Error("aggregation: no attention maps chosen");
    const size_t map_size = static_cast<size_t>(block.n_queries) * block.n_keys;
    std::vector<float> out(map_size);
    for (size_t i = 0; i < set.size(); ++i) {
        check_index(set[i].layer, block.n_layers, "layer");
        check_index(set[i].head, block.n_heads, "head");
        fold(out, block.probs.data() + block.index(set[i].layer, set[i].head, 0, 0), how, i == 0);
    }
    if (how == Reduce::mean) {
        const float n = static_cast<float>(set.size());
        for (float& v : out) v /= n;
    }
    return out;
}

std::vector<int> all_or(const std::vector<int>& chosen, int n) {
    if (!chosen.empty()) return chosen;
    std::vector<int> all(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    return all;
}

}  // namespace

std::vector<float> reduce_set(const AttentionBlock& block, Reduce how,
                              const std::vector<HeadRef>& set) {
    return reduce_maps(block, how, set);
}

std::vector<float> reduce_heads(const AttentionBlock& block, Reduce how,
                                const std::vector<int>& heads) {
    const std::vector<int> chosen = all_or(heads, block.n_heads);
    std::vector<float> out;
    for (int layer = 0; layer < block.n_layers; ++layer) {
        std::vector<HeadRef> set;
        for (int head : chosen) set.push_back({layer, head});
        const std::vector<float> map = reduce_maps(block, how, set);
        out.insert(out.end(), map.begin(), map.end());
    }
    return out;
}

std::vector<float> reduce_layers(const AttentionBlock& block, Reduce how,
                                 const std::vector<int>& layers) {
    const std::vector<int> chosen = all_or(layers, block.n_layers);
    std::vector<float> out;
    for (int head = 0; head < block.n_heads; ++head) {
        std::vector<HeadRef> set;
        for (int layer : chosen) set.push_back({layer, head});
        const std::vector<float> map = reduce_maps(block, how, set);
        out.insert(out.end(), map.begin(), map.end());
    }
    return out;
}

}  // namespace attnviz::analysis
