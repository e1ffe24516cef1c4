// The browser-test harness for pages of tests/browser/make_pages.cpp: open a
// page (recording page errors, dialogs and console errors as problems), wait
// for a view's redraw, hover tokens, read the numbers beside tokens, and run
// named checks that report instead of stopping at the first failure.
import path from "node:path";
import { pathToFileURL } from "node:url";

// Named checks that report instead of stopping at the first failure:
// test(name, body) runs one; results holds [name, "ok" | "FAILED", ms] each.
export function makeTests() {
  const results = [];
  return {
    results,
    async test(name, body) {
      const started = Date.now();
      try {
        await body();
        results.push([name, "ok", Date.now() - started]);
      } catch (error) {
        results.push([name, "FAILED", Date.now() - started]);
        console.error("FAILED " + name + "\n" + (error.stack || error));
      }
    },
  };
}

export function makeHarness(context, problems, pagesDir) {
  const { results, test } = makeTests();
  return {
    results,
    test,
    async open(name) {
      const page = await context.newPage();
      page.on("dialog", (dialog) => { problems.push(name + ": a dialog opened: " + dialog.message()); dialog.dismiss(); });
      page.on("pageerror", (error) => problems.push(name + ": page error: " + error.message));
      page.on("console", (message) => { if (message.type() === "error") problems.push(name + ": console error: " + message.text()); });
      await page.goto(pathToFileURL(path.join(pagesDir, name + ".html")).href, { timeout: 60000 });
      return page;
    },
  };
}

// Waits until the panel drew again after an action, then two more animation
// frames, so no redraw queued by this or an earlier action is still pending.
export async function act(panel, action) {
  const before = +((await panel.getAttribute("data-drawn")) || 0);
  await action();
  await panel.page().waitForFunction(
    ([node, count]) => +(node.dataset.drawn || 0) > count, [await panel.elementHandle(), before], { timeout: 10000 });
  await panel.page().evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// Hovers a token from outside it, so the pointer really enters it.
export async function hoverToken(scope, side, index) {
  await scope.page().mouse.move(1, 1);
  await scope.locator(".av-col-" + side + ' .av-tok[data-index="' + index + '"]').hover();
}

// The texts shown beside one side's tokens: Map index -> text (non-empty only).
export async function numberTexts(scope, side) {
  const entries = await scope.locator(".av-col-" + side + " .av-tok").evaluateAll((nodes) =>
    nodes.map((node) => [+node.dataset.index, node.querySelector(".av-w").textContent]));
  return new Map(entries.filter(([, text]) => text !== ""));
}

// A deterministic generator for sampling (mulberry32).
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
