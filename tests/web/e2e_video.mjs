// The playground with a video: it plays in the card, frame lines are counted
// as they stream, and once done the boxes drawn follow the playing position,
// labelled with their track ids; the track list is shown.
// Usage: node e2e_video.mjs URL KEY VIDEO OUT_DIR
// Prints one "ok ..." line per check and the screenshot path; exits non-zero on failure.
import path from 'node:path';
import { check, runAndWait, runPage } from './e2e_common.mjs';

const [url, key, video, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node e2e_video.mjs URL KEY VIDEO OUT_DIR'); process.exit(2); }

await runPage(outDir, async (page) => {
  await page.goto(url + '/');
  await page.fill('#key', key);
  await page.setInputFiles('#files', [video]);
  check(await page.locator('#items li .kind').textContent() === 'video (v1)', 'the file is listed as a video');
  await runAndWait(page, 120000);
  const card = page.locator('.card');
  check(await card.getAttribute('data-state') === 'done', 'the video is done');
  const frames = Number(await card.getAttribute('data-frames'));
  check(frames === 30, `frame lines counted (${frames})`);
  check(await page.locator('.card video').count() === 1, 'it plays in a <video>');
  // At 0 s: the first frame's boxes, the astronaut with track #1.
  await page.evaluate(() => { const v = document.querySelector('.card video'); v.pause(); v.currentTime = 0; });
  await page.waitForFunction(() => document.querySelector('.card').dataset.frameShown === '0');
  // (The page asks for boxes from 0.05 on: weak ones have no track.)
  const t0 = await page.locator('.card svg g.det[data-class="person"][data-track]').evaluateAll((gs) => gs.map((g) => g.dataset.track));
  check(t0.length === 1 && t0[0] === '1', `frame 0: one tracked person, #1 (${t0})`);
  const label = await page.locator('.card svg g.det[data-track="1"] text').textContent();
  check(label.startsWith('#1 person'), `the label carries the track id (${label})`);
  // Seek to 5 s: the frame analysed there (frame 125), with both people.
  await page.evaluate(() => { document.querySelector('.card video').currentTime = 5.0; });
  await page.waitForFunction(() => document.querySelector('.card').dataset.frameShown === '125');
  const t5 = await page.locator('.card svg g.det[data-class="person"][data-track]').evaluateAll((gs) => gs.map((g) => g.dataset.track));
  check(t5.includes('1') && t5.length >= 2, `at 5 s: the astronaut (#1) and the walker (${t5})`);
  // Playing moves the boxes on.
  await page.evaluate(() => { const v = document.querySelector('.card video'); v.currentTime = 0; v.play(); });
  await page.waitForFunction(() => Number(document.querySelector('.card').dataset.frameShown) >= 10, null, { timeout: 20000 });
  check(true, 'the boxes follow the video as it plays');
  const rows = await page.locator('.card table.tracks tbody tr').count();
  check(rows >= 2, `the track list (${rows} tracks)`);
  const shot = path.join(outDir, 'playground-video.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot ' + shot);
}, { args: ['--autoplay-policy=no-user-gesture-required'] });
