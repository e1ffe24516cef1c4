// The encoder-decoder page test_analysis_views.py wrote (argv[2]) in headless
// Chromium: the Rollout / flow tab says that cross attention has no rollout or
// flow, offers the encoder's and the decoder's, and its saliency strip shows the
// chosen block's input tokens; no page error.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { launchChromium } from "../browser/chromium.mjs";

const file = process.argv[2];
const { context, problems, close } = await launchChromium();
let failed = false;
try {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push("page error: " + error.message));
  page.on("console", (message) => { if (message.type() === "error") problems.push("console error: " + message.text()); });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector(".av-panel-head[data-drawn]", { timeout: 30000 });
  await page.locator('.av-tab[data-view="rollout"]').click();
  const panel = page.locator(".av-panel-rollout");
  const note = panel.locator(".av-note");
  await note.waitFor({ state: "visible", timeout: 30000 });
  assert.equal(await note.count(), 1, "one note");
  assert.equal(await note.textContent(), 'rollout and flow are for self-attention blocks: "cross" (cross-attention) has none');
  const measures = await panel.locator(".av-sal-measure option").allTextContents();
  console.log(JSON.stringify(measures));
  // the strip: the encoder's 6 input tokens, then the decoder's 4
  await page.waitForFunction(() => document.querySelectorAll(".av-panel-rollout .av-sal-tok").length === 6, null, { timeout: 30000 });
  await panel.locator(".av-sal-measure").selectOption({ label: "Decoder rollout" });
  await page.waitForFunction(() => document.querySelectorAll(".av-panel-rollout .av-sal-tok").length === 4, null, { timeout: 30000 });
} catch (error) {
  failed = true;
  console.error("FAILED " + (error.stack || error));
}
await close();
for (const problem of problems) console.error("PROBLEM " + problem);
if (failed || problems.length) process.exit(1);
console.log("encoder-decoder page ok");
