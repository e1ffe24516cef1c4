"""DeBERTa-v2 reference (modeling_deberta_v2.py, eager path).

Plain torch, float32, written from the transformers source; registered into
arch_reference.ARCHS through this module's ARCHS. Embeddings (word [+ position] [+ token type]
[-> embed_proj], LayerNorm), then post-norm layers whose attention is
DisentangledSelfAttention: q.(k / s) plus the c2p and p2c terms over the
relative position embeddings (log buckets when position_buckets > 0), each
divided by s = sqrt(head_dim * scale_factor), softmax as XSoftmax.
"""

import math

import torch

import arch_reference as ar  # noqa: E402  (this module is imported by arch_reference)

DEBERTA_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=64, vocab_size=30522),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=512, vocab_size=128100),
}


def deberta_config(size, overrides):
    # deberta-v3-base's settings, at tiny size
    c = dict(model_type="deberta-v2", architectures=["DebertaV2ForMaskedLM"], hidden_act="gelu",
             layer_norm_eps=1e-7, type_vocab_size=0, relative_attention=True, max_relative_positions=-1,
             position_buckets=8, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
             position_biased_input=False, pad_token_id=0)
    c.update(DEBERTA_SIZES[size])
    c.update(overrides)
    return c


def pos_att_types(c):
    t = c.get("pos_att_type") or []
    if isinstance(t, str):  # DebertaV2Config: "p2c|c2p" -> ["p2c", "c2p"]
        t = [x.strip() for x in t.lower().split("|")]
    return t


def span_of(c):
    max_rel = c.get("max_relative_positions", -1)
    if max_rel < 1:
        max_rel = c["max_position_embeddings"]
    buckets = c.get("position_buckets", -1)
    return (buckets if buckets > 0 else max_rel), max_rel, buckets


def deberta_init(c, init):
    d, ff = c["hidden_size"], c["intermediate_size"]
    e = c.get("embedding_size", d)
    span, _, _ = span_of(c)
    types = pos_att_types(c)
    sd = {"embeddings.word_embeddings.weight": init.normal(c["vocab_size"], e)}
    if c.get("position_biased_input", True):
        sd["embeddings.position_embeddings.weight"] = init.normal(c["max_position_embeddings"], e, std=0.3)
    if c.get("type_vocab_size", 0) > 0:
        sd["embeddings.token_type_embeddings.weight"] = init.normal(c["type_vocab_size"], e, std=0.3)
    if e != d:
        sd["embeddings.embed_proj.weight"], _ = init.linear(d, e, False)
    ar.put_norm(sd, "embeddings.LayerNorm", init, d)
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        ar.put_linear(sd, p + "attention.self.query_proj", init, d, d, gain=1.5)
        ar.put_linear(sd, p + "attention.self.key_proj", init, d, d, gain=1.5)
        ar.put_linear(sd, p + "attention.self.value_proj", init, d, d)
        if c.get("relative_attention") and not c.get("share_att_key"):
            if "c2p" in types:
                ar.put_linear(sd, p + "attention.self.pos_key_proj", init, d, d, gain=1.5)
            if "p2c" in types:
                ar.put_linear(sd, p + "attention.self.pos_query_proj", init, d, d, gain=1.5)
        ar.put_linear(sd, p + "attention.output.dense", init, d, d)
        ar.put_norm(sd, p + "attention.output.LayerNorm", init, d)
        ar.put_linear(sd, p + "intermediate.dense", init, ff, d)
        ar.put_linear(sd, p + "output.dense", init, d, ff)
        ar.put_norm(sd, p + "output.LayerNorm", init, d)
    if c.get("relative_attention"):
        sd["encoder.rel_embeddings.weight"] = init.normal(2 * span, d)
        if "layer_norm" in c.get("norm_rel_ebd", "none"):
            ar.put_norm(sd, "encoder.LayerNorm", init, d)
    return sd


def make_log_bucket_position(relative_pos, bucket_size, max_position):
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where((relative_pos < mid) & (relative_pos > -mid), torch.tensor(mid - 1).type_as(relative_pos),
                          torch.abs(relative_pos))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)


def build_relative_position(size, bucket_size, max_position):
    ids = torch.arange(0, size)
    rel = ids[:, None] - ids[None, :]
    if bucket_size > 0 and max_position > 0:
        rel = make_log_bucket_position(rel, bucket_size, max_position)
    return rel.to(torch.long)


def deberta_forward(sd, c, ids, _target, type_ids=None, attention_mask=None):
    """attention_mask: 1 for a token, 0 for padding (all ones when None)."""
    FLOAT = ar.FLOAT
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    eps, act = c["layer_norm_eps"], ar.ACT[c["hidden_act"]]
    types = pos_att_types(c)
    span, max_rel, buckets = span_of(c)
    S = len(ids)
    ids_t = torch.tensor(ids)
    emb = sd["embeddings.word_embeddings.weight"][ids_t]
    if c.get("position_biased_input", True):
        emb = emb + sd["embeddings.position_embeddings.weight"][torch.arange(S)]
    if c.get("type_vocab_size", 0) > 0:
        tt = torch.tensor(type_ids) if type_ids is not None else torch.zeros(S, dtype=torch.long)
        emb = emb + sd["embeddings.token_type_embeddings.weight"][tt]
    if "embeddings.embed_proj.weight" in sd:
        emb = ar.linear(emb, sd["embeddings.embed_proj.weight"])
    x = ar.layer_norm(emb, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], eps)
    # DebertaV2Embeddings multiplies by the attention mask; DebertaV2Encoder.get_attention_mask
    # makes it [q, k]: visible where both the query and the key are tokens
    mask = torch.ones(S, dtype=torch.long) if attention_mask is None else torch.tensor(attention_mask)
    x = x * mask.unsqueeze(-1).to(x.dtype)
    visible = (mask[:, None] * mask[None, :]).bool()
    rel_pos = build_relative_position(S, buckets, max_rel) if c.get("relative_attention") else None
    rel_emb = None
    if c.get("relative_attention"):
        rel_emb = sd["encoder.rel_embeddings.weight"]
        if "layer_norm" in c.get("norm_rel_ebd", "none"):
            rel_emb = ar.layer_norm(rel_emb, sd["encoder.LayerNorm.weight"], sd["encoder.LayerNorm.bias"], eps)
        rel_emb = rel_emb[0:span * 2, :]
    scale_factor = 1 + ("c2p" in types) + ("p2c" in types)
    rec = ar.Recorder()
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        rec.add_hidden(x)

        def proj(name, h):
            return ar.linear(h, sd[p + f"attention.self.{name}.weight"], sd[p + f"attention.self.{name}.bias"])

        q = ar.split_heads(proj("query_proj", x), nh, hd)
        k = ar.split_heads(proj("key_proj", x), nh, hd)
        v = ar.split_heads(proj("value_proj", x), nh, hd)
        scale = torch.sqrt(torch.tensor(hd, dtype=torch.float) * scale_factor).to(FLOAT)
        scores = torch.bmm(q, k.transpose(-1, -2) / scale)
        if c.get("relative_attention"):
            share = c.get("share_att_key", False)
            score = 0
            if "c2p" in types:
                pos_key = ar.split_heads(proj("key_proj" if share else "pos_key_proj", rel_emb), nh, hd)
                c2p = torch.bmm(q, pos_key.transpose(-1, -2))
                c2p_pos = torch.clamp(rel_pos + span, 0, span * 2 - 1)
                c2p = torch.gather(c2p, dim=-1, index=c2p_pos.unsqueeze(0).expand(nh, S, S))
                score = score + c2p / scale
            if "p2c" in types:
                pos_query = ar.split_heads(proj("query_proj" if share else "pos_query_proj", rel_emb), nh, hd)
                p2c_pos = torch.clamp(-rel_pos + span, 0, span * 2 - 1)
                p2c = torch.bmm(k, pos_query.transpose(-1, -2))
                p2c = torch.gather(p2c, dim=-1, index=p2c_pos.unsqueeze(0).expand(nh, S, S)).transpose(-1, -2)
                score = score + p2c / scale
            scores = scores + score
        # XSoftmax: finfo.min where not visible, softmax, then 0 where not visible
        probs = torch.softmax(scores.masked_fill(~visible, torch.finfo(scores.dtype).min), dim=-1)
        probs = probs.masked_fill(~visible, 0)
        ctx = torch.matmul(probs, v)
        rec.add(probs, q, k)
        o = ar.linear(ar.merge_heads(ctx), sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"])
        x = ar.layer_norm(o + x, sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"], eps)
        h = act(ar.linear(x, sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"]))
        h = ar.linear(h, sd[p + "output.dense.weight"], sd[p + "output.dense.bias"])
        x = ar.layer_norm(h + x, sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"], eps)
    rec.add_hidden(x)
    return rec.tensors("self")


def deberta_head(sd, c):
    d = c["hidden_size"]
    out = {"deberta." + k: v for k, v in sd.items()}
    out["cls.predictions.transform.dense.weight"] = torch.zeros(d, d)
    out["cls.predictions.transform.dense.bias"] = torch.zeros(d)
    out["cls.predictions.bias"] = torch.zeros(c["vocab_size"])
    return out


ARCHS = {
    "deberta-v2": (deberta_config, deberta_init, deberta_forward, deberta_head),
}


def padded_fixture(out, ids, padding, seed, overrides):
    """A fixture whose input ends in `padding` padding tokens (id 0, attention_mask 0), as a
    tokenizer padding to a length gives: reference.safetensors adds attention_mask."""
    import json
    import os
    c = deberta_config("tiny", overrides)
    sd = deberta_init(c, ar.Init(seed))
    full = ids + [0] * padding
    mask = [1] * len(ids) + [0] * padding
    outputs = deberta_forward(sd, c, full, None, attention_mask=mask)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    ar.write_safetensors(os.path.join(out, "model.safetensors"), ar.base_layout(sd, c), {"format": "pt"})
    ref = {"input_ids": torch.tensor(full, dtype=torch.int64),
           "attention_mask": torch.tensor(mask, dtype=torch.int64)}
    ref.update(outputs)
    ar.write_safetensors(os.path.join(out, "reference.safetensors"), ref)


if __name__ == "__main__":
    # tests/data/arch/deberta_v3_padded: the deberta_v3_tiny shape, 20 tokens and 5 of padding
    import sys
    padded_fixture(sys.argv[1], [1] + [(37 * i + 11) % 125 + 3 for i in range(18)] + [2], 5, 1016,
                   {"vocab_size": 128})
