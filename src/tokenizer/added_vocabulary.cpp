#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode.h"

namespace attnviz::tok {

uint32_t AddedVocabulary::Matcher::child(uint32_t node, uint8_t byte) const {
    auto it = edges_.find(uint64_t(node) << 8 | byte);
    return it == edges_.end() ? 0 : it->second;
}

void AddedVocabulary::Matcher::add(std::string_view text, size_t token) {
    if (text.empty()) return;
    uint32_t node = 0;
    for (size_t i = text.size(); i-- > 0;) {  // the trie of the reversed patterns
        auto [it, added] = edges_.try_emplace(uint64_t(node) << 8 | static_cast<uint8_t>(text[i]),
                                              uint32_t(nodes_.size()));
        if (added) {
            Node next;
            next.depth = nodes_[node].depth + 1;
            nodes_.push_back(next);
        }
        node = it->second;
    }
    if (nodes_[node].token < 0) nodes_[node].token = int64_t(token);
}

void AddedVocabulary::Matcher::build() {
    // Children by node, for the breadth-first walk that sets the failure links.
    std::vector<std::vector<std::pair<uint8_t, uint32_t>>> children(nodes_.size());
    for (const auto& [key, target] : edges_)
        children[size_t(key >> 8)].emplace_back(uint8_t(key & 0xFF), target);
    std::vector<uint32_t> queue{0};
    for (size_t head = 0; head < queue.size(); ++head) {
        const uint32_t node = queue[head];
        for (const auto& [byte, next] : children[node]) {
            uint32_t fail = 0;
            if (node != 0) {
                uint32_t f = nodes_[node].fail;
                while (f != 0 && child(f, byte) == 0) f = nodes_[f].fail;
                fail = child(f, byte);
            }
            Node& n = nodes_[next];
            n.fail = fail;
            n.longest = n.token >= 0 ? next : nodes_[fail].longest;
            queue.push_back(next);
        }
    }
}

void AddedVocabulary::Matcher::longest_at(std::string_view text, std::vector<Hit>& hits) const {
    hits.assign(text.size(), Hit{0, 0});
    uint32_t state = 0;
    for (size_t i = text.size(); i-- > 0;) {
        const uint8_t byte = static_cast<uint8_t>(text[i]);
        uint32_t next = child(state, byte);
        while (next == 0 && state != 0) {
            state = nodes_[state].fail;
            next = child(state, byte);
        }
        state = next;
        // state spells text[i, i + depth) backwards; its longest pattern starts at i.
        if (const uint32_t found = nodes_[state].longest; found != 0)
            hits[i] = {nodes_[found].depth, uint32_t(nodes_[found].token)};
    }
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
    // Special tokens first, then the others, as tokenizers orders its tries.
    for (int pass = 0; pass < 2; ++pass)
        for (size_t i = 0; i < tokens_.size(); ++i) {
            const AddedToken& t = tokens_[i];
            if (t.special != (pass == 0)) continue;
            if (!t.normalized) {
                raw_.add(t.content, i);
            } else {
                NormalizedString n(t.content);
                if (normalizer) normalizer->normalize(n);
                normalized_.add(n.get(), i);
            }
        }
    raw_.build();
    normalized_.build();
}

static bool last_char_is_word(std::string_view s) {
    if (s.empty()) return false;
    size_t i = s.size() - 1;
    while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
    return is_word_char(next_char(s, i));
}

static bool first_char_is_word(std::string_view s) {
    if (s.empty()) return false;
    size_t i = 0;
    return is_word_char(next_char(s, i));
}

std::vector<AddedVocabulary::Found> AddedVocabulary::find_matches(std::string_view sentence,
                                                                  const Matcher& matcher) const {
    std::vector<Found> splits;
    if (sentence.empty()) {
        splits.push_back({-1, 0, 0});
        return splits;
    }
    thread_local std::vector<Matcher::Hit> hits;  // reused: no allocation per text
    matcher.longest_at(sentence, hits);
    size_t start_offset = 0;
    size_t at = 0;
    while (at < sentence.size()) {
        const Matcher::Hit best = hits[at];
        if (best.length == 0) {
            ++at;
            continue;
        }
        size_t start = at, stop = at + best.length;
        at = stop;
        const AddedToken& token = tokens_[best.token];
        if (token.single_word) {
            bool start_space = start == 0 || !last_char_is_word(sentence.substr(0, start));
            bool stop_space = stop == sentence.size() || !first_char_is_word(sentence.substr(stop));
            if (!start_space || !stop_space) continue;
        }
        if (token.lstrip) {
            size_t new_start = start;
            while (new_start > start_offset) {  // no further: the split starts there at most
                size_t i = new_start - 1;
                while (i > 0 && (static_cast<uint8_t>(sentence[i]) & 0xC0) == 0x80) --i;
                size_t j = i;
                if (!is_whitespace(next_char(sentence, j))) break;
                new_start = i;
            }
            start = std::max(new_start, start_offset);
        }
        if (token.rstrip) {
            while (stop < sentence.size()) {
                size_t j = stop;
                if (!is_whitespace(next_char(sentence, j))) break;
                stop = j;
            }
            at = stop;
        }
        if (start_offset < start) splits.push_back({-1, start_offset, start});
        splits.push_back({int64_t(best.token), start, stop});
        start_offset = stop;
    }
    if (start_offset != sentence.size()) splits.push_back({-1, start_offset, sentence.size()});
    return splits;
}

void AddedVocabulary::split_with_indices(NormalizedString&& s, const Matcher& matcher,
                                         std::vector<Split>& out) const {
    if (matcher.empty()) {
        out.push_back({std::move(s), std::nullopt});
        return;
    }
    for (const Found& f : find_matches(s.get(), matcher)) {
        NormalizedString piece = s.slice(f.start, f.end);
        if (f.token >= 0) {
            const AddedToken& t = tokens_[size_t(f.token)];
            std::string value = piece.get();
            size_t len = value.size();
            out.push_back({std::move(piece), std::vector<Token>{{t.id, std::move(value), 0, len}}});
        } else {
            out.push_back({std::move(piece), std::nullopt});
        }
    }
}

PreTokenizedString AddedVocabulary::extract_and_normalize(const Normalizer* normalizer,
                                                          std::string_view text) const {
    PreTokenizedString pre(text);
    pre.split([this](NormalizedString&& s, std::vector<Split>& out) {
        split_with_indices(std::move(s), raw_, out);
    });
    pre.split([this, normalizer](NormalizedString&& s, std::vector<Split>& out) {
        if (normalizer) normalizer->normalize(s);
        split_with_indices(std::move(s), normalized_, out);
    });
    return pre;
}

}  // namespace attnviz::tok
