"""Per-head statistics (src/analysis/head_stats.cpp) against the numpy reference
(tools/reference/head_stats_reference.py, Clark et al. 2019's definitions): on
random traces, on PyTorch attention maps of four architectures' fixtures (GPT-2,
RoBERTa, and the encoder-decoders T5 and BART with their encoder, decoder and
cross blocks), on the demo model, through `attnviz export --head-stats` and
`attnviz heads --json` (means, Jensen-Shannon distances and their MDS).

Error model: both sides read the same float32 probabilities; they differ only
in float64 summation order (~1e-16 relative) and attnviz's fixed point (each
example's sum rounded to 2^-24, at most 3e-8 per row on a mean), so 1e-5
(relative above 1) is far above the error and far below any real difference."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
sys.path.insert(0, os.path.join(SOURCE, "tools", "reference"))
import attnviz  # noqa: E402
from attnviz import _native  # noqa: E402
import head_stats_reference as ref  # noqa: E402

CLI = os.environ["ATTNVIZ_CLI"]
DEMO = os.path.join(SOURCE, "models", "demo")
ARCH = os.path.join(SOURCE, "tests", "data", "arch")
TOLERANCE = 1e-5


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    types = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=types[entry["dtype"]]).reshape(entry["shape"])
    return out


def reference_of(native):
    """The reference's per-block (means, rows) from a native trace's arrays and token flags."""
    sequences = native.sequences
    out = []
    for index, block in enumerate(native.blocks):
        keys = sequences[block["key_sequence"]]
        roles = ref.key_roles(keys["special"], keys["segments"], keys["displays"], block["causal"])
        attn = np.array(native.attention(index))
        sums, rows, uniform = ref.example_sums(attn, block["query_sequence"] == block["key_sequence"], roles,
                                               block["causal"])
        means = {k: (sums[k] / rows[k] if rows[k] else np.full(sums[k].shape, np.nan)) for k in ref.STATS}
        out.append((block["name"], means, rows, uniform / attn.shape[2]))
    return out


def native_means(block):
    sums, rows = block["sums"].astype(np.float64), block["rows"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, sums / _native.head_stat_scale / np.maximum(rows, 1), np.nan)


class Close:
    def assert_close(self, actual, expected, what):
        actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        self.assertEqual(actual.shape, expected.shape, what)
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
        ok = ~np.isnan(expected)
        bound = TOLERANCE * np.maximum(1.0, np.abs(expected[ok]))
        worst = np.max(np.abs(actual[ok] - expected[ok]) - bound) if ok.any() else -1
        self.assertLessEqual(worst, 0, f"{what}: differs by more than 1e-5")

    def assert_trace_matches(self, native, label):
        sums = native.head_stat_sums()
        expected = reference_of(native)
        self.assertEqual([b["block"] for b in sums], [e[0] for e in expected])
        for block, (name, means, rows, uniform) in zip(sums, expected):
            got = native_means(block)
            for i, stat in enumerate(_native.head_stat_names):
                self.assertTrue(np.all(block["rows"][i] == rows[stat]), f"{label} {name} {stat} rows")
                self.assert_close(got[i], means[stat], f"{label} {name} {stat}")
            self.assert_close(block["uniform_entropy"] / _native.head_stat_scale / block["query_rows"], uniform,
                              f"{label} {name} uniform entropy")
        return sums


def random_rows(rng, layers, heads, queries, keys, causal=False, zeros=0.3):
    a = rng.random((layers, heads, queries, keys)).astype(np.float64) ** 3
    a[rng.random(a.shape) < zeros] = 0  # exact zeros: 0 log 0 = 0
    a[..., 0] += 1e-3
    if causal:
        a *= np.tril(np.ones((queries, keys)))
    a /= a.sum(-1, keepdims=True)
    return a.astype(np.float32)


def make_trace(sequences, blocks):
    """sequences: (name, tokens, sentence_b_start); blocks: (name, q, k, [L,H,Q,K])."""
    return _native.trace_from_arrays(
        [(name, tokens, tokens, b_start, []) for name, tokens, b_start in sequences],
        [(name, q, k, [np.ascontiguousarray(layer) for layer in attn]) for name, q, k, attn in blocks], "test")


BERT_PAIR = ["[CLS]", "the", "cat", ",", "sat", "[SEP]", "on", "the", "mat", "!", "?!", "[SEP]"]


class RandomTraces(Close, unittest.TestCase):
    def test_key_roles_follow_the_definitions(self):
        """[CLS] first, the [SEP]s that end segments, and punctuation by Unicode
        category after white space: hand-checked."""
        trace = make_trace([("input", BERT_PAIR, 6)], [("self", 0, 0, random_rows(np.random.default_rng(0), 1, 1, 12, 12))])
        seq = trace.sequences[0]
        self.assertEqual(ref.key_roles(seq["special"], seq["segments"], seq["displays"], False), (0, [5, 11], [3, 9, 10]))
        self.assertTrue(ref.is_punctuation(" \u2014"))
        self.assertFalse(ref.is_punctuation("a."))
        self.assertFalse(ref.is_punctuation(" "))

    def test_encoder_pair_causal_and_cross_blocks(self):
        rng = np.random.default_rng(17)
        for trial in range(4):
            trace = make_trace([("input", BERT_PAIR, 6)], [("self", 0, 0, random_rows(rng, 3, 4, 12, 12))])
            self.assert_trace_matches(trace, f"pair {trial}")
            words = ["The", "Ġcat", "Ġ,", "Ġsat", ".", "Ġon", "Ġit", "!"]
            trace = make_trace([("input", words, -1)], [("self", 0, 0, random_rows(rng, 2, 3, 8, 8, causal=True))])
            sums = self.assert_trace_matches(trace, f"causal {trial}")
            self.assertTrue(np.all(sums[0]["rows"][3] == 0))  # no [SEP]/EOS: sep is undefined (NaN)
            source = ["▁A", "▁dog", ",", "▁runs", "</s>"]
            target = ["<pad>", "▁Ein", "▁Hund", "."]
            trace = make_trace([("encoder", source, -1), ("decoder", target, -1)],
                               [("encoder", 0, 0, random_rows(rng, 2, 2, 5, 5)),
                                ("decoder", 1, 1, random_rows(rng, 2, 2, 4, 4, causal=True)),
                                ("cross", 1, 0, random_rows(rng, 2, 2, 4, 5))])
            sums = self.assert_trace_matches(trace, f"encoder-decoder {trial}")
            self.assertTrue(np.all(sums[2]["rows"][5] == 0))  # cross attention has no "self"

    def test_sums_add_exactly_in_any_order(self):
        rng = np.random.default_rng(5)
        traces = [make_trace([("input", BERT_PAIR, 6)], [("self", 0, 0, random_rows(rng, 2, 2, 12, 12))])
                  for _ in range(6)]
        parts = [t.head_stat_sums()[0]["sums"] for t in traces]
        forward = sum(parts[1:], parts[0].copy())
        backward = sum(parts[-2::-1], parts[-1].copy())
        np.testing.assert_array_equal(forward, backward)


class ArchitectureFixtures(Close, unittest.TestCase):
    """PyTorch's attention maps of the committed fixtures (tools/reference/arch_reference.py),
    with token strings in each architecture's own format (the fixtures' ids are random)."""

    def fixture(self, name):
        return read_safetensors(os.path.join(ARCH, name, "reference.safetensors"))

    def words(self, n, space):
        pool = ["the", "cat", ",", "sat", ".", "on", "mat", ";", "and", "!"]
        return [(space if i and pool[i % len(pool)] not in ",.;!" else "") + pool[i % len(pool)] for i in range(n)]

    def test_gpt2_tiny(self):
        f = self.fixture("gpt2_tiny")
        n = f["self.attentions"].shape[2]
        self.assert_trace_matches(make_trace([("input", self.words(n, "Ġ"), -1)],
                                             [("self", 0, 0, f["self.attentions"])]), "gpt2_tiny")

    def test_roberta_tiny(self):
        f = self.fixture("roberta_tiny")
        n = f["self.attentions"].shape[2]
        tokens = ["<s>"] + self.words(n - 2, "Ġ") + ["</s>"]
        self.assert_trace_matches(make_trace([("input", tokens, -1)], [("self", 0, 0, f["self.attentions"])]),
                                  "roberta_tiny")

    def test_encoder_decoders(self):
        for name, bos in (("t5_tiny", None), ("bart_tiny", "<s>")):
            f = self.fixture(name)
            s, t = f["encoder.attentions"].shape[2], f["decoder.attentions"].shape[2]
            source = ([bos] if bos else []) + self.words(s - (2 if bos else 1), "▁") + ["</s>"]
            target = ["</s>" if bos else "<pad>"] + self.words(t - 1, "▁")
            trace = make_trace([("encoder", source, -1), ("decoder", target, -1)],
                               [("encoder", 0, 0, f["encoder.attentions"]), ("decoder", 1, 1, f["decoder.attentions"]),
                                ("cross", 1, 0, f["cross.attentions"])])
            self.assertEqual([b["causal"] for b in trace.blocks], [False, True, False])
            self.assert_trace_matches(trace, name)


def demo_pairs(count):
    with open(os.path.join(SOURCE, "tests", "data", "demo", "pairs.json"), encoding="utf-8") as f:
        pairs = json.load(f)["pairs"]
    return [(p["text"], p["text_pair"]) for p in pairs[:count]]


class DemoModel(Close, unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def test_traces(self):
        model = attnviz.Model(DEMO)
        for a, b in demo_pairs(5):
            self.assert_trace_matches(model.trace(a, text_pair=b)._native, "demo pair")
            self.assert_trace_matches(model.trace(a)._native, "demo sentence")

    def test_export_head_stats(self):
        """The npz's head_stats_* against the reference computed from the npz alone:
        [CLS]/[SEP] from the ids, segments from token_type_ids, display text from
        the WordPiece tokens."""
        a, b = demo_pairs(1)[0]
        path = os.path.join(self.folder.name, "x.npz")
        subprocess.run([CLI, "export", "--model", DEMO, "--text", a, "--text-b", b, "--head-stats", "-o", path],
                       check=True, capture_output=True)
        npz = np.load(path)
        ids, types = npz["input_ids"], npz["token_type_ids"]
        special = [int(i) in (101, 102) for i in ids]
        segment = [-1 if s else int(t) for s, t in zip(special, types)]
        display = [str(t)[2:] if str(t).startswith("##") else str(t) for t in npz["tokens"]]
        roles = ref.key_roles(special, segment, display, False)
        sums, rows, _ = ref.example_sums(npz["attentions"], True, roles, False)
        for stat in ref.STATS:
            self.assertEqual(npz[f"head_stats_{stat}"].dtype, np.float32)
            self.assert_close(npz[f"head_stats_{stat}"], sums[stat] / rows[stat], f"export {stat}")

    def test_heads_command_json(self):
        """`attnviz heads --json` over ten pairs: means over all their rows, the
        Jensen-Shannon distance matrix and its classical MDS, against the reference
        on the same ten traces."""
        pairs = demo_pairs(10)
        corpus = os.path.join(self.folder.name, "pairs.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for a, b in pairs:
                f.write(json.dumps({"text": a, "text_pair": b}) + "\n")
        stats_path = os.path.join(self.folder.name, "stats.json")
        subprocess.run([CLI, "heads", "--model", DEMO, "--input", corpus, "--pairs", "--threads", "1", "--quiet",
                        "-o", os.path.join(self.folder.name, "r.html"), "--json", stats_path],
                       check=True, capture_output=True)
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
        self.assertEqual(stats["examples"], 10)
        model = attnviz.Model(DEMO)
        totals, row_totals, divergence, query_rows = {}, {}, 0, 0
        for a, b in pairs:
            t = model.trace(a, text_pair=b, threads=1, truncate=True)._native
            seq = t.sequences[0]
            roles = ref.key_roles(seq["special"], seq["segments"], seq["displays"], False)
            attn = np.array(t.attention(0))
            sums, rows, _ = ref.example_sums(attn, True, roles, False)
            for k in ref.STATS:
                totals[k] = totals.get(k, 0) + sums[k]
                row_totals[k] = row_totals.get(k, 0) + rows[k]
            divergence = divergence + ref.js_divergence_sums(attn)
            query_rows += attn.shape[2]
        block = stats["blocks"][0]
        for k in ref.STATS:
            self.assert_close(np.array(block["means"][k], dtype=np.float64), totals[k] / row_totals[k], f"heads {k}")
        distance = np.sqrt(np.maximum(divergence / query_rows, 0))
        self.assertEqual(block["jensen_shannon"]["query_rows"], query_rows)
        self.assert_close(block["jensen_shannon"]["distance"], distance, "JS distance")
        self.assert_close(block["jensen_shannon"]["mds"], ref.classical_mds_2d(np.array(block["jensen_shannon"]["distance"])),
                          "MDS")

    def test_bad_corpus_is_one_line_naming_file_and_line(self):
        """Bad input: one line on stderr naming the file and line, exit 1, no output written."""
        cases = [("bad.jsonl", b'{"text": "ok"}\n{"text": 3}\n', [], 'bad.jsonl:2: "text" is not a string'),
                 ("bad.jsonl", b'{"text": "ok"\n', [], "bad.jsonl:1: not JSON"),
                 ("p.jsonl", b'{"text": "a"}\n', ["--pairs"], 'p.jsonl:1: --pairs: no "text_pair"'),
                 ("one.txt", b"a b\n", ["--pairs"], "one.txt:1: --pairs: no tab between the two texts"),
                 ("blank.txt", b"\n \n", [], "no examples"),
                 ("bin.txt", b"ok\n\xff\xfe\n", [], "bin.txt:2: the line is not UTF-8"),
                 ("long.txt", b"a" * (1 << 21) + b"\n", [], "long.txt:1: the line is longer than 1048576 bytes")]
        for name, content, flags, message in cases:
            path = os.path.join(self.folder.name, name)
            with open(path, "wb") as f:
                f.write(content)
            report = os.path.join(self.folder.name, "never.html")
            run = subprocess.run([CLI, "heads", "--model", DEMO, "--input", path, *flags, "-o", report],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 1, name)
            lines = run.stderr.strip().splitlines()
            self.assertIn(message, lines[-1], name)
            self.assertTrue(lines[-1].startswith("attnviz: error: "), lines)
            self.assertFalse(os.path.exists(report), name)

    def test_demo_model_claims(self):
        """docs/demo-model.md names layer 0 head 2 as the [SEP] and [CLS] head and
        layer 1 head 3 as the previous/next-token head, measured by the PyTorch
        analysis on held-out pairs (tests/data/demo/pairs.json holds 40 of them):
        `attnviz heads` on those 40 pairs finds the same heads."""
        corpus = os.path.join(self.folder.name, "pairs40.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for a, b in demo_pairs(40):
                f.write(json.dumps({"text": a, "text_pair": b}) + "\n")
        stats_path = os.path.join(self.folder.name, "claims.json")
        subprocess.run([CLI, "heads", "--model", DEMO, "--input", corpus, "--pairs", "--quiet", "--js-examples", "0",
                        "-o", os.path.join(self.folder.name, "c.html"), "--json", stats_path],
                       check=True, capture_output=True)
        with open(stats_path, encoding="utf-8") as f:
            means = json.load(f)["blocks"][0]["means"]
        for stat, claimed in (("sep", (0, 2)), ("cls", (0, 2)), ("prev", (1, 3)), ("next", (1, 3))):
            m = np.array(means[stat], dtype=np.float64)
            self.assertEqual(np.unravel_index(np.argmax(m), m.shape), claimed, stat)

    def test_heads_word_level(self):
        """--word-level: the statistics of Clark et al.'s word-level maps (to a word:
        sum over its pieces; from a word: mean), words made here from WordPiece's
        ## continuations, independently of attnviz's word ids."""
        a, b = demo_pairs(6)[5]  # "implacable", "readily", ...: words of several pieces
        corpus = os.path.join(self.folder.name, "one.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write(json.dumps({"text": a, "text_pair": b}) + "\n")
        stats_path = os.path.join(self.folder.name, "words.json")
        subprocess.run([CLI, "heads", "--model", DEMO, "--input", corpus, "--pairs", "--word-level", "--quiet",
                        "--threads", "1", "-o", os.path.join(self.folder.name, "w.html"), "--json", stats_path],
                       check=True, capture_output=True)
        with open(stats_path, encoding="utf-8") as f:
            block = json.load(f)["blocks"][0]
        t = attnviz.Model(DEMO).trace(a, text_pair=b, threads=1, truncate=True)._native
        seq = t.sequences[0]
        words = []
        for i, token in enumerate(seq["tokens"]):
            if words and token.startswith("##") and not seq["special"][i]:
                words[-1].append(i)
            else:
                words.append([i])
        attn = np.array(t.attention(0), dtype=np.float64)
        to_words = np.stack([attn[..., w].sum(-1) for w in words], -1)
        merged = np.stack([to_words[..., w, :].mean(-2) for w in words], -2)
        special = [seq["special"][w[0]] for w in words]
        segment = [seq["segments"][w[0]] for w in words]
        display = ["".join(seq["displays"][i] for i in w) for w in words]
        roles = ref.key_roles(special, segment, display, False)
        sums, rows, _ = ref.example_sums(merged, True, roles, False)
        self.assertLess(len(words), len(seq["tokens"]) - 3)
        self.assertEqual(block["query_rows"], len(words))
        for k in ref.STATS:
            self.assert_close(np.array(block["means"][k], dtype=np.float64), sums[k] / rows[k], f"word level {k}")


if __name__ == "__main__":
    unittest.main()
