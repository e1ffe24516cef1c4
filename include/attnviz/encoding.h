// Encoding: what a tokenizer produces for one text or a text pair, field for
// field as Hugging Face tokenizers' Encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace attnviz {

// [start, end) into the text of the token's own sequence (text A or text B).
struct Offset {
    uint32_t start = 0;
    uint32_t end = 0;
    bool operator==(const Offset&) const = default;
};

struct Encoding {
    std::vector<int32_t> ids;
    std::vector<std::string> tokens;  // as the model produced them ("##ing", "Ġthe")
    std::vector<int32_t> type_ids;    // token_type_ids
    std::vector<uint8_t> attention_mask;
    std::vector<uint8_t> special_tokens_mask;  // 1 for [CLS], [SEP], <s>, added special tokens
    std::vector<Offset> offsets;               // Unicode code points, as Hugging Face reports them
    std::vector<Offset> byte_offsets;          // the same spans in UTF-8 bytes
    std::vector<int8_t> sequence_ids;          // 0: text A, 1: text B, -1: special token
    // Hugging Face's word_ids(): the index of the pre-tokenizer split the
    // token came from, counted per sequence; -1 for added special tokens.
    std::vector<int32_t> word_ids;

    size_t size() const { return ids.size(); }
};

}  // namespace attnviz
