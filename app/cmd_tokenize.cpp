// attnviz tokenize: ids, tokens, type ids, masks and offsets as JSON, in the
// format of the Hugging Face goldens (tests/data/golden).
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "attnviz/tokenizer.h"
#include "cli.h"

namespace attnviz::cli {
namespace {

struct Case {
    std::string text;
    std::optional<std::string> text_pair;
    bool add_special_tokens = true;
};

// CASES.json: an array of strings, or of {"text", "text_pair"?, "add_special_tokens"?}.
std::vector<Case> read_cases(const std::string& path, bool add_special_tokens) {
    std::ifstream in(path);
    if (!in) throw Error("cannot open " + path);
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error("invalid JSON in " + path + ": " + e.what());
    }
    if (!json.is_array()) throw Error(path + ": expected a JSON array of cases");
    std::vector<Case> cases;
    for (size_t i = 0; i < json.size(); ++i) {
        const nlohmann::json& item = json[i];
        const std::string where = path + ": case " + std::to_string(i);
        Case one;
        one.add_special_tokens = add_special_tokens;
        if (item.is_string()) {
            one.text = item.get<std::string>();
        } else if (item.is_object() && item.contains("text") && item["text"].is_string()) {
            one.text = item["text"].get<std::string>();
            if (item.contains("text_pair") && !item["text_pair"].is_null()) {
                if (!item["text_pair"].is_string())
                    throw Error(where + ": \"text_pair\" is not a string");
                one.text_pair = item["text_pair"].get<std::string>();
            }
            if (item.contains("add_special_tokens")) {
                if (!item["add_special_tokens"].is_boolean())
                    throw Error(where + ": \"add_special_tokens\" is not true or false");
                one.add_special_tokens =
                    add_special_tokens && item["add_special_tokens"].get<bool>();
            }
        } else {
            throw Error(where + ": expected a string or an object with a \"text\" string");
        }
        cases.push_back(std::move(one));
    }
    return cases;
}

nlohmann::json encode(const Tokenizer& tokenizer, const Case& one) {
    EncodeOptions options;
    options.add_special_tokens = one.add_special_tokens;
    const Encoding encoding = one.text_pair
                                  ? tokenizer.encode_pair(one.text, *one.text_pair, options)
                                  : tokenizer.encode(one.text, options);
    return encoding_to_json(encoding);
}

std::function<int()> setup(CLI::App& command) {
    struct Flags {
        ModelFlags model;
        TextFlags text;
        std::optional<std::string> input;
        bool no_special_tokens = false;
    };
    auto flags = std::make_shared<Flags>();
    add_model_flags(command, flags->model);
    add_text_flags(command, flags->text, false);
    command
        .add_option("--input", flags->input,
                    "a JSON array of cases: strings, or objects with \"text\" and optional "
                    "\"text_pair\" and \"add_special_tokens\"")
        ->excludes("--text")
        ->excludes("--text-file");
    command.add_flag("--no-special-tokens", flags->no_special_tokens,
                     "leave out [CLS], [SEP], <s>, </s> and the like");
    command.footer(
        "Prints one JSON object for --text, an array in case order for --input; each "
        "has ids, tokens, token_type_ids, attention_mask, special_tokens_mask, offsets "
        "(code points, as Hugging Face gives them), offsets_utf8 (bytes) and word_ids "
        "(Hugging Face's word_ids(): the pre-tokenizer word of each token, null for special "
        "tokens).");
    return [flags] {
        const TextFlags& text = flags->text;
        const bool has_text = text.text || text.text_file,
                   has_pair = text.text_b || text.text_b_file;
        if (has_pair && flags->input)
            throw UsageError("--text-b goes with --text; --input cases carry their own text_pair");
        if (has_pair && !has_text)
            throw UsageError("--text-b needs --text or --text-file (text A of the pair)");
        if (!has_text && !flags->input) throw UsageError("give --text, --text-file or --input");
        read_text_files(flags->text, false);
        const Tokenizer tokenizer = Tokenizer::from_folder(model_folder(flags->model, true));
        if (text.text) {
            const Case one{*text.text, text.text_b, !flags->no_special_tokens};
            std::cout << json_text(encode(tokenizer, one));
            return 0;
        }
        nlohmann::json results = nlohmann::json::array();
        for (const Case& one : read_cases(*flags->input, !flags->no_special_tokens))
            results.push_back(encode(tokenizer, one));
        std::cout << json_text(results);
        return 0;
    };
}

const RegisterCommand registered({"tokenize", "Tokenize text exactly as Hugging Face does (JSON)",
                                  30, setup});

}  // namespace
}  // namespace attnviz::cli
