"""attnviz.Model and Trace: a native run from Python gives exactly what the
CLI's `attnviz export` writes for the same text, arrays are views of the
trace's memory, and errors are Python exceptions with attnviz's message.
Needs ATTNVIZ_CLI (the built program) and ATTNVIZ_SOURCE_DIR (for models/demo)."""

import gc
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import attnviz  # noqa: E402
from page_payload import block_attention, payloads  # noqa: E402

CLI = os.environ["ATTNVIZ_CLI"]
DEMO = os.path.join(os.environ["ATTNVIZ_SOURCE_DIR"], "models", "demo")


def cli_export(*arguments):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "cli.npz")
        subprocess.run([CLI, "export", "--model", DEMO, "--threads", "1", "-o", path, *arguments], check=True,
                       stdout=subprocess.DEVNULL)
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}


class NativeRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = attnviz.Model(DEMO)

    # A Model's first trace runs on the checkpoint's weights, as the CLI's one run
    # does: bit for bit the same. Later traces run on weights packed for oneDNN,
    # whose sums round differently in the last float32 bits.
    def test_trace_matches_the_cli_export(self):
        trace = attnviz.Model(DEMO).trace("This is a test", threads=1)
        exported = cli_export("--text", "This is a test")
        np.testing.assert_array_equal(trace.attentions, exported["attentions"])
        again = self.model.trace("This is a test", threads=1)
        again = self.model.trace("This is a test", threads=1)
        np.testing.assert_allclose(again.attentions, exported["attentions"], rtol=0, atol=1e-5)
        np.testing.assert_array_equal(trace.input_ids, exported["input_ids"])
        self.assertEqual(trace.tokens, list(exported["tokens"]))
        self.assertEqual(trace.tokens[0], "[CLS]")

    def test_sentence_pair_matches_the_cli_export(self):
        trace = attnviz.Model(DEMO).trace("The cat sat on the mat", text_pair="The cat lay on the rug", threads=1,
                                          queries_keys=True, hidden_states=True)
        exported = cli_export("--text", "The cat sat on the mat", "--text-b", "The cat lay on the rug",
                              "--queries-keys", "--hidden-states")
        np.testing.assert_array_equal(trace.attentions, exported["attentions"])
        np.testing.assert_array_equal(trace.token_type_ids, exported["token_type_ids"])
        queries, keys, scale = trace.queries_keys()
        np.testing.assert_array_equal(queries, exported["queries"])
        np.testing.assert_array_equal(keys, exported["keys"])
        np.testing.assert_array_equal(scale, exported["score_scale"])
        np.testing.assert_array_equal(trace.hidden_states, exported["hidden_states"])
        self.assertEqual(trace.sentence_b_start, trace.tokens.index("[SEP]") + 1)

    def test_arrays_are_views_that_keep_the_trace_alive(self):
        trace = self.model.trace("This is a test")
        first, second = trace.attentions, trace.attentions
        self.assertTrue(np.shares_memory(first, second))
        self.assertFalse(first.flags["OWNDATA"])
        layers = trace.to_transformers()
        self.assertEqual(len(layers), first.shape[0])
        for layer, array in enumerate(layers):
            self.assertEqual(array.shape, (1,) + first.shape[1:])
            self.assertTrue(np.shares_memory(array, first))
            np.testing.assert_array_equal(array[0], first[layer])
        expected = first.copy()
        del trace, second, layers
        gc.collect()
        np.testing.assert_array_equal(first, expected)  # still readable: its base holds the trace
        np.testing.assert_allclose(first.sum(axis=-1), 1.0, atol=1e-5)

    def test_views_and_files(self):
        trace = self.model.trace("This is a test", text_pair="It works", queries_keys=True)
        for name in ("head", "model", "neuron", "matrix"):
            html = getattr(trace, f"{name}_view")(html_action="return")
            (payload,) = payloads(html.data)
            self.assertEqual(payload["meta"]["views"], [name])
        html = trace.head_view(include_layers=[1], html_action="return")
        values, row_max = block_attention(payloads(html.data)[0], 0)[1]
        self.assertTrue(np.all(np.abs(values - trace.attentions[1]) <= row_max[:, :, None] / 510 * (1 + 1e-5)))
        with tempfile.TemporaryDirectory() as folder:
            page = trace.save(os.path.join(folder, "page.html"))
            with open(page, encoding="utf-8") as text:
                whole = text.read()
            self.assertTrue(whole.startswith("<!DOCTYPE html>"))
            self.assertEqual(payloads(whole)[0]["meta"]["views"], ["head", "model"])
            npz_path = trace.save_npz(os.path.join(folder, "trace.npz"))
            with np.load(npz_path) as npz:
                np.testing.assert_array_equal(npz["attentions"], trace.attentions)
                np.testing.assert_array_equal(npz["queries"], trace.queries_keys()[0])

    def test_demo_model_is_the_default(self):
        self.assertEqual(os.path.realpath(attnviz.Model().folder), os.path.realpath(DEMO))


class Errors(unittest.TestCase):
    def test_missing_model_is_an_attnviz_error(self):
        with self.assertRaisesRegex(attnviz.Error, "no-such-folder"):
            attnviz.Model(os.path.join(tempfile.gettempdir(), "no-such-folder", "x"), offline=True)

    def test_broken_checkpoint_is_an_attnviz_error(self):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "config.json"), "w") as config:
                config.write('{"model_type": "bert", "num_hidden_layers": ')
            with self.assertRaisesRegex(attnviz.Error, "config.json"):
                attnviz.Model(folder)

    def test_text_too_long(self):
        model = attnviz.Model(DEMO)
        with self.assertRaisesRegex(attnviz.TooLongError, "truncate=True"):
            model.trace("word " * 5000)
        self.assertLessEqual(len(model.trace("word " * 5000, truncate=True).tokens), 5000)

    def test_bad_arguments(self):
        model = attnviz.Model(DEMO)
        with self.assertRaisesRegex(ValueError, "threads must be between 1 and"):
            model.trace("x", threads=0)
        with self.assertRaisesRegex(TypeError, "text must be a str"):
            model.trace(["x"])
        with self.assertRaisesRegex(ValueError, "queries_keys=True"):
            model.trace("x").neuron_view(html_action="return")
        with self.assertRaisesRegex(ValueError, "include_layers: layer 99 is out of range"):
            model.trace("x").head_view(include_layers=[99], html_action="return")


if __name__ == "__main__":
    unittest.main()
