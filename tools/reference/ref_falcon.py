"""Falcon (modeling_falcon.py, eager attention), for arch_reference.py.

Rotary positions or ALiBi (alibi: bfloat16 slopes times key positions, in
bfloat16, added to q.k before the 1/sqrt(head_dim) scale), parallel attention
and MLP (parallel_attn) or sequential, and the fused query_key_value layouts:
new_decoder_architecture (per key/value group: its query heads, then key and
value), multi_query ([queries | key | value]) or neither ([h0: q k v | ...]).
"""

import math

import torch

import arch_reference as R
import ref_bloom

SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, vocab_size=65024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, vocab_size=65024),
}


def config(size, overrides):
    c = dict(model_type="falcon", architectures=["FalconForCausalLM"], num_ln_in_parallel_attn=None,
             layer_norm_epsilon=1e-5, initializer_range=0.02, use_cache=True, hidden_dropout=0.0,
             attention_dropout=0.0, num_kv_heads=None, alibi=False, new_decoder_architecture=False,
             multi_query=True, parallel_attn=True, bias=False, max_position_embeddings=2048,
             rope_theta=10000.0, rope_scaling=None, bos_token_id=11, eos_token_id=11, ffn_hidden_size=None,
             activation="gelu")
    c.update(SIZES[size])
    c.update(overrides)
    return c


def kv_heads(c):
    if c["new_decoder_architecture"]:
        return c["num_kv_heads"] or c["num_attention_heads"]
    return 1 if c["multi_query"] else c["num_attention_heads"]


def ffn(c):
    return c["ffn_hidden_size"] or 4 * c["hidden_size"]


def two_norms(c):
    n = c["num_ln_in_parallel_attn"]
    if n is None and c["new_decoder_architecture"]:
        n = 2
    return c["new_decoder_architecture"] and n == 2


def init(c, g):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    bias = c["bias"]
    sd = {"word_embeddings.weight": g.normal(c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"h.{i}."
        R.put_linear(sd, p + "self_attention.query_key_value", g, (nh + 2 * kv_heads(c)) * hd, d, bias, gain=1.5)
        R.put_linear(sd, p + "self_attention.dense", g, d, d, bias)
        R.put_linear(sd, p + "mlp.dense_h_to_4h", g, ffn(c), d, bias)
        R.put_linear(sd, p + "mlp.dense_4h_to_h", g, d, ffn(c), bias)
        if not c["parallel_attn"]:
            R.put_norm(sd, p + "input_layernorm", g, d)
            R.put_norm(sd, p + "post_attention_layernorm", g, d)
        elif two_norms(c):
            R.put_norm(sd, p + "ln_attn", g, d)
            R.put_norm(sd, p + "ln_mlp", g, d)
        else:
            R.put_norm(sd, p + "input_layernorm", g, d)
    R.put_norm(sd, "ln_f", g, d)
    return sd


def split_heads(c, qkv, S):
    """FalconAttention._split_heads -> q [H, S, hd], k and v [Hkv, S, hd]."""
    nh = c["num_attention_heads"]
    hd = c["hidden_size"] // nh
    if c["new_decoder_architecture"]:
        g = qkv.view(S, -1, nh // c["num_kv_heads"] + 2, hd)
        q = g[:, :, :-2].reshape(S, nh, hd)
        k, v = g[:, :, -2], g[:, :, -1]
    elif not c["multi_query"]:
        g = qkv.view(S, nh, 3, hd)
        q, k, v = g[:, :, 0], g[:, :, 1], g[:, :, 2]
    else:
        g = qkv.view(S, nh + 2, hd)
        q, k, v = g[:, :-2], g[:, -2:-1], g[:, -1:]
    return q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)


def alibi(c, S):
    # build_alibi_tensor: slopes[..., None].bfloat16() * arange_tensor (int64): computed in bfloat16
    nh = c["num_attention_heads"]
    a = ref_bloom.alibi_slopes(nh)[..., None].bfloat16() * ref_bloom.key_positions(S)
    return a.reshape(nh, 1, S).to(R.FLOAT)


def forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd, nkv = d // nh, kv_heads(c)
    eps, act = c["layer_norm_epsilon"], R.ACT[c["activation"]]
    S = len(ids)
    x = sd["word_embeddings.weight"][ids]
    if c["alibi"]:
        bias = alibi(c, S)
    else:
        inv_freq = R.rope_inv_freq(dict(c, head_dim=hd), S)
        freqs = torch.arange(S, dtype=torch.int64).float()[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(R.FLOAT), emb.sin().to(R.FLOAT)
    rec = R.Recorder()
    visible = R.causal_mask(S, S)

    def norm(name, y):
        return R.layer_norm(y, sd[name + ".weight"], sd[name + ".bias"], eps)

    for i in range(c["num_hidden_layers"]):
        p = f"h.{i}."
        rec.add_hidden(x)
        residual = x
        if two_norms(c):
            a_in, m_in = norm(p + "ln_attn", x), norm(p + "ln_mlp", x)
        else:
            a_in = norm(p + "input_layernorm", x)
        qkv = R.linear(a_in, sd[p + "self_attention.query_key_value.weight"],
                       sd.get(p + "self_attention.query_key_value.bias"))
        q, k, v = split_heads(c, qkv, S)
        if not c["alibi"]:
            q = q * cos + R.rotate_half(q) * sin
            k = k * cos + R.rotate_half(k) * sin
        # keys and values shared by groups of query heads (broadcast in modeling_falcon)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = q @ k.transpose(-1, -2)
        if c["alibi"]:
            scores = (scores + bias) * (1.0 / math.sqrt(hd))
        else:
            scores = scores / math.sqrt(hd)
        probs, ctx = R.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        attn = R.linear(R.merge_heads(ctx), sd[p + "self_attention.dense.weight"],
                        sd.get(p + "self_attention.dense.bias"))
        if not c["new_decoder_architecture"]:
            if c["parallel_attn"]:
                m_in = a_in
            else:
                residual = attn + residual
                m_in = norm(p + "post_attention_layernorm", residual)
        if c["new_decoder_architecture"] and c["parallel_attn"] and not two_norms(c):
            m_in = a_in
        out = R.linear(act(R.linear(m_in, sd[p + "mlp.dense_h_to_4h.weight"], sd.get(p + "mlp.dense_h_to_4h.bias"))),
                       sd[p + "mlp.dense_4h_to_h.weight"], sd.get(p + "mlp.dense_4h_to_h.bias"))
        if c["new_decoder_architecture"] or c["parallel_attn"]:
            out = out + attn
        x = out + residual
    rec.add_hidden(norm("ln_f", x))
    out = rec.tensors("self")
    if c["alibi"] and not R.Recorder.attentions_only:
        out["self.score_bias"] = (bias * (1.0 / math.sqrt(hd))).expand(nh, S, S).float().contiguous()
    return out


def head(sd, c):
    out = {"transformer." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = sd["word_embeddings.weight"].clone()
    return out


ARCHS = {"falcon": (config, init, forward, head)}
