// Drives pages of the shared browser (browser-server.mjs) for a Rust test:
// reads one JSON command per line on stdin, answers one JSON line on stdout
// (`{"ok": value}` or `{"error": message}`). Playwright's locators wait for
// what they act on, so the tests wait on conditions, never on sleeps.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

// axe-core, evaluated in the page through the DevTools protocol (which the
// page's Content-Security-Policy does not govern, unlike an injected script).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.connect(process.env.BROWSER_WS);
const pages = new Map();
let nextPage = 1;
const consoleErrors = [];

function page(id) {
  const found = pages.get(id);
  if (!found) throw new Error(`no page ${id}`);
  return found;
}

const TIMEOUT = Number(process.env.BROWSER_TIMEOUT_MS || 20000);

const commands = {
  /** A page in a context of its own (its own storage: one device). */
  async newPage({ width = 1280, height = 900, locale = 'fr-FR', geolocation }) {
    const context = await browser.newContext({
      viewport: { width, height },
      locale,
      ...(geolocation ? { geolocation, permissions: ['geolocation'] } : {}),
    });
    const created = await context.newPage();
    created.setDefaultTimeout(TIMEOUT);
    created.on('pageerror', (error) => consoleErrors.push(String(error)));
    // A confirmation (a removal, a disabling) is accepted, as the person
    // would, and its question kept for the test to read.
    created.dialogs = [];
    created.on('dialog', (dialog) => {
      created.dialogs.push(dialog.message());
      dialog.accept().catch(() => {});
    });
    // Bytes the page received over WebSockets (the sync channel).
    created.wsReceived = 0;
    created.on('websocket', (socket) =>
      socket.on('framereceived', ({ payload }) => {
        created.wsReceived += typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
      }),
    );
    const id = nextPage++;
    pages.set(id, created);
    return id;
  },
  /** The device's network: off (as in a field without signal) or back on. */
  async setOffline({ page: id, offline }) {
    await page(id).context().setOffline(offline);
    return null;
  },
  /** A file chosen in a file input (what the camera would hand over). */
  async setInputFile({ page: id, selector, name, mimeType, base64 }) {
    await page(id).locator(selector).setInputFiles({ name, mimeType, buffer: Buffer.from(base64, 'base64') });
    return null;
  },
  async webSocketBytes({ page: id }) {
    return page(id).wsReceived;
  },
  async goto({ page: id, url }) {
    await page(id).goto(url);
    return null;
  },
  async reload({ page: id }) {
    await page(id).reload();
    return null;
  },
  async setViewport({ page: id, width, height }) {
    await page(id).setViewportSize({ width, height });
    return null;
  },
  async fill({ page: id, selector, value }) {
    await page(id).locator(selector).fill(value);
    return null;
  },
  async click({ page: id, selector }) {
    await page(id).locator(selector).click();
    return null;
  },
  /** Clicks `selector` at (x, y) pixels from its top left corner (a map). */
  async clickAt({ page: id, selector, x, y }) {
    await page(id).locator(selector).click({ position: { x, y } });
    return null;
  },
  /** The questions of the dialogs the page asked so far, which were accepted. */
  async dialogs({ page: id }) {
    return page(id).dialogs;
  },
  async check({ page: id, selector }) {
    await page(id).locator(selector).check();
    return null;
  },
  async select({ page: id, selector, value }) {
    await page(id).locator(selector).selectOption(value);
    return null;
  },
  async press({ page: id, selector, key }) {
    await page(id).locator(selector).press(key);
    return null;
  },
  async keyboard({ page: id, key }) {
    await page(id).keyboard.press(key);
    return null;
  },
  async text({ page: id, selector }) {
    return page(id).locator(selector).first().innerText();
  },
  async count({ page: id, selector }) {
    return page(id).locator(selector).count();
  },
  /** Waits until `selector` matches at least one visible element. */
  async waitFor({ page: id, selector, state = 'visible' }) {
    await page(id).locator(selector).first().waitFor({ state });
    return null;
  },
  /** Waits until the first match of `selector` contains `text`. */
  async waitForText({ page: id, selector, text, timeout = TIMEOUT }) {
    const locator = page(id).locator(selector).first();
    const deadline = Date.now() + timeout;
    for (;;) {
      const seen = await locator.innerText({ timeout }).catch(() => null);
      if (seen !== null && seen.includes(text)) return seen;
      if (Date.now() > deadline) throw new Error(`${selector} did not show ${JSON.stringify(text)} (last: ${JSON.stringify(seen)})`);
      await page(id).waitForTimeout(100);
    }
  },
  /** Waits until `selector` matches exactly `n` elements. */
  async waitForCount({ page: id, selector, n, timeout = TIMEOUT }) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const seen = await page(id).locator(selector).count();
      if (seen === n) return seen;
      if (Date.now() > deadline) throw new Error(`${selector}: ${seen} elements, not ${n}`);
      await page(id).waitForTimeout(100);
    }
  },
  /** Clicks `selector`, waits for the download it starts and saves it at `path`; its suggested name. */
  async download({ page: id, selector, path }) {
    const target = page(id);
    const [started] = await Promise.all([target.waitForEvent('download'), target.locator(selector).click()]);
    await started.saveAs(path);
    return started.suggestedFilename();
  },
  /** The CSS media the page renders for: `print` (as when printed) or `screen`. */
  async emulateMedia({ page: id, media }) {
    await page(id).emulateMedia({ media });
    return null;
  },
  async evaluate({ page: id, expression }) {
    return page(id).evaluate(expression);
  },
  async screenshot({ page: id, path, fullPage = true }) {
    await page(id).screenshot({ path, fullPage });
    return path;
  },
  /** WCAG 2 A and AA violations axe-core finds on the page as it is now. */
  async axe({ page: id }) {
    const target = page(id);
    await target.evaluate(axeSource);
    const results = await target.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
    );
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    }));
  },
  async closePage({ page: id }) {
    await page(id).context().close();
    pages.delete(id);
    return null;
  },
  async errors() {
    return consoleErrors.splice(0);
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const { op, ...args } = JSON.parse(line);
    if (!commands[op]) throw new Error(`unknown command ${op}`);
    answer = { ok: (await commands[op](args)) ?? null };
  } catch (error) {
    answer = { error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await browser.close().catch(() => {});
