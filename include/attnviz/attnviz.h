// attnviz: load a Hugging Face transformer, tokenize, run it natively keeping
// every attention probability, and draw what it attends to.
//
// Basic use:
//   std::filesystem::path folder = attnviz::resolve_model("bert-base-uncased");
//   attnviz::Model model = attnviz::Model::open(folder);
//   attnviz::AttentionTrace trace = model.trace({.text = "The cat sat.", .text_pair = "It was
//   tired."}); std::string page = attnviz::render_html(trace, {.views = {attnviz::View::head}});
//
// Failures throw attnviz::Error; its message names the file, tensor or key at fault.
#pragma once

#include "attnviz/encoding.h"
#include "attnviz/error.h"
#include "attnviz/export.h"
#include "attnviz/hub.h"
#include "attnviz/model.h"
#include "attnviz/tokenizer.h"
#include "attnviz/trace.h"
#include "attnviz/views.h"
