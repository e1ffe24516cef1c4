#include "model/fused_qkv.h"

#include <cstddef>

namespace attnviz::model {

std::vector<runtime::LinearPart> grouped_qkv_parts(const float* weight, const float* bias, int in,
                                                   int n_groups, int queries_per_group,
                                                   int head_dim) {
    const int group_rows = (queries_per_group + 2) * head_dim;
    const auto part = [&](int group, int head_in_group, int heads) {
        const size_t row =
            static_cast<size_t>(group) * group_rows + static_cast<size_t>(head_in_group) * head_dim;
        return runtime::LinearPart{weight + row * in, bias ? bias + row : nullptr,
                                   heads * head_dim};
    };
    std::vector<runtime::LinearPart> parts;
    for (int group = 0; group < n_groups; ++group)  // queries
        parts.push_back(part(group, 0, queries_per_group));
    for (int slot : {queries_per_group, queries_per_group + 1})  // keys, then values
        for (int group = 0; group < n_groups; ++group) parts.push_back(part(group, slot, 1));
    return parts;
}

}  // namespace attnviz::model
