"""Reads an attnviz page's embedded payload back into numpy, following the
format docs/views.md describes (independently of the C++ writer): the JSON in
<script class="attnviz-data">, each stream base64 + zlib, attention as
[heads][queries] float32 row maxima then [heads][queries][keys] uint8 levels."""

import base64
import json
import re
import zlib

import numpy as np

_DATA = re.compile(r'<script type="application/json" class="attnviz-data">(.*?)</script>', re.S)


def payloads(html):
    """Every payload on the page (a notebook may hold several views)."""
    return [json.loads(match) for match in _DATA.findall(html)]


def block_attention(payload, block_index):
    """{layer: (values [heads, queries, keys], row_max [heads, queries])} for the
    block's included layers, heads in the block's "heads" order, as the page
    decodes them. Each row's step is row_max / 255."""
    block = payload["meta"]["blocks"][block_index]
    n_heads, n_queries, n_keys = len(block["heads"]), block["queries"], block["keys"]
    out = {}
    for layer, stream in zip(block["layers"], block["probs"]):
        raw = zlib.decompress(base64.b64decode(payload["streams"][stream]))
        row_max = np.frombuffer(raw, dtype="<f4", count=n_heads * n_queries).reshape(n_heads, n_queries)
        levels = np.frombuffer(raw, dtype=np.uint8, offset=n_heads * n_queries * 4).reshape(
            n_heads, n_queries, n_keys)
        out[layer] = (levels.astype(np.float64) * (row_max[:, :, None] / 255.0), row_max)
    return out
