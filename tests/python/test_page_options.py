"""bertviz's layer=, heads=, display_mode= and prettify_tokens= choose what
attnviz's page opens on: the payload carries the choice (meta.open, meta.theme,
meta.markers) and the page in headless Chromium opens on it
(page_options.test.mjs). Tokens given as strings have no id, and no tooltip
or readout shows one; tokens of a native run show theirs.
Needs ATTNVIZ_SOURCE_DIR (for the browser test and the demo model)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import attnviz  # noqa: E402
from page_payload import payloads  # noqa: E402

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
BROWSER_TEST = os.path.join(SOURCE, "tests", "python", "page_options.test.mjs")
TOKENS = ["[CLS]", "Ġthe", "##cat", "▁sat", "[SEP]"]


def attention(layers, heads, seed):
    scores = np.random.default_rng(seed).normal(size=(layers, heads, len(TOKENS), len(TOKENS)))
    weights = np.exp(scores)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def meta(html):
    (payload,) = payloads(html.data)
    return payload["meta"]


class PageOptions(unittest.TestCase):
    def setUp(self):
        self.stacked = attention(3, 4, seed=1)

    def pages(self):
        """name -> (fragment, what the browser should find)."""
        native = attnviz.Model(os.path.join(SOURCE, "models", "demo")).trace("the cat sat")
        return {
            "layer_heads": (attnviz.head_view(self.stacked, TOKENS, layer=2, heads=[1, 3], html_action="return"),
                            {"layer": "2", "active": "1,3", "off": [0, 2], "theme": "light", "markers": False,
                             "shown": ["[CLS]", "the", "cat", "sat", "[SEP]"], "ids": None}),
            "included": (attnviz.head_view(self.stacked, TOKENS, layer=1, include_layers=[2, 1],
                                           html_action="return"),
                         {"layer": "1", "active": "0,1,2,3", "off": [], "theme": "light", "markers": False}),
            "raw_tokens": (attnviz.head_view(self.stacked, TOKENS, prettify_tokens=False, html_action="return"),
                           {"layer": "0", "active": "0,1,2,3", "off": [], "theme": "light", "markers": True,
                            "shown": TOKENS, "ids": None}),
            "model_dark": (attnviz.model_view(self.stacked, TOKENS, html_action="return"),
                           {"theme": "dark", "markers": False}),
            "model_light": (attnviz.model_view(self.stacked, TOKENS, display_mode="light", prettify_tokens=False,
                                               html_action="return"),
                            {"theme": "light", "markers": True}),
            "native": (native.head_view(html_action="return"),
                       {"layer": "0", "theme": "light", "markers": False,
                        "ids": [int(i) for i in native.input_ids]}),
        }

    def test_the_payload_carries_the_choice(self):
        page = meta(attnviz.head_view(self.stacked, TOKENS, layer=2, heads=[3, 1], html_action="return"))
        self.assertEqual(page["open"], {"layer": 2, "heads": [3, 1]})
        self.assertEqual((page["theme"], page["markers"]), ("light", False))
        page = meta(attnviz.head_view(self.stacked, TOKENS, html_action="return"))
        self.assertEqual(page["open"], {"layer": 0, "heads": [0, 1, 2, 3]})
        page = meta(attnviz.head_view(self.stacked, TOKENS, prettify_tokens=False, html_action="return"))
        self.assertTrue(page["markers"])
        self.assertEqual([t[1] for t in page["sequences"][0]["tokens"]], TOKENS)
        self.assertEqual([t[2] for t in page["sequences"][0]["tokens"]], [-1] * len(TOKENS))
        # bertviz's model_view opens dark unless display_mode="light"
        self.assertEqual(meta(attnviz.model_view(self.stacked, TOKENS, html_action="return"))["theme"], "dark")
        page = meta(attnviz.model_view(self.stacked, TOKENS, display_mode="light", html_action="return"))
        self.assertEqual(page["theme"], "light")

    def test_choices_outside_the_page_are_value_errors(self):
        with self.assertRaisesRegex(ValueError, r"Layer 0 is not in include_layers: \[1, 2\]"):
            attnviz.head_view(self.stacked, TOKENS, layer=0, include_layers=[1, 2], html_action="return")
        with self.assertRaisesRegex(ValueError, r"heads: head 4 is out of range \(the attention has 4 heads\)"):
            attnviz.head_view(self.stacked, TOKENS, heads=[4], html_action="return")
        with self.assertRaisesRegex(ValueError, "display_mode must be 'dark' or 'light', not 'dim'"):
            attnviz.model_view(self.stacked, TOKENS, display_mode="dim", html_action="return")

    def test_the_page_opens_on_the_choice(self):
        with tempfile.TemporaryDirectory() as folder:
            expected = {}
            for name, (html, expect) in self.pages().items():
                with open(os.path.join(folder, name + ".html"), "w", encoding="utf-8") as out:
                    out.write('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>' + html.data +
                              "</body></html>")
                expected[name] = expect
            with open(os.path.join(folder, "expected.json"), "w", encoding="utf-8") as out:
                json.dump(expected, out)
            node = shutil.which("node")
            self.assertIsNotNone(node, "node is missing: run tools/setup")
            result = subprocess.run([node, BROWSER_TEST, folder], capture_output=True, text=True, timeout=240)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("page options: 6 pages ok", result.stdout)


if __name__ == "__main__":
    unittest.main()
