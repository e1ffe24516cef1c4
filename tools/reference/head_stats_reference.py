#!/usr/bin/python3
"""Per-head attention statistics in plain numpy: the independent reference for
attnviz's src/analysis/head_stats.cpp (docs/analysis.md, "Head statistics").

Following Clark et al. 2019, "What Does BERT Look At?" (their
General_Analysis.ipynb and head_distances.py, clarkkev/attention-analysis),
with the changes docs/analysis.md states: every statistic is a mean over query
rows (token-weighted over a corpus), entropy uses 0 log 0 = 0 instead of
smoothing, [CLS]/[SEP]/punctuation come from the tokens' special flags,
segments and display text rather than their spelling, and the Jensen-Shannon
distance is the square root of the mean divergence.

Written from the definitions, not from attnviz's C++: it works on whole numpy
arrays (masks and sums) where the C++ loops over rows.
"""

import math
import unicodedata

import numpy as np

STATS = ("entropy", "distance", "cls", "sep", "punct", "self", "prev", "next", "top1")
SCALE = 2.0**24


def is_punctuation(display):
    chars = [c for c in display if not (c.isspace() or c == "\u2581" or unicodedata.category(c) in ("Zs", "Zl", "Zp"))]
    return bool(chars) and all(unicodedata.category(c).startswith("P") for c in chars)


def key_roles(special, segment, display, causal):
    """(cls position or None, sep positions, punct positions) of a key sequence."""
    n = len(special)
    cls = 0 if n > 0 and (special[0] or causal) else None
    seps = []
    i = 0
    while i < n:
        if not special[i] or i == cls:
            i += 1
            continue
        end = i
        while end < n and special[end] and end != cls:
            end += 1
        before = [k for k in range(i) if not special[k]]
        if end == n or (before and segment[end] != segment[before[-1]]):
            seps.extend(range(i, end))
        i = end
    puncts = [k for k in range(n) if not special[k] and is_punctuation(display[k])]
    return cls, seps, puncts


def example_sums(attn, same_sequence, roles, causal):
    """One example's per-head sums and defined-row counts: dicts of [L, H] arrays
    (float64 sums, not yet in fixed point) and the uniform-entropy sum."""
    attn = np.asarray(attn, dtype=np.float64)
    L, H, Q, K = attn.shape
    cls, seps, puncts = roles
    safe = np.where(attn > 0, attn, 1.0)
    sums, rows = {}, {}
    sums["entropy"] = -(attn * np.log(safe)).sum(-1).sum(-1)
    rows["entropy"] = Q
    sums["top1"] = attn.max(-1).sum(-1)
    rows["top1"] = Q
    punct_mask = np.zeros(K)
    punct_mask[puncts] = 1
    sums["punct"] = (attn * punct_mask).sum(-1).sum(-1)
    rows["punct"] = Q
    if cls is not None:
        sums["cls"] = attn[..., cls].sum(-1)
        rows["cls"] = Q
    else:
        sums["cls"], rows["cls"] = np.zeros((L, H)), 0
    if seps:
        sep_mask = np.zeros(K)
        sep_mask[seps] = 1
        sums["sep"] = (attn * sep_mask).sum(-1).sum(-1)
        rows["sep"] = Q
    else:
        sums["sep"], rows["sep"] = np.zeros((L, H)), 0
    if same_sequence:
        positions = np.arange(Q)[:, None] - np.arange(K)[None, :]
        sums["distance"] = (attn * np.abs(positions)).sum(-1).sum(-1)
        rows["distance"] = Q
        sums["self"] = (attn * np.eye(Q, K)).sum(-1).sum(-1)
        rows["self"] = Q
        sums["prev"] = (attn * np.eye(Q, K, -1)).sum(-1).sum(-1)  # key = query - 1
        rows["prev"] = max(Q - 1, 0)
        sums["next"] = (attn * np.eye(Q, K, 1)).sum(-1).sum(-1)  # key = query + 1
        rows["next"] = max(Q - 1, 0)
    else:
        for name in ("distance", "self", "prev", "next"):
            sums[name], rows[name] = np.zeros((L, H)), 0
    visible = np.minimum(np.arange(Q) + 1, K) if causal else np.full(Q, K)
    uniform = float(np.log(visible).sum())
    return sums, rows, uniform


def to_fixed(sums):
    return {k: np.rint(v * SCALE).astype(np.int64) for k, v in sums.items()}


def means(fixed_sums, rows):
    """Corpus means from summed fixed-point sums and row counts (NaN: undefined)."""
    out = {}
    for k in STATS:
        r = rows[k]
        out[k] = np.full(fixed_sums[k].shape, np.nan) if np.all(r == 0) else fixed_sums[k] / SCALE / r
    return out


def js_divergence_sums(attn):
    """[N, N] sum over query rows of the Jensen-Shannon divergence (nats) between
    heads i and j (N = L * H), like head_distances.py without its smoothing."""
    attn = np.asarray(attn, dtype=np.float64)
    L, H, Q, K = attn.shape
    flat = attn.reshape(L * H, Q, K)
    n = L * H
    out = np.zeros((n, n))
    for a in range(n):
        p = flat[a][None]
        m = (p + flat) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p = np.where(p > 0, p * np.log(p / np.where(m > 0, m, 1)), 0.0)
            kl_q = np.where(flat > 0, flat * np.log(flat / np.where(m > 0, m, 1)), 0.0)
        out[a] = (0.5 * (kl_p + kl_q)).sum(-1).sum(-1)
    np.fill_diagonal(out, 0.0)
    return out


def classical_mds_2d(distances):
    """Torgerson MDS: top two eigenvectors of -1/2 J D^2 J, scaled by sqrt(eigenvalue);
    each axis' sign makes its largest-magnitude component positive."""
    d2 = np.asarray(distances, dtype=np.float64) ** 2
    n = d2.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ d2 @ j
    values, vectors = np.linalg.eigh(b)
    points = np.zeros((n, 2))
    for axis in range(min(2, n)):
        c = n - 1 - axis
        v = vectors[:, c]
        v = v if v[np.argmax(np.abs(v))] >= 0 else -v
        points[:, axis] = v * math.sqrt(max(values[c], 0.0))
    return points
