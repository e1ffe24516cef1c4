"""OPT (modeling_opt.py, eager attention), for arch_reference.py.

Learned positions with OPT's offset of 2 (counted over the attention mask),
pre-norm layers (do_layer_norm_before) or post-norm ones (OPT-350m), queries
scaled by head_dim^-0.5 before the product, a final LayerNorm unless
_remove_final_layer_norm.
"""

import torch

import arch_reference as R

SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                 max_position_embeddings=64, vocab_size=50272, word_embed_proj_dim=32),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, ffn_dim=3072,
                 max_position_embeddings=2048, vocab_size=50272, word_embed_proj_dim=768),
}


def config(size, overrides):
    c = dict(model_type="opt", architectures=["OPTForCausalLM"], activation_function="relu",
             do_layer_norm_before=True, _remove_final_layer_norm=False, dropout=0.1, attention_dropout=0.0,
             layerdrop=0.0, init_std=0.02, use_cache=True, pad_token_id=1, bos_token_id=2, eos_token_id=2,
             enable_bias=True, layer_norm_elementwise_affine=True)
    c.update(SIZES[size])
    c.update(overrides)
    return c


def has_final_norm(c):
    return c["do_layer_norm_before"] and not c["_remove_final_layer_norm"]


def init(c, g):
    d, ff, bias = c["hidden_size"], c["ffn_dim"], c["enable_bias"]
    affine = c["layer_norm_elementwise_affine"]
    sd = {"decoder.embed_tokens.weight": g.normal(c["vocab_size"], d),
          "decoder.embed_positions.weight": g.normal(c["max_position_embeddings"] + 2, d, std=0.3)}
    for i in range(c["num_hidden_layers"]):
        p = f"decoder.layers.{i}."
        R.put_linear(sd, p + "self_attn.q_proj", g, d, d, bias, gain=1.5)
        R.put_linear(sd, p + "self_attn.k_proj", g, d, d, bias, gain=1.5)
        R.put_linear(sd, p + "self_attn.v_proj", g, d, d, bias)
        R.put_linear(sd, p + "self_attn.out_proj", g, d, d, bias)
        if affine:
            R.put_norm(sd, p + "self_attn_layer_norm", g, d)
            R.put_norm(sd, p + "final_layer_norm", g, d)
        R.put_linear(sd, p + "fc1", g, ff, d, bias)
        R.put_linear(sd, p + "fc2", g, d, ff, bias)
    if has_final_norm(c) and affine:
        R.put_norm(sd, "decoder.final_layer_norm", g, d)
    return sd


def forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    act = R.ACT[c["activation_function"]]
    pre = c["do_layer_norm_before"]
    S = len(ids)

    def norm(name, y):  # nn.LayerNorm(eps=1e-5), elementwise_affine or not
        return R.layer_norm(y, sd.get(name + ".weight"), sd.get(name + ".bias"), 1e-5)

    # OPTLearnedPositionalEmbedding: cumsum(mask) * mask - 1, plus the offset 2
    mask = torch.ones(S, dtype=torch.long)
    positions = (torch.cumsum(mask, dim=0) * mask).long() - 1
    x = sd["decoder.embed_tokens.weight"][ids] + sd["decoder.embed_positions.weight"][positions + 2]
    rec = R.Recorder()
    visible = R.causal_mask(S, S)
    for i in range(c["num_hidden_layers"]):
        p = f"decoder.layers.{i}."
        rec.add_hidden(x)
        residual = x
        h = norm(p + "self_attn_layer_norm", x) if pre else x
        q_raw = R.linear(h, sd[p + "self_attn.q_proj.weight"], sd.get(p + "self_attn.q_proj.bias"))
        q = R.split_heads(q_raw * (hd ** -0.5), nh, hd)  # OPTAttention scales the queries first
        k = R.split_heads(R.linear(h, sd[p + "self_attn.k_proj.weight"], sd.get(p + "self_attn.k_proj.bias")), nh, hd)
        v = R.split_heads(R.linear(h, sd[p + "self_attn.v_proj.weight"], sd.get(p + "self_attn.v_proj.bias")), nh, hd)
        scores = torch.matmul(q, k.transpose(-1, -2))
        probs, ctx = R.masked_softmax_attention(scores, visible, v)
        # trace convention: the unscaled queries, score_scale 1/sqrt(head_dim)
        rec.add(probs, R.split_heads(q_raw, nh, hd), k)
        x = residual + R.linear(R.merge_heads(ctx), sd[p + "self_attn.out_proj.weight"],
                                sd.get(p + "self_attn.out_proj.bias"))
        if not pre:
            x = norm(p + "self_attn_layer_norm", x)
        residual = x
        h = norm(p + "final_layer_norm", x) if pre else x
        h = R.linear(act(R.linear(h, sd[p + "fc1.weight"], sd.get(p + "fc1.bias"))), sd[p + "fc2.weight"],
                     sd.get(p + "fc2.bias"))
        x = residual + h
        if not pre:
            x = norm(p + "final_layer_norm", x)
    if has_final_norm(c):
        x = norm("decoder.final_layer_norm", x)
    rec.add_hidden(x)
    return rec.tensors("self")


def head(sd, c):
    # OPTForCausalLM: "model." prefix, lm_head tied to embed_tokens
    out = {"model." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = sd["decoder.embed_tokens.weight"].clone()
    return out


ARCHS = {"opt": (config, init, forward, head)}
