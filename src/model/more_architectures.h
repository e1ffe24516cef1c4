// The architectures beyond BERT, one source file each (src/model/<name>.cpp);
// the registry (architectures.cpp) lists them.
#pragma once

#include <memory>

#include "model/network.h"

namespace attnviz::model {

void read_gpt2_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_gpt2(const LoadContext& context);

// Llama, Mistral and Qwen2 (llama.cpp)
void read_llama_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_llama(const LoadContext& context);

void read_roberta_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_roberta(const LoadContext& context);

void read_electra_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_electra(const LoadContext& context);

void read_t5_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_t5(const LoadContext& context);

// BART and Marian (bart.cpp)
void read_bart_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_bart(const LoadContext& context);

void read_distilbert_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_distilbert(const LoadContext& context);

void read_albert_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_albert(const LoadContext& context);

// issue 18 (arch1); XLM-RoBERTa runs roberta.cpp
void read_gpt_neox_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_gpt_neox(const LoadContext& context);

void read_opt_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_opt(const LoadContext& context);

void read_bloom_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_bloom(const LoadContext& context);

void read_falcon_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_falcon(const LoadContext& context);
// --- issue 18, stream arch2 ---
// Gemma and Gemma 2 (gemma.cpp)
void read_gemma_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_gemma(const LoadContext& context);

void read_phi_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_phi(const LoadContext& context);

void read_phi3_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_phi3(const LoadContext& context);

void read_mpnet_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_mpnet(const LoadContext& context);

void read_deberta_v2_config(const ConfigReader& reader, ModelConfig& config);
std::unique_ptr<Network> load_deberta_v2(const LoadContext& context);

}  // namespace attnviz::model
