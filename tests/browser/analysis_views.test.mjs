// The analysis views of `attnviz view` (issue 17): the Rollout / flow tab
// (saliency strip, token-to-token lines, the whole map), the Head stats tab
// (layers x heads heatmap; a click opens the head in the head view) and the
// Word level toggle, on the bundled demo model and on a BERT of random
// weights (tests/browser/make_long_model.py). Every number read from the page
// is checked against `attnviz export --rollout --flow --head-stats
// [--word-level]` of the same input, exact to the digits it prints
// (tests/browser/printed.mjs). Word-level attention, which export does not
// write, is checked against the token attentions merged here by Clark et
// al.'s rule (to a word: sum over its pieces; from a word: mean).
//
// Usage: node analysis_views.test.mjs <attnviz> <demo model> <make_long_model.py> <screenshot folder>
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "./chromium.mjs";
import { readNpz } from "./npz.mjs";
import { checkPrinted } from "./printed.mjs";
import { makeTests, seeded } from "./harness.mjs";
import { expectedStatColour, shownColour } from "./stat_colour.mjs";

const [cli, demoDir, makeModel, shotsDir] = process.argv.slice(2);
if (!shotsDir) {
  console.error("usage: node analysis_views.test.mjs <attnviz> <demo model> <make_long_model.py> <screenshot folder>");
  process.exit(2);
}
fs.mkdirSync(shotsDir, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-analysis-views-"));
const run = (file, args) => execFileSync(file, args, { env: { ...process.env, HF_HUB_OFFLINE: "1", ATTNVIZ_NUM_THREADS: "1" }, encoding: "utf8" });
const randomDir = path.join(work, "random-bert");
run("/usr/bin/python3", [makeModel, demoDir, randomDir, "2"]);

const TEXT_A = "The lighthouse keeper climbed the narrow stairs, carrying a lantern.";
const TEXT_B = "His granddaughter found the notebooks afterwards.";
const random = seeded(17);
const pick = (n) => Math.floor(random() * n);
const counts = { strip: 0, lines: 0, matrix: 0, stats: 0, words: 0 };

function check(text, exact, where) {
  const wrong = checkPrinted(text, exact, 1e-12 + 1e-9 * Math.abs(exact));
  assert.ok(wrong === null, `${where}: ${wrong}`);
}
// A statistic as the page prints it (3 significant digits, "n/a" for NaN).
function checkStat(text, exact, where) {
  if (Number.isNaN(exact)) return assert.equal(text, "n/a", where);
  check(text, exact, where);
}

// Word groups from export's word_ids (-1: a special token, a word of its own),
// and the token attentions of one layer and head merged to words.
function wordsOf(wordIds) {
  const groups = [];
  wordIds.forEach((id, t) => {
    if (t > 0 && id >= 0 && wordIds[t - 1] === id) groups[groups.length - 1].push(t);
    else groups.push([t]);
  });
  return groups;
}
function wordAttention(att, l, h, S, groups) {
  const W = groups.length, out = new Float64Array(W * W), wordOf = new Int32Array(S);
  groups.forEach((g, w) => g.forEach((t) => { wordOf[t] = w; }));
  groups.forEach((g, wq) => {
    for (const q of g)
      for (let k = 0; k < S; k++) out[wq * W + wordOf[k]] += att.data[((l * att.shape[1] + h) * S + q) * S + k] / g.length;
  });
  return out;
}

const { context, problems, close } = await launchChromium();
const { results, test } = makeTests();

async function act(scope, action) {
  const handle = await scope.elementHandle();
  const before = await handle.evaluate((n) => +(n.dataset.drawn || 0));
  await action();
  await scope.page().waitForFunction(([n, count]) => +(n.dataset.drawn || 0) > count, [handle, before], { timeout: 10000 });
  await scope.page().evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}
// The strip's printed values once the exact stream is in: Map index -> text.
async function stripValues(section) {
  await section.page().waitForFunction((n) => {
    const tokens = n.querySelectorAll(".av-sal-tok");
    return tokens.length > 0 && [...tokens].every((t) => t.dataset.value);
  }, await section.elementHandle(), { timeout: 10000 });
  return new Map(await section.locator(".av-sal-tok").evaluateAll((nodes) => nodes.map((n) => [+n.dataset.index, n.dataset.value])));
}
async function keyNumbers(scope, expected) {
  await scope.page().waitForFunction(([n, count]) =>
    [...n.querySelectorAll(".av-col-k .av-tok .av-w")].filter((w) => w.textContent !== "").length >= count,
  [await scope.elementHandle(), expected], { timeout: 10000 });
  const entries = await scope.locator(".av-col-k .av-tok").evaluateAll((nodes) =>
    nodes.map((n) => [+n.dataset.index, n.querySelector(".av-w").textContent]));
  return entries.filter(([, text]) => text !== "");
}
async function hoverQuery(scope, index) {
  await scope.page().mouse.move(1, 1);
  await scope.locator('.av-col-q .av-tok[data-index="' + index + '"]').hover();
}

for (const [label, modelDir] of [["demo", demoDir], ["random", randomDir]]) {
  const input = ["--model", modelDir, "--text", TEXT_A, "--text-b", TEXT_B];
  const page_ = path.join(work, label + ".html");
  run(cli, ["view", ...input, "--view", "all", "-o", page_]);
  run(cli, ["export", ...input, "--rollout", "--flow", "--head-stats", "-o", path.join(work, label + ".npz")]);
  run(cli, ["export", ...input, "--rollout", "--flow", "--head-stats", "--word-level", "-o", path.join(work, label + "-words.npz")]);
  const tokens = readNpz(path.join(work, label + ".npz")), words = readNpz(path.join(work, label + "-words.npz"));
  const att = tokens.get("attentions");
  const [L, H, S] = att.shape;
  const groups = wordsOf([...tokens.get("word_ids").data].map(Number));
  const W = words.get("rollout").shape[1];
  assert.equal(groups.length, W, `${label}: the words of word_ids are export's words`);
  assert.ok(W < S, `${label}: some word has several pieces (${S} tokens, ${W} words)`);
  const value = (npz, name, ...index) => {
    const array = npz.get(name);
    let at = 0;
    index.forEach((i, d) => { at = at * array.shape[d] + i; });
    return array.data[at];
  };

  async function open() {
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(label + ": page error: " + error.message));
    page.on("console", (message) => { if (message.type() === "error") problems.push(label + ": console error: " + message.text()); });
    await page.goto(pathToFileURL(page_).href);
    await page.waitForSelector(".attnviz[data-ready]");
    return page;
  }

  // The strip, the lines and the map of one level (tokens or words) against its npz.
  async function checkRollout(page, npz, n, where) {
    await page.locator('.av-tab[data-view="rollout"]').click();
    const section = page.locator(".av-saliency");
    const layers = npz.get("rollout").shape[0];
    // Opens on the last layer's rollout from [CLS].
    let shown = await stripValues(section);
    assert.equal(shown.size, n, `${where}: one strip token per input token`);
    for (const [k, text] of shown) { check(text, value(npz, "rollout", layers - 1, 0, k), `${where} strip rollout L${layers - 1} [CLS]→${k}`); counts.strip++; }
    for (let i = 0; i < 3; i++) {
      const l = pick(layers), q = pick(n);
      await act(section, () => section.locator(".av-sal-layer").selectOption(String(l)));
      await act(section, () => section.locator(".av-sal-from").selectOption(String(q)));
      shown = await stripValues(section);
      for (const [k, text] of shown) { check(text, value(npz, "rollout", l, q, k), `${where} strip rollout L${l} ${q}→${k}`); counts.strip++; }
    }
    // Hover: the readout prints the same value.
    await section.locator('.av-sal-tok[data-index="1"]').hover();
    await page.waitForFunction((n) => /^[<0-9]/.test(n.querySelector(".av-sal-readout .av-value")?.textContent || ""), await section.elementHandle());
    assert.equal(await section.locator(".av-sal-readout .av-value").textContent(), shown.get(1));
    // Flow.
    await act(section, () => section.locator(".av-sal-measure").selectOption("1"));
    for (let i = 0; i < 3; i++) {
      const q = i === 0 ? 0 : pick(n);
      if (i) await act(section, () => section.locator(".av-sal-from").selectOption(String(q)));
      shown = await stripValues(section);
      for (const [k, text] of shown) { check(text, value(npz, "flow", q, k), `${where} strip flow ${q}→${k}`); counts.strip++; }
    }
    // Token to token: an output token's rollout to every input token, beside them.
    const lines = page.locator(".av-rollout-head");
    for (let i = 0; i < 3; i++) {
      const q = pick(n);
      await hoverQuery(lines, q);
      const printed = await keyNumbers(lines, n);
      assert.equal(printed.length, n, `${where}: a number beside every input token`);
      for (const [k, text] of printed) { check(text, value(npz, "rollout", layers - 1, q, k), `${where} lines rollout ${q}→${k}`); counts.lines++; }
    }
    // The whole map: hover cells.
    const matrix = page.locator(".av-rollout-matrix");
    await matrix.scrollIntoViewIfNeeded();
    const canvas = matrix.locator(".av-matrix-canvas"), readout = matrix.locator(".av-readout");
    await page.waitForSelector(".av-rollout-matrix[data-drawn]");
    for (let i = 0; i < 20; i++) {
      const q = pick(n), k = pick(n);
      const g = await canvas.evaluate((c) => (c.scrollIntoView({ block: "center" }), { cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top, box: c.getBoundingClientRect().toJSON() }));
      await page.mouse.move(g.box.x + g.left + (k + 0.5) * g.cell, g.box.y + g.top + (q + 0.5) * g.cell);
      await page.waitForFunction(([node, q, k]) => node.dataset.query === String(q) && node.dataset.key === String(k) &&
        /^[<0-9]/.test(node.querySelector(".av-value")?.textContent || ""), [await readout.elementHandle(), q, k], { timeout: 5000 });
      check(await readout.locator(".av-value").textContent(), value(npz, "rollout", layers - 1, q, k), `${where} matrix rollout ${q},${k}`);
      counts.matrix++;
    }
  }

  // Every cell of every statistic; then a click opens that head alone in the head view.
  async function checkStats(page, npz, where) {
    await page.locator('.av-tab[data-view="stats"]').click();
    const panel = page.locator(".av-panel-stats");
    const names = await panel.locator(".av-stat option").evaluateAll((nodes) => nodes.map((n) => n.value));
    assert.equal(names.length, 9);
    for (const name of names) {
      if ((await panel.locator(".av-stat").inputValue()) !== name) await act(panel, () => panel.locator(".av-stat").selectOption(name));
      const cells = await panel.locator(".av-stat-cell").evaluateAll((nodes) => nodes.map((n) => [+n.dataset.layer, +n.dataset.head, n.textContent, n.style.backgroundColor]));
      assert.equal(cells.length, L * H);
      // Coloured on the scale of the heads report (heads_report.test.mjs checks it there too).
      const finite = cells.map(([l, h]) => value(npz, "head_stats_" + name, l, h)).filter((v) => !Number.isNaN(v));
      const low = Math.min(...finite), high = Math.max(...finite);
      for (const [l, h, text, background] of cells) {
        const exact = value(npz, "head_stats_" + name, l, h);
        checkStat(text, exact, `${where} ${name} L${l} H${h}`);
        assert.equal(shownColour(background), Number.isNaN(exact) ? "transparent" : expectedStatColour(exact, low, high), `${where} ${name} L${l} H${h} colour`);
        counts.stats++;
      }
    }
    const l = Math.min(2, L - 1), h = H - 1;
    await panel.locator(`.av-stat-cell[data-layer="${l}"][data-head="${h}"]`).click();
    const head = page.locator(".av-panel-head");
    await page.waitForFunction((n) => !n.hidden && n.dataset.layer !== undefined, await head.elementHandle());
    await page.waitForFunction(([n, l, h]) => n.dataset.layer === l && n.dataset.active === h, [await head.elementHandle(), String(l), String(h)], { timeout: 10000 });
    return { l, h, head };
  }

  await test(`${label}: rollout, flow and head stats (tokens)`, async () => {
    const page = await open();
    await checkRollout(page, tokens, S, label + " tokens");
    await page.screenshot({ path: path.join(shotsDir, `analysis-${label}-rollout.png`), fullPage: true });
    await checkStats(page, tokens, label + " tokens");
    await page.locator('.av-tab[data-view="stats"]').click();
    await page.screenshot({ path: path.join(shotsDir, `analysis-${label}-stats.png`) });
    await page.close();
  });

  await test(`${label}: word level in every view`, async () => {
    const page = await open();
    // The neuron view has no word-level form: the toggle says why there.
    await page.locator('.av-tab[data-view="neuron"]').click();
    const toggle = page.locator(".av-word-level");
    assert.ok(await toggle.isDisabled(), "the toggle is disabled on the neuron tab");
    assert.match(await toggle.evaluate((n) => n.parentNode.title), /no word-level form/);
    await page.locator('.av-tab[data-view="head"]').click();
    await toggle.check();
    await page.waitForSelector(".attnviz[data-ready] .av-word-level:checked");
    assert.ok(await page.locator('.av-tab[data-view="neuron"]').isDisabled(), "no neuron tab at word level");
    // Head view at word level: all heads, so the numbers are means of the heads.
    const head = page.locator(".av-panel-head");
    await page.waitForSelector(".av-panel-head[data-drawn]");
    assert.equal(await head.locator(".av-col-q .av-tok").count(), W, "one row per word");
    await checkRollout(page, words, W, label + " words");
    const { l, h } = await checkStats(page, words, label + " words");
    // The stats' click opened one head: its word attention is exact.
    for (let i = 0; i < 3; i++) {
      const q = pick(W), ref = wordAttention(att, l, h, S, groups);
      await hoverQuery(head, q);
      const printed = await keyNumbers(head, W);
      for (const [k, text] of printed) { check(text, ref[q * W + k], `${label} word head view L${l} H${h} ${q}→${k}`); counts.words++; }
    }
    // Model and matrix views draw words too.
    await page.locator('.av-tab[data-view="matrix"]').click();
    const matrix = page.locator(".av-panel-matrix");
    await page.waitForSelector(".av-panel-matrix[data-drawn]");
    const canvas = matrix.locator(".av-matrix-canvas"), readout = matrix.locator(".av-readout");
    for (let i = 0; i < 10; i++) {
      const q = pick(W), k = pick(W), ref = wordAttention(att, 0, 0, S, groups);
      const g = await canvas.evaluate((c) => (c.scrollIntoView({ block: "center" }), { cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top, box: c.getBoundingClientRect().toJSON() }));
      await page.mouse.move(g.box.x + g.left + (k + 0.5) * g.cell, g.box.y + g.top + (q + 0.5) * g.cell);
      await page.waitForFunction(([node, q, k]) => node.dataset.query === String(q) && node.dataset.key === String(k) &&
        /^[<0-9]/.test(node.querySelector(".av-value")?.textContent || ""), [await readout.elementHandle(), q, k], { timeout: 5000 });
      check(await readout.locator(".av-value").textContent(), ref[q * W + k], `${label} word matrix ${q},${k}`);
      counts.words++;
    }
    await page.locator('.av-tab[data-view="model"]').click();
    await page.waitForSelector(".av-panel-model[data-drawn]");
    // Back to tokens: the neuron view is there again.
    await toggle.uncheck();
    await page.waitForSelector(".attnviz[data-ready] .av-word-level:not(:checked)");
    assert.ok(!(await page.locator('.av-tab[data-view="neuron"]').isDisabled()));
    await page.close();
  });
}

await close();
fs.rmSync(work, { recursive: true, force: true });
for (const [name, status, ms] of results) console.log(`${status.padEnd(6)} ${name} (${ms} ms)`);
console.log(`values checked: ${JSON.stringify(counts)}`);
for (const problem of problems) console.error("PROBLEM " + problem);
const failed = results.filter(([, status]) => status !== "ok").length + problems.length;
console.log(failed ? `${failed} failure(s)` : "all analysis-view checks passed");
process.exit(failed ? 1 : 0);
