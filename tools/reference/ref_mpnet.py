"""MPNet reference (modeling_mpnet.py, eager path).

Plain torch, float32, written from the transformers source; registered into
arch_reference.ARCHS through this module's ARCHS. Embeddings: word + position (RoBERTa-style
ids from padding_idx 1), LayerNorm, no token types. The encoder computes one
relative position bias (MPNetEncoder.compute_position_bias: 32 buckets, max
distance 128) and every layer adds it after the 1/sqrt(d) scale; post-norm
layers as BERT's.
"""

import math

import torch

import arch_reference as ar  # noqa: E402  (this module is imported by arch_reference)

MPNET_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=66, vocab_size=30527, relative_attention_num_buckets=32),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=514, vocab_size=30527, relative_attention_num_buckets=32),
}


def mpnet_config(size, overrides):
    c = dict(model_type="mpnet", architectures=["MPNetForMaskedLM"], hidden_act="gelu", layer_norm_eps=1e-5,
             pad_token_id=1, bos_token_id=0, eos_token_id=2)
    c.update(MPNET_SIZES[size])
    c.update(overrides)
    return c


def mpnet_init(c, init):
    d, ff, nh = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"]
    sd = {"embeddings.word_embeddings.weight": init.normal(c["vocab_size"], d),
          "embeddings.position_embeddings.weight": init.normal(c["max_position_embeddings"], d, std=0.3)}
    ar.put_norm(sd, "embeddings.LayerNorm", init, d)
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        ar.put_linear(sd, p + "attention.attn.q", init, d, d, gain=1.5)
        ar.put_linear(sd, p + "attention.attn.k", init, d, d, gain=1.5)
        ar.put_linear(sd, p + "attention.attn.v", init, d, d)
        ar.put_linear(sd, p + "attention.attn.o", init, d, d)
        ar.put_norm(sd, p + "attention.LayerNorm", init, d)
        ar.put_linear(sd, p + "intermediate.dense", init, ff, d)
        ar.put_linear(sd, p + "output.dense", init, d, ff)
        ar.put_norm(sd, p + "output.LayerNorm", init, d)
    sd["encoder.relative_attention_bias.weight"] = init.normal(c["relative_attention_num_buckets"], nh)
    return sd


def relative_position_bucket(relative_position, num_buckets=32, max_distance=128):
    # MPNetEncoder.relative_position_bucket
    ret = 0
    n = -relative_position
    num_buckets //= 2
    ret += (n < 0).to(torch.long) * num_buckets
    n = torch.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    val_if_large = max_exact + (
        torch.log(n.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).to(torch.long)
    val_if_large = torch.min(val_if_large, torch.full_like(val_if_large, num_buckets - 1))
    return ret + torch.where(is_small, n, val_if_large)


def mpnet_forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    eps, act = c["layer_norm_eps"], ar.ACT[c["hidden_act"]]
    ids_t = torch.tensor(ids)
    S = len(ids)
    # create_position_ids_from_input_ids(input_ids, padding_idx=1)
    mask = ids_t.ne(1).int()
    positions = (torch.cumsum(mask, dim=0).type_as(mask) * mask).long() + 1
    x = sd["embeddings.word_embeddings.weight"][ids_t] + sd["embeddings.position_embeddings.weight"][positions]
    x = ar.layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], eps)
    relative = torch.arange(S)[None, :] - torch.arange(S)[:, None]  # memory - context
    bias = sd["encoder.relative_attention_bias.weight"][relative_position_bucket(relative)].permute(2, 0, 1)
    visible = None  # no attention_mask given: padding ids only change the positions
    rec = ar.Recorder()
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        rec.add_hidden(x)
        q = ar.split_heads(ar.linear(x, sd[p + "attention.attn.q.weight"], sd[p + "attention.attn.q.bias"]), nh, hd)
        k = ar.split_heads(ar.linear(x, sd[p + "attention.attn.k.weight"], sd[p + "attention.attn.k.bias"]), nh, hd)
        v = ar.split_heads(ar.linear(x, sd[p + "attention.attn.v.weight"], sd[p + "attention.attn.v.bias"]), nh, hd)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores + bias
        probs, ctx = ar.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        o = ar.linear(ar.merge_heads(ctx), sd[p + "attention.attn.o.weight"], sd[p + "attention.attn.o.bias"])
        x = ar.layer_norm(o + x, sd[p + "attention.LayerNorm.weight"], sd[p + "attention.LayerNorm.bias"], eps)
        h = act(ar.linear(x, sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"]))
        h = ar.linear(h, sd[p + "output.dense.weight"], sd[p + "output.dense.bias"])
        x = ar.layer_norm(h + x, sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"], eps)
    rec.add_hidden(x)
    return rec.tensors("self")


def mpnet_head(sd, c):
    # MPNetForMaskedLM: "mpnet." prefix plus the lm_head, which loaders ignore
    d = c["hidden_size"]
    out = {"mpnet." + k: v for k, v in sd.items()}
    out["lm_head.dense.weight"] = torch.zeros(d, d)
    out["lm_head.dense.bias"] = torch.zeros(d)
    out["lm_head.bias"] = torch.zeros(c["vocab_size"])
    return out


ARCHS = {
    "mpnet": (mpnet_config, mpnet_init, mpnet_forward, mpnet_head),
}
