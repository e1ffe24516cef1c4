"""`attnviz heads` on 10,000 held-out texts of the demo model's corpus (issue 17's
acceptance), and the claims of docs/demo-model.md checked against its statistics.

The held-out part of the demo corpus (tests/data/demo/heldout_sentences.txt) has
3,432 sentences in 19 documents, fewer than 10,000; so the 10,000 texts are every
run of one, two and three consecutive sentences of a held-out document (3,432 +
3,413 + the first 3,155 of 3,394), all of it held-out text, never trained on.
The claims are checked on every pair of consecutive held-out sentences of 4 to 30
words each (1,546 pairs), close to how docs/demo-model.md measured them (400 pairs
of 4-40 tokens a side). On all 3,413 pairs, up to 128 tokens, layer 1 head 2 takes
more [SEP] attention than layer 0 head 2 (0.074 against 0.050): the [SEP] head of
the docs is a short-input pattern; this test prints both."""

import json
import os
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
CLI = os.environ["ATTNVIZ_CLI"]
DEMO = os.path.join(SOURCE, "models", "demo")


def documents():
    with open(os.path.join(SOURCE, "tests", "data", "demo", "heldout_sentences.txt"), encoding="utf-8") as f:
        return [d.split("\n") for d in f.read().strip("\n").split("\n\n")]


def spans(docs, k):
    return [" ".join(doc[i:i + k]) for doc in docs for i in range(len(doc) - k + 1)]


def best(matrix):
    return max(((v, l, h) for l, row in enumerate(matrix) for h, v in enumerate(row) if v is not None))


def main():
    docs = documents()
    texts = spans(docs, 1) + spans(docs, 2) + spans(docs, 3)
    texts = texts[:10000]
    assert len(texts) == 10000, "10,000 held-out texts"
    print(f"{len(set(texts))} distinct texts (a few short sentences repeat in the addresses)")
    failures = []
    with tempfile.TemporaryDirectory() as work:
        corpus = os.path.join(work, "heldout10k.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        stats_path = os.path.join(work, "stats.json")
        start = time.monotonic()
        run = subprocess.run([CLI, "heads", "--model", DEMO, "--input", corpus, "--progress", "-o",
                              os.path.join(work, "report.html"), "--json", stats_path],
                             capture_output=True, text=True)
        seconds = time.monotonic() - start
        if run.returncode != 0:
            print(run.stderr)
            sys.exit(1)
        progress = run.stderr
        if "100% [########################] 10000/10000 examples" not in progress:
            failures.append("no finished progress bar on stderr: " + progress[-300:])
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
        timing = stats["timing"]
        print(f"10,000 held-out texts, {stats['tokens']} tokens: {seconds:.1f} s wall; forward "
              f"{timing['forward_seconds']:.2f} s, statistics {timing['statistics_seconds']:.2f} s "
              f"({100 * timing['statistics_seconds'] / timing['forward_seconds']:.1f}% of the forward), "
              f"Jensen-Shannon (first 1000) {timing['distance_seconds']:.2f} s")
        if stats["examples"] != 10000:
            failures.append(f"examples {stats['examples']}")
        with open(os.path.join(work, "report.html"), encoding="utf-8") as f:
            if 'id="heads-data"' not in f.read():
                failures.append("the report has no data")

        pairs = os.path.join(work, "pairs.txt")
        with open(pairs, "w", encoding="utf-8") as f:
            for doc in docs:
                for a, b in zip(doc, doc[1:]):
                    if all(4 <= len(x.split()) <= 30 for x in (a, b)):
                        f.write(f"{a}\t{b}\n")
        subprocess.run([CLI, "heads", "--model", DEMO, "--input", pairs, "--pairs", "--quiet", "--js-examples", "0",
                        "-o", os.path.join(work, "pairs.html"), "--json", stats_path], check=True)
        with open(stats_path, encoding="utf-8") as f:
            means = json.load(f)["blocks"][0]["means"]
        # docs/demo-model.md: "Layer 0, head 2 is a special-token head" ([SEP] and [CLS]);
        # "It is one two-sided local head (layer 1, head 3)" (previous and next token).
        for stat, claimed in (("sep", (0, 2)), ("cls", (0, 2)), ("prev", (1, 3)), ("next", (1, 3))):
            value, layer, head = best(means[stat])
            print(f"best {stat} head: layer {layer}, head {head} ({value:.3f}); docs/demo-model.md names {claimed}")
            if (layer, head) != claimed:
                failures.append(f"{stat}: the statistics find layer {layer} head {head}, the docs name {claimed}")
    for failure in failures:
        print("FAILED", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
