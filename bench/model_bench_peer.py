#!/usr/bin/python3
"""PyTorch peer for bench/model_bench.cpp: the same BERT forward (the eager path
of modeling_bert.py with every attention kept, as tools/reference/bert_reference.py
implements it in plain torch 1.13), on the same model folder and token ids.

    bench/model_bench_peer.py --model DIR --seq 128 --threads 2 --runs 10

Prints one JSON object like model_bench's. Configure the peer at its best from
the environment: 1 thread with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1;
2 threads with OMP_WAIT_POLICY=PASSIVE (bench/model_bench.sh does this).
"""
import argparse
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
from bert_reference import bert_forward  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        assert entry["dtype"] == "F32", name
        tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype=np.float32).reshape(entry["shape"]).copy())
    return tensors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = json.load(open(os.path.join(args.model, "config.json")))
    start = time.perf_counter()
    weights = read_safetensors(os.path.join(args.model, "model.safetensors"))
    load_ms = (time.perf_counter() - start) * 1e3

    # The same pseudo-random ids as model_bench.cpp.
    state, ids = 12345, []
    for t in range(args.seq):
        state = (state * 1664525 + 1013904223) % 2**32
        token = 1000 + state % 20000
        token = 2 if t == 0 else 3 if t == args.seq - 1 else token
        ids.append(token % config["vocab_size"])
    input_ids = torch.tensor([ids])
    types = torch.zeros_like(input_ids)
    mask = torch.ones_like(input_ids)

    times, cpu_times = [], []
    with torch.inference_mode():
        for run in range(args.runs + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs = bert_forward(weights, config, input_ids, types, mask)
            elapsed = (time.perf_counter() - start) * 1e3
            if run > 0:
                times.append(elapsed)
                cpu_times.append((time.process_time() - cpu_start) * 1e3)
    print(json.dumps({
        "tool": "pytorch", "seq": args.seq, "threads": args.threads, "runs": args.runs,
        "median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
        "mean_ms": round(statistics.mean(times), 2), "stddev_ms": round(statistics.pstdev(times), 2),
        "cpu_ms": round(statistics.median(cpu_times), 2),
        "load_ms": round(load_ms, 2), "attention_mib": round(outputs["attentions"].numel() * 4 / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
