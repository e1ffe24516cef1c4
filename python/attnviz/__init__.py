"""attnviz: what a transformer attends to, drawn natively.

    from attnviz import head_view, model_view        # bertviz's functions, same arguments
    head_view(outputs.attentions, tokens)

    m = attnviz.Model("bert-base-uncased")            # native runs, no torch
    t = m.trace("The cat sat on the mat")
    t.attentions                                      # numpy [layers, heads, tokens, tokens]
    t.head_view()

docs/python.md describes the API."""

from ._native import Error, TooLongError, version as __version__
from ._trace import Model, Trace, demo_model_path
from ._views import HTML, head_view, model_view


def from_attention(attention=None, tokens=None, sentence_b_start=None, encoder_attention=None,
                   decoder_attention=None, cross_attention=None, encoder_tokens=None, decoder_tokens=None,
                   model_id="attention"):
    """A Trace from attention attnviz did not compute (the arguments of head_view),
    for the neuron-free views, save() and save_npz()."""
    from . import _inputs
    return Trace(_inputs.build_trace(attention, tokens, sentence_b_start, True, encoder_attention,
                                     decoder_attention, cross_attention, encoder_tokens, decoder_tokens,
                                     model_id))


def load_npz(path):
    """A Trace from a .npz as `attnviz view --attention` reads it: what Trace.save_npz
    and `attnviz export` write, or numpy.savez(path, attentions=[L,H,S,S], tokens=...,
    sentence_b_start=...)."""
    import os
    from . import _native
    return Trace(_native.read_npz(os.fspath(path)))


__all__ = ["Error", "TooLongError", "HTML", "Model", "Trace", "demo_model_path", "from_attention", "head_view",
           "load_npz", "model_view", "__version__"]
