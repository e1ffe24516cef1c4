#!/usr/bin/env bash
# attnviz vs PyTorch on a bert-base-sized random BERT, batch 1, every attention
# returned, side by side in one run: bench/model_bench.cpp and
# bench/model_bench_peer.py alternate, ROUNDS times over every (seq, threads).
#
#   bench/model_bench.sh [BUILD_DIR]     (RUNS=10 ROUNDS=3 SEQS="8 128 512" THREADS="1 2")
#
# BASELINE=path/to/an/older/model_bench also runs that binary in every round,
# just before attnviz's own (with the same settings), as "attnviz-baseline":
# before and after a change, alternating, in one run.
#
# PyTorch runs at its best: 1 thread with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1,
# 2 threads with OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2. attnviz runs with its defaults, and
# with more than one thread also with OMP_WAIT_POLICY=PASSIVE (its OpenMP pool,
# shared with oneDNN, then sleeps as soon as it idles: better on a busy machine).
# Prints every JSON result, then a markdown table: per (seq, threads) the best
# round's median wall time of each tool, and the best median process CPU time
# (all threads; on a busy machine wall time also counts other processes' turns),
# and attnviz's arithmetic rate as a share of the fp32 FMA peak that model_bench
# measures in the same process (an FMA-only loop on the same threads).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
baseline="${BASELINE:-}"
runs="${RUNS:-10}" rounds="${ROUNDS:-3}" seqs="${SEQS:-8 128 512}" threads_list="${THREADS:-1 2}"
cmake --build "$build" --target model_bench >/dev/null
model="$build/bert-base-bench"
if [ ! -f "$model/model.safetensors" ]; then
  /usr/bin/python3 tools/reference/bert_reference.py --out "$model" --layers 12 --heads 12 \
    --hidden 768 --intermediate 3072 --vocab 30522 --positions 512 --init-std 0.05 --seed 7 \
    --no-reference
fi
cat "$model/model.safetensors" >/dev/null  # warm page cache
results="$build/model_bench_results.jsonl"
: >"$results"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for seq in $seqs; do
    for threads in $threads_list; do
      if [ -n "$baseline" ]; then
        if [ "$threads" = 1 ]; then wait_policy=; else wait_policy=PASSIVE; fi
        env ${wait_policy:+OMP_WAIT_POLICY=$wait_policy} "$baseline" --model "$model" --seq "$seq" \
          --threads "$threads" --runs "$runs" --load-runs 1 |
          sed 's/"tool": "attnviz"/"tool": "attnviz-baseline"/' | tee -a "$results"
      fi
      "$build/model_bench" --model "$model" --seq "$seq" --threads "$threads" --runs "$runs" \
        --load-runs 3 | tee -a "$results"
      if [ "$threads" != 1 ]; then  # the peer's setting too: threads sleep at once when idle
        OMP_WAIT_POLICY=PASSIVE "$build/model_bench" --model "$model" --seq "$seq" \
          --threads "$threads" --runs "$runs" --load-runs 1 |
          sed 's/"tool": "attnviz"/"tool": "attnviz-passive"/' | tee -a "$results"
      fi
      if [ "$threads" = 1 ]; then
        env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/model_bench_peer.py \
          --model "$model" --seq "$seq" --threads 1 --runs "$runs"
      else
        env OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_WAIT_POLICY=PASSIVE \
          /usr/bin/python3 \
          bench/model_bench_peer.py --model "$model" --seq "$seq" --threads "$threads" --runs "$runs"
      fi | tee -a "$results"
    done
  done
done
echo "# load avg after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
keys = sorted({(r["seq"], r["threads"]) for r in rows})
print("| seq | threads | attnviz ms | PyTorch ms | speed-up | attnviz CPU ms | PyTorch CPU ms | CPU ratio | attnviz % of FMA peak (wall / CPU) | attnviz 1st / 2nd (packing) forward ms | attnviz peak RSS MiB | PyTorch peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for tool, seq, threads in [(t, s, n) for s, n in keys for t in ("attnviz-baseline", "attnviz", "attnviz-passive")]:
    mine = [r for r in rows if r["tool"] == tool and (r["seq"], r["threads"]) == (seq, threads)]
    if not mine:
        continue
    peer = [r for r in rows if r["tool"] == "pytorch" and (r["seq"], r["threads"]) == (seq, threads)]
    a = min(r["median_ms"] for r in mine)
    p = min(r["median_ms"] for r in peer)
    ac = min(r["cpu_ms"] for r in mine)
    pc = min(r["cpu_ms"] for r in peer)
    fastest = min(mine, key=lambda r: r["median_ms"])  # its peak was measured in the same process
    label = f"{threads}" + (" (OMP_WAIT_POLICY=PASSIVE)" if tool.endswith("passive") else "")
    label += " baseline" + (" (PASSIVE)" if threads > 1 else "") if tool.endswith("baseline") else ""
    print(f"| {seq} | {label} | {a:.1f} | {p:.1f} | {p / a:.2f}x | {ac:.1f} | {pc:.1f} | {pc / ac:.2f}x "
          f"| {100 * fastest['fraction_of_peak']:.0f}% / {100 * fastest['fraction_of_peak_cpu']:.0f}% "
          f"| {min(r['first_ms'] for r in mine):.0f} / {min(r['second_ms'] for r in mine):.0f} "
          f"| {max(r['peak_rss_mib'] for r in mine):.0f} | {max(r['peak_rss_mib'] for r in peer):.0f} |")
loads = [r["load_ms"] for r in rows if r["tool"] == "attnviz"]
for (seq, threads) in keys:  # every round's % of peak: the spread, not only the best
    for tool in ("attnviz-baseline", "attnviz", "attnviz-passive"):
        mine = [r for r in rows if r["tool"] == tool and (r["seq"], r["threads"]) == (seq, threads)]
        if mine:
            print(f"{tool} {seq} tokens {threads} threads, per round: wall ms "
                  + ", ".join(f"{r['median_ms']:.0f}" for r in mine) + "; CPU ms "
                  + ", ".join(f"{r['cpu_ms']:.0f}" for r in mine) + "; % of peak (wall / CPU) "
                  + ", ".join(f"{100 * r['fraction_of_peak']:.0f}/{100 * r['fraction_of_peak_cpu']:.0f}" for r in mine))
    peer = [r for r in rows if r["tool"] == "pytorch" and (r["seq"], r["threads"]) == (seq, threads)]
    print(f"pytorch {seq} tokens {threads} threads, per round: wall ms "
          + ", ".join(f"{r['median_ms']:.0f}" for r in peer) + "; CPU ms "
          + ", ".join(f"{r['cpu_ms']:.0f}" for r in peer))
print(f"\nattnviz load (open: config, memory map, validation), median of medians: {statistics.median(loads):.2f} ms")
PY
