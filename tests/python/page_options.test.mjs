// The pages test_page_options.py wrote (argv[2]: a folder of NAME.html and
// expected.json) in headless Chromium: each opens on the layer, heads, theme
// and token spelling its Python call chose, and tooltips and the head view's
// readout show a token id only where the tokens have one.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium } from "../browser/chromium.mjs";

const folder = process.argv[2];
const expected = JSON.parse(fs.readFileSync(path.join(folder, "expected.json"), "utf8"));
const { context, problems, close } = await launchChromium();
let failed = false, checked = 0;

async function check(name, expect) {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(name + ": page error: " + error.message));
  await page.goto(pathToFileURL(path.join(folder, name + ".html")).href);
  const isHead = "layer" in expect;
  const panel = page.locator(isHead ? ".av-panel-head" : ".av-panel-model");
  await page.waitForSelector(isHead ? ".av-panel-head[data-drawn]" : ".av-panel-model[data-drawn]", { timeout: 30000 });
  const app = page.locator(".av-app");
  assert.equal(await app.getAttribute("data-theme"), expect.theme, name + ": theme");
  assert.equal(await page.locator(".av-theme").textContent(), expect.theme === "dark" ? "Light" : "Dark", name + ": theme button");
  assert.equal(await page.locator(".av-markers").isChecked(), expect.markers, name + ": Subword markers box");
  if (!isHead) return;
  assert.equal(await panel.getAttribute("data-layer"), expect.layer, name + ": open layer");
  if (expect.active) assert.equal(await panel.getAttribute("data-active"), expect.active, name + ": open heads");
  if (expect.off) {
    const off = await panel.locator(".av-swatch.av-off").evaluateAll((nodes) => nodes.map((node) => +node.dataset.head));
    assert.deepEqual(off, expect.off, name + ": heads switched off");
  }
  const queries = panel.locator(".av-col-q .av-tok");
  if (expect.shown)
    assert.deepEqual(await queries.locator(".av-text").allTextContents(), expect.shown, name + ": token labels");
  if (expect.ids !== undefined) {
    const titles = await queries.evaluateAll((nodes) => nodes.map((node) => node.title));
    titles.forEach((title, i) => {
      if (expect.ids === null) assert.match(title, new RegExp("  \\(position " + i + "\\)$"), name + ": tooltip " + title);
      else assert.match(title, new RegExp("  \\(id " + expect.ids[i] + ", position " + i + "\\)$"), name + ": tooltip " + title);
    });
    await queries.nth(1).hover();
    await page.waitForFunction((node) => node.dataset.focus === "q:1", await panel.elementHandle());
    const readout = await panel.locator(".av-head-readout").textContent();
    if (expect.ids === null) assert.doesNotMatch(readout, /\bid\b/, name + ": readout " + readout);
    else assert.match(readout, new RegExp(", id " + expect.ids[1] + "\\b"), name + ": readout " + readout);
  }
  await page.close();
}

try {
  for (const [name, expect] of Object.entries(expected)) {
    await check(name, expect);
    checked++;
  }
} catch (error) {
  failed = true;
  console.error("FAILED " + (error.stack || error));
}
if (problems.length) {
  failed = true;
  console.error(problems.join("\n"));
}
await close();
if (failed) process.exit(1);
console.log("page options: " + checked + " pages ok");
