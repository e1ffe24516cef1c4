// Headless Debian chromium through playwright-core, started the same way by every
// browser test: flags that keep it off the network, a fresh profile, and every
// request outside the page's own file:, data: and blob: URLs recorded as a problem.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export async function launchChromium() {
  let chromium;
  try {
    ({ chromium } = await import(new URL("./node_modules/playwright-core/index.mjs", import.meta.url)));
  } catch (error) {
    console.error("playwright-core is missing: run tools/setup (npm ci in tests/browser). " + error.message);
    process.exit(1);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "attnviz-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 860 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const problems = [];
  context.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith("file:") && !url.startsWith("data:") && !url.startsWith("blob:")) problems.push("network request: " + url);
  });
  // Closes the browser and removes its profile.
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, problems, close };
}
