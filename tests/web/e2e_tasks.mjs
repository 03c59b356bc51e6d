// The playground draws what the YOLO tasks add: masks (translucent fills in
// the class colour) and pose skeletons, and lists keypoints.
// Usage: node e2e_tasks.mjs SEG_URL SEG_KEY POSE_URL POSE_KEY IMAGE OUT_DIR
// (two servers: one serving a segmentation model, one a pose model).
// Prints one "ok ..." line per check and the screenshot paths; exits non-zero on failure.
import path from 'node:path';
import { check, runAndWait, runPage } from './e2e_common.mjs';

const [segUrl, segKey, poseUrl, poseKey, image, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node e2e_tasks.mjs SEG_URL SEG_KEY POSE_URL POSE_KEY IMAGE OUT_DIR'); process.exit(2); }

async function runOn(page, url, key) {
  await page.goto(url + '/');
  await page.fill('#key', key);
  await page.setInputFiles('#files', [image]);
  await runAndWait(page, 120000);
  check(await page.locator('.card').getAttribute('data-state') === 'done', `${url}: the image is done`);
  return page;
}

await runPage(outDir, async (page, _errors, newPage) => {
  const seg = await runOn(page, segUrl, segKey);
  const masks = seg.locator('.card svg g.det polygon.mask');
  const nm = await masks.count();
  check(nm >= 4, `masks drawn (${nm})`);
  // Translucent, in the class colour of the box beside it.
  const fill = await masks.first().evaluate((p) => {
    const cs = getComputedStyle(p);
    const box = p.parentNode.querySelector('rect.box');
    return { op: Number(cs.fillOpacity), fill: p.getAttribute('fill'), stroke: box.getAttribute('stroke') };
  });
  check(fill.op > 0 && fill.op < 1 && fill.fill === fill.stroke, `a mask is a translucent fill in its class colour (${JSON.stringify(fill)})`);
  const pts = await masks.first().evaluate((p) => p.points.numberOfItems);
  check(pts >= 3 && pts <= 200, `a mask outline has ${pts} points`);
  const segShot = path.join(outDir, 'playground-masks.png');
  await seg.screenshot({ path: segShot, fullPage: true });
  console.log('screenshot ' + segShot);

  // The other server: another origin, so its own page (and local storage).
  const pose = await runOn(await newPage(), poseUrl, poseKey);
  const limbs = await pose.locator('.card svg g.det line.limb').count();
  check(limbs >= 10, `skeleton limbs drawn (${limbs})`);
  const dots = await pose.locator('.card svg g.det circle.kp').count();
  check(dots >= 10, `keypoints drawn (${dots})`);
  const listed = await pose.locator('.card ul.kps li').allTextContents();
  check(listed.some((t) => t.startsWith('nose (')) && listed.some((t) => t.startsWith('right_ankle (')),
    `keypoints listed (${listed.length}: ${listed.slice(0, 2).join('; ')})`);
  const count = await pose.locator('.card .det-count').textContent();
  const people = await pose.locator('.card svg g.det').count();
  // People under the slider's default (asked for from 0.05 on) are drawn hidden and counted as not shown.
  const shown = await pose.locator('.card svg g.det:not(.hide)').count();
  check(count === `${shown} shown of ${people}`, `the count is of people, not keypoint rows (${count})`);
  const poseShot = path.join(outDir, 'playground-pose.png');
  await pose.screenshot({ path: poseShot, fullPage: true });
  console.log('screenshot ' + poseShot);
});
