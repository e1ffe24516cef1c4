#include "viz/codec.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "attnviz/error.h"

namespace attnviz::viz {

std::string escape_html(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

namespace {
// Length of the valid UTF-8 sequence at text[i], or 0.
size_t utf8_length(std::string_view text, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = lead < 0x80           ? 1
                    : (lead >> 5) == 0x6  ? 2
                    : (lead >> 4) == 0xE  ? 3
                    : (lead >> 3) == 0x1E ? 4
                                          : 0;
    if (length == 0 || i + length > text.size()) return 0;
    uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        code = (code << 6) | (byte(i + k) & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return length;
}
}  // namespace

std::string valid_text(std::string_view text) {
    std::string valid;
    valid.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const size_t length = utf8_length(text, i);
        const unsigned char lead = static_cast<unsigned char>(text[i]);
        if (length == 0 || (lead < 0x20 && lead != '\t' && lead != '\n' && lead != '\r')) {
            valid += "\xEF\xBF\xBD";  // U+FFFD
            i += length ? length : 1;
        } else {
            valid.append(text.substr(i, length));
            i += length;
        }
    }
    return valid;
}

std::string escape_xml(std::string_view text) { return escape_html(valid_text(text)); }

std::string escape_json_for_script(std::string_view json) {
    std::string out;
    out.reserve(json.size() + json.size() / 16);
    for (size_t i = 0; i < json.size(); ++i) {
        const char c = json[i];
        if (c == '<') {
            out += "\\u003c";
        } else if (c == '>') {
            out += "\\u003e";
        } else if (c == '&') {
            out += "\\u0026";
        } else if (c == '\xE2' && i + 2 < json.size() && json[i + 1] == '\x80' &&
                   (json[i + 2] == '\xA8' || json[i + 2] == '\xA9')) {
            out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

namespace {
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::span<const uint8_t> bytes) {
    std::string out((bytes.size() + 2) / 3 * 4, '=');
    size_t o = 0, i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v =
            (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
        out[o++] = kBase64Alphabet[(v >> 18) & 63];
        out[o++] = kBase64Alphabet[(v >> 12) & 63];
        out[o++] = kBase64Alphabet[(v >> 6) & 63];
        out[o++] = kBase64Alphabet[v & 63];
    }
    if (i < bytes.size()) {
        uint32_t v = uint32_t{bytes[i]} << 16;
        if (i + 1 < bytes.size()) v |= uint32_t{bytes[i + 1]} << 8;
        out[o++] = kBase64Alphabet[(v >> 18) & 63];
        out[o++] = kBase64Alphabet[(v >> 12) & 63];
        if (i + 1 < bytes.size()) out[o++] = kBase64Alphabet[(v >> 6) & 63];
    }
    return out;
}

std::vector<uint8_t> base64_decode(std::string_view text) {
    std::vector<uint8_t> out;
    out.reserve(text.size() / 4 * 3);
    uint32_t accumulator = 0;
    int bits = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '=') break;
        const char* where = std::find(kBase64Alphabet, kBase64Alphabet + 64, c);
        if (where == kBase64Alphabet + 64)
            throw Error("invalid base64 character at byte " + std::to_string(i));
        accumulator = (accumulator << 6) | static_cast<uint32_t>(where - kBase64Alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>((accumulator >> bits) & 0xFF));
        }
    }
    return out;
}

// libdeflate: the same zlib format as zlib's compress2, two to three times faster.
std::vector<uint8_t> deflate_bytes(std::span<const uint8_t> bytes, int level) {
    std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> compressor(
        libdeflate_alloc_compressor(std::clamp(level, 1, 12)), libdeflate_free_compressor);
    if (!compressor) throw Error("libdeflate could not make a compressor");
    std::vector<uint8_t> out(libdeflate_zlib_compress_bound(compressor.get(), bytes.size()));
    const size_t size = libdeflate_zlib_compress(compressor.get(), bytes.data(), bytes.size(),
                                                 out.data(), out.size());
    if (size == 0)
        throw Error("libdeflate could not compress " + std::to_string(bytes.size()) + " bytes");
    out.resize(size);
    return out;
}

std::vector<uint8_t> inflate_bytes(std::span<const uint8_t> bytes) {
    z_stream stream{};
    if (inflateInit(&stream) != Z_OK) throw Error("zlib inflateInit failed");
    std::vector<uint8_t> out;
    std::vector<uint8_t> chunk(1 << 16);
    stream.next_in = const_cast<Bytef*>(bytes.data());
    stream.avail_in = static_cast<uInt>(bytes.size());
    int status = Z_OK;
    while (status == Z_OK) {
        stream.next_out = chunk.data();
        stream.avail_out = static_cast<uInt>(chunk.size());
        status = inflate(&stream, Z_NO_FLUSH);
        const size_t produced = chunk.size() - stream.avail_out;
        out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(produced));
        if (status == Z_BUF_ERROR && stream.avail_in == 0) break;
    }
    inflateEnd(&stream);
    if (status != Z_STREAM_END)
        throw Error("corrupt deflate stream at byte " + std::to_string(stream.total_in));
    return out;
}

void quantize_rows(const float* probs, size_t n_rows, size_t n_cols, uint8_t* levels,
                   float* row_max) {
    for (size_t row = 0; row < n_rows; ++row) {
        const float* p = probs + row * n_cols;
        uint8_t* level = levels + row * n_cols;
        float top = 0.0f;
        for (size_t col = 0; col < n_cols; ++col) top = std::max(top, p[col]);
        row_max[row] = top;
        const float to_level = top > 0.0f ? 255.0f / top : 0.0f;
        for (size_t col = 0; col < n_cols; ++col) {
            const float v = p[col] * to_level;
            level[col] = v > 0.0f ? static_cast<uint8_t>(std::min(v, 255.0f) + 0.5f) : 0;  // NaN: 0
        }
    }
}

namespace {
// 10^k for k in [-60, 60], each the double nearest to it (strtod is correctly rounded).
const std::array<double, 121>& powers_of_ten() {
    static const std::array<double, 121> table = [] {
        std::array<double, 121> out{};
        for (int k = -60; k <= 60; ++k)
            out[static_cast<size_t>(k + 60)] =
                std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
        return out;
    }();
    return table;
}
double power_of_ten(int k) { return powers_of_ten()[static_cast<size_t>(k + 60)]; }
}  // namespace

uint16_t decimal3_code(float value) {
    if (value == 0.0f) return 0;  // +0 and -0
    if (!(value > 0.0f) || !std::isfinite(value)) return kNotAProbabilityCode;
    // Most weights of a long input are here, well below what rounds to 0.00100
    // (0.000995): skip the logarithm.
    if (value < 0.00099f) return kBelowThousandthCode;
    const double exact = value;                                       // every float is a double
    int scale = static_cast<int>(std::floor(std::log10(exact))) - 2;  // m = exact / 10^scale
    double scaled = exact / power_of_ten(scale);
    if (scaled >= 1000.0) scaled = exact / power_of_ten(++scale);
    if (scaled < 100.0) scaled = exact / power_of_ten(--scale);
    double mantissa = std::nearbyint(scaled);  // half to even, as printf
    // Within 1e-6 of a tie the division's rounding could decide: let printf,
    // which rounds the exact binary value, decide instead.
    if (std::fabs(scaled - std::floor(scaled) - 0.5) < 1e-6) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2e", exact);  // "d.dde±x"
        mantissa = (text[0] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0');
        scale = std::atoi(text + 5) - 2;
    } else if (mantissa >= 1000.0) {
        mantissa = 100.0;
        ++scale;
    }
    if (scale < -5) return kBelowThousandthCode;  // rounds below 0.00100
    const int biased = scale + kDecimalExponentBias;
    if (biased > 63) return kNotAProbabilityCode;
    return static_cast<uint16_t>((biased << 10) | static_cast<int>(mantissa));
}

double decimal3_value(uint16_t code) {
    if (code == 0) return 0.0;
    const int mantissa = code & 1023, scale = (code >> 10) - kDecimalExponentBias;
    if (mantissa < 100 || mantissa > 999) return std::nan("");
    return std::strtod((std::to_string(mantissa) + "e" + std::to_string(scale)).c_str(), nullptr);
}

void decimal3_planes(const float* values, size_t n, uint8_t* out) {
    for (size_t i = 0; i < n; ++i) {
        const uint16_t code = decimal3_code(values[i]);
        out[i] = static_cast<uint8_t>(code >> 8);
        out[n + i] = static_cast<uint8_t>(code & 0xFF);
    }
}

void quantize_vectors(const float* vectors, size_t n_vectors, size_t dim, int8_t* values,
                      float* scales) {
    for (size_t v = 0; v < n_vectors; ++v) {
        const float* x = vectors + v * dim;
        float top = 0.0f;
        for (size_t i = 0; i < dim; ++i) top = std::max(top, std::fabs(x[i]));
        const float scale = top > 0.0f && std::isfinite(top) ? top / 127.0f : 0.0f;
        scales[v] = scale;
        const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
        for (size_t i = 0; i < dim; ++i) {
            const float q = x[i] * inverse;  // NaN compares false both ways and becomes 0
            values[v * dim + i] = static_cast<int8_t>(q > 0.0f   ? std::min(q, 127.0f) + 0.5f
                                                      : q < 0.0f ? std::max(q, -127.0f) - 0.5f
                                                                 : 0.0f);
        }
    }
}

}  // namespace attnviz::viz
