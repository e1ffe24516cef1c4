#!/usr/bin/python3
"""Measures the demo model (models/demo) on held-out text and writes the numbers that
docs/demo-model.md and tests/app/demo_model_test.cpp use.

  /usr/bin/python3 tools/demo_model/analyze.py --corpus out/demo-corpus

Reads the fp16 model.safetensors exactly as shipped (widened to fp32), the training
work folder (ids.json: every sentence tokenized by HF's Rust tokenizers) and
re-derives the held-out documents with train_demo_model's split. Writes:
  <work>/analysis.json           masked-token accuracy and the head-pattern table
  tests/data/demo/reference.json one input's ids and every attention prob (for C++)
  tests/data/demo/pairs.json     held-out pairs + the Python head-pattern masses
  docs/images/demo-loss.png      the loss curve (if matplotlib is installed)

Head patterns, each averaged over tokens, then over pairs; "best head" is the
(layer, head) with the highest average:
  previous token  attention from token i to token i-1 (i >= 1)
  next token      attention from token i to token i+1 (i <= n-2)
  [SEP] / [CLS]   attention mass from word tokens to the [SEP] tokens / to [CLS]
  same word       mass from a word token in A to the identical tokens in B, and
                  from B to A, for word tokens whose id occurs on the other side
"""

import argparse
import json
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bert  # noqa: E402
import train_demo_model as train  # noqa: E402

SEED_A = "Maia is a cute little baby who likes to explore her world!"
SEED_B = "Maia is a cute little baby who loves to explore her house."
PATTERNS = ("previous_token", "next_token", "sep", "cls", "same_word")


def load_held_out(work, corpus, vocab_dir):
    docs = train.read_documents(corpus)
    with open(os.path.join(work, "ids.json")) as f:
        ids = json.load(f)
    held, k = [], 0
    for index, (name, sents) in enumerate(docs):
        doc_ids = ids[k : k + len(sents)]
        k += len(sents)
        if train.is_held_out(index):
            held.append((name, sents, doc_ids))
    if k != len(ids):
        raise ValueError(f"{work}/ids.json has {len(ids)} sentences, the corpus {k}: rerun training's tokenization")
    return held


def is_word(token):
    """A token with an ASCII letter or digit: "##ing" is one, "," and "—" are not."""
    return any(c.isascii() and c.isalnum() for c in token)


def sequence(a, b):
    ids = [train.CLS] + list(a) + [train.SEP] + list(b) + [train.SEP]
    types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return ids, types


@torch.no_grad()
def attentions(model, ids, types):
    _, att = model.encode(torch.tensor([ids]), torch.tensor([types]))
    return torch.stack([a[0] for a in att]).numpy().astype(np.float64)  # [L, H, T, T]


def pattern_masses(att, ids, n_a, vocab):
    """Per-head averages [L, H] of each pattern for one pair; None where undefined."""
    n = len(ids)
    word = np.array([i not in (train.CLS, train.SEP) for i in ids])
    sep = np.array([i == train.SEP for i in ids])
    out = {
        "previous_token": np.mean([att[:, :, i, i - 1] for i in range(1, n)], axis=0),
        "next_token": np.mean([att[:, :, i, i + 1] for i in range(n - 1)], axis=0),
        "sep": att[:, :, word][:, :, :, sep].sum(-1).mean(-1),
        "cls": att[:, :, word, 0].mean(-1),
    }
    a_pos = range(1, n_a + 1)
    b_pos = range(n_a + 2, n - 1)
    same = []
    for src, dst in ((a_pos, b_pos), (b_pos, a_pos)):
        for i in src:
            if not is_word(vocab[ids[i]]):
                continue
            match = [j for j in dst if ids[j] == ids[i]]
            if match:
                same.append(att[:, :, i, match].sum(-1))
    out["same_word"] = np.mean(same, axis=0) if same else None
    return out


def head_table(model, pairs, vocab):
    sums = {p: 0.0 for p in PATTERNS}
    counts = {p: 0 for p in PATTERNS}
    for a, b in pairs:
        ids, types = sequence(a, b)
        masses = pattern_masses(attentions(model, ids, types), ids, len(a), vocab)
        for p in PATTERNS:
            if masses[p] is not None:
                sums[p] = sums[p] + masses[p]
                counts[p] += 1
    table = {}
    for p in PATTERNS:
        mean = sums[p] / counts[p]
        layer, head = np.unravel_index(np.argmax(mean), mean.shape)
        table[p] = {"layer": int(layer), "head": int(head), "mass": float(mean[layer, head]),
                    "pairs": counts[p], "per_head": np.round(mean, 4).tolist()}
    return table


def chance_levels(pairs, vocab):
    """What a head spreading attention evenly over the whole pair would score."""
    prev, sep, cls, same = [], [], [], []
    for a, b in pairs:
        ids, _ = sequence(a, b)
        n = len(ids)
        prev.append(1.0 / n)
        sep.append(2.0 / n)
        cls.append(1.0 / n)
        for src, dst in ((a, b), (b, a)):
            for t in src:
                if is_word(vocab[t]) and t in dst:
                    same.append(list(dst).count(t) / n)
    return {"previous_token": float(np.mean(prev)), "next_token": float(np.mean(prev)),
            "sep": float(np.mean(sep)), "cls": float(np.mean(cls)), "same_word": float(np.mean(same))}


@torch.no_grad()
def masked_accuracy(model, held, seed):
    """Every held-out pair of consecutive sentences (<= 128 tokens), 15% of word tokens
    replaced by [MASK] (fixed seed); top-1 and top-5 accuracy and mean loss."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _, _, doc in held:
        for i in range(len(doc) - 1):
            pairs.append(train.truncate_pair(doc[i], doc[i + 1], 125))
    pairs.sort(key=lambda p: len(p[0]) + len(p[1]))
    top1 = top5 = count = 0
    loss_sum = 0.0
    for k in range(0, len(pairs), 64):
        ids, types, mask = train.pack(pairs[k : k + 64])
        inputs, labels = train.mask_tokens(ids, rng, 0.15, all_mask_token=True)
        hidden, _ = model.encode(torch.from_numpy(inputs), torch.from_numpy(types), torch.from_numpy(mask))
        where = torch.from_numpy(labels != -100)
        logits = model.mlm_logits(hidden[where])
        target = torch.from_numpy(labels)[where]
        loss_sum += torch.nn.functional.cross_entropy(logits, target, reduction="sum").item()
        best5 = logits.topk(5, dim=-1).indices
        top1 += (best5[:, 0] == target).sum().item()
        top5 += (best5 == target[:, None]).any(-1).sum().item()
        count += target.numel()
    return {"pairs": len(pairs), "masked_tokens": count, "top1": top1 / count, "top5": top5 / count,
            "loss": loss_sum / count, "perplexity": float(np.exp(loss_sum / count))}


def tokenize(texts, corpus, vocab_dir, work):
    import subprocess

    src, dst = os.path.join(work, "analyze_in.json"), os.path.join(work, "analyze_ids.json")
    with open(src, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    subprocess.run(["node", os.path.join(HERE, "tokenize.mjs"), os.path.abspath(os.path.join(vocab_dir, "tokenizer.json")),
                    os.path.abspath(src), os.path.abspath(dst)], cwd=corpus, check=True)
    with open(dst) as f:
        return json.load(f)


def plot_loss(csv_path, png_path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (apt-get install python3-matplotlib): no plot", file=sys.stderr)
        return
    rows = np.genfromtxt(csv_path, delimiter=",", names=True)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.plot(rows["step"], rows["train_loss"], label="training loss (BERT 80/10/10 masking)")
    ax.plot(rows["step"], rows["eval_loss"], label="held-out loss (all [MASK])")
    ax2 = ax.twinx()
    ax2.plot(rows["step"], rows["eval_acc"], color="tab:green", linestyle="--", label="held-out masked-token accuracy")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, max(0.6, float(rows["eval_acc"].max()) + 0.05))
    ax.set_xlabel("step (32 sentence pairs each; learning-rate cycles restart at steps 2000 and 3200)")
    ax.set_ylabel("cross-entropy (nats)")
    ax.grid(alpha=0.3)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper right", fontsize=8)
    ax.set_title("attnviz demo model: masked-language-model training")
    fig.tight_layout()
    fig.savefig(png_path, metadata={"Software": None})
    print(f"wrote {png_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "demo"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "out", "demo-corpus"))
    ap.add_argument("--vocab", default=train.VOCAB_DIR_DEFAULT)
    ap.add_argument("--work", default=os.path.join(ROOT, "out", "demo-model-work"))
    ap.add_argument("--tests", default=os.path.join(ROOT, "tests", "data", "demo"))
    ap.add_argument("--plot", default=os.path.join(ROOT, "docs", "images", "demo-loss.png"))
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--pairs", type=int, default=400, help="held-out pairs for the head table")
    args = ap.parse_args()
    torch.set_num_threads(1)

    model, cfg = bert.load_model(args.model)
    with open(os.path.join(args.vocab, "vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    held = load_held_out(args.work, args.corpus, args.vocab)
    result = {"model": os.path.relpath(args.model, ROOT), "config": {k: cfg[k] for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings", "vocab_size")}}
    result["parameters"] = sum(p.numel() for p in model.parameters())
    result["model_bytes"] = os.path.getsize(os.path.join(args.model, "model.safetensors"))
    result["masked_accuracy"] = masked_accuracy(model, held, args.seed)
    print("masked-token accuracy:", json.dumps(result["masked_accuracy"]))

    # Held-out pairs: consecutive sentences (natural text) and seed-like near-copies.
    rng = np.random.default_rng(args.seed)
    candidates = [(d, i) for d in range(len(held)) for i in range(len(held[d][2]) - 1)
                  if 4 <= len(held[d][2][i]) <= 40 and 4 <= len(held[d][2][i + 1]) <= 40]
    chosen = [candidates[k] for k in rng.choice(len(candidates), size=args.pairs, replace=False)]
    natural = [(held[d][2][i], held[d][2][i + 1]) for d, i in chosen]
    natural_text = [(held[d][1][i], held[d][1][i + 1]) for d, i in chosen]
    sampler = train.PairSampler([[np.array(x) for x in doc] for _, _, doc in held], vocab, rng, 1.0, 0.0)
    copies = [(list(a), sampler.perturbed_copy(list(a))) for a, _ in natural]

    result["head_patterns"] = {"natural_pairs": head_table(model, natural, vocab),
                               "near_copy_pairs": head_table(model, copies, vocab)}
    result["chance"] = {"natural_pairs": chance_levels(natural, vocab), "near_copy_pairs": chance_levels(copies, vocab)}

    seed_a, seed_b = tokenize([SEED_A, SEED_B], args.corpus, args.vocab, args.work)
    result["head_patterns"]["seed_pair"] = head_table(model, [(seed_a, seed_b)], vocab)
    for kind, table in result["head_patterns"].items():
        print(kind)
        for p in PATTERNS:
            t = table[p]
            print(f"  {p:15s} layer {t['layer']} head {t['head']}  mass {t['mass']:.3f}  (chance "
                  f"{result['chance'].get(kind, {}).get(p, float('nan')):.3f}, {t['pairs']} pairs)")
    with open(os.path.join(args.work, "analysis.json"), "w") as f:
        json.dump(result, f, indent=1)

    # Fixtures for the C++ test: the texts (C++ tokenizes them itself), the ids HF's
    # tokenizer gives, and the masses measured here over the same pairs.
    os.makedirs(args.tests, exist_ok=True)
    n_fixture = 40
    fixture_natural = natural_text[:n_fixture]
    fixture_tables = head_table(model, natural[:n_fixture], vocab)
    with open(os.path.join(args.tests, "pairs.json"), "w", encoding="utf-8") as f:
        json.dump({"about": "held-out consecutive sentence pairs (never trained on) and the Python reference's "
                            "best-head masses over them; written by tools/demo_model/analyze.py",
                   "pairs": [{"text": a, "text_pair": b, "ids": sequence(ia, ib)[0]}
                             for (a, b), (ia, ib) in zip(fixture_natural, natural[:n_fixture])],
                   "patterns": {p: {k: fixture_tables[p][k] for k in ("layer", "head", "mass")} for p in PATTERNS}},
                  f, ensure_ascii=False, indent=1)
    ids, types = sequence(seed_a, seed_b)
    att = attentions(model, ids, types)
    with open(os.path.join(args.tests, "reference.json"), "w") as f:
        json.dump({"about": "attention probs of models/demo (fp16 weights widened to fp32, PyTorch fp32 forward) "
                            "for the seed pair; layout [layer][head][query][key]; written by tools/demo_model/analyze.py",
                   "text": SEED_A, "text_pair": SEED_B, "ids": ids, "token_type_ids": types,
                   "shape": list(att.shape), "probs": [float(f"{v:.7g}") for v in att.ravel()]}, f)
    print(f"wrote {args.tests}/pairs.json and reference.json ({len(ids)} tokens)")

    os.makedirs(os.path.dirname(args.plot), exist_ok=True)
    plot_loss(os.path.join(args.work, "loss.csv"), args.plot)


if __name__ == "__main__":
    main()
