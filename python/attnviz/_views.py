"""bertviz's head_view and model_view, drawn by attnviz's own page writer."""

from . import _inputs


class HTML:
    """An attnviz page fragment: `.data` is the HTML, and notebooks show it
    through `_repr_html_` (as IPython.display.HTML, which bertviz returns)."""

    def __init__(self, data):
        self.data = data

    def _repr_html_(self):
        return self.data

    def __repr__(self):
        return f"<attnviz.HTML, {len(self.data)} characters>"

    def save(self, path):
        """Writes the fragment to a file (open it in a notebook or embed it in a page)."""
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.data)


def show(html, html_action):
    """'view': displayed in the notebook; 'return': the HTML object."""
    if html_action == "return":
        return html
    if html_action != "view":
        raise ValueError(f"html_action must be 'view' or 'return', not {html_action!r}")
    try:
        from IPython.display import display
    except ImportError:
        raise RuntimeError("html_action='view' shows the page in a notebook and needs IPython; "
                           "use html_action='return' and .save(path) elsewhere") from None
    display(html)
    return None


def analysis(native_trace, rollout=None, flow=None, head_stats=None, word_level=None):
    """What the page adds from attnviz's analysis (computed in C++ on the trace's
    attention, whatever computed it): True adds it, False leaves it out, None
    takes `attnviz view`'s default for this input's length (head stats always,
    rollout up to 512 tokens, word level up to 128, flow up to 64).
    word_level=True also opens the page at word level."""
    chosen = {"rollout": rollout, "flow": flow, "head_stats": head_stats, "word_level": word_level}
    for name, value in chosen.items():
        if value is not None and not isinstance(value, (bool, _np_bool())):
            raise TypeError(f"{name} must be True, False or None (attnviz view's default), "
                            f"not {type(value).__name__}")
    out = native_trace.default_analysis()
    for name, value in chosen.items():
        if value is not None:
            setattr(out, name, bool(value))
    out.open_word_level = word_level is not None and bool(word_level)
    return out


def _np_bool():
    try:
        import numpy
        return numpy.bool_
    except ImportError:  # pragma: no cover - numpy is a dependency
        return bool


def render(native_trace, views, include_layers=None, include_heads=None, block=None, layer=None, heads=None,
           dark=False, subword_markers=False, analysis_choice=None, title="", fragment=True):
    """The page (a fragment, or a whole page with fragment=False); layer and heads
    (model numbering) are what it opens on, dark and subword_markers its initial
    theme and token spelling, analysis_choice what it adds (analysis())."""
    layers, included_heads = _inputs.view_indices(native_trace, include_layers, include_heads)
    names = [b["name"] for b in native_trace.blocks]
    if block is not None and block not in names:
        raise ValueError(f"block {block!r} is not in this trace (it has {', '.join(names)})")
    from ._native import ViewAnalysis
    page = native_trace.render(list(views), layers, included_heads, block or "", title, fragment,
                               open_layer=-1 if layer is None else int(layer),
                               open_heads=[int(h) for h in heads or []], open_dark=dark,
                               open_subword_markers=subword_markers,
                               analysis=analysis_choice or ViewAnalysis())
    return HTML(page) if fragment else page


def _check_layer_choice(layer, include_layers, n_layers):
    if layer is None:
        return
    allowed = list(range(n_layers)) if include_layers is None else [int(i) for i in include_layers]
    if int(layer) not in allowed:
        raise ValueError(f"Layer {layer} is not in include_layers: {allowed}")


def head_view(attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, layer=None, heads=None,
              encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
              decoder_tokens=None, include_layers=None, html_action="view", rollout=False, flow=False,
              head_stats=False, word_level=False):
    """bertviz.head_view with the same arguments. Attention is a tuple of per-layer
    [batch=1, heads, queries, keys] tensors (torch or numpy), as transformers'
    output_attentions gives it, or one [layers, heads, queries, keys] array.
    rollout, flow, head_stats (True: add that tab, computed from this attention;
    None: attnviz view's default for the length) go beyond bertviz; word_level
    needs word ids, which tokens given as strings do not have."""
    trace = _inputs.build_trace(attention, tokens, sentence_b_start, prettify_tokens, encoder_attention,
                                decoder_attention, cross_attention, encoder_tokens, decoder_tokens)
    n_layers = max(b["shape"][0] for b in trace.blocks)
    n_heads = max(b["shape"][1] for b in trace.blocks)
    _check_layer_choice(layer, include_layers, n_layers)
    heads = _inputs._check_index_list(heads, "heads", n_heads, "head")
    return show(render(trace, ["head"], include_layers, layer=layer, heads=heads,
                       subword_markers=not prettify_tokens,
                       analysis_choice=analysis(trace, rollout, flow, head_stats, word_level)), html_action)


def model_view(attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, display_mode="dark",
               encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
               decoder_tokens=None, include_layers=None, include_heads=None, html_action="view", rollout=False,
               flow=False, head_stats=False, word_level=False):
    """bertviz.model_view with the same arguments (see head_view for attention and
    the analysis tabs)."""
    if display_mode not in ("dark", "light"):
        raise ValueError(f"display_mode must be 'dark' or 'light', not {display_mode!r}")
    trace = _inputs.build_trace(attention, tokens, sentence_b_start, prettify_tokens, encoder_attention,
                                decoder_attention, cross_attention, encoder_tokens, decoder_tokens)
    return show(render(trace, ["model"], include_layers, include_heads, dark=display_mode == "dark",
                       subword_markers=not prettify_tokens,
                       analysis_choice=analysis(trace, rollout, flow, head_stats, word_level)), html_action)
