"""The analysis tabs from Python (rollout=, flow=, head_stats=, word_level= on
head_view / model_view / Trace views / Trace.save): what the page carries is
computed in C++ on the attention it was given, and checked here against the
independent numpy references (tools/reference/analysis_reference.py: Abnar &
Zuidema's rollout and networkx max-flow; head_stats_reference.py: Clark et
al.'s statistics) and against `attnviz export --word-level` for words.
The defaults: bertviz's functions add nothing unless asked (the page is
bertviz's); a Trace's views and save() do what `attnviz view` does for the
length. analysis_views.test.mjs opens an encoder-decoder page in Chromium: the
cross-attention block's note shows on the Rollout / flow tab.

Error model: the page's row maxima are the C++ float32 values (float32 products
and sums over <= 12 layers of <= 16 tokens: relative error below 1e-6), so
1e-5 against the float64 reference; a drawn level is within half a step
(row_max / 510) of the value; a printed value is the float32 value rounded once
to 3 significant digits, so within half a unit of its third digit of the
reference plus the float32 error. Head statistics: as test_head_stats.py."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np
import torch

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(SOURCE, "tools", "reference"))
import analysis_reference as ref  # noqa: E402
import attnviz  # noqa: E402
import head_stats_reference as stats_ref  # noqa: E402
from attnviz import _native  # noqa: E402
from page_payload import payloads  # noqa: E402

CLI = os.environ["ATTNVIZ_CLI"]
DEMO = os.path.join(SOURCE, "models", "demo")
BROWSER_TEST = os.path.join(SOURCE, "tests", "python", "analysis_views.test.mjs")
TOLERANCE = 1e-5
TOKENS = ["[CLS]", "the", "cat", ",", "sat", "on", "the", "mat", "[SEP]"]
# The demo tokenizer splits "lighthouse" and "granddaughter" into pieces.
TEXT = "The lighthouse keeper's granddaughter found the notebooks."


def random_attention(seed, layers, heads, queries, keys=None, causal=False):
    rng = np.random.default_rng(seed)
    weights = np.exp(2.0 * rng.normal(size=(layers, heads, queries, keys or queries)))
    if causal:
        weights *= np.tril(np.ones((queries, keys or queries)))
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)


def the_meta(html):
    (payload,) = payloads(html if isinstance(html, str) else html.data)
    return payload


def measure(payload, name):
    """{layer: (levels [Q, K] as drawn, row_max [Q], exact [Q, K] as printed)} of a
    rollout or flow block of meta.analysis (one head)."""
    (block,) = [b for b in payload["meta"]["analysis"]["blocks"] if b["name"] == name]
    queries, keys = block["queries"], block["keys"]
    out = {}
    for layer, stream, exact in zip(block["layers"], block["probs"], block["exact"]):
        raw = zlib.decompress(base64.b64decode(payload["streams"][stream]))
        row_max = np.frombuffer(raw, dtype="<f4", count=queries).astype(np.float64)
        levels = np.frombuffer(raw, dtype=np.uint8, offset=queries * 4).reshape(queries, keys)
        planes = np.frombuffer(zlib.decompress(base64.b64decode(payload["streams"][exact])), dtype=np.uint8)
        codes = (planes[:queries * keys].astype(np.int64) << 8) | planes[queries * keys:]
        out[layer] = (levels * (row_max[:, None] / 255.0), row_max, codes.reshape(queries, keys))
    return block, out


class Checks:
    def assert_measure(self, payload, name, expected, what):
        """expected: [layers, Q, K] float64 reference values of the block's layers."""
        block, layers = measure(payload, name)
        self.assertEqual(block["heads"], [0], what)
        self.assertEqual(len(layers), len(expected), what)
        for (layer, (drawn, row_max, codes)), want in zip(sorted(layers.items()), expected):
            where = f"{what} layer {layer}"
            np.testing.assert_allclose(row_max, want.max(-1), rtol=TOLERANCE, atol=0, err_msg=where + " row maxima")
            self.assertTrue(np.all(np.abs(drawn - want) <= row_max[:, None] / 510 + 1e-6), where + " levels")
            mantissa, exponent = codes & 1023, codes >> 10
            printed = mantissa * 10.0 ** (exponent - 50)
            big = mantissa >= 100
            half_unit = 0.5 * 10.0 ** (exponent - 50)
            self.assertTrue(np.all(np.abs(printed - want)[big] <= half_unit[big] + 1e-6 * want[big]), where + " digits")
            self.assertTrue(np.all((want[codes == 1] > 0) & (want[codes == 1] < 0.001 + 1e-9)), where + " <0.001")
            self.assertTrue(np.all(want[codes == 0] < 1e-12), where + " zeros")
            self.assertTrue(np.all((codes == 0) | (codes == 1) | big), where + " codes")

    def assert_stats(self, payload, native, block_index, what):
        """meta.analysis.stats of a block against head_stats_reference's means."""
        (stats,) = [s for s in payload["meta"]["analysis"]["stats"] if s["block"] == block_index]
        block = native.blocks[block_index]
        keys = native.sequences[block["key_sequence"]]
        roles = stats_ref.key_roles(keys["special"], keys["segments"], keys["displays"], block["causal"])
        attn = np.array(native.attention(block_index))
        sums, rows, _ = stats_ref.example_sums(attn, block["query_sequence"] == block["key_sequence"], roles,
                                               block["causal"])
        for stat in stats_ref.STATS:
            want = sums[stat] / rows[stat] if rows[stat] else np.full(sums[stat].shape, np.nan)
            got = np.array([[np.nan if v is None else v for v in row] for row in stats["values"][stat]])
            self.assertEqual(got.shape, want.shape, f"{what} {stat}")
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what} {stat} NaN")
            ok = ~np.isnan(want)
            self.assertTrue(np.all(np.abs(got[ok] - want[ok]) <= TOLERANCE * np.maximum(1, np.abs(want[ok]))),
                            f"{what} {stat}")


class FromOtherSources(Checks, unittest.TestCase):
    """Attention as bertviz takes it: a tuple of per-layer [1, H, S, S] torch tensors."""

    def setUp(self):
        self.att = random_attention(3, 4, 3, len(TOKENS))
        self.torch_layers = tuple(torch.from_numpy(layer[None].copy()) for layer in self.att)

    def test_nothing_unless_asked(self):
        """bertviz's functions draw bertviz's page: no analysis, no word level."""
        for view in (attnviz.head_view, attnviz.model_view):
            meta = the_meta(view(self.torch_layers, TOKENS, html_action="return"))["meta"]
            self.assertNotIn("analysis", meta)
            self.assertNotIn("words", meta)

    def test_rollout_flow_and_stats_match_the_references(self):
        html = attnviz.head_view(self.torch_layers, TOKENS, rollout=True, flow=True, head_stats=True,
                                 html_action="return")
        payload = the_meta(html)
        self.assertEqual(payload["meta"]["analysis"]["notes"], [])
        self.assert_measure(payload, "rollout", ref.rollout(self.att), "head_view rollout")
        self.assert_measure(payload, "flow", ref.flow(self.att)[None], "head_view flow")
        native = attnviz.from_attention(self.att, TOKENS)._native
        self.assert_stats(payload, native, 0, "head_view stats")
        # model_view carries the same, and each measure can be left out
        payload = the_meta(attnviz.model_view(self.torch_layers, TOKENS, rollout=True, html_action="return"))
        self.assertEqual([b["measure"] for b in payload["meta"]["analysis"]["blocks"]], ["rollout"])
        self.assertEqual(payload["meta"]["analysis"]["stats"], [])
        self.assert_measure(payload, "rollout", ref.rollout(self.att), "model_view rollout")

    def test_causal_attention_and_included_layers(self):
        att = random_attention(5, 3, 2, 7, causal=True)
        tokens = ["<s>", "a", "b", "c", "d", "e", "f"]
        payload = the_meta(attnviz.head_view(list(att[:, None]), tokens, rollout=True, flow=True,
                                             include_layers=[2, 0], html_action="return"))
        self.assert_measure(payload, "rollout", ref.rollout(att)[[0, 2]], "causal rollout of layers 2, 0")
        self.assert_measure(payload, "flow", ref.flow(att)[None], "causal flow")

    def test_none_takes_the_views_default_for_the_length(self):
        """None: `attnviz view`'s rule (head stats always, flow up to
        default_flow_tokens tokens, rollout up to default_rollout_tokens)."""
        for n, flow in ((_native.default_flow_tokens, True), (_native.default_flow_tokens + 1, False)):
            tokens = ["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"]
            att = random_attention(n, 1, 1, n)
            meta = the_meta(attnviz.head_view(att, tokens, rollout=None, flow=None, head_stats=None,
                                              word_level=None, html_action="return"))["meta"]
            self.assertEqual([b["measure"] for b in meta["analysis"]["blocks"]],
                             ["rollout", "flow"] if flow else ["rollout"], f"{n} tokens")
            self.assertEqual(len(meta["analysis"]["stats"]), 1)
            self.assertIn("wordsNote", meta)  # strings have no word ids: nothing to merge

    def test_encoder_decoder_blocks_and_the_cross_note(self):
        enc, dec = 6, 4
        blocks = {"encoder_attention": random_attention(7, 2, 2, enc),
                  "decoder_attention": random_attention(8, 2, 2, dec, causal=True),
                  "cross_attention": random_attention(9, 2, 2, dec, enc)}
        kwargs = {name: list(att[:, None]) for name, att in blocks.items()}
        payload = the_meta(attnviz.model_view(encoder_tokens=["a", "b", "c", "d", "e", "</s>"],
                                              decoder_tokens=["<pad>", "x", "y", "z"], rollout=True, flow=True,
                                              head_stats=True, html_action="return", **kwargs))
        analysis = payload["meta"]["analysis"]
        self.assertEqual(analysis["notes"], ['rollout and flow are for self-attention blocks: "cross" '
                                             '(cross-attention) has none'])
        self.assertEqual([b["name"] for b in analysis["blocks"]],
                         ["encoder rollout", "encoder flow", "decoder rollout", "decoder flow"])
        for name in ("encoder", "decoder"):
            att = blocks[name + "_attention"]
            self.assert_measure(payload, name + " rollout", ref.rollout(att), name + " rollout")
            self.assert_measure(payload, name + " flow", ref.flow(att)[None], name + " flow")
        self.assertEqual([s["block"] for s in analysis["stats"]], [0, 1, 2])

    def test_bad_choices_are_type_errors(self):
        with self.assertRaisesRegex(TypeError, "rollout must be True, False or None"):
            attnviz.head_view(self.att, TOKENS, rollout="yes", html_action="return")


class NativeRuns(Checks, unittest.TestCase):
    """A Trace of attnviz's own model: its views and save() do what `attnviz view` does."""

    @classmethod
    def setUpClass(cls):
        cls.trace = attnviz.Model(DEMO).trace(TEXT)

    def test_defaults_follow_the_view_command(self):
        n = len(self.trace.tokens)
        self.assertLessEqual(n, _native.default_flow_tokens)
        payload = the_meta(self.trace.head_view(html_action="return"))
        meta = payload["meta"]
        self.assertEqual([b["measure"] for b in meta["analysis"]["blocks"]], ["rollout", "flow"])
        self.assertIn("words", meta)
        self.assertFalse(meta["words"]["open"])
        att = np.array(self.trace.attentions)
        self.assert_measure(payload, "rollout", ref.rollout(att), "demo rollout")
        self.assert_measure(payload, "flow", ref.flow(att)[None], "demo flow")
        self.assert_stats(payload, self.trace._native, 0, "demo stats")
        # False leaves each out; word_level=True opens the page at word level
        meta = the_meta(self.trace.matrix_view(rollout=False, flow=False, head_stats=False, word_level=False,
                                               html_action="return"))["meta"]
        self.assertNotIn("analysis", meta)
        self.assertNotIn("words", meta)
        meta = the_meta(self.trace.model_view(word_level=True, html_action="return"))["meta"]
        self.assertTrue(meta["words"]["open"])

    def test_word_level_equals_the_export(self):
        """The page's word-level rollout and flow are `attnviz export --word-level`'s, to the digits."""
        with tempfile.TemporaryDirectory() as folder:
            npz = os.path.join(folder, "words.npz")
            subprocess.run([CLI, "export", "--model", DEMO, "--text", TEXT, "--rollout", "--flow", "--word-level",
                            "-o", npz], check=True, capture_output=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
            exported = np.load(npz)
            page = os.path.join(folder, "page.html")
            self.trace.save(page, views=["head"], word_level=True)
            with open(page, encoding="utf-8") as f:
                payload = the_meta(f.read())
        words = payload["meta"]["words"]
        self.assertTrue(words["open"])
        world = {"meta": words, "streams": payload["streams"]}
        self.assert_measure(world, "rollout", exported["rollout"].astype(np.float64), "word rollout")
        self.assert_measure(world, "flow", exported["flow"].astype(np.float64)[None], "word flow")
        self.assertEqual(exported["rollout"].shape[1], len(words["sequences"][0]["tokens"]))
        self.assertLess(exported["rollout"].shape[1], len(self.trace.tokens))


class EncoderDecoderPage(unittest.TestCase):
    def test_the_cross_note_shows_in_chromium(self):
        enc, dec = 6, 4
        trace = attnviz.from_attention(encoder_attention=random_attention(7, 2, 2, enc),
                                       decoder_attention=random_attention(8, 2, 2, dec, causal=True),
                                       cross_attention=random_attention(9, 2, 2, dec, enc),
                                       encoder_tokens=["a", "b", "c", "d", "e", "</s>"],
                                       decoder_tokens=["<pad>", "x", "y", "z"])
        with tempfile.TemporaryDirectory() as folder:
            trace.save(os.path.join(folder, "seq2seq.html"), views=["head"], rollout=True, flow=True)
            node = shutil.which("node")
            self.assertIsNotNone(node, "node is missing: run tools/setup")
            result = subprocess.run([node, BROWSER_TEST, os.path.join(folder, "seq2seq.html")], capture_output=True,
                                    text=True, timeout=240)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("encoder-decoder page ok", result.stdout)
            self.assertIn(json.dumps(["Encoder rollout", "Encoder flow", "Decoder rollout", "Decoder flow"], separators=(",", ":")),
                          result.stdout)


if __name__ == "__main__":
    unittest.main()
