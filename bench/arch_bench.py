#!/usr/bin/python3
"""Side-by-side timing of long-sequence decoders: attnviz vs the PyTorch peer.

Shapes (issue 5): GPT-2 base at 1024 tokens, a Llama-style model with
grouped-query attention (GPT-2-base width, 12 query heads over 4 key/value heads,
SwiGLU 2048) at 2048 tokens. Random weights in the Hugging Face layout, written by
tools/reference/arch_reference.py, with gpt2's tokenizer files.

The peer is the reference forward pass of tools/reference/arch_reference.py: plain
torch 1.13 eager code, step for step what transformers' eager attention path runs
with output_attentions=True (per-layer attention tensors kept, nothing stacked).
Each side runs in its own process so peak RSS is its own:
  - PyTorch at 1 thread (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1) and at 2
    threads (OMP_WAIT_POLICY=PASSIVE), as issue 4 prescribes for the peer;
  - attnviz: build-arch/arch_bench (bench/arch_bench.cpp), Model::open + trace on
    the same number of tokens, at 1 and 2 threads.
Prints a markdown table and the raw JSON.

Usage: bench/arch_bench.py [--build build-arch] [--runs 3] [--work /tmp/attnviz-arch-bench]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_FILES = os.path.join(ROOT, "tests", "data", "hf")

SHAPES = [
    # name, arch, size, tokens
    ("gpt2-base", "gpt2", "base", 1024),
    ("llama-style-gqa", "llama", "base", 2048),
]


def make_model(work, name, arch, size):
    folder = os.path.join(work, name)
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
        import arch_reference
        arch_reference.generate(arch, folder, [0], None, size, seed=0)
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            shutil.copy(os.path.join(HF_FILES, "gpt2", f), folder)
    return folder


PEER = r"""
import json, os, resource, statistics, sys, time
sys.path.insert(0, os.path.join(sys.argv[1], "tools", "reference"))
import torch, arch_reference
from arch_reference import ARCHS, Init, Recorder
arch, size, tokens, runs = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(int(sys.argv[6]))
Recorder.attentions_only = True
make_config, init_weights, forward, _ = ARCHS[arch]
c = make_config(size, {})
sd = init_weights(c, Init(0))
ids = [(7 * i + 11) % c["vocab_size"] for i in range(tokens)]
times = []
for _ in range(runs + 1):
    t0 = time.perf_counter()
    out = forward(sd, c, ids, None)
    times.append(time.perf_counter() - t0)
    del out
times = times[1:]  # the first run warms up allocators and thread pools
print(json.dumps({"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_peer(arch, size, tokens, runs, threads):
    env = dict(os.environ)
    if threads == 1:
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    else:
        env.update(OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run(["/usr/bin/python3", "-c", PEER, ROOT, arch, size, str(tokens), str(runs), str(threads)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_attnviz(build, folder, tokens, runs, threads):
    exe = os.path.join(ROOT, build, "arch_bench")
    out = subprocess.run([exe, folder, str(tokens), str(threads), str(runs)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-arch")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/attnviz-arch-bench")
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    results = []
    for name, arch, size, tokens in SHAPES:
        folder = make_model(args.work, name, arch, size)
        for threads in [int(t) for t in args.threads.split(",")]:
            ours = run_attnviz(args.build, folder, tokens, args.runs, threads)
            peer = run_peer(arch, size, tokens, args.runs, threads)
            results.append(dict(shape=name, tokens=tokens, threads=threads, attnviz=ours, pytorch=peer))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, runs={args.runs} (median, min), "
          f"after one warm-up run\n")
    print("| shape | tokens | threads | attnviz median / min (ms) | PyTorch median / min (ms) | speed-up "
          "| attnviz peak RSS (MB) | PyTorch peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        a, p = r["attnviz"], r["pytorch"]
        print(f"| {r['shape']} | {r['tokens']} | {r['threads']} | {a['median_ms']:.0f} / {a['min_ms']:.0f} "
              f"| {p['median_ms']:.0f} / {p['min_ms']:.0f} | {p['median_ms'] / a['median_ms']:.2f}x "
              f"| {a['peak_rss_mb']:.0f} | {p['peak_rss_mb']:.0f} |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
