#include "tokenizer/unicode.h"

#include <algorithm>
#include <iterator>

#include <utf8proc.h>

#include "attnviz/error.h"

namespace attnviz::tok {

namespace {
struct CodeRange {
    char32_t first, last;
};
#include "tokenizer/hf_unicode_tables.inc"

template <size_t N>
bool in(const CodeRange (&ranges)[N], char32_t c) {
    auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                               [](char32_t v, const CodeRange& r) { return v < r.first; });
    return it != std::begin(ranges) && c <= std::prev(it)->last;
}
}  // namespace

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

void check_utf8(std::string_view text) {
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
        uint8_t b = static_cast<uint8_t>(text[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t len =
            utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                             static_cast<utf8proc_ssize_t>(n - i), &cp);
        if (len < 0)
            throw Error("text is not valid UTF-8: bad byte 0x" +
                        std::string(1, "0123456789abcdef"[b >> 4]) +
                        std::string(1, "0123456789abcdef"[b & 15]) + " at byte " +
                        std::to_string(i));
        i += static_cast<size_t>(len);
    }
}

size_t count_chars(std::string_view s) {
    size_t n = 0;
    for (char ch : s) n += (static_cast<uint8_t>(ch) & 0xC0) != 0x80;
    return n;
}

bool is_whitespace(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x9 && c <= 0xD);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static utf8proc_category_t category(char32_t c) {
    return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_punctuation(char32_t c) {
    auto k = category(c);
    if (k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO) return !in(k_not_punctuation, c);
    return in(k_extra_punctuation, c);
}

bool is_other(char32_t c) {
    // Unassigned code points (Cn) are in no category for tokenizers: its
    // tables come from UnicodeData.txt, which does not list them.
    auto k = category(c);
    return k >= UTF8PROC_CATEGORY_CC && k <= UTF8PROC_CATEGORY_CO && !in(k_not_other, c);
}

bool is_mark_nonspacing(char32_t c) {
    if (category(c) == UTF8PROC_CATEGORY_MN) return !in(k_not_mark_nonspacing, c);
    return in(k_extra_mark_nonspacing, c);
}

bool is_numeric(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    auto k = category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

bool is_alphanumeric(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    auto k = category(c);
    // Rust's is_alphabetic is the Alphabetic property: letters, Nl and some marks.
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_MC;
}

bool is_word_char(char32_t c) {
    if (c < 0x80)
        return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    auto k = category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME) || k == UTF8PROC_CATEGORY_ND ||
           k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_PC || c == 0x200C || c == 0x200D;
}

void to_lowercase(char32_t c, std::u32string& out) {
    if (c < 0x80) {
        out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {  // the one unconditional multi-char lowercase mapping
        out.push_back(U'i');
        out.push_back(0x307);
    } else {
        out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
}

}  // namespace attnviz::tok
