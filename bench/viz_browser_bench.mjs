// Browser timings of the pages bench/viz_bench writes: first render and
// interaction latency in headless Debian chromium (playwright-core from
// tests/browser/node_modules). Each page is opened in a fresh browser.
//   first render: from navigation start to the head view's first drawing
//                 (the page's own performance.now() when it finished drawing);
//   hover:        a token hovered in the head view until its redraw is done
//                 (includes waiting for the animation frame), over 20 tokens;
//   model:        opening the model view until every thumbnail is drawn;
//   matrix hover: moving over a matrix cell until the redraw is done.
// Usage: node bench/viz_browser_bench.mjs page.html... ; prints one JSON object per line.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const { chromium } = await import(new URL("../tests/browser/node_modules/playwright-core/index.mjs", import.meta.url));
const args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"];

// Runs in the page: times an action until the panel's data-drawn changes.
const timeRedraws = async ({ selector, panelSelector, count: wanted }) => {
  let count = wanted;
  const panel = document.querySelector(panelSelector);
  const nodes = [...document.querySelectorAll(selector)];
  const times = [];
  count = Math.min(count, nodes.length);  // distinct tokens: hovering the same one twice draws nothing
  for (let i = 0; i < count; i++) {
    const node = nodes[Math.floor((i * nodes.length) / count)];
    const before = panel.dataset.drawn;
    const done = new Promise((resolve) => {
      const observer = new MutationObserver(() => {
        if (panel.dataset.drawn !== before) { observer.disconnect(); resolve(performance.now()); }
      });
      observer.observe(panel, { attributes: true, attributeFilter: ["data-drawn"] });
      setTimeout(() => { observer.disconnect(); resolve(NaN); }, 10000);  // no redraw: reported as null
    });
    const start = performance.now();
    node.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    times.push((await done) - start);
    await new Promise((r) => setTimeout(r, 30));
  }
  return times;
};

const median = (v) => { const s = v.filter(Number.isFinite).sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const largest = (v) => Math.max(...v.filter(Number.isFinite));
const misses = (v) => v.filter((x) => !Number.isFinite(x)).length;  // actions that drew nothing within 10 s

for (const file of process.argv.slice(2)) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-bench-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium", headless: true, viewport: { width: 1400, height: 900 }, args });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(path.basename(file) + ": page error: " + error.message));
  const phase = (name) => { if (process.env.ATTNVIZ_BENCH_VERBOSE) console.error(path.basename(file) + ": " + name); };
  const result = { file: path.basename(file), bytes: fs.statSync(file).size };
  try {
    await page.goto(pathToFileURL(path.resolve(file)).href, { timeout: 600000 });
    await page.waitForSelector(".av-panel-head[data-first-drawn-at]", { timeout: 600000 });
    result.first_render_ms = +(await page.getAttribute(".av-panel-head", "data-first-drawn-at"));
    phase("hover");
    const hover = await page.evaluate(timeRedraws, { selector: ".av-panel-head .av-col-q .av-tok", panelSelector: ".av-panel-head", count: 20 });
    result.hover_median_ms = +median(hover).toFixed(1);
    result.hover_max_ms = +largest(hover).toFixed(1);
    if (misses(hover)) result.hover_misses = misses(hover);
    if (await page.locator('.av-tab[data-view="model"]').count()) {
      phase("model");
      const start = await page.evaluate(() => performance.now());
      await page.locator('.av-tab[data-view="model"]').click();
      await page.waitForSelector(".av-panel-model[data-first-drawn-at]", { timeout: 600000 });
      result.model_all_thumbnails_ms = +(+(await page.getAttribute(".av-panel-model", "data-first-drawn-at")) - start).toFixed(1);
    }
    if (await page.locator('.av-tab[data-view="matrix"]').count()) {
      phase("matrix");
      await page.locator('.av-tab[data-view="matrix"]').click();
      await page.waitForSelector(".av-panel-matrix[data-first-drawn-at]", { timeout: 600000 });
      const times = await page.evaluate(async () => {
        const panel = document.querySelector(".av-panel-matrix"), canvas = panel.querySelector(".av-matrix-canvas");
        const rect = canvas.getBoundingClientRect(), cell = +canvas.dataset.cell;
        const columns = Math.floor((canvas.clientWidth - +canvas.dataset.left - 4) / cell);
        const rows = Math.floor((canvas.clientHeight - +canvas.dataset.top - 4) / cell);
        const out = [];
        for (let i = 0; i < 20; i++) {
          const before = panel.dataset.drawn;
          const done = new Promise((resolve) => {
            const observer = new MutationObserver(() => {
              if (panel.dataset.drawn !== before) { observer.disconnect(); resolve(performance.now()); }
            });
            observer.observe(panel, { attributes: true, attributeFilter: ["data-drawn"] });
            setTimeout(() => { observer.disconnect(); resolve(NaN); }, 10000);
          });
          const start = performance.now();
          canvas.dispatchEvent(new MouseEvent("mousemove", { bubbles: true,
            // Whole pixels (MouseEvent rounds clientX/Y) inside cell (5i, 7i), wrapped.
            clientX: Math.ceil(rect.left + +canvas.dataset.left + ((i * 7) % columns) * cell) + Math.floor(cell / 2),
            clientY: Math.ceil(rect.top + +canvas.dataset.top + (1 + (i * 5) % (rows - 1)) * cell) + Math.floor(cell / 2) }));
          out.push((await done) - start);
          await new Promise((r) => setTimeout(r, 30));
        }
        return out;
      });
      result.matrix_hover_median_ms = +median(times).toFixed(1);
      result.matrix_hover_max_ms = +largest(times).toFixed(1);
      if (misses(times)) result.matrix_hover_misses = misses(times);
    }
    const memory = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : null);
    if (memory) result.js_heap_mb = +(memory / 1e6).toFixed(1);
  } catch (error) {
    result.error = String(error.message || error).split("\n")[0];
  }
  console.log(JSON.stringify(result));
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
