// Decoders (tokenizers/src/decoders/*.rs), used to show tokens as text.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include <utf8proc.h>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {

const std::array<char32_t, 256>& bytes_to_chars();
std::unique_ptr<Regex> split_pattern_from_json(const Json& j, const char* where);

std::string Decoder::display(const std::string& token) const {
    std::string out;
    for (auto& s : decode_chain({token})) out += s;
    return out;
}

namespace {

// A chain of Replace decoders could grow a token exponentially: past
// NormalizedString's bound on normalizers, it is an Error.
void check_growth(size_t before, size_t after) {
    if (after > NormalizedString::kMaxGrowth * before + 4096)
        throw Error("tokenizer.json: its decoders make a token of " + std::to_string(before) +
                    " bytes more than " + std::to_string(NormalizedString::kMaxGrowth) +
                    " times longer");
}

// Bytes to text, each invalid byte shown as U+FFFD (as from_utf8_lossy).
std::string lossy_utf8(std::string_view bytes) {
    std::string out;
    size_t i = 0;
    while (i < bytes.size()) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(bytes.data() + i),
                             utf8proc_ssize_t(bytes.size() - i), &cp);
        if (n <= 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(bytes.substr(i, size_t(n)));
            i += size_t(n);
        }
    }
    return out;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    if (from.empty() || s.find(from) == std::string::npos) return;
    std::string out;
    size_t at = 0, found;
    while ((found = s.find(from, at)) != std::string::npos) {
        out.append(s, at, found - at);
        out.append(to);
        at = found + from.size();
    }
    out.append(s, at, std::string::npos);
    s = std::move(out);
}

// decoders/wordpiece.rs cleanup: undo the spaces BERT puts around punctuation.
std::string cleanup(std::string s) {
    for (auto [from, to] : {std::pair{" .", "."},
                            {" ?", "?"},
                            {" !", "!"},
                            {" ,", ","},
                            {" ' ", "'"},
                            {" n't", "n't"},
                            {" 'm", "'m"},
                            {" do not", " don't"},
                            {" 's", "'s"},
                            {" 've", "'ve"},
                            {" 're", "'re"}})
        replace_all(s, from, to);
    return s;
}

struct WordPieceDecoder final : Decoder {
    std::string prefix = "##";
    bool cleanup_spaces = true;
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string& t = tokens[i];
            if (i != 0) {
                if (t.starts_with(prefix))
                    t.erase(0, prefix.size());
                else
                    t = " " + t;
            }
            if (cleanup_spaces) t = cleanup(t);
        }
        return tokens;
    }
    std::string display(const std::string& token) const override {
        return token.starts_with(prefix) ? token.substr(prefix.size()) : token;
    }
};

struct ByteLevelDecoder final : Decoder {
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        static const auto chars_to_bytes = [] {
            std::array<int, 512> table;
            table.fill(-1);
            const auto& b2c = bytes_to_chars();
            for (int b = 0; b < 256; ++b) table[b2c[size_t(b)]] = b;
            return table;
        }();
        std::string bytes;
        for (const std::string& t : tokens) {
            std::string mapped;
            bool ok = true;
            size_t i = 0;
            while (i < t.size()) {
                char32_t c = next_char(t, i);
                if (c >= 512 || chars_to_bytes[c] < 0) {
                    ok = false;
                    break;
                }
                mapped.push_back(static_cast<char>(chars_to_bytes[c]));
            }
            bytes += ok ? mapped : t;
        }
        return {lossy_utf8(bytes)};
    }
};

struct MetaspaceDecoder final : Decoder {
    std::string replacement = "\xE2\x96\x81";
    bool strip_first = true;  // prepend_scheme other than "never"
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i) {
            replace_all(tokens[i], replacement, " ");
            if (i == 0 && strip_first && tokens[i].starts_with(' ')) tokens[i].erase(0, 1);
        }
        return tokens;
    }
    std::string display(const std::string& token) const override {
        std::string t = token;
        replace_all(t, replacement, " ");
        return t;
    }
};

struct ReplaceDecoder final : Decoder {
    std::unique_ptr<Regex> pattern;
    std::string content;
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        for (std::string& t : tokens) {
            std::string out;
            for (const Piece& p : pattern->find_matches(t))
                out += p.is_match ? content : t.substr(p.start, p.end - p.start);
            check_growth(t.size(), out.size());
            t = out;
        }
        return tokens;
    }
};

struct ByteFallbackDecoder final : Decoder {
    // "<0xHH>" -> the byte, as HF's u8::from_str_radix(&token[3..5], 16) reads it
    // (which also takes "+H"); anything else, "<0xZZ>" included, is plain text.
    static std::optional<uint8_t> byte_token(const std::string& t) {
        if (t.size() != 6 || !t.starts_with("<0x") || t.back() != '>') return std::nullopt;
        auto digit = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        const int high = t[3] == '+' ? 0 : digit(t[3]), low = digit(t[4]);
        if (high < 0 || low < 0) return std::nullopt;
        return static_cast<uint8_t>(high * 16 + low);
    }

    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        std::vector<std::string> out;
        std::string pending;
        size_t pending_count = 0;
        auto flush = [&] {
            if (pending_count == 0) return;
            std::string text = lossy_utf8(pending);
            if (text.find("\xEF\xBF\xBD") != std::string::npos) {
                for (size_t k = 0; k < pending_count; ++k) out.push_back("\xEF\xBF\xBD");
            } else {
                out.push_back(text);
            }
            pending.clear();
            pending_count = 0;
        };
        for (const std::string& t : tokens) {
            if (const std::optional<uint8_t> byte = byte_token(t)) {
                pending.push_back(static_cast<char>(*byte));
                ++pending_count;
            } else {
                flush();
                out.push_back(t);
            }
        }
        flush();
        return out;
    }
};

struct FuseDecoder final : Decoder {
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        std::string all;
        for (auto& t : tokens) all += t;
        return {all};
    }
};

struct StripDecoder final : Decoder {
    std::string content = " ";
    size_t start = 0, stop = 0;
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        for (std::string& t : tokens) {
            for (size_t k = 0; k < start && t.starts_with(content); ++k)  // content is one char
                t.erase(0, content.size());
            for (size_t k = 0; k < stop && t.ends_with(content); ++k)
                t.resize(t.size() - content.size());
        }
        return tokens;
    }
};

struct BPEDecoder final : Decoder {
    std::string suffix = "</w>";
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i)
            replace_all(tokens[i], suffix, i + 1 == tokens.size() ? "" : " ");
        return tokens;
    }
};

struct SequenceDecoder final : Decoder {
    std::vector<std::unique_ptr<Decoder>> steps;
    std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
        auto total = [&tokens] {
            size_t n = 0;
            for (const std::string& t : tokens) n += t.size();
            return n;
        };
        const size_t before = total();
        for (auto& d : steps) {
            tokens = d->decode_chain(std::move(tokens));
            check_growth(before, total());
        }
        return tokens;
    }
    std::string display(const std::string& token) const override {
        // A lone token is not a text start: use each step's display for the first step
        // that strips prefixes, and chain the rest.
        std::vector<std::string> tokens{token};
        for (size_t i = 0; i < steps.size(); ++i) {
            std::string joined;
            for (auto& t : tokens) joined += t;
            tokens = {steps[i]->display(joined)};
            check_growth(token.size(), tokens[0].size());
        }
        return tokens.empty() ? std::string() : tokens[0];
    }
};

}  // namespace

std::unique_ptr<Decoder> decoder_from_json(const Json& j) {
    if (j.is_null()) return nullptr;
    const std::string type = json_string(j, "type", "");
    if (type == "WordPiece") {
        auto d = std::make_unique<WordPieceDecoder>();
        d->prefix = json_string(j, "prefix", "##");
        d->cleanup_spaces = json_bool(j, "cleanup", true);
        return d;
    }
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Metaspace") {
        auto d = std::make_unique<MetaspaceDecoder>();
        d->replacement = json_char(j, "replacement", "\xE2\x96\x81");
        if (j.contains("prepend_scheme"))
            d->strip_first = j["prepend_scheme"].get<std::string>() != "never";
        else
            d->strip_first = json_bool(j, "add_prefix_space", true);
        return d;
    }
    if (type == "Replace") {
        auto d = std::make_unique<ReplaceDecoder>();
        d->pattern = split_pattern_from_json(j, "decoder Replace");
        d->content = json_string(j, "content", "");
        return d;
    }
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        auto d = std::make_unique<StripDecoder>();
        d->content = json_char(j, "content", " ");
        d->start = j.value("start", size_t(0));
        d->stop = j.value("stop", size_t(0));
        return d;
    }
    if (type == "BPEDecoder") {
        auto d = std::make_unique<BPEDecoder>();
        d->suffix = json_string(j, "suffix", "</w>");
        return d;
    }
    if (type == "Sequence") {
        auto d = std::make_unique<SequenceDecoder>();
        for (const Json& item : json_at(j, "decoders", "decoder Sequence"))
            if (auto child = decoder_from_json(item)) d->steps.push_back(std::move(child));
        return d;
    }
    throw Error("tokenizer.json: unknown decoder type " + quote(type));
}

}  // namespace attnviz::tok
