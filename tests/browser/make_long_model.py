#!/usr/bin/python3
"""Writes a BERT of random weights for the long-input test of `attnviz serve`:
12 layers, tiny width, 4,096 positions, with the demo model's tokenizer.

Usage: make_long_model.py <demo model folder> <output folder> [heads]
The weights are N(0, 0.02) from seed 1234, as BERT initialises them; the test
checks what the page shows against `attnviz export` of the same model, so
nothing here is a reference.
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

LAYERS, HIDDEN, INTERMEDIATE, POSITIONS = 12, 16, 32, 4096


def main():
    demo, out = Path(sys.argv[1]), Path(sys.argv[2])
    heads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    out.mkdir(parents=True, exist_ok=True)
    vocab = sum(1 for _ in open(demo / "vocab.txt", encoding="utf-8"))
    rng = np.random.default_rng(1234)
    tensors = {}

    def dense(name, rows, cols):
        tensors[name + ".weight"] = rng.normal(0, 0.02, (rows, cols)).astype(np.float32)
        tensors[name + ".bias"] = np.zeros(rows, np.float32)

    def norm(name):
        tensors[name + ".weight"] = np.ones(HIDDEN, np.float32)
        tensors[name + ".bias"] = np.zeros(HIDDEN, np.float32)

    tensors["embeddings.word_embeddings.weight"] = rng.normal(0, 0.02, (vocab, HIDDEN)).astype(np.float32)
    # Larger position embeddings than BERT's init, so attention depends on position visibly.
    tensors["embeddings.position_embeddings.weight"] = rng.normal(0, 1.0, (POSITIONS, HIDDEN)).astype(np.float32)
    tensors["embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.02, (2, HIDDEN)).astype(np.float32)
    norm("embeddings.LayerNorm")
    for layer in range(LAYERS):
        prefix = "encoder.layer.%d." % layer
        for part in ("query", "key", "value"):
            dense(prefix + "attention.self." + part, HIDDEN, HIDDEN)
        # Sharper attention than N(0, 0.02) gives: scaled query weights.
        tensors[prefix + "attention.self.query.weight"] *= 60
        dense(prefix + "attention.output.dense", HIDDEN, HIDDEN)
        norm(prefix + "attention.output.LayerNorm")
        dense(prefix + "intermediate.dense", INTERMEDIATE, HIDDEN)
        dense(prefix + "output.dense", HIDDEN, INTERMEDIATE)
        norm(prefix + "output.LayerNorm")

    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "attention_probs_dropout_prob": 0.0, "hidden_dropout_prob": 0.0, "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE, "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS,
        "num_attention_heads": heads, "num_hidden_layers": LAYERS, "pad_token_id": 0,
        "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": vocab,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("vocab.txt", "tokenizer.json"):
        if (demo / name).exists():
            shutil.copyfile(demo / name, out / name)
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": POSITIONS}) + "\n")


if __name__ == "__main__":
    main()
