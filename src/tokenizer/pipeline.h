// The pieces of the Hugging Face tokenizers pipeline, each an interface with
// one method: Normalizer::normalize, PreTokenizer::pre_tokenize,
// Model::tokenize, PostProcessor::process, Decoder::decode_token. Each has one
// *_from_json that reads tokenizer.json's "type" and names an unknown one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnviz/encoding.h"
#include "tokenizer/normalized_string.h"

namespace attnviz::tok {

using Json = nlohmann::json;

// A model's output: an id, its string, and [start, end) bytes in the split's
// normalized text.
struct Token {
    uint32_t id;
    std::string value;
    size_t start, end;
};

struct Split {
    NormalizedString normalized;
    std::optional<std::vector<Token>> tokens;  // set once a split is final
};

// The text cut into splits; each split keeps its alignments to the original.
class PreTokenizedString {
public:
    explicit PreTokenizedString(std::string_view text) : original_(text) {
        splits_.push_back({NormalizedString(text), std::nullopt});
    }
    // Replaces every split without tokens by what split_fn pushes (empty ones dropped).
    template <typename F>
    void split(F&& split_fn) {
        std::vector<Split> next;
        next.reserve(splits_.size() * 2);
        for (Split& s : splits_) {
            if (s.tokens) {
                next.push_back(std::move(s));
                continue;
            }
            size_t first = next.size();
            split_fn(std::move(s.normalized), next);
            size_t keep = first;
            for (size_t i = first; i < next.size(); ++i)
                if (!next[i].normalized.empty()) {
                    if (keep != i) next[keep] = std::move(next[i]);
                    ++keep;
                }
            next.resize(keep);
        }
        splits_ = std::move(next);
    }
    template <typename F>
    void normalize(F&& fn) {
        for (Split& s : splits_)
            if (!s.tokens) fn(s.normalized);
    }
    std::vector<Split>& splits() { return splits_; }
    const std::string& original() const { return original_; }

private:
    std::string original_;
    std::vector<Split> splits_;
};

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(NormalizedString& text) const = 0;
};

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    virtual void pre_tokenize(PreTokenizedString& text) const = 0;
};

class Model {
public:
    virtual ~Model() = default;
    virtual void tokenize(std::string_view text, std::vector<Token>& out) const = 0;
    virtual std::optional<uint32_t> token_to_id(std::string_view token) const = 0;
    virtual std::optional<std::string> id_to_token(uint32_t id) const = 0;
    virtual size_t vocab_size() const = 0;
};

// An encoding while it is being built: the public fields plus nothing else.
using Enc = Encoding;

// tokenizers' PostProcessor::process_encodings: takes the encodings of the
// texts (one or two) and returns the pieces of the result in order (special
// tokens included), which the caller concatenates.
class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    virtual size_t added_tokens(bool is_pair) const = 0;
    virtual std::vector<Enc> process_encodings(std::vector<Enc> encodings,
                                               bool add_special_tokens) const = 0;
};

class Decoder {
public:
    virtual ~Decoder() = default;
    // tokenizers' decode_chain: each token's text, in order.
    virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
    // One token as the views show it, read as a token inside a word or text
    // ("##ing" -> "ing", "\u0120the" -> " the").
    virtual std::string display(const std::string& token) const;
};

// The ids a tokenizer file may use. tokenizers numbers the vocabulary and then
// the added tokens after it, so no id of a valid file reaches vocabulary
// entries + added tokens; refusing the others bounds every table sized by an
// id by the size of the file itself.
struct IdSpace {
    size_t vocab_entries = 0, added_tokens = 0;
    // value as an id, or an Error naming the key (`where`) and the token:
    // 'model.vocab: id 134217728 for "x" is out of range (...)'.
    uint32_t id(const Json& value, const std::string& where, std::string_view token) const;
};

std::unique_ptr<Normalizer> normalizer_from_json(const Json& j);
std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const Json& j);
// added_tokens: the ids past the vocabulary entries the file may use (see IdSpace).
std::unique_ptr<Model> model_from_json(const Json& j, size_t added_tokens);
// ids: the tokenizer's id space, which its special token ids must be inside.
std::unique_ptr<PostProcessor> post_processor_from_json(const Json& j, const IdSpace& ids);
std::unique_ptr<Decoder> decoder_from_json(const Json& j);

// tokenizers' default_process: one encoding stays; two are joined, each
// keeping its type ids.
std::vector<Enc> default_process(std::vector<Enc> encodings);
// Appends b to a (tokenizers' Encoding::merge_with, without overflow).
void append_encoding(Enc& a, const Enc& b);
// ByteLevel offset trimming (processors/byte_level.rs process_offsets).
void trim_byte_level_offsets(Enc& e, bool add_prefix_space);

// A token or other text of a file for an error message: JSON-quoted, control
// characters escaped (the message stays one line), cut to at most 60 bytes.
std::string quote(std::string_view text);

// JSON helpers that name the key at fault.
const Json& json_at(const Json& j, const char* key, const char* where);
bool json_bool(const Json& j, const char* key, bool fallback);
std::string json_string(const Json& j, const char* key, const std::string& fallback);
// A key tokenizers reads as one char (Metaspace's replacement, Strip's content).
std::string json_char(const Json& j, const char* key, const std::string& fallback);

}  // namespace attnviz::tok
