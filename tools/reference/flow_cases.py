#!/usr/bin/python3
"""Attention-flow cases where the easy bound is NOT reached, with networkx's
max-flow values: tests/data/analysis/flow_cases.json.

The flow of output token i to input token j is at most min(row i's capacity
out of the top layer, column j's capacity into the sink). On softmax attention
of deep random models nearly every pair reaches that bound, so a heuristic
that only finds bound-reaching flows would pass those tests. These layered
graphs route flow through narrow places instead (near-permutation layers,
bottleneck layers, sparse capacities with zeros, more than 64 tokens so the
solver's bit sets span several words), and the reference is networkx's
maximum_flow_value (preflow_push) on the float32 capacities read as float64,
on Abnar & Zuidema's graph (analysis_reference.flow_graph).

Besides those, "edge_cases" are small shapes every solver must get right
whatever the bound: one layer (flow = the arc), two layers (no inner arcs
between kept layers), one token, exactly 64 tokens (one full bit-set word),
raw capacities with empty rows and columns (a source or sink with nothing), and
capacities spread over 17 orders of magnitude (amounts far below a residual's
ulp, which once left arcs marked as open with nothing to give).

  flow_cases.py OUT.json
"""

import json
import os
import sys

import networkx as nx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis_reference  # noqa: E402


def residual(attention):
    """0.5 I + 0.5 A with rows renormalised (the paper's Â), per layer."""
    n = attention.shape[-1]
    a = attention + np.eye(n)
    return a / a.sum(axis=-1, keepdims=True)


def near_permutation(rng, L, n, sharp=12.0, with_residual=True):
    """Each layer attends to a random permutation of the tokens, sharply (with
    the residual 0.5 I, or raw: flow_from_matrices takes any capacities)."""
    out = []
    for _ in range(L):
        scores = rng.normal(size=(n, n))
        scores[np.arange(n), rng.permutation(n)] += sharp
        out.append(analysis_reference.softmax(scores))
    return residual(np.array(out)) if with_residual else np.array(out)


def bottleneck(rng, L, n, narrow=2):
    """Random peaked attention, but one middle layer's capacities all lead into
    `narrow` tokens, whose rows in the layer below carry little."""
    a = residual(analysis_reference.softmax(rng.normal(scale=3.0, size=(L, n, n))))
    mid = L // 2
    a[mid][:, narrow:] *= 0.05
    a[mid - 1][:narrow] *= 0.3
    return a


def sparse(rng, L, n, keep=0.25):
    """Random capacities with most entries zero (as --discard-ratio makes)."""
    a = rng.uniform(size=(L, n, n)) * (rng.uniform(size=(L, n, n)) < keep)
    return a / np.maximum(a.sum(axis=-1, keepdims=True), 1e-30)


def case(name, a, outputs=None):
    a = a.astype(np.float32)
    L, n, _ = a.shape
    outputs = list(range(n)) if outputs is None else outputs
    g = analysis_reference.flow_graph(a.astype(np.float64))
    flow = [[nx.maximum_flow_value(g, L * n + i, j, flow_func=nx.algorithms.flow.preflow_push)
             for j in range(n)] for i in outputs]
    return {"name": name, "layers": L, "tokens": n, "outputs": outputs,
            "matrices": a.reshape(-1).tolist(), "flow": np.array(flow).reshape(-1).tolist()}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rng = np.random.default_rng(1717)
    cases = [
        case("near_permutation", near_permutation(rng, 4, 8)),
        case("near_permutation_deep_raw", near_permutation(rng, 8, 12, sharp=6.0, with_residual=False)),
        case("bottleneck", bottleneck(rng, 6, 10)),
        case("sparse", sparse(rng, 5, 9)),
        case("near_permutation_67_tokens", near_permutation(rng, 3, 67), outputs=[0, 40, 66]),
        case("bottleneck_130_tokens", bottleneck(rng, 2, 130, narrow=3), outputs=[5, 129]),
    ]
    raw = rng.uniform(size=(3, 7, 7)) * (rng.uniform(size=(3, 7, 7)) < 0.5)
    raw[2, 3, :] = 0  # output token 3 has no capacity
    raw[0, :, 5] = 0  # input token 5 receives none
    edge_cases = [
        case("one_layer", sparse(rng, 1, 5, keep=0.6)),
        case("two_layers", sparse(rng, 2, 6, keep=0.5)),
        case("one_token", rng.uniform(0.1, 1.0, size=(3, 1, 1))),
        case("64_tokens", sparse(rng, 3, 64, keep=0.1), outputs=[0, 63]),
        case("empty_rows_and_columns", raw),
    ]
    tiny = np.exp(-40 * rng.uniform(size=(4, 24, 24)))
    edge_cases.append(case("tiny_capacities", tiny / tiny.sum(axis=-1, keepdims=True)))
    with open(sys.argv[1], "w") as f:
        json.dump({"about": "tools/reference/flow_cases.py: networkx " + nx.__version__ +
                            " preflow_push max-flow values on float32 layer matrices", "cases": cases,
                   "edge_cases": edge_cases}, f)


if __name__ == "__main__":
    main()
