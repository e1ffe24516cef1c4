"""Attention from any source (torch or numpy, as transformers gives it) turned
into the native trace, with shape errors that name the user's argument."""

import numpy as np

from . import _native


def _as_numpy(value, name):
    """A torch tensor or array-like as a numpy array, without importing torch."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    try:
        return np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{name}: cannot read it as an array ({error})") from None


def _float_layer(array, name):
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must hold floating-point probabilities, not {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def stack_layers(attention, name):
    """(per-layer [heads, queries, keys] float32 arrays, the shape [layers, heads, queries, keys]) from
    - a tuple or list of per-layer [batch=1, heads, q, k] (transformers' output_attentions),
      or of [heads, q, k];
    - one stacked [layers, heads, q, k] array, or [layers, batch=1, heads, q, k].
    The layers are not stacked here: the native trace copies each into place once."""
    if isinstance(attention, (tuple, list)):
        if len(attention) == 0:
            raise ValueError(f"{name} is empty: expected one [batch, heads, queries, keys] tensor per layer")
        layers = []
        for index, layer in enumerate(attention):
            array = _as_numpy(layer, f"{name}[{index}]")
            if array.ndim == 4:
                if array.shape[0] != 1:
                    raise ValueError(
                        f"{name}[{index}] has shape {tuple(array.shape)}: batch {array.shape[0]}, "
                        "but only batch 1 can be shown (take one example: attention[layer][i:i+1])")
                array = array[0]
            elif array.ndim != 3:
                raise ValueError(
                    f"{name}[{index}] has shape {tuple(array.shape)}: expected [batch=1, heads, queries, keys] "
                    "(did the model run with output_attentions=True?)")
            if layers and array.shape != layers[0].shape:
                raise ValueError(
                    f"{name}[{index}] is [heads, queries, keys] = {tuple(array.shape)} but {name}[0] is "
                    f"{tuple(layers[0].shape)}: every layer must have the same shape")
            layers.append(_float_layer(array, f"{name}[{index}]"))
    else:
        stacked = _as_numpy(attention, name)
        if stacked.ndim == 5:
            if stacked.shape[1] != 1:
                raise ValueError(
                    f"{name} has shape {tuple(stacked.shape)}: batch {stacked.shape[1]}, but only batch 1 "
                    "can be shown")
            stacked = stacked[:, 0]
        if stacked.ndim != 4:
            raise ValueError(
                f"{name} has shape {tuple(stacked.shape)}: expected a tuple of per-layer "
                "[batch=1, heads, queries, keys] tensors or one [layers, heads, queries, keys] array")
        layers = [_float_layer(stacked[layer], name) for layer in range(stacked.shape[0])]
    shape = (len(layers),) + tuple(layers[0].shape) if layers else (0,)
    if 0 in shape:
        raise ValueError(f"{name} has an empty shape {shape}")
    return layers, shape


def token_list(tokens, name):
    if tokens is None:
        return None
    if isinstance(tokens, str):
        raise ValueError(f"{name} must be a list of tokens, not one string")
    return [str(token) for token in tokens]


def bertviz_display(token):
    """bertviz's format_special_chars: what prettify_tokens shows."""
    return token.replace("Ġ", " ").replace("▁", " ").replace("</w>", "")


def _check_tokens(shape, name, tokens, tokens_name, axis):
    axis_name = "queries" if axis == 2 else "keys"
    if shape[axis] != len(tokens):
        raise ValueError(
            f"{name} is [layers, heads, queries, keys] = {shape}: {shape[axis]} {axis_name}, "
            f"but {tokens_name} has {len(tokens)} tokens")


def _check_index_list(values, name, count, what):
    if values is None:
        return []
    values = [int(v) for v in values]
    for value in values:
        if value < 0 or value >= count:
            raise ValueError(f"{name}: {what} {value} is out of range (the attention has {count} {what}s)")
    return values


def build_trace(attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True,
                encoder_attention=None, decoder_attention=None, cross_attention=None,
                encoder_tokens=None, decoder_tokens=None, model_id="attention"):
    """The native trace for bertviz's arguments; blocks as attnviz names them
    ("self", or "encoder", "decoder", "cross")."""
    def sequence(name, token_strings, b_start=-1):
        displays = [bertviz_display(t) for t in token_strings] if prettify_tokens else list(token_strings)
        return (name, token_strings, displays, b_start, [])

    if attention is not None:
        if any(a is not None for a in (encoder_attention, decoder_attention, cross_attention,
                                       encoder_tokens, decoder_tokens)):
            raise ValueError("attention is for self-attention models: give either attention and tokens, or the "
                             "encoder_/decoder_/cross_ arguments, not both")
        if tokens is None:
            raise ValueError("tokens is required with attention")
        layers, shape = stack_layers(attention, "attention")
        tokens = token_list(tokens, "tokens")
        _check_tokens(shape, "attention", tokens, "tokens", 2)
        _check_tokens(shape, "attention", tokens, "tokens", 3)
        b_start = -1
        if sentence_b_start is not None:
            b_start = int(sentence_b_start)
            if not 0 < b_start < len(tokens):
                raise ValueError(f"sentence_b_start {b_start} must be between 1 and {len(tokens) - 1} "
                                 f"(tokens has {len(tokens)})")
        return _native.trace_from_arrays([sequence("input", tokens, b_start)], [("self", 0, 0, layers)],
                                         model_id)

    if encoder_attention is None and decoder_attention is None and cross_attention is None:
        raise ValueError("no attention given: pass attention and tokens, or encoder_attention, "
                         "decoder_attention or cross_attention with encoder_tokens and decoder_tokens")
    if sentence_b_start is not None:
        raise ValueError("sentence_b_start is for self-attention models (attention=...)")
    encoder_tokens = token_list(encoder_tokens, "encoder_tokens")
    decoder_tokens = token_list(decoder_tokens, "decoder_tokens")
    sequences, blocks = [], []
    index = {}

    def need(tokens_value, tokens_name, argument):
        if tokens_value is None:
            raise ValueError(f"{tokens_name} is required with {argument}")
        if tokens_name not in index:
            index[tokens_name] = len(sequences)
            sequences.append(sequence(tokens_name.replace("_tokens", ""), tokens_value))
        return index[tokens_name]

    for argument, value, query_tokens, key_tokens in (
            ("encoder_attention", encoder_attention, "encoder_tokens", "encoder_tokens"),
            ("decoder_attention", decoder_attention, "decoder_tokens", "decoder_tokens"),
            ("cross_attention", cross_attention, "decoder_tokens", "encoder_tokens")):
        if value is None:
            continue
        tokens_of = {"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens}
        query = need(tokens_of[query_tokens], query_tokens, argument)
        key = need(tokens_of[key_tokens], key_tokens, argument)
        layers, shape = stack_layers(value, argument)
        _check_tokens(shape, argument, tokens_of[query_tokens], query_tokens, 2)
        _check_tokens(shape, argument, tokens_of[key_tokens], key_tokens, 3)
        blocks.append((argument.replace("_attention", ""), query, key, layers))
    return _native.trace_from_arrays(sequences, blocks, model_id)


def view_indices(native_trace, include_layers, include_heads):
    """include_layers / include_heads checked against the largest block."""
    shapes = [block["shape"] for block in native_trace.blocks]
    layers = _check_index_list(include_layers, "include_layers", max(s[0] for s in shapes), "layer")
    heads = _check_index_list(include_heads, "include_heads", max(s[1] for s in shapes), "head")
    return layers, heads
