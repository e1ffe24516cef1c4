#!/usr/bin/python3
"""Writes tests/data/tokenizer/xlm-roberta-unigram/tokenizer.json: a tokenizer
in XLM-RoBERTa's pipeline (the real xlm-roberta-base tokenizer.json, 17 MB with
250,002 pieces, could not be had here; see tests/data/PROVENANCE.md).

Pipeline, as transformers' XLMRobertaConverter writes it: the SentencePiece
nmt_nfkc Precompiled normalizer, Metaspace pre-tokenizer (replacement U+2581,
add_prefix_space), a Unigram model whose ids follow fairseq's layout
(<s> 0, <pad> 1, </s> 2, <unk> 3, the SentencePiece pieces, <mask> last, with
lstrip), the post-processor "<s> A </s>" / "<s> A </s> </s> B </s>" (type ids
0), and the Metaspace decoder. The pieces, their scores and the precompiled
charsmap (the same nmt_nfkc map every default SentencePiece model carries) come
from t5-small's tokenizer.json (tests/data/hf/t5-small), its own special tokens
and <extra_id_*> sentinels left out.

Usage: make_xlm_roberta_unigram.py [OUT_DIR]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def added(id_, content, lstrip=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": False,
            "normalized": False, "special": True}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "tokenizer",
                                                             "xlm-roberta-unigram")
    with open(os.path.join(ROOT, "tests", "data", "hf", "t5-small", "tokenizer.json"), encoding="utf-8") as f:
        t5 = json.load(f)
    specials = {"<pad>", "</s>", "<unk>"}
    pieces = [p for p in t5["model"]["vocab"] if p[0] not in specials and not p[0].startswith("<extra_id_")]
    vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]] + pieces + [["<mask>", 0.0]]
    mask_id = len(vocab) - 1
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}

    def seq(name):
        return {"Sequence": {"id": name, "type_id": 0}}

    def special(name):
        return {"SpecialToken": {"id": name, "type_id": 0}}

    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"),
                         added(mask_id, "<mask>", lstrip=True)],
        "normalizer": {"type": "Precompiled", "precompiled_charsmap": t5["normalizer"]["precompiled_charsmap"]},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("<s>"), seq("A"), special("</s>")],
            "pair": [special("<s>"), seq("A"), special("</s>"), special("</s>"), seq("B"), special("</s>")],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}},
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}, f)
    print(f"wrote {out}: {len(vocab)} pieces, <mask> = {mask_id}")


if __name__ == "__main__":
    main()
