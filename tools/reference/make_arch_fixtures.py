#!/usr/bin/python3
"""Writes the committed tiny fixtures of tests/data/arch/ with arch_reference.py.

Each case is a folder: config.json, model.safetensors (random weights, exact
Hugging Face names) and reference.safetensors (ids, every attention tensor,
queries and keys). Vocabularies are cut to 128 entries to keep the folders
small, so these cases feed token ids straight to the model; the tests that go
through a real tokenizer generate their checkpoints when they run.

Usage: make_arch_fixtures.py [OUT_DIR [NAME ...]]   (default: tests/data/arch, every case)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arch_reference  # noqa: E402

VOCAB = {"vocab_size": 128}


def ids(n, seed, lo=3, hi=128):
    import torch
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, (n,), generator=g).tolist()


# name: (arch, ids, target ids, head layout, config overrides)
CASES = {
    "gpt2_tiny": ("gpt2", ids(11, 1), None, True, dict(VOCAB)),
    "gpt2_inverse_layer_scale": ("gpt2", ids(9, 2), None, False,
                                 dict(VOCAB, scale_attn_by_inverse_layer_idx=True, n_inner=40,
                                      activation_function="relu", n_layer=3)),
    "llama_gqa_llama3_rope": ("llama", ids(12, 3), None, True,
                              dict(VOCAB, rope_theta=500000.0, rope_scaling={
                                  "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8})),
    "llama_linear_rope_mha": ("llama", ids(10, 4), None, False,
                              dict(VOCAB, num_key_value_heads=4, attention_bias=True, mlp_bias=True,
                                   rope_scaling={"type": "linear", "factor": 2.0})),
    "llama_dynamic_rope": ("llama", ids(14, 5), None, False,
                           dict(VOCAB, num_key_value_heads=1, max_position_embeddings=8,
                                rope_scaling={"type": "dynamic", "factor": 2.0})),
    "mistral_sliding_window": ("mistral", ids(12, 6), None, True, dict(VOCAB, sliding_window=5)),
    "qwen2_head_dim": ("qwen2", ids(10, 7), None, True,
                       dict(VOCAB, head_dim=16, tie_word_embeddings=True)),
    "roberta_tiny": ("roberta", [0] + ids(5, 8) + [1] + ids(3, 9) + [2], None, True, dict(VOCAB)),
    "t5_tiny": ("t5", ids(11, 10) + [1], ids(6, 11) + [1], False, dict(VOCAB)),
    "t5_v1_1_gated": ("t5", ids(9, 12) + [1], ids(7, 13) + [1], True,
                      dict(VOCAB, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                           num_decoder_layers=3, num_heads=6, relative_attention_num_buckets=16,
                           relative_attention_max_distance=20)),
    "bart_tiny": ("bart", [0] + ids(9, 14) + [2], [0] + ids(5, 15) + [2], True,
                  dict(VOCAB, decoder_layers=3, decoder_attention_heads=2, decoder_ffn_dim=48)),
    "marian_tiny": ("marian", ids(10, 16) + [1], ids(6, 17) + [1], True, dict(VOCAB, decoder_vocab_size=128)),
    "distilbert_tiny": ("distilbert", [101] + ids(8, 18) + [102], None, True, dict(VOCAB)),
    "electra_tiny": ("electra", ids(10, 19), None, True, dict(VOCAB)),
    "albert_tiny": ("albert", ids(10, 20), None, True, dict(VOCAB, inner_group_num=2)),
}

# Config keys whose meaning attnviz once got wrong (issue 13): each case sets
# the key (or leaves it out, so the config class's default applies: OMIT).
CASES.update({
    "bert_is_decoder": ("bert", [101] + ids(9, 21) + [102], None, True,
                        dict(VOCAB, is_decoder=True, architectures=["BertLMHeadModel"])),
    "roberta_is_decoder": ("roberta", [0] + ids(8, 22) + [2], None, True,
                           dict(VOCAB, is_decoder=True, architectures=["RobertaForCausalLM"])),
    "electra_is_decoder": ("electra", ids(9, 23), None, False,
                           dict(VOCAB, is_decoder=True, architectures=["ElectraForCausalLM"])),
    "qwen2_layer_types": ("qwen2", ids(12, 24), None, True,
                          dict(VOCAB, use_sliding_window=True, sliding_window=4, max_window_layers=1,
                               layer_types=["sliding_attention", "full_attention"])),
    "marian_default_scale_embedding": ("marian", ids(9, 25) + [1], ids(6, 26) + [1], True,
                                       dict(VOCAB, decoder_vocab_size=128, scale_embedding=False)),
    "t5_explicit_dense_act_fn": ("t5", ids(9, 27) + [1], ids(5, 28) + [1], False,
                                 dict(VOCAB, feed_forward_proj="gated-gelu", dense_act_fn="silu",
                                      is_gated_act=True)),
    "albert_default_hidden_act": ("albert", ids(10, 29), None, True, dict(VOCAB, hidden_act="gelu_new")),
    "electra_default_embedding_size": ("electra", ids(10, 30), None, True, dict(VOCAB, embedding_size=128)),
    "roberta_relative_key": ("roberta", [0] + ids(9, 31) + [2], None, True,
                             dict(VOCAB, position_embedding_type="relative_key")),
    "roberta_relative_key_query": ("roberta", [0] + ids(10, 32) + [2], None, False,
                                   dict(VOCAB, position_embedding_type="relative_key_query")),
    "electra_relative_key": ("electra", ids(11, 33), None, False,
                             dict(VOCAB, position_embedding_type="relative_key")),
    "electra_relative_key_query": ("electra", ids(10, 34), None, True,
                                   dict(VOCAB, position_embedding_type="relative_key_query")),
    "albert_relative_key": ("albert", ids(10, 35), None, False,
                            dict(VOCAB, position_embedding_type="relative_key")),
    "albert_relative_key_query": ("albert", ids(9, 36), None, True,
                                  dict(VOCAB, position_embedding_type="relative_key_query", inner_group_num=2)),
})

# Weights set to NaN, inf or a float32 value too large for the products it
# enters (issue 12): torch propagates them, and so must attnviz.
POISON = {
    # layer 1's query weight of head 1 (columns 8..15 of c_attn): that head's
    # rows are NaN, and everything after them
    "gpt2_nan_weight": {"h.1.attn.c_attn.weight": [[0, 8], "nan"]},
    # layer 0's first key row: scores overflow to +-inf in some rows only
    "llama_huge_weight": {"layers.0.self_attn.k_proj.weight": [[0, 0], 3e38]},
}
CASES.update({
    "gpt2_nan_weight": ("gpt2", ids(9, 37), None, False, dict(VOCAB)),
    "llama_huge_weight": ("llama", ids(10, 38), None, False, dict(VOCAB)),
})

# Issue 18 (arch1): GPT-NeoX, OPT, BLOOM, Falcon, XLM-RoBERTa, with their config branches.
CASES.update({
    "gpt_neox_tiny": ("gpt_neox", ids(12, 40), None, True, dict(VOCAB, rotary_pct=0.5)),
    "gpt_neox_sequential_full_rotary": ("gpt_neox", ids(10, 41), None, False,
                                        dict(VOCAB, use_parallel_residual=False, rotary_pct=1.0,
                                             attention_bias=False, rotary_emb_base=500)),
    "opt_tiny": ("opt", [2] + ids(10, 42), None, True, dict(VOCAB)),
    "opt_post_norm_no_bias": ("opt", [2] + ids(9, 43), None, False,
                              dict(VOCAB, do_layer_norm_before=False, enable_bias=False,
                                   layer_norm_elementwise_affine=False, activation_function="gelu")),
    "bloom_tiny": ("bloom", ids(12, 44), None, True, dict(VOCAB)),
    "bloom_six_heads_post_layernorm_residual": ("bloom", ids(11, 45), None, False,
                                                dict(VOCAB, hidden_size=48, n_head=6,
                                                     apply_residual_connection_post_layernorm=True)),
    "falcon_tiny": ("falcon", ids(12, 46), None, True, dict(VOCAB)),
    "falcon_alibi_sequential": ("falcon", ids(11, 47), None, False,
                                dict(VOCAB, alibi=True, multi_query=False, parallel_attn=False, bias=True)),
    "falcon_new_architecture": ("falcon", ids(12, 48), None, True,
                                dict(VOCAB, new_decoder_architecture=True, num_attention_heads=8,
                                     num_kv_heads=2, ffn_hidden_size=48, rope_theta=1000.0)),
    "xlm-roberta_tiny": ("xlm-roberta", [0] + ids(6, 49) + [1] + ids(3, 50) + [2], None, True, dict(VOCAB)),
})

# The keys each case's config.json leaves out, so attnviz must apply the
# config class's default (the reference runs with the value set above).
OMIT = {
    "marian_default_scale_embedding": ["scale_embedding"],
    "albert_default_hidden_act": ["hidden_act"],
    "electra_default_embedding_size": ["embedding_size"],
}


# issue 18, stream arch2: cases with fixed seeds (SEEDS), so that the cases
# other streams add to CASES do not change theirs.
ARCH2_CASES = {
    "gemma_tiny": ("gemma", [2] + ids(11, 1001), None, True, dict(VOCAB)),
    "gemma_bias_hidden_act_ignored": ("gemma", [2] + ids(9, 1002), None, False,
                                      dict(VOCAB, attention_bias=True, hidden_act="gelu", hidden_activation=None,
                                           num_key_value_heads=1, rope_theta=500.0)),
    "gemma2_tiny": ("gemma2", [2] + ids(13, 1003), None, True,
                    dict(VOCAB, num_hidden_layers=3, attn_logit_softcapping=5.0, sliding_window=4)),
    "gemma2_layer_types_no_softcap": ("gemma2", [2] + ids(11, 1004), None, False,
                                      dict(VOCAB, num_hidden_layers=3, attn_logit_softcapping=None,
                                           sliding_window=3, query_pre_attn_scalar=16,
                                           layer_types=["full_attention", "sliding_attention", "sliding_attention"])),
    "phi_tiny": ("phi", ids(12, 1005), None, True, dict(VOCAB)),
    "phi_qk_layernorm_gqa": ("phi", ids(10, 1006), None, False,
                             dict(VOCAB, qk_layernorm=True, num_key_value_heads=2, partial_rotary_factor=0.75,
                                  hidden_act="gelu", rope_theta=500.0)),
    "phi3_tiny": ("phi3", ids(12, 1007), None, True, dict(VOCAB)),
    "phi3_longrope_long": ("phi3", ids(20, 1008), None, True,
                           dict(VOCAB, original_max_position_embeddings=16, rope_scaling={
                               "type": "longrope", "short_factor": [1.0, 1.5, 2.0, 3.0],
                               "long_factor": [1.2, 2.5, 6.0, 11.0]})),
    "phi3_su_short_sliding": ("phi3", ids(12, 1009), None, False,
                              dict(VOCAB, original_max_position_embeddings=16, partial_rotary_factor=0.5,
                                   sliding_window=5, head_dim=16, rope_scaling={
                                       "type": "su", "short_factor": [1.0, 1.5, 2.0, 3.0],
                                       "long_factor": [1.2, 2.5, 6.0, 11.0]})),
    "mpnet_tiny": ("mpnet", [0] + ids(6, 1010) + [1] + ids(4, 1011) + [2], None, True, dict(VOCAB)),
    "mpnet_long_distances": ("mpnet", [0] + ids(40, 1012) + [2], None, False,
                             dict(VOCAB, relative_attention_num_buckets=40, hidden_act="gelu_new")),
    "deberta_v3_tiny": ("deberta-v2", [1] + ids(22, 1013) + [2], None, True, dict(VOCAB)),
    "deberta_v2_separate_projections": ("deberta-v2", [1] + ids(22, 1014) + [2], None, False,
                                        dict(VOCAB, share_att_key=False, position_buckets=-1, max_relative_positions=8,
                                             position_biased_input=True, type_vocab_size=2, pos_att_type="c2p|p2c",
                                             norm_rel_ebd="none", embedding_size=16, hidden_act="gelu_new")),
    "deberta_v2_c2p_only": ("deberta-v2", [1] + ids(12, 1015) + [2], None, False,
                            dict(VOCAB, pos_att_type=["c2p"], position_buckets=6, max_relative_positions=20)),
}
CASES.update(ARCH2_CASES)
SEEDS = {name: 1000 + i for i, name in enumerate(ARCH2_CASES)}


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "arch")
    only = set(sys.argv[2:])
    for seed, (name, (arch, src, target, head, overrides)) in enumerate(CASES.items()):
        if only and name not in only:
            continue
        seed = SEEDS.get(name, seed)
        arch_reference.generate(arch, os.path.join(out_root, name), src, target, "tiny", seed=seed,
                                head=head, overrides=overrides, omit=OMIT.get(name, ()),
                                poison=POISON.get(name))
        print("wrote", name)


if __name__ == "__main__":
    main()
