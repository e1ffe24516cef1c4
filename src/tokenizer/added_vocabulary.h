// Added and special tokens ([CLS], <mask>, <extra_id_0>...), cut out of the
// raw text before anything else runs (tokenizer/added_vocabulary.rs). Tokens
// with normalized=false match the original text; the others match the
// normalized text of what is left.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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
    // Leftmost-longest matching (tokenizers' aho-corasick, MatchKind::LeftmostLongest)
    // in time linear in the text and the patterns: an Aho-Corasick automaton of
    // the reversed patterns, run backwards over the text, gives at each byte
    // the longest pattern that starts there. Of equal patterns the first added wins.
    class Matcher {
    public:
        void add(std::string_view text, size_t token);
        void build();  // after the last add
        bool empty() const { return nodes_.size() <= 1; }
        struct Hit {
            uint32_t length;  // 0: no pattern starts here
            uint32_t token;   // index into tokens_
        };
        // hits[i]: the longest pattern that starts at byte i of text.
        void longest_at(std::string_view text, std::vector<Hit>& hits) const;

    private:
        struct Node {
            uint32_t fail = 0;     // the longest proper suffix that is in the trie
            uint32_t longest = 0;  // the longest pattern that is a suffix of this one, 0: none
            uint32_t depth = 0;
            int64_t token = -1;  // the pattern ending here
        };
        uint32_t child(uint32_t node, uint8_t byte) const;  // 0: none
        std::vector<Node> nodes_ = std::vector<Node>(1);    // 0: the root
        std::unordered_map<uint64_t, uint32_t> edges_;      // node << 8 | byte -> child
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
