// Normalizers (tokenizers/src/normalizers/*.rs). Fields are named as in
// tokenizer.json; normalizer_from_json is the one switch on "type".
#include <utf8proc.h>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {
namespace {

bool is_chinese_char(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

struct BertNormalizer final : Normalizer {
    bool clean_text = true, handle_chinese_chars = true, lowercase = true;
    std::optional<bool> strip_accents;  // unset: follows lowercase

    void normalize(NormalizedString& text) const override {
        if (clean_text) clean(text);
        if (handle_chinese_chars) pad_chinese_chars(text);
        if (strip_accents.value_or(lowercase)) {
            text.nfd();
            text.filter([](char32_t c) { return !is_mark_nonspacing(c); });
        }
        if (lowercase) text.lowercase();
    }

    static void clean(NormalizedString& text) {
        // Skip the two transforms when there is nothing to remove or map.
        const std::string& s = text.get();
        bool needs_filter = false, needs_map = false;
        size_t i = 0;
        while (i < s.size()) {
            char32_t c = next_char(s, i);
            if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c)))
                needs_filter = true;
            else if (c != ' ' && is_whitespace(c))
                needs_map = true;
        }
        if (needs_filter)
            text.filter([](char32_t c) {
                return !(c == 0 || c == 0xFFFD ||
                         (c != '\t' && c != '\n' && c != '\r' && is_other(c)));
            });
        if (needs_map) text.map([](char32_t c) { return is_whitespace(c) ? U' ' : c; });
    }

    static void pad_chinese_chars(NormalizedString& text) {
        const std::string& s = text.get();
        std::vector<CharChange> dest;
        bool any = false;
        size_t i = 0;
        while (i < s.size()) {
            char32_t c = next_char(s, i);
            if (is_chinese_char(c)) {
                any = true;
                dest.push_back({U' ', 1});
                dest.push_back({c, 0});
                dest.push_back({U' ', 1});
            } else {
                dest.push_back({c, 0});
            }
        }
        if (any) text.transform(dest, 0);
    }
};

struct UnicodeNormalizer final : Normalizer {
    enum Form { NFC, NFD, NFKC, NFKD } form;
    explicit UnicodeNormalizer(Form f) : form(f) {}
    void normalize(NormalizedString& text) const override {
        switch (form) {
            case NFC:
                text.nfc();
                break;
            case NFD:
                text.nfd();
                break;
            case NFKC:
                text.nfkc();
                break;
            case NFKD:
                text.nfkd();
                break;
        }
    }
};

struct Lowercase final : Normalizer {
    void normalize(NormalizedString& text) const override { text.lowercase(); }
};

struct StripAccents final : Normalizer {
    void normalize(NormalizedString& text) const override {
        text.filter([](char32_t c) { return !is_mark_nonspacing(c); });
    }
};

struct Strip final : Normalizer {
    bool left = true, right = true;
    void normalize(NormalizedString& text) const override { text.strip(left, right); }
};

struct Replace final : Normalizer {
    std::unique_ptr<Regex> pattern;
    std::string content;
    void normalize(NormalizedString& text) const override {
        text.replace(pattern->find_matches(text.get()), content);
    }
};

struct Prepend final : Normalizer {
    std::string prefix;
    void normalize(NormalizedString& text) const override {
        if (!text.empty()) text.prepend(prefix);
    }
};

struct SequenceNormalizer final : Normalizer {
    std::vector<std::unique_ptr<Normalizer>> normalizers;
    void normalize(NormalizedString& text) const override {
        for (auto& n : normalizers) n->normalize(text);
    }
};

std::string base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=' || c == '\n' || c == '\r') continue;
        int v = value(c);
        if (v < 0) throw Error("precompiled_charsmap: bad base64 character");
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

// SentencePiece's precompiled_charsmap: [u32 trie size][double-array trie of
// u32 units][NUL-separated replacement strings]. The trie maps a UTF-8 prefix
// to the offset of its replacement (spm_precompiled's DoubleArray).
struct Precompiled final : Normalizer {
    std::vector<uint32_t> trie;
    std::string replacements;

    explicit Precompiled(const std::string& blob) {
        if (blob.size() < 4) throw Error("precompiled_charsmap is truncated");
        uint32_t trie_size = uint8_t(blob[0]) | uint8_t(blob[1]) << 8 | uint8_t(blob[2]) << 16 |
                             uint32_t(uint8_t(blob[3])) << 24;
        if (4 + size_t(trie_size) > blob.size())
            throw Error("precompiled_charsmap: trie larger than the blob");
        trie.resize(trie_size / 4);
        for (size_t i = 0; i < trie.size(); ++i) {
            const uint8_t* p = reinterpret_cast<const uint8_t*>(blob.data()) + 4 + 4 * i;
            trie[i] = p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24;
        }
        replacements = blob.substr(4 + trie_size);
        if (trie.empty()) throw Error("precompiled_charsmap: empty trie");
        try {  // they go into the normalized text, which must stay UTF-8
            check_utf8(replacements);
        } catch (const Error&) {
            throw Error("precompiled_charsmap: its replacement strings are not valid UTF-8");
        }
    }

    static uint32_t label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
    static uint32_t offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
    static bool has_leaf(uint32_t u) { return (u >> 8) & 1; }
    static uint32_t value(uint32_t u) { return u & ((1u << 31) - 1); }

    // The replacement of the shortest trie key that prefixes chunk, if any
    // (spm_precompiled's transform takes the first common-prefix result).
    std::optional<std::string_view> transform(std::string_view chunk) const {
        size_t node = offset(trie[0]);
        for (char ch : chunk) {
            uint8_t c = static_cast<uint8_t>(ch);
            if (c == 0) break;
            node ^= c;
            if (node >= trie.size()) return std::nullopt;
            uint32_t unit = trie[node];
            if (label(unit) != c) return std::nullopt;
            node ^= offset(unit);
            if (node >= trie.size()) return std::nullopt;
            if (has_leaf(unit)) {
                size_t at = value(trie[node]);
                if (at > replacements.size()) return std::nullopt;
                if (at < replacements.size() && (uint8_t(replacements[at]) & 0xC0) == 0x80)
                    return std::nullopt;  // inside a character: no valid charsmap points there
                size_t end = replacements.find('\0', at);
                if (end == std::string::npos) end = replacements.size();
                return std::string_view(replacements).substr(at, end - at);
            }
        }
        return std::nullopt;
    }

    // tokenizers' precompiled.rs `replace`: new chars replace old ones one for
    // one; extra new chars are marked new; removed ones fold into the last char.
    static void replace(std::vector<CharChange>& out, std::string_view old_part,
                        std::string_view new_part) {
        int old_count = int(count_chars(old_part));
        int new_count = 0;
        size_t i = 0;
        while (i < new_part.size()) {
            out.push_back({next_char(new_part, i), 0});
            ++new_count;
        }
        int diff = new_count - old_count;
        if (diff > 0) {
            for (int k = 0; k < diff; ++k) out[out.size() - 1 - size_t(k)].change = 1;
        } else if (diff < 0 && !out.empty()) {
            out.back().change += diff;
        }
    }

    void normalize(NormalizedString& text) const override {
        const std::string& s = text.get();
        std::vector<CharChange> dest;
        dest.reserve(s.size());
        bool modified = false;
        size_t pos = 0;
        utf8proc_int32_t state = 0;
        while (pos < s.size()) {
            // One extended grapheme cluster [pos, end).
            size_t end = pos;
            char32_t prev = next_char(s, end);
            while (end < s.size()) {
                size_t j = end;
                char32_t c = next_char(s, j);
                if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                                     static_cast<utf8proc_int32_t>(c), &state))
                    break;
                prev = c;
                end = j;
            }
            std::string_view grapheme(s.data() + pos, end - pos);
            pos = end;
            if (grapheme.size() < 6) {
                if (auto norm = transform(grapheme)) {
                    modified = true;
                    replace(dest, grapheme, *norm);
                    continue;
                }
            }
            size_t i = 0;
            while (i < grapheme.size()) {
                size_t start = i;
                char32_t c = next_char(grapheme, i);
                std::string_view part = grapheme.substr(start, i - start);
                if (auto norm = transform(part)) {
                    modified = true;
                    replace(dest, part, *norm);
                } else {
                    dest.push_back({c, 0});
                }
            }
        }
        if (modified) text.transform(dest, 0);
    }
};

std::unique_ptr<Regex> pattern_from_json(const Json& j, const char* where) {
    const Json& p = json_at(j, "pattern", where);
    if (p.contains("String"))
        return std::make_unique<Regex>(Regex::escape(p["String"].get<std::string>()));
    if (p.contains("Regex")) return std::make_unique<Regex>(p["Regex"].get<std::string>());
    throw Error(std::string(where) + ": \"pattern\" needs \"String\" or \"Regex\"");
}

}  // namespace

std::unique_ptr<Regex> split_pattern_from_json(const Json& j, const char* where) {
    return pattern_from_json(j, where);
}

std::unique_ptr<Normalizer> normalizer_from_json(const Json& j) {
    if (j.is_null()) return nullptr;
    const std::string type = json_string(j, "type", "");
    if (type == "BertNormalizer") {
        auto n = std::make_unique<BertNormalizer>();
        n->clean_text = json_bool(j, "clean_text", true);
        n->handle_chinese_chars = json_bool(j, "handle_chinese_chars", true);
        n->lowercase = json_bool(j, "lowercase", true);
        if (j.contains("strip_accents") && !j["strip_accents"].is_null())
            n->strip_accents = j["strip_accents"].get<bool>();
        return n;
    }
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeNormalizer::NFC);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeNormalizer::NFD);
    if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeNormalizer::NFKC);
    if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeNormalizer::NFKD);
    if (type == "Lowercase") return std::make_unique<Lowercase>();
    if (type == "StripAccents") return std::make_unique<StripAccents>();
    if (type == "Strip") {
        auto n = std::make_unique<Strip>();
        n->left = json_bool(j, "strip_left", true);
        n->right = json_bool(j, "strip_right", true);
        return n;
    }
    if (type == "Replace") {
        auto n = std::make_unique<Replace>();
        n->pattern = pattern_from_json(j, "normalizer Replace");
        n->content = json_string(j, "content", "");
        return n;
    }
    if (type == "Prepend") {
        auto n = std::make_unique<Prepend>();
        n->prefix = json_string(j, "prepend", "");
        return n;
    }
    if (type == "Precompiled") {
        const Json& map = json_at(j, "precompiled_charsmap", "normalizer Precompiled");
        if (map.is_null()) return std::make_unique<SequenceNormalizer>();  // nothing to apply
        return std::make_unique<Precompiled>(base64_decode(map.get<std::string>()));
    }
    if (type == "Sequence") {
        auto n = std::make_unique<SequenceNormalizer>();
        for (const Json& item : json_at(j, "normalizers", "normalizer Sequence"))
            if (auto child = normalizer_from_json(item)) n->normalizers.push_back(std::move(child));
        return n;
    }
    throw Error("tokenizer.json: unknown normalizer type " + quote(type));
}

// Used by the spiece.model loader, which finds the charsmap in the model proto.
std::unique_ptr<Normalizer> precompiled_from_blob(const std::string& blob) {
    return std::make_unique<Precompiled>(blob);
}

}  // namespace attnviz::tok
