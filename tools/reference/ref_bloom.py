"""BLOOM (modeling_bloom.py), for arch_reference.py.

ALiBi instead of positions (build_alibi_tensor: slope_h * key position, added
as alibi.baddbmm(q, k^T, beta=1, alpha=1/sqrt(head_dim))), a LayerNorm on the
word embeddings, the fused query_key_value projection with rows per head
([h0: q k v | h1: q k v ...]), BLOOM's tanh gelu, and
apply_residual_connection_post_layernorm.
"""

import math

import torch

import arch_reference as R

SIZES = {
    "tiny": dict(hidden_size=32, n_layer=2, n_head=4, vocab_size=250880),
    "base": dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880),
}


def config(size, overrides):
    c = dict(model_type="bloom", architectures=["BloomForCausalLM"], layer_norm_epsilon=1e-5,
             initializer_range=0.02, use_cache=True, bos_token_id=1, eos_token_id=2,
             apply_residual_connection_post_layernorm=False, hidden_dropout=0.0, attention_dropout=0.0,
             pretraining_tp=1, slow_but_exact=False)
    c.update(SIZES[size])
    c.update(overrides)
    return c


def init(c, g):
    d = c["hidden_size"]
    sd = {"word_embeddings.weight": g.normal(c["vocab_size"], d)}
    R.put_norm(sd, "word_embeddings_layernorm", g, d)
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        R.put_norm(sd, p + "input_layernorm", g, d)
        R.put_linear(sd, p + "self_attention.query_key_value", g, 3 * d, d, gain=1.5)
        R.put_linear(sd, p + "self_attention.dense", g, d, d)
        R.put_norm(sd, p + "post_attention_layernorm", g, d)
        R.put_linear(sd, p + "mlp.dense_h_to_4h", g, 4 * d, d)
        R.put_linear(sd, p + "mlp.dense_4h_to_h", g, d, 4 * d)
    R.put_norm(sd, "ln_f", g, d)
    return sd


def alibi_slopes(n_heads):
    """build_alibi_tensor's slopes (modeling_bloom.py / modeling_falcon.py), float32."""
    closest_power_of_2 = 2 ** math.floor(math.log2(n_heads))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(closest_power_of_2) - 3))), dtype=torch.float32)
    powers = torch.arange(1, 1 + closest_power_of_2, dtype=torch.int32)
    slopes = torch.pow(base, powers)
    if closest_power_of_2 != n_heads:
        extra_base = torch.tensor(2 ** (-(2 ** -(math.log2(2 * closest_power_of_2) - 3))), dtype=torch.float32)
        num_remaining_heads = min(closest_power_of_2, n_heads - closest_power_of_2)
        extra_powers = torch.arange(1, 1 + 2 * num_remaining_heads, 2, dtype=torch.int32)
        slopes = torch.cat([slopes, torch.pow(extra_base, extra_powers)], dim=0)
    return slopes


def key_positions(S):
    mask = torch.ones(1, S, dtype=torch.long)
    return ((mask.cumsum(dim=-1) - 1) * mask)[:, None, :]  # [1, 1, S]


def bloom_gelu(x):
    return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))


def forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["n_head"]
    hd = d // nh
    eps = c["layer_norm_epsilon"]
    post = c["apply_residual_connection_post_layernorm"]
    S = len(ids)
    alibi = (alibi_slopes(nh)[..., None] * key_positions(S)).reshape(nh, 1, S).to(R.FLOAT)  # [H, 1, S]
    x = R.layer_norm(sd["word_embeddings.weight"][ids], sd["word_embeddings_layernorm.weight"],
                     sd["word_embeddings_layernorm.bias"], eps)
    rec = R.Recorder()
    visible = R.causal_mask(S, S)
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        rec.add_hidden(x)
        ln = R.layer_norm(x, sd[p + "input_layernorm.weight"], sd[p + "input_layernorm.bias"], eps)
        residual = ln if post else x
        qkv = R.linear(ln, sd[p + "self_attention.query_key_value.weight"], sd[p + "self_attention.query_key_value.bias"])
        qkv = qkv.view(S, nh, 3, hd)  # _split_heads
        q, k, v = (qkv[:, :, j, :].transpose(0, 1) for j in range(3))  # [H, S, hd]
        scores = torch.baddbmm(alibi.expand(nh, S, S), q, k.transpose(-1, -2), beta=1.0, alpha=1.0 / math.sqrt(hd))
        probs, ctx = R.masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        x = R.linear(R.merge_heads(ctx), sd[p + "self_attention.dense.weight"], sd[p + "self_attention.dense.bias"]) \
            + residual
        ln = R.layer_norm(x, sd[p + "post_attention_layernorm.weight"], sd[p + "post_attention_layernorm.bias"], eps)
        residual = ln if post else x
        h = bloom_gelu(R.linear(ln, sd[p + "mlp.dense_h_to_4h.weight"], sd[p + "mlp.dense_h_to_4h.bias"]))
        x = R.linear(h, sd[p + "mlp.dense_4h_to_h.weight"], sd[p + "mlp.dense_4h_to_h.bias"]) + residual
    rec.add_hidden(R.layer_norm(x, sd["ln_f.weight"], sd["ln_f.bias"], eps))
    out = rec.tensors("self")
    if not R.Recorder.attentions_only:
        # the additive score bias of every layer [H, Q, K] (the neuron view's bias column)
        out["self.score_bias"] = alibi.expand(nh, S, S).float().contiguous()
    return out


def head(sd, c):
    out = {"transformer." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = sd["word_embeddings.weight"].clone()
    return out


ARCHS = {"bloom": (config, init, forward, head)}
