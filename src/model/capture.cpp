#include "model/capture.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "attnviz/error.h"

namespace attnviz::model {

void select_row(const float* row, int n_keys, const CaptureOptions& capture,
                std::vector<int32_t>& keys) {
    keys.clear();
    if (n_keys <= 0) return;
    if (std::isnan(row[0])) {  // runtime::attention writes a row NaN throughout or not at all
        keys.push_back(0);
        return;
    }
    for (int key = 0; key < n_keys; ++key)
        if (row[key] != 0.0f) keys.push_back(key);
    // larger first; of equals, the lower key
    const auto before = [row](int32_t a, int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
    };
    const size_t limit = capture.top_k > 0 ? static_cast<size_t>(capture.top_k) : keys.size();
    if (capture.top_mass <= 0) {
        if (keys.size() > limit) {
            std::nth_element(keys.begin(), keys.begin() + static_cast<ptrdiff_t>(limit), keys.end(),
                             before);
            keys.resize(limit);
        }
    } else {
        // The largest m in order, m growing fourfold until the mass is reached:
        // rows are mostly peaked, so a full sort is rare.
        size_t sorted = 0, m = std::min<size_t>(32, keys.size());
        double mass = 0;
        size_t kept = 0;
        bool reached = false;
        while (true) {
            if (m < keys.size())
                std::nth_element(keys.begin() + static_cast<ptrdiff_t>(sorted),
                                 keys.begin() + static_cast<ptrdiff_t>(m), keys.end(), before);
            std::sort(keys.begin() + static_cast<ptrdiff_t>(sorted),
                      keys.begin() + static_cast<ptrdiff_t>(m), before);
            for (; kept < m && kept < limit && !reached; ++kept) {
                mass += row[keys[kept]];
                reached = mass >= capture.top_mass;
            }
            if (reached || kept >= limit || m == keys.size()) break;
            sorted = m;
            m = std::min(keys.size(), m * 4);
        }
        keys.resize(kept);
    }
    std::sort(keys.begin(), keys.end());
}

// IEEE binary16, rounded to nearest even (as a hardware conversion does), in
// software: _Float16 is not available on every target the project builds for.
uint16_t float_to_half(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u)  // inf, or NaN (kept quiet, with its top payload bits)
        return sign | 0x7c00u |
               (magnitude > 0x7f800000u ? 0x200u | ((magnitude >> 13) & 0x3ffu) : 0u);
    if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to inf
    if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal step of 2^-24 (or zero)
        float below;
        std::memcpy(&below, &magnitude, sizeof below);
        return sign | static_cast<uint16_t>(std::nearbyint(below * 16777216.0f));
    }
    // Rebias the exponent (127 -> 15) and keep 10 of 23 mantissa bits; a carry
    // out of the mantissa correctly bumps the exponent.
    uint32_t half = (magnitude - 0x38000000u) >> 13;
    const uint32_t rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
    return sign | static_cast<uint16_t>(half);
}

void check_capture(const CaptureOptions& capture, int n_layers, int n_heads,
                   const std::string& block_name) {
    const auto check = [&](const std::vector<int>& ids, int count, const char* flag,
                           const char* what) {
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || ids[i] >= count)
                throw Error(std::string(flag) + " " + std::to_string(ids[i]) + ": the \"" +
                            block_name + "\" attention has " + std::to_string(count) + " " + what +
                            " (0 to " + std::to_string(count - 1) + ")");
            if (i > 0 && ids[i] <= ids[i - 1])
                throw Error(std::string(flag) + ": give each " +
                            std::string(what).substr(0, std::string(what).size() - 1) +
                            " once, in ascending order");
        }
    };
    check(capture.layers, n_layers, "--layers", "layers");
    check(capture.heads, n_heads, "--heads", "heads");
    if (capture.top_k < 0) throw Error("--top-k " + std::to_string(capture.top_k) + ": not >= 0");
    if (!(capture.top_mass >= 0 && capture.top_mass <= 1))
        throw Error("--top-mass " + std::to_string(capture.top_mass) + ": not in (0, 1]");
}

}  // namespace attnviz::model
