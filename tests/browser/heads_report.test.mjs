// The report page of `attnviz heads` in headless Chromium: it opens without a
// console error, page error or network request, and what it plots is
// stats.json's numbers: every heatmap cell, scatter point, entropy point, MDS
// point and table entry against the JSON the same run wrote, for two blocks'
// worth of statistics; the heatmap's colours are the views' Head stats tab's
// (stat_colour.mjs). A corpus text with markup in it stays text.
//
// Usage: node heads_report.test.mjs <attnviz binary> <demo model folder> <held-out sentences> <screenshot folder>
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "./chromium.mjs";
import { makeTests } from "./harness.mjs";
import { expectedStatColour, shownColour } from "./stat_colour.mjs";

const [cli, modelDir, sentencesFile, shotsDir] = process.argv.slice(2);
if (!shotsDir) {
  console.error("usage: node heads_report.test.mjs <attnviz binary> <demo model folder> <held-out sentences> <screenshot folder>");
  process.exit(2);
}
fs.mkdirSync(shotsDir, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-heads-"));
const sentences = fs.readFileSync(sentencesFile, "utf8").split("\n").filter((line) => line.trim()).slice(0, 200);
// The corpus's file name is shown on the page: markup in it must stay text.
const corpus = path.join(work, "<img src=x onerror=alert(1)>.txt");
fs.writeFileSync(corpus, sentences.join("\n") + "\n");
const report = path.join(work, "report.html"), statsPath = path.join(work, "stats.json");
execFileSync(cli, ["heads", "--model", modelDir, "--input", corpus, "--quiet", "-o", report, "--json", statsPath],
  { env: { ...process.env, HF_HUB_OFFLINE: "1", ATTNVIZ_NUM_THREADS: "1" } });
const stats = JSON.parse(fs.readFileSync(statsPath, "utf8"));
const block = stats.blocks[0];
const L = block.n_layers, H = block.n_heads;

const { context, problems, close } = await launchChromium();
const { results, test } = makeTests();
const page = await context.newPage();
page.on("dialog", (dialog) => { problems.push("a dialog opened: " + dialog.message()); dialog.dismiss(); });
page.on("pageerror", (error) => problems.push("page error: " + error.message));
page.on("console", (message) => { if (message.type() === "error") problems.push("console error: " + message.text()); });
await page.goto(pathToFileURL(report).href, { timeout: 60000 });
await page.waitForSelector("#heatmap");

// A plotted value is the JSON's double, printed by String(): the same number exactly.
const same = (text, value, what) => assert.equal(text === "" ? null : Number(text), value, what);

await test("summary names the corpus as text", async () => {
  const summary = await page.locator("#summary").textContent();
  assert.ok(summary.includes(`${stats.examples} examples`), summary);
  assert.ok(summary.includes("<img src=x onerror=alert(1)>.txt"), summary);
  assert.equal(await page.locator("img").count(), 0);
});

await test("heatmap cells hold every statistic's means, coloured as the Head stats tab colours them", async () => {
  for (const stat of stats.statistics) {
    await page.locator("#stat-select").selectOption(stat);
    const cells = await page.locator("#heatmap rect.cell").evaluateAll((nodes) =>
      nodes.map((n) => [+n.dataset.layer, +n.dataset.head, n.dataset.stat, n.dataset.value, n.getAttribute("fill")]));
    assert.equal(cells.length, L * H);
    const finite = block.means[stat].flat().filter((v) => v !== null);
    const low = Math.min(...finite), high = Math.max(...finite);
    for (const [l, h, s, v, fill] of cells) {
      assert.equal(s, stat);
      const mean = block.means[stat][l][h];
      same(v, mean, `${stat} ${l}/${h}`);
      // The scale of analysis_views.test.mjs's Head stats check (stat_colour.mjs).
      if (mean !== null) assert.equal(shownColour(fill), expectedStatColour(mean, low, high), `${stat} ${l}/${h} colour`);
    }
  }
});

await test("[CLS], [SEP] and punctuation scatter", async () => {
  for (const stat of ["cls", "sep", "punct"]) {
    const points = await page.locator(`#special-scatter circle.point-${stat}`).evaluateAll((nodes) =>
      nodes.map((n) => [+n.dataset.layer, +n.dataset.head, n.dataset.value]));
    assert.equal(points.length, L * H, stat);
    for (const [l, h, v] of points) same(v, block.means[stat][l][h], `${stat} ${l}/${h}`);
  }
});

await test("entropy by layer, with even attention's entropy", async () => {
  const points = await page.locator("#entropy-plot circle.point-entropy").evaluateAll((nodes) =>
    nodes.map((n) => [+n.dataset.layer, +n.dataset.head, n.dataset.value]));
  assert.equal(points.length, L * H);
  for (const [l, h, v] of points) same(v, block.means.entropy[l][h], `entropy ${l}/${h}`);
  same(await page.locator("#uniform-entropy").getAttribute("data-value"), block.uniform_entropy, "uniform");
  // Trained heads attend less evenly than an even spread.
  const mean = block.means.entropy.flat().reduce((a, b) => a + b, 0) / (L * H);
  assert.ok(mean < block.uniform_entropy, `${mean} < ${block.uniform_entropy}`);
});

await test("Jensen-Shannon embedding", async () => {
  const points = await page.locator("#mds-plot circle.point-mds").evaluateAll((nodes) =>
    nodes.map((n) => [+n.dataset.layer, +n.dataset.head, n.dataset.x, n.dataset.y]));
  assert.equal(points.length, L * H);
  for (const [l, h, x, y] of points) {
    same(x, block.jensen_shannon.mds[l * H + h][0], `mds x ${l}/${h}`);
    same(y, block.jensen_shannon.mds[l * H + h][1], `mds y ${l}/${h}`);
  }
  await page.locator("#colour-by").selectOption("layer");
  assert.equal(await page.locator("#mds-plot circle.point-mds").count(), L * H);
});

await test("table and head details print the means to their digits", async () => {
  const rows = await page.locator("#stats-table tr[data-layer]").evaluateAll((nodes) =>
    nodes.map((n) => [+n.dataset.layer, +n.dataset.head, [...n.querySelectorAll("td[data-stat]")].map((c) => [c.dataset.stat, c.textContent])]));
  assert.equal(rows.length, L * H);
  for (const [l, h, cells] of rows)
    for (const [stat, text] of cells) {
      const v = block.means[stat][l][h];
      assert.equal(text, v === null ? "n/a" : v.toFixed(4), `${stat} ${l}/${h}`);
    }
  await page.locator('#heatmap rect.cell[data-layer="1"][data-head="2"]').click();
  const details = await page.locator("#head-details td[data-stat='sep']").textContent();
  assert.equal(details, block.means.sep[1][2].toFixed(4));
  await page.screenshot({ path: path.join(shotsDir, "heads_report.png"), fullPage: true });
});

await page.close();
await close();
fs.rmSync(work, { recursive: true, force: true });
for (const [name, status, ms] of results) console.log(`${status.padEnd(6)} ${name} (${ms} ms)`);
for (const problem of problems) console.error("PROBLEM " + problem);
const failed = results.filter(([, status]) => status !== "ok").length + problems.length;
console.log(failed ? `${failed} failure(s)` : "all heads report checks passed");
process.exit(failed ? 1 : 0);
