#include "serve/queries.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>

#include "attnviz/error.h"

namespace attnviz::serve {

MatrixRef matrix_ref(const AttentionTrace& trace, const std::string& block_name, int layer,
                     int head) {
    const AttentionBlock* block = nullptr;
    std::string names;
    for (const AttentionBlock& b : trace.blocks) {
        if (block_name.empty() ? block == nullptr : b.name == block_name) block = &b;
        names += (names.empty() ? "" : ", ") + b.name;
    }
    if (!block)
        throw Error("block: the trace has no block \"" + block_name + "\" (it has " + names + ")");
    // Model numbering in, the kept layer's and head's index out (a selective
    // capture keeps some: layer_ids, head_ids).
    const auto kept = [](const std::vector<int>& ids, int count, int wanted) {
        if (ids.empty()) return wanted >= 0 && wanted < count ? wanted : -1;
        const auto found = std::find(ids.begin(), ids.end(), wanted);
        return found == ids.end() ? -1 : static_cast<int>(found - ids.begin());
    };
    const auto listed = [](const std::vector<int>& ids, int count) {
        if (ids.empty()) return "0.." + std::to_string(count - 1);
        std::string text;
        for (int id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
        return text;
    };
    const int layer_index = kept(block->layer_ids, block->n_layers, layer);
    if (layer_index < 0)
        throw Error("layer " + std::to_string(layer) + " is not in this trace: block \"" +
                    block->name + "\" keeps layers " + listed(block->layer_ids, block->n_layers));
    int head_index = kMeanOfHeads;
    if (head != kMeanOfHeads) {
        head_index = kept(block->head_ids, block->n_heads, head);
        if (head_index < 0)
            throw Error("head " + std::to_string(head) + " is not in this trace: block \"" +
                        block->name + "\" keeps heads " + listed(block->head_ids, block->n_heads));
    }
    return {block, layer_index, head_index};
}

void read_row(const MatrixRef& matrix, int query, float* out) {
    const AttentionBlock& block = *matrix.block;
    const size_t n_keys = static_cast<size_t>(block.n_keys);
    if (matrix.head != kMeanOfHeads) {
        block.row(matrix.layer, matrix.head, query, out);
        return;
    }
    // The mean in double, rounded once: the same value whatever the head order.
    std::vector<double> sum(n_keys, 0.0);
    for (int head = 0; head < block.n_heads; ++head) {
        block.row(matrix.layer, head, query, out);
        for (size_t k = 0; k < n_keys; ++k) sum[k] += out[k];
    }
    for (size_t k = 0; k < n_keys; ++k) out[k] = static_cast<float>(sum[k] / block.n_heads);
}

namespace {
void check_range(int from, int to, int size, const char* what) {
    if (from < 0 || to > size || from >= to)
        throw Error(std::string(what) + " range " + std::to_string(from) + ".." +
                    std::to_string(to) + " is not within 0.." + std::to_string(size));
}
}  // namespace

std::vector<float> tile(const MatrixRef& matrix, int q0, int q1, int k0, int k1) {
    const AttentionBlock& block = *matrix.block;
    check_range(q0, q1, block.n_queries, "query");
    check_range(k0, k1, block.n_keys, "key");
    if (q1 - q0 > kMaxTileSide || k1 - k0 > kMaxTileSide)
        throw Error("a tile is at most " + std::to_string(kMaxTileSide) + " x " +
                    std::to_string(kMaxTileSide) + " cells");
    std::vector<float> row(static_cast<size_t>(block.n_keys));
    std::vector<float> out;
    out.reserve(static_cast<size_t>(q1 - q0) * (k1 - k0));
    for (int q = q0; q < q1; ++q) {
        read_row(matrix, q, row.data());
        out.insert(out.end(), row.begin() + k0, row.begin() + k1);
    }
    return out;
}

std::vector<TopKeys> top_keys(const MatrixRef& matrix, int q0, int q1, int k) {
    const AttentionBlock& block = *matrix.block;
    check_range(q0, q1, block.n_queries, "query");
    if (q1 - q0 > 4096) throw Error("at most 4096 queries at once");
    if (k < 1 || k > 256) throw Error("k must be between 1 and 256");
    const int kept = std::min(k, block.n_keys);
    std::vector<float> row(static_cast<size_t>(block.n_keys));
    std::vector<int> order(static_cast<size_t>(block.n_keys));
    std::vector<TopKeys> out;
    for (int q = q0; q < q1; ++q) {
        read_row(matrix, q, row.data());
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + kept, order.end(),
                          [&](int a, int b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
        TopKeys top;
        top.query = q;
        double total = 0, shown = 0;
        for (float p : row) total += p;
        for (int i = 0; i < kept; ++i) {
            top.keys.push_back(order[i]);
            top.probs.push_back(row[order[i]]);
            shown += row[order[i]];
        }
        // A sparse capture stores part of each row: the rest is what a whole
        // row (1, as softmax makes it) leaves.
        top.rest = std::max(0.0, (block.is_sparse() ? 1.0 : total) - shown);
        out.push_back(std::move(top));
    }
    return out;
}

std::vector<std::pair<int, int>> align_tokens(const TokenSequence& a, const TokenSequence& b) {
    const size_t n = a.tokens.size(), m = b.tokens.size();
    // Longest common subsequence by dynamic programming, from the end.
    std::vector<uint32_t> length((n + 1) * (m + 1), 0);
    const auto at = [m](size_t i, size_t j) { return i * (m + 1) + j; };
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            length[at(i, j)] = a.tokens[i].text == b.tokens[j].text
                                   ? length[at(i + 1, j + 1)] + 1
                                   : std::max(length[at(i + 1, j)], length[at(i, j + 1)]);
    std::vector<std::pair<int, int>> pairs;
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        if (a.tokens[i].text == b.tokens[j].text) {
            pairs.emplace_back(static_cast<int>(i++), static_cast<int>(j++));
        } else if (length[at(i + 1, j)] >= length[at(i, j + 1)]) {
            ++i;
        } else {
            ++j;
        }
    }
    return pairs;
}

std::vector<float> difference(const MatrixRef& a, const MatrixRef& b,
                              const std::vector<std::pair<int, int>>& query_pairs,
                              const std::vector<std::pair<int, int>>& key_pairs) {
    std::vector<float> row_a(static_cast<size_t>(a.block->n_keys)),
        row_b(static_cast<size_t>(b.block->n_keys));
    std::vector<float> out;
    out.reserve(query_pairs.size() * key_pairs.size());
    for (const auto& [qa, qb] : query_pairs) {
        read_row(a, qa, row_a.data());
        read_row(b, qb, row_b.data());
        for (const auto& [ka, kb] : key_pairs) out.push_back(row_b[kb] - row_a[ka]);
    }
    return out;
}

std::string base64_floats(const std::vector<float>& values) {
    static_assert(std::endian::native == std::endian::little, "float32 little-endian");
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
    const size_t size = values.size() * sizeof(float);
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < size; i += 3) {
        const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i < size) {
        const uint32_t v = (bytes[i] << 16) | (i + 1 < size ? bytes[i + 1] << 8 : 0);
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

}  // namespace attnviz::serve
