#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode.h"

namespace attnviz::tok {

void AddedVocabulary::Matcher::add(std::string text, size_t token) {
    if (text.empty()) return;
    by_first_byte[static_cast<uint8_t>(text[0])].push_back(patterns.size());
    patterns.emplace_back(std::move(text), token);
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
    size_t start_offset = 0;
    size_t at = 0;
    while (at < sentence.size()) {
        // The longest pattern that starts here, if any.
        const auto& candidates = matcher.by_first_byte[static_cast<uint8_t>(sentence[at])];
        const std::pair<std::string, size_t>* best = nullptr;
        for (size_t p : candidates) {
            const auto& pattern = matcher.patterns[p];
            if (sentence.substr(at).starts_with(pattern.first) &&
                (!best || pattern.first.size() > best->first.size()))
                best = &pattern;
        }
        if (!best) {
            ++at;
            continue;
        }
        size_t start = at, stop = at + best->first.size();
        at = stop;
        const AddedToken& token = tokens_[best->second];
        if (token.single_word) {
            bool start_space = start == 0 || !last_char_is_word(sentence.substr(0, start));
            bool stop_space = stop == sentence.size() || !first_char_is_word(sentence.substr(stop));
            if (!start_space || !stop_space) continue;
        }
        if (token.lstrip) {
            size_t new_start = start;
            while (new_start > 0) {
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
        splits.push_back({int64_t(best->second), start, stop});
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
