// Model: config.json + weights (load_network) + tokenizer, and trace(): text in,
// AttentionTrace out. The forward pass itself is the architecture's.
#include "attnviz/model.h"

#include "attnviz/error.h"
#include "model/network.h"

namespace attnviz {

struct Model::Impl {
    model::LoadedNetwork loaded;
    Tokenizer tokenizer;
    std::string model_id;
};

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Model Model::open(const std::filesystem::path& folder) {
    model::LoadedNetwork loaded = model::load_network(folder);
    Tokenizer tokenizer = Tokenizer::from_folder(folder);
    std::string model_id = std::filesystem::path(folder).lexically_normal().filename().string();
    if (model_id.empty())
        model_id = std::filesystem::path(folder).parent_path().filename().string();
    return Model(std::make_shared<const Impl>(
        Impl{std::move(loaded), std::move(tokenizer), std::move(model_id)}));
}

const ModelConfig& Model::config() const { return impl_->loaded.config; }
const Tokenizer& Model::tokenizer() const { return impl_->tokenizer; }

namespace {

TokenSequence make_sequence(const Tokenizer& tokenizer, const std::string& name,
                            const Encoding& encoding, std::vector<std::string> texts) {
    TokenSequence sequence;
    sequence.name = name;
    sequence.texts = std::move(texts);
    const std::vector<std::string> display = tokenizer.display_tokens(encoding);
    for (size_t i = 0; i < encoding.size(); ++i) {
        TraceToken token;
        token.text = encoding.tokens[i];
        token.display = i < display.size() ? display[i] : encoding.tokens[i];
        token.id = encoding.ids[i];
        token.type_id = i < encoding.type_ids.size() ? encoding.type_ids[i] : 0;
        token.segment = i < encoding.sequence_ids.size() ? encoding.sequence_ids[i] : 0;
        token.special = i < encoding.special_tokens_mask.size() && encoding.special_tokens_mask[i];
        if (i < encoding.offsets.size()) token.offset = encoding.offsets[i];
        if (i < encoding.byte_offsets.size()) token.byte_offset = encoding.byte_offsets[i];
        sequence.tokens.push_back(std::move(token));
    }
    return sequence;
}

}  // namespace

AttentionTrace Model::trace(const TraceRequest& request, const RunOptions& options) const {
    const ModelConfig& config = impl_->loaded.config;
    EncodeOptions encode;
    encode.max_length = config.max_positions > 0 ? static_cast<size_t>(config.max_positions) : 0;
    encode.truncate = request.truncate;
    const Tokenizer& tokenizer = impl_->tokenizer;

    std::vector<std::string> texts = {request.text};
    Encoding input;
    if (request.text_pair) {
        input = tokenizer.encode_pair(request.text, *request.text_pair, encode);
        texts.push_back(*request.text_pair);
    } else {
        input = tokenizer.encode(request.text, encode);
    }
    if (input.attention_mask.size() != input.size()) input.attention_mask.assign(input.size(), 1);
    if (input.type_ids.size() != input.size()) input.type_ids.assign(input.size(), 0);

    AttentionTrace trace;
    trace.model_id = impl_->model_id;
    trace.architecture = config.model_type;
    model::ForwardInput forward{&input};
    Encoding target;
    if (config.is_encoder_decoder) {
        if (!request.target)
            throw Error(config.model_type + " is an encoder-decoder model: give a target text too");
        target = tokenizer.encode(*request.target, encode);
        if (target.attention_mask.size() != target.size())
            target.attention_mask.assign(target.size(), 1);
        if (target.type_ids.size() != target.size()) target.type_ids.assign(target.size(), 0);
        forward.decoder = &target;
        trace.sequences.push_back(make_sequence(tokenizer, "encoder", input, texts));
        trace.sequences.push_back(make_sequence(tokenizer, "decoder", target, {*request.target}));
    } else {
        if (request.target)
            throw Error(config.model_type +
                        " is not an encoder-decoder model: it takes no target text");
        trace.sequences.push_back(make_sequence(tokenizer, "input", input, texts));
    }
    model::ForwardOutput output = model::run_network(*impl_->loaded.network, forward, options);
    trace.blocks = std::move(output.blocks);
    trace.hidden_states = std::move(output.hidden_states);
    trace.non_finite = std::move(output.non_finite);
    if (!trace.non_finite.empty())
        warn("the result holds NaN or inf values, first at " + trace.non_finite +
             " (as PyTorch would compute them: the weights or config.json hold NaN, inf or "
             "values too large for float32)");
    return trace;
}

}  // namespace attnviz
