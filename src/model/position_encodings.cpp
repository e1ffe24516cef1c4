#include "model/position_encodings.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>

#include "attnviz/error.h"

namespace attnviz {

namespace {

// A setting outside (0, inf) would make some angle infinite or NaN.
double positive(const model::ConfigReader& reader, const char* key,
                std::optional<double> fallback = {}) {
    const double value = reader.number({key}, fallback);
    if (!(value > 0) || !std::isfinite(value))
        throw Error(reader.file() + ": \"" + reader.key_name({key}) + "\" is " +
                    nlohmann::json(value).dump() + "; rotary embeddings need a positive number");
    return value;
}

}  // namespace

RopeConfig read_rope_config(const model::ConfigReader& reader, int head_dim, int max_positions) {
    RopeConfig rope;
    rope.rotary_dim = head_dim;
    rope.theta = positive(reader, "rope_theta", 10000.0);
    rope.max_positions = max_positions;
    const std::optional<model::ConfigReader> scaling = reader.object("rope_scaling");
    if (!scaling) return rope;
    // "type" is the older spelling of "rope_type"
    rope.type = scaling->string({"rope_type", "type"});
    if (rope.type == "default") return rope;
    if (rope.type != "linear" && rope.type != "dynamic" && rope.type != "llama3")
        throw Error(reader.file() + ": rope_scaling type \"" + rope.type +
                    "\" is not supported (supported: default, linear, dynamic, llama3)");
    rope.factor = positive(*scaling, "factor");
    if (rope.type == "dynamic") {
        if (max_positions < 1)
            throw Error(reader.file() + ": \"max_position_embeddings\" is " +
                        std::to_string(max_positions) +
                        "; dynamic rope_scaling needs a positive one");
        if (head_dim <= 2)
            throw Error(reader.file() + ": head_dim " + std::to_string(head_dim) +
                        " is too small for dynamic rope_scaling (it divides by head_dim - 2)");
    }
    if (rope.type == "llama3") {
        rope.low_freq_factor = positive(*scaling, "low_freq_factor");
        rope.high_freq_factor = positive(*scaling, "high_freq_factor");
        if (!(rope.low_freq_factor < rope.high_freq_factor))
            throw Error(reader.file() + ": \"rope_scaling.low_freq_factor\" (" +
                        nlohmann::json(rope.low_freq_factor).dump() +
                        ") must be less than \"rope_scaling.high_freq_factor\" (" +
                        nlohmann::json(rope.high_freq_factor).dump() + ")");
        rope.original_max_positions = scaling->integer({"original_max_position_embeddings"});
        if (rope.original_max_positions < 1)
            throw Error(reader.file() + ": \"rope_scaling.original_max_position_embeddings\" is " +
                        std::to_string(rope.original_max_positions) + ", not a positive length");
    }
    return rope;
}

// modeling_rope_utils.py: 1 / base ** (arange(0, dim, 2).float() / dim), all in float32
static std::vector<float> default_inverse_frequencies(double base, int dim) {
    std::vector<float> inv_freq(dim / 2);
    const float base_f = static_cast<float>(base);
    for (int i = 0; i < dim / 2; ++i) {
        float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
        inv_freq[i] = 1.0f / std::pow(base_f, exponent);
    }
    return inv_freq;
}

std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, int seq_len) {
    const int dim = rope.rotary_dim;
    if (rope.type == "linear") {
        std::vector<float> inv_freq = default_inverse_frequencies(rope.theta, dim);
        for (float& f : inv_freq) f /= static_cast<float>(rope.factor);
        return inv_freq;
    }
    if (rope.type == "dynamic") {
        // NTK-aware: the base grows once the sequence outgrows max_position_embeddings
        double base = rope.theta;
        if (seq_len > rope.max_positions) {
            double growth = rope.factor * seq_len / rope.max_positions - (rope.factor - 1.0);
            base *= std::pow(growth, static_cast<double>(dim) / (dim - 2));
        }
        return default_inverse_frequencies(base, dim);
    }
    std::vector<float> inv_freq = default_inverse_frequencies(rope.theta, dim);
    if (rope.type != "llama3") return inv_freq;
    // Llama 3.1: long wavelengths are divided by factor, short ones kept, the band
    // between them blended.
    const float factor = static_cast<float>(rope.factor);
    const float low = static_cast<float>(rope.low_freq_factor);
    const float high = static_cast<float>(rope.high_freq_factor);
    const float old_len = static_cast<float>(rope.original_max_positions);
    const float low_freq_wavelen =
        static_cast<float>(rope.original_max_positions / rope.low_freq_factor);
    const float high_freq_wavelen =
        static_cast<float>(rope.original_max_positions / rope.high_freq_factor);
    const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
    for (float& f : inv_freq) {
        float wavelen = two_pi / f;
        float scaled = wavelen > low_freq_wavelen ? f / factor : f;
        bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        if (medium) {
            float smooth = (old_len / wavelen - low) / (high - low);
            scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
        }
        f = scaled;
    }
    return inv_freq;
}

RopeTables rope_tables(const RopeConfig& rope, int seq_len) {
    std::vector<float> inv_freq = rope_inverse_frequencies(rope, seq_len);
    const int dim = rope.rotary_dim, half = dim / 2;
    RopeTables tables{seq_len, dim, std::vector<float>(static_cast<size_t>(seq_len) * dim),
                      std::vector<float>(static_cast<size_t>(seq_len) * dim)};
    for (int position = 0; position < seq_len; ++position) {
        for (int i = 0; i < half; ++i) {
            // the angle is rounded to float before cos/sin, as torch does
            float angle = static_cast<float>(position) * inv_freq[i];
            float c = static_cast<float>(std::cos(static_cast<double>(angle)));
            float s = static_cast<float>(std::sin(static_cast<double>(angle)));
            size_t row = static_cast<size_t>(position) * dim;
            tables.cos[row + i] = tables.cos[row + i + half] = c;
            tables.sin[row + i] = tables.sin[row + i + half] = s;
        }
    }
    return tables;
}

void apply_rope(float* x, int stride, int seq_len, int n_heads, int head_dim,
                const RopeTables& tables) {
    const int half = head_dim / 2;
    for (int position = 0; position < seq_len; ++position) {
        const float* cos = tables.cos.data() + static_cast<size_t>(position) * head_dim;
        const float* sin = tables.sin.data() + static_cast<size_t>(position) * head_dim;
        for (int head = 0; head < n_heads; ++head) {
            float* v = x + static_cast<size_t>(position) * stride + head * head_dim;
            for (int i = 0; i < half; ++i) {
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * cos[i] + (-x2) * sin[i];
                v[i + half] = x2 * cos[i + half] + x1 * sin[i + half];
            }
        }
    }
}

int t5_relative_position_bucket(int relative_position, bool bidirectional, int num_buckets,
                                int max_distance) {
    int bucket = 0;
    if (bidirectional) {
        num_buckets /= 2;
        if (relative_position > 0) bucket += num_buckets;
        relative_position = std::abs(relative_position);
    } else {
        relative_position = relative_position < 0 ? -relative_position : 0;
    }
    const int max_exact = num_buckets / 2;
    if (relative_position < max_exact) return bucket + relative_position;
    // float32 throughout, then truncation, as modeling_t5.py's tensor expression does
    float ratio = static_cast<float>(relative_position) / static_cast<float>(max_exact);
    float scaled = std::log(ratio) /
                   static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                   static_cast<float>(num_buckets - max_exact);
    int64_t large = max_exact + static_cast<int64_t>(scaled);
    if (large > num_buckets - 1) large = num_buckets - 1;
    return bucket + static_cast<int>(large);
}

std::vector<float> sinusoidal_positions(int n_positions, int dim) {
    std::vector<float> table(static_cast<size_t>(n_positions) * dim);
    const int sentinel = dim % 2 == 0 ? dim / 2 : dim / 2 + 1;
    for (int position = 0; position < n_positions; ++position) {
        float* row = table.data() + static_cast<size_t>(position) * dim;
        for (int j = 0; j < dim; ++j) {
            // numpy, in double: pos / 10000 ** (2 * (j // 2) / dim)
            double angle = position / std::pow(10000.0, 2.0 * (j / 2) / dim);
            if (j % 2 == 0)
                row[j / 2] = static_cast<float>(std::sin(angle));
            else
                row[sentinel + j / 2] = static_cast<float>(std::cos(angle));
        }
    }
    return table;
}

}  // namespace attnviz
