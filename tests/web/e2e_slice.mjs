// The playground's "slice" tick: the image is detected in tiles, the tile grid
// is drawn under the boxes, and the heading says how many tiles ran.
// Usage: node e2e_slice.mjs URL KEY IMAGE OUT_DIR
// Prints one "ok ..." line per check and the screenshot path; exits non-zero on failure.
import path from 'node:path';
import { check, runAndWait, runPage } from './e2e_common.mjs';

const [url, key, image, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node e2e_slice.mjs URL KEY IMAGE OUT_DIR'); process.exit(2); }

await runPage(outDir, async (page) => {
  await page.goto(url + '/');
  await page.fill('#key', key);
  await page.setInputFiles('#files', [image]);
  await page.locator('#items li').first().locator('input[data-stage=slice]').check();
  await runAndWait(page, 180000);
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
});
