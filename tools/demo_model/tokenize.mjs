#!/usr/bin/env node
// Tokenizes sentences with Hugging Face's Rust tokenizers (npm `tokenizers`, the engine
// Python transformers' fast tokenizers run), so training ids match what attnviz and
// transformers produce for the same text.
//
// Usage (from the folder where `tokenizers` is installed, see fetch_corpus.sh):
//   node tokenize.mjs <tokenizer.json> <sentences.json> <ids.json>
// sentences.json: a JSON array of strings. ids.json: a JSON array of id arrays,
// without special tokens ([CLS]/[SEP] are added by the training script).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'noop.js'));
const { Tokenizer } = require('tokenizers');

const [tokenizerPath, sentencesPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node tokenize.mjs <tokenizer.json> <sentences.json> <ids.json>');
  process.exit(2);
}
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const sentences = JSON.parse(readFileSync(sentencesPath, 'utf8'));
const ids = [];
const chunk = 4096;
for (let i = 0; i < sentences.length; i += chunk) {
  const encodings = await tokenizer.encodeBatch(sentences.slice(i, i + chunk), { addSpecialTokens: false });
  for (const e of encodings) ids.push(Array.from(e.getIds()));
}
writeFileSync(outPath, JSON.stringify(ids));
console.error(`tokenized ${sentences.length} sentences`);
