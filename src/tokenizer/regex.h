// A compiled PCRE2 pattern (UTF + UCP, JIT when available) that lists its
// matches as a cover of the input, the way tokenizers' Pattern trait does.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/normalized_string.h"

namespace attnviz::tok {

class Regex {
public:
    explicit Regex(const std::string& pattern);  // throws Error naming the pattern
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // The whole of text as match / non-match pieces (one empty piece for "").
    Pieces find_matches(std::string_view text) const;
    static std::string escape(std::string_view literal);

private:
    struct Code;
    std::unique_ptr<Code> code_;
};

// The GPT-2 split pattern (read through onig_compatible like any other).
extern const char* const kGpt2Pattern;

// Rewrites \s \S \w \W so PCRE2 matches what Oniguruma, the engine of HF
// tokenizers, matches: \s is White_Space (PCRE2's misses U+0085), \w is
// letters, marks, decimal digits and connector punctuation (PCRE2's takes all
// numbers and no marks).
std::string onig_compatible(std::string_view pattern);

}  // namespace attnviz::tok
