#include "tokenizer/legacy_files.h"

#include <sentencepiece_processor.h>

#include "attnviz/error.h"
#include "io/files.h"

namespace attnviz::tok {
namespace {

Json added_token(const std::string& content, uint32_t id, bool normalized, bool lstrip = false) {
    return Json{
        {"id", id},         {"content", content}, {"special", true},         {"single_word", false},
        {"lstrip", lstrip}, {"rstrip", false},    {"normalized", normalized}};
}

std::string config_string(const Json& config, const char* key, const std::string& fallback) {
    if (!config.is_object() || !config.contains(key)) return fallback;
    const Json& v = config[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();  // AddedToken form
    return fallback;
}

bool config_bool(const Json& config, const char* key, bool fallback) {
    if (!config.is_object() || !config.contains(key) || config[key].is_null()) return fallback;
    if (!config[key].is_boolean())
        throw Error(std::string("tokenizer_config.json: \"") + key + "\" must be true or false");
    return config[key].get<bool>();
}

Json special_template(const std::string& name, uint32_t id) {
    return Json{{"id", name}, {"ids", {id}}, {"tokens", {name}}};
}

Json piece(const char* kind, const std::string& id, int type_id) {
    return Json{{kind, {{"id", id}, {"type_id", type_id}}}};
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(at, end - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
        at = end + 1;
    }
    return lines;
}

}  // namespace

Json wordpiece_json_from_vocab_txt(const std::filesystem::path& vocab_txt, const Json& config,
                                   size_t& unused_ids) {
    Json vocab = Json::object();
    uint32_t index = 0;
    for (const std::string& line : split_lines(io::read_file(vocab_txt))) vocab[line] = index++;
    unused_ids = index - vocab.size();
    bool lower = config_bool(config, "do_lower_case", true);
    Json strip_accents =
        config.is_object() && config.contains("strip_accents") ? config["strip_accents"] : Json();
    bool chinese = config_bool(config, "tokenize_chinese_chars", true);
    std::string unk = config_string(config, "unk_token", "[UNK]"),
                cls = config_string(config, "cls_token", "[CLS]"),
                sep = config_string(config, "sep_token", "[SEP]"),
                pad = config_string(config, "pad_token", "[PAD]"),
                mask = config_string(config, "mask_token", "[MASK]");
    for (const std::string* name : {&unk, &cls, &sep})
        if (!vocab.contains(*name)) throw Error(quote(*name) + " is not in the vocabulary");

    Json added = Json::array();
    std::vector<std::pair<uint32_t, std::string>> specials;
    for (const std::string* name : {&pad, &unk, &cls, &sep, &mask})
        if (vocab.contains(*name)) specials.emplace_back(vocab[*name].get<uint32_t>(), *name);
    std::sort(specials.begin(), specials.end());
    for (auto& [id, name] : specials) added.push_back(added_token(name, id, false));

    uint32_t cls_id = vocab[cls].get<uint32_t>(), sep_id = vocab[sep].get<uint32_t>();
    return Json{
        {"added_tokens", added},
        {"normalizer",
         {{"type", "BertNormalizer"},
          {"clean_text", true},
          {"handle_chinese_chars", chinese},
          {"strip_accents", strip_accents},
          {"lowercase", lower}}},
        {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
        {"post_processor",
         {{"type", "TemplateProcessing"},
          {"single",
           {piece("SpecialToken", cls, 0), piece("Sequence", "A", 0),
            piece("SpecialToken", sep, 0)}},
          {"pair",
           {piece("SpecialToken", cls, 0), piece("Sequence", "A", 0), piece("SpecialToken", sep, 0),
            piece("Sequence", "B", 1), piece("SpecialToken", sep, 1)}},
          {"special_tokens",
           {{cls, special_template(cls, cls_id)}, {sep, special_template(sep, sep_id)}}}}},
        {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
        {"model",
         {{"type", "WordPiece"},
          {"unk_token", unk},
          {"continuing_subword_prefix", "##"},
          {"max_input_chars_per_word", 100},
          {"vocab", std::move(vocab)}}}};
}

Json bpe_json_from_vocab_and_merges(const std::filesystem::path& vocab_json,
                                    const std::filesystem::path& merges_txt, const Json& config) {
    Json vocab = io::read_json(vocab_json);
    if (!vocab.is_object())
        throw Error(vocab_json.string() + ": expected a JSON object of token -> id");
    // The ids the BPE model and the special tokens below take from the file.
    const IdSpace ids{vocab.size(), 0};
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
        ids.id(it.value(), "vocab.json", it.key());
    Json merges = Json::array();
    for (const std::string& line : split_lines(io::read_file(merges_txt))) {
        if (line.empty() || line.starts_with("#version")) continue;
        merges.push_back(line);
    }
    bool add_prefix_space = config.is_object() && config.contains("add_prefix_space") &&
                            config["add_prefix_space"].is_boolean() &&
                            config["add_prefix_space"].get<bool>();
    bool roberta = vocab.contains("<s>") && vocab.contains("</s>");

    Json added = Json::array();
    std::vector<std::pair<uint32_t, std::string>> specials;
    // RobertaTokenizer's special tokens, or GPT2Tokenizer's one.
    std::vector<const char*> names =
        roberta ? std::vector<const char*>{"<s>", "<pad>", "</s>", "<unk>", "<mask>"}
                : std::vector<const char*>{"<|endoftext|>"};
    for (const char* name : names)
        if (vocab.contains(name)) specials.emplace_back(vocab[name].get<uint32_t>(), name);
    std::sort(specials.begin(), specials.end());
    for (auto& [id, name] : specials)
        added.push_back(added_token(name, id, true, name == "<mask>"));

    Json post =
        roberta ? Json{{"type", "RobertaProcessing"},
                       {"sep", {"</s>", vocab["</s>"]}},
                       {"cls", {"<s>", vocab["<s>"]}},
                       {"trim_offsets", true},
                       {"add_prefix_space", add_prefix_space}}
                : Json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}};
    return Json{
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer",
         {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}}},
        {"post_processor", post},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
        {"model",
         {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", ""},
          {"end_of_word_suffix", ""},
          {"fuse_unk", false},
          {"vocab", std::move(vocab)},
          {"merges", std::move(merges)}}}};
}

namespace {

// Just enough protobuf to read ModelProto.normalizer_spec.precompiled_charsmap
// (field 3, then field 2), which libsentencepiece's API does not expose.
struct ProtoReader {
    std::string_view data;
    size_t at = 0;
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; at < data.size() && shift < 64; shift += 7) {
            uint8_t b = static_cast<uint8_t>(data[at++]);
            v |= uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        throw Error("spiece.model: truncated protobuf");
    }
    // The bytes of the first length-delimited field `field`, if present.
    std::optional<std::string_view> find_bytes(uint32_t field) {
        while (at < data.size()) {
            uint64_t key = varint();
            uint32_t number = uint32_t(key >> 3), wire = uint32_t(key & 7);
            if (wire == 0) {
                varint();
            } else if (wire == 1) {
                at += 8;
            } else if (wire == 5) {
                at += 4;
            } else if (wire == 2) {
                uint64_t len = varint();
                if (len > data.size() - std::min(at, data.size()))
                    throw Error("spiece.model: truncated protobuf");
                std::string_view bytes = data.substr(at, len);
                at += len;
                if (number == field) return bytes;
            } else {
                throw Error("spiece.model: unsupported protobuf wire type");
            }
        }
        return std::nullopt;
    }
};

}  // namespace

Json unigram_json_from_spiece(const std::filesystem::path& spiece_model, const Json& config) {
    sentencepiece::SentencePieceProcessor sp;
    auto status = sp.Load(spiece_model.string());
    if (!status.ok()) throw Error("cannot read SentencePiece model: " + status.ToString());

    Json vocab = Json::array();
    const int n = sp.GetPieceSize();
    for (int id = 0; id < n; ++id) vocab.push_back({sp.IdToPiece(id), double(sp.GetScore(id))});
    // T5 appends its sentinel tokens after the pieces, <extra_id_0> last.
    int extra_ids = 100;
    if (config.is_object() && config.contains("extra_ids")) {
        // A sentinel token per extra id: no more than the model has pieces.
        const Json& v = config["extra_ids"];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > n)
            throw Error("tokenizer_config.json: extra_ids " + v.dump() +
                        " is not a count from 0 to the model's " + std::to_string(n) + " pieces");
        extra_ids = v.get<int>();
    }
    for (int i = extra_ids - 1; i >= 0; --i)
        vocab.push_back({"<extra_id_" + std::to_string(i) + ">", 0.0});

    Json added = Json::array();
    std::string eos = config_string(config, "eos_token", "</s>"),
                unk = config_string(config, "unk_token", "<unk>"),
                pad = config_string(config, "pad_token", "<pad>");
    for (int id = 0; id < n; ++id)
        if (sp.IsControl(id) || sp.IsUnknown(id))
            added.push_back(added_token(sp.IdToPiece(id), uint32_t(id), false));
    for (int i = 0; i < extra_ids; ++i)
        added.push_back(added_token("<extra_id_" + std::to_string(i) + ">",
                                    uint32_t(n + extra_ids - 1 - i), false));
    int eos_id = sp.PieceToId(eos);
    if (eos_id == sp.unk_id() && eos != unk)
        throw Error(quote(eos) + " is not in the SentencePiece model");

    const std::string proto = sp.serialized_model_proto();
    ProtoReader model{proto};
    Json normalizer;
    if (auto spec = model.find_bytes(3)) {
        ProtoReader normalizer_spec{*spec};
        if (auto charsmap = normalizer_spec.find_bytes(2); charsmap && !charsmap->empty()) {
            static const char* alphabet =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            std::string b64;
            uint32_t acc = 0;
            int bits = 0;
            for (char c : *charsmap) {
                acc = (acc << 8) | static_cast<uint8_t>(c);
                bits += 8;
                while (bits >= 6) {
                    bits -= 6;
                    b64.push_back(alphabet[(acc >> bits) & 63]);
                }
            }
            if (bits > 0) b64.push_back(alphabet[(acc << (6 - bits)) & 63]);
            while (b64.size() % 4) b64.push_back('=');
            normalizer = {{"type", "Precompiled"}, {"precompiled_charsmap", b64}};
        }
    }
    const std::string space = "\xE2\x96\x81";
    return Json{
        {"added_tokens", added},
        {"normalizer", normalizer},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "WhitespaceSplit"}},
            {{"type", "Metaspace"}, {"replacement", space}, {"add_prefix_space", true}}}}}},
        {"post_processor",
         {{"type", "TemplateProcessing"},
          {"single", {piece("Sequence", "A", 0), piece("SpecialToken", eos, 0)}},
          {"pair",
           {piece("Sequence", "A", 0), piece("SpecialToken", eos, 0), piece("Sequence", "B", 0),
            piece("SpecialToken", eos, 0)}},
          {"special_tokens", {{eos, special_template(eos, uint32_t(eos_id))}}}}},
        {"decoder", {{"type", "Metaspace"}, {"replacement", space}, {"add_prefix_space", true}}},
        {"model", {{"type", "Unigram"}, {"unk_id", sp.unk_id()}, {"vocab", std::move(vocab)}}}};
}

}  // namespace attnviz::tok
