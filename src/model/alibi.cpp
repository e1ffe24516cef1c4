#include "model/alibi.h"

#include <cmath>
#include <cstring>

namespace attnviz::model {

namespace {

// Round to the nearest bfloat16, ties to even (torch's float -> bfloat16).
float round_to_bfloat16(float x) {
    if (std::isnan(x)) return x;
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    bits &= 0xffff0000u;
    std::memcpy(&x, &bits, sizeof bits);
    return x;
}

}  // namespace

std::vector<float> alibi_slopes(int n_heads) {
    int closest_power_of_2 = 1;
    while (closest_power_of_2 * 2 <= n_heads) closest_power_of_2 *= 2;
    // base in double, rounded to float32 (torch.tensor(python float, float32)); powers in float32
    const auto base_of = [](int n) {
        return static_cast<float>(std::pow(2.0, -std::pow(2.0, -(std::log2(double(n)) - 3))));
    };
    std::vector<float> slopes;
    const float base = base_of(closest_power_of_2);
    for (int power = 1; power <= closest_power_of_2; ++power)
        slopes.push_back(std::pow(base, static_cast<float>(power)));
    if (closest_power_of_2 != n_heads) {
        const float extra_base = base_of(2 * closest_power_of_2);
        const int remaining = std::min(closest_power_of_2, n_heads - closest_power_of_2);
        for (int i = 0; i < remaining; ++i)
            slopes.push_back(std::pow(extra_base, static_cast<float>(2 * i + 1)));
    }
    return slopes;
}

std::vector<float> alibi_bias(int n_heads, int n_tokens, const uint8_t* key_mask,
                              AlibiRounding rounding, float factor) {
    std::vector<float> positions(static_cast<size_t>(n_tokens));
    int visible = 0;
    for (int k = 0; k < n_tokens; ++k) {
        const bool shown = !key_mask || key_mask[k];
        visible += shown;
        positions[static_cast<size_t>(k)] = shown ? static_cast<float>(visible - 1) : 0.0f;
    }
    const std::vector<float> slopes = alibi_slopes(n_heads);
    const size_t square = static_cast<size_t>(n_tokens) * n_tokens;
    std::vector<float> bias(static_cast<size_t>(n_heads) * square);
    for (int h = 0; h < n_heads; ++h) {
        float* head = bias.data() + h * square;
        for (int k = 0; k < n_tokens; ++k) {
            float value = rounding == AlibiRounding::bfloat16
                              ? round_to_bfloat16(round_to_bfloat16(slopes[h]) * positions[k])
                              : slopes[h] * positions[k];
            head[k] = value * factor;
        }
        for (int q = 1; q < n_tokens; ++q)
            std::memcpy(head + static_cast<size_t>(q) * n_tokens, head, sizeof(float) * n_tokens);
    }
    return bias;
}

}  // namespace attnviz::model
