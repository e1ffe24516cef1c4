// Pre-tokenizers (tokenizers/src/pre_tokenizers/*.rs): each cuts splits into
// smaller splits; ByteLevel also maps every byte to a printable char.
#include <array>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {

std::unique_ptr<Regex> split_pattern_from_json(const Json& j, const char* where);

namespace {

// tokenizers' Pattern for a char predicate: each matching char is one match.
template <typename Pred>
Pieces find_char_matches(std::string_view s, Pred&& pred) {
    Pieces pieces;
    if (s.empty()) {
        pieces.push_back({0, 0, false});
        return pieces;
    }
    size_t last = 0, i = 0;
    while (i < s.size()) {
        size_t start = i;
        char32_t c = next_char(s, i);
        if (pred(c)) {
            if (last < start) pieces.push_back({last, start, false});
            pieces.push_back({start, i, true});
            last = i;
        }
    }
    if (last < s.size()) pieces.push_back({last, s.size(), false});
    return pieces;
}

void push_all(std::vector<NormalizedString>&& parts, std::vector<Split>& out) {
    for (auto& p : parts) out.push_back({std::move(p), std::nullopt});
}

bool is_bert_punctuation(char32_t c) {
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    return is_punctuation(c);
}

// Whitespace removed, punctuation isolated: one pass, same splits as the
// two split calls in pre_tokenizers/bert.rs.
struct BertPreTokenizer final : PreTokenizer {
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([](NormalizedString&& s, std::vector<Split>& out) {
            const std::string& t = s.get();
            size_t word_start = 0, i = 0;
            bool in_word = false;
            while (i < t.size()) {
                size_t start = i;
                char32_t c = next_char(t, i);
                bool space = is_whitespace(c);
                bool punct = !space && is_bert_punctuation(c);
                if (space || punct) {
                    if (in_word) out.push_back({s.slice(word_start, start), std::nullopt});
                    in_word = false;
                    if (punct) out.push_back({s.slice(start, i), std::nullopt});
                } else if (!in_word) {
                    in_word = true;
                    word_start = start;
                }
            }
            if (in_word) out.push_back({s.slice(word_start, t.size()), std::nullopt});
        });
    }
};

std::array<char32_t, 256> make_bytes_to_chars() {
    std::array<char32_t, 256> table{};
    char32_t n = 0;
    for (int b = 0; b < 256; ++b) {
        bool printable =
            (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[size_t(b)] = printable ? char32_t(b) : 256 + n++;
    }
    return table;
}

}  // namespace

const std::array<char32_t, 256>& bytes_to_chars() {
    static const std::array<char32_t, 256> table = make_bytes_to_chars();
    return table;
}

namespace {

void byte_level_map(NormalizedString& s) { s.map_bytes(bytes_to_chars()); }

struct ByteLevel final : PreTokenizer {
    bool add_prefix_space = true, use_regex = true;
    Regex regex{kGpt2Pattern};
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            if (add_prefix_space && !s.get().starts_with(' ')) s.prepend(" ");
            if (use_regex)
                push_all(s.split(regex.find_matches(s.get()), SplitBehavior::Isolated), out);
            else
                out.push_back({std::move(s), std::nullopt});
        });
        text.normalize(byte_level_map);
    }
};

struct Whitespace final : PreTokenizer {
    void pre_tokenize(PreTokenizedString& text) const override {
        // \w+|[^\w\s]+ kept, the rest removed.
        text.split([](NormalizedString&& s, std::vector<Split>& out) {
            const std::string& t = s.get();
            size_t i = 0, run_start = 0;
            int run_kind = 0;  // 0 none, 1 word, 2 other non-space
            while (i < t.size()) {
                size_t start = i;
                char32_t c = next_char(t, i);
                int kind = is_word_char(c) ? 1 : is_whitespace(c) ? 0 : 2;
                if (kind != run_kind) {
                    if (run_kind != 0) out.push_back({s.slice(run_start, start), std::nullopt});
                    run_kind = kind;
                    run_start = start;
                }
            }
            if (run_kind != 0) out.push_back({s.slice(run_start, t.size()), std::nullopt});
        });
    }
};

struct WhitespaceSplit final : PreTokenizer {
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([](NormalizedString&& s, std::vector<Split>& out) {
            push_all(s.split(find_char_matches(s.get(), is_whitespace), SplitBehavior::Removed),
                     out);
        });
    }
};

struct CharDelimiterSplit final : PreTokenizer {
    char32_t delimiter;
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            push_all(
                s.split(find_char_matches(s.get(), [this](char32_t c) { return c == delimiter; }),
                        SplitBehavior::Removed),
                out);
        });
    }
};

struct Metaspace final : PreTokenizer {
    enum class Prepend { Always, First, Never } prepend_scheme = Prepend::Always;
    char32_t replacement = 0x2581;
    std::string replacement_utf8 = "\xE2\x96\x81";
    bool split = true;
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            s.replace(find_char_matches(s.get(), [](char32_t c) { return c == U' '; }),
                      replacement_utf8);
            bool prepend = prepend_scheme == Prepend::Always ||
                           (prepend_scheme == Prepend::First && s.original_shift() == 0);
            if (prepend && !s.get().starts_with(replacement_utf8)) s.prepend(replacement_utf8);
            if (split)
                push_all(s.split(find_char_matches(s.get(),
                                                   [this](char32_t c) { return c == replacement; }),
                                 SplitBehavior::MergedWithNext),
                         out);
            else
                out.push_back({std::move(s), std::nullopt});
        });
    }
};

SplitBehavior behavior_from_json(const Json& j, const char* where, SplitBehavior fallback) {
    if (!j.contains("behavior")) return fallback;
    std::string b = j["behavior"].get<std::string>();
    if (b == "Removed") return SplitBehavior::Removed;
    if (b == "Isolated") return SplitBehavior::Isolated;
    if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
    if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
    if (b == "Contiguous") return SplitBehavior::Contiguous;
    throw Error(std::string(where) + ": unknown behavior " + quote(b));
}

struct Punctuation final : PreTokenizer {
    SplitBehavior behavior = SplitBehavior::Isolated;
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            push_all(s.split(find_char_matches(s.get(), is_bert_punctuation), behavior), out);
        });
    }
};

struct Digits final : PreTokenizer {
    bool individual_digits = false;
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            push_all(
                s.split(find_char_matches(s.get(), is_numeric),
                        individual_digits ? SplitBehavior::Isolated : SplitBehavior::Contiguous),
                out);
        });
    }
};

struct SplitPreTokenizer final : PreTokenizer {
    std::unique_ptr<Regex> pattern;
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    void pre_tokenize(PreTokenizedString& text) const override {
        text.split([this](NormalizedString&& s, std::vector<Split>& out) {
            Pieces pieces = pattern->find_matches(s.get());
            if (invert)
                for (auto& p : pieces) p.is_match = !p.is_match;
            push_all(s.split(pieces, behavior), out);
        });
    }
};

struct SequencePreTokenizer final : PreTokenizer {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    void pre_tokenize(PreTokenizedString& text) const override {
        for (auto& p : steps) p->pre_tokenize(text);
    }
};

}  // namespace

std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const Json& j) {
    if (j.is_null()) return nullptr;
    const std::string type = json_string(j, "type", "");
    if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
    if (type == "ByteLevel") {
        auto p = std::make_unique<ByteLevel>();
        p->add_prefix_space = json_bool(j, "add_prefix_space", true);
        p->use_regex = json_bool(j, "use_regex", true);
        return p;
    }
    if (type == "Whitespace") return std::make_unique<Whitespace>();
    if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplit>();
    if (type == "CharDelimiterSplit") {
        auto p = std::make_unique<CharDelimiterSplit>();
        std::string d = json_char(j, "delimiter", " ");
        size_t i = 0;
        p->delimiter = next_char(d, i);
        return p;
    }
    if (type == "Metaspace") {
        auto p = std::make_unique<Metaspace>();
        p->replacement_utf8 = json_char(j, "replacement", "\xE2\x96\x81");
        size_t i = 0;
        p->replacement = next_char(p->replacement_utf8, i);
        p->split = json_bool(j, "split", true);
        if (j.contains("prepend_scheme")) {
            std::string scheme = j["prepend_scheme"].get<std::string>();
            p->prepend_scheme = scheme == "first"   ? Metaspace::Prepend::First
                                : scheme == "never" ? Metaspace::Prepend::Never
                                                    : Metaspace::Prepend::Always;
        } else {  // older files: add_prefix_space
            p->prepend_scheme = json_bool(j, "add_prefix_space", true) ? Metaspace::Prepend::Always
                                                                       : Metaspace::Prepend::Never;
        }
        return p;
    }
    if (type == "Punctuation") {
        auto p = std::make_unique<Punctuation>();
        p->behavior = behavior_from_json(j, "pre_tokenizer Punctuation", SplitBehavior::Isolated);
        return p;
    }
    if (type == "Digits") {
        auto p = std::make_unique<Digits>();
        p->individual_digits = json_bool(j, "individual_digits", false);
        return p;
    }
    if (type == "Split") {
        auto p = std::make_unique<SplitPreTokenizer>();
        p->pattern = split_pattern_from_json(j, "pre_tokenizer Split");
        p->behavior = behavior_from_json(j, "pre_tokenizer Split", SplitBehavior::Isolated);
        p->invert = json_bool(j, "invert", false);
        return p;
    }
    if (type == "Sequence") {
        auto p = std::make_unique<SequencePreTokenizer>();
        for (const Json& item : json_at(j, "pretokenizers", "pre_tokenizer Sequence"))
            if (auto child = pre_tokenizer_from_json(item)) p->steps.push_back(std::move(child));
        return p;
    }
    throw Error("tokenizer.json: unknown pre_tokenizer type " + quote(type));
}

}  // namespace attnviz::tok
