// Tokenizer: builds the pipeline from tokenizer.json (or from the older files,
// by writing the tokenizer.json they stand for) and runs it:
// added tokens -> normalizer -> pre-tokenizer -> model -> post-processor.
#include "attnviz/tokenizer.h"

#include <climits>
#include <map>
#include <unordered_map>

#include "attnviz/error.h"
#include "io/files.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/legacy_files.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace attnviz {

using tok::Json;

namespace tok {

const Json& json_at(const Json& j, const char* key, const char* where) {
    if (!j.is_object() || !j.contains(key))
        throw Error(std::string(where) + ": missing key \"" + key + "\"");
    return j[key];
}

bool json_bool(const Json& j, const char* key, bool fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_boolean())
        throw Error(std::string("tokenizer.json: \"") + key + "\" must be true or false");
    return j[key].get<bool>();
}

std::string json_string(const Json& j, const char* key, const std::string& fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_string())
        throw Error(std::string("tokenizer.json: \"") + key + "\" must be a string");
    return j[key].get<std::string>();
}

std::string json_char(const Json& j, const char* key, const std::string& fallback) {
    std::string s = json_string(j, key, fallback);
    size_t i = 0;
    if (!s.empty()) next_char(s, i);
    if (s.empty() || i != s.size())
        throw Error(std::string("tokenizer.json: \"") + key + "\" must be one character, not " +
                    quote(s));
    return s;
}

std::string quote(std::string_view text) {
    constexpr size_t kMax = 60;
    const bool cut = text.size() > kMax;
    // A cut inside a character, or bytes that are not UTF-8 (vocab.txt), print as U+FFFD.
    std::string out = Json(std::string(text.substr(0, kMax)))
                          .dump(-1, ' ', false, Json::error_handler_t::replace);
    if (cut) out.insert(out.size() - 1, "...");
    return out;
}

uint32_t IdSpace::id(const Json& value, const std::string& where, std::string_view token) const {
    const uint64_t limit = uint64_t(vocab_entries) + added_tokens;
    if (!value.is_number_integer()) {
        std::string shown = value.dump(-1, ' ', false, Json::error_handler_t::replace);
        if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
        throw Error(where + ": id " + shown + " for " + quote(token) +
                    " is not a non-negative integer");
    }
    const bool negative = !value.is_number_unsigned() && value.get<int64_t>() < 0;
    if (negative || value.get<uint64_t>() >= std::min<uint64_t>(limit, INT32_MAX))
        throw Error(where + ": id " + value.dump() + " for " + quote(token) +
                    " is out of range: the file has " + std::to_string(vocab_entries) +
                    " vocabulary entries and " + std::to_string(added_tokens) +
                    " added tokens, so ids must be below " + std::to_string(limit));
    return uint32_t(value.get<uint64_t>());
}

}  // namespace tok

struct Tokenizer::Impl {
    std::unique_ptr<tok::Normalizer> normalizer;
    std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
    std::unique_ptr<tok::Model> model;
    std::unique_ptr<tok::PostProcessor> post_processor;
    std::unique_ptr<tok::Decoder> decoder;
    tok::AddedVocabulary added;
    std::optional<size_t> model_max_length;

    // Ids as tokenizers' AddedVocabulary::add_tokens gives them on load: the
    // content's id if it has one (added earlier or in the model), else the
    // next free id past the vocabulary. The file's "id" is only a hint there
    // too, but one outside the id space is refused, not dropped.
    std::vector<tok::AddedToken> read_added_tokens(const Json& list,
                                                   const tok::IdSpace& id_space) const {
        std::vector<tok::AddedToken> tokens;
        std::unordered_map<std::string, size_t> index;  // content -> position in tokens
        const uint32_t vocab_size = uint32_t(model->vocab_size());
        std::optional<uint32_t> max_id;  // the largest id given so far
        for (const Json& t : list) {
            tok::AddedToken a;
            const Json& content = tok::json_at(t, "content", "added_tokens");
            if (!content.is_string())
                throw Error("added_tokens: \"content\" must be a string, not " +
                            std::string(content.type_name()));
            a.content = content.get<std::string>();
            if (t.contains("id") && !t["id"].is_null())
                id_space.id(t["id"], "added_tokens", a.content);
            a.special = tok::json_bool(t, "special", false);
            a.single_word = tok::json_bool(t, "single_word", false);
            a.lstrip = tok::json_bool(t, "lstrip", false);
            a.rstrip = tok::json_bool(t, "rstrip", false);
            a.normalized = tok::json_bool(t, "normalized", !a.special);
            if (a.content.empty()) continue;
            auto known = index.find(a.content);
            if (known != index.end()) {
                a.id = tokens[known->second].id;
            } else if (auto id = model->token_to_id(a.content)) {
                a.id = *id;
            } else {
                a.id = !max_id                                      ? vocab_size
                       : (*max_id >= vocab_size || vocab_size == 0) ? *max_id + 1
                                                                    : vocab_size;
            }
            max_id = std::max(max_id.value_or(0), a.id);
            if (known != index.end()) {
                tokens[known->second] = std::move(a);  // a later entry with the same content wins
            } else {
                index.emplace(a.content, tokens.size());
                tokens.push_back(std::move(a));
            }
        }
        return tokens;
    }

    // Builds one part of the pipeline from tokenizer.json's `key`; a JSON value
    // of the wrong type there is an Error naming the key.
    template <typename Build>
    static auto section(const char* key, Build&& build) {
        try {
            return build();
        } catch (const nlohmann::json::exception& e) {
            throw Error(std::string(key) + ": unexpected JSON layout: " + e.what());
        }
    }

    // unused_ids: ids the vocabulary may leave without a token beyond those
    // the added tokens take (see IdSpace).
    static std::shared_ptr<Impl> from_json(const Json& j, const Json& config, size_t unused_ids) {
        if (!j.is_object()) throw Error("expected a JSON object");
        auto impl = std::make_shared<Impl>();
        const Json no_added = Json::array();
        const Json& added_json = j.contains("added_tokens") && !j["added_tokens"].is_null()
                                     ? j["added_tokens"]
                                     : no_added;
        if (!added_json.is_array()) throw Error("added_tokens must be an array");
        impl->normalizer = section(
            "normalizer", [&] { return tok::normalizer_from_json(j.value("normalizer", Json())); });
        impl->pre_tokenizer = section("pre_tokenizer", [&] {
            return tok::pre_tokenizer_from_json(j.value("pre_tokenizer", Json()));
        });
        impl->model = section("model", [&] {
            return tok::model_from_json(tok::json_at(j, "model", "tokenizer.json"),
                                        added_json.size() + unused_ids);
        });
        const tok::IdSpace id_space{impl->model->vocab_size(), added_json.size() + unused_ids};
        impl->post_processor = section("post_processor", [&] {
            return tok::post_processor_from_json(j.value("post_processor", Json()), id_space);
        });
        impl->decoder =
            section("decoder", [&] { return tok::decoder_from_json(j.value("decoder", Json())); });
        std::vector<tok::AddedToken> tokens =
            section("added_tokens", [&] { return impl->read_added_tokens(added_json, id_space); });
        impl->added = tok::AddedVocabulary(std::move(tokens), impl->normalizer.get());
        if (config.is_object() && config.contains("model_max_length") &&
            config["model_max_length"].is_number()) {
            double m = config["model_max_length"].get<double>();
            if (m > 0 && m < 1e12)
                impl->model_max_length = size_t(m);  // HF writes 1e30 for "no limit"
        }
        return impl;
    }

    // tokenizers' encode_single_sequence + PreTokenizedString::into_encoding.
    Encoding encode_single(std::string_view text, int32_t type_id, int8_t sequence_id) const {
        tok::PreTokenizedString pre = added.extract_and_normalize(normalizer.get(), text);
        if (pre_tokenizer) pre_tokenizer->pre_tokenize(pre);
        std::vector<tok::Token> scratch;
        for (tok::Split& s : pre.splits())
            if (!s.tokens) {
                scratch.clear();
                model->tokenize(s.normalized.get(), scratch);
                s.tokens = std::move(scratch);
                scratch = {};
            }

        // Byte offset -> code point index, as BytesToCharOffsetConverter.
        std::vector<uint32_t> char_of_byte(text.size());
        uint32_t chars = 0;
        for (size_t i = 0; i < text.size(); ++i) {
            if ((static_cast<uint8_t>(text[i]) & 0xC0) != 0x80 && i > 0) ++chars;
            char_of_byte[i] = chars;
        }
        auto to_chars = [&](size_t s, size_t e) -> Offset {
            if (s >= text.size()) return {uint32_t(s), uint32_t(e)};  // HF keeps byte offsets here
            uint32_t start = char_of_byte[s];
            if (e < text.size()) return {start, char_of_byte[e]};
            uint32_t last = e >= 1 && e - 1 < text.size() ? char_of_byte[e - 1] : start + 1;
            return {start, last + 1};
        };

        Encoding enc;
        int32_t word = 0;  // into_encoding: a token's word is the index of its split
        for (const tok::Split& s : pre.splits()) {
            const int32_t word_id = word++;
            size_t shift = s.normalized.original_shift();
            for (const tok::Token& t : *s.tokens) {
                size_t start = t.start, end = t.end;
                if (auto r = s.normalized.normalized_to_original(t.start, t.end)) {
                    start = shift + r->first;
                    end = shift + r->second;
                }
                enc.ids.push_back(int32_t(t.id));
                enc.tokens.push_back(t.value);
                enc.offsets.push_back(to_chars(start, end));
                enc.word_ids.push_back(word_id);
            }
        }
        enc.type_ids.assign(enc.ids.size(), type_id);
        enc.attention_mask.assign(enc.ids.size(), 1);
        enc.special_tokens_mask.assign(enc.ids.size(), 0);
        enc.sequence_ids.assign(enc.ids.size(), sequence_id);
        return enc;
    }

    static void truncate(Encoding& e, size_t n) {
        if (e.ids.size() <= n) return;
        e.ids.resize(n);
        e.tokens.resize(n);
        e.type_ids.resize(n);
        e.attention_mask.resize(n);
        e.special_tokens_mask.resize(n);
        e.offsets.resize(n);
        e.sequence_ids.resize(n);
        e.word_ids.resize(n);
    }

    // utils/truncation.rs, LongestFirst, direction right, no stride.
    static void truncate_longest_first(Encoding& a, std::optional<Encoding>& b, size_t max_length) {
        size_t total = a.size() + (b ? b->size() : 0);
        if (total <= max_length) return;
        if (!b) {
            truncate(a, max_length);
            return;
        }
        size_t n1 = a.size(), n2 = b->size();
        bool swap = n1 > n2;
        if (swap) std::swap(n1, n2);
        n2 = n1 > max_length ? n1 : std::max(n1, max_length - n1);
        if (n1 + n2 > max_length) {
            n1 = max_length / 2;
            n2 = n1 + max_length % 2;
        }
        if (swap) std::swap(n1, n2);
        truncate(a, n1);
        truncate(*b, n2);
    }

    Encoding encode(std::string_view a, const std::string_view* b,
                    const EncodeOptions& options) const {
        tok::check_utf8(a);
        if (b) tok::check_utf8(*b);
        Encoding enc_a = encode_single(a, 0, 0);
        std::optional<Encoding> enc_b;
        if (b) enc_b = encode_single(*b, 1, 1);

        if (options.max_length > 0) {
            size_t added_count = options.add_special_tokens && post_processor
                                     ? post_processor->added_tokens(b != nullptr)
                                     : 0;
            size_t total = enc_a.size() + (enc_b ? enc_b->size() : 0) + added_count;
            if (total > options.max_length) {
                if (!options.truncate)
                    throw TooLongError("text is " + std::to_string(total) +
                                       " tokens; the model allows at most " +
                                       std::to_string(options.max_length));
                if (added_count >= options.max_length)
                    throw Error("max length " + std::to_string(options.max_length) +
                                " leaves no room beside the special tokens");
                truncate_longest_first(enc_a, enc_b, options.max_length - added_count);
            }
        }

        std::vector<Encoding> parts;
        parts.push_back(std::move(enc_a));
        if (enc_b) parts.push_back(std::move(*enc_b));
        parts = post_processor ? post_processor->process_encodings(std::move(parts),
                                                                   options.add_special_tokens)
                               : tok::default_process(std::move(parts));
        Encoding out;
        for (const Encoding& part : parts) tok::append_encoding(out, part);

        // Byte offsets from the code point offsets, in each token's own text.
        auto table = [](std::string_view s) {
            std::vector<uint32_t> t{0};
            size_t i = 0;
            while (i < s.size()) {
                tok::next_char(s, i);
                t.push_back(uint32_t(i));
            }
            return t;
        };
        std::vector<uint32_t> bytes_a = table(a),
                              bytes_b = b ? table(*b) : std::vector<uint32_t>{0};
        out.byte_offsets.resize(out.offsets.size());
        for (size_t i = 0; i < out.offsets.size(); ++i) {
            const auto& t = out.sequence_ids[i] == 1 ? bytes_b : bytes_a;
            auto at = [&](uint32_t c) { return t[std::min<size_t>(c, t.size() - 1)]; };
            out.byte_offsets[i] = {at(out.offsets[i].start), at(out.offsets[i].end)};
        }
        return out;
    }
};

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

// The tokenizer.json that the older files of a folder stand for; source is
// set to what an error about them names, unused_ids to the ids their
// vocabulary leaves without a token.
static Json legacy_description(const std::filesystem::path& folder, const Json& config,
                               std::string& source, size_t& unused_ids) {
    namespace fs = std::filesystem;
    if (fs::exists(folder / "vocab.txt")) {
        source = (folder / "vocab.txt").string();
        return tok::wordpiece_json_from_vocab_txt(folder / "vocab.txt", config, unused_ids);
    }
    if (fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt")) {
        source = (folder / "vocab.json").string() + " and merges.txt";
        return tok::bpe_json_from_vocab_and_merges(folder / "vocab.json", folder / "merges.txt",
                                                   config);
    }
    if (fs::exists(folder / "spiece.model")) {
        source = (folder / "spiece.model").string();
        return tok::unigram_json_from_spiece(folder / "spiece.model", config);
    }
    throw Error("no tokenizer in " + folder.string() +
                ": expected tokenizer.json, vocab.txt, vocab.json + merges.txt, or spiece.model");
}

Tokenizer Tokenizer::from_folder(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(folder)) throw Error("tokenizer folder not found: " + folder.string());
    Json config;
    if (fs::exists(folder / "tokenizer_config.json"))
        config = io::read_json(folder / "tokenizer_config.json");
    std::string source;  // the file(s) an error names
    Json description;
    if (fs::exists(folder / "tokenizer.json")) {  // read_json's own errors name the file
        description = io::read_json(folder / "tokenizer.json");
        source = (folder / "tokenizer.json").string();
    }
    try {
        size_t unused_ids = 0;
        if (source.empty()) description = legacy_description(folder, config, source, unused_ids);
        return Tokenizer(Impl::from_json(description, config, unused_ids));
    } catch (const Error& e) {
        if (source.empty()) throw;
        throw Error(source + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
        if (source.empty()) throw Error(folder.string() + ": unexpected JSON layout: " + e.what());
        throw Error(source + ": unexpected JSON layout: " + e.what());
    }
}

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
    return impl_->encode(text, nullptr, options);
}

Encoding Tokenizer::encode_pair(std::string_view text_a, std::string_view text_b,
                                const EncodeOptions& options) const {
    return impl_->encode(text_a, &text_b, options);
}

std::string Tokenizer::display_token(std::string_view token) const {
    if (!impl_->decoder) return std::string(token);
    return impl_->decoder->display(std::string(token));
}

std::vector<std::string> Tokenizer::display_tokens(const Encoding& encoding) const {
    std::vector<std::string> out;
    out.reserve(encoding.tokens.size());
    for (size_t i = 0; i < encoding.tokens.size(); ++i) {
        bool special = i < encoding.special_tokens_mask.size() && encoding.special_tokens_mask[i];
        out.push_back(special ? encoding.tokens[i] : display_token(encoding.tokens[i]));
    }
    return out;
}

std::optional<size_t> Tokenizer::model_max_length() const { return impl_->model_max_length; }

nlohmann::json encoding_to_json(const Encoding& e) {
    Json offsets = Json::array(), offsets_utf8 = Json::array();
    for (const Offset& o : e.offsets) offsets.push_back({o.start, o.end});
    for (const Offset& o : e.byte_offsets) offsets_utf8.push_back({o.start, o.end});
    Json word_ids = Json::array();  // null for special tokens, as word_ids() gives None
    for (int32_t w : e.word_ids) word_ids.push_back(w < 0 ? Json() : Json(w));
    return Json{{"ids", e.ids},
                {"tokens", e.tokens},
                {"token_type_ids", e.type_ids},
                {"attention_mask", e.attention_mask},
                {"special_tokens_mask", e.special_tokens_mask},
                {"offsets", std::move(offsets)},
                {"offsets_utf8", std::move(offsets_utf8)},
                {"word_ids", std::move(word_ids)}};
}

}  // namespace attnviz
