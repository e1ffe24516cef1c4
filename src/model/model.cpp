// Model: config.json + weights (load_network) + tokenizer, and trace(): text in,
// AttentionTrace out. The forward pass itself is the architecture's.
#include "attnviz/model.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>

#include "attnviz/error.h"
#include "model/network.h"
#include "runtime/threads.h"

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
        if (i < encoding.word_ids.size()) token.word_id = encoding.word_ids[i];
        sequence.tokens.push_back(std::move(token));
    }
    return sequence;
}

}  // namespace

namespace {

// The encodings a request runs on (input, and the target of encoder-decoder models).
struct Encoded {
    Encoding input, target;
    std::vector<std::string> texts;
};

Encoding complete(Encoding encoding) {
    if (encoding.attention_mask.size() != encoding.size())
        encoding.attention_mask.assign(encoding.size(), 1);
    if (encoding.type_ids.size() != encoding.size()) encoding.type_ids.assign(encoding.size(), 0);
    return encoding;
}

Encoded encode_request(const ModelConfig& config, const Tokenizer& tokenizer,
                       const TraceRequest& request) {
    EncodeOptions encode;
    // The hard limit is the learned position table; --truncate cuts to the
    // length asked for, else to the longest input the model was made for.
    encode.max_length = config.max_positions > 0 ? static_cast<size_t>(config.max_positions) : 0;
    encode.truncate = request.truncate;
    if (request.truncate && request.max_tokens > 0) {
        encode.max_length = encode.max_length > 0 ? std::min(encode.max_length, request.max_tokens)
                                                  : request.max_tokens;
    } else if (request.truncate && encode.max_length == 0) {
        encode.max_length = config.context_length > 0 ? static_cast<size_t>(config.context_length)
                                                      : tokenizer.model_max_length().value_or(0);
    }
    Encoded encoded;
    encoded.texts = {request.text};
    if (request.text_pair) {
        encoded.input = tokenizer.encode_pair(request.text, *request.text_pair, encode);
        encoded.texts.push_back(*request.text_pair);
    } else {
        encoded.input = tokenizer.encode(request.text, encode);
    }
    encoded.input = complete(std::move(encoded.input));
    if (config.is_encoder_decoder) {
        if (!request.target)
            throw Error(config.model_type + " is an encoder-decoder model: give a target text too");
        encoded.target = complete(tokenizer.encode(*request.target, encode));
    } else if (request.target) {
        throw Error(config.model_type +
                    " is not an encoder-decoder model: it takes no target text");
    }
    return encoded;
}

// The stack each OpenMP thread maps: OMP_STACKSIZE is not used by attnviz, so
// glibc's default, RLIMIT_STACK (8 MiB when unlimited).
uint64_t thread_stack_bytes() {
    rlimit limit{};
    if (getrlimit(RLIMIT_STACK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 8ull << 20;
    return static_cast<uint64_t>(limit.rlim_cur);
}

MemoryShape shape_of(const Encoded& encoded, const RunOptions& options) {
    return {encoded.input.size(), encoded.target.size(), options.keep_queries_keys,
            options.keep_hidden_states, options.output_fraction};
}

}  // namespace

MemoryEstimate Model::estimate_memory(const MemoryShape& shape) const {
    MemoryEstimate estimate = estimate_forward_memory(impl_->loaded.config, shape);
    estimate.weights = impl_->loaded.network->weight_bytes();
    return estimate;
}

MemoryEstimate Model::estimate_memory(const TraceRequest& request,
                                      const RunOptions& options) const {
    return estimate_memory(
        shape_of(encode_request(impl_->loaded.config, impl_->tokenizer, request), options));
}

void Model::check_memory(const MemoryShape& shape, const RunOptions& options) const {
    const MemoryEstimate estimate = estimate_memory(shape);
    MemoryBudget budget;
    if (options.max_memory) {
        budget = {*options.max_memory, "the limit given"};
    } else {
        // What is free now, plus what this process already holds of the
        // estimate: the weights are loaded (or mapped, which is what counts
        // under ulimit -v), and so is its start-up memory.
        budget = available_memory();
        const uint64_t held = estimate.weights + kProcessBaselineBytes;
        budget.bytes = budget.bytes > UINT64_MAX - held ? UINT64_MAX : budget.bytes + held;
        if (budget.source == "ulimit -v") {
            // Address space, not memory, is what runs out: each thread maps
            // its stack and a malloc arena, and oneDNN its JIT code, none of
            // which is resident. A failure there is not catchable (it happens
            // on a worker thread, inside oneDNN), so it is kept out of reach.
            const int threads = runtime::resolve_thread_count(options.threads);
            const uint64_t reserved =
                static_cast<uint64_t>(threads) * (thread_stack_bytes() + (64ull << 20)) +
                (128ull << 20);
            budget.bytes = budget.bytes > reserved ? budget.bytes - reserved : 0;
            budget.source = "ulimit -v, less " + format_memory_size(reserved) +
                            " of address space for " + std::to_string(threads) +
                            (threads == 1 ? " thread" : " threads");
        }
    }
    if (estimate.total() <= budget.bytes) return;
    // The most tokens that fit: the estimate grows with the tokens, so bisect.
    const auto fits = [&](size_t tokens) {
        MemoryShape smaller = shape;
        smaller.tokens = std::min(shape.tokens, tokens);
        smaller.decoder_tokens = std::min(shape.decoder_tokens, tokens);
        return estimate_memory(smaller).total() <= budget.bytes;
    };
    size_t low = 0, high = std::max(shape.tokens, shape.decoder_tokens);
    while (low < high) {
        const size_t middle = low + (high - low + 1) / 2;
        if (fits(middle))
            low = middle;
        else
            high = middle - 1;
    }
    const uint64_t other =
        estimate.activations + estimate.queries_keys + estimate.hidden_states + estimate.output;
    const std::string tokens =
        std::to_string(shape.tokens) +
        (shape.decoder_tokens > 0 ? " + " + std::to_string(shape.decoder_tokens) : "") + " tokens";
    throw MemoryBudgetError(
        impl_->model_id + " on " + tokens + " needs " +
            // each term of the estimate saturates at 2 EiB (memory.cpp)
            (estimate.attention >= (uint64_t{1} << 61) ? "more than " : "about ") +
            format_memory_size(estimate.total()) + " (weights " +
            format_memory_size(estimate.weights) + ", attention " +
            format_memory_size(estimate.attention) + ", the rest " + format_memory_size(other) +
            "), more than the " + format_memory_size(budget.bytes) + " it may use (" +
            budget.source + ")",
        estimate, budget, low);
}

AttentionTrace Model::trace(const TraceRequest& request, const RunOptions& options) const {
    const ModelConfig& config = impl_->loaded.config;
    const Tokenizer& tokenizer = impl_->tokenizer;
    if (options.keep_value_norms && !impl_->loaded.network->supports_value_norms())
        throw Error("value norms (--value-norms) are not implemented for " + config.model_type +
                    " models");
    Encoded encoded = encode_request(config, tokenizer, request);
    check_memory(shape_of(encoded, options), options);

    AttentionTrace trace;
    trace.model_id = impl_->model_id;
    trace.architecture = config.model_type;
    model::ForwardInput forward{&encoded.input};
    if (config.is_encoder_decoder) {
        forward.decoder = &encoded.target;
        trace.sequences.push_back(
            make_sequence(tokenizer, "encoder", encoded.input, encoded.texts));
        trace.sequences.push_back(
            make_sequence(tokenizer, "decoder", encoded.target, {*request.target}));
    } else {
        trace.sequences.push_back(make_sequence(tokenizer, "input", encoded.input, encoded.texts));
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
