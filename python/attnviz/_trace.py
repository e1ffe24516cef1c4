"""Native runs from Python: Model (a checkpoint loaded once) and Trace (one
run's attention, tokens and views)."""

import os

from . import _native, _views

_VIEWS = ("head", "model", "neuron", "matrix")


def demo_model_path():
    """The bundled demo model: inside the installed package, else in the source tree."""
    installed = os.path.join(os.path.dirname(__file__), "demo")
    if os.path.isdir(installed):
        return installed
    return os.path.join(_native.source_dir, "models", "demo")


class Trace:
    """One run: every attention probability, the tokens, and the views.

    Arrays are numpy views of the trace's own memory (no copy); each keeps
    the trace alive for as long as it lives."""

    def __init__(self, native):
        self._native = native
        self._blocks = native.blocks
        self._sequences = native.sequences

    # --- arrays -----------------------------------------------------------
    def attention(self, block):
        """[layers, heads, queries, keys] of a block by name ("self", "encoder", "decoder", "cross")."""
        names = self.block_names
        if block not in names:
            raise ValueError(f"block {block!r} is not in this trace (it has {', '.join(names)})")
        return self._native.attention(names.index(block))

    def attention_csr(self, block):
        """A top_k / top_mass capture's rows as CSR arrays: a dict of row_start [rows + 1]
        int64, keys [n] int32, probs [n] (float32, or float16), shape (layers, heads,
        queries, keys); row r = (layer * heads + head) * queries + query. None for a
        dense block. Densify: see docs/export.md."""
        names = self.block_names
        if block not in names:
            raise ValueError(f"block {block!r} is not in this trace (it has {', '.join(names)})")
        return self._native.attention_csr(names.index(block))

    @property
    def block_names(self):
        return [b["name"] for b in self._blocks]

    @property
    def attentions(self):
        """[layers, heads, tokens, tokens] float32, a view of the trace (the encoder's
        for encoder-decoder models; see decoder_attentions and cross_attentions)."""
        return self._native.attention(0)

    @property
    def decoder_attentions(self):
        return self.attention("decoder") if "decoder" in self.block_names else None

    @property
    def cross_attentions(self):
        return self.attention("cross") if "cross" in self.block_names else None

    def to_transformers(self):
        """transformers' layout: a tuple of per-layer [1, heads, q, k] views. For
        encoder-decoder models, a dict with encoder_attentions, decoder_attentions
        and cross_attentions, as Seq2SeqModelOutput names them."""
        def per_layer(array):
            return tuple(array[layer][None] for layer in range(array.shape[0]))
        if self.block_names == ["self"]:
            return per_layer(self.attentions)
        return {f"{name}_attentions": per_layer(self.attention(name)) for name in self.block_names}

    def queries_keys(self, block=None):
        """(queries [L,H,q,d], keys [L,H,k,d], score_scale [L]) when the run kept them
        (Model.trace(..., queries_keys=True)), else None."""
        names = self.block_names
        return self._native.queries_keys(names.index(block) if block else 0)

    @property
    def hidden_states(self):
        """[layers + 1, tokens, hidden] of the first stack, when the run kept them."""
        return self._native.hidden_states(0)

    # --- tokens -----------------------------------------------------------
    @property
    def tokens(self):
        """The tokens as the vocabulary spells them ("##ing", "Ġthe")."""
        return list(self._sequences[0]["tokens"])

    @property
    def input_ids(self):
        return self._sequences[0]["input_ids"]

    @property
    def token_type_ids(self):
        return self._sequences[0]["token_type_ids"]

    @property
    def decoder_tokens(self):
        return list(self._sequences[1]["tokens"]) if len(self._sequences) > 1 else None

    @property
    def sentence_b_start(self):
        """Index of the first token of text B, or None for a single text."""
        segments = self._sequences[0]["segments"]
        return segments.index(1) if 1 in segments else None

    @property
    def model_id(self):
        return self._native.model_id

    @property
    def model_revision(self):
        """The model's commit when it came from the Hugging Face cache (a
        snapshot folder), as the npz's model_revision; "" otherwise."""
        return self._native.model_revision

    @property
    def architecture(self):
        return self._native.architecture

    # --- views ------------------------------------------------------------
    # rollout, flow, head_stats, word_level: True adds that tab (word_level: the
    # page opens at word level), False leaves it out, None (the default) does
    # what `attnviz view` does for this length (docs/python.md).
    def _view(self, views, include_layers, include_heads, block, html_action, rollout, flow, head_stats,
              word_level):
        choice = _views.analysis(self._native, rollout, flow, head_stats, word_level)
        return _views.show(_views.render(self._native, views, include_layers, include_heads, block,
                                         analysis_choice=choice), html_action)

    def head_view(self, include_layers=None, include_heads=None, block=None, html_action="view", rollout=None,
                  flow=None, head_stats=None, word_level=None):
        return self._view(["head"], include_layers, include_heads, block, html_action, rollout, flow, head_stats,
                          word_level)

    def model_view(self, include_layers=None, include_heads=None, block=None, html_action="view", rollout=None,
                   flow=None, head_stats=None, word_level=None):
        return self._view(["model"], include_layers, include_heads, block, html_action, rollout, flow, head_stats,
                          word_level)

    def neuron_view(self, include_layers=None, include_heads=None, block=None, html_action="view", rollout=None,
                    flow=None, head_stats=None, word_level=None):
        if not any(b["has_queries_keys"] for b in self._blocks):
            raise ValueError("the neuron view needs queries and keys: run Model.trace(..., queries_keys=True)")
        return self._view(["neuron"], include_layers, include_heads, block, html_action, rollout, flow, head_stats,
                          word_level)

    def matrix_view(self, include_layers=None, include_heads=None, block=None, html_action="view", rollout=None,
                    flow=None, head_stats=None, word_level=None):
        return self._view(["matrix"], include_layers, include_heads, block, html_action, rollout, flow, head_stats,
                          word_level)

    def save(self, path, views=("head", "model"), include_layers=None, include_heads=None, title="", rollout=None,
             flow=None, head_stats=None, word_level=None):
        """Writes a whole self-contained page, as `attnviz view` does (with its
        analysis defaults; see head_view)."""
        views = list(views)
        for view in views:
            if view not in _VIEWS:
                raise ValueError(f"views: unknown view {view!r} (expected one of {', '.join(_VIEWS)})")
        choice = _views.analysis(self._native, rollout, flow, head_stats, word_level)
        page = _views.render(self._native, views, include_layers, include_heads, analysis_choice=choice,
                             title=title, fragment=False)
        with open(path, "w", encoding="utf-8") as out:
            out.write(page)
        return os.path.abspath(path)

    def head_stat_sums(self):
        """Per-head statistics of this run as exact sums, one dict per block:
        {"block", "examples", "sums" int64 [9, L, H] (fixed point, value * 2**24),
        "rows" int64 [9, L, H], "non_finite", "uniform_entropy", "query_rows"}.
        Sums of many runs add exactly; attnviz.dask.head_stats reduces them.
        The statistics, in order: attnviz.dask.STATISTICS (docs/analysis.md)."""
        return self._native.head_stat_sums()

    def save_npz(self, path):
        """Exact float32 arrays as `attnviz export` writes them (numpy.load reads them,
        and `attnviz view --attention` shows them)."""
        self._native.save_npz(os.fspath(path))
        return os.path.abspath(path)

    def __repr__(self):
        shapes = ", ".join(f"{b['name']} {list(b['shape'])}" for b in self._blocks)
        return f"<attnviz.Trace {self.model_id!r}: {len(self.tokens)} tokens; {shapes}>"


class Model:
    """A Hugging Face checkpoint loaded for native runs, without torch.

    `model` is a folder or a hub id ("bert-base-uncased", "org/name@revision"),
    resolved as the CLI resolves --model (the Hugging Face cache first); None
    is the bundled demo model."""

    def __init__(self, model=None, offline=False):
        self._native = _native.Model(os.fspath(model) if model is not None else demo_model_path(), bool(offline))

    @property
    def folder(self):
        return str(self._native.folder)

    @property
    def config(self):
        return dict(self._native.config)

    def trace(self, text, text_pair=None, target=None, queries_keys=False, hidden_states=False, threads=None,
              truncate=False):
        """Tokenizes and runs the model (the GIL is released meanwhile). text_pair:
        the second text of a pair; target: the decoder's text (encoder-decoder models);
        truncate: True cuts each text to the model's limit, a number N to N tokens."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if threads is None:
            threads = 0
        elif not 1 <= int(threads) <= _native.max_threads:
            raise ValueError(f"threads must be between 1 and {_native.max_threads}, not {threads}")
        max_tokens = 0
        if not isinstance(truncate, bool):
            max_tokens = int(truncate)
            if max_tokens < 1:
                raise ValueError(f"truncate must be True, False or a number of tokens >= 1, not {truncate}")
        return Trace(self._native.trace(text, text_pair, target, bool(queries_keys), bool(hidden_states),
                                        int(threads), bool(truncate), max_tokens))

    def __repr__(self):
        return f"<attnviz.Model {self._native.model_id!r} ({self.config['model_type']})>"
