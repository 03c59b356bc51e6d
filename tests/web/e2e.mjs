// End-to-end test of the playground page in Debian's chromium (playwright-core).
// Usage: node e2e.mjs BASE_URL API_KEY STREET_JPG TEXT_JPG OUT_DIR
// E2E_BOX=class,x1,y1,x2,y2,width,height: a detection the street photo must show (the test
// takes it from `sightd detect`), to check where its box is drawn.
// Prints one "ok ..." line per check and the screenshot paths; exits non-zero on failure.
import fs from 'node:fs';
import path from 'node:path';
import { check, runPage } from './e2e_common.mjs';

const [base, key, busJpg, textJpg, outDir] = process.argv.slice(2);
if (!outDir || !process.env.E2E_BOX) { console.error('usage: E2E_BOX=... node e2e.mjs BASE_URL API_KEY STREET_JPG TEXT_JPG OUT_DIR'); process.exit(2); }
const [want, ...nums] = process.env.E2E_BOX.split(',');
const [bx1, by1, bx2, by2, imgW, imgH] = nums.map(Number);

// Checks its own console errors: the wrong key at the end must log one.
await runPage(outDir, async (page, consoleErrors, newPage) => {
  const resp = await page.goto(base + '/');
  check(resp.status() === 200, 'GET / answers 200');
  check((resp.headers()['content-security-policy'] || '').includes("default-src 'self'"), 'the page has a CSP');

  // The key is kept in local storage.
  await page.fill('#key', key);
  await page.reload();
  check(await page.inputValue('#key') === key, 'the API key survives a reload (local storage)');

  await page.fill('#query', 'what does it say');
  await page.setInputFiles('#files', [busJpg, textJpg]);
  check(await page.locator('#items li').count() === 2, 'two images listed');
  // The street photo: YOLO (default); the text image: YOLO + OCR + LLM.
  await page.locator('#items li').nth(1).locator('input[data-stage=ocr]').check();
  await page.locator('#items li').nth(1).locator('input[data-stage=llm]').check();
  await page.click('#run');

  // Each image gets a card that goes through processing to done.
  await page.waitForSelector('.card', { timeout: 10000 });
  await page.waitForFunction(() => {
    const c = document.querySelectorAll('.card');
    return c.length === 2 && [...c].every((x) => x.dataset.state === 'done' || x.dataset.state === 'error');
  }, null, { timeout: 120000 });
  const states = await page.$$eval('.card', (cs) => cs.map((c) => c.dataset.state));
  check(states.every((s) => s === 'done'), `both images done (${states})`);

  const bus = page.locator('.card').nth(0);
  const boxes = await bus.locator('svg g.det:not(.hide) rect.box').count();
  check(boxes >= 3, `boxes drawn over the street photo (${boxes})`);
  const classes = await bus.locator('table.dets td:first-child').allTextContents();
  check(classes.includes(want), `the detection table lists ${want} (${[...new Set(classes)].join(', ')})`);
  const person = classes.filter((c) => c === 'person').length;
  check(person >= 2, `the table lists people (${person})`);
  // The overlay is scaled to the displayed image.
  const [imgBox, svgBox] = [await bus.locator('.stage img').boundingBox(), await bus.locator('.stage svg').boundingBox()];
  check(Math.abs(imgBox.width - svgBox.width) < 1.5 && Math.abs(imgBox.height - svgBox.height) < 1.5,
    `overlay matches the displayed image (${Math.round(imgBox.width)}x${Math.round(imgBox.height)})`);
  // The box is drawn where the detection is: its rect on screen is the detection's box scaled
  // to the displayed image (within 2 px plus the stroke).
  const r = await bus.locator(`svg g.det[data-class="${want}"] rect.box`).first().boundingBox();
  const sx = imgBox.width / imgW, sy = imgBox.height / imgH;
  const near = (a, b) => Math.abs(a - b) <= 3;
  check(r && near(r.x - imgBox.x, bx1 * sx) && near(r.y - imgBox.y, by1 * sy) &&
        near(r.x + r.width - imgBox.x, bx2 * sx) && near(r.y + r.height - imgBox.y, by2 * sy),
        `the ${want} box is drawn where it was detected (${r && [r.x - imgBox.x, r.y - imgBox.y, r.width, r.height].map(Math.round)})`);

  const text = page.locator('.card').nth(1);
  const lines = await text.locator('.ocr-line').allTextContents();
  check(lines.some((l) => /PARKING/i.test(l)), `an OCR line is shown (${lines.join(' | ')})`);
  const polys = await text.locator('svg polygon.ocr').count();
  check(polys >= 1, `OCR lines outlined (${polys})`);
  const llm = await text.locator('.llm').textContent();
  check(/PARKING/i.test(llm), `the LLM answer is shown (${llm.slice(0, 80)})`);
  check(/ms/.test(await text.locator('.timings').last().textContent()), 'timings shown');
  // Today's use of the key, beside the key field, refreshed after the stream.
  await page.waitForFunction(() => Number(document.getElementById('usage').dataset.files) >= 2, null, { timeout: 10000 })
    .catch(() => {});
  const used = await page.locator('#usage').textContent();
  check(/^Today: \d+ requests, \d+ images/.test(used) && Number(await page.locator('#usage').getAttribute('data-files')) >= 2,
    `today's usage shown beside the key (${used})`);

  // The slider filters boxes without a request.
  let requests = 0;
  page.on('request', () => requests++);
  await page.locator('#conf').fill('0.9');
  const high = await bus.locator('svg g.det:not(.hide)').count();
  check(high < boxes, `slider at 0.9 hides boxes (${high} of ${boxes} left)`);
  await page.locator('#conf').fill('0.25');
  check(await bus.locator('svg g.det:not(.hide)').count() === boxes, 'slider back at 0.25 shows them again');
  check(requests === 0, 'no request made by the slider');

  // The raw NDJSON download.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const nd = fs.readFileSync(await dl.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  check(nd.some((m) => m.status === 'processing') && nd.at(-1).status === 'complete', `download has the NDJSON stream (${nd.length} lines)`);

  const shot = path.join(outDir, 'playground.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot ' + shot);

  // A narrow screen: the page still lays out in one column without horizontal scrolling.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, `no horizontal scrolling at 390px (${overflow})`);
  const narrow = path.join(outDir, 'playground-narrow.png');
  await page.screenshot({ path: narrow, fullPage: false });
  console.log('screenshot ' + narrow);
  await page.setViewportSize({ width: 1280, height: 900 });

  // v2 and llm_delta, against a second server whose LLM is a scripted fake that streams slowly
  // (E2E_LLM_URL, E2E_LLM_KEY): an image URL (a data: URL) with LLM ticked; the answer grows.
  if (process.env.E2E_LLM_URL) {
    const p2 = await newPage();
    await p2.goto(process.env.E2E_LLM_URL + '/');
    await p2.fill('#key', process.env.E2E_LLM_KEY);
    await p2.fill('#query', 'what is in the picture');
    await p2.fill('#urls', 'data:image/jpeg;base64,' + fs.readFileSync(busJpg).toString('base64'));
    await p2.click('#add-urls');
    check(await p2.locator('#items li .kind').textContent() === 'URL (v2)', 'a pasted URL goes to v2');
    await p2.locator('#items li input[data-stage=yolo]').uncheck();
    await p2.locator('#items li input[data-stage=llm]').check();
    await p2.click('#run');
    const partial = await p2.waitForFunction(() => {
      const c = document.querySelector('.card');
      const t = c && c.querySelector('.llm').textContent;
      return c && c.dataset.state === 'processing' && t ? t : false;
    }, null, { timeout: 30000, polling: 20 });
    const partialText = await partial.jsonValue();
    await p2.waitForFunction(() => document.querySelector('.card')?.dataset.state === 'done', null, { timeout: 60000 });
    const full = (await p2.locator('.card .llm').textContent());
    check(full.startsWith(process.env.E2E_LLM_ANSWER) && partialText.length < process.env.E2E_LLM_ANSWER.length,
      `the LLM answer grows with llm_delta lines ("${partialText}" while processing, then "${process.env.E2E_LLM_ANSWER}")`);
    const shotLlm = path.join(outDir, 'playground-llm.png');
    await p2.screenshot({ path: shotLlm, fullPage: true });
    console.log('screenshot ' + shotLlm);
    await p2.close();
  }

  check(consoleErrors.length === 0, `no errors in the browser console before the wrong key (${consoleErrors.join(' | ')})`);

  // A wrong key: the server's 401 detail is shown (chromium logs the 401 itself as a console error).
  await page.fill('#key', 'sk_wrong');
  await page.click('#run');
  await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
  const banner = await page.textContent('#banner');
  check(/401/.test(banner) && /invalid_api_key/.test(banner), `a wrong key shows the 401 message (${banner.trim()})`);
  // Drag-and-drop adds images to the list like the file picker.
  const before = await page.locator('#items li').count();
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array([0xff, 0xd8, 0xff])], 'dropped.jpg', { type: 'image/jpeg' }));
    document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  check(await page.locator('#items li').count() === before + 1 &&
    await page.locator('#items li .name').last().textContent() === 'dropped.jpg', 'a dropped file is listed');
  const shot401 = path.join(outDir, 'playground-401.png');
  await page.screenshot({ path: shot401 });
  console.log('screenshot ' + shot401);
}, { viewport: { width: 1280, height: 900 }, checkErrors: false });
