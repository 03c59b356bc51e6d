#!/usr/bin/env node
// Independent YOLO reference for sightd's accuracy tests: onnxruntime-node on CPU, with the
// preprocessing and decoding written from the upstream definitions (Ultralytics LetterBox /
// non_max_suppression / scale_boxes; YOLOX preproc / demo_postprocess), not from sightd's C code.
//
//   node reference.mjs --model M.onnx [--layout auto|end2end|yolov8|yolox]
//        [--conf 0.25] [--iou 0.7] [--max-det 300] IMAGE...
//
// IMAGE: .jpg/.jpeg (decoded by `djpeg -ppm`, libjpeg-turbo with default settings, the same
// library and settings as sightd), .png (decoded here: 8-bit grey/RGB/palette/grey+alpha/RGBA,
// alpha dropped), or .ppm/.pgm (binary P6/P5, maxval 255). EXIF orientation is NOT applied.
// Prints one JSON line per image:
//   {"file","width","height","detections":[{"class_id","class","confidence","box":{x1,y1,x2,y2}}]}
// with boxes in original image pixels, ordered by confidence (highest first).
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import ort from 'onnxruntime-node';

const COCO = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
  'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse',
  'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
  'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove',
  'skateboard', 'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
  'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut',
  'cake', 'chair', 'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
  'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
  'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush'];

// ---------------------------------------------------------------- image decoding -> RGB uint8
function readPnm(buf, file) {
  // P6 (RGB) or P5 (grey, as djpeg writes greyscale JPEGs), maxval 255, single image.
  const magic = buf.toString('latin1', 0, 2);
  if (magic !== 'P6' && magic !== 'P5') throw new Error(`${file}: not a binary PPM/PGM`);
  let pos = 2;
  const fields = [];
  while (fields.length < 3) {
    while (/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    if (buf[pos] === 0x23) { while (buf[pos] !== 0x0a) pos++; continue; }
    let s = '';
    while (!/\s/.test(String.fromCharCode(buf[pos]))) s += String.fromCharCode(buf[pos++]);
    fields.push(parseInt(s, 10));
  }
  pos++; // the single whitespace after maxval
  const [width, height, maxval] = fields;
  if (maxval !== 255) throw new Error(`${file}: maxval ${maxval} unsupported`);
  const ch = magic === 'P6' ? 3 : 1;
  const src = buf.subarray(pos, pos + width * height * ch);
  if (src.length !== width * height * ch) throw new Error(`${file}: truncated PNM`);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++)
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = src[ch * i + (ch === 3 ? c : 0)];
  return { width, height, rgb };
}

function decodePng(buf, file) {
  // PNG spec (ISO/IEC 15948): chunks, zlib stream over the IDATs, per-row filters 0..4.
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error(`${file}: not a PNG`);
  let pos = 8, ihdr = null, plte = null;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') ihdr = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8], ctype: data[9], interlace: data[12] };
    else if (type === 'PLTE') plte = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const { width, height, depth, ctype, interlace } = ihdr;
  if (depth !== 8 || interlace !== 0) throw new Error(`${file}: only 8-bit non-interlaced PNGs are supported here (depth ${depth}, interlace ${interlace})`);
  const bpp = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[ctype];
  if (!bpp) throw new Error(`${file}: bad colour type ${ctype}`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const pix = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride, prev = (y - 1) * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? pix[out + x - bpp] : 0;
      const b = y > 0 ? pix[prev + x] : 0;
      const c = x >= bpp && y > 0 ? pix[prev + x - bpp] : 0;
      let pred;
      switch (f) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) >> 1; break;
        case 4: { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; break; }
        default: throw new Error(`${file}: bad filter ${f}`);
      }
      pix[out + x] = (line[x] + pred) & 0xff;
    }
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const p = i * bpp;
    let r, g, b;
    if (ctype === 0 || ctype === 4) r = g = b = pix[p];
    else if (ctype === 3) { const k = pix[p] * 3; r = plte[k]; g = plte[k + 1]; b = plte[k + 2]; }
    else { r = pix[p]; g = pix[p + 1]; b = pix[p + 2]; }
    rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b;
  }
  return { width, height, rgb };
}

function loadImage(file) {
  const lower = file.toLowerCase();
  if (lower.endsWith('.jpg') || lower.endsWith('.jpeg')) {
    const r = spawnSync('djpeg', ['-ppm', file], { maxBuffer: 1 << 30 });
    if (r.error) throw new Error(`djpeg (Debian package libjpeg-turbo-progs) could not be run: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`djpeg failed on ${file}: ${r.stderr}`);
    return readPnm(r.stdout, file);
  }
  const buf = readFileSync(file);
  if (lower.endsWith('.png')) return decodePng(buf, file);
  return readPnm(buf, file);
}

// ---------------------------------------------------------------- preprocessing
// Python's round(): nearest, ties to even.
function pyRound(x) {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR) on 8-bit images, bit for bit as
// OpenCV 4.x computes it on x86 (imgproc/src/resize.cpp: resizeGeneric_ with HResizeLinear and
// VResizeLinear + VResizeLinearVec_32s8u): half-pixel centres, scale = src/dst per axis, no
// antialiasing; the weights are float32 rounded to 11-bit fixed point, the horizontal pass is
// exact integer arithmetic, the vertical pass is the SIMD kernel (each row value >> 4, times the
// weight keeping the high 16 bits, the two added, then (+2) >> 2). An exact 2x reduction on both
// axes is INTER_AREA in OpenCV (mean of 2x2, rounded half up). Checked against python3-opencv
// 4.6 (Debian 12) on 400 random sizes and on every shared photo: identical. A plain
// floating-point bilinear rounded to nearest differs from cv2 by 1 on ~10% of the values, and
// that moves these models' scores by up to several percent, so the reference follows cv2.
const f32 = Math.fround;
const cvRound = (v) => { const r = Math.round(v); return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r; }; // half to even
const COEF = 2048;

function linearTaps(dn, sn) {
  const scale = 1 / (dn / sn);                      // OpenCV: scale_x = 1. / inv_scale_x
  const ofs = new Int32Array(dn), a0 = new Int32Array(dn), a1 = new Int32Array(dn);
  for (let d = 0; d < dn; d++) {
    let f = f32((d + 0.5) * scale - 0.5), i = Math.floor(f);
    f = f32(f - i);
    ofs[d] = i;
    a0[d] = cvRound(f32(1 - f) * COEF);
    a1[d] = cvRound(f * COEF);
  }
  return { ofs, a0, a1 };
}

function resizeLinearCv(img, dw, dh) {
  const { width: sw, height: sh, rgb } = img;
  const out = new Uint8Array(dw * dh * 3);
  if (sw === 2 * dw && sh === 2 * dh) {             // INTER_AREA fast path
    for (let y = 0; y < dh; y++)
      for (let x = 0; x < dw; x++)
        for (let c = 0; c < 3; c++) {
          const p = (yy, xx) => rgb[(yy * sw + xx) * 3 + c];
          out[(y * dw + x) * 3 + c] = (p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1) + 2) >> 2;
        }
    return { width: dw, height: dh, rgb: out };
  }
  const tx = linearTaps(dw, sw), ty = linearTaps(dh, sh);
  // Horizontal taps, clamped as OpenCV does (a tap left of 0 or right of the last column takes
  // that edge pixel with weight 1).
  const hx0 = new Int32Array(dw), hx1 = new Int32Array(dw), hw0 = new Int32Array(dw), hw1 = new Int32Array(dw);
  for (let x = 0; x < dw; x++) {
    const sx = tx.ofs[x];
    if (sx < 0) { hx0[x] = hx1[x] = 0; hw0[x] = COEF; hw1[x] = 0; }
    else if (sx >= sw - 1) { hx0[x] = hx1[x] = sw - 1; hw0[x] = COEF; hw1[x] = 0; }
    else { hx0[x] = sx; hx1[x] = sx + 1; hw0[x] = tx.a0[x]; hw1[x] = tx.a1[x]; }
  }
  const rowCache = new Map();
  const hrow = (sy) => {                              // one source row, horizontally resized
    sy = Math.min(Math.max(sy, 0), sh - 1);
    let r = rowCache.get(sy);
    if (!r) {
      r = new Int32Array(dw * 3);
      for (let x = 0; x < dw; x++)
        for (let c = 0; c < 3; c++)
          r[x * 3 + c] = rgb[(sy * sw + hx0[x]) * 3 + c] * hw0[x] + rgb[(sy * sw + hx1[x]) * 3 + c] * hw1[x];
      rowCache.set(sy, r);
    }
    return r;
  };
  const width = dw * 3;
  const mulhi = (a, b) => Math.floor((a * b) / 65536);
  for (let y = 0; y < dh; y++) {
    const s0 = hrow(ty.ofs[y]), s1 = hrow(ty.ofs[y] + 1), b0 = ty.a0[y], b1 = ty.a1[y];
    const o = y * width;
    for (let x = 0; x < width; x++) {
      const v = (mulhi(s0[x] >> 4, b0) + mulhi(s1[x] >> 4, b1) + 2) >> 2;
      out[o + x] = Math.min(255, Math.max(0, v));
    }
  }
  return { width: dw, height: dh, rgb: out };
}

// Places `img` in a size x size canvas of 114 at (left, top); returns NCHW float32 in the given
// channel order, each value multiplied by `scale`.
function toTensor(img, size, left, top, order, scale) {
  const t = new Float32Array(3 * size * size).fill(114 * scale);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++)
      for (let c = 0; c < 3; c++)
        t[c * size * size + (y + top) * size + (x + left)] = img.rgb[(y * img.width + x) * 3 + order[c]] * scale;
  return new ort.Tensor('float32', t, [1, 3, size, size]);
}

// Ultralytics LetterBox (auto=False, scaleup=True, center=True) + RGB / 255.
function letterbox(img, size) {
  const { width: w, height: h } = img;
  const r = Math.min(size / h, size / w);
  const nw = pyRound(w * r), nh = pyRound(h * r);
  const dw = (size - nw) / 2, dh = (size - nh) / 2;
  const left = pyRound(dw - 0.1), top = pyRound(dh - 0.1);
  const resized = nw === w && nh === h ? img : resizeLinearCv(img, nw, nh);
  return { tensor: toTensor(resized, size, left, top, [0, 1, 2], 1 / 255), r, padX: left, padY: top };
}

// YOLOX preproc: int() sizes, top-left placement, BGR 0..255 (legacy=False: no normalisation).
function yoloxPreproc(img, size) {
  const { width: w, height: h } = img;
  const r = Math.min(size / h, size / w);
  const nw = Math.trunc(w * r), nh = Math.trunc(h * r);
  const resized = nw === w && nh === h ? img : resizeLinearCv(img, nw, nh);
  return { tensor: toTensor(resized, size, 0, 0, [2, 1, 0], 1), r, padX: 0, padY: 0 };
}

// ---------------------------------------------------------------- decoding
function iou(a, b) {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

// Candidates {box:[x1,y1,x2,y2] input pixels, score, cls}. Greedy NMS per class (a box is
// suppressed by a higher-scored kept box of its class when IoU > iouThr), at most maxDet kept.
function nms(cands, iouThr, maxDet) {
  cands.sort((a, b) => b.score - a.score);
  const kept = [];
  for (const c of cands) {
    if (kept.length >= maxDet) break;
    if (!kept.some((k) => k.cls === c.cls && iou(k.box, c.box) > iouThr)) kept.push(c);
  }
  return kept;
}

function decodeEnd2end(out, conf, iouThr, maxDet) {
  const [, n, k] = out.dims, d = out.data, res = [];
  for (let i = 0; i < n; i++) {
    const s = d[i * k + 4];
    if (s > conf) res.push({ box: [d[i * k], d[i * k + 1], d[i * k + 2], d[i * k + 3]], score: s, cls: Math.round(d[i * k + 5]) });
  }
  res.sort((a, b) => b.score - a.score);
  return res.slice(0, maxDet);
}

// [1, 4+nc, N]: cx,cy,w,h then class scores; best class per anchor (multi_label=False).
function decodeYolov8(out, conf, iouThr, maxDet) {
  const [, rows, n] = out.dims, d = out.data, nc = rows - 4, cands = [];
  for (let i = 0; i < n; i++) {
    let best = -1, bs = -Infinity;
    for (let c = 0; c < nc; c++) { const s = d[(4 + c) * n + i]; if (s > bs) { bs = s; best = c; } }
    if (!(bs > conf)) continue;
    const cx = d[i], cy = d[n + i], w = d[2 * n + i], h = d[3 * n + i];
    cands.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: bs, cls: best });
  }
  return nms(cands, iouThr, maxDet);
}

// [1, N, 5+nc] raw head: grid decode over strides 8/16/32 (row-major grid per stride), score =
// objectness * class score, best class per anchor.
function decodeYolox(out, conf, iouThr, maxDet, size) {
  const [, n, k] = out.dims, d = out.data, nc = k - 5, cands = [];
  const anchors = [];
  for (const s of [8, 16, 32]) {
    const g = Math.floor(size / s);
    for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) anchors.push([x, y, s]);
  }
  if (anchors.length !== n) throw new Error(`yolox: ${n} rows but ${anchors.length} grid cells for ${size}`);
  for (let i = 0; i < n; i++) {
    const o = i * k, obj = d[o + 4];
    let best = -1, bs = -Infinity;
    for (let c = 0; c < nc; c++) { const s = obj * d[o + 5 + c]; if (s > bs) { bs = s; best = c; } }
    if (!(bs > conf)) continue;
    const [gx, gy, s] = anchors[i];
    const cx = (d[o] + gx) * s, cy = (d[o + 1] + gy) * s;
    const w = Math.exp(d[o + 2]) * s, h = Math.exp(d[o + 3]) * s;
    cands.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: bs, cls: best });
  }
  return nms(cands, iouThr, maxDet);
}

// ---------------------------------------------------------------- main
function parseArgs(argv) {
  const o = { layout: 'auto', conf: 0.25, iou: 0.7, maxDet: 300, images: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--model') o.model = argv[++i];
    else if (a === '--layout') o.layout = argv[++i];
    else if (a === '--conf') o.conf = parseFloat(argv[++i]);
    else if (a === '--iou') o.iou = parseFloat(argv[++i]);
    else if (a === '--max-det') o.maxDet = parseInt(argv[++i], 10);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.images.push(a);
  }
  if (!o.model || !o.images.length) throw new Error('usage: node reference.mjs --model M.onnx [--layout auto|end2end|yolov8|yolox] [--conf C] [--iou I] [--max-det N] IMAGE...');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(o.model, { executionProviders: ['cpu'] });
  const inShape = session.inputMetadata[0].shape, outShape = session.outputMetadata[0].shape;
  const size = inShape[2];
  if (inShape[3] !== size) throw new Error(`non-square input ${inShape}`);
  let layout = o.layout;
  if (layout === 'auto') {
    if (outShape[2] === 6) layout = 'end2end';
    else if (outShape[2] === 85) layout = 'yolox';
    else if (outShape[1] === 84) layout = 'yolov8';
    else throw new Error(`cannot tell the layout of output ${outShape}`);
  }
  for (const file of o.images) {
    const img = loadImage(file);
    const pre = layout === 'yolox' ? yoloxPreproc(img, size) : letterbox(img, size);
    // Diagnostics: REFERENCE_DUMP_TENSOR=FILE appends each input tensor (float32 NCHW) to FILE.
    if (process.env.REFERENCE_DUMP_TENSOR) appendFileSync(process.env.REFERENCE_DUMP_TENSOR, pre.tensor.data);
    const out = (await session.run({ [session.inputNames[0]]: pre.tensor }))[session.outputNames[0]];
    const dets = layout === 'end2end' ? decodeEnd2end(out, o.conf, o.iou, o.maxDet)
      : layout === 'yolov8' ? decodeYolov8(out, o.conf, o.iou, o.maxDet)
        : decodeYolox(out, o.conf, o.iou, o.maxDet, size);
    const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
    const detections = dets.map((q) => ({
      class_id: q.cls,
      class: COCO[q.cls] ?? String(q.cls),
      confidence: q.score,
      box: {
        x1: clip((q.box[0] - pre.padX) / pre.r, img.width),
        y1: clip((q.box[1] - pre.padY) / pre.r, img.height),
        x2: clip((q.box[2] - pre.padX) / pre.r, img.width),
        y2: clip((q.box[3] - pre.padY) / pre.r, img.height),
      },
    }));
    process.stdout.write(JSON.stringify({ file, width: img.width, height: img.height, layout, detections }) + '\n');
  }
}

main().catch((e) => { process.stderr.write(`reference: ${e.message}\n`); process.exit(1); });
