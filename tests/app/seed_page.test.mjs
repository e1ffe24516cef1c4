// The seed workflow's page in a real browser: `attnviz view` on a sentence
// pair, with a tiny BERT cached as bert-base-uncased (the real tokenizer from
// tests/data/hf), opened in headless Debian chromium through playwright-core.
// Checks that the head view has the sentence-pair filters (All, A→A, B→B,
// A→B, B→A) and that they split the tokens at text B, that the model view has
// a thumbnail per layer and head, and that the page runs without errors or
// network requests.
//
// Usage: node seed_page.test.mjs <attnviz binary> <checkpoint folder> <tokenizer folder>
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "../browser/chromium.mjs";

const [cli, checkpoint, tokenizer] = process.argv.slice(2);
if (!tokenizer) {
  console.error("usage: node seed_page.test.mjs <attnviz binary> <checkpoint folder> <tokenizer folder>");
  process.exit(2);
}

// A Hugging Face cache with models--bert-base-uncased, as huggingface_hub lays it out.
const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-seed-page-"));
const repo = path.join(work, "cache", "models--bert-base-uncased");
const commit = "86b5e0934494bd15c9632b12f734a8a67f723594";
fs.mkdirSync(path.join(repo, "blobs"), { recursive: true });
fs.mkdirSync(path.join(repo, "refs"));
fs.mkdirSync(path.join(repo, "snapshots", commit), { recursive: true });
const files = {
  "config.json": checkpoint, "model.safetensors": checkpoint,
  "tokenizer.json": tokenizer, "tokenizer_config.json": tokenizer, "vocab.txt": tokenizer,
};
for (const [name, folder] of Object.entries(files)) {
  const bytes = fs.readFileSync(path.join(folder, name));
  const etag = crypto.createHash("sha256").update(bytes).digest("hex");
  fs.writeFileSync(path.join(repo, "blobs", etag), bytes);
  fs.symlinkSync("../../blobs/" + etag, path.join(repo, "snapshots", commit, name));
}
fs.writeFileSync(path.join(repo, "refs", "main"), commit);

const textA = "The cat sat on the mat.", textB = "The cat lay on the rug.";
const printed = execFileSync(cli, ["view", "--model", "bert-base-uncased", "--text", textA, "--text-b", textB,
                                   "-o", path.join(work, "seed.html")], {
  env: { ...process.env, HF_HUB_CACHE: path.join(work, "cache"), HF_HUB_OFFLINE: "1", ATTNVIZ_NUM_THREADS: "1" },
  encoding: "utf8",
});
const page_path = printed.trim();
assert.equal(page_path, path.join(work, "seed.html"));

const { context, problems, close } = await launchChromium();
try {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push("page error: " + error.message));
  page.on("console", (message) => { if (message.type() === "error") problems.push("console error: " + message.text()); });
  await page.goto(pathToFileURL(page_path).href);

  // Head view: the sentence-pair filters, and what each one keeps.
  await page.locator('.av-tab[data-view="head"]').click();
  const filter = page.locator("select.av-filter");
  assert.deepEqual(await filter.locator("option").allTextContents(), ["All", "A→A", "B→B", "A→B", "B→A"]);
  const indices = async (side) => page.locator(".av-col-" + side + " .av-tok").evaluateAll(
    (nodes) => nodes.filter((node) => node.offsetParent !== null).map((node) => +node.dataset.index));
  const all = [...Array(17).keys()];  // [CLS] 7 tokens of A [SEP] 7 tokens of B [SEP]
  const a = all.slice(0, 9), b = all.slice(9);
  const expected = { "All": [all, all], "A→A": [a, a], "B→B": [b, b], "A→B": [a, b], "B→A": [b, a] };
  for (const [label, [queries, keys]] of Object.entries(expected)) {
    await filter.selectOption({ label });
    await page.waitForFunction(([q, n]) => document.querySelectorAll(".av-col-q .av-tok").length === n && q,
                               [true, queries.length], { timeout: 5000 });
    assert.deepEqual(await indices("q"), queries, label + ": query tokens");
    assert.deepEqual(await indices("k"), keys, label + ": key tokens");
  }

  // Model view: layers x heads thumbnails.
  await page.locator('.av-tab[data-view="model"]').click();
  await page.waitForSelector(".av-thumb");
  assert.equal(await page.locator(".av-thumb").count(), 2 * 2);

  assert.deepEqual(problems, []);
  console.log("seed page: head view filters and model view ok");
} finally {
  await close();
  fs.rmSync(work, { recursive: true, force: true });
}
