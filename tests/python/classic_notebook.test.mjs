// The seed notebook live in classic Jupyter Notebook (argv[2]: its URL):
// run every cell, the five views draw with distinct roots, a hovered token
// answers, and after save and reload (outputs the session made are trusted)
// the views draw again from the saved HTML.
import assert from "node:assert/strict";
import { launchChromium } from "../browser/chromium.mjs";

const { context, close } = await launchChromium();
const errors = [];
let failed = false;
try {
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(process.argv[2]);
  await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel &&
                                   Jupyter.notebook.kernel.is_connected(), null, { timeout: 60000 });
  await page.evaluate(() => Jupyter.notebook.execute_all_cells());
  const allDrawn = () => document.querySelectorAll(".av-panel-head[data-drawn]").length === 3 &&
                         document.querySelectorAll(".av-panel-model[data-drawn]").length === 2;
  await page.waitForFunction(allDrawn, null, { timeout: 120000 });
  const roots = await page.locator("div.attnviz").evaluateAll((nodes) => nodes.map((node) => node.id));
  assert.equal(new Set(roots).size, 5, "five views, five root ids");
  const panel = page.locator(".av-panel-head").first();
  const before = +(await panel.getAttribute("data-drawn"));
  await panel.locator('.av-col-q .av-tok[data-index="1"]').hover();
  await page.waitForFunction(([node, count]) => +node.dataset.drawn > count, [await panel.elementHandle(), before]);
  assert.equal(await panel.getAttribute("data-focus"), "q:1");
  await page.evaluate(() => Jupyter.notebook.save_notebook());
  await page.waitForFunction(() => !Jupyter.notebook.dirty, null, { timeout: 30000 });
  await page.reload();
  await page.waitForFunction(allDrawn, null, { timeout: 60000 });
  assert.deepEqual(errors, [], "no page errors");
} catch (error) {
  failed = true;
  console.error("FAILED " + (error.stack || error) + "\npage errors: " + JSON.stringify(errors));
}
await close();
console.log(failed ? "classic notebook: FAILED" : "classic notebook: ok");
process.exit(failed ? 1 : 0);
