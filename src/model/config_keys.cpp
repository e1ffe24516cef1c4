#include "model/config_keys.h"

#include <algorithm>
#include <sstream>

#include "attnviz/error.h"

namespace attnviz::model {

namespace {

using enum KeyUse;

// Groups of architectures that read a key the same way.
constexpr const char* kBertFamily = "bert roberta electra albert xlm-roberta";
constexpr const char* kBertDecoders = "bert roberta electra xlm-roberta";  // BertModel's is_decoder
constexpr const char* kLlamaFamily = "llama mistral qwen2";
constexpr const char* kBartFamily = "bart marian";
constexpr const char* kGemmaFamily = "gemma gemma2";
constexpr const char* kPhiFamily = "phi phi3";

constexpr const char* kDropout = "dropout: off at inference";
constexpr const char* kGeneration = "generation only: one forward pass does not read it";
constexpr const char* kTraining = "training only (initialisation, checkpointing)";
constexpr const char* kHead = "a task head's setting: attnviz runs the base model, not the head";
constexpr const char* kMetadata = "metadata";
constexpr const char* kAlbertTf =
    "from ALBERT's original TensorFlow config; transformers ignores it";

constexpr ConfigKey kKeys[] = {
    // --- every architecture (PretrainedConfig) ----------------------------------
    {"*", "model_type", implemented, "chooses the architecture"},
    {"*", "architectures", no_effect, "names the head class; its base model is what runs"},
    {"*", "return_dict", no_effect, "output format only"},
    {"*", "output_hidden_states", no_effect, "output format only (attnviz keeps them on request)"},
    {"*", "output_attentions", no_effect, "output format only (attnviz always keeps them)"},
    {"*", "use_cache", no_effect, "key/value cache for generation; one forward pass needs none"},
    {"*", "output_past", no_effect, "old name of use_cache"},
    {"*", "torchscript", no_effect, "export option"},
    {"*", "use_bfloat16", no_effect, "TensorFlow only"},
    {"*", "torch_dtype", no_effect,
     "the dtype transformers may load the weights in; attnviz computes in float32 (--precision)"},
    {"*", "dtype", no_effect, "newer name of torch_dtype"},
    {"*", "pruned_heads", refused,
     "heads removed from some layers: attnviz expects every head in every layer", "{}",
     R"({"0": [0]})"},
    {"*", "tie_word_embeddings", no_effect,
     "ties the output head to the input embeddings; the head is not run"},
    {"*", "is_encoder_decoder", no_effect, "fixed by the architecture"},
    {kBertDecoders, "is_decoder", implemented,
     "true: causal self-attention (BertLMHeadModel, RobertaForCausalLM, ElectraForCausalLM)"},
    {"*", "is_decoder", no_effect,
     "not read by this architecture's forward pass (encoder-decoder models set it per stack)"},
    {"bert roberta electra xlm-roberta gpt2", "add_cross_attention", refused,
     "cross-attention layers fed by an encoder's output, which attnviz does not run", "false",
     "true"},
    {"*", "add_cross_attention", no_effect, "not read by this architecture"},
    {"*", "cross_attention_hidden_size", no_effect, "EncoderDecoderModel's projection only"},
    {"*", "tie_encoder_decoder", no_effect, "ties weights when loading; checkpoints store both"},
    {"*", "chunk_size_feed_forward", no_effect, "computes the feed-forward in chunks: same values"},
    {"*", "max_length", no_effect, kGeneration},
    {"*", "min_length", no_effect, kGeneration},
    {"*", "do_sample", no_effect, kGeneration},
    {"*", "early_stopping", no_effect, kGeneration},
    {"*", "num_beams", no_effect, kGeneration},
    {"*", "num_beam_groups", no_effect, kGeneration},
    {"*", "diversity_penalty", no_effect, kGeneration},
    {"*", "temperature", no_effect, kGeneration},
    {"*", "top_k", no_effect, kGeneration},
    {"*", "top_p", no_effect, kGeneration},
    {"*", "typical_p", no_effect, kGeneration},
    {"*", "repetition_penalty", no_effect, kGeneration},
    {"*", "length_penalty", no_effect, kGeneration},
    {"*", "no_repeat_ngram_size", no_effect, kGeneration},
    {"*", "encoder_no_repeat_ngram_size", no_effect, kGeneration},
    {"*", "bad_words_ids", no_effect, kGeneration},
    {"*", "num_return_sequences", no_effect, kGeneration},
    {"*", "output_scores", no_effect, kGeneration},
    {"*", "return_dict_in_generate", no_effect, kGeneration},
    {"*", "forced_bos_token_id", no_effect, kGeneration},
    {"*", "forced_eos_token_id", no_effect, kGeneration},
    {"*", "force_bos_token_to_be_generated", no_effect, kGeneration},
    {"*", "remove_invalid_values", no_effect, kGeneration},
    {"*", "exponential_decay_length_penalty", no_effect, kGeneration},
    {"*", "suppress_tokens", no_effect, kGeneration},
    {"*", "begin_suppress_tokens", no_effect, kGeneration},
    {"*", "bos_token_id", no_effect, "generation; the tokenizer's files place special tokens"},
    {"*", "eos_token_id", no_effect, "generation; the tokenizer's files place special tokens"},
    {"*", "sep_token_id", no_effect, "generation; the tokenizer's files place special tokens"},
    {"*", "decoder_start_token_id", no_effect,
     "generation; attnviz's decoder reads the target text's own tokens"},
    {"roberta xlm-roberta", "pad_token_id", implemented,
     "position ids start after it and skip padding"},
    {"*", "pad_token_id", no_effect, "padding_idx only zeroes the embedding's gradient"},
    {"*", "finetuning_task", no_effect, kHead},
    {"*", "id2label", no_effect, kHead},
    {"*", "label2id", no_effect, kHead},
    {"*", "num_labels", no_effect, kHead},
    {"*", "_num_labels", no_effect, kHead},
    {"*", "problem_type", no_effect, kHead},
    {"*", "tokenizer_class", no_effect, "the tokenizer's files decide"},
    {"*", "prefix", no_effect, "a generation prompt prefix"},
    {"*", "task_specific_params", no_effect, kGeneration},
    {"*", "xla_device", no_effect, "TPU option"},
    {"*", "transformers_version", no_effect, kMetadata},
    {"*", "_name_or_path", no_effect, kMetadata},
    {"*", "_commit_hash", no_effect, kMetadata},
    {"*", "gradient_checkpointing", no_effect, kTraining},
    {"*", "initializer_range", no_effect, kTraining},
    {"*", "init_std", no_effect, kTraining},
    {"*", "initializer_factor", no_effect, kTraining},
    {"*", "_attn_implementation", no_effect,
     "attnviz follows the eager path, the one transformers takes with output_attentions"},
    {"*", "attn_implementation", no_effect,
     "attnviz follows the eager path, the one transformers takes with output_attentions"},
    {"*", "hidden_dropout_prob", no_effect, kDropout},
    {"*", "attention_probs_dropout_prob", no_effect, kDropout},
    {"*", "classifier_dropout", no_effect, kDropout},
    {"*", "classifier_dropout_prob", no_effect, kDropout},
    {"*", "dropout", no_effect, kDropout},
    {"*", "attention_dropout", no_effect, kDropout},
    {"*", "activation_dropout", no_effect, kDropout},
    {"*", "dropout_rate", no_effect, kDropout},
    {"*", "resid_pdrop", no_effect, kDropout},
    {"*", "embd_pdrop", no_effect, kDropout},
    {"*", "attn_pdrop", no_effect, kDropout},
    {"*", "qa_dropout", no_effect, kDropout},
    {"*", "seq_classif_dropout", no_effect, kDropout},
    {"*", "summary_first_dropout", no_effect, kDropout},
    {"*", "summary_last_dropout", no_effect, kDropout},
    {"*", "classif_dropout", no_effect, kDropout},
    {"*", "encoder_layerdrop", no_effect, "LayerDrop: training only"},
    {"*", "decoder_layerdrop", no_effect, "LayerDrop: training only"},
    {"*", "summary_type", no_effect, kHead},
    {"*", "summary_use_proj", no_effect, kHead},
    {"*", "summary_activation", no_effect, kHead},
    {"*", "summary_proj_to_labels", no_effect, kHead},

    // --- BERT, RoBERTa, ELECTRA, ALBERT -----------------------------------------
    {kBertFamily, "vocab_size", implemented, "rows of the word embeddings"},
    {kBertFamily, "hidden_size", implemented, "width of the residual stream"},
    {kBertFamily, "num_hidden_layers", implemented, "layers (ALBERT: layers run, sharing weights)"},
    {kBertFamily, "num_attention_heads", implemented, "heads per layer"},
    {kBertFamily, "intermediate_size", implemented, "feed-forward width"},
    {kBertFamily, "hidden_act", implemented,
     "feed-forward activation (ALBERT: gelu_new if absent)"},
    {kBertFamily, "max_position_embeddings", implemented,
     "rows of the position table; relative_key(_query): 2 * it - 1 distances"},
    {kBertFamily, "type_vocab_size", implemented, "rows of the token type table"},
    {kBertFamily, "layer_norm_eps", implemented, "LayerNorm epsilon"},
    {kBertFamily, "position_embedding_type", implemented,
     "absolute, relative_key or relative_key_query (ALBERT adds the relative scores after "
     "the 1/sqrt(d) scale)"},
    {"electra albert", "embedding_size", implemented,
     "embedding width before the projection to hidden_size (128 if absent)"},
    {"albert", "num_hidden_groups", implemented, "groups of shared layers"},
    {"albert", "inner_group_num", implemented, "layers per group, each with its own attention"},
    {"albert", "down_scale_factor", no_effect, kAlbertTf},
    {"albert", "gap_size", no_effect, kAlbertTf},
    {"albert", "net_structure_type", no_effect, kAlbertTf},
    {"albert", "num_memory_blocks", no_effect, kAlbertTf},
    {"albert", "layers_to_keep", no_effect, kAlbertTf},
    {"roberta", "normalize_embeddings", no_effect,
     "old RobertaConfig field that modeling_roberta never reads"},

    // --- DistilBERT -------------------------------------------------------------
    {"distilbert", "vocab_size", implemented, "rows of the word embeddings"},
    {"distilbert", "max_position_embeddings", implemented, "rows of the position table"},
    {"distilbert", "sinusoidal_pos_embds", implemented,
     "the fixed sinusoid table, which checkpoints store like a learned one"},
    {"distilbert", "n_layers", implemented, "layers"},
    {"distilbert", "n_heads", implemented, "heads per layer"},
    {"distilbert", "dim", implemented, "width of the residual stream"},
    {"distilbert", "hidden_dim", implemented, "feed-forward width"},
    {"distilbert", "activation", implemented, "feed-forward activation"},
    {"distilbert", "tie_weights_", no_effect, "old name of tie_word_embeddings"},

    // --- GPT-2 ------------------------------------------------------------------
    {"gpt2", "vocab_size", implemented, "rows of wte"},
    {"gpt2", "n_positions", implemented, "rows of wpe"},
    {"gpt2", "n_ctx", no_effect, "old context size that modeling_gpt2 does not read"},
    {"gpt2", "n_embd", implemented, "width of the residual stream"},
    {"gpt2", "n_layer", implemented, "layers"},
    {"gpt2", "n_head", implemented, "heads per layer"},
    {"gpt2", "n_inner", implemented, "feed-forward width (4 * n_embd if null)"},
    {"gpt2", "activation_function", implemented, "feed-forward activation"},
    {"gpt2", "layer_norm_epsilon", implemented, "LayerNorm epsilon"},
    {"gpt2", "scale_attn_weights", implemented, "false: no 1/sqrt(d) score scale"},
    {"gpt2", "scale_attn_by_inverse_layer_idx", implemented,
     "scores of layer i further divided by i + 1 (kept in the block's per-layer score_scale)"},
    {"gpt2", "reorder_and_upcast_attn", no_effect,
     "upcasts to float32 and scales before the product: the same values in float32"},

    // --- Llama, Mistral, Qwen2 --------------------------------------------------
    {kLlamaFamily, "vocab_size", implemented, "rows of embed_tokens"},
    {kLlamaFamily, "hidden_size", implemented, "width of the residual stream"},
    {kLlamaFamily, "intermediate_size", implemented, "feed-forward width"},
    {kLlamaFamily, "num_hidden_layers", implemented, "layers"},
    {kLlamaFamily, "num_attention_heads", implemented, "query heads per layer"},
    {kLlamaFamily, "num_key_value_heads", implemented, "key/value heads (grouped-query)"},
    {kLlamaFamily, "head_dim", implemented, "per-head width (hidden_size / heads if absent)"},
    {kLlamaFamily, "hidden_act", implemented, "gate activation"},
    {kLlamaFamily, "max_position_embeddings", implemented, "dynamic rope's reference length"},
    {kLlamaFamily, "rms_norm_eps", implemented, "RMSNorm epsilon"},
    {kLlamaFamily, "rope_theta", implemented, "rotary base"},
    {kLlamaFamily, "rope_scaling", implemented,
     "default, linear, dynamic, llama3; other rope types are refused when read"},
    {kLlamaFamily, "partial_rotary_factor", refused,
     "rotates only part of each head; attnviz rotates all of it", "1|1.0", "0.5"},
    {"llama", "attention_bias", implemented, "biases on q/k/v/o"},
    {"llama", "mlp_bias", implemented, "biases on the feed-forward"},
    {"mistral", "attention_bias", no_effect, "MistralConfig has no such field: no biases"},
    {"mistral", "mlp_bias", no_effect, "MistralConfig has no such field: no biases"},
    {"llama", "pretraining_tp", no_effect,
     "splits the same matmuls into slices: the same values up to float rounding"},
    {"mistral qwen2", "sliding_window", implemented,
     "keys older than the window are masked (Qwen2: only with use_sliding_window)"},
    {"qwen2", "use_sliding_window", implemented, "false: no layer has a window"},
    {"qwen2", "max_window_layers", implemented,
     "without layer_types, layers from this one on use the window"},
    {"qwen2", "layer_types", implemented, "full_attention or sliding_attention, per layer"},

    // --- BART, Marian -----------------------------------------------------------
    {kBartFamily, "vocab_size", implemented, "rows of the shared embeddings"},
    {kBartFamily, "max_position_embeddings", implemented, "positions (BART: learned, offset 2)"},
    {kBartFamily, "d_model", implemented, "width of the residual stream"},
    {kBartFamily, "encoder_layers", implemented, "encoder layers"},
    {kBartFamily, "encoder_ffn_dim", implemented, "encoder feed-forward width"},
    {kBartFamily, "encoder_attention_heads", implemented, "encoder heads"},
    {kBartFamily, "decoder_layers", implemented, "decoder layers"},
    {kBartFamily, "decoder_ffn_dim", implemented, "decoder feed-forward width"},
    {kBartFamily, "decoder_attention_heads", implemented, "decoder and cross-attention heads"},
    {kBartFamily, "activation_function", implemented, "feed-forward activation"},
    {kBartFamily, "scale_embedding", implemented,
     "true: embeddings times sqrt(d_model) (false if absent, Marian too)"},
    {kBartFamily, "num_hidden_layers", no_effect, "a copy of encoder_layers"},
    {"marian", "decoder_vocab_size", implemented, "rows of the decoder's embeddings"},
    {"marian", "share_encoder_decoder_embeddings", implemented,
     "false: the decoder has its own embeddings (decoder.embed_tokens)"},
    {kBartFamily, "normalize_before", refused,
     "pre-norm layers (mBART-style); attnviz runs BART's post-norm", "false", "true"},
    {kBartFamily, "add_final_layer_norm", refused,
     "a final LayerNorm per stack (mBART-style); attnviz runs BART's layers without it", "false",
     "true"},
    {"bart", "static_position_embeddings", refused,
     "sinusoidal positions in an old BART config; attnviz runs learned ones", "false", "true"},
    {"marian", "static_position_embeddings", no_effect,
     "old MarianConfig field: Marian's positions are sinusoidal, as attnviz runs them"},
    {kBartFamily, "normalize_embedding", no_effect,
     "old BartConfig field; the embedding LayerNorm is always there"},
    {kBartFamily, "add_bias_logits", no_effect, kHead},
    {kBartFamily, "extra_pos_embeddings", no_effect,
     "old BartConfig field; the position offset is 2, as modeling_bart fixes it"},

    // --- T5 ---------------------------------------------------------------------
    {"t5", "vocab_size", implemented, "rows of the shared embeddings"},
    {"t5", "d_model", implemented, "width of the residual stream"},
    {"t5", "d_kv", implemented, "per-head width"},
    {"t5", "d_ff", implemented, "feed-forward width"},
    {"t5", "num_layers", implemented, "encoder layers"},
    {"t5", "num_decoder_layers", implemented, "decoder layers (num_layers if absent)"},
    {"t5", "num_heads", implemented, "heads"},
    {"t5", "relative_attention_num_buckets", implemented, "relative position buckets"},
    {"t5", "relative_attention_max_distance", implemented, "largest distance bucketed apart"},
    {"t5", "layer_norm_epsilon", implemented, "RMSNorm epsilon"},
    {"t5", "feed_forward_proj", implemented, "ACT or gated-ACT (gated-gelu: gelu_new)"},
    {"t5", "dense_act_fn", implemented, "when present, overrides feed_forward_proj's activation"},
    {"t5", "is_gated_act", implemented, "when present, overrides feed_forward_proj's gating"},
    {"t5", "n_positions", no_effect, "old field modeling_t5 does not read"},

    // --- GPT-NeoX (Pythia) ------------------------------------------------------
    {"gpt_neox", "vocab_size", implemented, "rows of embed_in"},
    {"gpt_neox", "hidden_size", implemented, "width of the residual stream"},
    {"gpt_neox", "num_hidden_layers", implemented, "layers"},
    {"gpt_neox", "num_attention_heads", implemented, "heads per layer"},
    {"gpt_neox", "intermediate_size", implemented, "feed-forward width"},
    {"gpt_neox", "hidden_act", implemented, "feed-forward activation"},
    {"gpt_neox", "layer_norm_eps", implemented, "LayerNorm epsilon"},
    {"gpt_neox", "rotary_pct", implemented,
     "share of each head's dimensions that rotate: int(head_dim * rotary_pct)"},
    {"gpt_neox", "rotary_emb_base", implemented, "rotary base"},
    {"gpt_neox", "rope_scaling", implemented, "linear or dynamic, over the rotary dimensions"},
    {"gpt_neox", "max_position_embeddings", implemented, "dynamic rope's reference length"},
    {"gpt_neox", "use_parallel_residual", implemented,
     "true: x + attention(ln1(x)) + mlp(ln2(x)); false: the MLP reads x + attention"},
    {"gpt_neox", "attention_bias", implemented, "biases on query_key_value and dense"},
    {"gpt_neox", "hidden_dropout", no_effect, kDropout},

    // --- OPT --------------------------------------------------------------------
    {"opt", "vocab_size", implemented, "rows of embed_tokens"},
    {"opt", "hidden_size", implemented, "width of the residual stream"},
    {"opt", "num_hidden_layers", implemented, "layers"},
    {"opt", "num_attention_heads", implemented, "heads per layer"},
    {"opt", "ffn_dim", implemented, "feed-forward width"},
    {"opt", "activation_function", implemented, "feed-forward activation"},
    {"opt", "max_position_embeddings", implemented,
     "learned positions (the table has 2 more rows: OPT's offset)"},
    {"opt", "do_layer_norm_before", implemented,
     "true: pre-norm layers and a final LayerNorm; false: post-norm (OPT-350m)"},
    {"opt", "_remove_final_layer_norm", implemented, "true: no final LayerNorm"},
    {"opt", "word_embed_proj_dim", implemented,
     "must equal hidden_size: OPT-350m's narrower embeddings (project_in/project_out) are "
     "refused when read"},
    {"opt", "enable_bias", implemented, "biases on the attention and feed-forward projections"},
    {"opt", "layer_norm_elementwise_affine", implemented,
     "false: LayerNorms without weight and bias"},
    {"opt", "layerdrop", no_effect, "LayerDrop: training only"},

    // --- BLOOM ------------------------------------------------------------------
    {"bloom", "vocab_size", implemented, "rows of word_embeddings"},
    {"bloom", "hidden_size", implemented, "width of the residual stream"},
    {"bloom", "n_embed", implemented, "old name of hidden_size"},
    {"bloom", "n_layer", implemented, "layers"},
    {"bloom", "n_head", implemented, "heads per layer; ALiBi slopes follow their number"},
    {"bloom", "num_hidden_layers", implemented, "n_layer's other name"},
    {"bloom", "num_attention_heads", implemented, "n_head's other name"},
    {"bloom", "layer_norm_epsilon", implemented, "LayerNorm epsilon"},
    {"bloom", "apply_residual_connection_post_layernorm", implemented,
     "true: the residual is the LayerNorm's output, not its input"},
    {"bloom", "pretraining_tp", no_effect,
     "with slow_but_exact, splits the output projections' matmuls: the same sums"},
    {"bloom", "slow_but_exact", no_effect, "splits the output projections' matmuls: the same sums"},
    {"bloom", "attention_softmax_in_fp32", no_effect,
     "Megatron setting modeling_bloom never reads"},
    {"bloom", "bias_dropout_fusion", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "masked_softmax_fusion", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "skip_bias_add", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "skip_bias_add_qkv", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "offset_alibi", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "n_inner", no_effect, "modeling_bloom's MLP is 4 * hidden_size wide"},
    {"bloom", "unk_token_id", no_effect, "the tokenizer's files place special tokens"},
    {"bloom", "seq_length", no_effect, "Megatron setting modeling_bloom never reads"},
    {"bloom", "hidden_dropout", no_effect, kDropout},

    // --- Falcon -----------------------------------------------------------------
    {"falcon", "vocab_size", implemented, "rows of word_embeddings"},
    {"falcon", "hidden_size", implemented, "width of the residual stream"},
    {"falcon", "n_embed", implemented, "old name of hidden_size"},
    {"falcon", "num_hidden_layers", implemented, "layers"},
    {"falcon", "num_attention_heads", implemented, "query heads per layer"},
    {"falcon", "num_kv_heads", implemented,
     "key/value heads with new_decoder_architecture (or without multi_query)"},
    {"falcon", "layer_norm_epsilon", implemented, "LayerNorm epsilon"},
    {"falcon", "alibi", implemented, "true: ALiBi biases instead of rotary positions"},
    {"falcon", "new_decoder_architecture", implemented,
     "grouped key/value heads in query_key_value, ln_attn and ln_mlp (Falcon-40B/180B)"},
    {"falcon", "multi_query", implemented, "one key/value head (without new_decoder_architecture)"},
    {"falcon", "parallel_attn", implemented, "attention and MLP read the same normalized input"},
    {"falcon", "num_ln_in_parallel_attn", implemented,
     "2 (the new architecture's default): ln_attn and ln_mlp; 1: one input_layernorm"},
    {"falcon", "bias", implemented, "biases on every linear layer"},
    {"falcon", "max_position_embeddings", implemented, "dynamic rope's reference length"},
    {"falcon", "rope_theta", implemented, "rotary base"},
    {"falcon", "rope_scaling", implemented, "linear or dynamic"},
    {"falcon", "ffn_hidden_size", implemented, "feed-forward width (4 * hidden_size if null)"},
    {"falcon", "activation", implemented, "feed-forward activation"},
    {"falcon", "hidden_dropout", no_effect, kDropout},
    {"falcon", "apply_residual_connection_post_layernorm", no_effect,
     "old RWConfig field that modeling_falcon never reads"},

    // --- issue 18, stream arch2: Gemma, Gemma 2, Phi, Phi-3, MPNet, DeBERTa-v2 --
    {kGemmaFamily, "vocab_size", implemented, "rows of embed_tokens"},
    {kGemmaFamily, "hidden_size", implemented,
     "width of the residual stream; the embeddings are scaled by its square root"},
    {kGemmaFamily, "intermediate_size", implemented, "feed-forward width"},
    {kGemmaFamily, "num_hidden_layers", implemented, "layers"},
    {kGemmaFamily, "num_attention_heads", implemented, "query heads per layer"},
    {kGemmaFamily, "num_key_value_heads", implemented, "key/value heads (grouped-query)"},
    {kGemmaFamily, "head_dim", implemented, "per-head width (256 if absent)"},
    {kGemmaFamily, "hidden_activation", implemented,
     "gate activation (gelu_pytorch_tanh if null or absent)"},
    {kGemmaFamily, "hidden_act", no_effect,
     "legacy: the MLP reads hidden_activation (gelu_pytorch_tanh when null) instead"},
    {"gemma2", "sliding_window_size", no_effect, "old name; Gemma2Attention reads sliding_window"},
    {kGemmaFamily, "max_position_embeddings", implemented,
     "rotary positions have no table: --truncate's default"},
    {kGemmaFamily, "rms_norm_eps", implemented, "RMSNorm epsilon (the norms scale by 1 + w)"},
    {kGemmaFamily, "rope_theta", implemented, "rotary base"},
    {kGemmaFamily, "rope_scaling", refused,
     "not a Gemma config field: GemmaRotaryEmbedding does not scale", R"({"rope_type": "default"})",
     R"({"rope_type": "linear", "factor": 2.0})"},
    {kGemmaFamily, "attention_bias", implemented, "biases on q/k/v/o"},
    {"gemma", "use_adarms", refused,
     "adaptive RMSNorm conditioned on an extra input, which attnviz does not take", "false",
     "true"},
    {"gemma", "adarms_cond_dim", no_effect, "read only with use_adarms, which is refused"},
    {"gemma2", "query_pre_attn_scalar", implemented, "scores scaled by its -1/2 power"},
    {"gemma2", "attn_logit_softcapping", implemented,
     "scores become cap * tanh(score / cap) before the masks (null: off); the neuron view "
     "says such scores are not scale * q.k + bias"},
    {"gemma2", "final_logit_softcapping", no_effect,
     "caps the LM head's logits, which attnviz does not compute"},
    {"gemma2", "sliding_window", implemented,
     "keys older than the window are masked on the sliding layers"},
    {"gemma2", "layer_types", implemented,
     "full_attention or sliding_attention per layer (sliding on the even layers if absent)"},
    {"gemma2", "cache_implementation", no_effect, kGeneration},
    {"gemma gemma2", "use_bidirectional_attention", refused,
     "drops the causal mask (embedding variants); attnviz runs Gemma causal", "false", "true"},

    {kPhiFamily, "vocab_size", implemented, "rows of embed_tokens"},
    {kPhiFamily, "hidden_size", implemented, "width of the residual stream"},
    {kPhiFamily, "intermediate_size", implemented, "feed-forward width"},
    {kPhiFamily, "num_hidden_layers", implemented, "layers"},
    {kPhiFamily, "num_attention_heads", implemented, "query heads per layer"},
    {kPhiFamily, "num_key_value_heads", implemented, "key/value heads (grouped-query)"},
    {kPhiFamily, "hidden_act", implemented, "feed-forward activation (Phi-3: the gate's)"},
    {kPhiFamily, "max_position_embeddings", implemented,
     "Phi: dynamic rope's reference length; Phi-3: with original_max_position_embeddings, "
     "longrope's factor"},
    {kPhiFamily, "rope_theta", implemented, "rotary base"},
    {kPhiFamily, "partial_rotary_factor", implemented,
     "the first int(head_dim * it) dims of each head rotate (Phi: 0.5, Phi-3: 1.0 if absent)"},
    {"phi", "layer_norm_eps", implemented, "LayerNorm epsilon (the q/k norms too)"},
    {"phi", "rope_scaling", implemented,
     "default, linear, dynamic, llama3 over the rotary dims; other rope types are refused"},
    {"phi", "qk_layernorm", implemented, "LayerNorm over each head's query and key"},
    {"phi3", "rms_norm_eps", implemented, "RMSNorm epsilon"},
    {"phi3", "rope_scaling", implemented,
     "longrope (or its old names su and yarn): short_factor, long_factor past "
     "original_max_position_embeddings, attention factor; other types are refused"},
    {"phi3", "original_max_position_embeddings", implemented,
     "longrope switches to long_factor past it"},
    {"phi3", "sliding_window", implemented, "keys older than the window are masked (null: none)"},
    {"phi3", "head_dim", implemented, "per-head width (hidden_size / heads if absent)"},
    {"phi3", "attention_bias", refused,
     "not a Phi3Config field: Phi-3's projections have no biases", "false", "true"},
    {kPhiFamily, "auto_map", no_effect,
     "remote-code class names for trust_remote_code; transformers' own classes run"},

    {"mpnet", "vocab_size", implemented, "rows of the word embeddings"},
    {"mpnet", "hidden_size", implemented, "width of the residual stream"},
    {"mpnet", "num_hidden_layers", implemented, "layers"},
    {"mpnet", "num_attention_heads", implemented, "heads per layer"},
    {"mpnet", "intermediate_size", implemented, "feed-forward width"},
    {"mpnet", "hidden_act", implemented, "feed-forward activation"},
    {"mpnet", "max_position_embeddings", implemented,
     "rows of the position table; positions start at 2, so it holds 2 fewer tokens"},
    {"mpnet", "layer_norm_eps", implemented, "LayerNorm epsilon"},
    {"mpnet", "relative_attention_num_buckets", implemented,
     "rows of the relative bias table (MPNet looks up 32 buckets whatever it says; fewer "
     "rows are refused)"},

    {"deberta-v2", "vocab_size", implemented, "rows of the word embeddings"},
    {"deberta-v2", "hidden_size", implemented, "width of the residual stream"},
    {"deberta-v2", "num_hidden_layers", implemented, "layers"},
    {"deberta-v2", "num_attention_heads", implemented, "heads per layer"},
    {"deberta-v2", "intermediate_size", implemented, "feed-forward width"},
    {"deberta-v2", "hidden_act", implemented, "feed-forward activation"},
    {"deberta-v2", "max_position_embeddings", implemented,
     "rows of the position table; the longest input; max_relative_positions if that is < 1"},
    {"deberta-v2", "type_vocab_size", implemented, "rows of the token type table (0: none)"},
    {"deberta-v2", "layer_norm_eps", implemented, "LayerNorm epsilon"},
    {"deberta-v2", "relative_attention", implemented,
     "disentangled attention over relative positions (false: content only)"},
    {"deberta-v2", "max_relative_positions", implemented,
     "relative positions kept apart (max_position_embeddings if < 1)"},
    {"deberta-v2", "position_biased_input", implemented,
     "adds absolute position embeddings to the input"},
    {"deberta-v2", "pos_att_type", implemented,
     "c2p and/or p2c terms (a list or \"c2p|p2c\"); each also widens the 1/sqrt scale"},
    {"deberta-v2", "position_buckets", implemented,
     "log-bucketed relative positions when > 0 (DeBERTa-v3: 256)"},
    {"deberta-v2", "share_att_key", implemented,
     "the c2p/p2c terms project positions with the content key/query projections"},
    {"deberta-v2", "norm_rel_ebd", implemented,
     "layer_norm: the relative embeddings pass encoder.LayerNorm"},
    {"deberta-v2", "embedding_size", implemented,
     "embedding width, projected to hidden_size when it differs"},
    {"deberta-v2", "attention_head_size", implemented,
     "per-head width (hidden_size / heads if absent)"},
    {"deberta-v2", "conv_kernel_size", refused,
     "a convolution after the first layer (DeBERTa-v2 xlarge), which attnviz does not run", "0",
     "3"},
    {"deberta-v2", "conv_act", no_effect, "read only with conv_kernel_size, which is refused"},
    {"deberta-v2", "conv_groups", no_effect, "read only with conv_kernel_size, which is refused"},
    {"deberta-v2", "pooler_hidden_size", no_effect, kHead},
    {"deberta-v2", "pooler_dropout", no_effect, kDropout},
    {"deberta-v2", "pooler_hidden_act", no_effect, kHead},
};

const std::vector<std::string> kModelTypes = {
    "bert", "roberta", "electra", "albert", "distilbert", "gpt2", "llama", "mistral", "qwen2",
    "bart", "marian", "t5",
    // issue 18
    "xlm-roberta", "gpt_neox", "opt", "bloom", "falcon", "gemma", "gemma2", "phi", "phi3", "mpnet",
    "deberta-v2"};

bool applies_to(const ConfigKey& key, const std::string& model_type) {
    std::istringstream types(key.model_types);
    for (std::string type; types >> type;)
        if (type == model_type) return true;
    return false;
}

// null counts as absent, as it does for every key ConfigReader reads
bool is_no_op(const ConfigKey& key, const nlohmann::json& value) {
    if (value.is_null()) return true;
    std::string values = key.no_op ? key.no_op : "";
    size_t start = 0;
    while (start <= values.size()) {
        const size_t end = std::min(values.find('|', start), values.size());
        if (nlohmann::json::parse(values.substr(start, end - start)) == value) return true;
        start = end + 1;
    }
    return false;
}

const char* use_name(KeyUse use) {
    switch (use) {
        case implemented:
            return "implemented";
        case refused:
            return "refused";
        case no_effect:
            return "no effect";
    }
    return "";
}

}  // namespace

std::span<const ConfigKey> config_keys() { return kKeys; }

const std::vector<std::string>& config_key_model_types() { return kModelTypes; }

const ConfigKey* find_config_key(const std::string& model_type, const std::string& name) {
    const ConfigKey* shared = nullptr;
    for (const ConfigKey& key : kKeys) {
        if (name != key.name) continue;
        if (applies_to(key, model_type)) return &key;
        if (std::string(key.model_types) == "*" && !shared) shared = &key;
    }
    return shared;
}

std::vector<std::string> check_config_keys(const ConfigReader& reader,
                                           const std::string& model_type) {
    std::vector<std::string> warnings;
    for (const auto& [name, value] : reader.json().items()) {
        const ConfigKey* key = find_config_key(model_type, name);
        if (!key) {
            warnings.push_back(reader.file() + ": key \"" + name + "\" is unknown to attnviz for " +
                               model_type +
                               "; if it changes the forward pass, the views may "
                               "differ from transformers");
        } else if (key->use == refused && !is_no_op(*key, value)) {
            throw Error(reader.file() + ": \"" + name + "\" is " + value.dump() +
                        ", not supported: " + key->reason);
        }
    }
    return warnings;
}

std::string config_keys_markdown() {
    std::ostringstream out;
    out << "# config.json keys\n\n"
           "<!-- Generated from src/model/config_keys.cpp by tests/model/config_keys_test.cpp "
           "(ATTNVIZ_UPDATE_DOCS=1 rewrites it); do not edit by hand. -->\n\n"
           "Every config.json key attnviz knows, per architecture: **implemented** (read and "
           "honoured as transformers honours it), **refused** (it changes the forward pass and "
           "attnviz does not run it: loading stops with a one-line error naming the file, the "
           "key and its value, exit code 1, unless the value is one that changes nothing or "
           "null), or "
           "**no effect** (it changes nothing attnviz shows). A key attnviz does not know gets a "
           "warning on stderr and is ignored.\n\n"
           "tests/model/config_keys_test.cpp checks that every field of transformers' "
           "configuration class for each architecture (tests/data/config_fields, extracted by "
           "tools/reference/extract_config_fields.py) is in this list.\n";
    const auto write_rows = [&out](std::vector<const ConfigKey*> keys) {
        out << "\n| key | attnviz | what it does |\n| --- | --- | --- |\n";
        std::stable_sort(keys.begin(), keys.end(), [](const ConfigKey* a, const ConfigKey* b) {
            return static_cast<int>(a->use) < static_cast<int>(b->use);
        });
        for (const ConfigKey* key : keys) {
            out << "| `" << key->name << "` | " << use_name(key->use);
            if (key->use == refused) {
                std::string accepted = key->no_op;
                for (size_t bar; (bar = accepted.find('|')) != std::string::npos;)
                    accepted.replace(bar, 1, "` or `");
                out << " (accepted: `" << accepted << "`)";
            }
            out << " | " << key->reason << " |\n";
        }
    };
    std::vector<const ConfigKey*> shared;
    for (const ConfigKey& key : kKeys)
        if (std::string(key.model_types) == "*") shared.push_back(&key);
    out << "\n## Every architecture\n\nUnless an architecture's own table below lists the key.\n";
    write_rows(shared);
    for (const std::string& type : kModelTypes) {
        std::vector<const ConfigKey*> own;
        for (const ConfigKey& key : kKeys)
            if (applies_to(key, type)) own.push_back(&key);
        out << "\n## " << type << "\n";
        write_rows(own);
    }
    return out.str();
}

}  // namespace attnviz::model
