// README pictures that need a browser: the matrix view zoomed in on a long
// input, from `attnviz view` on the bundled demo model (real trained
// attention: layer 1, head 3 is its local head, a band along the diagonal).
// Run by tools/readme-images; writes docs/images/matrix-zoomed.png.
//
// Usage: node readme_images.mjs <attnviz binary> <demo model folder> <output folder>
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { launchChromium } from "./chromium.mjs";

const [cli, modelDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node readme_images.mjs <attnviz binary> <demo model folder> <output folder>");
  process.exit(2);
}
const TEXT =
  "The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp and a small notebook in which " +
  "he recorded the weather, the ships that passed, and the birds that rested on the railing. Years later his " +
  "granddaughter found the notebooks in a wooden chest and read them aloud to the children of the village, who " +
  "listened quietly while the wind rattled the windows and the sea kept its own slow time below the cliffs.";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-readme-"));
const page_path = path.join(work, "matrix.html");
execFileSync(cli, ["view", "--model", modelDir, "--text", TEXT, "--view", "matrix", "-o", page_path],
             { env: { ...process.env, HF_HUB_OFFLINE: "1" }, encoding: "utf8" });

const { context, close } = await launchChromium();
try {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1100, height: 760 });
  await page.goto(pathToFileURL(page_path).href);
  const panel = page.locator(".av-panel-matrix");
  await page.waitForSelector(".av-panel-matrix[data-drawn]");
  const redrawn = async (action) => {
    const before = +(await panel.getAttribute("data-drawn"));
    await action();
    await page.waitForFunction(([n, b]) => +n.dataset.drawn > b, [await panel.elementHandle(), before], { timeout: 5000 });
  };
  await redrawn(() => panel.locator(".av-layer").selectOption("1"));
  await redrawn(() => panel.locator(".av-head").selectOption("3"));
  await redrawn(() => page.locator(".av-scaling").selectOption("row"));
  // Zoom in around query 40, key 40: cells large enough for every label.
  const canvas = panel.locator(".av-matrix-canvas");
  const g = await canvas.evaluate((c) => ({ cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top, box: c.getBoundingClientRect().toJSON() }));
  const x = g.box.x + g.left + 40.5 * g.cell, y = g.box.y + g.top + 40.5 * g.cell;
  await page.mouse.move(x, y);
  while (+(await canvas.getAttribute("data-cell")) < 18) await redrawn(() => page.mouse.wheel(0, -200));
  await page.mouse.move(x + 2, y + 2);  // hover a cell: its tokens and weight in the readout
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, "matrix-zoomed.png");
  await page.locator(".av-app").screenshot({ path: file });
  console.log(file);
} finally {
  await close();
  fs.rmSync(work, { recursive: true, force: true });
}
