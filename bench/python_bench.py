"""attnviz from Python, side by side with the CLI and with bertviz's figure.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py [BUILD_DIR]
        (RUNS=10 ROUNDS=6 SEQ=128 THREADS=1)

1. Model.trace from Python against `attnviz bench` (the same forward pass in
   the CLI, tokenization included in both) on a bert-base-sized random BERT
   (made by tools/reference/bert_reference.py, as bench/model_bench.sh does),
   interleaved: ROUNDS rounds, each a CLI run and a Python run of RUNS forwards
   (their order alternating), so both see the same machine; the median over
   rounds of each side's per-round median, and the median per-round ratio.
2. head_view of a 512-token, 12-layer, 12-head numpy attention: the time to
   write its HTML (head_view(..., html_action="return") and the file write),
   and the page's size. bertviz is not installed here (no PyPI); its published
   figure for 128 tokens is 2.6 s and a 105 MB page (the issue quotes it).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python"))
import attnviz  # noqa: E402

RUNS, ROUNDS = int(os.environ.get("RUNS", 10)), int(os.environ.get("ROUNDS", 6))
SEQ, THREADS = int(os.environ.get("SEQ", 128)), int(os.environ.get("THREADS", 1))
CLI = os.path.join(BUILD, "attnviz")
SAMPLE = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
          "and nothing particular to interest me on shore, I thought I would sail about a little and see the "
          "watery part of the world. ") * 40


def bert_base():
    folder = os.path.join(BUILD, "bert-base-bench")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools/reference/bert_reference.py"), "--out", folder,
                        "--layers", "12", "--heads", "12", "--hidden", "768", "--intermediate", "3072", "--vocab",
                        "30522", "--positions", "512", "--init-std", "0.05", "--seed", "7", "--no-reference"],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


def text_of_length(model, tokens):
    """A prefix of SAMPLE, in words, that the model's tokenizer makes `tokens` long."""
    words = SAMPLE.split()
    low, high = 1, len(words)
    while low < high:
        middle = (low + high) // 2
        if len(model.trace(" ".join(words[:middle]), threads=THREADS, truncate=True).tokens) < tokens:
            low = middle + 1
        else:
            high = middle
    text = " ".join(words[:low])
    return text, len(model.trace(text, threads=THREADS).tokens)


def python_median_ms(model, text):
    model.trace(text, threads=THREADS)  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        model.trace(text, threads=THREADS)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cli_median_ms(folder, tokens):
    result = subprocess.run([CLI, "bench", "--model", folder, "--seq", str(tokens), "--runs", str(RUNS),
                             "--threads", str(THREADS)], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)["median_ms"]


def trace_bench():
    folder = bert_base()
    model = attnviz.Model(folder)
    text, tokens = text_of_length(model, SEQ)
    cli, python = [], []
    for round_index in range(ROUNDS):
        if round_index % 2 == 0:
            cli.append(cli_median_ms(folder, tokens))
            python.append(python_median_ms(model, text))
        else:
            python.append(python_median_ms(model, text))
            cli.append(cli_median_ms(folder, tokens))
    ratio = statistics.median(p / c for p, c in zip(python, cli))
    print(f"forward, bert-base random, {tokens} tokens, {THREADS} thread(s), {ROUNDS} interleaved rounds of "
          f"{RUNS} runs, median of the rounds' medians:")
    print(f"  CLI (attnviz bench)     {statistics.median(cli):9.2f} ms   rounds: "
          + " ".join(f"{t:.1f}" for t in cli))
    print(f"  Python (Model.trace)    {statistics.median(python):9.2f} ms   rounds: "
          + " ".join(f"{t:.1f}" for t in python))
    print(f"  Python / CLI, median of the rounds: {(ratio - 1) * 100:+.1f}%")


def head_view_bench():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(size=(12, 12, 512, 512), dtype=np.float32) * 2
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    attention = tuple(weights[layer][None] for layer in range(12))  # as transformers gives it
    tokens = [f"tok{i}" for i in range(512)]
    attnviz.head_view(attention[:1], tokens, html_action="return")  # warm-up (first-call costs)
    times, cpu_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(5):
            start, cpu_start = time.perf_counter(), time.process_time()
            html = attnviz.head_view(attention, tokens, html_action="return")
            html.save(os.path.join(folder, "head.html"))
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        size = os.path.getsize(os.path.join(folder, "head.html"))
    # CPU time (every thread) as well: on a busy machine wall time counts other processes' turns.
    print("head_view, 512 tokens, 12 layers x 12 heads, numpy, HTML written to a file:")
    print(f"  attnviz                 {statistics.median(times):9.3f} s wall, {statistics.median(cpu_times):.3f} s CPU "
          f"(medians of 5), page {size / 1e6:.1f} MB")
    print("  bertviz                 not installed here; its published figure: 2.6 s and a 105 MB page "
          "at 128 tokens")


if __name__ == "__main__":
    print(f"# {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {open('/proc/loadavg').read().split()[0]}")
    head_view_bench()
    trace_bench()
