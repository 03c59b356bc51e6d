// The playground's "slice" tick: the image is detected in tiles, the tile grid
// is drawn under the boxes, and the heading says how many tiles ran.
// Usage: node e2e_slice.mjs URL KEY IMAGE OUT_DIR
// Prints one "ok ..." line per check and the screenshot path; exits non-zero on failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [url, key, image, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node e2e_slice.mjs URL KEY IMAGE OUT_DIR'); process.exit(2); }
fs.mkdirSync(outDir, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  console.log('ok ' + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
let failed = false;
const errors = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1400 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(60000);
  await page.goto(url + '/');
  await page.fill('#key', key);
  await page.setInputFiles('#files', [image]);
  await page.locator('#items li').first().locator('input[data-stage=slice]').check();
  await page.click('#run');
  await page.waitForFunction(() => {
    const c = document.querySelector('.card');
    return c && (c.dataset.state === 'done' || c.dataset.state === 'error');
  }, null, { timeout: 180000 });
  check(await page.locator('.card').getAttribute('data-state') === 'done', 'the image is done');
  const tiles = await page.locator('.card svg rect.tile').count();
  check(tiles >= 4, `tile grid drawn (${tiles} tiles)`);
  const heading = await page.locator('.card h3').first().textContent();
  check(heading.includes(`sliced: ${tiles} tiles + full image`), `the heading says so (${heading})`);
  const boxes = await page.locator('.card svg g.det').count();
  check(boxes >= 10, `detections drawn (${boxes})`);
  const shot = path.join(outDir, 'playground-slice.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot ' + shot);
  check(errors.length === 0, `no console errors (${errors.join(' | ')})`);
} catch (e) {
  failed = true;
  console.error(e.message || e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
