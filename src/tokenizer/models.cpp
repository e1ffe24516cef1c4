// Models (tokenizers/src/models/*): WordPiece, BPE, Unigram and WordLevel turn
// one split's normalized text into tokens with byte offsets into that text.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {
namespace {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

std::optional<uint32_t> find(const VocabMap& map, std::string_view key) {
    auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    return it->second;
}

uint64_t fnv_hash(std::string_view w) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a, then mixed
    for (char c : w) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    return h ^ (h >> 29);
}

// A read-only string -> id table with open addressing, for the lookups the
// models make per char and per candidate piece.
class FlatVocab {
public:
    void build(const VocabMap& map) {
        size_t cap = 16;
        while (cap < map.size() * 2) cap <<= 1;
        slots_.assign(cap, 0);
        entries_.clear();
        entries_.reserve(map.size());
        for (const auto& [token, id] : map) {
            uint64_t h = fnv_hash(token);
            size_t i = size_t(h) & (cap - 1);
            while (slots_[i] != 0) i = (i + 1) & (cap - 1);
            entries_.push_back({h, token, id});
            slots_[i] = uint32_t(entries_.size());
            max_length_ = std::max(max_length_, token.size());
        }
    }
    std::optional<uint32_t> find(std::string_view key) const {
        if (slots_.empty() || key.size() > max_length_) return std::nullopt;
        uint64_t h = fnv_hash(key);
        size_t mask = slots_.size() - 1, i = size_t(h) & mask;
        while (slots_[i] != 0) {
            const Entry& e = entries_[slots_[i] - 1];
            if (e.hash == h && e.token == key) return e.id;
            i = (i + 1) & mask;
        }
        return std::nullopt;
    }
    size_t max_length() const { return max_length_; }

private:
    struct Entry {
        uint64_t hash;
        std::string token;
        uint32_t id;
    };
    std::vector<uint32_t> slots_;  // 0: free, else index + 1
    std::vector<Entry> entries_;
    size_t max_length_ = 0;
};

// model.vocab, token -> id, each id inside the file's IdSpace.
VocabMap vocab_from_json(const Json& j, const char* where, size_t added_tokens) {
    const Json& vocab = json_at(j, "vocab", where);
    if (!vocab.is_object()) throw Error("model.vocab must be an object of token -> id");
    const IdSpace ids{vocab.size(), added_tokens};
    VocabMap map;
    map.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
        map[it.key()] = ids.id(it.value(), "model.vocab", it.key());
    return map;
}

std::vector<std::string> reverse_vocab(const VocabMap& vocab) {
    uint32_t max_id = 0;
    for (auto& [k, v] : vocab) max_id = std::max(max_id, v);
    std::vector<std::string> r(vocab.empty() ? 0 : size_t(max_id) + 1);
    for (auto& [k, v] : vocab) r[v] = k;
    return r;
}

// A model's result for one word: token ids and their byte lengths.
struct Piece {
    uint32_t id;
    uint32_t len;
};

// Word -> pieces, as tokenizers' BPE and Unigram caches (which hold 10,000
// words; a larger cache changes no output). Open addressing over indices into
// `entries_`: std::unordered_map's bucket walk showed up as the top cost.
class WordCache {
public:
    bool get(std::string_view word, std::vector<Piece>& pieces) const {
        std::lock_guard lock(mutex_);
        uint32_t slot = slot_of(word, fnv_hash(word));
        if (slot == 0) return false;
        pieces = entries_[slot - 1].pieces;
        return true;
    }
    void put(std::string_view word, const std::vector<Piece>& pieces) {
        std::lock_guard lock(mutex_);
        if (entries_.size() >= kCapacity) return;
        uint64_t h = fnv_hash(word);
        uint32_t& slot = slot_of(word, h);
        if (slot != 0) return;
        entries_.push_back({h, std::string(word), pieces});
        slot = uint32_t(entries_.size());
    }

private:
    static constexpr size_t kCapacity = 50000;
    struct Entry {
        uint64_t hash;
        std::string word;
        std::vector<Piece> pieces;
    };
    // The slot holding word, or the free slot where it would go.
    uint32_t& slot_of(std::string_view word, uint64_t h) const {
        size_t mask = slots_.size() - 1, i = size_t(h) & mask;
        while (slots_[i] != 0) {
            const Entry& e = entries_[slots_[i] - 1];
            if (e.hash == h && e.word == word) break;
            i = (i + 1) & mask;
        }
        return slots_[i];
    }
    mutable std::mutex mutex_;
    mutable std::vector<uint32_t> slots_ =
        std::vector<uint32_t>(size_t(1) << 17);  // 0: free, else index + 1
    std::vector<Entry> entries_;
};

// The vocabulary lookups of the models that keep a token -> id map and its
// reverse (WordPiece, WordLevel, BPE).
struct VocabModel : Model {
    VocabMap vocab;
    std::vector<std::string> vocab_r;  // id -> token

    std::optional<uint32_t> token_to_id(std::string_view t) const override {
        return find(vocab, t);
    }
    std::optional<std::string> id_to_token(uint32_t id) const override {
        if (id < vocab_r.size()) return vocab_r[id];
        return std::nullopt;
    }
    size_t vocab_size() const override { return vocab.size(); }
};

// Greedy longest-match-first (models/wordpiece/mod.rs).
struct WordPiece final : VocabModel {
    VocabMap continuation;    // vocab entries that start with the prefix, prefix removed
    FlatVocab words, pieces;  // fast copies of vocab and continuation
    std::string unk_token = "[UNK]", prefix = "##";
    size_t max_input_chars_per_word = 100;
    uint32_t unk_id = 0;

    void finish(const char* where) {
        vocab_r = reverse_vocab(vocab);
        for (auto& [k, v] : vocab)
            if (k.starts_with(prefix)) continuation[k.substr(prefix.size())] = v;
        words.build(vocab);
        pieces.build(continuation);
        auto unk = find(vocab, unk_token);
        if (!unk)
            throw Error(std::string(where) + ": unk_token " + quote(unk_token) +
                        " is not in the vocabulary");
        unk_id = *unk;
    }

    void tokenize(std::string_view text, std::vector<Token>& out) const override {
        if (count_chars(text) > max_input_chars_per_word) {
            out.push_back({unk_id, unk_token, 0, text.size()});
            return;
        }
        size_t first = out.size();
        size_t start = 0;
        while (start < text.size()) {
            const FlatVocab& table = start > 0 ? pieces : words;
            // Nothing longer than the longest entry can match: start there.
            size_t end = std::min(text.size(), start + table.max_length());
            while (end > start && end < text.size() &&
                   (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80)
                --end;
            bool found = false;
            while (start < end) {
                std::string_view piece = text.substr(start, end - start);
                auto id = table.find(piece);
                if (id) {
                    out.push_back({*id,
                                   start > 0 ? prefix + std::string(piece) : std::string(piece),
                                   start, end});
                    found = true;
                    break;
                }
                do --end;  // back off one char
                while (end > start && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80);
            }
            if (!found) {
                out.resize(first);
                out.push_back({unk_id, unk_token, 0, text.size()});
                return;
            }
            start = end;
        }
    }
};

struct WordLevel final : VocabModel {
    std::string unk_token = "<unk>";
    void tokenize(std::string_view text, std::vector<Token>& out) const override {
        if (auto id = find(vocab, text)) {
            out.push_back({*id, std::string(text), 0, text.size()});
        } else if (auto unk = find(vocab, unk_token)) {
            out.push_back({*unk, unk_token, 0, text.size()});
        } else {
            throw Error("WordLevel: " + quote(text) +
                        " is not in the vocabulary and there is no unk_token");
        }
    }
};

// Byte-pair encoding (models/bpe/model.rs, word.rs): start from chars, apply
// the lowest-ranked merge first (leftmost on ties) until none applies.
struct BPE final : VocabModel {
    struct MergeInfo {
        uint32_t rank, new_id;
    };
    // (left id, right id) -> merge, open addressing: the hottest lookup in BPE.
    struct MergeTable {
        std::vector<uint64_t> keys;  // kEmpty where free
        std::vector<MergeInfo> values;
        static constexpr uint64_t kEmpty = ~uint64_t(0);
        void reserve(size_t n) {
            size_t cap = 16;
            while (cap < n * 2) cap <<= 1;
            keys.assign(cap, kEmpty);
            values.assign(cap, {});
        }
        static size_t slot(uint64_t key, size_t mask) {
            return size_t((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
        }
        void insert(uint64_t key, MergeInfo v) {
            size_t mask = keys.size() - 1, i = slot(key, mask);
            while (keys[i] != kEmpty && keys[i] != key) i = (i + 1) & mask;
            keys[i] = key;  // a repeated pair: the later merge wins, as in tokenizers' HashMap
            values[i] = v;
        }
        const MergeInfo* find(uint64_t key) const {
            if (keys.empty()) return nullptr;
            size_t mask = keys.size() - 1, i = slot(key, mask);
            while (keys[i] != kEmpty) {
                if (keys[i] == key) return &values[i];
                i = (i + 1) & mask;
            }
            return nullptr;
        }
    };
    MergeTable merges;
    std::vector<int32_t> char_ids;  // id of each single char below U+3000 that is a token
    std::optional<std::string> unk_token, prefix, suffix;
    bool fuse_unk = false, byte_fallback = false, ignore_merges = false;

    mutable WordCache cache;

    static uint64_t pair_key(uint32_t a, uint32_t b) { return uint64_t(a) << 32 | b; }

    void add_merges(const Json& list) {
        merges.reserve(list.size());
        char_ids.assign(0x3000, -1);
        for (auto& [token, id] : vocab) {
            size_t i = 0;
            if (token.empty()) continue;
            char32_t c = next_char(token, i);
            if (i == token.size() && c < 0x3000) char_ids[c] = int32_t(id);
        }
        uint32_t rank = 0;
        for (const Json& m : list) {
            std::string a, b;
            const std::string where = "model.merges: entry " + std::to_string(rank);
            if (m.is_string()) {
                std::string s = m.get<std::string>();
                size_t space = s.find(' ', 1);
                if (space == std::string::npos)
                    throw Error(where + ": " + quote(s) + " is not two tokens");
                a = s.substr(0, space);
                b = s.substr(space + 1);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                a = m[0].get<std::string>();
                b = m[1].get<std::string>();
            } else {
                throw Error(where + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
            auto ia = find(vocab, a), ib = find(vocab, b);
            if (!ia) throw Error(where + ": " + quote(a) + " is not in the vocabulary");
            if (!ib) throw Error(where + ": " + quote(b) + " is not in the vocabulary");
            std::string merged = a;
            size_t skip = prefix && b.starts_with(*prefix) ? prefix->size() : 0;
            merged.append(b, skip);
            auto id = find(vocab, merged);
            if (!id) throw Error(where + ": " + quote(merged) + " is not in the vocabulary");
            merges.insert(pair_key(*ia, *ib), MergeInfo{rank, *id});
            ++rank;
        }
    }

    struct Symbol {
        uint32_t id;
        int prev, next;
        uint32_t len;
    };

    std::vector<Piece> merge_word(std::string_view w) const {
        std::vector<Symbol> symbols;
        symbols.reserve(w.size());
        auto add = [&](uint32_t id, uint32_t len) {
            int n = int(symbols.size());
            symbols.push_back({id, n - 1, n + 1, len});
        };
        Piece unk{0, 0};
        bool has_unk = false;
        std::string buffer;
        size_t i = 0;
        const bool plain = !(prefix && !prefix->empty()) && !(suffix && !suffix->empty());
        while (i < w.size()) {
            size_t start = i;
            char32_t c = next_char(w, i);
            std::string_view s = w.substr(start, i - start);
            uint32_t byte_len = uint32_t(s.size());
            if (plain && c < 0x3000 && char_ids[c] >= 0) {  // fast path, same as the lookup below
                if (has_unk) {
                    add(unk.id, unk.len);
                    has_unk = false;
                }
                add(uint32_t(char_ids[c]), byte_len);
                continue;
            }
            if ((start > 0 && prefix && !prefix->empty()) ||
                (i == w.size() && suffix && !suffix->empty())) {
                buffer.clear();
                if (start > 0 && prefix) buffer += *prefix;
                buffer += s;
                if (i == w.size() && suffix) buffer += *suffix;
                s = buffer;
            }
            if (auto id = find(vocab, s)) {
                if (has_unk) {
                    add(unk.id, unk.len);
                    has_unk = false;
                }
                add(*id, byte_len);
                continue;
            }
            if (byte_fallback) {
                std::vector<uint32_t> ids;
                for (char b : s) {
                    char code[8];
                    snprintf(code, sizeof code, "<0x%02X>", static_cast<uint8_t>(b));
                    auto id = find(vocab, code);
                    if (!id) break;
                    ids.push_back(*id);
                }
                if (ids.size() == s.size()) {
                    for (uint32_t id : ids) add(id, 1);
                    continue;
                }
            }
            if (unk_token) {
                auto unk_id = find(vocab, *unk_token);
                if (!unk_id)
                    throw Error("BPE: unk_token " + quote(*unk_token) +
                                " is not in the vocabulary");
                if (has_unk && fuse_unk) {
                    unk.len += byte_len;
                } else {
                    if (has_unk) add(unk.id, unk.len);
                    unk = Piece{*unk_id, byte_len};
                    has_unk = true;
                }
            }
        }
        if (has_unk) add(unk.id, unk.len);
        if (!symbols.empty()) symbols.back().next = -1;

        struct Merge {
            size_t pos;
            uint32_t rank, new_id;
            bool operator<(const Merge& o) const {
                return rank != o.rank ? rank > o.rank : pos > o.pos;
            }
        };
        std::priority_queue<Merge> queue;
        for (size_t k = 0; k + 1 < symbols.size(); ++k) {
            if (auto m = merges.find(pair_key(symbols[k].id, symbols[k + 1].id)))
                queue.push({k, m->rank, m->new_id});
        }
        while (!queue.empty()) {
            Merge top = queue.top();
            queue.pop();
            Symbol& cur = symbols[top.pos];
            if (cur.len == 0 || cur.next == -1) continue;
            size_t next_pos = size_t(cur.next);
            Symbol right = symbols[next_pos];
            auto m = merges.find(pair_key(cur.id, right.id));
            if (!m || m->new_id != top.new_id) continue;  // stale entry
            cur.id = top.new_id;
            cur.len += right.len;
            cur.next = right.next;
            symbols[next_pos].len = 0;
            if (right.next > -1 && size_t(right.next) < symbols.size())
                symbols[size_t(right.next)].prev = int(top.pos);
            if (cur.prev >= 0) {
                auto p = merges.find(pair_key(symbols[size_t(cur.prev)].id, cur.id));
                if (p) queue.push({size_t(cur.prev), p->rank, p->new_id});
            }
            if (cur.next >= 0 && size_t(cur.next) < symbols.size()) {
                auto n = merges.find(pair_key(cur.id, symbols[size_t(cur.next)].id));
                if (n) queue.push({top.pos, n->rank, n->new_id});
            }
        }
        std::vector<Piece> pieces;
        for (const Symbol& s : symbols)
            if (s.len != 0) pieces.push_back({s.id, s.len});
        return pieces;
    }

    void emit(const std::vector<Piece>& pieces, std::vector<Token>& out) const {
        size_t at = 0;
        for (const Piece& p : pieces) {
            out.push_back(
                {p.id, p.id < vocab_r.size() ? vocab_r[p.id] : std::string(), at, at + p.len});
            at += p.len;
        }
    }

    void tokenize(std::string_view text, std::vector<Token>& out) const override {
        if (text.empty()) return;
        if (ignore_merges)
            if (auto id = find(vocab, text)) {
                out.push_back({*id, std::string(text), 0, text.size()});
                return;
            }
        thread_local std::vector<Piece> pieces;  // reused: no allocation per word
        if (!cache.get(text, pieces)) {
            pieces = merge_word(text);
            cache.put(text, pieces);
        }
        emit(pieces, out);
    }
};

// Unigram (models/unigram/model.rs, encode_optimized): Viterbi over all vocab
// pieces that match at each char; an unknown char costs min_score - 10, and
// neighbouring unknowns are fused into one token.
struct Unigram final : Model {
    std::vector<std::pair<std::string, double>> pieces;
    VocabMap token_to_ids;
    // A byte trie of the pieces: node i's children are labels/targets
    // [edges_begin, edges_end), sorted by label; id is the piece ending there.
    struct TrieNode {
        uint32_t edges_begin = 0, edges_end = 0;
        int32_t id = -1;
    };
    std::vector<TrieNode> trie;
    std::vector<uint8_t> labels;
    std::vector<uint32_t> targets;
    FlatVocab ids;  // token_to_ids, for the per-token lookups
    mutable WordCache cache;
    std::optional<uint32_t> unk_id;
    bool byte_fallback = false;
    double min_score = std::numeric_limits<double>::infinity();
    static constexpr double kUnkPenalty = 10.0;

    void finish() {
        std::vector<std::map<uint8_t, uint32_t>> children(1);
        std::vector<int32_t> node_ids(1, -1);
        for (size_t id = 0; id < pieces.size(); ++id) {
            const std::string& p = pieces[id].first;
            token_to_ids[p] = uint32_t(id);  // duplicates: the last one wins, as in tokenizers
            min_score = std::min(min_score, pieces[id].second);
            uint32_t node = 0;
            for (char ch : p) {
                auto [it, added] =
                    children[node].emplace(static_cast<uint8_t>(ch), uint32_t(children.size()));
                if (added) {
                    children.emplace_back();
                    node_ids.push_back(-1);
                }
                node = it->second;
            }
        }
        for (auto& [p, id] : token_to_ids) {
            uint32_t node = 0;
            for (char ch : p) node = children[node].at(static_cast<uint8_t>(ch));
            node_ids[node] = int32_t(id);
        }
        ids.build(token_to_ids);
        trie.resize(children.size());
        for (size_t n = 0; n < children.size(); ++n) {
            trie[n].edges_begin = uint32_t(labels.size());
            for (auto [label, child] : children[n]) {
                labels.push_back(label);
                targets.push_back(child);
            }
            trie[n].edges_end = uint32_t(labels.size());
            trie[n].id = node_ids[n];
        }
    }

    // The child of node along byte b, or -1.
    int64_t child(uint32_t node, uint8_t b) const {
        const uint8_t* first = labels.data() + trie[node].edges_begin;
        const uint8_t* last = labels.data() + trie[node].edges_end;
        const uint8_t* it = std::lower_bound(first, last, b);
        if (it == last || *it != b) return -1;
        return targets[size_t(it - labels.data())];
    }

    std::vector<std::string_view> encode(std::string_view s) const {
        struct Node {
            uint32_t id = 0;
            double score = 0;
            std::optional<size_t> starts_at;
        };
        const double unk_score = min_score - kUnkPenalty;
        std::vector<Node> best(s.size() + 1);
        size_t at = 0;
        while (at < s.size()) {
            double here = best[at].score;
            size_t mblen = std::min(utf8_len(static_cast<uint8_t>(s[at])), s.size() - at);
            bool has_single_node = false;
            uint32_t node = 0;
            for (size_t n = 1; at + n <= s.size(); ++n) {
                int64_t next = child(node, static_cast<uint8_t>(s[at + n - 1]));
                if (next < 0) break;
                node = uint32_t(next);
                if (trie[node].id < 0) continue;
                uint32_t id = uint32_t(trie[node].id);
                double candidate = pieces[id].second + here;
                Node& target = best[at + n];
                if (!target.starts_at || candidate > target.score) target = {id, candidate, at};
                if (n == mblen) has_single_node = true;
            }
            if (!has_single_node) {
                if (!unk_id) throw Error("Unigram: unknown character and no unk_id");
                Node& target = best[at + mblen];
                double candidate = unk_score + here;
                if (!target.starts_at || candidate > target.score)
                    target = {*unk_id, candidate, at};
            }
            at += mblen;
        }
        std::vector<std::string_view> results;
        size_t end = s.size();
        size_t fused_end = 0;
        bool fusing = false;
        while (end > 0) {
            const Node& node = best[end];
            size_t start = *node.starts_at;
            if (unk_id && node.id == *unk_id) {
                if (!fusing) fused_end = end;
                fusing = true;
            } else {
                if (fusing) results.push_back(s.substr(end, fused_end - end));
                fusing = false;
                results.push_back(s.substr(start, end - start));
            }
            end = start;
        }
        if (fusing) results.push_back(s.substr(0, fused_end));
        std::reverse(results.begin(), results.end());
        return results;
    }

    void tokenize(std::string_view text, std::vector<Token>& out) const override {
        if (text.empty()) return;
        thread_local std::vector<Piece> cached;  // reused: no allocation per word
        cached.clear();
        if (!byte_fallback && cache.get(text, cached)) {
            size_t offset = 0;
            for (const Piece& p : cached) {
                out.push_back(
                    {p.id, std::string(text.substr(offset, p.len)), offset, offset + p.len});
                offset += p.len;
            }
            return;
        }
        size_t offset = 0;
        for (std::string_view piece : encode(text)) {
            size_t len = piece.size();
            auto id = ids.find(piece);
            if (!id && byte_fallback) {
                std::vector<Token> bytes;
                for (char b : piece) {
                    char code[8];
                    snprintf(code, sizeof code, "<0x%02X>", static_cast<uint8_t>(b));
                    auto bid = ids.find(code);
                    if (!bid) break;
                    bytes.push_back({*bid, code, offset, offset + len});
                }
                if (bytes.size() == piece.size()) {
                    for (auto& t : bytes) out.push_back(std::move(t));
                    offset += len;
                    continue;
                }
            }
            if (!id && !unk_id) throw Error("Unigram: unknown piece and no unk_id");
            out.push_back({id ? *id : *unk_id, std::string(piece), offset, offset + len});
            cached.push_back({out.back().id, uint32_t(len)});
            offset += len;
        }
        if (!byte_fallback) cache.put(text, cached);
    }
    std::optional<uint32_t> token_to_id(std::string_view t) const override {
        return find(token_to_ids, t);
    }
    std::optional<std::string> id_to_token(uint32_t id) const override {
        if (id < pieces.size()) return pieces[id].first;
        return std::nullopt;
    }
    size_t vocab_size() const override { return pieces.size(); }
};

std::optional<std::string> optional_string(const Json& j, const char* key) {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    return j[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Model> model_from_json(const Json& j, size_t added_tokens) {
    if (!j.is_object()) throw Error("\"model\" must be an object");
    std::string type = json_string(j, "type", "");
    if (type.empty()) {  // older files leave the type out; the fields tell
        if (j.contains("merges"))
            type = "BPE";
        else if (j.contains("unk_id") || (j.contains("vocab") && j["vocab"].is_array()))
            type = "Unigram";
        else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word"))
            type = "WordPiece";
        else
            type = "WordLevel";
    }
    if (type == "WordPiece") {
        auto m = std::make_unique<WordPiece>();
        m->vocab = vocab_from_json(j, "model WordPiece", added_tokens);
        m->unk_token = json_string(j, "unk_token", "[UNK]");
        m->prefix = json_string(j, "continuing_subword_prefix", "##");
        if (j.contains("max_input_chars_per_word"))
            m->max_input_chars_per_word = j["max_input_chars_per_word"].get<size_t>();
        m->finish("model WordPiece");
        return m;
    }
    if (type == "BPE") {
        auto m = std::make_unique<BPE>();
        m->vocab = vocab_from_json(j, "model BPE", added_tokens);
        m->vocab_r = reverse_vocab(m->vocab);
        m->unk_token = optional_string(j, "unk_token");
        m->prefix = optional_string(j, "continuing_subword_prefix");
        m->suffix = optional_string(j, "end_of_word_suffix");
        m->fuse_unk = json_bool(j, "fuse_unk", false);
        m->byte_fallback = json_bool(j, "byte_fallback", false);
        m->ignore_merges = json_bool(j, "ignore_merges", false);
        if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0)
            throw Error("model BPE: dropout is not supported (tokenization would be random)");
        m->add_merges(json_at(j, "merges", "model BPE"));
        return m;
    }
    if (type == "Unigram") {
        auto m = std::make_unique<Unigram>();
        const Json& vocab = json_at(j, "vocab", "model Unigram");
        if (!vocab.is_array()) throw Error("model.vocab must be an array of [piece, score]");
        m->pieces.reserve(vocab.size());
        for (const Json& p : vocab) {
            if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number())
                throw Error("model.vocab: entry " + std::to_string(m->pieces.size()) +
                            " is not [piece, score]");
            m->pieces.emplace_back(p[0].get<std::string>(), p[1].get<double>());
        }
        if (j.contains("unk_id") && !j["unk_id"].is_null()) {
            const Json& unk = j["unk_id"];
            if (!unk.is_number_integer() || unk.get<int64_t>() < 0 ||
                unk.get<uint64_t>() >= m->pieces.size())
                throw Error("model.unk_id: " + unk.dump() + " is not a piece of the vocabulary (" +
                            std::to_string(m->pieces.size()) + " pieces)");
            m->unk_id = uint32_t(unk.get<uint64_t>());
        }
        m->byte_fallback = json_bool(j, "byte_fallback", false);
        m->finish();
        return m;
    }
    if (type == "WordLevel") {
        auto m = std::make_unique<WordLevel>();
        m->vocab = vocab_from_json(j, "model WordLevel", added_tokens);
        m->vocab_r = reverse_vocab(m->vocab);
        m->unk_token = json_string(j, "unk_token", "<unk>");
        return m;
    }
    throw Error("tokenizer.json: unknown model type " + quote(type));
}

}  // namespace attnviz::tok
