"""Gemma and Gemma 2 references (modeling_gemma.py, modeling_gemma2.py, eager path).

Plain torch, float32, written from the transformers source; registered into
arch_reference.ARCHS through this module's ARCHS. Differences from Llama: embeddings times
sqrt(hidden_size) (a float32 tensor), RMSNorm times (1 + w), gelu_pytorch_tanh
gate; Gemma 2 adds query_pre_attn_scalar, attention-logit soft-capping, sliding
windows on the even layers (or as layer_types says) and the post-attention /
pre- and post-feed-forward norms.
"""

import math

import torch

import arch_reference as ar  # noqa: E402  (this module is imported by arch_reference)

GEMMA_SIZES = {
    "tiny": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, max_position_embeddings=128, vocab_size=50257),
    "base": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                 num_key_value_heads=4, head_dim=128, max_position_embeddings=4096, vocab_size=50257),
}


def gemma_config(size, overrides, model_type="gemma"):
    arch = {"gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM"}[model_type]
    c = dict(model_type=model_type, architectures=[arch], hidden_activation="gelu_pytorch_tanh",
             rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, tie_word_embeddings=True,
             pad_token_id=0, eos_token_id=1, bos_token_id=2)
    if model_type == "gemma":
        c["hidden_act"] = "gelu_pytorch_tanh"
    else:
        c.update(query_pre_attn_scalar=24, sliding_window=4, final_logit_softcapping=30.0,
                 attn_logit_softcapping=50.0)
    c.update(GEMMA_SIZES[size])
    c.update(overrides)
    return c


def gemma_init(c, init):
    d, hd = c["hidden_size"], c["head_dim"]
    nh, nkv, ff = c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
    bias = c.get("attention_bias", False)
    gemma2 = c["model_type"] == "gemma2"
    sd = {"embed_tokens.weight": init.normal(c["vocab_size"], d)}
    norms = ["input_layernorm", "post_attention_layernorm"]
    if gemma2:
        norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        # large q/k so that Gemma 2's soft cap (tanh) works outside its linear range
        gain = 3.0 if gemma2 else 1.5
        ar.put_linear(sd, p + "self_attn.q_proj", init, nh * hd, d, bias, gain=gain)
        ar.put_linear(sd, p + "self_attn.k_proj", init, nkv * hd, d, bias, gain=gain)
        ar.put_linear(sd, p + "self_attn.v_proj", init, nkv * hd, d, bias)
        ar.put_linear(sd, p + "self_attn.o_proj", init, d, nh * hd, bias)
        ar.put_linear(sd, p + "mlp.gate_proj", init, ff, d, False)
        ar.put_linear(sd, p + "mlp.up_proj", init, ff, d, False)
        ar.put_linear(sd, p + "mlp.down_proj", init, d, ff, False)
        for n in norms:  # GemmaRMSNorm's weight is an offset from 1: around 0
            sd[p + n + ".weight"] = init.normal(d, std=0.1)
    sd["norm.weight"] = init.normal(d, std=0.1)
    return sd


def gemma_rms_norm(x, w, eps):
    # GemmaRMSNorm: x * rsqrt(mean(x^2) + eps), then * (1.0 + w) in float32
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * (1.0 + w)


def gemma2_sliding(c, layer):
    if c["model_type"] != "gemma2":
        return None
    types = c.get("layer_types")
    sliding = types[layer] == "sliding_attention" if types is not None else layer % 2 == 0
    return c["sliding_window"] if sliding else None


def gemma_forward(sd, c, ids, _target, type_ids=None):
    FLOAT = ar.FLOAT
    d, hd = c["hidden_size"], c["head_dim"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    eps = c["rms_norm_eps"]
    act = ar.ACT[c.get("hidden_activation") or "gelu_pytorch_tanh"]
    gemma2 = c["model_type"] == "gemma2"
    S = len(ids)
    x = sd["embed_tokens.weight"][ids]
    x = x * torch.tensor(d ** 0.5, dtype=FLOAT)
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(FLOAT), emb.sin().to(FLOAT)
    scaling = c["query_pre_attn_scalar"] ** -0.5 if gemma2 else 1 / math.sqrt(hd)
    softcap = c.get("attn_logit_softcapping") if gemma2 else None
    rec = ar.Recorder()

    def opt(name):
        return sd.get(name) if c.get("attention_bias") else None

    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        rec.add_hidden(x)
        h = gemma_rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q = ar.split_heads(ar.linear(h, sd[p + "self_attn.q_proj.weight"], opt(p + "self_attn.q_proj.bias")), nh, hd)
        k = ar.split_heads(ar.linear(h, sd[p + "self_attn.k_proj.weight"], opt(p + "self_attn.k_proj.bias")), nkv, hd)
        v = ar.split_heads(ar.linear(h, sd[p + "self_attn.v_proj.weight"], opt(p + "self_attn.v_proj.bias")), nkv, hd)
        q = q * cos + ar.rotate_half(q) * sin
        k = k * cos + ar.rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
        if softcap is not None:
            scores = scores / softcap
            scores = torch.tanh(scores)
            scores = scores * softcap
        visible = ar.causal_mask(S, S)
        window = gemma2_sliding(c, i)
        if window is not None:
            # tril(ones, diagonal=-window) is masked: visible when q - k < window
            qpos, kpos = torch.arange(S)[:, None], torch.arange(S)[None, :]
            visible = visible & (qpos - kpos < window)
        probs, ctx = ar.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        out = ar.linear(ar.merge_heads(ctx), sd[p + "self_attn.o_proj.weight"], opt(p + "self_attn.o_proj.bias"))
        if gemma2:
            x = x + gemma_rms_norm(out, sd[p + "post_attention_layernorm.weight"], eps)
            h = gemma_rms_norm(x, sd[p + "pre_feedforward_layernorm.weight"], eps)
        else:
            x = x + out
            h = gemma_rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps)
        h = ar.linear(act(ar.linear(h, sd[p + "mlp.gate_proj.weight"])) * ar.linear(h, sd[p + "mlp.up_proj.weight"]),
                      sd[p + "mlp.down_proj.weight"])
        if gemma2:
            h = gemma_rms_norm(h, sd[p + "post_feedforward_layernorm.weight"], eps)
        x = x + h
    rec.add_hidden(gemma_rms_norm(x, sd["norm.weight"], eps))
    return rec.tensors("self")


def gemma_head(sd, c):
    out = {"model." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = sd["embed_tokens.weight"].clone()
    return out


ARCHS = {
    "gemma": (lambda s, o: gemma_config(s, o, "gemma"), gemma_init, gemma_forward, gemma_head),
    "gemma2": (lambda s, o: gemma_config(s, o, "gemma2"), gemma_init, gemma_forward, gemma_head),
}
