// Browser tests of the HTML views: headless Debian chromium driven by
// playwright-core. Opens the pages tests/browser/make_pages.cpp wrote,
// interacts with each view as a user would, and checks what is drawn against
// the exact trace values in each page's JSON sidecar (within the payload's
// 8-bit quantization step). Also checks that hostile token text stays text,
// that no script of it runs, that the pages make no network request, and
// that several fragments on one page do not interfere. Saves screenshots.
//
// Usage: node views.test.mjs <pages folder> <screenshot folder>
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "./chromium.mjs";
import { checkPrinted } from "./printed.mjs";
import { makeTests } from "./harness.mjs";

const [pagesDir, shotsDir] = process.argv.slice(2);
if (!pagesDir || !shotsDir) {
  console.error("usage: node views.test.mjs <pages folder> <screenshot folder>");
  process.exit(2);
}
fs.mkdirSync(shotsDir, { recursive: true });

// ---- the trace's exact values ---------------------------------------------------

function sidecar(name) {
  const trace = JSON.parse(fs.readFileSync(path.join(pagesDir, name + ".json"), "utf8"));
  for (const block of trace.blocks) {
    const { heads, queries: nq, keys: nk } = block;
    block.prob = (l, h, q, k) => block.probs[((l * heads + h) * nq + q) * nk + k];
    block.rowMax = (l, h, q) => { let m = 0; for (let k = 0; k < nk; k++) m = Math.max(m, block.prob(l, h, q, k)); return m; };
    // The payload's bound: half a step of 8-bit per-row quantization.
    block.tolerance = (l, h, q) => block.rowMax(l, h, q) / 510 + 1e-6;
    // The additive score bias (-Infinity where the sidecar's JSON says null), or 0.
    block.bias = (l, h, q, k) => {
      if (!block.scoreBiasLayers) return 0;
      const v = block.scoreBias[(((block.scoreBiasLayers === 1 ? 0 : l) * heads + h) * nq + q) * nk + k];
      return v === null ? -Infinity : v;
    };
    block.vector = (which, l, h, i) => {
      const n = which === "q" ? nq : nk, d = block.headDim, values = which === "q" ? block.queryVectors : block.keyVectors;
      const at = ((l * heads + h) * n + i) * d;
      return values.slice(at, at + d);
    };
  }
  return trace;
}

// A shown weight (text) against the trace's exact one, as tests/browser/printed.mjs
// reads what the page prints ("<0.001" is a weight in (0, 0.001), never a
// number); tolerance: how far the reference may be from the weights the page
// printed from.
function assertShown(text, exact, tolerance, where) {
  const wrong = checkPrinted(text, exact, tolerance);
  assert.ok(wrong === null, where + ": " + wrong);
}

// ---- browser ----------------------------------------------------------------------

const { context, problems, close } = await launchChromium();

async function open(name) {
  const page = await context.newPage();
  page.on("dialog", (dialog) => { problems.push(name + ": a dialog opened: " + dialog.message()); dialog.dismiss(); });
  page.on("pageerror", (error) => problems.push(name + ": page error: " + error.message));
  page.on("console", (message) => { if (message.type() === "error") problems.push(name + ": console error: " + message.text()); });
  await page.goto(pathToFileURL(path.join(pagesDir, name + ".html")).href);
  return page;
}

// Waits until the panel drew again after an action.
async function drawn(panel, before) {
  await panel.page().waitForFunction(
    ([node, count]) => +(node.dataset.drawn || 0) > count, [await panel.elementHandle(), before], { timeout: 5000 });
}
// Hovers a token from outside it, so the pointer really enters it even when
// the columns were rebuilt under a pointer that did not move.
async function hoverToken(scope, side, index) {
  await scope.page().mouse.move(1, 1);
  await scope.locator(".av-col-" + side + ' .av-tok[data-index="' + index + '"]').hover();
}
// Runs an action and waits until the panel redrew, then two more animation
// frames, so no redraw queued by this or an earlier action is still pending.
async function act(panel, action) {
  const before = +((await panel.getAttribute("data-drawn")) || 0);
  await action();
  await drawn(panel, before);
  await panel.page().evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}
const data = async (panel, key) => panel.getAttribute("data-" + key);

// The numbers shown beside one side's tokens: Map index -> printed text.
async function numbers(scope, side) {
  const entries = await scope.locator(".av-col-" + side + " .av-tok").evaluateAll((nodes) =>
    nodes.map((node) => [+node.dataset.index, node.querySelector(".av-w").textContent]));
  return new Map(entries.filter(([, text]) => text !== ""));
}

// Opacity of the canvas at a token's weight box (alpha over a transparent canvas).
async function boxAlpha(scope, side, index) {
  return scope.evaluate((root, [side, index]) => {
    const column = root.querySelector(".av-col-" + side), node = column.querySelector('.av-tok[data-index="' + index + '"]');
    const canvas = root.querySelector(".av-canvas"), scroll = root.querySelector(".av-scroll");
    const x = column.offsetLeft + 3, y = node.offsetTop + 10 - scroll.scrollTop;
    const ratio = canvas.width / canvas.clientWidth;
    return canvas.getContext("2d").getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data[3] / 255;
  }, [side, index]);
}

const { results, test } = makeTests();

// ---- head view -----------------------------------------------------------------

await test("head view: solo, toggle, hover both sides, layer, filters, sink controls, theme", async () => {
  const trace = sidecar("pair"), block = trace.blocks[0];
  const page = await open("pair");
  const panel = page.locator(".av-panel-head");
  await page.waitForSelector(".av-panel-head[data-drawn]");
  assert.equal(await data(panel, "active"), "0,1,2,3");
  assert.ok(+(await data(panel, "lines")) > 0, "lines are drawn");
  const tokens = trace.sequences[0].tokens;
  assert.equal(await panel.locator(".av-col-q .av-tok").count(), tokens.length);
  assert.equal(await panel.locator('.av-col-k .av-tok[data-index="12"] .av-text').textContent(), "d");  // "##d" prettified
  assert.match(await panel.locator('.av-col-k .av-tok[data-index="12"]').getAttribute("title"), /^##d /);  // raw on hover

  // Double-click solos head 2; click toggles head 0 on and off.
  await act(panel, () => panel.locator('.av-swatch[data-head="2"]').dblclick());
  assert.equal(await data(panel, "active"), "2");
  assert.equal(await panel.locator(".av-swatch.av-off").count(), 3);
  await act(panel, () => panel.locator('.av-swatch[data-head="0"]').click());
  assert.equal(await data(panel, "active"), "0,2");
  await act(panel, () => panel.locator('.av-swatch[data-head="0"]').click());
  assert.equal(await data(panel, "active"), "2");

  // Hover a query: its weights to every key, as numbers and as box opacity.
  await act(panel, () => hoverToken(panel, "q", 2));
  assert.equal(await data(panel, "focus"), "q:2");
  let shown = await numbers(panel, "k");
  assert.equal(shown.size, tokens.length);
  for (let k = 0; k < tokens.length; k++) {
    const exact = block.prob(0, 2, 2, k);
    assertShown(shown.get(k), exact, block.tolerance(0, 2, 2), `head 2, 2→${k}: shown ${shown.get(k)}, trace ${exact}`);
    const alpha = await boxAlpha(panel, "k", k);
    assert.ok(Math.abs(alpha - exact) <= block.tolerance(0, 2, 2) + 1 / 255, `box opacity 2→${k}: ${alpha} vs ${exact}`);
  }
  await page.screenshot({ path: path.join(shotsDir, "head.png") });

  // Hover a key: the weights of every query to it.
  await act(panel, () => hoverToken(panel, "k", 1));
  assert.equal(await data(panel, "focus"), "k:1");
  shown = await numbers(panel, "q");
  for (let q = 0; q < tokens.length; q++) {
    const exact = block.prob(0, 2, q, 1);
    assertShown(shown.get(q), exact, block.tolerance(0, 2, q), `head 2, ${q}→1`);
  }
  assert.equal((await numbers(panel, "k")).size, 0, "the hovered side shows no numbers");

  // Another layer.
  await act(panel, () => panel.locator(".av-layer").selectOption("1"));
  assert.equal(await data(panel, "layer"), "1");
  await act(panel, () => hoverToken(panel, "q", 5));
  shown = await numbers(panel, "k");
  for (let k = 0; k < tokens.length; k++)
    assertShown(shown.get(k), block.prob(1, 2, 5, k), block.tolerance(1, 2, 5), `layer 1, 5→${k}`);

  // Pin a query, hover a key: per-head weights in the readout (all heads shown).
  await act(panel, () => panel.locator('.av-swatch[data-head="2"]').dblclick());
  assert.equal(await data(panel, "active"), "0,1,2,3");
  await act(panel, () => panel.locator('.av-col-q .av-tok[data-index="3"]').click());
  await act(panel, () => hoverToken(panel, "k", 6));
  const readout = await panel.locator(".av-readout").textContent();
  for (let head = 0; head < 4; head++) {
    const match = readout.match(new RegExp("H" + head + " ([<0-9.e-]+)"));
    assert.ok(match, "readout names head " + head + ": " + readout);
    assertShown(match[1], block.prob(1, head, 3, 6), block.tolerance(1, head, 3), `readout head ${head}, 3→6`);
  }
  await act(panel, () => panel.locator('.av-col-q .av-tok[data-index="3"]').click());  // unpin

  // Sentence-pair filter A→B: queries of text A, keys of text B.
  await act(panel, () => panel.locator(".av-filter").selectOption({ label: "A→B" }));
  assert.equal(await data(panel, "filter"), "A→B");
  const bStart = tokens.findIndex((t, i) => i > 0 && t.raw === "it");
  const qIndices = await panel.locator(".av-col-q .av-tok").evaluateAll((n) => n.map((x) => +x.dataset.index));
  const kIndices = await panel.locator(".av-col-k .av-tok").evaluateAll((n) => n.map((x) => +x.dataset.index));
  assert.deepEqual(qIndices, [...Array(bStart).keys()]);
  assert.deepEqual(kIndices, [...Array(tokens.length - bStart).keys()].map((i) => i + bStart));
  for (const label of ["All", "A→A", "B→B", "B→A"]) await panel.locator(".av-filter").selectOption({ label });
  await act(panel, () => panel.locator(".av-filter").selectOption({ label: "All" }));

  // Hide special tokens: they leave, and each row is renormalized over the rest.
  await act(panel, () => page.locator(".av-hide-special").check());
  const special = tokens.map((t) => t.special);
  assert.equal(await panel.locator(".av-col-k .av-tok").count(), special.filter((s) => !s).length);
  await act(panel, () => panel.locator('.av-swatch[data-head="1"]').dblclick());
  await act(panel, () => hoverToken(panel, "q", 4));
  shown = await numbers(panel, "k");
  let rest = 0;
  for (let k = 0; k < tokens.length; k++) if (!special[k]) rest += block.prob(1, 1, 4, k);
  for (let k = 0; k < tokens.length; k++) {
    if (special[k]) { assert.ok(!shown.has(k)); continue; }
    const exact = block.prob(1, 1, 4, k) / rest;
    assertShown(shown.get(k), exact, (block.tolerance(1, 1, 4) * 2) / rest, `renormalized 4→${k}: ${shown.get(k)} vs ${exact}`);
  }
  await act(panel, () => page.locator(".av-hide-special").uncheck());

  // Log colour scale and per-row scaling change the drawn opacity, not the numbers.
  await act(panel, () => hoverToken(panel, "q", 4));
  const k = 5, w = block.prob(1, 1, 4, k), top = block.rowMax(1, 1, 4);
  await act(panel, () => page.locator(".av-scaling").selectOption("row"));
  assert.ok(Math.abs((await boxAlpha(panel, "k", k)) - w / top) <= 2 / 255 + 0.5 / 255, "per-row scaling: w / row max");
  await act(panel, () => page.locator(".av-scale").selectOption("log"));
  const expected = w / top > 0.001 ? 1 + Math.log10(w / top) / 3 : 0;
  assert.ok(Math.abs((await boxAlpha(panel, "k", k)) - expected) <= 0.02, "log scale over three decades");
  assertShown((await numbers(panel, "k")).get(k), w, block.tolerance(1, 1, 4), `4→${k}`);
  await page.locator(".av-scale").selectOption("linear");
  await page.locator(".av-scaling").selectOption("global");

  // Light/dark toggle.
  const light = await page.locator(".av-app").evaluate((n) => getComputedStyle(n).backgroundColor);
  await page.locator(".av-theme").click();
  assert.equal(await page.locator(".av-app").getAttribute("data-theme"), "dark");
  assert.notEqual(await page.locator(".av-app").evaluate((n) => getComputedStyle(n).backgroundColor), light);
  await page.close();
});

await test("head view: encoder-decoder filter and a distinct colour per head (16 heads)", async () => {
  const trace = sidecar("encdec");
  const page = await open("encdec");
  const panel = page.locator(".av-panel-head");
  await page.waitForSelector(".av-panel-head[data-drawn]");
  const labels = await panel.locator(".av-filter option").allTextContents();
  assert.deepEqual(labels, ["Encoder", "Decoder", "Cross"]);
  await act(panel, () => panel.locator(".av-filter").selectOption({ label: "Cross" }));
  assert.equal(await panel.locator(".av-col-q .av-tok").count(), 6);   // decoder tokens
  assert.equal(await panel.locator(".av-col-k .av-tok").count(), 11);  // encoder tokens
  await act(panel, () => panel.locator('.av-swatch[data-head="1"]').dblclick());
  await act(panel, () => panel.locator(".av-layer").selectOption("1"));
  await act(panel, () => hoverToken(panel, "q", 2));
  const cross = trace.blocks[2], shown = await numbers(panel, "k");
  for (let k = 0; k < 11; k++)
    assertShown(shown.get(k), cross.prob(1, 1, 2, k), cross.tolerance(1, 1, 2), `cross 2→${k}`);
  await act(panel, () => panel.locator(".av-filter").selectOption({ label: "Decoder" }));
  await act(panel, () => hoverToken(panel, "q", 2));
  const decoder = await numbers(panel, "k");
  for (let k = 3; k < 6; k++) assert.equal(decoder.get(k), "0", "causal decoder: no weight on future keys");
  await page.close();

  const many = await open("heads16");
  await many.waitForSelector(".av-panel-head[data-drawn]");
  const colors = await many.locator(".av-swatch").evaluateAll((nodes) => nodes.map((n) => getComputedStyle(n).backgroundColor));
  assert.equal(colors.length, 16);
  const rgb = colors.map((c) => c.match(/\d+/g).slice(0, 3).map(Number));
  for (let i = 0; i < 16; i++)
    for (let j = i + 1; j < 16; j++) {
      const distance = Math.hypot(...rgb[i].map((v, c) => v - rgb[j][c]));
      assert.ok(distance > 40, `heads ${i} and ${j} look alike: ${colors[i]} ${colors[j]}`);
    }
  await many.close();
});

// ---- model view ----------------------------------------------------------------

await test("model view: thumbnails, click one, hover tokens in its head view", async () => {
  const trace = sidecar("pair"), block = trace.blocks[0];
  const page = await open("pair");
  await page.locator('.av-tab[data-view="model"]').click();
  const panel = page.locator(".av-panel-model");
  await page.waitForSelector(".av-panel-model[data-drawn]");
  assert.equal(await panel.locator(".av-thumb").count(), 2 * 4);
  // A thumbnail is drawn: its pixels are not all empty.
  const inked = await panel.locator('.av-thumb[data-layer="1"][data-head="3"]').evaluate((c) =>
    c.getContext("2d").getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0));
  assert.ok(inked);
  await panel.locator('.av-thumb[data-layer="1"][data-head="3"]').click();
  const detail = panel.locator(".av-detail");
  assert.equal(await detail.getAttribute("data-layer"), "1");
  assert.equal(await detail.getAttribute("data-head"), "3");
  const head = detail.locator(".av-detail-body");
  await page.waitForFunction((n) => n.dataset.drawn, await head.elementHandle());
  assert.equal(await head.getAttribute("data-active"), "3");
  assert.equal(await head.getAttribute("data-layer"), "1");
  await act(head, () => hoverToken(head, "q", 7));
  const shown = await numbers(head, "k");
  for (let k = 0; k < block.keys; k++)
    assertShown(shown.get(k), block.prob(1, 3, 7, k), block.tolerance(1, 3, 7), `detail 7→${k}`);
  await page.screenshot({ path: path.join(shotsDir, "model.png"), fullPage: true });
  await page.close();
});

// ---- neuron view ---------------------------------------------------------------

await test("neuron view: expand, hover a query, q·k and softmax; causal hides future keys", async () => {
  const trace = sidecar("causal"), block = trace.blocks[0];
  const page = await open("causal");
  await page.locator('.av-tab[data-view="neuron"]').click();
  const panel = page.locator(".av-panel-neuron");
  await page.waitForSelector(".av-panel-neuron[data-drawn]");
  await act(panel, () => panel.locator(".av-layer").selectOption("2"));
  await act(panel, () => panel.locator(".av-head").selectOption("1"));
  await act(panel, () => panel.locator(".av-expand").click());
  assert.equal(await data(panel, "expanded"), "1");
  const q = 4;
  await act(panel, () => hoverToken(panel, "q", q));
  assert.equal(await data(panel, "query"), String(q));
  const shown = await numbers(panel, "k");
  const scores = await panel.locator(".av-col-k .av-tok").evaluateAll((n) => n.map((x) => x.dataset.score));
  const query = block.vector("q", 2, 1, q);
  for (let k = 0; k < block.keys; k++) {
    const masked = await panel.locator('.av-col-k .av-tok[data-index="' + k + '"]').evaluate((n) => n.classList.contains("av-masked"));
    if (k > q) {
      assert.ok(!shown.has(k) && masked, "future key " + k + " is hidden");
      continue;
    }
    const key = block.vector("k", 2, 1, k);
    const exactScore = block.scoreScale * query.reduce((sum, v, i) => sum + v * key[i], 0);
    // From 8-bit vectors, printed with the most rounding can move it: "2.41 ±0.03".
    assertWithin(scores[k], exactScore, `score ${q}·${k}`);
    const exact = block.prob(2, 1, q, k);
    assertShown(shown.get(k), exact, block.tolerance(2, 1, q), `softmax ${q}→${k}: ${shown.get(k)} vs ${exact}`);
  }
  const legend = await panel.locator(".av-legend span").allTextContents();
  assert.deepEqual(legend, ["query q", "key k", "q × k", "q·k × scale", "softmax"], "no bias column without a bias");
  assert.ok(!(await panel.locator(".av-note").isVisible()), "no decomposition note");
  // The vectors are drawn (cells left of the numbers).
  const ink = await panel.evaluate((root) => {
    const c = root.querySelector(".av-canvas");
    return c.getContext("2d").getImageData(0, 0, c.width, c.height).data.filter((v, i) => i % 4 === 3 && v > 0).length;
  });
  assert.ok(ink > 500, "vectors drawn: " + ink);
  await page.close();

  // Screenshot on the sentence pair, where more keys are visible.
  const pair = await open("pair");
  await pair.locator('.av-tab[data-view="neuron"]').click();
  const pairPanel = pair.locator(".av-panel-neuron");
  await pair.waitForSelector(".av-panel-neuron[data-drawn]");
  await act(pairPanel, () => pairPanel.locator(".av-head").selectOption("1"));
  await act(pairPanel, () => pairPanel.locator(".av-expand").click());
  await act(pairPanel, () => pairPanel.locator('.av-col-q .av-tok[data-index="3"]').click());
  await pair.mouse.move(5, 5);
  await pair.screenshot({ path: path.join(shotsDir, "neuron.png") });
  await pair.close();
});

// A number printed with its error, "2.41 ±0.03", holds the exact value.
function assertWithin(text, exact, where) {
  const match = /^(-?[0-9.]+) ±([0-9.]+)$/.exec(text);
  assert.ok(match, `${where}: "${text}" is a value and its error`);
  assert.ok(Math.abs(+match[1] - exact) <= +match[2] + 1e-9, `${where}: ${text} does not hold ${exact}`);
  return +match[2];
}

// The most q·k can move when q and k are rounded to the payload's int8 vectors
// (steps max|x| / 127, errors at most half a step per entry).
function quantizedDotBound(query, key) {
  const step = (v) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0) / 127;
  const sum = (v) => v.reduce((a, x) => a + Math.abs(x), 0);
  const sq = step(query), sk = step(key);
  return (sk / 2) * sum(query) + (sq / 2) * sum(key) + (query.length * sq * sk) / 4;
}

// softmax of exact scores.
function softmax(scores) {
  const top = Math.max(...scores), e = scores.map((s) => Math.exp(s - top)), sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

await test("neuron view: a T5-like position bias is its own column and the softmax is the trace's", async () => {
  const trace = sidecar("t5bias");
  const page = await open("t5bias");
  await page.locator('.av-tab[data-view="neuron"]').click();
  const panel = page.locator(".av-panel-neuron");
  await page.waitForSelector(".av-panel-neuron[data-drawn]");
  await act(panel, () => panel.locator(".av-expand").click());
  // encoder: bidirectional bias; decoder: causal, its bias shared by both layers as well
  for (const [name, layer, head, q] of [["encoder", 1, 2, 5], ["decoder", 1, 1, 4], ["decoder", 0, 2, 4]]) {
    const block = trace.blocks.find((b) => b.name === name), where = `${name} ${layer}/${head}/${q}`;
    await act(panel, () => panel.locator(".av-block").selectOption({ label: name }));
    await act(panel, () => panel.locator(".av-layer").selectOption(String(layer)));
    await act(panel, () => panel.locator(".av-head").selectOption(String(head)));
    await act(panel, () => hoverToken(panel, "q", q));
    assert.equal(await data(panel, "query"), String(q));
    assert.deepEqual(await panel.locator(".av-legend span").allTextContents(),
      ["query q", "key k", "q × k", "q·k × scale", "bias", "score", "softmax"], where + ": a bias column");
    assert.ok(!(await panel.locator(".av-note").isVisible()), where + ": decomposable, no note");
    const shown = await numbers(panel, "k");
    const nodes = await panel.locator(".av-col-k .av-tok").evaluateAll((n) => n.map((x) => ({ ...x.dataset })));
    const seen = block.causal ? q + 1 : block.keys;
    assert.equal(shown.size, seen, where + ": every key the query sees has a weight");
    const query = block.vector("q", layer, head, q), withBias = [], withoutBias = [];
    for (let k = 0; k < seen; k++) {
      const key = block.vector("k", layer, head, k);
      const scaled = block.scoreScale * query.reduce((sum, v, i) => sum + v * key[i], 0);
      withBias.push(scaled + block.bias(layer, head, q, k));
      withoutBias.push(scaled);
      const node = nodes.find((n) => +n.index === k);
      assert.ok(Math.abs(+node.bias - block.bias(layer, head, q, k)) <= 5e-3 + 1e-6, `${where}: bias of key ${k}: ${node.bias} vs ${block.bias(layer, head, q, k)}`);
      // The stated error is the payload's bound (plus printing), not more.
      const error = assertWithin(node.score, scaled, `${where}: q·k of key ${k}`);
      const bound = block.scoreScale * quantizedDotBound(query, key);
      assert.ok(error <= 2 * bound + 0.01, `${where}: error ${error} is near the bound ${bound}`);
      assertWithin(node.total, scaled + block.bias(layer, head, q, k), `${where}: score of key ${k}`);
    }
    const recomputed = softmax(withBias), unbiased = softmax(withoutBias);
    for (let k = 0; k < seen; k++) {
      const exact = block.prob(layer, head, q, k);
      assert.ok(Math.abs(recomputed[k] - exact) <= 1e-5, `${where}: the trace is softmax(q·k × scale + bias) at key ${k}`);
      assertShown(shown.get(k), exact, block.tolerance(layer, head, q), `${where}: softmax ${q}→${k}: shown ${shown.get(k)}, trace ${exact}`);
    }
    // The bias matters here: softmax(q·k × scale) alone is far from the trace (the bug of issue 11).
    assert.ok(unbiased.some((p, k) => Math.abs(p - block.prob(layer, head, q, k)) > 0.05), where + ": the page exercises the bias");
    for (let k = seen; k < block.keys; k++)
      assert.ok(nodes.find((n) => +n.index === k).bias === "" && !shown.has(k), `${where}: future key ${k} is hidden`);
  }
  // Cross attention adds no bias: no bias column.
  await act(panel, () => panel.locator(".av-block").selectOption({ label: "cross" }));
  await act(panel, () => hoverToken(panel, "q", 2));
  assert.deepEqual(await panel.locator(".av-legend span").allTextContents(), ["query q", "key k", "q × k", "q·k × scale", "softmax"]);
  await act(panel, () => panel.locator(".av-block").selectOption({ label: "encoder" }));
  await act(panel, () => panel.locator('.av-col-q .av-tok[data-index="5"]').click());
  await page.mouse.move(5, 5);
  await page.screenshot({ path: path.join(shotsDir, "neuron-bias.png") });
  await page.close();
});

await test("neuron view: a relative_key block says its score cannot be decomposed", async () => {
  const trace = sidecar("relkey"), block = trace.blocks[0];
  assert.equal(block.decomposable, false);
  const page = await open("relkey");
  await page.locator('.av-tab[data-view="neuron"]').click();
  const panel = page.locator(".av-panel-neuron");
  await page.waitForSelector(".av-panel-neuron[data-drawn]");
  const note = panel.locator(".av-note");
  assert.ok(await note.isVisible(), "the note is shown");
  assert.match(await note.textContent(), /cannot be decomposed into q·k × scale \+ a bias/);
  await act(panel, () => panel.locator(".av-layer").selectOption("1"));
  await act(panel, () => panel.locator(".av-expand").click());
  const q = 6;
  await act(panel, () => hoverToken(panel, "q", q));
  assert.deepEqual(await panel.locator(".av-legend span").allTextContents(), ["query q", "key k", "q × k", "q·k × scale", "attention"]);
  const shown = await numbers(panel, "k");
  assert.equal(shown.size, block.keys);
  const query = block.vector("q", 1, 0, q), unbiased = [];
  for (let k = 0; k < block.keys; k++) {
    const key = block.vector("k", 1, 0, k);
    unbiased.push(block.scoreScale * query.reduce((sum, v, i) => sum + v * key[i], 0));
  }
  const naive = softmax(unbiased);
  for (let k = 0; k < block.keys; k++) {
    const exact = block.prob(1, 0, q, k);
    assertShown(shown.get(k), exact, block.tolerance(1, 0, q), `weight ${q}→${k}: shown ${shown.get(k)}, trace ${exact}`);
  }
  // What the page must not print: softmax(q·k × scale) disagrees with the trace here.
  assert.ok(naive.some((p, k) => Math.abs(p - block.prob(1, 0, q, k)) > 0.05), "the page exercises a query-dependent term");
  const totals = await panel.locator(".av-col-k .av-tok").evaluateAll((n) => n.map((x) => x.dataset.total));
  assert.ok(totals.every((t) => t === ""), "no total score is claimed");
  await page.screenshot({ path: path.join(shotsDir, "neuron-relative.png") });
  await page.close();
});

// ---- matrix view ---------------------------------------------------------------

await test("matrix view: block, layer, head, hover a cell", async () => {
  const trace = sidecar("encdec"), cross = trace.blocks[2];
  const page = await open("encdec");
  await page.locator('.av-tab[data-view="matrix"]').click();
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  await act(panel, () => panel.locator(".av-block").selectOption({ label: "cross" }));
  await act(panel, () => panel.locator(".av-layer").selectOption("1"));
  await act(panel, () => panel.locator(".av-head").selectOption("2"));
  const canvas = panel.locator(".av-matrix-canvas");
  const box = await canvas.boundingBox();
  const cell = +(await canvas.getAttribute("data-cell")), left = +(await canvas.getAttribute("data-left")), top = +(await canvas.getAttribute("data-top"));
  for (const [row, col] of [[3, 5], [0, 0], [5, 10]]) {
    await act(panel, () => page.mouse.move(box.x + left + (col + 0.5) * cell, box.y + top + (row + 0.5) * cell));
    const readout = panel.locator(".av-readout");
    assert.equal(await readout.getAttribute("data-query"), String(row));
    assert.equal(await readout.getAttribute("data-key"), String(col));
    // The exact weight follows its layer's exact stream: "…" until it is in.
    await page.waitForFunction((node) => /^[<0-9]/.test(node.querySelector(".av-value")?.textContent || ""), await readout.elementHandle(), { timeout: 5000 });
    const weight = await readout.locator(".av-value").textContent();
    const exact = cross.prob(1, 2, row, col);
    assertShown(weight, exact, cross.tolerance(1, 2, row), `cell ${row},${col}: ${weight}`);
    assert.match(await readout.textContent(), new RegExp('query "' + trace.sequences[1].tokens[row].display.trim() + '"'));
  }
  await page.close();

  const pair = await open("pair");
  await pair.locator('.av-tab[data-view="matrix"]').click();
  const pairPanel = pair.locator(".av-panel-matrix");
  await pair.waitForSelector(".av-panel-matrix[data-drawn]");
  await act(pairPanel, () => pairPanel.locator(".av-head").selectOption("3"));
  const pairCanvas = pairPanel.locator(".av-matrix-canvas"), pbox = await pairCanvas.boundingBox();
  const pcell = +(await pairCanvas.getAttribute("data-cell"));
  const pleft = +(await pairCanvas.getAttribute("data-left")), ptop = +(await pairCanvas.getAttribute("data-top"));
  await act(pairPanel, () => pair.mouse.move(pbox.x + pleft + 6.5 * pcell, pbox.y + ptop + 3.5 * pcell));
  await pair.screenshot({ path: path.join(shotsDir, "matrix.png") });
  await pair.close();
});

// Bounding boxes of the elements a locator finds (visible ones only).
async function boxes(locator) {
  return locator.evaluateAll((nodes) => nodes.filter((n) => n.offsetParent !== null && getComputedStyle(n).display !== "none")
    .map((n) => { const r = n.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height, right: r.right, bottom: r.bottom, text: n.textContent, index: n.dataset.index }; }));
}
function assertNoOverlap(list, where) {
  for (let i = 0; i < list.length; i++)
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i], b = list[j];
      const overlap = a.x < b.right - 0.5 && b.x < a.right - 0.5 && a.y < b.bottom - 0.5 && b.y < a.bottom - 0.5;
      assert.ok(!overlap, `${where}: "${a.text}" and "${b.text}" overlap: ${JSON.stringify([a, b])}`);
    }
}
// The matrix canvas's geometry: cell size, margins, corner (x0, y0) and fitted cell.
async function matrixGeometry(panel) {
  return panel.locator(".av-matrix-canvas").evaluate((c) => ({
    cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top, x0: +c.dataset.x0, y0: +c.dataset.y0, fit: +c.dataset.fit,
    box: c.getBoundingClientRect().toJSON(),
  }));
}
// Dispatches an input event in the page (on the element `selector` finds)
// and returns the ms until the frame after the redraw it caused was painted:
// the view redraws in the first animation frame, the second comes after paint.
async function frameAfter(panel, selector, type, init) {
  const before = +((await panel.getAttribute("data-drawn")) || 0);
  const ms = await panel.locator(selector).evaluate((node, [type, init]) => {
    const started = performance.now();
    const Event = { wheel: WheelEvent, keydown: KeyboardEvent, pointermove: PointerEvent, click: MouseEvent }[type];
    node.dispatchEvent(new Event(type, { bubbles: true, cancelable: true, ...init }));
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started))));
  }, [type, init]);
  assert.ok(+(await panel.getAttribute("data-drawn")) > before, type + " redrew the view");
  return ms;
}
// Checks a side's labels: no two overlap, each names its token and sits on its row or column.
async function checkMatrixLabels(panel, side, tokens, g, where) {
  const labels = await boxes(panel.locator(".av-mlabels-" + side + " .av-mlabel"));
  assert.ok(labels.length > 0, where + ": " + side + " labels are shown");
  assertNoOverlap(labels, where + " (" + side + " labels)");
  for (const label of labels) {
    assert.equal(label.text, tokens[+label.index].shown, where + ": label of token " + label.index);
    // the label is centred on its row (queries) or column (keys)
    const centre = side === "q" ? label.y + label.h / 2 - (g.box.y + g.top) : label.x + label.w / 2 - (g.box.x + g.left);
    const expected = (+label.index + 0.5 - (side === "q" ? g.y0 : g.x0)) * g.cell;
    assert.ok(Math.abs(centre - expected) <= 1.5, `${where}: ${side} label ${label.index} at ${centre}, its cell at ${expected}`);
  }
  return labels;
}

await test("matrix view: 512 tokens fit the window; zoom and pan with labels; colour bar; hover", async () => {
  const page = await open("long512");
  await page.waitForSelector(".av-panel-head[data-drawn]");
  await page.locator('.av-tab[data-view="matrix"]').click();
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  const tokens = await page.evaluate(() => {
    const data = JSON.parse(document.querySelector("script.attnviz-data").textContent);
    return data.meta.sequences[0].tokens.map((t) => ({ shown: (t[1] || t[0]).trim() }));
  });
  assert.equal(tokens.length, 512);
  const viewport = page.viewportSize();
  // Fits the window: the whole 512 x 512 matrix in view, as large as the window allows.
  let g = await matrixGeometry(panel);
  assert.ok(g.box.right <= viewport.width && g.box.bottom <= viewport.height, "the matrix fits the window: " + JSON.stringify(g.box));
  assert.equal(g.cell, g.fit);
  assert.ok(g.cell * 512 >= Math.min(viewport.width - g.left - 140, viewport.height - g.box.y - g.top - 40), "the matrix fills the window: cell " + g.cell);
  // Sparse labels at the fitted size (every n-th token), not overlapping.
  await checkMatrixLabels(panel, "q", tokens, g, "fitted");
  await checkMatrixLabels(panel, "k", tokens, g, "fitted");
  assert.ok(+(await panel.locator(".av-mlabels-q").getAttribute("data-step")) > 1, "every n-th label when cells are small");

  // The colour bar: the heat colours from white (0) to dark blue (1), ticks of the scale.
  const bar = panel.locator(".av-colourbar");
  const perRow = (await page.locator(".av-scaling").inputValue()) === "row";  // a long input may start per row
  assert.equal(await bar.locator(".av-colourbar-title").textContent(), perRow ? "weight ÷ row max" : "weight");
  assert.deepEqual(await bar.locator(".av-colourbar-tick").allTextContents(), ["0", "0.25", "0.5", "0.75", perRow ? "1 = row max" : "1"]);
  const ends = await bar.locator("canvas").evaluate((c) => {
    const ctx = c.getContext("2d");
    return [Array.from(ctx.getImageData(2, 0, 1, 1).data), Array.from(ctx.getImageData(2, c.height - 1, 1, 1).data)];
  });
  assert.deepEqual(ends[0].slice(0, 3), [8, 48, 107], "top of the bar: the colour of weight 1");
  assert.deepEqual(ends[1].slice(0, 3), [255, 255, 255], "bottom: weight 0");

  // Hover a cell: both tokens and the weight.
  // Whole pixels: a WheelEvent's clientX and clientY are integers.
  const atCell = (gg, row, col) => [Math.round(gg.box.x + gg.left + (col - gg.x0 + 0.5) * gg.cell), Math.round(gg.box.y + gg.top + (row - gg.y0 + 0.5) * gg.cell)];
  const readout = panel.locator(".av-readout");
  await act(panel, () => page.mouse.move(...atCell(g, 300, 200)));
  assert.equal(await readout.getAttribute("data-query"), "300");
  assert.equal(await readout.getAttribute("data-key"), "200");
  assert.match(await readout.textContent(), new RegExp('query "' + tokens[300].shown + '" .* key "' + tokens[200].shown + '"'));
  assert.match(await readout.locator(".av-value").textContent(), /^[<0-9]/);

  // Wheel zoom keeps the cell under the pointer (one left of where the
  // widening view would be held at the right edge); each frame comes quickly.
  const frames = [];
  const [hx, hy] = atCell(g, 300, 100);
  for (let i = 0; i < 4; i++) frames.push(await frameAfter(panel, ".av-matrix-stage", "wheel", { deltaY: -300, clientX: hx, clientY: hy }));
  g = await matrixGeometry(panel);
  assert.ok(g.cell >= 14, "zoomed in: cell " + g.cell);
  assert.equal(await readout.getAttribute("data-query"), "300", "the same cell under the pointer");
  assert.equal(await readout.getAttribute("data-key"), "100");
  // Every token labelled now, on both axes, none overlapping, each on its row or column.
  assert.equal(await panel.locator(".av-mlabels-q").getAttribute("data-step"), "1");
  const rows = await checkMatrixLabels(panel, "q", tokens, g, "zoomed");
  const cols = await checkMatrixLabels(panel, "k", tokens, g, "zoomed");
  assert.ok(rows.some((l) => l.index === "300") && cols.some((l) => l.index === "100"), "the hovered cell's tokens are labelled");

  // Drag to pan (and one more drag step timed).
  const [px, py] = atCell(g, 300, 100);
  await page.mouse.move(px, py);
  await page.mouse.down();
  await act(panel, () => page.mouse.move(px - 140, py - 70, { steps: 4 }));
  await page.mouse.up();
  const dragged = await matrixGeometry(panel);
  assert.ok(Math.abs(dragged.x0 - (g.x0 + 140 / g.cell)) < 0.01 && Math.abs(dragged.y0 - (g.y0 + 70 / g.cell)) < 0.01,
    `dragged by 10 x 5 cells: ${JSON.stringify([g.x0, g.y0, dragged.x0, dragged.y0])}`);
  await checkMatrixLabels(panel, "k", tokens, dragged, "panned");
  await page.mouse.move(px, py);
  await page.mouse.down();
  frames.push(await frameAfter(panel, ".av-matrix-stage", "pointermove", { buttons: 1, clientX: px - 30, clientY: py - 30 }));
  await page.mouse.up();
  g = await matrixGeometry(panel);

  // Keyboard: arrows pan, + zooms, 0 fits; buttons too.
  await act(panel, () => panel.locator(".av-matrix-stage").press("ArrowRight"));
  assert.ok((await matrixGeometry(panel)).x0 > g.x0, "ArrowRight pans right");
  await act(panel, () => panel.locator(".av-matrix-stage").press("ArrowDown"));
  assert.ok((await matrixGeometry(panel)).y0 > g.y0, "ArrowDown pans down");
  for (const key of ["ArrowLeft", "ArrowUp"]) frames.push(await frameAfter(panel, ".av-matrix-stage", "keydown", { key }));
  const before = (await matrixGeometry(panel)).cell;
  frames.push(await frameAfter(panel, ".av-matrix-stage", "keydown", { key: "+" }));
  assert.ok((await matrixGeometry(panel)).cell > before, "+ zooms in");
  frames.push(await frameAfter(panel, ".av-matrix-stage", "keydown", { key: "0" }));
  g = await matrixGeometry(panel);
  assert.ok(g.cell === g.fit && g.x0 === 0 && g.y0 === 0, "0 fits the window again");
  frames.push(await frameAfter(panel, ".av-zoom-in", "click", {}));
  assert.ok(Math.abs((await matrixGeometry(panel)).cell - 2 * g.fit) < 1e-9, "the + button doubles the cell");
  await act(panel, () => panel.locator(".av-zoom-in").click());
  assert.ok(Math.abs((await matrixGeometry(panel)).cell - 4 * g.fit) < 1e-9, "clicked: the cell doubles again");
  frames.push(await frameAfter(panel, ".av-zoom-fit", "click", {}));
  assert.equal((await matrixGeometry(panel)).cell, g.fit);
  console.log("matrix view at 512 tokens: zoom/pan frames " + frames.map((t) => t.toFixed(0)).join(", ") + " ms");
  assert.ok(Math.max(...frames) < 200, "each zoom or pan frame within 200 ms: " + frames.join(", "));

  await page.close();
});

await test("matrix view: the colour bar follows the shared controls; hidden, it waits until shown", async () => {
  const page = await open("pair");
  await page.locator('.av-tab[data-view="matrix"]').click();
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  const bar = panel.locator(".av-colourbar");
  // Shared controls: the colour bar follows them.
  await act(panel, () => page.locator(".av-scale").selectOption("log"));
  assert.equal(await bar.locator(".av-colourbar-title").textContent(), "weight, log");
  assert.deepEqual(await bar.locator(".av-colourbar-tick").allTextContents(), ["≤ 0.001", "0.01", "0.1", "1"]);
  await act(panel, () => page.locator(".av-scaling").selectOption("row"));
  assert.equal(await bar.locator(".av-colourbar-title").textContent(), "weight ÷ row max, log");
  assert.equal(await bar.getAttribute("data-scaling"), "row");

  // Hidden, it is not drawn when a control changes; shown, it is drawn with the new settings.
  await page.locator('.av-tab[data-view="head"]').click();
  const hiddenCount = await data(panel, "drawn");
  await page.locator(".av-scale").selectOption("linear");
  await page.locator(".av-scaling").selectOption("global");
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  assert.equal(await data(panel, "drawn"), hiddenCount, "a hidden matrix view is not drawn");
  await act(panel, () => page.locator('.av-tab[data-view="matrix"]').click());
  assert.equal(await bar.locator(".av-colourbar-title").textContent(), "weight");

  await page.close();
});

await test("matrix view: a short input fits the window with large cells and every label", async () => {
  const trace = sidecar("pair");
  const page = await open("pair");
  await page.locator('.av-tab[data-view="matrix"]').click();
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  const g = await matrixGeometry(panel);
  assert.ok(g.cell >= 24, "15 tokens: cells of at least 24 px, not " + g.cell);
  assert.ok(g.box.right <= page.viewportSize().width && g.box.bottom <= page.viewportSize().height, "in the window");
  const tokens = trace.sequences[0].tokens.map((t) => ({ shown: t.display.trim() || t.raw }));
  const labels = await checkMatrixLabels(panel, "q", tokens, g, "short");
  assert.equal(labels.length, tokens.length, "every query labelled");
  assert.equal((await checkMatrixLabels(panel, "k", tokens, g, "short")).length, tokens.length, "every key labelled");
  await page.close();
});

await test("model view: detail in place, closes on a second click, title follows its heads, pair filter", async () => {
  const page = await open("pair");
  await page.locator('.av-tab[data-view="model"]').click();
  const panel = page.locator(".av-panel-model");
  await page.waitForSelector(".av-panel-model[data-drawn]");
  // bertviz's sentence-pair choices.
  assert.deepEqual(await panel.locator(".av-filter option").allTextContents(), ["All", "A→A", "B→B", "A→B", "B→A"]);
  const thumb = panel.locator('.av-thumb[data-layer="0"][data-head="2"]');
  await thumb.click();
  const detail = panel.locator(".av-detail");
  assert.equal(await detail.count(), 1);
  // In place: right under layer 0's row of thumbnails, above layer 1's.
  const rowEnd = await panel.locator('.av-thumb[data-layer="0"][data-head="3"]').boundingBox();
  const nextRow = await panel.locator('.av-thumb[data-layer="1"][data-head="0"]').boundingBox();
  const detailBox = await detail.boundingBox();
  assert.ok(detailBox.y >= rowEnd.y + rowEnd.height && detailBox.y + detailBox.height <= nextRow.y, "the detail sits between layers 0 and 1");
  assert.equal(await detail.locator(".av-detail-name").textContent(), "Layer 0 · head 2");
  // The title follows the heads shown in the detail, and says the numbers are a mean.
  const body = detail.locator(".av-detail-body");
  await page.waitForFunction((n) => n.dataset.drawn, await body.elementHandle());
  await act(body, () => body.locator('.av-swatch[data-head="0"]').click());
  assert.equal(await detail.locator(".av-detail-name").textContent(), "Layer 0 · heads 0, 2 · numbers: mean of 2 heads");
  // A second click on the same thumbnail closes it; another thumbnail opens its own.
  await thumb.click();
  assert.equal(await detail.count(), 0, "closed by a second click");
  await panel.locator('.av-thumb[data-layer="1"][data-head="1"]').click();
  assert.equal(await detail.locator(".av-detail-name").textContent(), "Layer 1 · head 1");
  await panel.locator(".av-close").click();
  assert.equal(await detail.count(), 0, "closed by its button");
  // Keyboard: Enter on a focused thumbnail opens it.
  await panel.locator('.av-thumb[data-layer="1"][data-head="0"]').focus();
  await page.keyboard.press("Enter");
  assert.equal(await detail.locator(".av-detail-name").textContent(), "Layer 1 · head 0");
  await page.keyboard.press("Enter");
  assert.equal(await detail.count(), 0);

  // The pair filter redraws the thumbnails and the detail opens on it.
  const pixels = () => panel.locator('.av-thumb[data-layer="1"][data-head="3"]').evaluate((c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data).join());
  const all = await pixels();
  await act(panel, () => panel.locator(".av-filter").selectOption({ label: "A→B" }));
  assert.equal(await data(panel, "filter"), "A→B");
  assert.notEqual(await pixels(), all, "A→B draws other lines than All");
  await panel.locator('.av-thumb[data-layer="1"][data-head="3"]').click();
  await page.waitForFunction((n) => n.dataset.drawn, await body.elementHandle());
  assert.equal(await body.getAttribute("data-filter"), "A→B");
  assert.equal(await detail.locator(".av-detail-name").textContent(), "Layer 1 · head 3 · A→B");
  const queries = await body.locator(".av-col-q .av-tok").evaluateAll((n) => n.map((x) => +x.dataset.index));
  assert.deepEqual(queries, [...Array(9).keys()], "the detail shows sentence A's queries");
  await page.screenshot({ path: path.join(shotsDir, "model-detail.png"), fullPage: true });
  await page.close();

  // Three heads make a narrow grid: the detail takes the width its head view needs.
  const encdec = await open("encdec");
  await encdec.locator('.av-tab[data-view="model"]').click();
  const encPanel = encdec.locator(".av-panel-model");
  await encdec.waitForSelector(".av-panel-model[data-drawn]");
  await encPanel.locator('.av-thumb[data-layer="1"][data-head="2"]').click();
  const encBody = encPanel.locator(".av-detail-body");
  await encdec.waitForFunction((n) => n.dataset.drawn, await encBody.elementHandle());
  const fit = await encPanel.locator(".av-detail").evaluate((detail) => {
    const scroll = detail.querySelector(".av-scroll"), keys = detail.querySelector(".av-col-k").getBoundingClientRect();
    return { overflow: scroll.scrollWidth - scroll.clientWidth, keysRight: keys.right, detailRight: detail.getBoundingClientRect().right };
  });
  assert.ok(fit.overflow <= 0 && fit.keysRight <= fit.detailRight, "the detail's key tokens are in view: " + JSON.stringify(fit));
  await encdec.close();
});

await test("neuron view: the legend never overlaps and key tokens are not cut off", async () => {
  for (const name of ["pair", "causal", "t5bias", "long512"]) {
    const page = await open(name);
    await page.locator('.av-tab[data-view="neuron"]').click();
    const panel = page.locator(".av-panel-neuron");
    await page.waitForSelector(".av-panel-neuron[data-drawn]");
    await act(panel, () => panel.locator(".av-expand").click());
    await act(panel, () => hoverToken(panel, "q", 3));
    const legend = await boxes(panel.locator(".av-legend span"));
    assert.ok(legend.length >= 5, name + ": legend shown");
    assertNoOverlap(legend, name + " legend");
    // Each label stays left of the next column's start (the canvas numbers start there too).
    const scroll = await panel.locator(".av-scroll").boundingBox();
    const keys = await panel.locator(".av-col-k .av-tok").evaluateAll((nodes) => nodes.slice(0, 40).map((n) => {
      const text = n.querySelector(".av-text"), r = n.getBoundingClientRect();
      return { index: n.dataset.index, cut: text.scrollWidth > text.clientWidth + 0.5, right: r.right };
    }));
    for (const key of keys) {
      assert.ok(!key.cut, `${name}: key token ${key.index} is cut off`);
      assert.ok(key.right <= scroll.x + scroll.width + 0.5, `${name}: key token ${key.index} is past the pane's right edge`);
    }
    if (name === "long512") await page.screenshot({ path: path.join(shotsDir, "neuron-long.png") });
    await page.close();
  }
});

// ---- escaping and fragments ----------------------------------------------------------

const HOSTILE = "</script><img src=x onerror=alert(1)>";

async function checkHostile(page, root) {
  assert.equal(await page.locator("img").count(), 0, "no <img> element was created");
  for (const view of ["head", "model", "neuron", "matrix"]) {
    await root.locator('.av-tab[data-view="' + view + '"]').click();
    await page.waitForFunction((n) => n.dataset.drawn, await root.locator(".av-panel-" + view).elementHandle());
  }
  await root.locator('.av-tab[data-view="head"]').click();
  const texts = await root.locator(".av-panel-head .av-col-q .av-text").allTextContents();
  assert.ok(texts.includes(HOSTILE), "the hostile token shows as text: " + JSON.stringify(texts));
  assert.ok(texts.includes("&amp;") && texts.includes("<!--"), "entities and comments stay literal");
  assert.match(await root.locator(".av-title").textContent(), /<\/script><img src=x onerror=alert\(1\)>/);
  await root.locator('.av-panel-head .av-col-q .av-tok[data-index="1"]').hover();
  assert.equal(await page.locator("img").count(), 0);
}

await test("hostile token text is shown as text and runs nothing", async () => {
  const page = await open("hostile");
  await page.waitForSelector(".av-panel-head[data-drawn]");
  assert.equal(await page.title(), "hostile " + HOSTILE + " attention");
  await checkHostile(page, page.locator(".attnviz"));
  await page.close();
});

await test("three fragments on one page: unique roots, independent state, escaped", async () => {
  const page = await open("fragments");
  const roots = page.locator("div.attnviz");
  assert.equal(await roots.count(), 3);
  const ids = await roots.evaluateAll((nodes) => nodes.map((n) => n.id));
  assert.equal(new Set(ids).size, 3);
  for (let i = 0; i < 3; i++) await page.waitForFunction((n) => n.querySelector(".av-panel-head[data-drawn]"), await roots.nth(i).elementHandle());
  const first = roots.nth(0).locator(".av-panel-head"), second = roots.nth(1).locator(".av-panel-head");
  const secondDrawn = await data(second, "drawn");
  await act(first, () => first.locator('.av-swatch[data-head="1"]').dblclick());
  await act(first, () => hoverToken(first, "q", 2));
  assert.equal(await data(first, "active"), "1");
  assert.equal(await data(second, "active"), "0,1,2,3");
  assert.equal(await data(second, "focus"), "");
  assert.equal(await data(second, "drawn"), secondDrawn, "the other fragment did not redraw");
  await roots.nth(0).locator(".av-theme").click();
  assert.equal(await roots.nth(1).locator(".av-app").getAttribute("data-theme"), "light");
  await checkHostile(page, roots.nth(2));
  await page.close();
});

await close();

for (const [name, status, ms] of results) console.log(`${status.padEnd(6)} ${name} (${ms} ms)`);
for (const problem of problems) console.error("PROBLEM " + problem);
const failed = results.filter(([, status]) => status !== "ok").length + problems.length;
console.log(failed ? `${failed} failure(s)` : "all browser checks passed");
process.exit(failed ? 1 : 0);
