"""GPT-NeoX / Pythia (modeling_gpt_neox.py, eager attention), for arch_reference.py.

Parallel residual (use_parallel_residual), partial rotary (rotary_pct of each
head's dims, base rotary_emb_base) and the fused query_key_value projection
whose output rows come per head: [h0: q k v | h1: q k v | ...].
"""

import math

import torch

import arch_reference as R

SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=128, vocab_size=50304),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=2048, vocab_size=50304),
}


def config(size, overrides):
    c = dict(model_type="gpt_neox", architectures=["GPTNeoXForCausalLM"], hidden_act="gelu", rotary_pct=0.25,
             rotary_emb_base=10000, attention_dropout=0.0, hidden_dropout=0.0, classifier_dropout=0.1,
             initializer_range=0.02, layer_norm_eps=1e-5, use_cache=True, bos_token_id=0, eos_token_id=0,
             tie_word_embeddings=False, use_parallel_residual=True, rope_scaling=None, attention_bias=True)
    c.update(SIZES[size])
    c.update(overrides)
    return c


def init(c, g):
    d, ff = c["hidden_size"], c["intermediate_size"]
    bias = c["attention_bias"]
    sd = {"embed_in.weight": g.normal(c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        R.put_norm(sd, p + "input_layernorm", g, d)
        R.put_norm(sd, p + "post_attention_layernorm", g, d)
        R.put_linear(sd, p + "attention.query_key_value", g, 3 * d, d, bias, gain=1.5)
        R.put_linear(sd, p + "attention.dense", g, d, d, bias)
        R.put_linear(sd, p + "mlp.dense_h_to_4h", g, ff, d)
        R.put_linear(sd, p + "mlp.dense_4h_to_h", g, d, ff)
    R.put_norm(sd, "final_layer_norm", g, d)
    return sd


def rotary_ndims(c):
    return int((c["hidden_size"] // c["num_attention_heads"]) * c["rotary_pct"])


def forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    eps, act = c["layer_norm_eps"], R.ACT[c["hidden_act"]]
    S = len(ids)
    rot = rotary_ndims(c)
    # GPTNeoXRotaryEmbedding over rotary_ndims dims, base rotary_emb_base (rope_scaling as Llama's)
    rope_c = dict(c, rope_theta=c["rotary_emb_base"], head_dim=rot)
    if rot == 2 and (c.get("rope_scaling") or {}).get("rope_type", (c.get("rope_scaling") or {}).get("type")) \
            == "dynamic":
        raise SystemExit("dynamic rope_scaling divides by rotary_ndims - 2 = 0 (ZeroDivisionError in transformers)")
    inv_freq = R.rope_inv_freq(rope_c, S) if rot > 0 else torch.zeros(0)  # rotary_pct 0: nothing rotates
    freqs = torch.arange(S, dtype=torch.int64).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(R.FLOAT), emb.sin().to(R.FLOAT)
    x = sd["embed_in.weight"][ids]
    rec = R.Recorder()
    visible = R.causal_mask(S, S)
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        rec.add_hidden(x)
        h = R.layer_norm(x, sd[p + "input_layernorm.weight"], sd[p + "input_layernorm.bias"], eps)
        qkv = R.linear(h, sd[p + "attention.query_key_value.weight"], sd.get(p + "attention.query_key_value.bias"))
        qkv = qkv.view(S, nh, 3 * hd).transpose(0, 1)  # [H, S, 3*hd]: per head q | k | v
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q_rot, q_pass = q[..., :rot], q[..., rot:]
        k_rot, k_pass = k[..., :rot], k[..., rot:]
        q = torch.cat((q_rot * cos + R.rotate_half(q_rot) * sin, q_pass), dim=-1)
        k = torch.cat((k_rot * cos + R.rotate_half(k_rot) * sin, k_pass), dim=-1)
        # baddbmm(zeros, q, k^T, alpha=norm_factor), then the causal mask
        scores = torch.matmul(q, k.transpose(-1, -2)) * (hd ** -0.5)
        probs, ctx = R.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        attn = R.linear(R.merge_heads(ctx), sd[p + "attention.dense.weight"], sd.get(p + "attention.dense.bias"))

        def mlp(y):
            y = act(R.linear(y, sd[p + "mlp.dense_h_to_4h.weight"], sd[p + "mlp.dense_h_to_4h.bias"]))
            return R.linear(y, sd[p + "mlp.dense_4h_to_h.weight"], sd[p + "mlp.dense_4h_to_h.bias"])

        ln2 = (sd[p + "post_attention_layernorm.weight"], sd[p + "post_attention_layernorm.bias"])
        if c["use_parallel_residual"]:
            x = mlp(R.layer_norm(x, *ln2, eps)) + attn + x
        else:
            attn = attn + x
            x = mlp(R.layer_norm(attn, *ln2, eps)) + attn
    rec.add_hidden(R.layer_norm(x, sd["final_layer_norm.weight"], sd["final_layer_norm.bias"], eps))
    return rec.tensors("self")


def head(sd, c):
    # GPTNeoXForCausalLM: "gpt_neox." prefix, an untied embed_out, and the buffers old
    # checkpoints carry (attention.bias, attention.masked_bias, rotary_emb.inv_freq)
    out = {"gpt_neox." + k: v for k, v in sd.items()}
    n, rot = 8, rotary_ndims(c)
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}.attention."
        out[p + "bias"] = torch.ones(n, n).tril().view(1, 1, n, n)
        out[p + "masked_bias"] = torch.tensor(-1e9)
        out[p + "rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, rot, 2).float() / rot))
    out["embed_out.weight"] = torch.zeros(c["vocab_size"], c["hidden_size"])
    return out


ARCHS = {"gpt_neox": (config, init, forward, head)}
