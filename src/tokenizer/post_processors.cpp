// Post-processors (tokenizers/src/processors/*.rs): join the encodings of
// text A and text B and add the model's special tokens and type ids.
#include <charconv>
#include <map>

#include "attnviz/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace attnviz::tok {

void append_encoding(Enc& a, const Enc& b) {
    a.ids.insert(a.ids.end(), b.ids.begin(), b.ids.end());
    a.tokens.insert(a.tokens.end(), b.tokens.begin(), b.tokens.end());
    a.type_ids.insert(a.type_ids.end(), b.type_ids.begin(), b.type_ids.end());
    a.attention_mask.insert(a.attention_mask.end(), b.attention_mask.begin(),
                            b.attention_mask.end());
    a.special_tokens_mask.insert(a.special_tokens_mask.end(), b.special_tokens_mask.begin(),
                                 b.special_tokens_mask.end());
    a.offsets.insert(a.offsets.end(), b.offsets.begin(), b.offsets.end());
    a.sequence_ids.insert(a.sequence_ids.end(), b.sequence_ids.begin(), b.sequence_ids.end());
    a.word_ids.insert(a.word_ids.end(), b.word_ids.begin(), b.word_ids.end());
}

std::vector<Enc> default_process(std::vector<Enc> encodings) {
    if (encodings.size() < 2) return encodings;
    Enc joined;
    for (size_t i = 0; i < encodings.size(); ++i) {
        encodings[i].sequence_ids.assign(encodings[i].ids.size(), int8_t(i));
        append_encoding(joined, encodings[i]);
    }
    return {std::move(joined)};
}

static void append_special(Enc& e, uint32_t id, const std::string& token, int32_t type_id) {
    e.ids.push_back(int32_t(id));
    e.tokens.push_back(token);
    e.type_ids.push_back(type_id);
    e.attention_mask.push_back(1);
    e.special_tokens_mask.push_back(1);
    e.offsets.push_back({0, 0});
    e.sequence_ids.push_back(-1);
    e.word_ids.push_back(-1);
}

static void set_type_ids(Enc& e, int32_t type_id) { e.type_ids.assign(e.ids.size(), type_id); }

void trim_byte_level_offsets(Enc& e, bool add_prefix_space) {
    auto is_space = [](char32_t c) { return c == 0x120 || is_whitespace(c); };  // 0x120: 'Ġ'
    for (size_t i = 0; i < e.tokens.size(); ++i) {
        std::u32string chars;
        size_t k = 0;
        while (k < e.tokens[i].size()) chars.push_back(next_char(e.tokens[i], k));
        size_t leading = 0, trailing = 0;
        while (leading < chars.size() && is_space(chars[leading])) ++leading;
        while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
        Offset& o = e.offsets[i];
        if (leading > 0) {
            bool is_first = i == 0 || o.start == 0;
            if (is_first && add_prefix_space && leading == 1) leading = 0;
            o.start = std::min<uint32_t>(o.start + uint32_t(leading), o.end);
        }
        if (trailing > 0 && o.end >= trailing)
            o.end = std::max<uint32_t>(o.end - uint32_t(trailing), o.start);
    }
}

namespace {

struct BertProcessing final : PostProcessor {
    std::pair<std::string, uint32_t> sep{"[SEP]", 102}, cls{"[CLS]", 101};
    size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
    std::vector<Enc> process_encodings(std::vector<Enc> encodings,
                                       bool add_special_tokens) const override {
        if (!add_special_tokens) return default_process(std::move(encodings));
        std::vector<Enc> out;
        for (size_t i = 0; i < encodings.size(); ++i) {
            Enc e;
            if (i == 0) append_special(e, cls.second, cls.first, 0);
            set_type_ids(encodings[i], int32_t(i == 0 ? 0 : 1));
            append_encoding(e, encodings[i]);
            append_special(e, sep.second, sep.first, int32_t(i == 0 ? 0 : 1));
            out.push_back(std::move(e));
        }
        return out;
    }
};

struct RobertaProcessing final : PostProcessor {
    std::pair<std::string, uint32_t> sep{"</s>", 2}, cls{"<s>", 0};
    bool trim_offsets = true, add_prefix_space = true;
    size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
    std::vector<Enc> process_encodings(std::vector<Enc> encodings,
                                       bool add_special_tokens) const override {
        for (Enc& e : encodings) {
            if (trim_offsets) trim_byte_level_offsets(e, add_prefix_space);
            set_type_ids(e, 0);  // RoBERTa has one type id
        }
        if (!add_special_tokens) return encodings;
        std::vector<Enc> out;
        for (size_t i = 0; i < encodings.size(); ++i) {
            Enc e;
            if (i == 0)
                append_special(e, cls.second, cls.first, 0);
            else
                append_special(e, sep.second, sep.first, 0);
            append_encoding(e, encodings[i]);
            append_special(e, sep.second, sep.first, 0);
            out.push_back(std::move(e));
        }
        return out;
    }
};

struct ByteLevelProcessing final : PostProcessor {
    bool trim_offsets = true, add_prefix_space = true;
    size_t added_tokens(bool) const override { return 0; }
    std::vector<Enc> process_encodings(std::vector<Enc> encodings, bool) const override {
        for (size_t i = 0; i < encodings.size(); ++i) {
            if (trim_offsets) trim_byte_level_offsets(encodings[i], add_prefix_space);
            encodings[i].sequence_ids.assign(encodings[i].ids.size(), int8_t(i));
        }
        return encodings;
    }
};

// TemplateProcessing: "[CLS]:0 $A:0 [SEP]:0" lists the pieces of the output
// in order; $A and $B are the two texts, anything else a special token, and
// the number after the colon is the type id every token of that piece gets.
struct TemplateProcessing final : PostProcessor {
    struct Piece {
        bool is_sequence;
        std::string id;  // "A"/"B" or the special token's name
        int32_t type_id;
    };
    struct Special {
        std::vector<uint32_t> ids;
        std::vector<std::string> tokens;
    };
    std::vector<Piece> single, pair;
    std::map<std::string, Special> special_tokens;

    size_t count_special(const std::vector<Piece>& t) const {
        size_t n = 0;
        for (const Piece& p : t)
            if (!p.is_sequence) n += special_tokens.at(p.id).ids.size();
        return n;
    }
    size_t added_tokens(bool is_pair) const override {
        return count_special(is_pair ? pair : single);
    }

    std::vector<Enc> process_encodings(std::vector<Enc> encodings,
                                       bool add_special_tokens) const override {
        const std::vector<Piece>& t = encodings.size() >= 2 ? pair : single;
        std::vector<Enc> out;
        for (const Piece& p : t) {
            if (p.is_sequence) {
                size_t i = (p.id == "A" || encodings.size() < 2) ? 0 : 1;
                Enc e = encodings[i];
                set_type_ids(e, p.type_id);
                e.sequence_ids.assign(e.ids.size(), int8_t(i));
                out.push_back(std::move(e));
            } else if (add_special_tokens) {
                const Special& s = special_tokens.at(p.id);
                Enc e;
                for (size_t k = 0; k < s.ids.size(); ++k)
                    append_special(e, s.ids[k], s.tokens[k], p.type_id);
                out.push_back(std::move(e));
            }
        }
        return out;
    }

    static std::vector<Piece> parse(const Json& list, const char* where) {
        std::vector<Piece> out;
        if (list.is_string()) {  // the "[CLS]:0 $A:0" string form
            std::string s = list.get<std::string>();
            size_t i = 0;
            while (i < s.size()) {
                size_t end = s.find(' ', i);
                if (end == std::string::npos) end = s.size();
                std::string item = s.substr(i, end - i);
                i = end + 1;
                if (item.empty()) continue;
                int32_t type_id = 0;
                size_t colon = item.rfind(':');
                if (colon != std::string::npos && colon > 0) {
                    const char* first = item.data() + colon + 1;
                    const char* last = item.data() + item.size();
                    auto [end, error] = std::from_chars(first, last, type_id);
                    if (error != std::errc() || end != last || type_id < 0)
                        throw Error(std::string(where) + ": " + quote(item) +
                                    " does not end in a type id \":<n>\"");
                    item.resize(colon);
                }
                if (item == "$" || item == "$A" || item == "$0")
                    out.push_back({true, "A", type_id});
                else if (item == "$B" || item == "$1")
                    out.push_back({true, "B", type_id});
                else
                    out.push_back({false, item, type_id});
            }
            return out;
        }
        for (const Json& p : list) {
            if (p.contains("Sequence")) {
                out.push_back({true, p["Sequence"].at("id").get<std::string>(),
                               p["Sequence"].value("type_id", 0)});
            } else if (p.contains("SpecialToken")) {
                out.push_back({false, p["SpecialToken"].at("id").get<std::string>(),
                               p["SpecialToken"].value("type_id", 0)});
            } else {
                throw Error(std::string(where) +
                            ": a template piece is neither Sequence nor SpecialToken");
            }
        }
        return out;
    }
};

std::pair<std::string, uint32_t> token_pair(const Json& j, const char* key, const IdSpace& ids,
                                            std::pair<std::string, uint32_t> fallback) {
    if (!j.contains(key)) return fallback;
    const Json& pair = j[key];
    const std::string where = std::string("post_processor.") + key;
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
        throw Error(where + " must be [token, id]");
    std::string token = pair[0].get<std::string>();
    return {token, ids.id(pair[1], where, token)};
}

struct SequenceProcessing final : PostProcessor {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    size_t added_tokens(bool is_pair) const override {
        size_t n = 0;
        for (auto& s : steps) n += s->added_tokens(is_pair);
        return n;
    }
    std::vector<Enc> process_encodings(std::vector<Enc> encodings,
                                       bool add_special_tokens) const override {
        // Each step gets the pieces the one before returned (processors/sequence.rs).
        for (auto& s : steps)
            encodings = s->process_encodings(std::move(encodings), add_special_tokens);
        return encodings;
    }
};

}  // namespace

std::unique_ptr<PostProcessor> post_processor_from_json(const Json& j, const IdSpace& ids) {
    if (j.is_null()) return nullptr;
    if (!j.is_object()) throw Error("post_processor must be an object");
    const std::string type = json_string(j, "type", "");
    if (type == "BertProcessing") {
        auto p = std::make_unique<BertProcessing>();
        p->sep = token_pair(j, "sep", ids, p->sep);
        p->cls = token_pair(j, "cls", ids, p->cls);
        return p;
    }
    if (type == "RobertaProcessing") {
        auto p = std::make_unique<RobertaProcessing>();
        p->sep = token_pair(j, "sep", ids, p->sep);
        p->cls = token_pair(j, "cls", ids, p->cls);
        p->trim_offsets = json_bool(j, "trim_offsets", true);
        p->add_prefix_space = json_bool(j, "add_prefix_space", true);
        return p;
    }
    if (type == "ByteLevel") {
        auto p = std::make_unique<ByteLevelProcessing>();
        p->trim_offsets = json_bool(j, "trim_offsets", true);
        p->add_prefix_space = json_bool(j, "add_prefix_space", true);
        return p;
    }
    if (type == "TemplateProcessing") {
        auto p = std::make_unique<TemplateProcessing>();
        p->single = TemplateProcessing::parse(json_at(j, "single", "TemplateProcessing"),
                                              "TemplateProcessing");
        p->pair = TemplateProcessing::parse(json_at(j, "pair", "TemplateProcessing"),
                                            "TemplateProcessing");
        const Json& specials = json_at(j, "special_tokens", "TemplateProcessing");
        if (!specials.is_object())
            throw Error("post_processor.special_tokens must be an object of name -> token");
        for (auto it = specials.begin(); it != specials.end(); ++it) {
            TemplateProcessing::Special s;
            for (const Json& id : it.value().at("ids"))
                s.ids.push_back(ids.id(id, "post_processor.special_tokens", it.key()));
            for (const Json& t : it.value().at("tokens")) s.tokens.push_back(t.get<std::string>());
            if (s.ids.size() != s.tokens.size())
                throw Error("TemplateProcessing: special token " + quote(it.key()) +
                            " has unequal ids and tokens");
            p->special_tokens[it.key()] = std::move(s);
        }
        for (const auto* t : {&p->single, &p->pair})
            for (const auto& piece : *t)
                if (!piece.is_sequence && !p->special_tokens.count(piece.id))
                    throw Error("TemplateProcessing: " + quote(piece.id) +
                                " is missing from special_tokens");
        return p;
    }
    if (type == "Sequence") {
        auto p = std::make_unique<SequenceProcessing>();
        for (const Json& item : json_at(j, "processors", "post_processor Sequence"))
            if (auto child = post_processor_from_json(item, ids))
                p->steps.push_back(std::move(child));
        return p;
    }
    throw Error("tokenizer.json: unknown post_processor type " + quote(type));
}

}  // namespace attnviz::tok
