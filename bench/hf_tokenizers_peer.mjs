// Peer for bench/tokenizer_bench.cpp: times Hugging Face tokenizers (the Rust
// library, npm tokenizers@0.23.2) on the same inputs, single-threaded.
// Usage: node hf_tokenizers_peer.mjs --model DIR --inputs INPUTS.json [--repeat N]
// Prints one JSON line: the best pass of encodeBatch (one call, Rust loop) and
// of encode (one call per input), in wall seconds and in CPU seconds of the
// whole process (robust on a shared machine), plus token count and id checksum.
// Run with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1 (the bench does).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const inputs = JSON.parse(readFileSync(args.inputs, 'utf8'));
const repeat = Number(args.repeat ?? 3);
const tokenizer = Tokenizer.fromFile(join(args.model, 'tokenizer.json'));

function summarize(encodings) {
  let tokens = 0, checksum = 0;
  for (const e of encodings) {
    const ids = e.getIds();
    tokens += ids.length;
    for (const id of ids) checksum = (checksum * 31 + id) % 1000000007;
  }
  return { tokens, checksum };
}

async function best(fn) {
  let bestSeconds = Infinity, bestCpu = Infinity, result;
  for (let r = 0; r < repeat + 1; r++) {  // the first pass warms up
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    result = await fn();
    const c = process.cpuUsage(c0);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r > 0) {
      bestSeconds = Math.min(bestSeconds, seconds);
      bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
    }
  }
  return { seconds: bestSeconds, cpu: bestCpu, result };
}

const batch = await best(() => tokenizer.encodeBatch(inputs, { addSpecialTokens: true }));
const single = await best(async () => {
  const out = [];
  for (const text of inputs) out.push(await tokenizer.encode(text, null, { addSpecialTokens: true }));
  return out;
});
console.log(JSON.stringify({
  engine: 'tokenizers', version: require('tokenizers/package.json').version,
  batch_seconds: batch.seconds, encode_seconds: single.seconds,
  batch_cpu_seconds: batch.cpu, encode_cpu_seconds: single.cpu, ...summarize(batch.result),
}));
