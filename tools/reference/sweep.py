#!/usr/bin/python3
"""The reference-fixture sweep: for every architecture attnviz runs, a grid of
the config options transformers honours on the attention path (each bool and
enum of its config class that reaches attention, and the sizes they interact
with), each at tiny size, checked against arch_reference.py within 1e-5.

One command:

    tools/reference/sweep.py [--quick] [--build build] [--out DIR] [--write-docs]

It writes every case (config.json, model.safetensors, reference.safetensors)
under DIR/cases/, runs the test ReferenceSweep.Cases of
BUILD/test_model on them, and prints the result table (DIR/results.md;
--write-docs also writes docs/reference-sweep.md). It exits 1 when a case
neither matches nor is refused with a clear message.

--quick varies one option at a time from each architecture's first value (the
ctest test model_reference_sweep_quick); without it, the whole grid (the
ctest test model_reference_sweep, label "slow").

A new architecture joins by adding its grid to GRIDS below (see
docs/add-an-architecture.md).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

VOCAB = 128  # vocabularies cut to 128 rows: token ids go straight to the model

ROPE = {
    "none": None,
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8},
}
ABSENT = "(absent)"  # the key is left out of config.json: the config class's default applies

# arch: (fixed overrides, {option: [values]}); the first value of each option is the baseline.
GRIDS = {
    "bert": ({}, {
        "position_embedding_type": ["absolute", "relative_key", "relative_key_query"],
        "is_decoder": [False, True],
        "hidden_act": ["gelu", "gelu_new", "relu"],
    }),
    "roberta": ({}, {
        "position_embedding_type": ["absolute", "relative_key", "relative_key_query"],
        "is_decoder": [False, True],
    }),
    "electra": ({}, {
        "position_embedding_type": ["absolute", "relative_key", "relative_key_query"],
        "is_decoder": [False, True],
        "embedding_size": [16, 32, ABSENT],
    }),
    "albert": ({}, {
        "position_embedding_type": ["absolute", "relative_key", "relative_key_query"],
        "inner_group_num": [1, 2],
        "num_hidden_groups": [2, 1],
        "hidden_act": ["gelu_new", "gelu", ABSENT],
    }),
    "distilbert": ({}, {
        "activation": ["gelu", "relu"],
        "sinusoidal_pos_embds": [False, True],
    }),
    "gpt2": ({}, {
        "scale_attn_weights": [True, False],
        "scale_attn_by_inverse_layer_idx": [False, True],
        "reorder_and_upcast_attn": [False, True],
        "activation_function": ["gelu_new", "relu"],
    }),
    "llama": ({"max_position_embeddings": 8}, {
        "rope_scaling": list(ROPE),
        "num_key_value_heads": [2, 1, 4],
        "attention_bias": [False, True],
        "mlp_bias": [False, True],
    }),
    "mistral": ({}, {
        "sliding_window": [None, 3, 64],
        "num_key_value_heads": [2, 1],
    }),
    "qwen2": ({"sliding_window": 4}, {
        "use_sliding_window": [False, True],
        "max_window_layers": [1, 0, 2],
        "layer_types": [ABSENT, ["sliding_attention", "full_attention"], ["full_attention", "full_attention"]],
    }),
    "bart": ({}, {
        "scale_embedding": [False, True, ABSENT],
        "activation_function": ["gelu", "relu"],
        "decoder_attention_heads": [4, 2],
    }),
    "marian": ({"decoder_vocab_size": VOCAB}, {
        "scale_embedding": [True, False, ABSENT],
        "activation_function": ["swish", "gelu"],
    }),
    "t5": ({}, {
        "feed_forward_proj": ["relu", "gated-gelu", "gelu", "gated-silu"],
        "dense_act_fn": [ABSENT, "silu"],
        "is_gated_act": [ABSENT, True, False],
    }),
    # issue 18 (arch1)
    "gpt_neox": ({"max_position_embeddings": 8}, {
        "use_parallel_residual": [True, False],
        "rotary_pct": [0.5, 1.0, 0.25, 0.0],
        "attention_bias": [True, False],
        "rope_scaling": ["none", "linear", "dynamic"],
    }),
    "opt": ({}, {
        "do_layer_norm_before": [True, False],
        "_remove_final_layer_norm": [False, True],
        "enable_bias": [True, False],
        "layer_norm_elementwise_affine": [True, False],
        "activation_function": ["relu", "gelu"],
    }),
    "bloom": ({}, {
        "apply_residual_connection_post_layernorm": [False, True],
        "n_head": [4, 2, 8],
    }),
    "falcon": ({}, {
        "alibi": [False, True],
        "multi_query": [True, False],
        "parallel_attn": [True, False],
        "bias": [False, True],
    }),
    "xlm-roberta": ({}, {
        "position_embedding_type": ["absolute", "relative_key", "relative_key_query"],
        "is_decoder": [False, True],
    }),
}

ENCODER_DECODER = {"bart", "marian", "t5"}


def case_ids(arch, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (10,), generator=g).tolist()
    target = torch.randint(3, VOCAB, (6,), generator=g).tolist() if arch in ENCODER_DECODER else None
    return ids, target


def option_sets(options, quick):
    names = list(options)
    if not quick:
        return [dict(zip(names, values)) for values in itertools.product(*options.values())]
    base = {name: values[0] for name, values in options.items()}
    sets = [base]
    for name, values in options.items():
        for value in values[1:]:
            sets.append(dict(base, **{name: value}))
    return sets


def case_name(arch, chosen):
    parts = []
    for name, value in chosen.items():
        text = "absent" if value == ABSENT else json.dumps(value, separators=(",", ":")).strip('"')
        if name == "layer_types" and value != ABSENT:
            text = "/".join(t.split("_")[0] for t in value)
        parts.append(f"{name}={text}")
    return arch + " " + " ".join(parts)


def generate_cases(out, quick):
    import arch_reference
    cases = []
    for arch, (fixed, options) in GRIDS.items():
        for index, chosen in enumerate(option_sets(options, quick)):
            name = case_name(arch, chosen)
            folder = os.path.join(out, "cases", f"{arch}_{index:03d}")
            overrides = {"vocab_size": VOCAB, **fixed}
            omit = []
            for key, value in chosen.items():
                if value == ABSENT:
                    omit.append(key)
                elif key == "rope_scaling":
                    overrides[key] = ROPE[value]
                else:
                    overrides[key] = value
            # the reference runs with the config class's default for an absent key
            make_config = arch_reference.ARCHS[arch][0]
            config = make_config("tiny", overrides)
            for key in omit:
                overrides[key] = CLASS_DEFAULTS[arch](config)[key]
            seed = 1000 + len(cases)
            ids, target = case_ids(arch, seed)
            case = {"name": name, "arch": arch, "folder": folder, "options": {k: (v if v != ABSENT else None)
                                                                                for k, v in chosen.items()}}
            try:
                arch_reference.generate(arch, folder, ids, target, "tiny", seed=seed, head=index % 2 == 1,
                                        overrides=overrides, omit=omit)
            except SystemExit as refusal:  # the reference, as transformers, refuses this config
                case["transformers_refuses"] = str(refusal)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, "config.json"), "w") as f:
                    json.dump({k: v for k, v in make_config("tiny", overrides).items() if k not in omit}, f,
                              indent=2)
            cases.append(case)
    return cases


# What transformers' config classes use for a key config.json leaves out.
CLASS_DEFAULTS = {
    "bert": lambda c: {},
    "roberta": lambda c: {},
    "electra": lambda c: {"embedding_size": 128},
    "albert": lambda c: {"hidden_act": "gelu_new"},
    "distilbert": lambda c: {},
    "gpt2": lambda c: {},
    "llama": lambda c: {},
    "mistral": lambda c: {},
    "qwen2": lambda c: {"layer_types": None},
    "bart": lambda c: {"scale_embedding": False},
    "marian": lambda c: {"scale_embedding": False},
    "t5": lambda c: {"dense_act_fn": t5_default_act(c), "is_gated_act": c["feed_forward_proj"].startswith("gated-")},
    "gpt_neox": lambda c: {},
    "opt": lambda c: {},
    "bloom": lambda c: {},
    "falcon": lambda c: {},
    "xlm-roberta": lambda c: {},
}


def t5_default_act(c):
    proj = c["feed_forward_proj"]
    return "gelu_new" if proj == "gated-gelu" else proj.split("-")[-1]


def render(results, quick):
    lines = ["# Reference sweep", "",
             "<!-- Written by tools/reference/sweep.py --write-docs; do not edit by hand. -->", "",
             "Every architecture's attention-relevant config options, each case a tiny random "
             "checkpoint checked against tools/reference/arch_reference.py (which follows "
             "transformers' modeling files) within 1e-5 on every attention probability. "
             + ("This table is the quick half (one option varied at a time)." if quick else
                "This table is the whole grid (tools/reference/sweep.py; ctest label `slow`)."),
             "", "| architecture | cases | match | refused | failed |", "| --- | --- | --- | --- | --- |"]
    for arch in GRIDS:
        rows = [r for r in results if r["arch"] == arch]
        count = lambda s: sum(1 for r in rows if r["status"] == s)  # noqa: E731
        lines.append(f"| {arch} | {len(rows)} | {count('match')} | {count('refused')} | "
                     f"{len(rows) - count('match') - count('refused')} |")
    lines += ["", "| case | result | max abs diff |", "| --- | --- | --- |"]
    for r in results:
        diff = f"{r['max_diff']:.2g}" if r.get("max_diff") is not None else ""
        detail = r["status"] + (f": {r['message']}" if r.get("message") else "")
        lines.append(f"| {r['name']} | {detail.replace('|', '/')} | {diff} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one option varied at a time")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build folder with test_model")
    ap.add_argument("--out", help="where the cases and results go (default: BUILD/reference-sweep[-quick])")
    ap.add_argument("--write-docs", action="store_true", help="also write docs/reference-sweep.md")
    args = ap.parse_args()
    out = args.out or os.path.join(args.build, "reference-sweep" + ("-quick" if args.quick else ""))
    os.makedirs(out, exist_ok=True)
    cases = generate_cases(out, args.quick)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    results_file = os.path.join(out, "results.json")
    if os.path.exists(results_file):
        os.remove(results_file)
    env = dict(os.environ, ATTNVIZ_SWEEP_DIR=out)
    run = subprocess.run([os.path.join(args.build, "test_model"),
                          "--gtest_filter=ReferenceSweep.Cases"], env=env)
    if not os.path.exists(results_file):
        sys.exit(f"the sweep test wrote no {results_file} (exit {run.returncode})")
    with open(results_file) as f:
        results = json.load(f)
    table = render(results, args.quick)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table)
    if args.write_docs:
        with open(os.path.join(ROOT, "docs", "reference-sweep.md"), "w") as f:
            f.write(table)
    failed = [r for r in results if r["status"] not in ("match", "refused")]
    print(f"{len(results)} cases: {len(results) - len(failed)} match or refused, {len(failed)} failed")
    for r in failed:
        print(f"  FAILED {r['name']}: {r['status']} {r.get('message', '')}")
    sys.exit(1 if failed or run.returncode else 0)


if __name__ == "__main__":
    main()
