"""Phi and Phi-3 references (modeling_phi.py, modeling_phi3.py, eager path).

Plain torch, float32, written from the transformers source; registered into
arch_reference.ARCHS through this module's ARCHS.

Phi: LayerNorm, then attention and the feed-forward on the same normalized
input, both added to the residual; rotary on the first
int(head_dim * partial_rotary_factor) dims of each head; q/k/v/dense biases;
qk_layernorm normalizes each head's query and key (LayerNorm over head_dim, as
the current modeling_phi.py applies it after splitting the heads).
Phi-3: Llama's layers with a fused qkv_proj and gate_up_proj (gate rows first,
up * act(gate)), rope_scaling "longrope"/"su" (short or long factors, cos/sin
times the attention factor), an optional sliding window.
"""

import math

import torch

import arch_reference as ar  # noqa: E402  (this module is imported by arch_reference)

PHI_SIZES = {
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=128, vocab_size=50257),
    "base": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 max_position_embeddings=2048, vocab_size=50257),
}
PHI3_SIZES = {
    "tiny": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, original_max_position_embeddings=128,
                 vocab_size=50257),
    "base": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, max_position_embeddings=4096, original_max_position_embeddings=4096,
                 vocab_size=50257),
}


def phi_config(size, overrides):
    c = dict(model_type="phi", architectures=["PhiForCausalLM"], hidden_act="gelu_new", layer_norm_eps=1e-5,
             rope_theta=10000.0, rope_scaling=None, partial_rotary_factor=0.5, qk_layernorm=False,
             tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, num_key_value_heads=None)
    c.update(PHI_SIZES[size])
    c.update(overrides)
    return c


def phi3_config(size, overrides):
    c = dict(model_type="phi3", architectures=["Phi3ForCausalLM"], hidden_act="silu", rms_norm_eps=1e-5,
             rope_theta=10000.0, rope_scaling=None, partial_rotary_factor=1.0, sliding_window=None,
             tie_word_embeddings=False, bos_token_id=1, eos_token_id=32000, pad_token_id=32000)
    c.update(PHI3_SIZES[size])
    c.update(overrides)
    return c


def heads(c):
    nh = c["num_attention_heads"]
    return nh, c.get("num_key_value_heads") or nh, c.get("head_dim") or c["hidden_size"] // nh


def phi_init(c, init):
    d, ff = c["hidden_size"], c["intermediate_size"]
    nh, nkv, hd = heads(c)
    sd = {"embed_tokens.weight": init.normal(c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        ar.put_norm(sd, p + "input_layernorm", init, d)
        ar.put_linear(sd, p + "self_attn.q_proj", init, nh * hd, d, gain=1.5)
        ar.put_linear(sd, p + "self_attn.k_proj", init, nkv * hd, d, gain=1.5)
        ar.put_linear(sd, p + "self_attn.v_proj", init, nkv * hd, d)
        ar.put_linear(sd, p + "self_attn.dense", init, d, nh * hd)
        if c.get("qk_layernorm"):
            ar.put_norm(sd, p + "self_attn.q_layernorm", init, hd)
            ar.put_norm(sd, p + "self_attn.k_layernorm", init, hd)
        ar.put_linear(sd, p + "mlp.fc1", init, ff, d)
        ar.put_linear(sd, p + "mlp.fc2", init, d, ff)
    ar.put_norm(sd, "final_layernorm", init, d)
    return sd


def rotate_part(x, cos, sin):
    # the first cos.shape[-1] dims rotate (rotate_half), the rest pass through
    r = cos.shape[-1]
    x_rot, x_pass = x[..., :r], x[..., r:]
    return torch.cat((x_rot * cos + ar.rotate_half(x_rot) * sin, x_pass), dim=-1)


def default_cos_sin(c, dim, S):
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def phi_forward(sd, c, ids, _target, type_ids=None):
    d = c["hidden_size"]
    nh, nkv, hd = heads(c)
    eps, act = c["layer_norm_eps"], ar.ACT[c["hidden_act"]]
    S = len(ids)
    rotary = int(hd * c["partial_rotary_factor"])
    cos, sin = default_cos_sin(c, rotary, S)
    cos, sin = cos.to(ar.FLOAT), sin.to(ar.FLOAT)
    x = sd["embed_tokens.weight"][ids]
    rec = ar.Recorder()
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        rec.add_hidden(x)
        h = ar.layer_norm(x, sd[p + "input_layernorm.weight"], sd[p + "input_layernorm.bias"], eps)
        q = ar.split_heads(ar.linear(h, sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.q_proj.bias"]), nh, hd)
        k = ar.split_heads(ar.linear(h, sd[p + "self_attn.k_proj.weight"], sd[p + "self_attn.k_proj.bias"]), nkv, hd)
        v = ar.split_heads(ar.linear(h, sd[p + "self_attn.v_proj.weight"], sd[p + "self_attn.v_proj.bias"]), nkv, hd)
        if c.get("qk_layernorm"):
            q = ar.layer_norm(q, sd[p + "self_attn.q_layernorm.weight"], sd[p + "self_attn.q_layernorm.bias"], eps)
            k = ar.layer_norm(k, sd[p + "self_attn.k_layernorm.weight"], sd[p + "self_attn.k_layernorm.bias"], eps)
        q, k = rotate_part(q, cos, sin), rotate_part(k, cos, sin)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        probs, ctx = ar.masked_softmax_attention(scores, ar.causal_mask(S, S), v)
        rec.add(probs, q, k)
        attn = ar.linear(ar.merge_heads(ctx), sd[p + "self_attn.dense.weight"], sd[p + "self_attn.dense.bias"])
        ff = ar.linear(act(ar.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                       sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = attn + ff + x
    rec.add_hidden(ar.layer_norm(x, sd["final_layernorm.weight"], sd["final_layernorm.bias"], eps))
    return rec.tensors("self")


def phi_head(sd, c):
    out = {"model." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = torch.zeros(c["vocab_size"], c["hidden_size"])
    out["lm_head.bias"] = torch.zeros(c["vocab_size"])
    return out


def phi3_init(c, init):
    d, ff = c["hidden_size"], c["intermediate_size"]
    nh, nkv, hd = heads(c)
    sd = {"embed_tokens.weight": init.normal(c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        q, _ = init.linear(nh * hd, d, False, gain=1.5)
        k, _ = init.linear(nkv * hd, d, False, gain=1.5)
        v, _ = init.linear(nkv * hd, d, False)
        sd[p + "self_attn.qkv_proj.weight"] = torch.cat((q, k, v), dim=0)
        ar.put_linear(sd, p + "self_attn.o_proj", init, d, nh * hd, False)
        ar.put_linear(sd, p + "mlp.gate_up_proj", init, 2 * ff, d, False)
        ar.put_linear(sd, p + "mlp.down_proj", init, d, ff, False)
        ar.put_norm(sd, p + "input_layernorm", init, d, bias=False)
        ar.put_norm(sd, p + "post_attention_layernorm", init, d, bias=False)
    ar.put_norm(sd, "norm", init, d, bias=False)
    return sd


def phi3_cos_sin(c, dim, S):
    """Phi3RotaryEmbedding: default, or longrope (_compute_longrope_parameters)."""
    scaling = c.get("rope_scaling") or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return default_cos_sin(c, dim, S)
    if rope_type not in ("longrope", "su", "yarn"):
        raise SystemExit(f"rope type {rope_type} not in this reference")
    original = c.get("original_max_position_embeddings", c["max_position_embeddings"])
    factor = c["max_position_embeddings"] / original
    attention_factor = scaling.get("attention_factor")
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    ext = torch.tensor(scaling["long_factor"] if S > original else scaling["short_factor"], dtype=torch.float32)
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    inv_freq = 1.0 / (ext * c["rope_theta"] ** shape)
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * attention_factor, emb.sin() * attention_factor


def phi3_forward(sd, c, ids, _target, type_ids=None):
    d, ff = c["hidden_size"], c["intermediate_size"]
    nh, nkv, hd = heads(c)
    eps, act = c["rms_norm_eps"], ar.ACT[c["hidden_act"]]
    S = len(ids)
    cos, sin = phi3_cos_sin(c, int(hd * c.get("partial_rotary_factor", 1.0)), S)
    cos, sin = cos.to(ar.FLOAT), sin.to(ar.FLOAT)
    x = sd["embed_tokens.weight"][ids]
    visible = ar.causal_mask(S, S)
    if c.get("sliding_window") is not None:
        qpos, kpos = torch.arange(S)[:, None], torch.arange(S)[None, :]
        visible = visible & ~(kpos <= qpos - c["sliding_window"])
    rec = ar.Recorder()
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        rec.add_hidden(x)
        h = ar.rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        qkv = ar.linear(h, sd[p + "self_attn.qkv_proj.weight"])
        q = ar.split_heads(qkv[:, :nh * hd], nh, hd)
        k = ar.split_heads(qkv[:, nh * hd:(nh + nkv) * hd], nkv, hd)
        v = ar.split_heads(qkv[:, (nh + nkv) * hd:], nkv, hd)
        q, k = rotate_part(q, cos, sin), rotate_part(k, cos, sin)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = torch.matmul(q, k.transpose(-1, -2)) * hd ** -0.5
        probs, ctx = ar.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        x = x + ar.linear(ar.merge_heads(ctx), sd[p + "self_attn.o_proj.weight"])
        h = ar.rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps)
        gate, up = ar.linear(h, sd[p + "mlp.gate_up_proj.weight"]).chunk(2, dim=-1)
        x = x + ar.linear(up * act(gate), sd[p + "mlp.down_proj.weight"])
    rec.add_hidden(ar.rms_norm(x, sd["norm.weight"], eps))
    return rec.tensors("self")


def phi3_head(sd, c):
    out = {"model." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = torch.zeros(c["vocab_size"], c["hidden_size"])
    return out


ARCHS = {
    "phi": (phi_config, phi_init, phi_forward, phi_head),
    "phi3": (phi3_config, phi3_init, phi3_forward, phi3_head),
}
