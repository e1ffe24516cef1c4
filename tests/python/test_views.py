"""attnviz.head_view / model_view with attention attnviz did not compute: the
page's embedded values match the input (read back independently), the
arguments behave as bertviz's, and bad input is a ValueError naming the
argument and the shapes."""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import attnviz  # noqa: E402
from page_payload import block_attention, payloads  # noqa: E402


def softmax_attention(layers, heads, queries, keys, seed):
    scores = np.random.default_rng(seed).normal(scale=3.0, size=(layers, heads, queries, keys))
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]", "it", "slept", "[SEP]"]


class PayloadValues(unittest.TestCase):
    def assert_page_matches(self, html, stacked, block_index=0, layers=None, heads=None):
        (payload,) = payloads(html)
        decoded = block_attention(payload, block_index)
        layers = list(range(stacked.shape[0])) if layers is None else layers
        heads = list(range(stacked.shape[1])) if heads is None else heads
        self.assertEqual(list(decoded), layers)
        self.assertEqual(payload["meta"]["blocks"][block_index]["heads"], heads)
        for layer in layers:
            values, row_max = decoded[layer]
            expected = stacked[layer][heads]
            np.testing.assert_allclose(row_max, expected.max(axis=-1), rtol=0, atol=0)
            # every shown weight is within half a step (row_max / 255) of the input
            error = np.abs(values - expected)
            self.assertTrue(np.all(error <= row_max[:, :, None] / 510 * (1 + 1e-5)), error.max())
        return payload

    def test_tuple_of_numpy_layers_as_transformers_gives_them(self):
        stacked = softmax_attention(3, 4, 8, 8, seed=1)
        attention = tuple(stacked[layer][None] for layer in range(3))  # [1, H, S, S] each
        html = attnviz.head_view(attention, TOKENS, html_action="return")
        self.assertIsInstance(html, attnviz.HTML)
        self.assertEqual(html._repr_html_(), html.data)
        payload = self.assert_page_matches(html.data, stacked)
        self.assertEqual(payload["meta"]["views"], ["head"])
        tokens = payload["meta"]["sequences"][0]["tokens"]
        self.assertEqual([t[0] for t in tokens], TOKENS)
        self.assertEqual([t[4] for t in tokens], [1, 0, 0, 0, 1, 0, 0, 1])  # special tokens

    def test_stacked_array_and_torch_tensors_give_the_same_values(self):
        import torch

        stacked = softmax_attention(2, 3, 8, 8, seed=2)
        from_torch = attnviz.head_view(tuple(torch.from_numpy(stacked[i][None]) for i in range(2)), TOKENS,
                                       html_action="return")
        self.assert_page_matches(from_torch.data, stacked)
        self.assert_page_matches(attnviz.head_view(stacked, TOKENS, html_action="return").data, stacked)
        # torch.stack of the tuple: [layers, batch=1, heads, q, k]
        self.assert_page_matches(
            attnviz.model_view(torch.from_numpy(stacked)[:, None], TOKENS, html_action="return").data, stacked)
        float64 = attnviz.head_view(stacked.astype(np.float64), TOKENS, html_action="return")
        self.assert_page_matches(float64.data, stacked)

    def test_include_layers_and_heads(self):
        stacked = softmax_attention(4, 5, 8, 8, seed=3)
        html = attnviz.model_view(stacked, TOKENS, include_layers=[3, 1], include_heads=[4, 0],
                                  html_action="return")
        payload = self.assert_page_matches(html.data, stacked, layers=[3, 1], heads=[4, 0])
        self.assertEqual(payload["meta"]["views"], ["model"])
        head = attnviz.head_view(stacked, TOKENS, include_layers=[2], layer=2, html_action="return")
        self.assert_page_matches(head.data, stacked, layers=[2])

    def test_sentence_b_start_marks_the_second_segment(self):
        stacked = softmax_attention(1, 2, 8, 8, seed=4)
        html = attnviz.head_view(stacked, TOKENS, sentence_b_start=5, html_action="return")
        tokens = payloads(html.data)[0]["meta"]["sequences"][0]["tokens"]
        self.assertEqual([t[3] for t in tokens], [0, 0, 0, 0, 0, 1, 1, 1])

    def test_prettify_tokens_gives_bertviz_labels(self):
        stacked = softmax_attention(1, 1, 3, 3, seed=5)
        html = attnviz.head_view(stacked, ["Ġthe", "▁cat", "sat</w>"], html_action="return")
        tokens = payloads(html.data)[0]["meta"]["sequences"][0]["tokens"]
        self.assertEqual([t[1] for t in tokens], [" the", " cat", "sat"])

    def test_encoder_decoder(self):
        encoder = softmax_attention(2, 3, 5, 5, seed=6)
        decoder = softmax_attention(2, 3, 4, 4, seed=7)
        cross = softmax_attention(2, 3, 4, 5, seed=8)
        source, target = ["a", "b", "c", "d", "</s>"], ["<pad>", "w", "x", "y"]
        html = attnviz.head_view(encoder_attention=encoder, decoder_attention=decoder, cross_attention=cross,
                                 encoder_tokens=source, decoder_tokens=target, html_action="return")
        payload = payloads(html.data)[0]
        meta = payload["meta"]
        self.assertEqual([b["name"] for b in meta["blocks"]], ["encoder", "decoder", "cross"])
        self.assertEqual([s["name"] for s in meta["sequences"]], ["encoder", "decoder"])
        cross_block = meta["blocks"][2]
        self.assertEqual((cross_block["querySequence"], cross_block["keySequence"]), (1, 0))
        for index, stacked in enumerate((encoder, decoder, cross)):
            self.assert_page_matches(html.data, stacked, block_index=index)

    def test_causal_attention_is_marked_causal(self):
        stacked = softmax_attention(1, 2, 8, 8, seed=9)
        stacked *= np.tril(np.ones((8, 8), dtype=np.float32))
        html = attnviz.head_view(stacked, TOKENS, html_action="return")
        self.assertTrue(payloads(html.data)[0]["meta"]["blocks"][0]["causal"])
        html = attnviz.head_view(softmax_attention(1, 2, 8, 8, seed=9), TOKENS, html_action="return")
        self.assertFalse(payloads(html.data)[0]["meta"]["blocks"][0]["causal"])

    def test_two_views_have_distinct_roots(self):
        stacked = softmax_attention(1, 1, 8, 8, seed=10)
        first = attnviz.head_view(stacked, TOKENS, html_action="return").data
        second = attnviz.head_view(stacked, TOKENS, html_action="return").data
        root = 'id="attnviz-'
        self.assertIn(root, first)
        self.assertNotEqual(first.split(root)[1][:20], second.split(root)[1][:20])

    def test_the_input_array_is_not_kept(self):
        stacked = softmax_attention(1, 1, 8, 8, seed=11)
        trace = attnviz.from_attention(stacked, TOKENS)
        stacked[:] = 0  # the trace holds its own copy
        self.assertGreater(float(trace.attentions.sum()), 7.9)


class BadInput(unittest.TestCase):
    def assert_value_error(self, pattern, function, *args, **kwargs):
        with self.assertRaisesRegex(ValueError, pattern):
            function(*args, html_action="return", **kwargs)

    def test_batch_above_one(self):
        stacked = softmax_attention(2, 3, 8, 8, seed=12)
        attention = tuple(np.stack([stacked[layer], stacked[layer]]) for layer in range(2))  # batch 2
        self.assert_value_error(r"attention\[0\] has shape \(2, 3, 8, 8\): batch 2", attnviz.head_view, attention,
                                TOKENS)

    def test_token_count_mismatch(self):
        stacked = softmax_attention(2, 3, 8, 8, seed=13)
        self.assert_value_error(r"attention is \[layers, heads, queries, keys\] = \(2, 3, 8, 8\): 8 queries, "
                                r"but tokens has 7 tokens", attnviz.head_view, stacked, TOKENS[:7])
        self.assert_value_error(r"cross_attention .* 5 keys, but encoder_tokens has 4",
                                attnviz.model_view, cross_attention=softmax_attention(1, 1, 4, 5, 0),
                                encoder_tokens=list("abcd"), decoder_tokens=list("wxyz"))

    def test_wrong_dimensions_and_layer_shapes(self):
        self.assert_value_error(r"attention\[1\] has shape \(8, 8\): expected \[batch=1, heads, queries, keys\]",
                                attnviz.head_view, [np.zeros((1, 1, 8, 8)), np.zeros((8, 8))], TOKENS)
        self.assert_value_error(r"attention\[1\] is \[heads, queries, keys\] = \(2, 8, 8\) but attention\[0\] is "
                                r"\(1, 8, 8\)", attnviz.head_view, [np.zeros((1, 1, 8, 8)), np.zeros((1, 2, 8, 8))],
                                TOKENS)
        self.assert_value_error(r"attention has shape \(8, 8\)", attnviz.head_view, np.zeros((8, 8)), TOKENS)
        self.assert_value_error("attention must hold floating-point probabilities, not int64", attnviz.head_view,
                                np.zeros((1, 1, 8, 8), np.int64), TOKENS)

    def test_arguments_as_bertviz_checks_them(self):
        stacked = softmax_attention(2, 3, 8, 8, seed=14)
        self.assert_value_error("tokens is required", attnviz.head_view, stacked)
        self.assert_value_error("no attention given", attnviz.head_view)
        self.assert_value_error(r"Layer 1 is not in include_layers: \[0\]", attnviz.head_view, stacked, TOKENS,
                                layer=1, include_layers=[0])
        self.assert_value_error("include_heads: head 3 is out of range", attnviz.model_view, stacked, TOKENS,
                                include_heads=[3])
        self.assert_value_error("sentence_b_start 8 must be between 1 and 7", attnviz.head_view, stacked, TOKENS,
                                sentence_b_start=8)
        self.assert_value_error("not both", attnviz.head_view, stacked, TOKENS, encoder_tokens=TOKENS)
        self.assert_value_error("encoder_tokens is required with encoder_attention", attnviz.head_view,
                                encoder_attention=stacked)
        self.assert_value_error("display_mode must be", attnviz.model_view, stacked, TOKENS, display_mode="blue")
        with self.assertRaisesRegex(ValueError, "html_action must be 'view' or 'return'"):
            attnviz.head_view(stacked, TOKENS, html_action="show")


if __name__ == "__main__":
    unittest.main()
