// Folders without tokenizer.json: each older file set is turned into the
// tokenizer.json that Hugging Face's slow-to-fast converters
// (transformers' convert_slow_tokenizer.py) would write for it, so one
// pipeline builder serves every folder.
#pragma once

#include <filesystem>

#include "tokenizer/pipeline.h"

namespace attnviz::tok {

// BERT: vocab.txt, one token per line; do_lower_case from tokenizer_config.json.
// unused_ids: the ids (line numbers) that a repeated token leaves without a
// token (the last line of a token gives its id, as in transformers' load_vocab).
Json wordpiece_json_from_vocab_txt(const std::filesystem::path& vocab_txt, const Json& config,
                                   size_t& unused_ids);
// GPT-2 / RoBERTa byte-level BPE; RoBERTa's processing when the vocab has <s> and </s>.
Json bpe_json_from_vocab_and_merges(const std::filesystem::path& vocab_json,
                                    const std::filesystem::path& merges_txt, const Json& config);
// T5-style SentencePiece Unigram model read with libsentencepiece; </s> is appended.
Json unigram_json_from_spiece(const std::filesystem::path& spiece_model, const Json& config);

}  // namespace attnviz::tok
