#!/usr/bin/python3
"""Independent references for the analysis measures (src/analysis), in numpy,
with networkx for attention flow. Each follows the paper's equations:

- word level (Clark et al. 2019, "What Does BERT Look At?", sec. 4): attention
  to a word is the sum over its pieces, from a word the mean over its pieces;
- rollout (Abnar & Zuidema 2020, eq. 1; their compute_joint_attention): per
  layer A = fuse(heads), then (A + I) with rows renormalised, then
  R_0 = Â_0, R_l = Â_l R_{l-1}; variants head max and discard-lowest-ratio;
- flow (Abnar & Zuidema 2020): networkx maximum_flow_value on their layered
  graph (get_adjmat: node (l, k), edge (l+1, a) -> (l, b) of capacity
  Â_l[a][b]), from (L, i) to (0, j), for every i, j;
- value norms (Kobayashi et al. 2020, "Attention is not only a weight"):
  ‖f_h(x_k)‖ with f_h(x) = (x W_V^h + b_V^h) W_O^h, the head's value vector
  through its slice of the output projection (no output bias), and
  value-weighted attention α_ij ‖f_h(x_j)‖.

Usage:
  analysis_reference.py random OUT.json      random attention cases and every measure
  analysis_reference.py models OUT_DIR       value norms, rollout and flow for the
                                             tiny architecture fixtures (tests/data/arch)
                                             and the demo model (models/demo)
"""

import json
import math
import os
import struct
import sys

import networkx as nx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# ---------------------------------------------------------------------------
# the measures


def reduce_heads(att, how):
    """att [L, H, Q, K] -> [L, Q, K]"""
    return att.mean(axis=1) if how == "mean" else att.max(axis=1)


def residual_attention(att, fusion="mean", discard_ratio=0.0):
    """[L, n, n] layer matrices: fuse heads, discard the lowest entries, add I, renormalise rows."""
    att = np.asarray(att, dtype=np.float64)
    fused = reduce_heads(att, fusion).copy()
    L, n, _ = fused.shape
    out = np.empty_like(fused)
    for layer in range(L):
        a = fused[layer].reshape(-1).copy()
        m = int(math.floor(discard_ratio * a.size))
        if m > 0:
            # the m lowest entries, ties to the lower index (a stable sort)
            a[np.argsort(a, kind="stable")[:m]] = 0.0
        a = a.reshape(n, n) + np.eye(n)
        out[layer] = a / a.sum(axis=-1, keepdims=True)
    return out


def rollout(att, fusion="mean", discard_ratio=0.0):
    a = residual_attention(att, fusion, discard_ratio)
    joint = np.empty_like(a)
    joint[0] = a[0]
    for layer in range(1, a.shape[0]):
        joint[layer] = a[layer] @ joint[layer - 1]
    return joint


def flow_graph(a):
    """Abnar & Zuidema's layered graph: node l*n + k, edge (l+1, a) -> (l, b)."""
    L, n, _ = a.shape
    g = nx.DiGraph()
    g.add_nodes_from(range((L + 1) * n))
    for layer in range(1, L + 1):
        for k_from in range(n):
            for k_to in range(n):
                cap = float(a[layer - 1][k_from][k_to])
                if cap > 0:
                    g.add_edge(layer * n + k_from, (layer - 1) * n + k_to, capacity=cap)
    return g


def flow(att, fusion="mean", discard_ratio=0.0, outputs=None, flow_func=None):
    """[len(outputs), n]: max-flow value from (L, i) to (0, j)."""
    a = residual_attention(att, fusion, discard_ratio)
    L, n, _ = a.shape
    g = flow_graph(a)
    outputs = range(n) if outputs is None else outputs
    func = flow_func or nx.algorithms.flow.preflow_push
    out = np.zeros((len(outputs), n))
    for row, i in enumerate(outputs):
        for j in range(n):
            out[row, j] = nx.maximum_flow_value(g, L * n + i, j, flow_func=func)
    return out


def word_level_maps(maps, query_words, key_words):
    """maps [M, Q, K]; *_words: the word of each token -> [M, WQ, WK]."""
    maps = np.asarray(maps, dtype=np.float64)
    wq, wk = max(query_words) + 1, max(key_words) + 1
    to_word = np.zeros((maps.shape[2], wk))
    to_word[np.arange(maps.shape[2]), key_words] = 1.0  # sum over a word's pieces
    from_word = np.zeros((wq, maps.shape[1]))
    from_word[query_words, np.arange(maps.shape[1])] = 1.0
    from_word /= from_word.sum(axis=1, keepdims=True)  # mean over a word's pieces
    return np.einsum("wq,mqk,kv->mwv", from_word, maps, to_word)


def words_from_ids(word_ids, segments):
    """The word of each token: runs of equal (segment, word id); specials (-1) alone."""
    out, word, prev = [], -1, None
    for w, s in zip(word_ids, segments):
        if not (prev is not None and w >= 0 and prev == (w, s)):
            word += 1
        out.append(word)
        prev = (w, s)
    return out


def value_weighted(att, norms):
    """att [L, H, Q, K], norms [L, H, K] -> [L, H, Q, K]"""
    return np.asarray(att, dtype=np.float64) * np.asarray(norms, dtype=np.float64)[:, :, None, :]


# ---------------------------------------------------------------------------
# random cases


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def random_attention(rng, L, H, n, causal=False, peak=3.0):
    scores = rng.normal(scale=peak, size=(L, H, n, n))
    if causal:
        scores = np.where(np.tril(np.ones((n, n), dtype=bool)), scores, -np.inf)
    return softmax(scores).astype(np.float32)


def random_cases():
    rng = np.random.default_rng(17)
    cases = []
    for name, L, H, n, causal in [("encoder", 3, 2, 7, False), ("causal", 4, 3, 6, True),
                                  ("one_layer", 1, 2, 5, False), ("deep", 6, 2, 9, False)]:
        att = random_attention(rng, L, H, n, causal)
        word_ids = [-1] + sorted(rng.integers(0, n // 2, size=n - 2).tolist()) + [-1]
        segments = [-1] + [0] * (n - 2) + [-1]
        norms = rng.uniform(0.1, 3.0, size=(L, H, n)).astype(np.float32)
        words = words_from_ids(word_ids, segments)
        case = {
            "name": name, "causal": causal, "shape": [L, H, n, n],
            "attentions": att.reshape(-1).tolist(),
            "value_norms": norms.reshape(-1).tolist(),
            "word_ids": word_ids, "segments": segments, "words": words,
            "mean_heads": reduce_heads(att.astype(np.float64), "mean").reshape(-1).tolist(),
            "max_heads": reduce_heads(att.astype(np.float64), "max").reshape(-1).tolist(),
            "mean_layers": att.astype(np.float64).mean(axis=0).reshape(-1).tolist(),
            "max_layers": att.astype(np.float64).max(axis=0).reshape(-1).tolist(),
            "word_level": word_level_maps(att.reshape(L * H, n, n), words, words).reshape(-1).tolist(),
            "value_weighted": value_weighted(att, norms).reshape(-1).tolist(),
            "rollout_mean": rollout(att).reshape(-1).tolist(),
            "rollout_max": rollout(att, "max").reshape(-1).tolist(),
            "rollout_mean_discard": rollout(att, "mean", 0.3).reshape(-1).tolist(),
            "rollout_max_discard": rollout(att, "max", 0.5).reshape(-1).tolist(),
            "flow_mean": flow(att).reshape(-1).tolist(),
            "flow_max_discard": flow(att, "max", 0.5).reshape(-1).tolist(),
        }
        cases.append(case)
    return {"about": "tools/reference/analysis_reference.py random: numpy (float64) and networkx "
                     "preflow_push on float32 random attention; layouts row-major as named",
            "cases": cases}


# ---------------------------------------------------------------------------
# models: the tiny architecture fixtures (re-run through arch_reference.py's
# forwards with the fixtures' seeds, recording every value tensor) and the demo


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": None}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[start:end]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def head_norms(values, w_o, layout):
    """values [H, K, Dh]; w_o the output projection ([out, in], or [in, out] for GPT-2's
    Conv1D) -> [H, K]: ‖v_k^h W_O^h‖, W_O^h the head's slice of the input columns."""
    values = np.asarray(values, dtype=np.float64)
    w = np.asarray(w_o, dtype=np.float64)
    if layout == "in_out":
        w = w.T  # -> [out, in]
    H, K, dh = values.shape
    out = np.empty((H, K))
    for h in range(H):
        f = values[h] @ w[:, h * dh:(h + 1) * dh].T  # [K, out]
        out[h] = np.linalg.norm(f, axis=1)
    return out


# fixture -> (output projection names in call order, weight layout); {i}: layer
OUT_PROJ = {
    "gpt2": (["h.{i}.attn.c_proj.weight"], "in_out"),
    "llama": (["layers.{i}.self_attn.o_proj.weight"], "out_in"),
    "roberta": (["encoder.layer.{i}.attention.output.dense.weight"], "out_in"),
    "t5": ({"encoder": "encoder.block.{i}.layer.0.SelfAttention.o.weight",
            "decoder": "decoder.block.{i}.layer.0.SelfAttention.o.weight",
            "cross": "decoder.block.{i}.layer.1.EncDecAttention.o.weight"}, "out_in"),
    "bart": ({"encoder": "encoder.layers.{i}.self_attn.out_proj.weight",
              "decoder": "decoder.layers.{i}.self_attn.out_proj.weight",
              "cross": "decoder.layers.{i}.encoder_attn.out_proj.weight"}, "out_in"),
}


def fixture_case(name):
    """Re-runs a tests/data/arch fixture through arch_reference.py, recording the values."""
    sys.path.insert(0, HERE)
    import torch
    import arch_reference
    import make_arch_fixtures
    names = list(make_arch_fixtures.CASES)
    arch, src, target, _head, overrides = make_arch_fixtures.CASES[name]
    make_config, init_weights, forward, _ = arch_reference.ARCHS[arch]
    c = make_config("tiny", dict(overrides))
    sd = init_weights(c, arch_reference.Init(names.index(name)))
    recorded = []
    original = arch_reference.masked_softmax_attention

    def recording(scores, visible, v):
        recorded.append(v.detach().numpy().copy())
        return original(scores, visible, v)

    arch_reference.masked_softmax_attention = recording
    try:
        outputs = forward(sd, c, src, target, None)
    finally:
        arch_reference.masked_softmax_attention = original
    ref = read_safetensors(os.path.join(ROOT, "tests", "data", "arch", name, "reference.safetensors"))
    weights = {k: v.numpy() for k, v in sd.items()}
    proj, layout = OUT_PROJ[arch]
    result = {}
    if isinstance(proj, list):  # one stack
        att = outputs["self.attentions"].numpy()
        assert np.allclose(att, ref["self.attentions"], atol=1e-6), name
        L = att.shape[0]
        norms = np.stack([head_norms(recorded[i], weights[proj[0].format(i=i)], layout) for i in range(L)])
        result.update(block_measures("self", att, norms))
    else:  # encoder, then per decoder layer: self, cross
        enc = outputs["encoder.attentions"].numpy()
        dec = outputs["decoder.attentions"].numpy()
        cross = outputs["cross.attentions"].numpy()
        for block, att in (("encoder", enc), ("decoder", dec), ("cross", cross)):
            assert np.allclose(att, ref[f"{block}.attentions"], atol=1e-6), (name, block)
        Le, Ld = enc.shape[0], dec.shape[0]
        enc_values = recorded[:Le]
        dec_values = recorded[Le::2]
        cross_values = recorded[Le + 1::2]
        for block, att, values in (("encoder", enc, enc_values), ("decoder", dec, dec_values),
                                   ("cross", cross, cross_values)):
            norms = np.stack([head_norms(values[i], weights[proj[block].format(i=i)], layout)
                              for i in range(att.shape[0])])
            result.update(block_measures(block, att, norms, square=block != "cross"))
    del torch
    return result


def block_measures(block, att, norms, square=True):
    out = {f"{block}.value_norms": norms, f"{block}.value_weighted": value_weighted(att, norms)}
    if square:
        out[f"{block}.rollout"] = rollout(att)
        out[f"{block}.flow"] = flow(att)
    return out


def demo_case():
    """models/demo on the demo fixture's seed pair: BERT forward in numpy (modeling_bert.py)."""
    ref = json.load(open(os.path.join(ROOT, "tests", "data", "demo", "reference.json")))
    w = {k: v.astype(np.float64) for k, v in
         read_safetensors(os.path.join(ROOT, "models", "demo", "model.safetensors")).items()}
    w = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in w.items()}
    config = json.load(open(os.path.join(ROOT, "models", "demo", "config.json")))
    H, L = config["num_attention_heads"], config["num_hidden_layers"]
    eps = config.get("layer_norm_eps", 1e-12)
    ids = np.array(ref["ids"])
    types = np.array(ref["token_type_ids"])
    S = len(ids)

    def ln(x, g, b):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * g + b

    def gelu(x):
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types] \
        + w["embeddings.position_embeddings.weight"][np.arange(S)]
    x = ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    D = x.shape[1]
    dh = D // H
    atts, norms = [], []
    for i in range(L):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: t @ w[p + n + ".weight"].T + w[p + n + ".bias"]  # noqa: E731
        q = lin(x, "attention.self.query").reshape(S, H, dh).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(S, H, dh).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(S, H, dh).transpose(1, 0, 2)
        probs = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        atts.append(probs)
        norms.append(head_norms(v, w[p + "attention.output.dense.weight"], "out_in"))
        ctx = (probs @ v).transpose(1, 0, 2).reshape(S, D)
        x = ln(x + lin(ctx, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
               w[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin(x, "intermediate.dense"))
        x = ln(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    att = np.stack(atts)
    assert np.allclose(att, np.array(ref["probs"]).reshape(att.shape), atol=1e-5)
    return block_measures("self", att, np.stack(norms))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("random", "models"):
        sys.exit(__doc__)
    if sys.argv[1] == "random":
        with open(sys.argv[2], "w") as f:
            json.dump(random_cases(), f)
        return
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    for name in ("gpt2_tiny", "llama_gqa_llama3_rope", "roberta_tiny", "t5_tiny", "bart_tiny"):
        write_safetensors(os.path.join(out_dir, f"{name}.safetensors"), fixture_case(name))
        print("wrote", name)
    write_safetensors(os.path.join(out_dir, "demo.safetensors"), demo_case())
    print("wrote demo")


if __name__ == "__main__":
    main()
