// Byte-level pieces of the page payload: escaping for HTML and for JSON inside
// a <script>, base64, zlib deflate, and the 8-bit quantization of attention
// rows and of query/key vectors, and the exact 3-digit decimal codes of the
// weights a page prints. No knowledge of views here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnviz::viz {

// & < > " ' as entities: safe in text and in quoted attributes.
std::string escape_html(std::string_view text);
// text with what XML 1.0 forbids, control characters (but tab, LF, CR) and
// invalid UTF-8, replaced by U+FFFD: safe for SVG and for cairo's text API.
std::string valid_text(std::string_view text);
// escape_html(valid_text(text)): text for XML (SVG) that every parser reads.
std::string escape_xml(std::string_view text);
// JSON text made inert inside <script type="application/json">: every '<',
// '>' and '&' becomes \u003c, \u003e, \u0026 (so no "</script" or "<!--" can
// appear), and U+2028/U+2029 become \u2028/\u2029.
std::string escape_json_for_script(std::string_view json);

std::string base64_encode(std::span<const uint8_t> bytes);
std::vector<uint8_t> base64_decode(std::string_view text);  // throws Error on a bad character

// zlib format (RFC 1950), what the browser's DecompressionStream("deflate") reads.
// level: libdeflate's 1 (fastest) .. 12 (smallest).
std::vector<uint8_t> deflate_bytes(std::span<const uint8_t> bytes, int level);
std::vector<uint8_t> inflate_bytes(std::span<const uint8_t> bytes);  // throws Error

// Attention rows: level = round(p / row_max * 255), p' = level * row_max / 255.
// The step is row_max / 255 and |p - p'| <= step / 2. A row of zeros keeps row_max 0.
void quantize_rows(const float* probs, size_t n_rows, size_t n_cols, uint8_t* levels,
                   float* row_max);

// The numbers a page prints: each weight of at least 0.001 as its correctly
// rounded decimal of 3 significant digits, m x 10^(e - kDecimalExponentBias)
// with m in 100..999, in one uint16 code (e << 10) | m; a non-zero weight that
// rounds below 0.001 is kBelowThousandthCode (the page prints "<0.001"); 0 is
// code 0; NaN, infinities and negative values (not probabilities) are
// kNotAProbabilityCode. The printed digits are the float's own, rounded once,
// and no non-zero weight becomes 0. Most weights of a long input are below
// 0.001, so their one code keeps the stream small (0.3 bytes a weight deflated
// at 512 tokens, against 1.6 with 3 digits for every weight).
inline constexpr int kDecimalExponentBias = 50;
inline constexpr uint16_t kBelowThousandthCode = 1;
inline constexpr uint16_t kNotAProbabilityCode = 0xFFFF;
uint16_t decimal3_code(float value);
// The code's value: the decimal; NaN for kNotAProbabilityCode and for
// kBelowThousandthCode (no value, only a bound); for tests and tools.
double decimal3_value(uint16_t code);
// codes of values[0, n), as two byte planes: every code's high byte, then every
// low byte (deflate finds the slowly varying high bytes far easier that way).
void decimal3_planes(const float* values, size_t n, uint8_t* out);

// Query/key vectors: symmetric int8 per vector, v = round(x / scale), scale = max|x| / 127.
void quantize_vectors(const float* vectors, size_t n_vectors, size_t dim, int8_t* values,
                      float* scales);

}  // namespace attnviz::viz
