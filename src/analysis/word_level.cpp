// Word-level attention (Clark et al. 2019, "What Does BERT Look At?",
// section 4): subword pieces merge into words; attention to a word is the
// sum of the attention to its pieces, attention from a word the mean of its
// pieces' rows, so each row still sums to 1.
#include <string>

#include "attnviz/analysis.h"
#include "attnviz/error.h"

namespace attnviz::analysis {

Words words_of(const TokenSequence& sequence) {
    Words words;
    const TraceToken* previous = nullptr;
    for (size_t t = 0; t < sequence.tokens.size(); ++t) {
        const TraceToken& token = sequence.tokens[t];
        const bool continues = previous && token.word_id >= 0 &&
                               previous->word_id == token.word_id &&
                               previous->segment == token.segment;
        if (!continues) words.tokens.emplace_back();
        words.tokens.back().push_back(static_cast<int>(t));
        words.word_of_token.push_back(static_cast<int>(words.tokens.size()) - 1);
        previous = &token;
    }
    return words;
}

std::vector<float> word_level_maps(const std::vector<float>& maps, int n_maps,
                                   const Words& query_words, const Words& key_words) {
    const size_t Q = query_words.word_of_token.size(), K = key_words.word_of_token.size();
    const size_t WQ = query_words.tokens.size(), WK = key_words.tokens.size();
    if (maps.size() != static_cast<size_t>(n_maps) * Q * K)
        throw Error("word level: " + std::to_string(maps.size()) + " values are not " +
                    std::to_string(n_maps) + " maps of " + std::to_string(Q) + " by " +
                    std::to_string(K) + " tokens");
    std::vector<float> out(static_cast<size_t>(n_maps) * WQ * WK, 0.0f);
    std::vector<double> row(WK);
    for (int m = 0; m < n_maps; ++m)
        for (size_t wq = 0; wq < WQ; ++wq) {
            std::fill(row.begin(), row.end(), 0.0);
            const std::vector<int>& pieces = query_words.tokens[wq];
            for (int q : pieces) {
                const float* in = maps.data() + (static_cast<size_t>(m) * Q + q) * K;
                for (size_t k = 0; k < K; ++k)
                    row[static_cast<size_t>(key_words.word_of_token[k])] += in[k];
            }
            float* dst = out.data() + (static_cast<size_t>(m) * WQ + wq) * WK;
            for (size_t wk = 0; wk < WK; ++wk)
                dst[wk] = static_cast<float>(row[wk] / static_cast<double>(pieces.size()));
        }
    return out;
}

namespace {

TokenSequence merge_sequence(const TokenSequence& sequence, const Words& words) {
    TokenSequence out;
    out.name = sequence.name;
    out.texts = sequence.texts;
    for (const std::vector<int>& pieces : words.tokens) {
        TraceToken word = sequence.tokens[static_cast<size_t>(pieces.front())];
        const TraceToken& last = sequence.tokens[static_cast<size_t>(pieces.back())];
        for (size_t p = 1; p < pieces.size(); ++p) {
            const TraceToken& piece = sequence.tokens[static_cast<size_t>(pieces[p])];
            word.text += piece.text;
            word.display += piece.display;
        }
        word.offset.end = last.offset.end;
        word.byte_offset.end = last.byte_offset.end;
        out.tokens.push_back(std::move(word));
    }
    return out;
}

}  // namespace

AttentionTrace word_level(const AttentionTrace& trace) {
    AttentionTrace out;
    out.model_id = trace.model_id;
    out.model_revision = trace.model_revision;
    out.architecture = trace.architecture;
    out.non_finite = trace.non_finite;
    std::vector<Words> words;
    for (const TokenSequence& sequence : trace.sequences) {
        words.push_back(words_of(sequence));
        out.sequences.push_back(merge_sequence(sequence, words.back()));
    }
    for (const AttentionBlock& block : trace.blocks) {
        require_dense(block, "word level");
        const Words& query_words = words.at(static_cast<size_t>(block.query_sequence));
        const Words& key_words = words.at(static_cast<size_t>(block.key_sequence));
        if (query_words.word_of_token.size() != static_cast<size_t>(block.n_queries) ||
            key_words.word_of_token.size() != static_cast<size_t>(block.n_keys))
            throw Error("word level: block \"" + block.name +
                        "\" does not match its sequences' token counts");
        AttentionBlock merged;
        merged.name = block.name;
        merged.query_sequence = block.query_sequence;
        merged.key_sequence = block.key_sequence;
        merged.causal = block.causal;
        merged.n_layers = block.n_layers;
        merged.n_heads = block.n_heads;
        merged.n_queries = static_cast<int>(query_words.tokens.size());
        merged.n_keys = static_cast<int>(key_words.tokens.size());
        merged.score_scale = block.score_scale;
        merged.score_form = ScoreForm::not_decomposable;  // no queries and keys reproduce it
        merged.probs =
            word_level_maps(block.probs, block.n_layers * block.n_heads, query_words, key_words);
        out.blocks.push_back(std::move(merged));
    }
    return out;
}

}  // namespace attnviz::analysis
