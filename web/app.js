// Sight playground: sends the chosen images to the streaming endpoints (v1 for
// files, v2 for URLs), reads the NDJSON answer line by line as it arrives, and
// draws what came back. Plain browser JavaScript, no dependencies.
'use strict';

const V1 = '/api/v1/inference/predict/stream';
const V2 = '/api/v1/inference/predict/stream/v2';
const SVG = 'http://www.w3.org/2000/svg';
// Boxes are asked for from this confidence on, so the slider can also go below its default.
const REQUEST_CONFIDENCE = 0.05;

const $ = (id) => document.getElementById(id);
const keyInput = $('key'), queryInput = $('query'), filesInput = $('files'), drop = $('drop');
const urlsInput = $('urls'), itemsList = $('items'), results = $('results'), banner = $('banner');
const conf = $('conf'), confOut = $('conf-out'), downloadBtn = $('download'), runBtn = $('run');

let items = [];      // {kind: 'file'|'url', file?, url?, name, yolo, ocr, llm, slice, video?}
let raw = [];        // every NDJSON line received, for the download
let running = 0;
let blobUrls = [];   // object URLs of the shown files, revoked when the results are cleared

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    // Styles through the CSSOM: the page's CSP refuses style attributes.
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
    else if (k === 'style') Object.assign(e.style, v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
// A colour per class: a palette of well-separated colours, then hues spread by the golden angle.
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#0f9fb4', '#f032e6', '#6b8e23',
  '#c71585', '#008080', '#9a6324', '#800000', '#2f4f4f', '#000075', '#b8860b', '#ff1493'];
const colour = (id) => (Number(id) >= 0 && Number(id) < PALETTE.length ? PALETTE[Number(id)]
  : `hsl(${(Number(id) * 137.508) % 360}, 80%, 40%)`);
// COCO's 17-keypoint skeleton (pairs of keypoint indices), as Ultralytics draws it.
const LIMBS = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8], [7, 9],
  [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6]];
const KP_MIN = 0.5; // keypoints less visible than this are not drawn (upstream's default)
const kpSeen = (k) => k && (typeof k.confidence !== 'number' || k.confidence >= KP_MIN);
const fmt = (n, d = 1) => (typeof n === 'number' ? n.toFixed(d) : '');

// ---- settings kept in local storage ----
keyInput.value = localStorage.getItem('sight.api_key') || '';
keyInput.addEventListener('input', () => localStorage.setItem('sight.api_key', keyInput.value.trim()));

// ---- the key's use today (GET /api/v1/usage), beside the key field ----
const usageEl = $('usage');
let usageTimer = 0;
async function showUsage() {
  const key = keyInput.value.trim();
  if (!key) { usageEl.textContent = ''; return; }
  try {
    const resp = await fetch('/api/v1/usage', { headers: { Authorization: `Bearer ${key}` } });
    if (!resp.ok) { usageEl.textContent = ''; return; }
    const rep = await resp.json();
    const d = rep.usage[rep.usage.length - 1];
    const q = rep.key.limits.quota_images;
    usageEl.textContent = `Today: ${d.requests} requests, ${d.files} images${q ? ` (quota ${q})` : ''}, `
      + `${fmt(d.megapixels, 2)} MP, ${d.llm_prompt_tokens + d.llm_completion_tokens} LLM tokens`;
    usageEl.dataset.files = d.files;
  } catch { usageEl.textContent = ''; }
}
keyInput.addEventListener('input', () => { clearTimeout(usageTimer); usageTimer = setTimeout(showUsage, 300); });
showUsage();
queryInput.value = localStorage.getItem('sight.query') || '';
queryInput.addEventListener('input', () => localStorage.setItem('sight.query', queryInput.value));

// ---- choosing images ----
function addFiles(list) {
  for (const f of list) {
    const video = f.type ? f.type.startsWith('video/') : /\.(mp4|m4v|mov|webm|mkv)$/i.test(f.name);
    if (f.type && !f.type.startsWith('image/') && !video) continue;
    // A video is analysed at 5 frames a second with ByteTrack ids (the LLM answers once, about four of its frames).
    items.push({ kind: 'file', file: f, name: f.name, yolo: true, ocr: false, llm: false, slice: false, video });
  }
  renderItems();
}
function addUrls() {
  for (const line of urlsInput.value.split(/\s+/)) {
    const u = line.trim();
    if (!u) continue;
    let name = u.startsWith('data:') ? 'pasted-image' : (u.split('?')[0].split('/').filter(Boolean).pop() || u);
    items.push({ kind: 'url', url: u, name, yolo: true, ocr: false, llm: false, slice: false });
  }
  urlsInput.value = '';
  renderItems();
}
function renderItems() {
  itemsList.replaceChildren(...items.map((it, i) => {
    const box = (k, label) => {
      const c = el('input', { type: 'checkbox', 'data-stage': k });
      c.checked = it[k];
      c.addEventListener('change', () => { it[k] = c.checked; });
      return el('label', {}, c, ' ' + label);
    };
    const rm = el('button', { type: 'button', title: 'Remove', 'aria-label': 'Remove ' + it.name, text: '\u00d7' });
    rm.addEventListener('click', () => { items.splice(i, 1); renderItems(); });
    return el('li', {}, el('span', { class: 'name', title: it.name, text: it.name }),
      el('span', { class: 'kind', text: it.video ? 'video (v1)' : it.kind === 'file' ? 'file (v1)' : 'URL (v2)' }),
      box('yolo', 'YOLO'), it.video ? null : box('slice', 'slice'), box('ocr', 'OCR'), box('llm', 'LLM'), rm);
  }));
}
filesInput.addEventListener('change', () => { addFiles(filesInput.files); filesInput.value = ''; });
$('add-urls').addEventListener('click', addUrls);
for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  if (e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  else {
    const u = e.dataTransfer.getData('text/uri-list') || e.dataTransfer.getData('text/plain');
    if (u) { urlsInput.value = u; addUrls(); }
  }
});
drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); filesInput.click(); } });
$('clear').addEventListener('click', () => { items = []; renderItems(); clearResults(); banner.hidden = true; });

// ---- the confidence slider: filters what is drawn, no new request ----
function applyConfidence() {
  const t = Number(conf.value);
  confOut.textContent = t.toFixed(2);
  for (const g of results.querySelectorAll('[data-conf]')) {
    const below = Number(g.dataset.conf) < t;
    if (g.tagName === 'TR') g.classList.toggle('below', below); else g.classList.toggle('hide', below);
  }
  for (const c of results.querySelectorAll('.card')) {
    const n = c.querySelectorAll('tr[data-conf]:not(.below):not(.kp-row)').length;
    const cnt = c.querySelector('.det-count');
    if (cnt) cnt.textContent = `${n} shown of ${c.querySelectorAll('tr[data-conf]:not(.kp-row)').length}`;
  }
}
conf.addEventListener('input', applyConfidence);

// ---- the raw NDJSON download ----
downloadBtn.addEventListener('click', () => {
  const blob = new Blob([raw.map((l) => l + '\n').join('')], { type: 'application/x-ndjson' });
  const a = el('a', { href: URL.createObjectURL(blob), download: `sight-${new Date().toISOString().replace(/[:.]/g, '-')}.ndjson` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

// ---- one card per image ----
function makeCard(it) {
  const state = el('span', { class: 'state queued', text: 'queued' });
  // A video plays in a <video>; its boxes follow it (drawVideo).
  const img = it.video ? el('video', { controls: '', muted: '', loop: '', playsinline: '', preload: 'auto' }) : el('img', { alt: it.name });
  if (it.video) img.muted = true;
  img.src = it.kind === 'file' ? URL.createObjectURL(it.file) : it.url;
  if (it.kind === 'file') blobUrls.push(img.src);
  const overlay = svg('svg', { class: 'overlay', 'aria-hidden': 'true' });
  const card = el('article', { class: 'card' },
    el('h2', {}, el('span', { class: 'fname', title: it.name, text: it.name }), state),
    el('div', { class: 'stage' }, img, overlay));
  const body = el('div', { class: 'body' });
  const llm = el('div', { class: 'llm' });
  card.append(llm, body);
  results.append(card);
  return { card, state, img, overlay, body, llm, it, frames: [] };
}
function clearResults() {
  results.replaceChildren();
  for (const u of blobUrls) URL.revokeObjectURL(u);
  blobUrls = [];
}
function setState(c, s, text) {
  c.state.className = 'state ' + s;
  c.state.textContent = text || s;
  c.card.dataset.state = s;
}
function showError(c, err) {
  setState(c, 'error');
  c.body.append(el('p', { class: 'err', text: `${err.code || 'error'}: ${err.message || ''}` }));
}

// What a task adds to a box: a mask outline filled in the class colour, an
// oriented box, or a pose skeleton with its keypoints.
function drawShape(g, d, col, fs) {
  const pts = (p) => p.map((q) => q.join(',')).join(' ');
  if (d.obb && d.polygon) {
    g.append(svg('polygon', { class: 'obb', points: pts(d.polygon), stroke: col, 'vector-effect': 'non-scaling-stroke' }));
  } else if (d.polygon && d.polygon.length >= 3) {
    g.append(svg('polygon', { class: 'mask', points: pts(d.polygon), fill: col, stroke: col, 'vector-effect': 'non-scaling-stroke' }));
  }
  const kp = d.keypoints;
  if (!kp) return;
  if (kp.length === 17) {
    for (const [a, b] of LIMBS) {
      if (!kpSeen(kp[a]) || !kpSeen(kp[b])) continue;
      g.append(svg('line', { class: 'limb', x1: kp[a].x, y1: kp[a].y, x2: kp[b].x, y2: kp[b].y, stroke: col, 'vector-effect': 'non-scaling-stroke' }));
    }
  }
  for (const k of kp) {
    if (!kpSeen(k)) continue;
    const dot = svg('circle', { class: 'kp', cx: k.x, cy: k.y, r: Math.max(2, fs * 0.25), fill: col });
    const t = svg('title'); t.textContent = `${k.name} ${typeof k.confidence === 'number' ? fmt(k.confidence, 2) : ''}`;
    dot.append(t);
    g.append(dot);
  }
}

// Keypoints under their person in the table: name (x, y) confidence.
function keypointRow(d) {
  const items = d.keypoints.map((k) => el('li', { class: 'kp-item',
    text: `${k.name} (${Math.round(k.x)}, ${Math.round(k.y)})${typeof k.confidence === 'number' ? ' ' + fmt(k.confidence, 2) : ''}` }));
  return el('tr', { class: 'kp-row', 'data-conf': d.confidence }, el('td', { colspan: 3 }, el('ul', { class: 'kps' }, ...items)));
}

// Boxes with their class, confidence and (tracked video) track id, into parent.
function drawDetections(parent, dets, fs) {
  for (const d of dets) {
    const col = colour(d.class_id), b = d.box;
    const g = svg('g', { class: 'det', 'data-conf': d.confidence, 'data-class': d.class });
    if (d.track_id != null) g.setAttribute('data-track', d.track_id);
    drawShape(g, d, col, fs);
    g.append(svg('rect', { class: 'box', x: b.x1, y: b.y1, width: Math.max(0, b.x2 - b.x1), height: Math.max(0, b.y2 - b.y1), stroke: col, 'vector-effect': 'non-scaling-stroke' }));
    const label = `${d.track_id != null ? '#' + d.track_id + ' ' : ''}${d.class} ${fmt(d.confidence, 2)}`;
    const ty = b.y1 >= fs * 1.3 ? b.y1 - fs * 1.3 : b.y1;
    g.append(svg('rect', { class: 'tag', x: b.x1, y: ty, width: label.length * fs * 0.6 + fs * 0.4, height: fs * 1.3, fill: col }));
    const t = svg('text', { x: b.x1 + fs * 0.2, y: ty + fs * 1.02, 'font-size': fs });
    t.textContent = label;
    g.append(t);
    parent.append(g);
  }
}

// A video's boxes in time with it: the last analysed frame at or before the
// playing position, redrawn as it plays or is seeked.
function drawVideo(c, r) {
  const v = r.video || {};
  const W = v.width || c.img.videoWidth || 1, H = v.height || c.img.videoHeight || 1;
  c.overlay.setAttribute('viewBox', `0 0 ${W} ${H}`);
  c.overlay.setAttribute('preserveAspectRatio', 'none');
  const fs = Math.max(10, Math.round(Math.max(W, H) / 45));
  let shown = -2;
  const at = () => {
    const ms = c.img.currentTime * 1000;
    let lo = 0, hi = c.frames.length - 1, k = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (c.frames[mid].time_ms <= ms + 1) { k = mid; lo = mid + 1; } else hi = mid - 1; }
    if (k === shown) return;
    shown = k;
    c.overlay.replaceChildren();
    if (k >= 0) drawDetections(c.overlay, c.frames[k].result?.yolo?.detections || [], fs);
    c.card.dataset.frameShown = k >= 0 ? c.frames[k].frame : '';
    applyConfidence();
  };
  const loop = () => { at(); if (!c.img.paused) requestAnimationFrame(loop); };
  c.img.addEventListener('play', () => requestAnimationFrame(loop));
  for (const ev of ['seeked', 'timeupdate', 'loadeddata']) c.img.addEventListener(ev, at);
  at();
  const tracks = r.tracks || [];
  c.body.append(el('h3', { text: `Video · ${c.frames.length} frames analysed of ${v.decoded_frames}` }));
  if (r.tracks) {
    c.body.append(el('h3', { text: `Tracks (${tracks.length})` }), tracks.length ? el('table', { class: 'dets tracks' },
      el('thead', {}, el('tr', {}, el('th', { text: 'track' }), el('th', { text: 'class' }), el('th', { class: 'num', text: 'seen (s)' }),
        el('th', { class: 'num', text: 'frames' }), el('th', { class: 'num', text: 'best' }))),
      el('tbody', {}, ...tracks.map((t) => el('tr', { 'data-conf': t.best_confidence },
        el('td', { text: '#' + t.track_id }),
        el('td', {}, el('span', { class: 'swatch', style: { background: colour(t.class_id) } }), t.class || String(t.class_id)),
        el('td', { class: 'num', text: `${fmt(t.first_ms / 1000, 1)}–${fmt(t.last_ms / 1000, 1)}` }),
        el('td', { class: 'num', text: String(t.frames) }),
        el('td', { class: 'num', text: fmt(t.best_confidence, 2) }))))) : el('p', { text: 'No tracks.' }));
  }
  drawLlm(c, r);
  const tm = r.timing_ms || {};
  c.body.append(el('div', { class: 'timings', text: `${W}×${H} ${v.codec || ''} ${fmt(v.fps)} fps, ${fmt((v.duration_ms || 0) / 1000)} s · ` +
    Object.entries(tm).map(([k, x]) => `${k} ${fmt(x)} ms`).join(' · ') }));
}

// The LLM's answer (for a video: about its contact sheet of four frames).
function drawLlm(c, r) {
  if (!r.llm) return;
  c.llm.textContent = r.llm.response || '';
  // The local provider's text answers point at their matches ("below").
  const found = (r.llm.matches || []).map((m) => `${m.text}${m.line && m.line !== m.text ? ` (in "${m.line}")` : ''}` +
    (typeof m.confidence === 'number' ? `, ${fmt(m.confidence, 2)}` : ''));
  if (found.length) c.llm.append(el('ul', { class: 'matches' }, ...found.map((t) => el('li', { text: t }))));
  const meta = [r.llm.provider, r.llm.model].filter(Boolean).join(' / ');
  if (meta) c.llm.append(el('div', { class: 'timings', text: meta }));
}

function drawResult(c, r) {
  if (r.video) { drawVideo(c, r); return; }
  const W = r.image?.width || c.img.naturalWidth || 1, H = r.image?.height || c.img.naturalHeight || 1;
  // The overlay uses the image's own pixels as units; CSS scales it to the displayed size.
  c.overlay.setAttribute('viewBox', `0 0 ${W} ${H}`);
  c.overlay.setAttribute('preserveAspectRatio', 'none');
  const fs = Math.max(10, Math.round(Math.max(W, H) / 45));
  if (r.ocr) {
    for (const line of r.ocr.lines || []) {
      const p = svg('polygon', { class: 'ocr', points: line.box.map((q) => q.join(',')).join(' '), 'vector-effect': 'non-scaling-stroke' });
      const t = svg('title'); t.textContent = `${line.text} (${fmt(line.confidence, 2)})`; p.append(t);
      c.overlay.append(p);
    }
  }
  // Sliced detection: the tile grid under the boxes.
  for (const [x, y, w, h] of r.yolo?.slices || []) {
    c.overlay.append(svg('rect', { class: 'tile', x, y, width: w, height: h, 'vector-effect': 'non-scaling-stroke' }));
  }
  const dets = r.yolo?.detections || [];
  drawDetections(c.overlay, dets, fs);
  if (r.yolo) {
    const rows = dets.flatMap((d) => [el('tr', { 'data-conf': d.confidence },
      el('td', {}, el('span', { class: 'swatch', style: { background: colour(d.class_id) } }), d.class),
      el('td', { class: 'num', text: fmt(d.confidence, 3) }),
      el('td', { class: 'num', text: [d.box.x1, d.box.y1, d.box.x2, d.box.y2].map((v) => Math.round(v)).join(', ') })),
    ...(d.keypoints ? [keypointRow(d)] : [])]);
    c.body.append(el('h3', {}, `Detections (${r.yolo.model || 'YOLO'}${r.yolo.slices ? `, sliced: ${r.yolo.slices.length} tiles${r.yolo.full_pass ? ' + full image' : ''}` : ''}) \u00b7 `, el('span', { class: 'det-count' })),
      dets.length ? el('table', { class: 'dets' },
        el('thead', {}, el('tr', {}, el('th', { text: 'class' }), el('th', { class: 'num', text: 'confidence' }), el('th', { class: 'num', text: 'box x1, y1, x2, y2' }))),
        el('tbody', {}, ...rows)) : el('p', { text: r.yolo.classification ? '' : 'No objects detected.' }));
    const cls = r.yolo.classification;
    if (cls) {
      c.body.append(el('h3', { text: 'Classification' }), el('ol', { class: 'classes' },
        ...cls.map((k) => el('li', { class: 'class-item', text: `${k.class} ${fmt(k.confidence, 3)}` }))));
    }
  }
  if (r.ocr) {
    const lines = r.ocr.lines || [];
    c.body.append(el('h3', { text: `Text (${r.ocr.model || 'OCR'})` }),
      lines.length ? el('ol', { class: 'ocr-lines' }, ...lines.map((l) => el('li', { class: 'ocr-line', text: `${l.text}  (${fmt(l.confidence, 2)})` })))
        : el('p', { text: 'No text found.' }));
  }
  drawLlm(c, r);
  const tm = r.timing_ms || {};
  c.body.append(el('div', { class: 'timings', text: `${W}\u00d7${H} ${r.image?.format || ''} \u00b7 ` +
    Object.entries(tm).map(([k, v]) => `${k} ${fmt(v)} ms`).join(' \u00b7 ') }));
  applyConfidence();
}

// ---- streaming ----
async function stream(resp, cards) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const handle = (line) => {
    if (!line.trim()) return;
    raw.push(line);
    downloadBtn.disabled = false;
    let m;
    try { m = JSON.parse(line); } catch { return; }
    const c = cards[m.index];
    if (m.status === 'processing' && c) setState(c, 'processing', 'processing\u2026');
    else if (m.status === 'llm_delta' && c) c.llm.textContent += m.delta || '';
    else if (m.status === 'frame' && c) { c.frames.push(m); setState(c, 'processing', `frame ${c.frames.length}…`); c.card.dataset.frames = c.frames.length; }
    else if (m.status === 'done' && c) { setState(c, 'done'); drawResult(c, m.result || {}); }
    else if (m.status === 'error' && c) showError(c, m.error || {});
    else if (m.status === 'complete') {
      results.append(el('p', { class: 'summary', text: `${m.succeeded} of ${m.total} done, ${m.failed} failed, in ${fmt(m.time_ms)} ms` }));
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) { handle(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
  }
  handle(buf + dec.decode());
}

async function send(endpoint, init, cards) {
  try {
    const resp = await fetch(endpoint, init);
    if (!resp.ok) {
      const text = await resp.text();
      raw.push(text.trim());
      downloadBtn.disabled = false;
      let msg = `${resp.status} ${resp.statusText}`;
      try {
        const d = JSON.parse(text).detail;
        msg = `${resp.status}: ${d.message} (${d.code})`;
      } catch { /* not JSON: keep the status line */ }
      showBanner(msg);
      for (const c of cards) showError(c, { code: 'request_refused', message: msg });
      return;
    }
    await stream(resp, cards);
    for (const c of cards) if (!['done', 'error'].includes(c.card.dataset.state)) showError(c, { code: 'incomplete', message: 'the stream ended before this image was done' });
    showUsage(); // "complete" means the use is recorded
  } catch (e) {
    showBanner(`Request failed: ${e.message}`);
    for (const c of cards) if (c.card.dataset.state !== 'done') showError(c, { code: 'network', message: e.message });
  }
}
function showBanner(msg) {
  banner.textContent = banner.hidden ? msg : banner.textContent + '\n' + msg;
  banner.hidden = false;
}

$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (urlsInput.value.trim()) addUrls();
  if (!items.length) { showBanner('Choose or drop at least one image, or paste an image URL.'); return; }
  banner.hidden = true;
  banner.textContent = '';
  clearResults();
  raw = [];
  downloadBtn.disabled = true;
  const key = keyInput.value.trim(), query = queryInput.value.trim();
  const files = items.filter((i) => i.kind === 'file'), urls = items.filter((i) => i.kind === 'url');
  const jobs = [];
  if (files.length) {
    const cards = files.map(makeCard);
    const fd = new FormData();
    fd.append('api_key', key);
    if (query) fd.append('query', query);
    fd.append('confidence', String(REQUEST_CONFIDENCE));
    for (const f of files) {
      fd.append('files', f.file, f.name);
      fd.append('metadata', JSON.stringify(f.video ? { is_yolo: f.yolo, is_ocr: f.ocr, is_llm: f.llm, track: f.yolo }
        : { is_yolo: f.yolo, is_ocr: f.ocr, is_llm: f.llm, ...(f.slice ? { slice: true } : {}) }));
    }
    jobs.push(send(V1, { method: 'POST', body: fd }, cards));
  }
  if (urls.length) {
    const cards = urls.map(makeCard);
    const body = { api_key: key, confidence: REQUEST_CONFIDENCE,
      data: urls.map((u) => ({ image_url: u.url, filename: u.name, is_yolo: u.yolo, is_ocr: u.ocr, is_llm: u.llm, ...(u.slice ? { slice: true } : {}) })) };
    if (query) body.query = query;
    jobs.push(send(V2, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }, cards));
  }
  running++;
  runBtn.disabled = true;
  await Promise.all(jobs);
  if (--running === 0) runBtn.disabled = false;
  document.body.dataset.finished = String(Date.now());
});
