// Shared set-up of the playground's e2e scripts: Debian's chromium through
// playwright-core, pages that record console errors, "ok ..." checks, and
// an exit status (non-zero on the first failed check or error).
import { chromium } from 'playwright-core';
import fs from 'node:fs';

export function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  console.log('ok ' + what);
}

// Runs body(page, errors, newPage) in a fresh headless browser and exits the
// process. newPage() opens another page in the same context, its console
// errors also going to errors. Options: viewport; args, extra chromium flags;
// checkErrors false when body checks errors itself (a page that must log one).
export async function runPage(outDir, body, { viewport = { width: 1280, height: 1400 }, args = [], checkErrors = true } = {}) {
  fs.mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', ...args],
  });
  let failed = false;
  const errors = [];
  try {
    // A fresh, isolated profile (playwright's contexts are): nothing from other runs.
    const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const newPage = async () => {
      const page = await ctx.newPage();
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.setDefaultTimeout(60000);
      return page;
    };
    await body(await newPage(), errors, newPage);
    if (checkErrors) check(errors.length === 0, `no console errors (${errors.join(' | ')})`);
  } catch (e) {
    failed = true;
    console.error(e.stack || String(e));
    if (errors.length) console.error('browser console: ' + errors.join('\n'));
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

// Runs what is on the page (#run) and waits until its first card is done or failed.
export async function runAndWait(page, timeout) {
  await page.click('#run');
  await page.waitForFunction(() => {
    const c = document.querySelector('.card');
    return c && (c.dataset.state === 'done' || c.dataset.state === 'error');
  }, null, { timeout });
}
