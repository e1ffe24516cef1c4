// The seed notebook converted to HTML (argv[2]) and one view in a sandboxed
// iframe (argv[3]) in headless Chromium: every view draws, the roots are
// distinct, a hovered token shows its weights, and nothing reaches the network
// except the notebook template's own script tags (nbconvert's require.js and
// MathJax, which attnviz does not use and which fail offline).
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { launchChromium } from "../browser/chromium.mjs";
import { printedRange } from "../browser/printed.mjs";

const [notebookPage, sandboxedPage] = process.argv.slice(2);
const { context, problems, close } = await launchChromium();
const templateScripts = /^https:\/\/(cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net|unpkg\.com)\//;
let failed = false;

async function open(file) {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(file + ": page error: " + error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !/ERR_|Failed to load resource|require|MathJax/.test(message.text()))
      problems.push(file + ": console error: " + message.text());
  });
  await page.goto(pathToFileURL(file).href);
  return page;
}

async function hoverAnswers(frame, label) {
  const panel = frame.locator(".av-panel-head").first();
  await frame.waitForSelector(".av-panel-head[data-drawn]");
  assert.ok(+(await panel.getAttribute("data-lines")) > 0, label + ": lines are drawn");
  const before = +(await panel.getAttribute("data-drawn"));
  await panel.locator('.av-col-q .av-tok[data-index="1"]').hover();
  await frame.waitForFunction(([node, count]) => +node.dataset.drawn > count, [await panel.elementHandle(), before]);
  assert.equal(await panel.getAttribute("data-focus"), "q:1", label + ": the hovered query is the focus");
  // Over 100 keys, the numbers far from the visible band follow a moment later.
  await frame.waitForFunction((node) => node.querySelector(".av-scroll").dataset.numbers === "all", await panel.elementHandle());
  const texts = await panel.locator(".av-col-k .av-tok .av-w").evaluateAll((nodes) =>
    nodes.map((node) => node.textContent).filter((text) => text !== ""));
  assert.ok(texts.length > 0, label + ": the keys show weights");
  // Each printed weight claims an interval ("<0.001": (0, 0.001), "≈0.123": ±0.001);
  // a query's weights sum to 1, so 1 lies between the sums of their ends.
  let low = 0, high = 0;
  for (const text of texts) {
    const range = printedRange(text);
    assert.ok(range, label + ': "' + text + '" is a printed weight');
    low += range.low;
    high += range.high;
  }
  assert.ok(low <= 1 + 1e-6 && 1 - 1e-6 <= high,
            label + ": the shown weights of one query sum to 1 (they claim " + low + " .. " + high + ")");
}

try {
  const page = await open(notebookPage);
  await page.waitForFunction(() => document.querySelectorAll(".av-panel-head[data-drawn]").length === 3 &&
                                   document.querySelectorAll(".av-panel-model[data-drawn]").length === 2,
                             null, { timeout: 60000 });
  const roots = await page.locator("div.attnviz").evaluateAll((nodes) => nodes.map((node) => node.id));
  assert.equal(roots.length, 5);
  assert.equal(new Set(roots).size, 5, "every view has its own root id");
  await hoverAnswers(page, "notebook");

  const sandboxed = await open(sandboxedPage);
  const frame = sandboxed.frameLocator("iframe");
  await frame.locator(".av-panel-head[data-drawn]").waitFor({ timeout: 30000 });
  await hoverAnswers(sandboxed.frames()[1], "sandboxed iframe");
} catch (error) {
  failed = true;
  console.error("FAILED " + (error.stack || error));
}
const real = problems.filter((problem) => !templateScripts.test(problem.replace("network request: ", "")));
if (real.length) {
  failed = true;
  console.error("problems:\n" + real.join("\n"));
}
await close();
console.log(failed ? "notebook views: FAILED" : "notebook views: ok");
process.exit(failed ? 1 : 0);
