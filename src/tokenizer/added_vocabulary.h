// Added and special tokens ([CLS], <mask>, <extra_id_0>...), cut out of the
// raw text before anything else runs (tokenizer/added_vocabulary.rs). Tokens
// with normalized=false match the original text; the others match the
// normalized text of what is left.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "tokenizer/pipeline.h"

namespace attnviz::tok {

struct AddedToken {
    std::string content;
    uint32_t id = 0;
    bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
};

class AddedVocabulary {
public:
    AddedVocabulary() = default;
    AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

    PreTokenizedString extract_and_normalize(const Normalizer* normalizer,
                                             std::string_view text) const;
    const std::vector<AddedToken>& tokens() const { return tokens_; }

private:
    // Leftmost-longest matching of a few patterns, bucketed by first byte.
    struct Matcher {
        std::vector<std::pair<std::string, size_t>> patterns;  // text, index into tokens_
        std::array<std::vector<size_t>, 256> by_first_byte;
        void add(std::string text, size_t token);
        bool empty() const { return patterns.empty(); }
    };
    struct Found {
        int64_t token;  // index into tokens_, -1 for plain text
        size_t start, end;
    };
    std::vector<Found> find_matches(std::string_view sentence, const Matcher& matcher) const;
    void split_with_indices(NormalizedString&& s, const Matcher& matcher,
                            std::vector<Split>& out) const;

    std::vector<AddedToken> tokens_;
    Matcher raw_, normalized_;
};

}  // namespace attnviz::tok
