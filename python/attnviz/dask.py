"""Per-head attention statistics over a corpus on Dask (Debian python3-distributed).

    import attnviz.dask
    from distributed import Client
    client = Client("tcp://scheduler:8786")        # or LocalCluster(); none: dask's default scheduler
    stats = attnviz.dask.head_stats(texts, "bert-base-uncased", npartitions=64)
    stats["blocks"][0]["means"]["sep"]             # [layers, heads] float64

Each worker process loads the model once (a per-process cache keyed by the
model's name or folder) and streams its partitions one example at a time; each
partition's sums are exact integers (docs/analysis.md, "Head statistics"), and
the reduction adds them as Python integers, so the result does not depend on
how the corpus was partitioned or in which order the partials were added.
docs/analysis.md ("Dask") shows a multi-node set-up."""

import numpy as np

from . import _native
from ._trace import Model

STATISTICS = tuple(_native.head_stat_names)  # entropy, distance, cls, sep, punct, self, prev, next, top1
SCALE = int(_native.head_stat_scale)  # sums are value * SCALE, rounded once per example

# Per worker process: (model, offline) -> Model, loaded on first use.
_MODELS = {}


def _model(model, offline):
    key = (str(model) if model is not None else None, bool(offline))
    loaded = _MODELS.get(key)
    if loaded is None:
        loaded = _MODELS[key] = Model(model, offline=offline)
    return loaded


def _request(item, pairs):
    """(text, text_pair, target) from a corpus item: a str, a (text, text_pair)
    pair, or a dict with "text" and optional "text_pair" / "target"."""
    if isinstance(item, str):
        if pairs:
            raise ValueError("pairs=True needs (text, text_pair) items or dicts with \"text_pair\"")
        return item, None, None
    if isinstance(item, dict):
        return item["text"], item.get("text_pair"), item.get("target")
    text, second = item
    return text, second, None


def _exact(sums):
    """One trace's sums with int64 arrays as Python integers (object arrays): adding
    them never overflows or rounds."""
    out = []
    for block in sums:
        block = dict(block)
        for key in ("sums", "rows", "non_finite"):
            block[key] = np.asarray(block[key]).astype(object)
        out.append(block)
    return out


def merge(a, b):
    """The sums of two disjoint parts of a corpus (lists of per-block dicts); None is empty."""
    if a is None:
        return b
    if b is None:
        return a
    if [x["block"] for x in a] != [y["block"] for y in b]:
        raise ValueError("head statistics of different models cannot be merged")
    out = []
    for x, y in zip(a, b):
        if x["sums"].shape != y["sums"].shape:
            raise ValueError(f"block {x['block']}: shapes {x['sums'].shape} and {y['sums'].shape} differ")
        out.append({
            "block": x["block"],
            "examples": x["examples"] + y["examples"],
            "sums": x["sums"] + y["sums"],
            "rows": x["rows"] + y["rows"],
            "non_finite": x["non_finite"] + y["non_finite"],
            "uniform_entropy": x["uniform_entropy"] + y["uniform_entropy"],
            "query_rows": x["query_rows"] + y["query_rows"],
        })
    return out


def partition_sums(texts, model=None, pairs=False, max_tokens=None, threads=1, offline=False):
    """The exact sums of an iterable of corpus items, run in this process one at a
    time (what each Dask partition does; also the single-process reference)."""
    loaded = _model(model, offline)
    encoder_decoder = loaded.config["is_encoder_decoder"]
    total = None
    for item in texts:
        text, text_pair, target = _request(item, pairs)
        if encoder_decoder and target is None:
            text_pair, target = None, text_pair  # the pair's second text is the decoder's
        trace = loaded.trace(text, text_pair=text_pair, target=target, threads=threads,
                             truncate=max_tokens if max_tokens else True)
        total = merge(total, _exact(trace.head_stat_sums()))
    return total


def finish(sums):
    """Means from summed sums: {"examples", "blocks": [{"block", "means": {stat: [L, H]}, ...}]}.
    A mean is NaN where no row defines it or a row was not finite."""
    if sums is None:
        raise ValueError("no examples")
    blocks = []
    for block in sums:
        rows = block["rows"]
        means = {}
        for i, name in enumerate(STATISTICS):
            values = np.full(rows[i].shape, np.nan)
            defined = (rows[i] > 0) & (block["non_finite"][i] == 0)
            values[defined] = [s / SCALE / r for s, r in zip(block["sums"][i][defined], rows[i][defined])]
            means[name] = values
        uniform = block["uniform_entropy"] / SCALE / block["query_rows"] if block["query_rows"] else np.nan
        blocks.append(dict(block, means=means, uniform_entropy_mean=uniform))
    return {"examples": sums[0]["examples"], "blocks": blocks}


def head_stats(texts, model=None, pairs=False, max_tokens=None, npartitions=None, threads=1,
               offline=False, client=None):
    """Per-head statistics of `model` averaged over `texts` on Dask.

    texts: a dask.bag.Bag, or a sequence of items (str; (text, text_pair) with
    pairs=True; or dicts with "text", "text_pair", "target"). model: a folder or
    hub id every worker can open (None: the bundled demo model). threads: forward
    threads per worker task. client: a distributed.Client (default: the active
    one, else dask's default scheduler). Returns finish()'s dict."""
    import dask.bag

    bag = texts if isinstance(texts, dask.bag.Bag) else dask.bag.from_sequence(
        list(texts), npartitions=npartitions or 8)
    model = str(model) if model is not None else None

    def per_partition(part):
        return partition_sums(part, model, pairs, max_tokens, threads, offline)

    def aggregate(parts):
        total = None
        for part in parts:
            total = merge(total, part)
        return total

    reduced = bag.reduction(per_partition, aggregate, split_every=8)
    sums = client.compute(reduced).result() if client is not None else reduced.compute()
    return finish(sums)
