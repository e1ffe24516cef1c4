// NormalizedString: the text being normalized, the untouched original, and for
// every normalized byte the [start, end) byte span of the original it came
// from. Every edit goes through transform_range, so offsets into the user's
// text survive NFD, lowercasing, accent stripping and byte-level mapping.
// Mirrors tokenizers/src/tokenizer/normalizer.rs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attnviz::tok {

struct Span {
    uint32_t start = 0;
    uint32_t end = 0;
    bool operator==(const Span&) const = default;
};

// One char of a transform's output. change: 0 replaces the next input char,
// 1 is a new char (it shares the previous char's alignment), -N replaces the
// next input char and removes the N after it.
struct CharChange {
    char32_t c;
    int change;
};

// A cover of a string by [start, end) byte ranges, each flagged match or not.
struct Piece {
    size_t start, end;
    bool is_match;
};
using Pieces = std::vector<Piece>;

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

class NormalizedString {
public:
    NormalizedString() = default;
    explicit NormalizedString(std::string_view original);

    const std::string& get() const { return normalized_; }
    const std::string& original() const { return original_; }
    size_t original_shift() const { return original_shift_; }
    bool empty() const { return normalized_.empty(); }
    size_t size() const { return normalized_.size(); }

    // [start, end) in the original text (shift included) of the whole string.
    std::pair<size_t, size_t> offsets_original() const {
        return {original_shift_, original_shift_ + original_.size()};
    }
    // Original byte range (relative to this slice) of a normalized byte range.
    std::optional<std::pair<size_t, size_t>> normalized_to_original(size_t start, size_t end) const;

    NormalizedString slice(size_t start, size_t end) const;  // a normalized byte range
    std::vector<NormalizedString> split(const Pieces& pieces, SplitBehavior behavior) const;

    void transform_range(size_t start, size_t end, const std::vector<CharChange>& dest,
                         size_t initial_offset);
    void transform(const std::vector<CharChange>& dest, size_t initial_offset) {
        transform_range(0, normalized_.size(), dest, initial_offset);
    }

    void nfd();
    void nfkd();
    void nfc();
    void nfkc();
    void lowercase();
    void filter(const std::function<bool(char32_t)>& keep);
    void map(const std::function<char32_t(char32_t)>& fn);
    void prepend(std::string_view s);
    void append(std::string_view s);
    // Replaces every matched piece with content.
    void replace(const Pieces& pieces, std::string_view content);
    void strip(bool left, bool right);
    // Each byte b becomes the char table[b], aligned as the char it came from:
    // the transform of pre_tokenizers/byte_level.rs, built directly.
    void map_bytes(const std::array<char32_t, 256>& table);

    // How much longer than its original a normalized text may become: more is an Error.
    static constexpr size_t kMaxGrowth = 64;

private:
    void check_growth() const;
    void decompose(bool compat);
    void compose(bool compat);

    std::string original_;
    std::string normalized_;
    std::vector<Span> alignments_;  // one per normalized byte
    size_t original_shift_ = 0;
};

}  // namespace attnviz::tok
