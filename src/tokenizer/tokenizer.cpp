// Tokenizer: builds the pipeline from tokenizer.json (or from the older files,
// by writing the tokenizer.json they stand for) and runs it:
// added tokens -> normalizer -> pre-tokenizer -> model -> post-processor.
#include "attnviz/tokenizer.h"

#include <map>

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

}  // namespace tok

struct Tokenizer::Impl {
    std::unique_ptr<tok::Normalizer> normalizer;
    std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
    std::unique_ptr<tok::Model> model;
    std::unique_ptr<tok::PostProcessor> post_processor;
    std::unique_ptr<tok::Decoder> decoder;
    tok::AddedVocabulary added;
    std::optional<size_t> model_max_length;

    static std::shared_ptr<Impl> from_json(const Json& j, const Json& config) {
        auto impl = std::make_shared<Impl>();
        impl->normalizer = tok::normalizer_from_json(j.value("normalizer", Json()));
        impl->pre_tokenizer = tok::pre_tokenizer_from_json(j.value("pre_tokenizer", Json()));
        impl->model = tok::model_from_json(tok::json_at(j, "model", "tokenizer.json"));
        impl->post_processor = tok::post_processor_from_json(j.value("post_processor", Json()));
        impl->decoder = tok::decoder_from_json(j.value("decoder", Json()));
        // Ids as tokenizers' AddedVocabulary::add_tokens gives them on load: the
        // content's id if it has one (added earlier or in the model), else the
        // next free id past the vocabulary. The file's "id" is only a hint there too.
        std::vector<tok::AddedToken> tokens;
        std::map<std::string, uint32_t> ids;
        const uint32_t vocab_size = uint32_t(impl->model->vocab_size());
        for (const Json& t : j.value("added_tokens", Json::array())) {
            tok::AddedToken a;
            a.content = tok::json_at(t, "content", "added_tokens").get<std::string>();
            a.special = tok::json_bool(t, "special", false);
            a.single_word = tok::json_bool(t, "single_word", false);
            a.lstrip = tok::json_bool(t, "lstrip", false);
            a.rstrip = tok::json_bool(t, "rstrip", false);
            a.normalized = tok::json_bool(t, "normalized", !a.special);
            if (a.content.empty()) continue;
            if (auto it = ids.find(a.content); it != ids.end()) {
                a.id = it->second;
            } else if (auto id = impl->model->token_to_id(a.content)) {
                a.id = *id;
            } else {
                uint32_t max_id = 0;
                for (auto& [content, id] : ids) max_id = std::max(max_id, id);
                a.id = ids.empty()                                 ? vocab_size
                       : (max_id >= vocab_size || vocab_size == 0) ? max_id + 1
                                                                   : vocab_size;
            }
            ids[a.content] = a.id;
            bool replaced = false;  // a later entry with the same content wins
            for (tok::AddedToken& old : tokens)
                if (old.content == a.content) {
                    old = a;
                    replaced = true;
                }
            if (!replaced) tokens.push_back(std::move(a));
        }
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
        for (const tok::Split& s : pre.splits()) {
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

Tokenizer Tokenizer::from_folder(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(folder)) throw Error("tokenizer folder not found: " + folder.string());
    Json config;
    if (fs::exists(folder / "tokenizer_config.json"))
        config = io::read_json(folder / "tokenizer_config.json");
    Json description;
    fs::path source;
    if (fs::exists(folder / "tokenizer.json")) {
        source = folder / "tokenizer.json";
        description = io::read_json(source);
    } else if (fs::exists(folder / "vocab.txt")) {
        source = folder / "vocab.txt";
        description = tok::wordpiece_json_from_vocab_txt(source, config);
    } else if (fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt")) {
        source = folder / "vocab.json";
        description = tok::bpe_json_from_vocab_and_merges(folder / "vocab.json",
                                                          folder / "merges.txt", config);
    } else if (fs::exists(folder / "spiece.model")) {
        source = folder / "spiece.model";
        description = tok::unigram_json_from_spiece(source, config);
    } else {
        throw Error(
            "no tokenizer in " + folder.string() +
            ": expected tokenizer.json, vocab.txt, vocab.json + merges.txt, or spiece.model");
    }
    try {
        return Tokenizer(Impl::from_json(description, config));
    } catch (const Error& e) {
        throw Error(source.string() + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
        throw Error(source.string() + ": unexpected JSON layout: " + e.what());
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
    return Json{{"ids", e.ids},
                {"tokens", e.tokens},
                {"token_type_ids", e.type_ids},
                {"attention_mask", e.attention_mask},
                {"special_tokens_mask", e.special_tokens_mask},
                {"offsets", std::move(offsets)},
                {"offsets_utf8", std::move(offsets_utf8)}};
}

}  // namespace attnviz
