#!/usr/bin/python3
"""PyTorch reference for attnviz's BERT forward pass (torch 1.13, no transformers).

Builds a BERT with random weights and Hugging Face's parameter names from a seed
and a config, writes it in the Hugging Face layout, and writes what Hugging Face's
eager attention path (BertModel with output_attentions=True, modeling_bert.py)
computes for the given input: attentions, per-head queries and keys, hidden states.

    tools/reference/bert_reference.py --out DIR [--layers 2 --heads 2 --hidden 32 ...]
        [--format safetensors|sharded|bin|bin-sharded|bin-prefixed|bin-fp16|bin-legacy|
                  bin-legacy-fp16|legacy-names|fp16|bf16]
        [--input-ids 2,17,9,3 --token-type-ids 0,0,0,0 --attention-mask 1,1,1,0]

DIR gets config.json, vocab.txt + tokenizer_config.json, the weights, and
reference.safetensors (input_ids, token_type_ids, attention_mask: I64;
attentions [L,H,S,S], queries and keys [L,H,S,Dh], hidden_states [L+1,S,D]: F32).
The same seed and config give the same weights in every format.
"""

import argparse
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.int64: "I64"}


def write_safetensors(path, tensors, metadata=None):
    """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        if tensor.dtype == torch.bfloat16:
            data = tensor.view(torch.int16).numpy().tobytes()
        else:
            data = tensor.numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as safetensors writes it
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


# activations.py (ACT2FN), the entries BERT-family configs use.
ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def make_weights(config, seed, init_std):
    """BertModel's state dict with random values (larger than HF's init, so that
    attention is peaked and the test sees real softmax work)."""
    g = torch.Generator().manual_seed(seed)
    D, I = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, std=init_std, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    w = {
        "embeddings.word_embeddings.weight": normal(config["vocab_size"], D, std=1.0),
        "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], D, std=0.5),
        "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], D, std=0.5),
        "embeddings.LayerNorm.weight": normal(D, std=0.1, mean=1.0),
        "embeddings.LayerNorm.bias": normal(D, std=0.1),
    }
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for name, (rows, cols) in [("attention.self.query", (D, D)), ("attention.self.key", (D, D)),
                                   ("attention.self.value", (D, D)), ("attention.output.dense", (D, D)),
                                   ("intermediate.dense", (I, D)), ("output.dense", (D, I))]:
            w[p + name + ".weight"] = normal(rows, cols, std=init_std)
            w[p + name + ".bias"] = normal(rows, std=0.1)
        for name in ["attention.output.LayerNorm", "output.LayerNorm"]:
            w[p + name + ".weight"] = normal(D, std=0.1, mean=1.0)
            w[p + name + ".bias"] = normal(D, std=0.1)
        if config["position_embedding_type"] in ("relative_key", "relative_key_query"):
            Dh = D // config["num_attention_heads"]
            w[p + "attention.self.distance_embedding.weight"] = normal(
                2 * config["max_position_embeddings"] - 1, Dh, std=0.5)
    w["pooler.dense.weight"] = normal(D, D, std=init_std)
    w["pooler.dense.bias"] = normal(D, std=0.1)
    return w


def bert_forward(w, config, input_ids, token_type_ids, attention_mask):
    """modeling_bert.py's eager path, batch 1, no dropout (eval)."""
    D = config["hidden_size"]
    H = config["num_attention_heads"]
    Dh = D // H
    eps = config["layer_norm_eps"]
    act = ACTIVATIONS[config["hidden_act"]]
    S = input_ids.shape[1]

    def linear(x, name):
        return F.linear(x, w[name + ".weight"], w[name + ".bias"])

    def layer_norm(x, name):
        return F.layer_norm(x, (D,), w[name + ".weight"], w[name + ".bias"], eps)

    def transpose_for_scores(x):  # [1, S, D] -> [1, H, S, Dh]
        return x.view(1, S, H, Dh).permute(0, 2, 1, 3)

    # BertEmbeddings
    position_ids = torch.arange(S).unsqueeze(0)
    embeddings = F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
    embeddings = embeddings + F.embedding(token_type_ids, w["embeddings.token_type_embeddings.weight"])
    if config["position_embedding_type"] == "absolute":
        embeddings += F.embedding(position_ids, w["embeddings.position_embeddings.weight"])
    hidden = layer_norm(embeddings, "embeddings.LayerNorm")

    # get_extended_attention_mask: 0 where attended, finfo.min where masked
    dtype = hidden.dtype  # float32, or float64 for --float64-check
    extended = attention_mask[:, None, None, :].to(dtype)
    extended = (1.0 - extended) * torch.finfo(dtype).min

    hidden_states, attentions, queries, keys = [hidden], [], [], []
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        # BertSelfAttention
        query = transpose_for_scores(linear(hidden, p + "attention.self.query"))
        key = transpose_for_scores(linear(hidden, p + "attention.self.key"))
        value = transpose_for_scores(linear(hidden, p + "attention.self.value"))
        scores = torch.matmul(query, key.transpose(-1, -2))
        if config["position_embedding_type"] in ("relative_key", "relative_key_query"):
            distance = torch.arange(S).view(-1, 1) - torch.arange(S).view(1, -1)
            positional = F.embedding(distance + config["max_position_embeddings"] - 1,
                                     w[p + "attention.self.distance_embedding.weight"])
            scores = scores + torch.einsum("bhld,lrd->bhlr", query, positional)
            if config["position_embedding_type"] == "relative_key_query":
                scores = scores + torch.einsum("bhrd,lrd->bhlr", key, positional)
        scores = scores / math.sqrt(Dh)
        scores = scores + extended
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(probs, value).permute(0, 2, 1, 3).contiguous().view(1, S, D)
        # BertSelfOutput
        attention_output = layer_norm(linear(context, p + "attention.output.dense") + hidden,
                                      p + "attention.output.LayerNorm")
        # BertIntermediate, BertOutput
        intermediate = act(linear(attention_output, p + "intermediate.dense"))
        hidden = layer_norm(linear(intermediate, p + "output.dense") + attention_output,
                            p + "output.LayerNorm")
        attentions.append(probs[0])
        queries.append(query[0])
        keys.append(key[0])
        hidden_states.append(hidden)
    return {
        "attentions": torch.stack(attentions),
        "queries": torch.stack(queries),
        "keys": torch.stack(keys),
        "hidden_states": torch.cat(hidden_states, dim=0),
    }


def write_vocab(folder, vocab_size):
    """A small WordPiece vocabulary, so the folder also works as a tokenizer."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "the", "cat", "sat", "on",
             "mat", "dog", "it", "was", "tired", "a", "and", "##s", "##ing", "##ed", "hello",
             "world", "!", "?"]
    words += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words += [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
    words = words[:vocab_size]
    words += [f"[unused{i}]" for i in range(vocab_size - len(words))]
    with open(os.path.join(folder, "vocab.txt"), "w") as out:
        out.write("\n".join(words) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as out:
        json.dump({"do_lower_case": True, "model_max_length": 512}, out)


def save_weights(folder, weights, fmt):
    if fmt in ("fp16", "bf16"):
        dtype = torch.float16 if fmt == "fp16" else torch.bfloat16
        write_safetensors(os.path.join(folder, "model.safetensors"),
                          {k: v.to(dtype) for k, v in weights.items()}, {"format": "pt"})
    elif fmt == "safetensors":
        write_safetensors(os.path.join(folder, "model.safetensors"), weights, {"format": "pt"})
    elif fmt == "legacy-names":  # LayerNorm.gamma / LayerNorm.beta, as old TF conversions
        renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                   for k, v in weights.items()}
        write_safetensors(os.path.join(folder, "model.safetensors"), renamed, {"format": "pt"})
    elif fmt == "sharded":
        names = sorted(weights)
        shards = [names[i::3] for i in range(3)]
        weight_map = {}
        for i, shard in enumerate(shards):
            file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(os.path.join(folder, file), {n: weights[n] for n in shard}, {"format": "pt"})
            weight_map.update({n: file for n in shard})
        total = sum(t.numel() * t.element_size() for t in weights.values())
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as out:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, out, indent=2)
    elif fmt == "bin-sharded":  # pytorch_model-0000N-of-0000M.bin + pytorch_model.bin.index.json
        names = sorted(weights)
        shards = [names[i::2] for i in range(2)]
        weight_map = {}
        for i, shard in enumerate(shards):
            file = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
            torch.save({n: weights[n].clone() for n in shard}, os.path.join(folder, file))
            weight_map.update({n: file for n in shard})
        with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as out:
            json.dump({"metadata": {}, "weight_map": weight_map}, out, indent=2)
    elif fmt in ("bin", "bin-prefixed", "bin-fp16", "bin-legacy", "bin-legacy-fp16"):
        dtype = torch.float16 if fmt.endswith("fp16") else torch.float32
        state = {k: v.clone().to(dtype) for k, v in weights.items()}
        if fmt == "bin-prefixed":  # BertForMaskedLM: "bert." + an LM head attnviz ignores
            D = weights["embeddings.LayerNorm.weight"].shape[0]
            state = {"bert." + k: v for k, v in state.items()}
            state["bert.embeddings.position_ids"] = torch.arange(
                weights["embeddings.position_embeddings.weight"].shape[0]).unsqueeze(0)
            state["cls.predictions.bias"] = torch.zeros(weights["embeddings.word_embeddings.weight"].shape[0])
            state["cls.predictions.transform.dense.weight"] = torch.zeros(D, D)
        # bin-legacy: the format torch.save wrote before torch 1.6 (pickles, then raw storages).
        torch.save(state, os.path.join(folder, "pytorch_model.bin"),
                   _use_new_zipfile_serialization=not fmt.startswith("bin-legacy"))
    else:
        raise SystemExit(f"unknown --format {fmt}")


def int_list(text):
    return [int(x) for x in text.split(",")] if text else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--intermediate", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=100)
    parser.add_argument("--positions", type=int, default=64)
    parser.add_argument("--type-vocab", type=int, default=2)
    parser.add_argument("--act", default="gelu", choices=sorted(ACTIVATIONS))
    parser.add_argument("--eps", type=float, default=1e-12)
    parser.add_argument("--init-std", type=float, default=0.2)
    parser.add_argument("--position-embedding-type", default="absolute",
                        choices=["absolute", "relative_key", "relative_key_query"])
    parser.add_argument("--format", default="safetensors")
    parser.add_argument("--architectures", default="BertModel")
    parser.add_argument("--input-ids", type=int_list, help="comma-separated; default: random")
    parser.add_argument("--seq", type=int, default=12, help="length of the random input")
    parser.add_argument("--token-type-ids", type=int_list)
    parser.add_argument("--attention-mask", type=int_list)
    parser.add_argument("--no-reference", action="store_true", help="write the model only")
    parser.add_argument("--reference-only", action="store_true",
                        help="write only the reference (the model from the same seed is already there)")
    parser.add_argument("--reference-file", default="reference.safetensors")
    parser.add_argument("--float64-check", action="store_true",
                        help="also write <tensor>.float64: the forward in float64, rounded to float32")
    args = parser.parse_args()

    config = {
        "architectures": [args.architectures],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": args.act,
        "hidden_dropout_prob": 0.1,
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.intermediate,
        "layer_norm_eps": args.eps,
        "max_position_embeddings": args.positions,
        "model_type": "bert",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "pad_token_id": 0,
        "position_embedding_type": args.position_embedding_type,
        "type_vocab_size": args.type_vocab,
        "vocab_size": args.vocab,
    }
    os.makedirs(args.out, exist_ok=True)
    weights = make_weights(config, args.seed, args.init_std)
    if not args.reference_only:
        with open(os.path.join(args.out, "config.json"), "w") as out:
            json.dump(config, out, indent=2)
        write_vocab(args.out, args.vocab)
        save_weights(args.out, weights, args.format)
    if args.no_reference:
        return
    if args.format in ("fp16", "bf16", "bin-fp16", "bin-legacy-fp16"):  # the reference runs on the weights as stored
        dtype = torch.bfloat16 if args.format == "bf16" else torch.float16
        weights = {k: v.to(dtype).to(torch.float32) for k, v in weights.items()}

    g = torch.Generator().manual_seed(args.seed + 1)
    ids = args.input_ids or [2] + torch.randint(5, args.vocab, (args.seq - 2,), generator=g).tolist() + [3]
    S = len(ids)
    types = args.token_type_ids or [0] * S
    mask = args.attention_mask or [1] * S
    input_ids = torch.tensor([ids])
    token_type_ids = torch.tensor([types])
    attention_mask = torch.tensor([mask])
    with torch.no_grad():
        outputs = bert_forward(weights, config, input_ids, token_type_ids, attention_mask)
        if args.float64_check:
            wide = {k: v.double() for k, v in weights.items()}
            exact = bert_forward(wide, config, input_ids, token_type_ids, attention_mask)
            outputs.update({f"{k}.float64": v.float() for k, v in exact.items()})
    outputs.update({"input_ids": input_ids[0], "token_type_ids": token_type_ids[0],
                    "attention_mask": attention_mask[0]})
    write_safetensors(os.path.join(args.out, args.reference_file), outputs)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
