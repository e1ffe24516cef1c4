// Every number the matrix, model and neuron views print, checked against
// the exact values `attnviz export` writes for the same input: a sentence
// pair of about 120 tokens through the bundled demo model (4 layers x 4
// heads, real trained attention), as `attnviz view --view all` shows it.
// At least 200 random cells (seeded, so a failure repeats) per view. A
// printed weight must hold the exact value to the digits it prints ("0.0123"
// means 0.01225 .. 0.01235, "<0.001" means below 0.001), and a weight that is
// not zero never prints as zero. The neuron view's q·k × scale is printed
// with its error ("2.41 ±0.03"), which must hold the exact q·k × scale.
//
// Usage: node exact_numbers.test.mjs <attnviz binary> <demo model folder> <screenshot folder>
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "./chromium.mjs";
import { readNpz } from "./npz.mjs";
import { checkPrinted, printedRange } from "./printed.mjs";
import { makeTests } from "./harness.mjs";

const [cli, modelDir, shotsDir] = process.argv.slice(2);
if (!shotsDir) {
  console.error("usage: node exact_numbers.test.mjs <attnviz binary> <demo model folder> <screenshot folder>");
  process.exit(2);
}
fs.mkdirSync(shotsDir, { recursive: true });

const TEXT_A = "The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp and a small notebook " +
  "in which he recorded the weather, the ships that passed, and the birds that rested on the railing. In winter " +
  "the storms kept him awake for days, and he wrote by candlelight until the sea grew calm again.";
const TEXT_B = "Years later his granddaughter found the notebooks in a wooden chest and read them aloud to the children " +
  "of the village, who listened quietly while the wind rattled the windows and the fire burned low in the hearth.";
const SAMPLES = 200;

const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-exact-"));
const run = (args) => execFileSync(cli, args, { env: { ...process.env, HF_HUB_OFFLINE: "1", ATTNVIZ_NUM_THREADS: "1" }, encoding: "utf8" });
const input = ["--model", modelDir, "--text", TEXT_A, "--text-b", TEXT_B];
run(["view", ...input, "--view", "all", "-o", path.join(work, "page.html")]);
run(["export", ...input, "--queries-keys", "-o", path.join(work, "trace.npz")]);
const npz = readNpz(path.join(work, "trace.npz"));
const attentions = npz.get("attentions"), queries = npz.get("queries"), keys = npz.get("keys");
const [L, H, S] = attentions.shape, D = queries.shape[3];
const scoreScale = npz.get("score_scale").data;
const prob = (l, h, q, k) => attentions.data[((l * H + h) * S + q) * S + k];
const vector = (array, l, h, i) => array.data.subarray(((l * H + h) * S + i) * D, ((l * H + h) * S + i + 1) * D);
const scaledDot = (l, h, q, k) => {
  const a = vector(queries, l, h, q), b = vector(keys, l, h, k);
  let sum = 0;
  for (let i = 0; i < D; i++) sum += a[i] * b[i];
  return sum * scoreScale[l];
};
assert.ok(S >= 100, "a long input: " + S + " tokens");

// A small seeded generator (mulberry32), so a failing sample repeats.
let seed = 20261203;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (n) => Math.floor(random() * n);

const counts = { matrix: 0, model: 0, neuron: 0, neuronScores: 0 };
// A printed weight against the exact one (tests/browser/printed.mjs says what
// each form promises); the slack covers float32 -> decimal conversions only.
function checkWeight(text, exact, where) {
  const wrong = checkPrinted(text, exact, 1e-12 + 1e-9 * exact);
  assert.ok(wrong === null, `${where}: ${wrong}`);
}

const { context, problems, close } = await launchChromium();
const { results, test } = makeTests();
async function open() {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push("page error: " + error.message));
  page.on("console", (message) => { if (message.type() === "error") problems.push("console error: " + message.text()); });
  await page.goto(pathToFileURL(path.join(work, "page.html")).href);
  return page;
}
// Waits until the element drew again after an action (its data-drawn grew).
async function act(scope, action) {
  const handle = await scope.elementHandle();
  const before = await handle.evaluate((n) => +(n.dataset.drawn || 0));
  await action();
  await scope.page().waitForFunction(([n, count]) => +(n.dataset.drawn || 0) > count, [handle, before], { timeout: 5000 });
}
async function hoverQuery(scope, index) {
  await scope.page().mouse.move(1, 1);
  await scope.locator('.av-col-q .av-tok[data-index="' + index + '"]').hover();
}
// The weights printed beside the key tokens: Map index -> text.
async function keyNumbers(scope) {
  const entries = await scope.locator(".av-col-k .av-tok").evaluateAll((nodes) =>
    nodes.map((n) => [+n.dataset.index, n.querySelector(".av-w").textContent, n.dataset.score]));
  return entries.filter(([, text]) => text !== "");
}

await test(`matrix view: ${SAMPLES} random cells`, async () => {
  const page = await open();
  await page.locator('.av-tab[data-view="matrix"]').click();
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  const canvas = panel.locator(".av-matrix-canvas"), readout = panel.locator(".av-readout");
  for (let i = 0; i < SAMPLES; i++) {
    const l = pick(L), h = pick(H), q = pick(S), k = pick(S);
    if (+(await panel.getAttribute("data-layer")) !== l) await act(panel, () => panel.locator(".av-layer").selectOption(String(l)));
    if (+(await panel.getAttribute("data-head")) !== h) await act(panel, () => panel.locator(".av-head").selectOption(String(h)));
    const g = await canvas.evaluate((c) => ({ cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top, box: c.getBoundingClientRect().toJSON() }));
    await page.mouse.move(g.box.x + g.left + (k + 0.5) * g.cell, g.box.y + g.top + (q + 0.5) * g.cell);
    await page.waitForFunction(([n, q, k]) => n.dataset.query === String(q) && n.dataset.key === String(k) &&
      /^[<0-9]/.test(n.querySelector(".av-value")?.textContent || ""), [await readout.elementHandle(), q, k], { timeout: 5000 });
    checkWeight(await readout.locator(".av-value").textContent(), prob(l, h, q, k), `matrix layer ${l} head ${h} cell ${q},${k}`);
    counts.matrix++;
  }
  await page.close();
});

await test(`model view: ${SAMPLES}+ random cells in the detail`, async () => {
  const page = await open();
  await page.locator('.av-tab[data-view="model"]').click();
  const panel = page.locator(".av-panel-model");
  await page.waitForSelector(".av-panel-model[data-drawn]");
  while (counts.model < SAMPLES) {
    const l = pick(L), h = pick(H);
    await panel.locator(`.av-thumb[data-layer="${l}"][data-head="${h}"]`).click();
    const body = panel.locator(".av-detail-body");
    await page.waitForFunction((n) => n.dataset.drawn, await body.elementHandle());
    for (let n = 0; n < 3; n++) {
      const q = pick(S);
      await hoverQuery(body, q);
      // The numbers need the layer's exact stream: until it is decoded the focus is drawn
      // with no numbers (data-exact "") and the pane says "all" of none. Under load the
      // decode outlasts the hover (this test failed so when run beside the other browser
      // tests), so wait for data-exact too, as acceptance.test.mjs does.
      // Over 100 keys: the numbers far from the visible band follow a moment later.
      await page.waitForFunction(([n, focus]) => n.dataset.focus === focus && n.dataset.exact === "1" &&
        n.querySelector(".av-scroll").dataset.numbers === "all",
        [await body.elementHandle(), "q:" + q], { timeout: 5000 });
      const printed = await keyNumbers(body);
      assert.equal(printed.length, S, "a weight for every key");
      // a random sample of the row's keys
      for (let j = 0; j < 12; j++) {
        const [k, text] = printed[pick(printed.length)];
        checkWeight(text, prob(l, h, q, k), `model detail layer ${l} head ${h} cell ${q},${k}`);
        counts.model++;
      }
      // and every key of the row: no non-zero weight prints as zero
      for (const [k, text] of printed) if (prob(l, h, q, k) > 0) assert.ok(printedRange(text).value !== 0, `model detail ${l}/${h} ${q},${k} prints ${text}`);
    }
    await panel.locator(`.av-thumb[data-layer="${l}"][data-head="${h}"]`).click();  // close
  }
  await page.close();
});

await test(`neuron view: ${SAMPLES}+ random weights and scores`, async () => {
  const page = await open();
  await page.locator('.av-tab[data-view="neuron"]').click();
  const panel = page.locator(".av-panel-neuron");
  await page.waitForSelector(".av-panel-neuron[data-drawn]");
  await act(panel, () => panel.locator(".av-expand").click());
  while (counts.neuron < SAMPLES) {
    const l = pick(L), h = pick(H), q = pick(S);
    if (+(await panel.getAttribute("data-layer")) !== l) await act(panel, () => panel.locator(".av-layer").selectOption(String(l)));
    if (+(await panel.getAttribute("data-head")) !== h) await act(panel, () => panel.locator(".av-head").selectOption(String(h)));
    await hoverQuery(panel, q);
    await page.waitForFunction(([n, query]) => n.dataset.query === query, [await panel.elementHandle(), String(q)], { timeout: 5000 });
    const printed = await keyNumbers(panel);
    assert.equal(printed.length, S, "a weight for every key");
    for (let j = 0; j < 25; j++) {
      const [k, text, score] = printed[pick(printed.length)];
      checkWeight(text, prob(l, h, q, k), `neuron layer ${l} head ${h} cell ${q},${k}`);
      counts.neuron++;
      const match = /^(-?[0-9.]+) ±([0-9.]+)$/.exec(score);
      assert.ok(match, `neuron ${l}/${h} ${q}·${k}: score "${score}" states its error`);
      const exact = scaledDot(l, h, q, k);
      assert.ok(Math.abs(+match[1] - exact) <= +match[2] + 1e-9, `neuron ${l}/${h} ${q}·${k}: "${score}" does not hold q·k × scale = ${exact}`);
      counts.neuronScores++;
    }
  }
  await page.close();
});

await close();
fs.rmSync(work, { recursive: true, force: true });
for (const [name, status, ms] of results) console.log(`${status.padEnd(6)} ${name} (${ms} ms)`);
console.log(`cells checked: ${JSON.stringify(counts)} (${S} tokens, ${L} layers x ${H} heads)`);
for (const problem of problems) console.error("PROBLEM " + problem);
const failed = results.filter(([, status]) => status !== "ok").length + problems.length;
console.log(failed ? `${failed} failure(s)` : "all exact-number checks passed");
process.exit(failed ? 1 : 0);
