#!/usr/bin/python3
"""Long contexts in bounded memory (issue 18), side by side with the PyTorch peer.

A Qwen2.5-0.5B-shaped model (model_type qwen2: 24 layers, 14 heads, 2 key/value
heads, hidden 896, intermediate 4864; random weights, built here from
tools/reference/arch_reference.py's qwen2 definition, never committed; the
bundled demo model's BERT tokenizer, so vocab_size 30522) at growing lengths:

  attnviz export --layers 0,11,23 --top-k 32       (the acceptance run)
  attnviz export (full capture)                     where it fits --full-budget,
                                                    with the estimate of a refused rerun
  attnviz export (full capture), refused up front   with its estimate
  PyTorch: arch_reference.llama_forward, which keeps every probability as
           transformers' output_attentions does     where it fits 80% of MemAvailable
           (torch.no_grad, OpenBLAS and torch on --threads; its forward timed alone)

Each run is a child under /usr/bin/time -v: wall time, CPU time (user + sys,
which the machine's other load does not inflate), peak RSS. The estimate the
refusal prints is compared with the peak RSS of the full capture at the
lengths that fit (the real need), and extrapolated: its S^2 term (every
probability, 4 bytes each) is exact by construction, the rest is checked.

The numbers in docs/performance.md (Long contexts) came from four timed runs:
--lengths 4096 --peer-lengths ""; --lengths 512,1024,2048 --full-budget 8G
--peer-lengths ""; --no-attnviz --peer-lengths 512,1024; --no-attnviz
--peer-lengths 2048,4096.

Usage: bench/long_context.py [--attnviz build/attnviz] [--lengths 512,1024,2048,4096] [--full-budget 8G]
       [--peer-lengths 512,1024,2048,4096] [--no-attnviz] [--threads 2]
       [--budget 4G] [--work /tmp/attnviz-long-context] [--json out.json]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))

QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32768, vocab_size=30522,
                  rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)


def build_model(folder):
    """config.json + model.safetensors (random weights, arch_reference's qwen2) + the demo tokenizer.
    The tensors are written one by one (safetensors layout), so that the 1.4 GiB of
    weights are not held twice."""
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return
    import struct
    import arch_reference as ref
    os.makedirs(folder, exist_ok=True)
    config = ref.llama_config("tiny", QWEN25_05B, model_type="qwen2")
    state = ref.llama_init(config, ref.Init(0))
    header, offset = {}, 0
    for name, tensor in state.items():
        size = tensor.numel() * 4
        header["model." + name] = {"dtype": "F32", "shape": list(tensor.shape),
                                   "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for tensor in state.values():
            f.write(tensor.contiguous().numpy().tobytes())
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(os.path.join(ROOT, "models", "demo", name), folder)


def text_of(tokens):
    """Plain words, one token each in the BERT uncased vocabulary; more than `tokens`, cut by --truncate."""
    words = "the cat sat on a mat and looked at the dog which was tired of the long day".split()
    return " ".join(words[i % len(words)] for i in range(tokens + 16))


def timed(command, env=None):
    """Runs under /usr/bin/time -v: (exit code, stderr, wall s, cpu s, peak RSS bytes)."""
    start = time.time()
    run = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True, env=env)
    wall = time.time() - start
    err = run.stdout + run.stderr  # the peer prints its forward time

    def field(name):
        m = re.search(re.escape(name) + r":\s*([0-9.]+)", err)
        return float(m.group(1)) if m else 0.0
    cpu = field("User time (seconds)") + field("System time (seconds)")
    rss = int(field("Maximum resident set size (kbytes)") * 1024)
    return run.returncode, err, wall, cpu, rss


def attnviz_export(args, folder, tokens, extra, out, budget=None):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    text_file = os.path.join(args.work, f"text-{tokens}.txt")
    with open(text_file, "w") as f:
        f.write(text_of(tokens))
    command = [args.attnviz, "export", "--model", folder, "--text-file", text_file,
               "--truncate", str(tokens), "--threads", str(args.threads), "--max-memory", budget or args.budget,
               "-o", out] + extra
    return timed(command, env)


def torch_peer(args, folder, tokens):
    """arch_reference.llama_forward in a child, keeping every layer's probabilities as
    transformers' output_attentions does (a tuple of [heads, T, T], no queries, keys or
    stacked copy), under torch.no_grad, on OpenBLAS with the same thread count."""
    script = f"""
import json, sys, time, torch
sys.path.insert(0, {os.path.join(ROOT, 'tools', 'reference')!r})
import arch_reference as ref
torch.set_num_threads({args.threads})
ref.Recorder.attentions_only = True
config = json.load(open({os.path.join(folder, 'config.json')!r}))
state = ref.llama_init(config, ref.Init(0))
ids = torch.randint(0, config["vocab_size"], ({tokens},))
start = time.time()
with torch.no_grad():
    out = ref.llama_forward(state, config, ids, None)
print("forward_s", time.time() - start)
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    return timed([sys.executable, "-c", script], env)


def peer_need(config, tokens):
    """What the peer holds at its peak, roughly: the weights, every kept probability,
    and one layer's scores, masked scores and probabilities being made."""
    weights = os.path.getsize(config)
    layers, heads = QWEN25_05B["num_hidden_layers"], QWEN25_05B["num_attention_heads"]
    return weights + (layers + 3) * heads * tokens * tokens * 4


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def gib(n):
    return n / 2**30


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attnviz", default=os.path.join(ROOT, "build", "attnviz"))
    parser.add_argument("--lengths", default="512,1024,2048,4096")
    parser.add_argument("--peer-lengths", default="512,1024,2048,4096")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", default="4G", help="--max-memory of the selective runs")
    parser.add_argument("--full-budget", default="4G",
                        help="--max-memory of the full capture (raise it to measure the real need)")
    parser.add_argument("--no-attnviz", action="store_true", help="only the peer")
    parser.add_argument("--work", default="/tmp/attnviz-long-context")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    folder = os.path.join(args.work, "qwen2.5-0.5b-shaped")
    build_model(folder)
    results = []

    def record(**row):
        results.append(row)
        print(json.dumps(row), flush=True)

    selective = ["--layers", "0,11,23", "--top-k", "32"]
    for tokens in [] if args.no_attnviz else [int(t) for t in args.lengths.split(",") if t]:
        out = os.path.join(args.work, f"selective-{tokens}.npz")
        code, err, wall, cpu, rss = attnviz_export(args, folder, tokens, selective, out)
        record(run="attnviz --layers 0,11,23 --top-k 32", tokens=tokens, code=code, wall_s=round(wall, 1),
               cpu_s=round(cpu, 1), peak_rss_gib=round(gib(rss), 3),
               file_mib=round(os.path.getsize(out) / 2**20, 1) if code == 0 else None,
               error=err.splitlines()[0] if code else "")
        # the full capture: runs where it fits the budget, else is refused with its estimate
        out = os.path.join(args.work, f"full-{tokens}.npz")
        code, err, wall, cpu, rss = attnviz_export(args, folder, tokens, [], out, args.full_budget)
        # the estimate of the same run, from its refusal under a budget it cannot fit
        refused = attnviz_export(args, folder, tokens, [], out, "1M")[1] if code == 0 else err
        estimate = re.search(r"needs (?:about|more than) ([0-9.]+) (GiB|MiB|TiB)", refused)
        estimate_gib = None
        if estimate:
            estimate_gib = float(estimate.group(1)) * {"MiB": 1 / 1024, "GiB": 1, "TiB": 1024}[estimate.group(2)]
        record(run="attnviz full capture", tokens=tokens, code=code, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
               peak_rss_gib=round(gib(rss), 3) if code == 0 else None, estimate_gib=estimate_gib,
               estimate_over_peak=round(estimate_gib / gib(rss), 3) if code == 0 and estimate_gib else None,
               message=[line[:200] for line in err.splitlines() if "error" in line][:1])
        if os.path.exists(out):
            os.remove(out)
    for tokens in [int(t) for t in args.peer_lengths.split(",") if t]:
        need, available = peer_need(os.path.join(folder, "model.safetensors"), tokens), mem_available()
        if need > 0.8 * available:
            record(run="pytorch output_attentions", tokens=tokens, code=None,
                   error=f"does not fit: needs about {gib(need):.1f} GiB, {gib(available):.1f} GiB available")
            continue
        code, err, wall, cpu, rss = torch_peer(args, folder, tokens)
        forward = re.search(r"forward_s ([0-9.]+)", err + "")
        record(run="pytorch output_attentions", tokens=tokens, code=code, wall_s=round(wall, 1),
               forward_s=round(float(forward.group(1)), 1) if forward else None,
               cpu_s=round(cpu, 1), peak_rss_gib=round(gib(rss), 3),
               error=err.strip().splitlines()[-1] if code else "")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
