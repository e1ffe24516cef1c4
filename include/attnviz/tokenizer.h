// Tokenizer: Hugging Face tokenizers' pipeline (normalizer -> pre-tokenizer ->
// model -> post-processor), read from tokenizer.json or the older files.
// Owner: src/tokenizer. Every public entry point is declared here.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnviz/encoding.h"
#include "attnviz/error.h"

namespace attnviz {

// What encoding throws for a text longer than EncodeOptions::max_length without
// truncate: "text is N tokens; the model allows at most M". A program adds how
// its users cut the text (attnviz view --truncate).
class TooLongError : public Error {
public:
    using Error::Error;
};

struct EncodeOptions {
    bool add_special_tokens = true;
    // Longer encodings are a TooLongError naming the token count and the
    // limit, unless truncate is set. 0: no limit.
    size_t max_length = 0;
    bool truncate = false;
};

class Tokenizer {
public:
    // tokenizer.json, else vocab.txt (+ tokenizer_config.json), vocab.json +
    // merges.txt, or spiece.model. Throws Error naming the missing or bad file.
    static Tokenizer from_folder(const std::filesystem::path& folder);

    // Throws Error for invalid UTF-8, naming the byte position.
    Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
    Encoding encode_pair(std::string_view text_a, std::string_view text_b,
                         const EncodeOptions& options = {}) const;

    // The readable form of one token for the views, from the tokenizer's
    // decoder: "##ing" -> "ing", "Ġthe" -> " the", "▁the" -> " the".
    std::string display_token(std::string_view token) const;

    // tokenizer_config.json's model_max_length, when it gives one.
    std::optional<size_t> model_max_length() const;

    // The readable form of every token of an encoding (see display_token).
    std::vector<std::string> display_tokens(const Encoding& encoding) const;

    struct Impl;

private:
    explicit Tokenizer(std::shared_ptr<const Impl> impl);
    std::shared_ptr<const Impl> impl_;
};

// An encoding as the JSON object `attnviz tokenize` prints and the goldens
// hold: ids, tokens, token_type_ids, attention_mask, special_tokens_mask,
// offsets ([[start, end], ...] in code points) and offsets_utf8 (bytes).
nlohmann::json encoding_to_json(const Encoding& encoding);

}  // namespace attnviz
