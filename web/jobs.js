// Sight playground, Jobs view: runs the pasted image URLs as a durable job
// (POST /api/v1/jobs), lists the key's jobs (GET /api/v1/jobs) with their
// progress followed live from each job's NDJSON events, and cancels one
// (DELETE). Loaded after app.js, whose helpers ($, el, items, addUrls,
// showBanner, keyInput) it uses.
'use strict';

const JOBS = '/api/v1/jobs';
const jobList = $('job-list');
const followed = new Set(); // ids whose events this page reads now
const ENDED = ['completed', 'cancelled'];

const authHeaders = () => ({ Authorization: `Bearer ${keyInput.value.trim()}` });
async function apiError(resp) {
  const body = await resp.json().catch(() => ({}));
  const d = body.detail || {};
  return `${resp.status} ${d.code || ''}: ${d.message || resp.statusText}`;
}

// One row per job: id, status, a progress bar (succeeded + failed of total), cancel.
function jobRow(id) {
  let li = jobList.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (li) return li;
  const cancel = el('button', { type: 'button', class: 'job-cancel', text: 'Cancel' });
  cancel.addEventListener('click', () => cancelJob(id));
  li = el('li', { class: 'job', 'data-id': id }, el('code', { class: 'job-id', text: id }),
    el('span', { class: 'job-status' }), el('progress', { class: 'job-bar', max: 1, value: 0 }),
    el('span', { class: 'job-progress' }), cancel);
  jobList.append(li);
  return li;
}
function showJob(j) {
  const li = jobRow(j.id), done = j.succeeded + j.failed;
  li.dataset.status = j.status;
  li.dataset.done = done;
  li.dataset.total = j.total;
  li.querySelector('.job-status').textContent = j.status;
  const bar = li.querySelector('.job-bar');
  bar.max = Math.max(1, j.total);
  bar.value = done;
  li.querySelector('.job-progress').textContent = `${done} of ${j.total}` + (j.failed ? ` (${j.failed} failed)` : '');
  li.querySelector('.job-cancel').disabled = ENDED.includes(j.status);
}

// Follows a job's events until its "complete" line, counting the items'
// final lines; a dropped stream resumes with after= the last seq read.
async function follow(j) {
  if (followed.has(j.id) || ENDED.includes(j.status)) return;
  followed.add(j.id);
  const job = { ...j, succeeded: 0, failed: 0 };
  let seq = 0;
  try {
    for (let tries = 0; tries < 30 && !ENDED.includes(job.status); tries++) {
      try {
        const resp = await fetch(`${JOBS}/${encodeURIComponent(j.id)}/events?after=${seq}`, { headers: authHeaders() });
        if (!resp.ok) { showBanner(`Job events: ${await apiError(resp)}`); return; }
        const reader = resp.body.getReader(), dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const ev = JSON.parse(line);
            seq = ev.seq || seq;
            if (ev.status === 'done') job.succeeded++;
            else if (ev.status === 'error') job.failed++;
            else if (ev.status === 'complete') Object.assign(job, { status: ev.job_status, succeeded: ev.succeeded, failed: ev.failed, total: ev.total });
            if (job.status === 'queued' && ev.status !== 'complete') job.status = 'running';
            showJob(job);
          }
        }
      } catch (e) {
        await new Promise((r) => setTimeout(r, 1000)); // a dropped connection: resume after a pause
      }
    }
  } finally {
    followed.delete(j.id);
  }
}

async function refreshJobs() {
  if (!keyInput.value.trim()) return;
  const resp = await fetch(`${JOBS}?limit=20`, { headers: authHeaders() });
  if (!resp.ok) { showBanner(`Jobs: ${await apiError(resp)}`); return; }
  const { jobs } = await resp.json();
  for (const j of jobs) { showJob(j); follow(j); }
}

async function createJob() {
  if (urlsInput.value.trim()) addUrls();
  const urls = items.filter((i) => i.kind === 'url');
  if (!urls.length) { showBanner('Paste at least one image URL to run as a job.'); return; }
  const query = queryInput.value.trim();
  const body = { items: urls.map((u) => ({ url: u.url, is_yolo: u.yolo, is_ocr: u.ocr, is_llm: u.llm })), ...(query ? { query } : {}) };
  const resp = await fetch(JOBS, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!resp.ok) { showBanner(`Create job: ${await apiError(resp)}`); return; }
  const j = await resp.json();
  showJob(j);
  jobList.prepend(jobRow(j.id)); // newest first, as the list
  follow(j);
}

async function cancelJob(id) {
  const resp = await fetch(`${JOBS}/${encodeURIComponent(id)}`, { method: 'DELETE', headers: authHeaders() });
  if (!resp.ok) { showBanner(`Cancel: ${await apiError(resp)}`); return; }
  showJob(await resp.json());
}

$('job-create').addEventListener('click', () => createJob().catch((e) => showBanner(`Create job: ${e.message}`)));
$('jobs-refresh').addEventListener('click', () => refreshJobs().catch((e) => showBanner(`Jobs: ${e.message}`)));
refreshJobs().catch(() => {});
