#!/usr/bin/python3
"""Attention flow: attnviz (bench/analysis_bench, C++) beside the networkx
reference (Abnar & Zuidema's method: nx.maximum_flow_value on the layered
graph) on the same matrices, in one run.

  bench/analysis_bench.py [BUILD_DIR] [--tokens 128] [--layers 12] [--threads 2]
                          [--repeat 3] [--pairs 8] [--budget 60]
                          [--attention random|peaked] [--model models/demo [--text FILE]]

Without --model the matrices are random (BERT-base-shaped: softmax of N(0, 3^2)
scores, 12 heads), or with --attention peaked the views' synthetic stand-in for
a trained model ([CLS] sinks and sharp heads, tests/viz/synthetic_traces.h).
With --model the attention is real: `attnviz export` of the longest prefix
of --text (default: the demo model's held-out sentences,
tests/data/demo/heldout_sentences.txt) that has at most --tokens tokens, head
mean, 0.5 I + 0.5 A, the model's own layer count; `attnviz export --flow` on the
same text is timed too (the whole command: model load, forward and flow).

attnviz computes every pair (tokens^2 max-flow problems), best wall time of
--repeat runs with its CPU time, on --threads threads and on 1. networkx is
timed on up to --pairs pairs (the first output token to the first inputs; all
pairs would take days), stopping after the pair that passes --budget seconds,
with preflow_push (its fastest) and edmonds_karp (the paper's code), and
extrapolated to all pairs; the number of pairs timed is reported. The values
of those pairs are compared with attnviz's.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import networkx as nx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "reference"))
import analysis_reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--attention", choices=("random", "peaked"), default="random")
    ap.add_argument("--model", help="real attention of this model instead of random matrices")
    ap.add_argument("--text", default=os.path.join(HERE, "..", "tests", "data", "demo", "heldout_sentences.txt"))
    args = ap.parse_args()
    if args.model and args.attention != "random":
        ap.error("--attention chooses generated matrices; --model reads the model's own attention")
    n, L = args.tokens, args.layers
    extra, real = ["--attention", args.attention], {"attention": args.attention}
    with tempfile.TemporaryDirectory() as tmp:
        matrices_file, flow_file = os.path.join(tmp, "a.f32"), os.path.join(tmp, "flow.f32")
        if args.model:
            extra, real = real_attention(args, tmp)
            real["attention"] = "model"
            L, n = real["layers"], real["tokens"]
        def bench(threads):
            out = subprocess.run([os.path.join(args.build, "analysis_bench"), "--tokens", str(n), "--layers",
                                  str(L), "--threads", str(threads), "--repeat", str(args.repeat), "--dump",
                                  matrices_file, "--flow", flow_file] + extra,
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out)
        one = bench(1)
        ours = bench(args.threads)
        if args.model:
            for threads in (1, args.threads):
                real[f"attnviz_export_flow_{threads}_threads_s"] = time_export(args, real["text"], threads, tmp)
        print(json.dumps({"attnviz": ours, "attnviz_1_thread": one}), file=sys.stderr, flush=True)
        a = np.fromfile(matrices_file, dtype=np.float32).reshape(L, n, n)
        flow = np.fromfile(flow_file, dtype=np.float32).reshape(n, n)
    g = analysis_reference.flow_graph(a)
    result = {"tokens": n, "layers": L, "pairs_all": n * n, "attnviz_threads": args.threads,
              **{k: v for k, v in real.items() if k != "text"},
              "attnviz_all_pairs_s": ours["flow_all_seconds"],
              "attnviz_all_pairs_cpu_s": ours["flow_all_cpu_seconds"],
              "attnviz_1_thread_all_pairs_s": one["flow_all_seconds"]}
    for name, func in (("preflow_push", nx.algorithms.flow.preflow_push),
                       ("edmonds_karp", nx.algorithms.flow.edmonds_karp)):
        start = time.perf_counter()
        worst, timed = 0.0, 0
        for j in range(args.pairs):
            value = nx.maximum_flow_value(g, L * n, j, flow_func=func)
            worst = max(worst, abs(value - float(flow[0, j])))
            timed += 1
            if time.perf_counter() - start > args.budget:
                break
        per_pair = (time.perf_counter() - start) / timed
        result[f"networkx_{name}_pairs_timed"] = timed
        result[f"networkx_{name}_s_per_pair"] = round(per_pair, 4)
        result[f"networkx_{name}_all_pairs_s_extrapolated"] = round(per_pair * n * n, 1)
        result[f"networkx_{name}_max_abs_diff"] = worst
        result[f"ratio_{name}"] = round(per_pair * n * n / ours["flow_all_seconds"], 1)
        print(json.dumps(result), file=sys.stderr, flush=True)  # so far, in case a later pair is cut off
    print(json.dumps(result, indent=2))


def export(args, text, path, threads, flow=False):
    command = [os.path.join(args.build, "attnviz"), "export", "--model", args.model, "--text", text, "-o", path,
               "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(command + (["--flow"] if flow else []), check=True, capture_output=True, env=env)


def real_attention(args, tmp):
    """Exports the longest prefix of words of --text with at most --tokens tokens;
    writes its attention [L,H,S,S] for analysis_bench --probs."""
    words = open(args.text, encoding="utf-8").read().split()
    npz = os.path.join(tmp, "real.npz")
    def fits(count):  # (a text past the model's positions is refused)
        try:
            export(args, " ".join(words[:count]), npz, 1)
        except subprocess.CalledProcessError:
            return False
        return np.load(npz)["attentions"].shape[2] <= args.tokens
    low, high = 1, min(len(words), 4 * args.tokens)
    while low < high:  # the longest prefix that fits
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    text = " ".join(words[:low])
    export(args, text, npz, 1)
    probs = np.load(npz)["attentions"].astype(np.float32)
    L, H, S, _ = probs.shape
    probs_file = os.path.join(tmp, "probs.f32")
    probs.tofile(probs_file)
    return ["--heads", str(H), "--probs", probs_file], {"model": args.model, "words": low, "tokens": S,
                                                         "layers": L, "heads": H, "text": text}


def time_export(args, text, threads, tmp):
    """Best wall time of `attnviz export --flow` (load, forward, flow, write) over --repeat runs."""
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        export(args, text, os.path.join(tmp, "flow.npz"), threads, flow=True)
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


if __name__ == "__main__":
    main()
