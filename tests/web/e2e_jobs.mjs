// The playground's Jobs view: a job made from pasted image URLs, its progress
// followed live to "completed", the job in the key's list (also after a
// reload), and a second job cancelled from its row.
// Usage: node e2e_jobs.mjs URL KEY IMAGES_BASE_URL OUT_DIR
// Prints one "ok ..." line per check and the screenshot path; exits non-zero on failure.
import path from 'node:path';
import { check, runPage } from './e2e_common.mjs';

const [url, key, images, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node e2e_jobs.mjs URL KEY IMAGES_BASE_URL OUT_DIR'); process.exit(2); }

const row = (page, sel = '') => page.locator(`#job-list li.job${sel}`);
async function createJob(page, urls) {
  const before = await row(page).count();
  await page.fill('#urls', urls.join('\n'));
  await page.click('#job-create');
  await page.waitForFunction((n) => document.querySelectorAll('#job-list li.job').length > n, before);
  return row(page).first().getAttribute('data-id'); // the newest is first
}

await runPage(outDir, async (page) => {
  await page.goto(url + '/');
  await page.fill('#key', key);
  const total = 10; // 0.3 s each, 2 at a time on the test's one-worker node
  const id = await createJob(page, Array.from({ length: total }, (_, i) => `${images}/slow-e2e${i}.png`));
  check(/^job_|^[0-9a-z_-]+$/i.test(id), `job created (${id})`);
  const li = row(page, `[data-id="${id}"]`);
  // Live progress: a part done before the end, then completed with every item.
  await page.waitForFunction((jid) => {
    const r = document.querySelector(`#job-list li[data-id="${jid}"]`);
    return r && Number(r.dataset.done) > 0 && Number(r.dataset.done) < Number(r.dataset.total);
  }, id, { timeout: 60000 });
  check(true, 'partial progress shown while the job runs');
  await page.waitForFunction((jid) => document.querySelector(`#job-list li[data-id="${jid}"]`)?.dataset.status === 'completed',
    id, { timeout: 120000 });
  check(await li.getAttribute('data-done') === String(total), `progress reached ${total} of ${total}`);
  check((await li.locator('.job-progress').textContent()).startsWith(`${total} of ${total}`), 'progress text says so');
  check(await li.locator('.job-cancel').isDisabled(), 'cancel disabled once completed');
  // The key's list (GET /api/v1/jobs) shows it after a reload.
  await page.reload();
  await page.waitForSelector(`#job-list li[data-id="${id}"][data-status="completed"]`);
  check(true, 'the job is in the list after a reload, completed');
  // A second, longer job cancelled from its row.
  const id2 = await createJob(page, Array.from({ length: 40 }, (_, i) => `${images}/slow-c${i}.png`));
  check(id2 !== id, 'second job created');
  const total2 = Number(await row(page, `[data-id="${id2}"]`).getAttribute('data-total'));
  await row(page, `[data-id="${id2}"]`).locator('.job-cancel').click();
  await page.waitForSelector(`#job-list li[data-id="${id2}"][data-status="cancelled"]`);
  const done2 = Number(await row(page, `[data-id="${id2}"]`).getAttribute('data-done'));
  check(done2 < total2, `second job cancelled (${done2} of ${total2} done)`);
  const shot = path.join(outDir, 'playground-jobs.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot ' + shot);
});
