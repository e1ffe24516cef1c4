// Unicode helpers for the tokenizer: UTF-8 decoding and the character classes
// Hugging Face tokenizers uses (Rust's char methods), answered by utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace attnviz::tok {

// Length in bytes of the UTF-8 sequence starting with byte b (1 for stray bytes).
inline size_t utf8_len(uint8_t b) {
    if (b < 0x80) return 1;
    if ((b >> 5) == 0x6) return 2;
    if ((b >> 4) == 0xE) return 3;
    if ((b >> 3) == 0x1E) return 4;
    return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
inline char32_t next_char(std::string_view s, size_t& i) {
    uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
        ++i;
        return b;
    }
    size_t n = utf8_len(b);
    char32_t c = b & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    i += n;
    return c;
}

inline size_t char_utf8_len(char32_t c) {
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

void append_utf8(std::string& out, char32_t c);

// Throws Error naming the first byte that is not valid UTF-8.
void check_utf8(std::string_view text);

size_t count_chars(std::string_view s);

// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t c);
// Unicode general categories, as the unicode_categories crate names them.
bool is_punctuation(char32_t c);      // P*
bool is_other(char32_t c);            // C*
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_numeric(char32_t c);          // Rust's char::is_numeric: Nd, Nl, No
bool is_alphanumeric(char32_t c);     // Rust's char::is_alphanumeric
// The regex crate's \w (Unicode word characters).
bool is_word_char(char32_t c);
// Rust's char::to_lowercase, written to out (one char, or two for U+0130).
void to_lowercase(char32_t c, std::u32string& out);

}  // namespace attnviz::tok
