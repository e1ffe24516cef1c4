"""XLM-RoBERTa (modeling_xlm_roberta.py), for arch_reference.py.

The model is RoBERTa's, class for class (modeling_xlm_roberta copies
modeling_roberta); only the configuration's name and sizes differ: a 250,002-
entry SentencePiece vocabulary, 514 positions from padding_idx 1.
"""

import arch_reference as R


def config(size, overrides):
    c = R.roberta_config(size, {})
    c.update(model_type="xlm-roberta", architectures=["XLMRobertaForMaskedLM"], vocab_size=250002)
    c.update(overrides)
    return c


ARCHS = {"xlm-roberta": (config, R.roberta_init, R.roberta_forward, R.roberta_head)}
