"""`attnviz view --attention FILE.npz`: attention attnviz did not compute, drawn
by the CLI. What `attnviz export` writes round-trips; numpy.savez files in the
documented layout draw with their values; bad files are one-line errors."""

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


def run_cli(*arguments, check=True):
    return subprocess.run([CLI, *arguments], capture_output=True, text=True, check=check)


class AttentionFile(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def path(self, name):
        return os.path.join(self.folder.name, name)

    def assert_page_values(self, page_path, attentions, block_index=0):
        with open(page_path, encoding="utf-8") as page:
            (payload,) = payloads(page.read())
        for layer, (values, row_max) in block_attention(payload, block_index).items():
            self.assertTrue(np.all(np.abs(values - attentions[layer]) <= row_max[:, :, None] / 510 * (1 + 1e-5)))
        return payload

    def test_a_cached_model_names_its_commit(self):
        """A model resolved from the Hugging Face cache (the demo model laid out as
        huggingface_hub leaves it) carries its snapshot's commit: Trace.model_revision,
        the npz's model_revision, and back through load_npz and `view --attention`."""
        commit = "86b5e0934494bd15c9632b12f734a8a67f723594"
        repo = self.path(os.path.join("cache", "models--org--demo"))
        snapshot = os.path.join(repo, "snapshots", commit)
        os.makedirs(snapshot)
        os.makedirs(os.path.join(repo, "refs"))
        with open(os.path.join(repo, "refs", "main"), "w") as ref:
            ref.write(commit)
        for name in os.listdir(DEMO):
            os.symlink(os.path.join(DEMO, name), os.path.join(snapshot, name))
        saved = {name: os.environ.get(name) for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
        os.environ.update(HF_HUB_CACHE=self.path("cache"), HF_HUB_OFFLINE="1")
        try:
            trace = attnviz.Model("org/demo").trace("The cat sat")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name)
                else:
                    os.environ[name] = value
        self.assertEqual((trace.model_id, trace.model_revision), ("org/demo", commit))
        self.assertEqual(attnviz.Model(DEMO).trace("The cat sat").model_revision, "")
        exported = self.path("cached.npz")
        trace.save_npz(exported)
        with np.load(exported) as npz:
            self.assertEqual(str(npz["model_revision"]), commit)
        self.assertEqual(attnviz.load_npz(exported).model_revision, commit)
        page = self.path("cached.html")
        run_cli("view", "--attention", exported, "-o", page)
        with open(page, encoding="utf-8") as html:
            self.assertEqual(payloads(html.read())[0]["meta"]["revision"], commit)

    def test_export_round_trips_with_provenance(self):
        exported = self.path("pair.npz")
        run_cli("export", "--model", DEMO, "--text", "The cat sat", "--text-b", "It slept", "--queries-keys",
                "-o", exported)
        with np.load(exported) as npz:
            arrays = {name: npz[name] for name in npz.files}
        self.assertEqual(str(arrays["model_id"]), "demo")
        self.assertEqual(str(arrays["attnviz_version"]), attnviz.__version__)
        self.assertEqual(arrays["texts"].tolist(), ["The cat sat", "It slept"])
        self.assertEqual(int(arrays["sentence_b_start"]), list(arrays["token_type_ids"]).index(1))
        page = self.path("page.html")
        run_cli("view", "--attention", exported, "--view", "all", "-o", page)
        payload = self.assert_page_values(page, arrays["attentions"])
        meta = payload["meta"]
        self.assertEqual(meta["model"], "demo")
        self.assertEqual(meta["views"], ["head", "model", "neuron", "matrix"])
        tokens = meta["sequences"][0]["tokens"]
        self.assertEqual([t[0] for t in tokens], arrays["tokens"].tolist())
        self.assertEqual([t[2] for t in tokens], arrays["input_ids"].tolist())
        self.assertEqual(meta["sequences"][0]["texts"], ["The cat sat", "It slept"])
        self.assertIn("queriesKeys", meta["blocks"][0])  # the neuron view has the queries and keys
        # Python reads the same file into the same values
        trace = attnviz.load_npz(exported)
        np.testing.assert_array_equal(trace.attentions, arrays["attentions"])
        np.testing.assert_array_equal(trace.queries_keys()[0], arrays["queries"])

    def test_selective_capture_round_trips(self):
        """export --layers/--heads/--top-k/--fp16 writes what docs/cli.md says: the CSR rows
        densify (numpy, as documented) to the full export's kept slice (to float32 rounding)
        with all but the k largest of each row zeroed; fp16 is within 2^-11 relative (2^-25 absolute below 2^-14);
        load_npz and `view --attention` read both."""
        text = "The cat sat on the mat because it was tired"
        full, sparse, half = self.path("full.npz"), self.path("sparse.npz"), self.path("half.npz")
        run_cli("export", "--model", DEMO, "--text", text, "-o", full)
        run_cli("export", "--model", DEMO, "--text", text, "--layers", "3,1", "--heads", "2",
                "--top-k", "3", "-o", sparse)
        run_cli("export", "--model", DEMO, "--text", text, "--layers", "0", "--fp16", "-o", half)
        with np.load(full) as npz:
            reference = npz["attentions"]
        with np.load(sparse) as npz:
            z = {name: npz[name] for name in npz.files}
        self.assertNotIn("attentions", z)
        self.assertEqual(z["attention_layers"].tolist(), [1, 3])
        self.assertEqual(z["attention_heads"].tolist(), [2])
        self.assertEqual(int(z["attention_top_k"]), 3)
        self.assertEqual(z["attentions_keys"].dtype, np.int32)
        L, H, Q, K = z["attentions_shape"]
        starts = z["attentions_row_start"]
        dense = np.zeros((L * H * Q, K), np.float32)
        dense[np.repeat(np.arange(L * H * Q), np.diff(starts)), z["attentions_keys"]] = z["attentions_probs"]
        dense = dense.reshape(L, H, Q, K)
        # Each row holds the 3 largest of the full export's row, with their values, to
        # float32 rounding: the layers and heads a capture leaves out run the context-only
        # kernel, whose sums round differently (the 1e-5 of tests/model/capture_test.cpp).
        run_to_run = 1e-5
        kept = reference[[1, 3]][:, [2]]
        for index in np.ndindex(kept.shape[:3]):
            row, stored = kept[index], dense[index]
            keys = np.flatnonzero(stored)
            self.assertEqual(len(keys), min(3, np.count_nonzero(row)), index)
            np.testing.assert_allclose(stored[keys], row[keys], rtol=0, atol=run_to_run)
            left = np.delete(row, keys)
            if left.size:
                self.assertGreaterEqual(row[keys].min(), left.max() - run_to_run, index)
        trace = attnviz.load_npz(sparse)
        csr = trace.attention_csr("self")
        np.testing.assert_array_equal(csr["row_start"], starts)
        np.testing.assert_array_equal(csr["probs"], z["attentions_probs"])
        with self.assertRaisesRegex(ValueError, "sparse rows.*attention_csr"):
            trace.attentions
        page = self.path("sparse.html")
        run_cli("view", "--attention", sparse, "--view", "head,model", "-o", page)
        # the page numbers kept layers as the model does: 1 and 3 are dense[0] and dense[1]
        payload = self.assert_page_values(page, {1: dense[0], 3: dense[1]})
        self.assertEqual(payload["meta"]["blocks"][0]["layers"], [1, 3])
        self.assertEqual(payload["meta"]["blocks"][0]["heads"], [2])

        with np.load(half) as npz:
            values = npz["attentions"]
            self.assertEqual(values.dtype, np.float16)
            self.assertEqual(float(npz["attention_fp16_relative_error"]), 2.0 ** -11)
        exact = reference[[0]].astype(np.float64)
        error = np.abs(values.astype(np.float64) - exact)
        bound = np.where(exact >= 2.0 ** -14, exact * 2.0 ** -11, 2.0 ** -25)
        self.assertTrue(np.all(error <= bound))
        self.assertEqual(attnviz.load_npz(half).attentions.dtype, np.float32)

    def test_numpy_savez_per_layer_arrays(self):
        rng = np.random.default_rng(3)
        layers = [rng.dirichlet(np.ones(5), size=(1, 2, 5)).astype(np.float64) for _ in range(3)]
        path = self.path("mine.npz")
        np.savez_compressed(path, **{f"attentions_{i}": a for i, a in enumerate(layers)},
                            tokens=np.array(["<s>", "Hello", "Ġworld", "</s>", "more"]), sentence_b_start=4)
        page = self.path("mine.html")
        run_cli("view", "--attention", path, "-o", page)
        payload = self.assert_page_values(page, np.concatenate(layers).astype(np.float32))
        tokens = payload["meta"]["sequences"][0]["tokens"]
        self.assertEqual([t[3] for t in tokens], [0, 0, 0, 0, 1])
        self.assertEqual([t[4] for t in tokens], [1, 0, 0, 1, 0])
        self.assertEqual(payload["meta"]["model"], "mine")

    def test_encoder_decoder_names(self):
        rng = np.random.default_rng(4)
        path = self.path("seq2seq.npz")
        cross = rng.dirichlet(np.ones(4), size=(2, 3, 3)).astype(np.float32)
        np.savez(path, encoder_tokens=np.array(list("abcd")), decoder_tokens=np.array(list("xyz")),
                 cross_attentions=cross, encoder_attentions=rng.dirichlet(np.ones(4), size=(2, 3, 4)))
        page = self.path("seq2seq.html")
        run_cli("view", "--attention", path, "-o", page)
        with open(page, encoding="utf-8") as text:
            (payload,) = payloads(text.read())
        self.assertEqual([b["name"] for b in payload["meta"]["blocks"]], ["encoder", "cross"])
        self.assert_page_values(page, cross, block_index=1)

    def test_bad_files_are_one_line_errors(self):
        cases = {
            "no_tokens.npz": (dict(attentions=np.zeros((1, 1, 2, 2), np.float32)), "no 'tokens' array"),
            "short.npz": (dict(attentions=np.zeros((1, 1, 3, 3), np.float32), tokens=np.array(["a", "b"])),
                          r"attentions is \[1, 1, 3, 3\] but its tokens number 2"),
            "ints.npz": (dict(attentions=np.zeros((1, 1, 2, 2), np.int32), tokens=np.array(["a", "b"])),
                         "dtype <i4 is not float16, float32 or float64"),
            "dims.npz": (dict(attentions=np.zeros((2, 2), np.float32), tokens=np.array(["a", "b"])),
                         r"attentions is \[2, 2\], expected \[layers, heads, queries, keys\]"),
            "b_start.npz": (dict(attentions=np.zeros((1, 1, 2, 2), np.float32), tokens=np.array(["a", "b"]),
                                 sentence_b_start=5), "sentence_b_start must be one index from 1 to 1"),
        }
        for name, (arrays, message) in cases.items():
            path = self.path(name)
            np.savez(path, **arrays)
            result = run_cli("view", "--attention", path, "-o", self.path("x.html"), check=False)
            self.assertEqual(result.returncode, 1, name)
            self.assertRegex(result.stderr, message)
            self.assertIn(path, result.stderr)
            self.assertEqual(result.stderr.count("\n"), 1, result.stderr)
            with self.assertRaisesRegex(attnviz.Error, message):
                attnviz.load_npz(path)

    def test_attention_excludes_running_a_model(self):
        path = self.path("x.npz")
        np.savez(path, attentions=np.ones((1, 1, 1, 1), np.float32), tokens=np.array(["a"]))
        result = run_cli("view", "--attention", path, "--text", "hi", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--text runs a model; --attention draws the file's attention", result.stderr)
        result = run_cli("view", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("give the text: --text TEXT, or --text-file FILE", result.stderr)


if __name__ == "__main__":
    unittest.main()
