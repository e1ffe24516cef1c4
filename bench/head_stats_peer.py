#!/usr/bin/python3
"""attnviz's head statistics against the numpy peer (Clark et al.'s approach, as
tools/reference/head_stats_reference.py does it) on the same traces, in one run:
per input, the forward (attnviz.Model.trace), attnviz's head_stat_sums, and the
numpy reference's statistics and Jensen-Shannon sums.

  PYTHONPATH=build/python bench/head_stats_peer.py [model folder] [pairs]"""

import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import attnviz  # noqa: E402
import head_stats_reference as ref  # noqa: E402


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "demo")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with open(os.path.join(ROOT, "tests", "data", "demo", "heldout_sentences.txt"), encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    model = attnviz.Model(folder)
    times = {"forward": [], "attnviz stats": [], "numpy stats": [], "numpy JS": []}
    for a, b in list(zip(sentences[0::2], sentences[1::2]))[:count]:
        start = time.perf_counter()
        trace = model.trace(a, text_pair=b, threads=1, truncate=True)
        times["forward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        trace.head_stat_sums()
        times["attnviz stats"].append(time.perf_counter() - start)
        native = trace._native
        seq = native.sequences[0]
        attn = np.array(native.attention(0))
        start = time.perf_counter()
        roles = ref.key_roles(seq["special"], seq["segments"], seq["displays"], False)
        ref.example_sums(attn, True, roles, False)
        times["numpy stats"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ref.js_divergence_sums(attn)
        times["numpy JS"].append(time.perf_counter() - start)
    forward = statistics.median(times["forward"])
    print(f"{os.path.basename(folder)}: {count} held-out pairs, medians per input")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"  {name:14s} {1e3 * m:9.3f} ms  {100 * m / forward:7.1f}% of the forward")
    print(f"  numpy stats / attnviz stats: {statistics.median(times['numpy stats']) / statistics.median(times['attnviz stats']):.1f}x")


if __name__ == "__main__":
    main()
