// Shared set-up of the playground's e2e scripts: Debian's chromium through
// playwright-core, a page that records console errors, "ok ..." checks, and
// an exit status (non-zero on the first failed check or error).
import { chromium } from 'playwright-core';
import fs from 'node:fs';

export function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  console.log('ok ' + what);
}

// Runs body(page, errors) in a fresh headless browser and exits the process.
export async function runPage(outDir, body, viewport = { width: 1280, height: 1400 }) {
  fs.mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  let failed = false;
  const errors = [];
  try {
    const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.setDefaultTimeout(60000);
    await body(page, errors);
    check(errors.length === 0, `no console errors (${errors.join(' | ')})`);
  } catch (e) {
    failed = true;
    console.error(e.message || e);
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
