#!/usr/bin/python3
"""PyTorch references for the architectures beyond BERT (issue 5).

For one architecture this script builds a random-weight model whose parameter
names and semantics are exactly Hugging Face transformers' (modeling_<arch>.py,
eager attention path, the one taken with output_attentions=True), writes it in
the Hugging Face layout (config.json with the real config keys,
model.safetensors) and writes reference outputs to reference.safetensors:

  input_ids [S] (int64), decoder_input_ids [T] for encoder-decoder models,
  <block>.attentions [L, H, Q, K]       block: self | encoder | decoder | cross
  <block>.queries    [L, H, Q, Dh]      the vectors whose dot product (times the
  <block>.keys       [L, H, K, Dh]      block's score scale) is the raw score;
                                        grouped-query keys repeated per query head
  hidden_states [L+1, S, D]             (single stack) and encoder_hidden_states /
  decoder_hidden_states [L+1, S|T, D]   (encoder-decoder), as transformers'
                                        output_hidden_states=True gives them: the
                                        embedding output, then every layer's output,
                                        the last after the stack's final norm where
                                        there is one (GPT-2's ln_f, Llama's norm, T5's
                                        final_layer_norm)
  t5_buckets.bidirectional / t5_buckets.causal [2R+1]  (T5 only) the bucket of
                                        every relative position -R..R

It is plain torch 1.13 with no `transformers` (not installable here): each
forward below follows the transformers source step by step, in float32.

Usage:
  arch_reference.py --arch gpt2 --size tiny --ids 1,2,3 --out DIR
                    [--target-ids 4,5] [--head] [--seed N] [--set key=json ...]
  arch_reference.py --jobs jobs.json      (many of the above in one process)
  --head writes the head-model layout (GPT2LMHeadModel, LlamaForCausalLM, ...):
  the prefix real checkpoints use plus the head weights, which loaders ignore.
"""

import argparse
import importlib
import json
import math
import os
import struct
import sys

import torch

torch.set_grad_enabled(False)
torch.set_num_threads(int(os.environ.get("ATTNVIZ_REF_THREADS", "1")))

# The precision the forward computes in. float32 is transformers' own; a job with
# "float64_check" runs the forward a second time in float64 (the exact answer for
# the error model of the base-size tests, tests/model/arch_reference_check.h).
FLOAT = torch.float32

# ----------------------------------------------------------------------------
# safetensors writer (the format: 8-byte little-endian header length, JSON
# header, raw little-endian data)

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.contiguous()
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------
# shared pieces, as transformers' activations.py and the modeling files define them

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACT = {
    "gelu": torch.nn.functional.gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "swish": torch.nn.functional.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def linear(x, w, b=None):
    return torch.nn.functional.linear(x, w, b)


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def rms_norm(x, w, eps):
    # LlamaRMSNorm / T5LayerNorm: no mean subtraction, no bias, variance in float32
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def split_heads(x, n_heads, head_dim):
    # [S, n_heads*head_dim] -> [n_heads, S, head_dim]
    return x.view(x.shape[0], n_heads, head_dim).transpose(0, 1)


def merge_heads(x):
    # [H, S, Dh] -> [S, H*Dh]
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def causal_mask(q_len, k_len):
    # True where the key is visible
    return torch.ones(q_len, k_len, dtype=torch.bool).tril(k_len - q_len)


def masked_softmax_attention(scores, visible, v):
    """scores [H, Q, K] with invisible keys at float32 min, softmax in float32."""
    if visible is not None:
        scores = scores.masked_fill(~visible, torch.finfo(FLOAT).min)
    probs = torch.softmax(scores, dim=-1, dtype=FLOAT)
    return probs, torch.matmul(probs, v)


class Recorder:
    """Collects one block's per-layer attentions, queries and keys."""

    # bench/arch_bench.py sets this: keep only the per-layer attention tensors, as
    # transformers' output_attentions=True does (a tuple, no stacked copy)
    attentions_only = False

    def __init__(self):
        self.attentions, self.queries, self.keys = [], [], []
        self.hidden_states = []

    def add(self, probs, q, k):
        # float64 runs are stored rounded to float32 (relative error 2^-24): half the memory
        self.attentions.append(probs.float())
        if not Recorder.attentions_only:
            self.queries.append(q.float())
            self.keys.append(k.float())

    def add_hidden(self, x):
        # one entry of the stack's hidden states, in the order transformers appends them
        if not Recorder.attentions_only:
            self.hidden_states.append(x)

    def hidden_state_tensors(self, name):
        # named as transformers' outputs: hidden_states (single stack), encoder_/decoder_hidden_states
        if not self.hidden_states:
            return {}
        key = "hidden_states" if name == "self" else f"{name}_hidden_states"
        return {key: torch.stack(self.hidden_states)}

    def tensors(self, name):
        if Recorder.attentions_only:
            return {f"{name}.attentions": tuple(self.attentions)}
        return {
            **self.hidden_state_tensors(name),
            f"{name}.attentions": torch.stack(self.attentions),
            f"{name}.queries": torch.stack(self.queries),
            f"{name}.keys": torch.stack(self.keys),
        }


class Init:
    """Random weights that give non-uniform attention: N(0, 1/in) projections."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.g) * std

    def linear(self, out_f, in_f, bias=True, gain=1.0):
        w = self.normal(out_f, in_f, std=gain / math.sqrt(in_f))
        return w, (self.normal(out_f, std=0.1) if bias else None)

    def norm(self, n, bias=True):
        w = 1.0 + self.normal(n, std=0.1)
        return w, (self.normal(n, std=0.1) if bias else None)


def put_linear(sd, name, init, out_f, in_f, bias=True, gain=1.0):
    w, b = init.linear(out_f, in_f, bias, gain)
    sd[name + ".weight"] = w
    if bias:
        sd[name + ".bias"] = b


def put_norm(sd, name, init, n, bias=True, weight_key="weight", bias_key="bias"):
    w, b = init.norm(n, bias)
    sd[f"{name}.{weight_key}"] = w
    if bias:
        sd[f"{name}.{bias_key}"] = b


# ----------------------------------------------------------------------------
# GPT-2 (modeling_gpt2.py): Conv1D weights [in, out], fused c_attn, pre-norm

GPT2_SIZES = {
    "tiny": dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=50257),
    "base": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257),
}


def gpt2_config(size, overrides):
    c = dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], activation_function="gelu_new",
             layer_norm_epsilon=1e-5, n_inner=None, scale_attn_weights=True,
             scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
             bos_token_id=50256, eos_token_id=50256, n_ctx=1024)
    c.update(GPT2_SIZES[size])
    c.update(overrides)
    return c


def gpt2_init(c, init):
    d, inner = c["n_embd"], c["n_inner"] or 4 * c["n_embd"]
    sd = {"wte.weight": init.normal(c["vocab_size"], d), "wpe.weight": init.normal(c["n_positions"], d, std=0.3)}
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        put_norm(sd, p + "ln_1", init, d)
        sd[p + "attn.c_attn.weight"] = init.normal(d, 3 * d, std=1.5 / math.sqrt(d))  # Conv1D: [in, out]
        sd[p + "attn.c_attn.bias"] = init.normal(3 * d, std=0.1)
        sd[p + "attn.c_proj.weight"] = init.normal(d, d, std=1 / math.sqrt(d))
        sd[p + "attn.c_proj.bias"] = init.normal(d, std=0.1)
        put_norm(sd, p + "ln_2", init, d)
        sd[p + "mlp.c_fc.weight"] = init.normal(d, inner, std=1 / math.sqrt(d))
        sd[p + "mlp.c_fc.bias"] = init.normal(inner, std=0.1)
        sd[p + "mlp.c_proj.weight"] = init.normal(inner, d, std=1 / math.sqrt(inner))
        sd[p + "mlp.c_proj.bias"] = init.normal(d, std=0.1)
    put_norm(sd, "ln_f", init, d)
    return sd


def gpt2_forward(sd, c, ids, _target, type_ids=None):
    d, n_head = c["n_embd"], c["n_head"]
    hd = d // n_head
    act = ACT[c["activation_function"]]
    eps = c["layer_norm_epsilon"]
    S = len(ids)
    x = sd["wte.weight"][ids] + sd["wpe.weight"][torch.arange(S)]
    rec = Recorder()
    visible = causal_mask(S, S)
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        rec.add_hidden(x)
        h = layer_norm(x, sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], eps)
        qkv = torch.addmm(sd[p + "attn.c_attn.bias"], h, sd[p + "attn.c_attn.weight"])  # Conv1D
        q, k, v = (split_heads(t, n_head, hd) for t in qkv.split(d, dim=1))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if c["scale_attn_weights"]:
            scores = scores / (float(hd) ** 0.5)
        if c["scale_attn_by_inverse_layer_idx"]:
            scores = scores / float(i + 1)
        probs, ctx = masked_softmax_attention(scores, visible, v)
        # trace convention: raw score = score_scale[layer] * dot(q, k) with the model's own q;
        # score_scale = 1/sqrt(Dh) when scale_attn_weights, divided by i + 1 when
        # scale_attn_by_inverse_layer_idx (self.score_scale below)
        rec.add(probs, q, k)
        x = x + torch.addmm(sd[p + "attn.c_proj.bias"], merge_heads(ctx), sd[p + "attn.c_proj.weight"])
        h = layer_norm(x, sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], eps)
        h = act(torch.addmm(sd[p + "mlp.c_fc.bias"], h, sd[p + "mlp.c_fc.weight"]))
        x = x + torch.addmm(sd[p + "mlp.c_proj.bias"], h, sd[p + "mlp.c_proj.weight"])
    rec.add_hidden(layer_norm(x, sd["ln_f.weight"], sd["ln_f.bias"], eps))
    out = rec.tensors("self")
    if c["scale_attn_by_inverse_layer_idx"] and not Recorder.attentions_only:
        base = 1.0 / (float(hd) ** 0.5) if c["scale_attn_weights"] else 1.0
        out["self.score_scale"] = torch.tensor([base / (i + 1) for i in range(c["n_layer"])])
    return out


def gpt2_head(sd, c):
    # GPT2LMHeadModel: "transformer." prefix, tied lm_head, plus the legacy
    # causal-mask buffers old checkpoints carry (h.N.attn.bias, h.N.attn.masked_bias)
    out = {"transformer." + k: v for k, v in sd.items()}
    n = c["n_positions"]
    for i in range(c["n_layer"]):
        out[f"transformer.h.{i}.attn.bias"] = torch.ones(n, n).tril().view(1, 1, n, n)
        out[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    out["lm_head.weight"] = sd["wte.weight"].clone()
    return out


# ----------------------------------------------------------------------------
# Llama family (modeling_llama.py, modeling_mistral.py, modeling_qwen2.py)

LLAMA_SIZES = {
    "tiny": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, vocab_size=50257),
    # a Llama-style model of ~GPT-2-base width with grouped-query attention
    "base": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, max_position_embeddings=4096, vocab_size=50257),
}


def llama_config(size, overrides, model_type="llama"):
    arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}[model_type]
    c = dict(model_type=model_type, architectures=[arch], hidden_act="silu", rms_norm_eps=1e-6,
             rope_theta=10000.0, rope_scaling=None, attention_bias=False, mlp_bias=False,
             tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    if model_type == "mistral":
        c.update(rope_theta=1000000.0, sliding_window=4096)
    if model_type == "qwen2":
        c.update(rope_theta=1000000.0, use_sliding_window=False, sliding_window=4096, max_window_layers=28)
        del c["attention_bias"], c["mlp_bias"]
    c.update(LLAMA_SIZES[size])
    c.update(overrides)
    return c


def llama_head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def llama_qkv_bias(c):
    return True if c["model_type"] == "qwen2" else c.get("attention_bias", False)


def llama_init(c, init):
    d, hd = c["hidden_size"], llama_head_dim(c)
    nh, nkv, ff = c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
    qkv_bias, o_bias = llama_qkv_bias(c), c.get("attention_bias", False)
    mlp_bias = c.get("mlp_bias", False)
    sd = {"embed_tokens.weight": init.normal(c["vocab_size"], d)}
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        put_linear(sd, p + "self_attn.q_proj", init, nh * hd, d, qkv_bias, gain=1.5)
        put_linear(sd, p + "self_attn.k_proj", init, nkv * hd, d, qkv_bias, gain=1.5)
        put_linear(sd, p + "self_attn.v_proj", init, nkv * hd, d, qkv_bias)
        put_linear(sd, p + "self_attn.o_proj", init, d, nh * hd, o_bias)
        put_linear(sd, p + "mlp.gate_proj", init, ff, d, mlp_bias)
        put_linear(sd, p + "mlp.up_proj", init, ff, d, mlp_bias)
        put_linear(sd, p + "mlp.down_proj", init, d, ff, mlp_bias)
        put_norm(sd, p + "input_layernorm", init, d, bias=False)
        put_norm(sd, p + "post_attention_layernorm", init, d, bias=False)
    put_norm(sd, "norm", init, d, bias=False)
    return sd


def rope_inv_freq(c, seq_len):
    """modeling_rope_utils.py: default, linear, dynamic and llama3 rope types."""
    dim = llama_head_dim(c)
    base = c["rope_theta"]
    scaling = c.get("rope_scaling") or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))

    def default(b):
        return 1.0 / (b ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    if rope_type == "default":
        return default(base)
    if rope_type == "linear":
        return default(base) / scaling["factor"]
    if rope_type == "dynamic":
        # dynamic_rope_update: recomputed once the sequence outgrows max_position_embeddings
        max_pos = c["max_position_embeddings"]
        factor = scaling["factor"]
        if seq_len > max_pos:
            base = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return default(base)
    if rope_type == "llama3":
        inv_freq = default(base)
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise SystemExit(f"rope type {rope_type} not in this reference")


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_sliding_window(c, layer):
    if c["model_type"] == "mistral":
        return c.get("sliding_window")
    if c["model_type"] == "qwen2" and c.get("layer_types") is not None:
        # Qwen2Config: sliding_window is None unless use_sliding_window; each layer's kind from layer_types
        if c["layer_types"][layer] != "sliding_attention":
            return None
        if not c.get("use_sliding_window") or c.get("sliding_window") is None:
            raise SystemExit("transformers refuses sliding_attention layers without a sliding window")
        return c["sliding_window"]
    if c["model_type"] == "qwen2" and c.get("use_sliding_window") and layer >= c.get("max_window_layers", 0):
        return c.get("sliding_window")
    return None


def llama_forward(sd, c, ids, _target, type_ids=None):
    d, hd = c["hidden_size"], llama_head_dim(c)
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    eps, act = c["rms_norm_eps"], ACT[c["hidden_act"]]
    S = len(ids)
    x = sd["embed_tokens.weight"][ids]
    # LlamaRotaryEmbedding: freqs = position * inv_freq, emb = cat(freqs, freqs), in
    # float32 whatever the model's dtype (autocast off, .float()); cos/sin then cast to it
    inv_freq = rope_inv_freq(c, S)
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(FLOAT), emb.sin().to(FLOAT)
    rec = Recorder()

    def opt(name):
        return sd.get(name)

    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        rec.add_hidden(x)
        h = rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q = split_heads(linear(h, sd[p + "self_attn.q_proj.weight"], opt(p + "self_attn.q_proj.bias")), nh, hd)
        k = split_heads(linear(h, sd[p + "self_attn.k_proj.weight"], opt(p + "self_attn.k_proj.bias")), nkv, hd)
        v = split_heads(linear(h, sd[p + "self_attn.v_proj.weight"], opt(p + "self_attn.v_proj.bias")), nkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: key/value head j serves query heads j*g .. j*g+g-1
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scaling = hd ** -0.5
        scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
        visible = causal_mask(S, S)
        window = llama_sliding_window(c, i)
        if window is not None:
            qpos = torch.arange(S)[:, None]
            kpos = torch.arange(S)[None, :]
            visible = visible & (qpos - kpos < window)
        probs, ctx = masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        x = x + linear(merge_heads(ctx), sd[p + "self_attn.o_proj.weight"], opt(p + "self_attn.o_proj.bias"))
        h = rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps)
        gate = act(linear(h, sd[p + "mlp.gate_proj.weight"], opt(p + "mlp.gate_proj.bias")))
        up = linear(h, sd[p + "mlp.up_proj.weight"], opt(p + "mlp.up_proj.bias"))
        x = x + linear(gate * up, sd[p + "mlp.down_proj.weight"], opt(p + "mlp.down_proj.bias"))
    rec.add_hidden(rms_norm(x, sd["norm.weight"], eps))
    return rec.tensors("self")


def llama_head(sd, c):
    out = {"model." + k: v for k, v in sd.items()}
    out["lm_head.weight"] = sd["embed_tokens.weight"].clone()
    return out


# ----------------------------------------------------------------------------
# BERT-like encoders: RoBERTa (modeling_roberta.py), ELECTRA (modeling_electra.py)

ROBERTA_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=66, vocab_size=50265),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=514, vocab_size=50265),
}
ELECTRA_SIZES = {
    "tiny": dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=64, vocab_size=30522),
    "base": dict(embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, vocab_size=30522),
}


def roberta_config(size, overrides):
    c = dict(model_type="roberta", architectures=["RobertaForMaskedLM"], hidden_act="gelu",
             layer_norm_eps=1e-5, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
             position_embedding_type="absolute")
    c.update(ROBERTA_SIZES[size])
    c.update(overrides)
    return c


def electra_config(size, overrides):
    c = dict(model_type="electra", architectures=["ElectraForPreTraining"], hidden_act="gelu",
             layer_norm_eps=1e-12, type_vocab_size=2, pad_token_id=0, position_embedding_type="absolute")
    c.update(ELECTRA_SIZES[size])
    c.update(overrides)
    return c


def bert_relative(c):
    return c.get("position_embedding_type", "absolute") in ("relative_key", "relative_key_query")


def relative_position_scores(c, q, k, distance_table):
    """BertSelfAttention / AlbertAttention: q [H, S, Dh], k [H, S, Dh] -> [H, S, S]."""
    S = q.shape[1]
    distance = torch.arange(S, dtype=torch.long).view(-1, 1) - torch.arange(S, dtype=torch.long).view(1, -1)
    positional = distance_table[distance + c["max_position_embeddings"] - 1]  # [S, S, Dh]
    out = torch.einsum("hld,lrd->hlr", q, positional)
    if c["position_embedding_type"] == "relative_key_query":
        out = out + torch.einsum("hrd,lrd->hlr", k, positional)
    return out


def bert_layers_init(sd, c, init, prefix="encoder.layer."):
    d, ff = c["hidden_size"], c["intermediate_size"]
    for i in range(c["num_hidden_layers"]):
        p = f"{prefix}{i}."
        put_linear(sd, p + "attention.self.query", init, d, d, gain=1.5)
        put_linear(sd, p + "attention.self.key", init, d, d, gain=1.5)
        put_linear(sd, p + "attention.self.value", init, d, d)
        if bert_relative(c):  # BertSelfAttention.distance_embedding
            sd[p + "attention.self.distance_embedding.weight"] = init.normal(
                2 * c["max_position_embeddings"] - 1, d // c["num_attention_heads"], std=0.3)
        put_linear(sd, p + "attention.output.dense", init, d, d)
        put_norm(sd, p + "attention.output.LayerNorm", init, d)
        put_linear(sd, p + "intermediate.dense", init, ff, d)
        put_linear(sd, p + "output.dense", init, d, ff)
        put_norm(sd, p + "output.LayerNorm", init, d)


def bert_layers_forward(sd, c, x, rec, prefix="encoder.layer."):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    eps, act = c["layer_norm_eps"], ACT[c["hidden_act"]]
    for i in range(c["num_hidden_layers"]):
        p = f"{prefix}{i}."
        rec.add_hidden(x)
        q = split_heads(linear(x, sd[p + "attention.self.query.weight"], sd[p + "attention.self.query.bias"]), nh, hd)
        k = split_heads(linear(x, sd[p + "attention.self.key.weight"], sd[p + "attention.self.key.bias"]), nh, hd)
        v = split_heads(linear(x, sd[p + "attention.self.value.weight"], sd[p + "attention.self.value.bias"]), nh, hd)
        scores = torch.matmul(q, k.transpose(-1, -2))
        if bert_relative(c):  # BertSelfAttention: added to q.k before the scale
            scores = scores + relative_position_scores(c, q, k, sd[p + "attention.self.distance_embedding.weight"])
        scores = scores / math.sqrt(hd)
        # is_decoder (BertLMHeadModel, RobertaForCausalLM): get_extended_attention_mask adds a causal mask
        visible = causal_mask(x.shape[0], x.shape[0]) if c.get("is_decoder") else None
        probs, ctx = masked_softmax_attention(scores, visible, v)
        rec.add(probs, q, k)
        a = linear(merge_heads(ctx), sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"])
        x = layer_norm(a + x, sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"], eps)
        h = act(linear(x, sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"]))
        h = linear(h, sd[p + "output.dense.weight"], sd[p + "output.dense.bias"])
        x = layer_norm(h + x, sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"], eps)
    rec.add_hidden(x)
    return x


def bert_embeddings_init(sd, c, init, width):
    sd["embeddings.word_embeddings.weight"] = init.normal(c["vocab_size"], width)
    sd["embeddings.position_embeddings.weight"] = init.normal(c["max_position_embeddings"], width, std=0.3)
    sd["embeddings.token_type_embeddings.weight"] = init.normal(c["type_vocab_size"], width, std=0.3)
    put_norm(sd, "embeddings.LayerNorm", init, width)


def bert_embeddings(sd, c, ids, positions, type_ids=None):
    types = torch.tensor(type_ids) if type_ids is not None else torch.zeros(len(ids), dtype=torch.long)
    x = sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.token_type_embeddings.weight"][types]
    if not bert_relative(c):  # BertEmbeddings adds positions only when "absolute"
        x = x + sd["embeddings.position_embeddings.weight"][positions]
    return layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], c["layer_norm_eps"])


def roberta_init(c, init):
    sd = {}
    bert_embeddings_init(sd, c, init, c["hidden_size"])
    bert_layers_init(sd, c, init)
    put_linear(sd, "pooler.dense", init, c["hidden_size"], c["hidden_size"])
    return sd


def roberta_forward(sd, c, ids, _target, type_ids=None):
    # create_position_ids_from_input_ids: padding_idx + 1 + running count of non-pad tokens
    ids_t = torch.tensor(ids)
    mask = (ids_t != c["pad_token_id"]).int()
    positions = (torch.cumsum(mask, dim=0) * mask).long() + c["pad_token_id"]
    rec = Recorder()
    bert_layers_forward(sd, c, bert_embeddings(sd, c, ids_t, positions, type_ids), rec)
    return rec.tensors("self")


def roberta_head(sd, c):
    out = {"roberta." + k: v for k, v in sd.items() if not k.startswith("pooler.")}  # ForMaskedLM has no pooler
    d = c["hidden_size"]
    out["lm_head.dense.weight"] = torch.zeros(d, d)
    out["lm_head.dense.bias"] = torch.zeros(d)
    out["lm_head.layer_norm.weight"] = torch.ones(d)
    out["lm_head.layer_norm.bias"] = torch.zeros(d)
    out["lm_head.bias"] = torch.zeros(c["vocab_size"])
    return out


def electra_init(c, init):
    sd = {}
    e, d = c["embedding_size"], c["hidden_size"]
    bert_embeddings_init(sd, c, init, e)
    if e != d:
        put_linear(sd, "embeddings_project", init, d, e)
    bert_layers_init(sd, c, init)
    return sd


def electra_forward(sd, c, ids, _target, type_ids=None):
    ids_t = torch.tensor(ids)
    x = bert_embeddings(sd, c, ids_t, torch.arange(len(ids)), type_ids)
    if "embeddings_project.weight" in sd:
        x = linear(x, sd["embeddings_project.weight"], sd["embeddings_project.bias"])
    rec = Recorder()
    bert_layers_forward(sd, c, x, rec)
    return rec.tensors("self")


def electra_head(sd, c):
    out = {"electra." + k: v for k, v in sd.items()}
    d = c["hidden_size"]
    out["discriminator_predictions.dense.weight"] = torch.zeros(d, d)
    out["discriminator_predictions.dense.bias"] = torch.zeros(d)
    out["discriminator_predictions.dense_prediction.weight"] = torch.zeros(1, d)
    out["discriminator_predictions.dense_prediction.bias"] = torch.zeros(1)
    return out


# ----------------------------------------------------------------------------
# DistilBERT (modeling_distilbert.py)

DISTILBERT_SIZES = {
    "tiny": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, vocab_size=30522),
    "base": dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072, max_position_embeddings=512, vocab_size=30522),
}


def distilbert_config(size, overrides):
    c = dict(model_type="distilbert", architectures=["DistilBertForMaskedLM"], activation="gelu",
             sinusoidal_pos_embds=False, pad_token_id=0, qa_dropout=0.1, seq_classif_dropout=0.2)
    c.update(DISTILBERT_SIZES[size])
    c.update(overrides)
    return c


def distilbert_init(c, init):
    d, ff = c["dim"], c["hidden_dim"]
    sd = {"embeddings.word_embeddings.weight": init.normal(c["vocab_size"], d),
          "embeddings.position_embeddings.weight": init.normal(c["max_position_embeddings"], d, std=0.3)}
    put_norm(sd, "embeddings.LayerNorm", init, d)
    for i in range(c["n_layers"]):
        p = f"transformer.layer.{i}."
        put_linear(sd, p + "attention.q_lin", init, d, d, gain=1.5)
        put_linear(sd, p + "attention.k_lin", init, d, d, gain=1.5)
        put_linear(sd, p + "attention.v_lin", init, d, d)
        put_linear(sd, p + "attention.out_lin", init, d, d)
        put_norm(sd, p + "sa_layer_norm", init, d)
        put_linear(sd, p + "ffn.lin1", init, ff, d)
        put_linear(sd, p + "ffn.lin2", init, d, ff)
        put_norm(sd, p + "output_layer_norm", init, d)
    return sd


def distilbert_forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["dim"], c["n_heads"]
    hd = d // nh
    act = ACT[c["activation"]]
    S = len(ids)
    x = sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.position_embeddings.weight"][torch.arange(S)]
    x = layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], 1e-12)
    rec = Recorder()
    for i in range(c["n_layers"]):
        p = f"transformer.layer.{i}."
        rec.add_hidden(x)
        q = split_heads(linear(x, sd[p + "attention.q_lin.weight"], sd[p + "attention.q_lin.bias"]), nh, hd)
        k = split_heads(linear(x, sd[p + "attention.k_lin.weight"], sd[p + "attention.k_lin.bias"]), nh, hd)
        v = split_heads(linear(x, sd[p + "attention.v_lin.weight"], sd[p + "attention.v_lin.bias"]), nh, hd)
        scores = torch.matmul(q / math.sqrt(hd), k.transpose(-1, -2))  # q scaled first, as DistilBERT does
        probs, ctx = masked_softmax_attention(scores, None, v)
        rec.add(probs, q, k)
        a = linear(merge_heads(ctx), sd[p + "attention.out_lin.weight"], sd[p + "attention.out_lin.bias"])
        x = layer_norm(a + x, sd[p + "sa_layer_norm.weight"], sd[p + "sa_layer_norm.bias"], 1e-12)
        h = linear(act(linear(x, sd[p + "ffn.lin1.weight"], sd[p + "ffn.lin1.bias"])),
                   sd[p + "ffn.lin2.weight"], sd[p + "ffn.lin2.bias"])
        x = layer_norm(h + x, sd[p + "output_layer_norm.weight"], sd[p + "output_layer_norm.bias"], 1e-12)
    rec.add_hidden(x)
    return rec.tensors("self")


def distilbert_head(sd, c):
    out = {"distilbert." + k: v for k, v in sd.items()}
    d = c["dim"]
    out["vocab_transform.weight"] = torch.zeros(d, d)
    out["vocab_transform.bias"] = torch.zeros(d)
    out["vocab_layer_norm.weight"] = torch.ones(d)
    out["vocab_layer_norm.bias"] = torch.zeros(d)
    out["vocab_projector.weight"] = sd["embeddings.word_embeddings.weight"].clone()
    out["vocab_projector.bias"] = torch.zeros(c["vocab_size"])
    return out


# ----------------------------------------------------------------------------
# ALBERT (modeling_albert.py): factorized embeddings, shared layer groups

ALBERT_SIZES = {
    "tiny": dict(embedding_size=16, hidden_size=32, num_hidden_layers=4, num_hidden_groups=2, inner_group_num=1,
                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=64, vocab_size=30522),
    "base": dict(embedding_size=128, hidden_size=768, num_hidden_layers=12, num_hidden_groups=1, inner_group_num=1,
                 num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, vocab_size=30000),
}


def albert_config(size, overrides):
    c = dict(model_type="albert", architectures=["AlbertForMaskedLM"], hidden_act="gelu_new",
             layer_norm_eps=1e-12, type_vocab_size=2, pad_token_id=0, bos_token_id=2, eos_token_id=3,
             position_embedding_type="absolute")
    c.update(ALBERT_SIZES[size])
    c.update(overrides)
    return c


def albert_init(c, init):
    e, d, ff = c["embedding_size"], c["hidden_size"], c["intermediate_size"]
    hd = d // c["num_attention_heads"]
    sd = {}
    bert_embeddings_init(sd, c, init, e)
    put_linear(sd, "encoder.embedding_hidden_mapping_in", init, d, e)
    for g in range(c["num_hidden_groups"]):
        for j in range(c["inner_group_num"]):
            p = f"encoder.albert_layer_groups.{g}.albert_layers.{j}."
            put_linear(sd, p + "attention.query", init, d, d, gain=1.5)
            put_linear(sd, p + "attention.key", init, d, d, gain=1.5)
            put_linear(sd, p + "attention.value", init, d, d)
            if bert_relative(c):  # AlbertAttention.distance_embedding
                sd[p + "attention.distance_embedding.weight"] = init.normal(
                    2 * c["max_position_embeddings"] - 1, hd, std=0.3)
            put_linear(sd, p + "attention.dense", init, d, d)
            put_norm(sd, p + "attention.LayerNorm", init, d)
            put_linear(sd, p + "ffn", init, ff, d)
            put_linear(sd, p + "ffn_output", init, d, ff)
            put_norm(sd, p + "full_layer_layer_norm", init, d)
    put_linear(sd, "pooler", init, d, d)
    return sd


def albert_forward(sd, c, ids, _target, type_ids=None):
    d, nh = c["hidden_size"], c["num_attention_heads"]
    hd = d // nh
    eps, act = c["layer_norm_eps"], ACT[c["hidden_act"]]
    ids_t = torch.tensor(ids)
    x = bert_embeddings(sd, c, ids_t, torch.arange(len(ids)), type_ids)
    x = linear(x, sd["encoder.embedding_hidden_mapping_in.weight"], sd["encoder.embedding_hidden_mapping_in.bias"])
    rec = Recorder()
    layers_per_group = c["num_hidden_layers"] // c["num_hidden_groups"]
    for i in range(c["num_hidden_layers"]):
        g = i // layers_per_group
        rec.add_hidden(x)
        for j in range(c["inner_group_num"]):
            p = f"encoder.albert_layer_groups.{g}.albert_layers.{j}."
            q = split_heads(linear(x, sd[p + "attention.query.weight"], sd[p + "attention.query.bias"]), nh, hd)
            k = split_heads(linear(x, sd[p + "attention.key.weight"], sd[p + "attention.key.bias"]), nh, hd)
            v = split_heads(linear(x, sd[p + "attention.value.weight"], sd[p + "attention.value.bias"]), nh, hd)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
            if bert_relative(c):  # AlbertAttention adds them after the scale (and the mask)
                scores = scores + relative_position_scores(c, q, k, sd[p + "attention.distance_embedding.weight"])
            probs, ctx = masked_softmax_attention(scores, None, v)
            rec.add(probs, q, k)
            a = linear(merge_heads(ctx), sd[p + "attention.dense.weight"], sd[p + "attention.dense.bias"])
            x = layer_norm(x + a, sd[p + "attention.LayerNorm.weight"], sd[p + "attention.LayerNorm.bias"], eps)
            h = linear(act(linear(x, sd[p + "ffn.weight"], sd[p + "ffn.bias"])),
                       sd[p + "ffn_output.weight"], sd[p + "ffn_output.bias"])
            x = layer_norm(h + x, sd[p + "full_layer_layer_norm.weight"], sd[p + "full_layer_layer_norm.bias"], eps)
    rec.add_hidden(x)
    return rec.tensors("self")


def albert_head(sd, c):
    out = {"albert." + k: v for k, v in sd.items()}
    e, d = c["embedding_size"], c["hidden_size"]
    out["predictions.dense.weight"] = torch.zeros(e, d)
    out["predictions.dense.bias"] = torch.zeros(e)
    out["predictions.LayerNorm.weight"] = torch.ones(e)
    out["predictions.LayerNorm.bias"] = torch.zeros(e)
    out["predictions.bias"] = torch.zeros(c["vocab_size"])
    out["predictions.decoder.weight"] = sd["embeddings.word_embeddings.weight"].clone()
    out["predictions.decoder.bias"] = torch.zeros(c["vocab_size"])
    return out


# ----------------------------------------------------------------------------
# BART and Marian (modeling_bart.py, modeling_marian.py): post-norm encoder-decoder

BART_SIZES = {
    "tiny": dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                 max_position_embeddings=64, vocab_size=50265),
    "base": dict(d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                 max_position_embeddings=1024, vocab_size=50265),
}


def bart_config(size, overrides, model_type="bart"):
    if model_type == "bart":
        c = dict(model_type="bart", architectures=["BartForConditionalGeneration"], activation_function="gelu",
                 scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                 is_encoder_decoder=True, tie_word_embeddings=True)
    else:
        c = dict(model_type="marian", architectures=["MarianMTModel"], activation_function="swish",
                 scale_embedding=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                 is_encoder_decoder=True, share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
    c.update(BART_SIZES[size])
    if model_type == "marian":
        c["vocab_size"] = 32128  # t5-small's SentencePiece tokenizer stands in for Marian's in the tests
        c["decoder_vocab_size"] = c["vocab_size"]
        c["max_position_embeddings"] = 64 if size == "tiny" else 512
    c.update(overrides)
    return c


def bart_attention_init(sd, p, init, d):
    put_linear(sd, p + "k_proj", init, d, d, gain=1.5)
    put_linear(sd, p + "v_proj", init, d, d)
    put_linear(sd, p + "q_proj", init, d, d, gain=1.5)
    put_linear(sd, p + "out_proj", init, d, d)


def bart_init(c, init):
    marian = c["model_type"] == "marian"
    d = c["d_model"]
    sd = {"shared.weight": init.normal(c["vocab_size"], d, std=1.0 / math.sqrt(d) if marian or c["scale_embedding"] else 1.0)}
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    sd["decoder.embed_tokens.weight"] = sd["shared.weight"]
    for stack in ("encoder", "decoder"):
        n_pos = c["max_position_embeddings"]
        if marian:  # sinusoidal: stored in checkpoints, but fixed
            sd[f"{stack}.embed_positions.weight"] = marian_sinusoidal(n_pos, d)
        else:
            sd[f"{stack}.embed_positions.weight"] = init.normal(n_pos + 2, d, std=0.3)
            put_norm(sd, f"{stack}.layernorm_embedding", init, d)
        for i in range(c[f"{stack}_layers"]):
            p = f"{stack}.layers.{i}."
            bart_attention_init(sd, p + "self_attn.", init, d)
            put_norm(sd, p + "self_attn_layer_norm", init, d)
            if stack == "decoder":
                bart_attention_init(sd, p + "encoder_attn.", init, d)
                put_norm(sd, p + "encoder_attn_layer_norm", init, d)
            ff = c[f"{stack}_ffn_dim"]
            put_linear(sd, p + "fc1", init, ff, d)
            put_linear(sd, p + "fc2", init, d, ff)
            put_norm(sd, p + "final_layer_norm", init, d)
    return sd


def marian_sinusoidal(n_pos, dim):
    # MarianSinusoidalPositionalEmbedding._init_weight: sin in the first half, cos in the second
    import numpy as np
    position_enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = torch.empty(n_pos, dim)
    sentinel = dim // 2 if dim % 2 == 0 else (dim // 2) + 1
    out[:, 0:sentinel] = torch.FloatTensor(np.sin(position_enc[:, 0::2]))
    out[:, sentinel:] = torch.FloatTensor(np.cos(position_enc[:, 1::2]))
    return out


def bart_attention(sd, p, c, x, kv, visible, n_heads, rec):
    d = c["d_model"]
    hd = d // n_heads
    scaling = hd ** -0.5
    q = split_heads(linear(x, sd[p + "q_proj.weight"], sd[p + "q_proj.bias"]), n_heads, hd)
    k = split_heads(linear(kv, sd[p + "k_proj.weight"], sd[p + "k_proj.bias"]), n_heads, hd)
    v = split_heads(linear(kv, sd[p + "v_proj.weight"], sd[p + "v_proj.bias"]), n_heads, hd)
    scores = torch.matmul(q * scaling, k.transpose(-1, -2))
    probs, ctx = masked_softmax_attention(scores, visible, v)
    rec.add(probs, q, k)
    return linear(merge_heads(ctx), sd[p + "out_proj.weight"], sd[p + "out_proj.bias"])


def bart_forward(sd, c, ids, target, type_ids=None):
    marian = c["model_type"] == "marian"
    d = c["d_model"]
    act = ACT[c["activation_function"]]
    embed_scale = math.sqrt(d) if c["scale_embedding"] else 1.0
    eps = 1e-5
    out = {}

    def embed(stack, tokens):
        n = len(tokens)
        x = sd[f"{stack}.embed_tokens.weight"][tokens] * embed_scale
        if marian:
            x = x + marian_sinusoidal(c["max_position_embeddings"], d)[torch.arange(n)]
        else:  # BartLearnedPositionalEmbedding: offset 2
            x = x + sd[f"{stack}.embed_positions.weight"][torch.arange(n) + 2]
            x = layer_norm(x, sd[f"{stack}.layernorm_embedding.weight"], sd[f"{stack}.layernorm_embedding.bias"], eps)
        return x

    def ffn(p, x):
        h = linear(act(linear(x, sd[p + "fc1.weight"], sd[p + "fc1.bias"])), sd[p + "fc2.weight"], sd[p + "fc2.bias"])
        return layer_norm(x + h, sd[p + "final_layer_norm.weight"], sd[p + "final_layer_norm.bias"], eps)

    enc_rec, dec_rec, cross_rec = Recorder(), Recorder(), Recorder()
    x = embed("encoder", ids)
    for i in range(c["encoder_layers"]):
        p = f"encoder.layers.{i}."
        enc_rec.add_hidden(x)
        a = bart_attention(sd, p + "self_attn.", c, x, x, None, c["encoder_attention_heads"], enc_rec)
        x = layer_norm(x + a, sd[p + "self_attn_layer_norm.weight"], sd[p + "self_attn_layer_norm.bias"], eps)
        x = ffn(p, x)
    enc_rec.add_hidden(x)
    memory = x
    y = embed("decoder", target)
    visible = causal_mask(len(target), len(target))
    for i in range(c["decoder_layers"]):
        p = f"decoder.layers.{i}."
        dec_rec.add_hidden(y)
        a = bart_attention(sd, p + "self_attn.", c, y, y, visible, c["decoder_attention_heads"], dec_rec)
        y = layer_norm(y + a, sd[p + "self_attn_layer_norm.weight"], sd[p + "self_attn_layer_norm.bias"], eps)
        a = bart_attention(sd, p + "encoder_attn.", c, y, memory, None, c["decoder_attention_heads"], cross_rec)
        y = layer_norm(y + a, sd[p + "encoder_attn_layer_norm.weight"], sd[p + "encoder_attn_layer_norm.bias"], eps)
        y = ffn(p, y)
    dec_rec.add_hidden(y)
    out.update(enc_rec.tensors("encoder"))
    out.update(dec_rec.tensors("decoder"))
    out.update(cross_rec.tensors("cross"))
    return out


def bart_head(sd, c):
    out = {"model." + k: v for k, v in sd.items()}
    out["final_logits_bias"] = torch.zeros(1, c["vocab_size"])
    out["lm_head.weight"] = sd["shared.weight"].clone()
    return out


# ----------------------------------------------------------------------------
# T5 (modeling_t5.py): relative position buckets, RMS norm, no 1/sqrt(d) scaling

T5_SIZES = {
    "tiny": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128, vocab_size=32128),
    "base": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128, vocab_size=32128),
}


def t5_config(size, overrides):
    c = dict(model_type="t5", architectures=["T5ForConditionalGeneration"], feed_forward_proj="relu",
             layer_norm_epsilon=1e-6, is_encoder_decoder=True, tie_word_embeddings=True, pad_token_id=0,
             eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.1, initializer_factor=1.0)
    c.update(T5_SIZES[size])
    c.update(overrides)
    return c


def t5_gated(c):
    return c.get("is_gated_act", c["feed_forward_proj"].startswith("gated-"))


def t5_dense_act_fn(c):
    # T5Config: the part after "gated-", gelu_new for "gated-gelu"; config.json's dense_act_fn wins
    derived = "gelu_new" if c["feed_forward_proj"] == "gated-gelu" else c["feed_forward_proj"].split("-")[-1]
    return c.get("dense_act_fn", derived)


def t5_init(c, init):
    d, inner, nh, ff = c["d_model"], c["d_kv"] * c["num_heads"], c["num_heads"], c["d_ff"]
    sd = {"shared.weight": init.normal(c["vocab_size"], d)}
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    sd["decoder.embed_tokens.weight"] = sd["shared.weight"]
    for stack, n_layers in (("encoder", c["num_layers"]), ("decoder", c["num_decoder_layers"] or c["num_layers"])):
        for i in range(n_layers):
            p = f"{stack}.block.{i}.layer."
            attns = ["0.SelfAttention"] + (["1.EncDecAttention"] if stack == "decoder" else [])
            for a in attns:
                # T5 has no scaling: keep q.k moderate so the softmax is not one-hot
                put_linear(sd, f"{p}{a}.q", init, inner, d, bias=False, gain=0.5)
                put_linear(sd, f"{p}{a}.k", init, inner, d, bias=False, gain=0.5)
                put_linear(sd, f"{p}{a}.v", init, inner, d, bias=False)
                put_linear(sd, f"{p}{a}.o", init, d, inner, bias=False)
                sd[f"{p}{a.split('.')[0]}.layer_norm.weight"] = 1.0 + init.normal(d, std=0.1)
            if i == 0:
                sd[f"{p}0.SelfAttention.relative_attention_bias.weight"] = init.normal(
                    c["relative_attention_num_buckets"], nh)
            f = "2" if stack == "decoder" else "1"
            if t5_gated(c):
                put_linear(sd, f"{p}{f}.DenseReluDense.wi_0", init, ff, d, bias=False)
                put_linear(sd, f"{p}{f}.DenseReluDense.wi_1", init, ff, d, bias=False)
            else:
                put_linear(sd, f"{p}{f}.DenseReluDense.wi", init, ff, d, bias=False)
            put_linear(sd, f"{p}{f}.DenseReluDense.wo", init, d, ff, bias=False)
            sd[f"{p}{f}.layer_norm.weight"] = 1.0 + init.normal(d, std=0.1)
        sd[f"{stack}.final_layer_norm.weight"] = 1.0 + init.normal(d, std=0.1)
    return sd


def t5_relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)).to(torch.long)
    relative_position_if_large = torch.min(relative_position_if_large,
                                           torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def t5_position_bias(sd, c, stack, q_len, k_len):
    bidirectional = stack == "encoder"
    context = torch.arange(q_len, dtype=torch.long)[:, None]
    memory = torch.arange(k_len, dtype=torch.long)[None, :]
    buckets = t5_relative_position_bucket(memory - context, bidirectional, c["relative_attention_num_buckets"],
                                          c["relative_attention_max_distance"])
    table = sd[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    return table[buckets].permute(2, 0, 1)  # [H, Q, K]


def t5_attention(sd, p, c, x, kv, bias, visible, rec):
    nh, dk = c["num_heads"], c["d_kv"]
    q = split_heads(linear(x, sd[p + "q.weight"]), nh, dk)
    k = split_heads(linear(kv, sd[p + "k.weight"]), nh, dk)
    v = split_heads(linear(kv, sd[p + "v.weight"]), nh, dk)
    scores = torch.matmul(q, k.transpose(-1, -2))
    if bias is not None:
        scores = scores + bias
    probs, ctx = masked_softmax_attention(scores, visible, v)
    rec.add(probs, q, k)
    return linear(merge_heads(ctx), sd[p + "o.weight"])


def t5_forward(sd, c, ids, target, type_ids=None):
    eps = c["layer_norm_epsilon"]
    act = ACT[t5_dense_act_fn(c)]

    def ffn(p, x):
        h = rms_norm(x, sd[p + "layer_norm.weight"], eps)
        if t5_gated(c):
            h = act(linear(h, sd[p + "DenseReluDense.wi_0.weight"])) * linear(h, sd[p + "DenseReluDense.wi_1.weight"])
        else:
            h = act(linear(h, sd[p + "DenseReluDense.wi.weight"]))
        return x + linear(h, sd[p + "DenseReluDense.wo.weight"])

    enc_rec, dec_rec, cross_rec = Recorder(), Recorder(), Recorder()
    S, T = len(ids), len(target)
    x = sd["encoder.embed_tokens.weight"][ids]
    bias = t5_position_bias(sd, c, "encoder", S, S)
    for i in range(c["num_layers"]):
        p = f"encoder.block.{i}.layer."
        enc_rec.add_hidden(x)
        h = rms_norm(x, sd[p + "0.layer_norm.weight"], eps)
        x = x + t5_attention(sd, p + "0.SelfAttention.", c, h, h, bias, None, enc_rec)
        x = ffn(p + "1.", x)
    memory = rms_norm(x, sd["encoder.final_layer_norm.weight"], eps)
    enc_rec.add_hidden(memory)
    y = sd["decoder.embed_tokens.weight"][target]
    bias = t5_position_bias(sd, c, "decoder", T, T)
    visible = causal_mask(T, T)
    for i in range(c["num_decoder_layers"] or c["num_layers"]):
        p = f"decoder.block.{i}.layer."
        dec_rec.add_hidden(y)
        h = rms_norm(y, sd[p + "0.layer_norm.weight"], eps)
        y = y + t5_attention(sd, p + "0.SelfAttention.", c, h, h, bias, visible, dec_rec)
        h = rms_norm(y, sd[p + "1.layer_norm.weight"], eps)
        y = y + t5_attention(sd, p + "1.EncDecAttention.", c, h, memory, None, None, cross_rec)
        y = ffn(p + "2.", y)
    dec_rec.add_hidden(rms_norm(y, sd["decoder.final_layer_norm.weight"], eps))
    out = {}
    out.update(enc_rec.tensors("encoder"))
    out.update(dec_rec.tensors("decoder"))
    out.update(cross_rec.tensors("cross"))
    r = 2100  # buckets for every relative position -R..R, to check the C++ float arithmetic exactly
    rel = torch.arange(-r, r + 1, dtype=torch.long)
    out["t5_buckets.bidirectional"] = t5_relative_position_bucket(
        rel, True, c["relative_attention_num_buckets"], c["relative_attention_max_distance"])
    out["t5_buckets.causal"] = t5_relative_position_bucket(
        rel, False, c["relative_attention_num_buckets"], c["relative_attention_max_distance"])
    return out


def t5_head(sd, c):
    out = dict(sd)
    if not c.get("tie_word_embeddings", True):
        out["lm_head.weight"] = torch.zeros(c["vocab_size"], c["d_model"])
    else:
        out["lm_head.weight"] = sd["shared.weight"].clone()
    return out


# ----------------------------------------------------------------------------

ARCHS = {
    "gpt2": (gpt2_config, gpt2_init, gpt2_forward, gpt2_head),
    "llama": (lambda s, o: llama_config(s, o, "llama"), llama_init, llama_forward, llama_head),
    "mistral": (lambda s, o: llama_config(s, o, "mistral"), llama_init, llama_forward, llama_head),
    "qwen2": (lambda s, o: llama_config(s, o, "qwen2"), llama_init, llama_forward, llama_head),
    "roberta": (roberta_config, roberta_init, roberta_forward, roberta_head),
    "electra": (electra_config, electra_init, electra_forward, electra_head),
    "distilbert": (distilbert_config, distilbert_init, distilbert_forward, distilbert_head),
    "albert": (albert_config, albert_init, albert_forward, albert_head),
    "bart": (lambda s, o: bart_config(s, o, "bart"), bart_init, bart_forward, bart_head),
    "marian": (lambda s, o: bart_config(s, o, "marian"), bart_init, bart_forward, bart_head),
    "t5": (t5_config, t5_init, t5_forward, t5_head),
}


# ----------------------------------------------------------------------------
# BERT (modeling_bert.py): the BERT-style layers above, absolute or relative positions

BERT_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=64, vocab_size=30522),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=512, vocab_size=30522),
}


def bert_config(size, overrides):
    c = dict(model_type="bert", architectures=["BertForMaskedLM"], hidden_act="gelu", layer_norm_eps=1e-12,
             type_vocab_size=2, pad_token_id=0, position_embedding_type="absolute")
    c.update(BERT_SIZES[size])
    c.update(overrides)
    return c


def bert_init(c, init):
    sd = {}
    bert_embeddings_init(sd, c, init, c["hidden_size"])
    bert_layers_init(sd, c, init)
    return sd


def bert_forward(sd, c, ids, _target, type_ids=None):
    ids_t = torch.tensor(ids)
    rec = Recorder()
    bert_layers_forward(sd, c, bert_embeddings(sd, c, ids_t, torch.arange(len(ids)), type_ids), rec)
    return rec.tensors("self")


def bert_head(sd, c):
    # BertLMHeadModel / BertForMaskedLM: "bert." prefix plus the cls head, which loaders ignore
    out = {"bert." + k: v for k, v in sd.items()}
    d = c["hidden_size"]
    out["cls.predictions.transform.dense.weight"] = torch.zeros(d, d)
    out["cls.predictions.transform.dense.bias"] = torch.zeros(d)
    out["cls.predictions.bias"] = torch.zeros(c["vocab_size"])
    return out


ARCHS["bert"] = (bert_config, bert_init, bert_forward, bert_head)

# Architectures in files of their own (tools/reference/ref_<arch>.py) import this
# module as arch_reference (the same module when it runs as a script) and list
# their entries in their own ARCHS.
sys.modules.setdefault("arch_reference", sys.modules[__name__])
for _module in ("ref_gpt_neox", "ref_opt", "ref_bloom", "ref_falcon", "ref_xlm_roberta", "ref_gemma",
                "ref_phi", "ref_mpnet", "ref_deberta_v2"):
    ARCHS.update(importlib.import_module(_module).ARCHS)


def parse_ids(text):
    if text.startswith("@"):
        with open(text[1:]) as f:
            return [int(t) for t in json.load(f)]
    return [int(t) for t in text.split(",") if t.strip()]


def forward_float64(forward, sd, c, ids, target, type_ids):
    """The same forward on the same (float32) weights, computed in float64."""
    global FLOAT
    FLOAT = torch.float64
    try:
        wide = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
        return forward(wide, c, ids, target, type_ids)
    finally:
        FLOAT = torch.float32


def generate(arch, out, ids, target=None, size="tiny", seed=0, head=False, overrides=None, type_ids=None,
             omit=(), float64_check=False, poison=None):
    """Writes config.json, model.safetensors and reference.safetensors to out.

    omit: keys config.json leaves out; the reference runs with their values in
    the config (set them to the config class's defaults to test those).
    float64_check adds "<tensor>.float64": the forward in float64, rounded to float32.
    poison: {weight name: [index, value]} sets single weights (NaN, inf, 3e38)
    before the forward, whose outputs then hold what torch makes of them."""
    make_config, init_weights, forward, head_layout = ARCHS[arch]
    c = make_config(size, overrides or {})
    if c.get("is_encoder_decoder") and target is None:
        sys.exit("--target-ids is required for encoder-decoder models")
    sd = init_weights(c, Init(seed))
    for name, (index, value) in (poison or {}).items():
        sd[name][tuple(index)] = float(value)
    outputs = forward(sd, c, ids, target, type_ids)
    if float64_check:
        exact = forward_float64(forward, sd, c, ids, target, type_ids)
        outputs.update({f"{name}.float64": t.float() for name, t in exact.items()})

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({k: v for k, v in c.items() if k not in omit}, f, indent=2)
    weights = head_layout(sd, c) if head else base_layout(sd, c)
    write_safetensors(os.path.join(out, "model.safetensors"), weights, {"format": "pt"})
    ref = {"input_ids": torch.tensor(ids, dtype=torch.int64)}
    if target is not None:
        ref["decoder_input_ids"] = torch.tensor(target, dtype=torch.int64)
    ref.update(outputs)
    write_safetensors(os.path.join(out, "reference.safetensors"), ref)


def base_layout(sd, c):
    # save_pretrained with safetensors keeps one name per tied tensor: encoder-decoder
    # models keep "shared.weight" and drop the embed_tokens aliases
    if c.get("is_encoder_decoder"):
        return {k: v for k, v in sd.items() if not k.endswith("embed_tokens.weight")}
    return dict(sd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", help="a JSON list of jobs {arch, out, ids, target_ids, type_ids, size, seed, "
                    "head, set, float64_check}, run in one process (one torch start-up for many fixtures)")
    ap.add_argument("--arch", choices=sorted(ARCHS))
    ap.add_argument("--size", default="tiny", choices=["tiny", "base"])
    ap.add_argument("--ids", help="comma-separated token ids, or @file.json")
    ap.add_argument("--target-ids", help="decoder ids for encoder-decoder models")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head", action="store_true", help="write the head-model layout and prefix")
    ap.add_argument("--set", action="append", default=[], help="config override key=json")
    args = ap.parse_args()
    if args.jobs:
        with open(args.jobs) as f:
            for job in json.load(f):
                generate(job["arch"], job["out"], job["ids"], job.get("target_ids"), job.get("size", "tiny"),
                         job.get("seed", 0), job.get("head", False), job.get("set", {}), job.get("type_ids"),
                         job.get("omit", ()), job.get("float64_check", False))
        return
    if not (args.arch and args.ids and args.out):
        ap.error("--arch, --ids and --out are required without --jobs")
    overrides = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    generate(args.arch, args.out, parse_ids(args.ids), parse_ids(args.target_ids) if args.target_ids else None,
             args.size, args.seed, args.head, overrides)


if __name__ == "__main__":
    main()
