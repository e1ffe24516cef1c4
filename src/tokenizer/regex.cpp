#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {

const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string onig_compatible(std::string_view pattern) {
    static const std::string space = "\\t-\\r\\x{85}\\p{Z}", word = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
    std::string out;
    bool in_class = false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < pattern.size()) {
            char e = pattern[i + 1];
            ++i;
            const std::string* body = (e == 's' || e == 'S')   ? &space
                                      : (e == 'w' || e == 'W') ? &word
                                                               : nullptr;
            bool negated = e == 'S' || e == 'W';
            if (!body ||
                (in_class && negated)) {  // keep other escapes (and rare negations in a class)
                out += c;
                out += e;
            } else if (in_class) {
                out += *body;
            } else {
                out += negated ? "[^" : "[";
                out += *body;
                out += "]";
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            out += c;
            if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
            if (i + 1 < pattern.size() && pattern[i + 1] == ']')
                out += pattern[++i];  // a literal ] first
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        out += c;
    }
    return out;
}

struct Regex::Code {
    pcre2_code* code = nullptr;
    ~Code() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern) : code_(std::make_unique<Code>()) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    code_->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &error_offset, nullptr);
    if (!code_->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        throw Error("bad regex " + quote(pattern) + " at " + std::to_string(error_offset) + ": " +
                    reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
}

Regex::~Regex() = default;

Pieces Regex::find_matches(std::string_view text) const {
    Pieces pieces;
    if (text.empty()) {
        pieces.push_back({0, 0, false});
        return pieces;
    }
    struct MatchData {
        pcre2_match_data* data;
        MatchData() : data(pcre2_match_data_create(4, nullptr)) {}
        ~MatchData() { pcre2_match_data_free(data); }
    };
    thread_local MatchData match_data;
    size_t prev = 0, at = 0;
    while (at <= text.size()) {
        int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                             at, PCRE2_NO_UTF_CHECK, match_data.data, nullptr);
        if (rc < 0) break;
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match_data.data);
        size_t start = ov[0], end = ov[1];
        if (prev != start) pieces.push_back({prev, start, false});
        pieces.push_back({start, end, true});
        prev = end;
        if (end == start) {  // empty match: step over one char
            if (end >= text.size()) break;
            at = end + utf8_len(static_cast<uint8_t>(text[end]));
        } else {
            at = end;
        }
    }
    if (prev != text.size()) pieces.push_back({prev, text.size(), false});
    return pieces;
}

std::string Regex::escape(std::string_view literal) {
    std::string out;
    for (char c : literal) {
        if (std::string_view("\\^$.|?*+()[]{}-#&~ ").find(c) != std::string_view::npos)
            out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

}  // namespace attnviz::tok
