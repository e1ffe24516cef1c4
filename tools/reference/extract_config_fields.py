#!/usr/bin/python3
"""Extracts the fields of transformers' configuration classes into
tests/data/config_fields/<model_type>.json, for tests/model/config_keys_test.cpp.

A field is what a config.json may set and the class reads: every parameter of
the class's __init__ (its default, as JSON where it is a literal, else the
source text), every `self.<name> = ...` it assigns, and every
`kwargs.pop("<name>", default)` (PretrainedConfig's common keys). A class that
inherits another configuration class (RobertaConfig(BertConfig) in older
versions) names it in "inherits"; the test adds the parent's fields.

transformers is not installed here and its repository is too large to clone, so
SOURCES below names, for each file, the version that was read (its repository
path and commit). Give --source a folder holding those files under the same
paths (a transformers checkout at that commit, or copies of the files; only
the class's __init__ is parsed):

    extract_config_fields.py --source DIR [--out tests/data/config_fields]
"""

import argparse
import ast
import json
import os

REPOSITORY = "huggingface/transformers"

# model_type (or "_common" for PretrainedConfig): (path, commit of the version read)
SOURCES = {
    "_common": ("src/transformers/configuration_utils.py", "bdf52342d8e725ea54973b3e3593be4717e9c1b0"),
    "bert": ("src/transformers/models/bert/configuration_bert.py", "008f5c8c29be84d4721dc6d1e0fcd72300580be4"),
    "roberta": ("src/transformers/models/roberta/configuration_roberta.py",
                "0b03d5ce0507cba43a768b52edf5c39fc523bc79"),
    "electra": ("src/transformers/models/electra/configuration_electra.py",
                "681d7f0b1442a0ca2a6903474b16da28e1f5628a"),
    "albert": ("src/transformers/models/albert/configuration_albert.py",
               "008f5c8c29be84d4721dc6d1e0fcd72300580be4"),
    "distilbert": ("src/transformers/models/distilbert/configuration_distilbert.py",
                   "e04dc16368f2d155dab81a0914c2277c5bf02a26"),
    "gpt2": ("src/transformers/models/gpt2/configuration_gpt2.py", "1c70522e01cdf5fcc6ebda6c372ee0198d557c53"),
    "llama": ("src/transformers/models/llama/configuration_llama.py", "4bdeeced9ce971bed8cca7ab203c3b70cffab4ca"),
    "mistral": ("src/transformers/models/mistral/configuration_mistral.py",
                "0b07a74c673bdf8fbd472a1c7df139b357495414"),
    "qwen2": ("src/transformers/models/qwen2/configuration_qwen2.py", "caa3177646255d2cf73626315c8582722af4749c"),
    "bart": ("src/transformers/models/bart/configuration_bart.py", "cb53d9297d3142eacb1f50bc869c7fdb78a97b59"),
    "marian": ("src/transformers/models/marian/configuration_marian.py",
               "4aa4342b720ef79340412180d41ad22b01d4942f"),
    "t5": ("src/transformers/models/t5/configuration_t5.py", "038869d4d54db478c18dbe58a02aefc67f62beb0"),
    # issue 18 (arch1): one transformers commit for all five
    "gpt_neox": ("src/transformers/models/gpt_neox/configuration_gpt_neox.py",
                 "f91c16d270e5e3ff32fdb32ccf286d05c03dfa66"),
    "opt": ("src/transformers/models/opt/configuration_opt.py", "f91c16d270e5e3ff32fdb32ccf286d05c03dfa66"),
    "bloom": ("src/transformers/models/bloom/configuration_bloom.py", "f91c16d270e5e3ff32fdb32ccf286d05c03dfa66"),
    "falcon": ("src/transformers/models/falcon/configuration_falcon.py",
               "f91c16d270e5e3ff32fdb32ccf286d05c03dfa66"),
    "xlm-roberta": ("src/transformers/models/xlm_roberta/configuration_xlm_roberta.py",
                    "f91c16d270e5e3ff32fdb32ccf286d05c03dfa66"),
    # issue 18, stream arch2
    "gemma": ("src/transformers/models/gemma/configuration_gemma.py", "3676fc805228e63d9ae97b622d715af847c276c6"),
    "gemma2": ("src/transformers/models/gemma2/configuration_gemma2.py",
               "19f5346140749359823ef26c4183bd8f1aed3db7"),
    "phi": ("src/transformers/models/phi/configuration_phi.py", "90f2781aaf6cb2ba75e33a485edec50cbdcbdef5"),
    "phi3": ("src/transformers/models/phi3/configuration_phi3.py", "d7991107f1114ec9fd32a4fdfed4c2dd8a76e0e4"),
    "mpnet": ("src/transformers/models/mpnet/configuration_mpnet.py", "fe70f22d5e5206a4890993abb916bc9c220c2790"),
    "deberta-v2": ("src/transformers/models/deberta_v2/configuration_deberta_v2.py",
                   "cb6679c8fe2783c91681ebf08ef15db969f5d645"),
}

# configuration class name -> model_type, for "inherits"
CLASS_MODEL_TYPES = {"BertConfig": "bert", "PretrainedConfig": "_common"}


def literal(node, source):
    try:
        value = ast.literal_eval(node)
        json.dumps(value)
        return value
    except (ValueError, TypeError, SyntaxError):
        return ast.get_source_segment(source, node)


def config_class(tree, model_type):
    """The class whose body says model_type = "<model_type>" (PretrainedConfig for _common)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if model_type == "_common" and node.name == "PretrainedConfig":
            return node
        for statement in node.body:
            targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
            value = getattr(statement, "value", None)
            if any(isinstance(t, ast.Name) and t.id == "model_type" for t in targets if t is not None) \
                    and isinstance(value, ast.Constant) and value.value == model_type:
                return node
    raise SystemExit(f"no configuration class with model_type {model_type!r}")


def fields_of(cls, source):
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    fields = {}
    args = init.args.args[1:]  # without self
    defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
    for arg, default in zip(args, defaults):
        fields[arg.arg] = literal(default, source) if default is not None else None
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id == "self" and target.attr not in fields:
                    fields[target.attr] = ast.get_source_segment(source, node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "kwargs" \
                and node.args and isinstance(node.args[0], ast.Constant):
            default = literal(node.args[1], source) if len(node.args) > 1 else None
            fields.setdefault(node.args[0].value, default)
    return fields


def extract(source_dir, model_type):
    path, commit = SOURCES[model_type]
    with open(os.path.join(source_dir, path), encoding="utf-8") as f:
        source = f.read()
    cls = config_class(ast.parse(source), model_type)
    bases = [b.id for b in cls.bases if isinstance(b, ast.Name)]
    out = {
        "model_type": model_type,
        "config_class": cls.name,
        "source": {"repository": REPOSITORY, "path": path, "commit": commit},
        "extracted_by": "tools/reference/extract_config_fields.py",
    }
    parent = next((CLASS_MODEL_TYPES[b] for b in bases if b in CLASS_MODEL_TYPES), None)
    if parent and model_type != "_common":
        out["inherits"] = parent
    out["fields"] = fields_of(cls, source)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="folder with the SOURCES files under their paths")
    ap.add_argument("--only", nargs="*", help="model types to extract (default: every one in SOURCES)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                  "tests", "data", "config_fields"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for model_type in args.only or SOURCES:
        data = extract(args.source, model_type)
        with open(os.path.join(args.out, f"{model_type}.json"), "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        print(f"{model_type}: {len(data['fields'])} fields")


if __name__ == "__main__":
    main()
