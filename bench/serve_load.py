#!/usr/bin/python3
"""Load test of `attnviz serve` on 127.0.0.1 (issue 16).

Starts the server (--no-open, a free port, --max-memory BUDGET), then 8
concurrent clients send REQUESTS requests in total: traces of mixed lengths up
to --max-len tokens (some followed by a tile, top-k or payload request of the
trace they made), and about 5% invalid ones (no token, too many tokens, bad
UTF-8, unknown model, a body over 1 MiB). Reports p50/p95 latency per kind,
failures (every valid request must answer 200; every invalid one 4xx) and the
server's peak resident memory (VmHWM) against the budget, then checks that the
server still answers.

    bench/serve_load.py --attnviz build/attnviz --model models/demo --max-len 128
    bench/serve_load.py --attnviz build/attnviz --model /tmp/bert-base --max-len 512 \\
        --requests 2000 --budget 3G
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

WORDS = ("the cat sat on mat dog lay rug bird flew over house and a small red car drove "
         "down long road while children played in park near river").split()


def request(base, method, path, token=True, body=None, headers=None, raw=None):
    url = base + path
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json"}
    if token:
        all_headers["X-Attnviz-Token"] = token if isinstance(token, str) else TOKEN
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    return status, payload, (time.perf_counter() - start) * 1000


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main():
    global TOKEN
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attnviz", default="build/attnviz")
    parser.add_argument("--model", default="models/demo")
    parser.add_argument("--max-len", type=int, default=128, help="the longest valid input, in tokens")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--budget", default="2G")
    parser.add_argument("--threads", type=int, default=0, help="serve --threads (0: its default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-log", default=os.devnull, help="the server's standard error")
    parser.add_argument("--bare-payload", action="store_true",
                        help="payload requests ask for no analysis (rollout=0&flow=0&head_stats=0&word_level=0) "
                             "instead of the server's default, attnviz view's, which the page gets")
    args = parser.parse_args()

    command = [args.attnviz, "serve", "--no-open", "--port", "0", "--model", args.model,
               "--max-memory", args.budget, "--max-tokens", str(args.max_len)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ, HF_HUB_CACHE="/nonexistent-attnviz-bench-cache")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(args.server_log, "w"), env=env, text=True)
    url = server.stdout.readline().strip()
    base, TOKEN = url.split("/?token=")
    model = os.path.basename(os.path.normpath(args.model))
    rng = random.Random(args.seed)
    bare = "&rollout=0&flow=0&head_stats=0&word_level=0" if args.bare_payload else ""

    # Word counts that give 1..max-len tokens (each word here is one token, plus [CLS] [SEP]).
    def text(words):
        return " ".join(rng.choice(WORDS) for _ in range(max(1, words)))

    jobs = []
    for i in range(args.requests):
        roll = rng.random()
        if roll < 0.05:
            kind = rng.choice(["no_token", "too_long", "bad_utf8", "unknown_model", "too_big"])
            jobs.append(("invalid_" + kind, i))
        else:
            jobs.append(("trace", i, rng.randint(1, args.max_len - 2)))
    results = []  # (kind, status, ms, expected_ok)
    lock = threading.Lock()
    next_job = [0]

    def client(index):
        tab = f"client-{index}"
        last_trace = None
        seq = 0
        while True:
            with lock:
                if next_job[0] >= len(jobs):
                    return
                job = jobs[next_job[0]]
                next_job[0] += 1
            kind = job[0]
            if kind == "trace":
                seq += 1
                status, payload, ms = request(base, "POST", "/api/trace",
                                              body={"model": model, "text": text(job[2]), "tab": tab, "seq": seq})
                out = [(kind, status, ms, True)]
                if status == 200:
                    answer = json.loads(payload)
                    last_trace = answer["trace_id"]
                    n = answer["blocks"][0]["n_queries"]
                    follow = rng.random()
                    if follow < 0.3:
                        q0 = rng.randrange(n)
                        s, _, t = request(base, "GET", f"/api/tile?trace={last_trace}&layer=0&head=mean&q0={q0}&q1={min(n, q0 + 64)}")
                        out.append(("tile", s, t, True))
                    elif follow < 0.5:
                        s, _, t = request(base, "GET", f"/api/topk?trace={last_trace}&layer=0&head=0&k=5")
                        out.append(("topk", s, t, True))
                    elif follow < 0.6:
                        s, _, t = request(base, "GET", f"/api/payload?trace={last_trace}{bare}")
                        out.append(("payload", s, t, True))
            elif kind == "invalid_no_token":
                status, _, ms = request(base, "GET", "/api/models", token=False)
                out = [(kind, status, ms, False)]
            elif kind == "invalid_too_long":
                status, _, ms = request(base, "POST", "/api/trace",
                                        body={"model": model, "text": text(args.max_len + 50)})
                out = [(kind, status, ms, False)]
            elif kind == "invalid_bad_utf8":
                status, _, ms = request(base, "POST", "/api/trace",
                                        raw=b'{"model": "' + model.encode() + b'", "text": "caf\xe9"}')
                out = [(kind, status, ms, False)]
            elif kind == "invalid_unknown_model":
                status, _, ms = request(base, "POST", "/api/trace", body={"model": "no-such-model", "text": "hi"})
                out = [(kind, status, ms, False)]
            else:  # invalid_too_big
                status, _, ms = request(base, "POST", "/api/trace", body={"model": model, "text": "a" * (1 << 20)})
                out = [(kind, status, ms, False)]
            with lock:
                results.extend(out)

    # The model's load, apart from the timings.
    status, _, load_ms = request(base, "POST", "/api/trace", body={"model": model, "text": "warm up"})
    assert status == 200, status
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    peak = peak_rss_kib(server.pid) * 1024
    after, _, _ = request(base, "GET", "/api/models")
    models = json.loads(request(base, "GET", "/api/models")[1])
    server.terminate()
    server.wait()

    failures = [r for r in results if (r[3] and r[1] != 200) or (not r[3] and not 400 <= r[1] < 500)]
    print(f"model {model}: {len(jobs)} jobs ({sum(1 for j in jobs if j[0] != 'trace')} invalid), "
          f"{len(results)} HTTP requests, {args.clients} clients, {wall:.1f} s, first load+trace {load_ms:.0f} ms")
    for kind in sorted({r[0] for r in results}):
        times = sorted(r[2] for r in results if r[0] == kind)
        statuses = sorted({r[1] for r in results if r[0] == kind})
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"  {kind:24s} n={len(times):5d}  p50 {statistics.median(times):8.1f} ms  p95 {p95:8.1f} ms  statuses {statuses}")
    budget = parse_size(args.budget)
    print(f"  failures: {len(failures)}" + (f" e.g. {failures[:3]}" if failures else ""))
    print(f"  peak RSS {peak / 2**20:.0f} MiB, budget {budget / 2**20:.0f} MiB ({'within' if peak <= budget else 'OVER'}); "
          f"server memory accounting at the end: {json.dumps(models['memory'])}")
    print(f"  answers afterwards: /api/models -> {after}")
    return 0 if not failures and after == 200 and peak <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
