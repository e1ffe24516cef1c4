// write_npz: checked byte for byte against numpy's .npy format, and read back
// by numpy itself (/usr/bin/python3), which is the reader users have.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>

#include "attnviz/error.h"
#include "attnviz/export.h"
#include "io/files.h"
#include "viz/npz.h"

namespace fs = std::filesystem;

namespace {

// A 2-layer, 3-head trace over 4 tokens, with values that identify their index.
attnviz::AttentionTrace small_trace(bool with_queries_keys, bool with_hidden) {
    attnviz::AttentionTrace trace;
    trace.model_id = "tiny";
    attnviz::TokenSequence sequence;
    sequence.name = "input";
    const char* texts[] = {"[CLS]", "caf\xc3\xa9", "##\xe2\x96\x81x", "[SEP]"};  // é and ▁
    const int ids[] = {101, 7, 8, 102};
    for (int i = 0; i < 4; ++i) {
        attnviz::TraceToken token;
        token.text = texts[i];
        token.id = ids[i];
        token.type_id = i == 3 ? 1 : 0;
        sequence.tokens.push_back(token);
    }
    trace.sequences.push_back(sequence);
    attnviz::AttentionBlock block;
    block.name = "self";
    block.n_layers = 2;
    block.n_heads = 3;
    block.n_queries = block.n_keys = 4;
    for (int i = 0; i < 2 * 3 * 4 * 4; ++i) block.probs.push_back(0.001f * static_cast<float>(i));
    if (with_queries_keys) {
        block.head_dim = 5;
        block.score_scale = 0.5f;
        block.layer_score_scales = {0.5f, 0.25f};  // as GPT-2's inverse layer scale
        for (int i = 0; i < 2 * 3 * 4 * 5; ++i) {
            block.queries.push_back(static_cast<float>(i));
            block.keys.push_back(-static_cast<float>(i));
        }
    }
    trace.blocks.push_back(block);
    if (with_hidden) {
        attnviz::HiddenStates states;
        states.n_states = 3;
        states.n_tokens = 4;
        states.hidden_size = 6;
        for (int i = 0; i < 3 * 4 * 6; ++i) states.values.push_back(0.5f * static_cast<float>(i));
        trace.hidden_states.push_back(states);
    }
    return trace;
}

// ctest runs tests in parallel processes (and several build folders may run at
// once): every temporary file carries the process id.
fs::path temp_file(const std::string& name) {
    return fs::temp_directory_path() /
           ("attnviz_npz_test_" + std::to_string(getpid()) + "_" + name);
}

std::string run_python(const std::string& script) {
    const fs::path script_file = temp_file("script.py");
    attnviz::io::write_file(script_file, script);
    FILE* pipe = popen(("/usr/bin/python3 " + script_file.string() + " 2>&1").c_str(), "r");
    std::string output;
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    pclose(pipe);
    fs::remove(script_file);
    return output;
}

TEST(Npz, NumpyReadsEveryArrayExactly) {
    const fs::path path = temp_file("main.npz");
    attnviz::write_npz(small_trace(true, true), path);
    // The expected values are computed independently in Python from the same rule.
    const std::string output = run_python(R"(
import numpy as np
z = np.load(")" + path.string() + R"(")
assert sorted(z.files) == sorted(["input_ids", "token_type_ids", "tokens", "attentions",
                                  "queries", "keys", "score_scale", "hidden_states",
                                  "model_id", "architecture", "attnviz_version"]), z.files
assert z["model_id"].shape == () and str(z["model_id"]) == "tiny" and str(z["architecture"]) == ""
assert z["input_ids"].dtype == np.int64 and z["input_ids"].tolist() == [101, 7, 8, 102]
assert z["token_type_ids"].dtype == np.int64 and z["token_type_ids"].tolist() == [0, 0, 0, 1]
assert z["tokens"].dtype.kind == "U" and z["tokens"].tolist() == ["[CLS]", "caf\u00e9", "##\u2581x", "[SEP]"], z["tokens"]
a = z["attentions"]
assert a.dtype == np.float32 and a.shape == (2, 3, 4, 4), a.shape
assert np.array_equal(a, (np.arange(96, dtype=np.float32) * np.float32(0.001)).reshape(2, 3, 4, 4))
assert z["queries"].shape == (2, 3, 4, 5) and np.array_equal(z["queries"].ravel(), np.arange(120, dtype=np.float32))
assert np.array_equal(z["keys"].ravel(), -np.arange(120, dtype=np.float32))
assert z["score_scale"].dtype == np.float32 and z["score_scale"].tolist() == [0.5, 0.25]
assert z["hidden_states"].shape == (3, 4, 6) and z["hidden_states"][2, 3, 5] == 35.5
print("ok")
)");
    EXPECT_EQ(output, "ok\n");
    fs::remove(path);
}

TEST(Npz, EncoderDecoderArraysArePrefixed) {
    attnviz::AttentionTrace trace = small_trace(false, false);
    trace.sequences[0].name = "encoder";
    trace.sequences.push_back(trace.sequences[0]);
    trace.sequences[1].name = "decoder";
    trace.sequences[1].tokens.pop_back();
    trace.blocks[0].name = "encoder";
    attnviz::AttentionBlock cross = trace.blocks[0];
    cross.name = "cross";
    cross.n_queries = 3;
    cross.probs.resize(2 * 3 * 3 * 4);
    trace.blocks.push_back(cross);
    const fs::path path = temp_file("seq2seq.npz");
    attnviz::write_npz(trace, path);
    const std::string output = run_python(R"(
import numpy as np
z = np.load(")" + path.string() + R"(")
print(" ".join(sorted(z.files)), z["cross_attentions"].shape, z["decoder_tokens"].tolist()[-1])
)");
    EXPECT_EQ(output,
              "architecture attnviz_version cross_attentions decoder_input_ids "
              "decoder_token_type_ids decoder_tokens encoder_attentions encoder_input_ids "
              "encoder_token_type_ids encoder_tokens model_id (2, 3, 3, 4) ##\xe2\x96\x81x\n");
    fs::remove(path);
}

// The additive score bias: once when the block's layers share it (T5), per layer
// otherwise, -inf (masked keys) intact; blocks without one have no array.
TEST(Npz, ScoreBiasIsExportedOnceWhenLayersShareIt) {
    attnviz::AttentionTrace trace = small_trace(true, false);
    trace.sequences[0].name = "encoder";
    trace.sequences.push_back(trace.sequences[0]);
    trace.sequences[1].name = "decoder";
    trace.blocks[0].name = "encoder";
    attnviz::AttentionBlock decoder = trace.blocks[0];
    decoder.name = "decoder";
    decoder.query_sequence = decoder.key_sequence = 1;
    attnviz::AttentionBlock cross = trace.blocks[0];
    cross.name = "cross";
    attnviz::AttentionBlock& encoder = trace.blocks[0];
    encoder.score_bias_layers = 1;  // [1, 3, 4, 4]: value = index / 4, key 3 of query 0 masked
    for (int i = 0; i < 3 * 4 * 4; ++i) encoder.score_bias.push_back(0.25f * static_cast<float>(i));
    encoder.score_bias[3] = -std::numeric_limits<float>::infinity();
    decoder.score_bias_layers = 2;  // [2, 3, 4, 4]: value = -index
    for (int i = 0; i < 2 * 3 * 4 * 4; ++i) decoder.score_bias.push_back(-static_cast<float>(i));
    trace.blocks.push_back(decoder);
    trace.blocks.push_back(cross);
    const fs::path path = temp_file("bias.npz");
    attnviz::write_npz(trace, path);
    const std::string output = run_python(R"(
import numpy as np
z = np.load(")" + path.string() + R"(")
e, d = z["encoder_score_bias"], z["decoder_score_bias"]
assert "cross_score_bias" not in z.files, z.files
assert e.dtype == np.float32 and e.shape == (1, 3, 4, 4), e.shape
want = (np.arange(48, dtype=np.float32) * np.float32(0.25)).reshape(1, 3, 4, 4)
want[0, 0, 0, 3] = -np.inf
assert np.array_equal(e, want), e
assert d.shape == (2, 3, 4, 4) and np.array_equal(d.ravel(), -np.arange(96, dtype=np.float32))
print("ok")
)");
    EXPECT_EQ(output, "ok\n");
    fs::remove(path);
}

// Each stack's hidden states take its sequence's name, whatever their order in
// the trace; two for one sequence would collide in the zip and are refused.
TEST(Npz, HiddenStatesAreNamedByTheirStack) {
    attnviz::AttentionTrace trace = small_trace(false, true);
    trace.sequences[0].name = "encoder";
    trace.sequences.push_back(trace.sequences[0]);
    trace.sequences[1].name = "decoder";
    trace.sequences[1].tokens.pop_back();
    attnviz::HiddenStates decoder;
    decoder.sequence = 1;
    decoder.n_states = 2, decoder.n_tokens = 3, decoder.hidden_size = 6;
    decoder.values.assign(2 * 3 * 6, -1.0f);
    trace.hidden_states.insert(trace.hidden_states.begin(), decoder);
    const fs::path path = temp_file("seq2seq_hidden.npz");
    attnviz::write_npz(trace, path);
    const std::string output = run_python(R"(
import numpy as np
z = np.load(")" + path.string() + R"(")
e, d = z["encoder_hidden_states"], z["decoder_hidden_states"]
print(sorted(f for f in z.files if "hidden" in f), e.shape, e[2, 3, 5], d.shape, d.max())
)");
    EXPECT_EQ(output,
              "['decoder_hidden_states', 'encoder_hidden_states'] (3, 4, 6) 35.5 (2, 3, 6) "
              "-1.0\n");
    fs::remove(path);

    trace.hidden_states[0].sequence = 0;
    trace.hidden_states[0].n_tokens = 4;
    trace.hidden_states[0].values.assign(2 * 4 * 6, -1.0f);
    try {
        attnviz::write_npz(trace, path);
        FAIL() << "no error";
    } catch (const attnviz::Error& e) {
        EXPECT_STREQ(e.what(), "cannot export hidden states: the trace has two for sequence 0");
    }
    EXPECT_FALSE(fs::exists(path));
}

// The first entry, checked by hand against the zip and .npy specifications.
TEST(Npz, BytesFollowTheZipAndNpyFormats) {
    const fs::path path = temp_file("bytes.npz");
    attnviz::write_npz(small_trace(false, false), path);
    const std::string bytes = attnviz::io::read_file(path);
    fs::remove(path);
    ASSERT_GT(bytes.size(), 200u);
    EXPECT_EQ(bytes.substr(0, 4), std::string("PK\x03\x04", 4));  // local file header
    EXPECT_EQ(bytes[8], 0);                                       // method: stored
    const std::string name = "input_ids.npy";
    EXPECT_EQ(bytes.substr(30, name.size()), name);
    const size_t npy = 30 + name.size();
    EXPECT_EQ(bytes.substr(npy, 8), std::string("\x93NUMPY\x01\x00", 8));
    const std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }";
    EXPECT_EQ(bytes.substr(npy + 10, dict.size()), dict);
    const size_t header_length = static_cast<uint8_t>(bytes[npy + 8]);
    EXPECT_EQ((10 + header_length) % 64, 0u);
    EXPECT_EQ(bytes[npy + 10 + header_length - 1], '\n');
    EXPECT_EQ(static_cast<uint8_t>(bytes[npy + 10 + header_length]), 101);        // first id, LE
    EXPECT_EQ(bytes.substr(bytes.size() - 22, 4), std::string("PK\x05\x06", 4));  // end record
}

// Past 4 GiB sizes and offsets move to zip64 records; forced here from byte 100.
TEST(Npz, Zip64RecordsAreReadByNumpy) {
    const fs::path path = temp_file("zip64.npz");
    attnviz::npz::write_npz(small_trace(true, true), path, 100);
    const std::string output = run_python(R"(
import numpy as np, zipfile
z = np.load(")" + path.string() + R"(")
print(len(z.files), z["attentions"][1, 2, 3, 3] == np.float32(95) * np.float32(0.001),
      z["hidden_states"][2, 3, 5])
zipfile.ZipFile(")" + path.string() + R"(").testzip()
)");
    EXPECT_EQ(output, "11 True 35.5\n");
    fs::remove(path);
}

TEST(Npz, FailedWriteLeavesNoFile) {
    EXPECT_THROW(attnviz::write_npz(small_trace(false, false), "/nonexistent/dir/out.npz"),
                 std::exception);
    attnviz::AttentionTrace bad = small_trace(false, false);
    bad.blocks[0].probs.pop_back();
    const fs::path path = temp_file("bad.npz");
    EXPECT_THROW(attnviz::write_npz(bad, path), std::exception);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path.string() + ".partial"));
}

// Traces the model code never makes, but the writer must refuse rather than
// write a wrong file or read out of bounds (what fuzz/viz_npz_roundtrip_fuzz.cpp
// checks for): a negative dimension whose product with a zero wraps to the
// values' count, fewer layer scales than layers, two arrays of one name.
TEST(Npz, InconsistentTraceIsRefused) {
    auto refusal = [&](const attnviz::AttentionTrace& trace) -> std::string {
        try {
            std::ostringstream out;
            attnviz::write_npz(trace, out);
            return "(written: " + std::to_string(out.str().size()) + " bytes)";
        } catch (const attnviz::Error& e) {
            return e.what();
        }
    };
    attnviz::AttentionTrace negative = small_trace(false, false);
    negative.blocks[0].n_layers = -1;
    negative.blocks[0].n_heads = 0;
    negative.blocks[0].probs.clear();
    EXPECT_EQ(refusal(negative),
              "cannot export attentions: it has 0 values, which its shape [-1, 0, 4, 4] does not "
              "hold");
    attnviz::AttentionTrace scales = small_trace(true, false);
    scales.blocks[0].layer_score_scales = {0.5f};
    EXPECT_EQ(refusal(scales), "cannot export score_scale: 1 scales for 2 layers");
    attnviz::AttentionTrace twins = small_trace(false, false);
    twins.sequences.push_back(twins.sequences[0]);
    twins.blocks.push_back(twins.blocks[0]);
    EXPECT_EQ(refusal(twins), "cannot export: two arrays are named input_input_ids");
}

}  // namespace
