// README pictures that need a browser: the matrix view zoomed in on a long
// input, from `attnviz view` on the bundled demo model (real trained
// attention: layer 1, head 3 is its local head, a band along the diagonal).
// Also the analysis tabs of a sentence pair: docs/images/rollout.png (the
// saliency strip and the token-to-token lines of rollout) and
// docs/images/head-stats.png (the layers x heads heatmap of one statistic).
// Run by tools/readme-images; writes docs/images/matrix-zoomed.png, rollout.png, head-stats.png.
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
  "listened quietly while the wind rattled the windows and the sea kept its own slow time below the cliffs. " +
  "Some of the pages were stained with salt, and one of them held a pressed flower from a summer long ago.";

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
  // Zoom in until every token is labelled, then drag query 60 / key 60 (on the
  // diagonal, where the local head's band is) to the middle and hover next to it.
  const canvas = panel.locator(".av-matrix-canvas");
  const geometry = () => canvas.evaluate((c) => ({ cell: +c.dataset.cell, left: +c.dataset.left, top: +c.dataset.top,
    x0: +c.dataset.x0, y0: +c.dataset.y0, box: c.getBoundingClientRect().toJSON() }));
  const at = (g, row, col) => [g.box.x + g.left + (col - g.x0 + 0.5) * g.cell, g.box.y + g.top + (row - g.y0 + 0.5) * g.cell];
  let g = await geometry();
  await page.mouse.move(...at(g, 60, 60));
  while ((g = await geometry()).cell < 18) await redrawn(() => page.mouse.wheel(0, -200));
  const [targetX, targetY] = at(g, 60, 60);  // possibly outside the view
  const middleX = g.box.x + g.left + (g.box.width - g.left) / 2, middleY = g.box.y + g.top + (g.box.height - g.top) / 2;
  await page.mouse.move(middleX, middleY);
  await page.mouse.down();  // the stage captures the pointer: the drag may leave it
  await redrawn(() => page.mouse.move(2 * middleX - targetX, 2 * middleY - targetY, { steps: 5 }));
  await page.mouse.up();
  g = await geometry();
  await redrawn(() => page.mouse.move(...at(g, 60, 59)));  // hover: its tokens and exact weight in the readout
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, "matrix-zoomed.png");
  await page.locator(".av-app").screenshot({ path: file });
  console.log(file);

  // The analysis tabs (attnviz view's defaults on a short input: rollout, flow, head stats).
  const pair_path = path.join(work, "pair.html");
  execFileSync(cli, ["view", "--model", modelDir, "--text", "The lighthouse keeper climbed the narrow stairs.",
                     "--text-b", "His granddaughter found the notebooks.", "-o", pair_path],
               { env: { ...process.env, HF_HUB_OFFLINE: "1" }, encoding: "utf8" });
  await page.goto(pathToFileURL(pair_path).href);
  await page.waitForSelector(".attnviz[data-ready]");
  await page.locator('.av-tab[data-view="rollout"]').click();
  await page.waitForSelector(".av-rollout-head[data-drawn]");
  await page.locator('.av-rollout-head .av-col-q .av-tok[data-index="0"]').hover();
  await page.waitForFunction(() => [...document.querySelectorAll(".av-rollout-head .av-col-k .av-w")].some((w) => w.textContent !== ""));
  const rollout = path.join(outDir, "rollout.png");
  await page.screenshot({ path: rollout, clip: { x: 0, y: 0, width: 1100, height: 640 } });
  console.log(rollout);
  await page.locator('.av-tab[data-view="stats"]').click();
  await page.waitForSelector(".av-panel-stats[data-drawn]");
  await page.locator(".av-stat").selectOption("sep");
  await page.waitForFunction(() => document.querySelector(".av-stats-readout").textContent.includes("[SEP]"));
  const stats = path.join(outDir, "head-stats.png");
  await page.screenshot({ path: stats, clip: { x: 0, y: 0, width: 700, height: 330 } });
  console.log(stats);
} finally {
  await close();
  fs.rmSync(work, { recursive: true, force: true });
}
