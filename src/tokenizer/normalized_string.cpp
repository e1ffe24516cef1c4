#include "tokenizer/normalized_string.h"

#include <algorithm>

#include <utf8proc.h>

#include "attnviz/error.h"

#include "tokenizer/unicode.h"

namespace attnviz::tok {

NormalizedString::NormalizedString(std::string_view original)
    : original_(original), normalized_(original) {
    alignments_.resize(original.size());
    size_t i = 0;
    while (i < original.size()) {
        size_t n = std::min(utf8_len(static_cast<uint8_t>(original[i])), original.size() - i);
        for (size_t k = 0; k < n; ++k) alignments_[i + k] = {uint32_t(i), uint32_t(i + n)};
        i += n;
    }
}

std::optional<std::pair<size_t, size_t>> NormalizedString::normalized_to_original(
    size_t start, size_t end) const {
    if (start == end) return std::pair{start, end};  // as HF: an empty range maps to itself
    if (start > end || end > alignments_.size()) return std::nullopt;
    return std::pair<size_t, size_t>{alignments_[start].start, alignments_[end - 1].end};
}

NormalizedString NormalizedString::slice(size_t start, size_t end) const {
    NormalizedString out;
    auto range = normalized_to_original(start, end);
    if (!range) return out;
    auto [o_start, o_end] = *range;
    o_end = std::min(o_end, original_.size());
    o_start = std::min(o_start, o_end);
    out.original_.assign(original_, o_start, o_end - o_start);
    out.normalized_.assign(normalized_, start, end - start);
    out.alignments_.resize(end - start);
    for (size_t i = start; i < end; ++i) {
        Span a = alignments_[i];
        out.alignments_[i - start] = {a.start >= o_start ? uint32_t(a.start - o_start) : 0,
                                      a.end >= o_start ? uint32_t(a.end - o_start) : 0};
    }
    out.original_shift_ = original_shift_ + o_start;
    return out;
}

std::vector<NormalizedString> NormalizedString::split(const Pieces& pieces,
                                                      SplitBehavior behavior) const {
    std::vector<Piece> splits;  // is_match here means "remove"
    splits.reserve(pieces.size());
    switch (behavior) {
        case SplitBehavior::Isolated:
            for (auto p : pieces) splits.push_back({p.start, p.end, false});
            break;
        case SplitBehavior::Removed:
            splits = pieces;
            break;
        case SplitBehavior::Contiguous: {
            bool previous_match = false;
            for (auto p : pieces) {
                if (p.is_match == previous_match && !splits.empty())
                    splits.back().end = p.end;
                else
                    splits.push_back({p.start, p.end, false});
                previous_match = p.is_match;
            }
            break;
        }
        case SplitBehavior::MergedWithPrevious: {
            bool previous_match = false;
            for (auto p : pieces) {
                if (p.is_match && !previous_match && !splits.empty())
                    splits.back().end = p.end;
                else
                    splits.push_back({p.start, p.end, false});
                previous_match = p.is_match;
            }
            break;
        }
        case SplitBehavior::MergedWithNext: {
            bool previous_match = false;
            for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
                if (it->is_match && !previous_match && !splits.empty())
                    splits.back().start = it->start;
                else
                    splits.push_back({it->start, it->end, false});
                previous_match = it->is_match;
            }
            std::reverse(splits.begin(), splits.end());
            break;
        }
    }
    std::vector<NormalizedString> out;
    out.reserve(splits.size());
    for (auto s : splits)
        if (!s.is_match) out.push_back(slice(s.start, s.end));
    return out;
}

void NormalizedString::transform_range(size_t start, size_t end,
                                       const std::vector<CharChange>& dest, size_t initial_offset) {
    // The chars being replaced, walked alongside dest to track byte sizes.
    std::string_view replaced(normalized_.data() + start, end - start);
    size_t cursor = 0;
    auto next_replaced_size = [&]() -> size_t {
        if (cursor >= replaced.size()) return 0;
        size_t n = utf8_len(static_cast<uint8_t>(replaced[cursor]));
        cursor += n;
        return n;
    };
    size_t offset = start;
    for (size_t k = 0; k < initial_offset; ++k) offset += next_replaced_size();

    std::string text;
    std::vector<Span> spans;
    text.reserve(dest.size() + 8);
    spans.reserve(dest.size() + 8);
    auto alignment_at = [&](size_t idx) -> Span {
        if (idx < alignments_.size()) return alignments_[idx];
        return alignments_.empty() ? Span{} : Span{alignments_.back().end, alignments_.back().end};
    };
    for (const CharChange& d : dest) {
        Span align;
        if (d.change > 0) {
            align = offset < 1 ? Span{} : alignment_at(offset - 1);
        } else {
            align = alignment_at(offset);
            offset += next_replaced_size();
            for (int k = 0; k < -d.change; ++k) offset += next_replaced_size();
        }
        size_t before = text.size();
        append_utf8(text, d.c);
        spans.insert(spans.end(), text.size() - before, align);
    }
    normalized_.replace(start, end - start, text);
    alignments_.erase(alignments_.begin() + static_cast<ptrdiff_t>(start),
                      alignments_.begin() + static_cast<ptrdiff_t>(end));
    alignments_.insert(alignments_.begin() + static_cast<ptrdiff_t>(start), spans.begin(),
                       spans.end());
    check_growth();
}

void NormalizedString::check_growth() const {
    // NFKC, the charsmap and ByteLevel grow a text at most 18 times; a chain of
    // Replace normalizers or ByteLevel pre-tokenizers in a file could grow it
    // exponentially.
    if (normalized_.size() > kMaxGrowth * original_.size() + 4096)
        throw Error("tokenizer.json: its normalizers and pre-tokenizers make a text of " +
                    std::to_string(original_.size()) + " bytes more than " +
                    std::to_string(kMaxGrowth) + " times longer");
}

static bool is_ascii(std::string_view s) {
    for (char c : s)
        if (static_cast<uint8_t>(c) >= 0x80) return false;
    return true;
}

// NFD/NFKD: each char's decomposition (first char replaces it, the rest are
// new), then the canonical reordering of combining marks.
void NormalizedString::decompose(bool compat) {
    if (is_ascii(normalized_)) return;
    std::vector<CharChange> dest;
    dest.reserve(normalized_.size() + 8);
    utf8proc_int32_t buffer[32];
    int options = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    bool changed = false;  // skip the transform when every char stays as it is
    int previous_class = 0;
    size_t i = 0;
    while (i < normalized_.size()) {
        char32_t c = next_char(normalized_, i);
        if (c < 0x80) {  // ASCII never decomposes and is never reordered
            dest.push_back({c, 0});
            previous_class = 0;
            continue;
        }
        int last_boundclass = 0;
        utf8proc_ssize_t n =
            utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buffer, 32,
                                    static_cast<utf8proc_option_t>(options), &last_boundclass);
        if (n <= 0) {
            dest.push_back({c, 0});
            previous_class = 0;
            continue;
        }
        if (n != 1 || static_cast<char32_t>(buffer[0]) != c) changed = true;
        for (utf8proc_ssize_t k = 0; k < n; ++k) {
            int cls = utf8proc_get_property(buffer[k])->combining_class;
            if (cls != 0 && cls < previous_class) changed = true;  // needs reordering
            previous_class = cls;
            dest.push_back({static_cast<char32_t>(buffer[k]), k > 0 ? 1 : 0});
        }
    }
    if (!changed) return;
    // Canonical ordering: stable sort each run of non-starters by combining class.
    auto ccc = [](char32_t c) {
        return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
    };
    size_t k = 0;
    while (k < dest.size()) {
        if (ccc(dest[k].c) == 0) {
            ++k;
            continue;
        }
        size_t run_end = k;
        while (run_end < dest.size() && ccc(dest[run_end].c) != 0) ++run_end;
        std::stable_sort(
            dest.begin() + static_cast<ptrdiff_t>(k),
            dest.begin() + static_cast<ptrdiff_t>(run_end),
            [&](const CharChange& a, const CharChange& b) { return ccc(a.c) < ccc(b.c); });
        k = run_end;
    }
    transform(dest, 0);
}

// NFC/NFKC per segment (a starter and its non-starters): an unchanged segment
// keeps its chars; a changed one maps its first chars onto the output and
// marks extra output chars as new or folds removed ones into the last char.
void NormalizedString::compose(bool compat) {
    if (is_ascii(normalized_)) return;
    std::vector<CharChange> dest;
    dest.reserve(normalized_.size());
    int options = UTF8PROC_COMPOSE | UTF8PROC_STABLE | (compat ? UTF8PROC_COMPAT : 0);
    auto ccc = [](char32_t c) {
        return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
    };
    size_t i = 0;
    while (i < normalized_.size()) {
        size_t seg_start = i;
        next_char(normalized_, i);
        while (i < normalized_.size()) {
            size_t j = i;
            char32_t c = next_char(normalized_, j);
            if (ccc(c) == 0) break;
            i = j;
        }
        std::string_view segment(normalized_.data() + seg_start, i - seg_start);
        utf8proc_uint8_t* out = nullptr;
        utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(segment.data()),
                                          static_cast<utf8proc_ssize_t>(segment.size()), &out,
                                          static_cast<utf8proc_option_t>(options));
        std::string result = n >= 0
                                 ? std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n))
                                 : std::string(segment);
        free(out);
        size_t old_count = count_chars(segment);
        size_t new_count = count_chars(result);
        size_t r = 0, index = 0;
        size_t first_new = dest.size();
        while (r < result.size()) {
            char32_t c = next_char(result, r);
            dest.push_back({c, index < old_count ? 0 : 1});
            ++index;
        }
        if (new_count < old_count && dest.size() > first_new)
            dest.back().change -= int(old_count - new_count);
    }
    transform(dest, 0);
}

void NormalizedString::nfd() { decompose(false); }
void NormalizedString::nfkd() { decompose(true); }
void NormalizedString::nfc() { compose(false); }
void NormalizedString::nfkc() { compose(true); }

void NormalizedString::lowercase() {
    // Fast path: ASCII only, changed in place (same sizes, same alignments).
    if (is_ascii(normalized_)) {
        for (char& c : normalized_)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        return;
    }
    std::vector<CharChange> dest;
    dest.reserve(normalized_.size());
    std::u32string lower;
    bool same_sizes = true;
    size_t i = 0;
    while (i < normalized_.size()) {
        size_t start = i;
        char32_t c = next_char(normalized_, i);
        lower.clear();
        to_lowercase(c, lower);
        if (lower.size() != 1 || char_utf8_len(lower[0]) != i - start) same_sizes = false;
        for (size_t k = 0; k < lower.size(); ++k) dest.push_back({lower[k], k > 0 ? 1 : 0});
    }
    if (same_sizes) {  // one char for one char of the same size: alignments stay
        std::string text;
        text.reserve(normalized_.size());
        for (const CharChange& d : dest) append_utf8(text, d.c);
        normalized_ = std::move(text);
        return;
    }
    transform(dest, 0);
}

void NormalizedString::filter(const std::function<bool(char32_t)>& keep) {
    std::vector<char32_t> chars;
    size_t i = 0;
    while (i < normalized_.size()) chars.push_back(next_char(normalized_, i));
    std::vector<CharChange> reversed;
    reversed.reserve(chars.size());
    int removed = 0;
    bool any_removed = false;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) {
        if (keep(*it)) {
            reversed.push_back({*it, -removed});
            removed = 0;
        } else {
            ++removed;
            any_removed = true;
        }
    }
    if (!any_removed) return;
    std::vector<CharChange> dest(reversed.rbegin(), reversed.rend());
    transform(dest, static_cast<size_t>(removed));
}

void NormalizedString::map(const std::function<char32_t(char32_t)>& fn) {
    std::vector<CharChange> dest;
    dest.reserve(normalized_.size());
    bool changed = false;
    size_t i = 0;
    while (i < normalized_.size()) {
        char32_t c = next_char(normalized_, i);
        char32_t m = fn(c);
        changed |= m != c;
        dest.push_back({m, 0});
    }
    if (changed) transform(dest, 0);
}

void NormalizedString::prepend(std::string_view s) {
    if (normalized_.empty()) return;
    size_t first_len = utf8_len(static_cast<uint8_t>(normalized_[0]));
    size_t j = 0;
    char32_t next = next_char(normalized_, j);
    std::vector<CharChange> dest;
    size_t i = 0;
    while (i < s.size()) dest.push_back({next_char(s, i), dest.empty() ? 0 : 1});
    dest.push_back({next, 1});
    transform_range(0, first_len, dest, 0);
}

void NormalizedString::append(std::string_view s) {
    if (normalized_.empty()) return;
    size_t last = normalized_.size() - 1;
    while (last > 0 && (static_cast<uint8_t>(normalized_[last]) & 0xC0) == 0x80) --last;
    size_t j = last;
    std::vector<CharChange> dest{{next_char(normalized_, j), 0}};
    size_t i = 0;
    while (i < s.size()) dest.push_back({next_char(s, i), 1});
    transform_range(last, normalized_.size(), dest, 0);
}

void NormalizedString::replace(const Pieces& pieces, std::string_view content) {
    std::vector<CharChange> dest;
    size_t i = 0;
    while (i < content.size()) dest.push_back({next_char(content, i), 1});
    ptrdiff_t shift = 0;
    for (const Piece& p : pieces) {
        if (!p.is_match) continue;
        size_t start = static_cast<size_t>(std::max<ptrdiff_t>(0, ptrdiff_t(p.start) + shift));
        size_t end = static_cast<size_t>(std::max<ptrdiff_t>(0, ptrdiff_t(p.end) + shift));
        size_t removed_chars =
            count_chars(std::string_view(normalized_).substr(start, end - start));
        transform_range(start, end, dest, removed_chars);
        shift += ptrdiff_t(content.size()) - ptrdiff_t(p.end - p.start);
    }
}

void NormalizedString::strip(bool left, bool right) {
    std::vector<char32_t> chars;
    size_t i = 0;
    while (i < normalized_.size()) chars.push_back(next_char(normalized_, i));
    size_t leading = 0, trailing = 0;
    if (left)
        while (leading < chars.size() && is_whitespace(chars[leading])) ++leading;
    if (right)
        while (trailing < chars.size() - leading &&
               is_whitespace(chars[chars.size() - 1 - trailing]))
            ++trailing;
    if (leading == 0 && trailing == 0) return;
    std::vector<CharChange> dest;
    for (size_t k = leading; k + trailing < chars.size(); ++k)
        dest.push_back({chars[k], k == chars.size() - trailing - 1 ? -int(trailing) : 0});
    transform(dest, leading);
}

void NormalizedString::map_bytes(const std::array<char32_t, 256>& table) {
    std::string text;
    std::vector<Span> spans;
    text.reserve(normalized_.size() * 2);
    spans.reserve(normalized_.size() * 2);
    size_t i = 0;
    while (i < normalized_.size()) {
        size_t n = std::min(utf8_len(static_cast<uint8_t>(normalized_[i])), normalized_.size() - i);
        Span align = alignments_[i];
        for (size_t k = 0; k < n; ++k) {
            size_t before = text.size();
            append_utf8(text, table[static_cast<uint8_t>(normalized_[i + k])]);
            spans.insert(spans.end(), text.size() - before, align);
        }
        i += n;
    }
    normalized_ = std::move(text);
    alignments_ = std::move(spans);
    check_growth();
}

}  // namespace attnviz::tok
