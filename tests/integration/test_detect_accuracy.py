"""Detection accuracy: sightd against an independent reference, and mAP on coco8.

The reference (tests/reference/reference.mjs) runs the same ONNX model with onnxruntime-node on
CPU, with the Ultralytics / YOLOX preprocessing and decoding written from the upstream
definitions (its resize reproduces cv2.INTER_LINEAR bit for bit: the models' scores move by
several percent when a tenth of the input values are off by one). It decodes the photos as
upstream does, at full size: JPEGs through libjpeg-turbo's `djpeg` with default settings (Debian
package libjpeg-turbo-progs), PNGs with its own decoder. None of the shared photos carries an
EXIF orientation other than 1, so no rotation is involved (checked through the image sizes).

The built-in model (YOLOX-Nano, served with no --model) is always checked, on the photos a fresh
clone has (conftest.PHOTOS, from Debian packages), or the shared ones when SIGHT_SHARED is there.
The Ultralytics models (AGPL-3.0, never committed) and coco8 come only from the shared material:
without it their tests are not generated and test_shared_accuracy_material_is_there skips,
saying what is missing. For each model one server is started, every photo and coco8 image is
posted with is_yolo, and the reference is run once on the same files:
  a. detections match one-to-one (same class, IoU > 0.9), boxes within 1 px, scores within 1e-3;
  b. mAP50 and mAP50-95 on coco8 (Ultralytics' metric) agree between the two within 0.01 and
     stay above a floor;
  c. obvious facts on bus.jpg and zidane.jpg with the default model.
With python3-opencv at hand, the reference's input tensors are also checked against cv2's.
`pytest -s` prints the mAP table and the time each side took.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import IMAGES, PHOTOS, REPO, SHARED, V1, Server, multipart

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
MODELS = SHARED / "models"
COCO8 = SHARED / "testdata" / "coco8"
BUILTIN = "yolox-nano"

CONF, IOU, MAX_DET = 0.25, 0.7, 300   # sightd's defaults, also passed to the reference
BOX_TOL, SCORE_TOL, MATCH_IOU = 1.0, 1e-3, 0.9
MAP_TOL = 0.01
DEFAULT_MODEL = "yolo26n-w8a32"       # the recommended Ultralytics model (README, "Models")

# model -> (mAP50 floor, mAP50-95 floor) on coco8 at conf 0.25; measured values minus a margin
# (see the table printed with -s).
MODELS_FLOORS = {
    "yolo26n-w8a32": (0.75, 0.60),      # measured 0.830 / 0.699
    "yolo26n-int8": (0.75, 0.60),       # 0.826 / 0.696
    "yolov8n-w8a32": (0.65, 0.55),      # 0.737 / 0.643
    "yolov8n-int8": (0.60, 0.52),       # 0.690 / 0.609
    "yolo11n-320-int8": (0.50, 0.43),   # 0.576 / 0.511
    "yolox-nano": (0.57, 0.45),         # 0.649 / 0.527
}

COCO_NAMES = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse',
    'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
    'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove',
    'skateboard', 'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut',
    'cake', 'chair', 'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush']


def model_file(name):
    """The built-in model is the file the build embeds; the others are shared."""
    return REPO / "share" / "models" / f"{name}.onnx" if name == BUILTIN else MODELS / f"{name}.onnx"


def photo_files():
    if IMAGES.is_dir():
        return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return sorted(p for p in PHOTOS.values() if p.exists())


def coco8_files():
    return sorted((COCO8 / "images").glob("*.jpg")) if COCO8.is_dir() else []


ULTRALYTICS = [m for m in MODELS_FLOORS if m != BUILTIN]
# Models whose tests are generated: the built-in one always, the others when shared.
ALL_MODELS = [BUILTIN] + [m for m in ULTRALYTICS if model_file(m).exists()]
HAVE_COCO8 = COCO8.is_dir()


# ---------------------------------------------------------------------------- the reference

@pytest.fixture(scope="session")
def reference():
    """Returns run(model, files) -> {path: reference result}. Installs tests/reference's
    node_modules with `npm ci` when missing; fails (never skips) when that cannot be done."""
    if shutil.which("node") is None:
        pytest.fail("node (Node.js 20) is needed for the detection reference: scripts/bootstrap --test installs it")
    if shutil.which("djpeg") is None:
        pytest.fail("djpeg is needed for the detection reference: apt-get install libjpeg-turbo-progs")
    if not (REFERENCE / "node_modules" / "onnxruntime-node").is_dir():
        if shutil.which("npm") is None:
            pytest.fail(f"{REFERENCE}/node_modules is missing and npm is not installed (Debian package npm)")
        # The postinstall of onnxruntime-node would download the CUDA provider from NuGet;
        # ONNXRUNTIME_NODE_INSTALL=skip is its documented switch to skip that (CPU is bundled).
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REFERENCE, capture_output=True,
                           text=True, timeout=600, env=dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip"))
        if r.returncode != 0:
            pytest.fail(f"`npm ci` in {REFERENCE} failed (the detection reference needs onnxruntime-node):\n"
                        f"{r.stdout[-2000:]}\n{r.stderr[-4000:]}")

    def run(model, files):
        cmd = ["node", str(REFERENCE / "reference.mjs"), "--model", str(model), "--conf", str(CONF),
               "--iou", str(IOU), "--max-det", str(MAX_DET), *map(str, files)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"reference failed: {' '.join(cmd)}\n{r.stderr[-4000:]}"
        out = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(out) == len(files), r.stderr
        return {Path(o["file"]): o for o in out}

    return run


# ---------------------------------------------------------------------------- sightd

def detect_with_server(server, files, batch=32):
    """Posts the files (is_yolo) in v1 requests; returns {path: result}."""
    results = {}
    for start in range(0, len(files), batch):
        chunk = files[start:start + batch]
        args = multipart(server.key, files=[(p.name, p.read_bytes()) for p in chunk],
                         metadata=['{"is_yolo":true,"is_llm":false}'] * len(chunk))
        with httpx.stream("POST", server.url + V1, timeout=httpx.Timeout(1800, connect=10), **args) as r:
            assert r.status_code == 200, r.read()
            lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
        assert lines[-1]["status"] == "complete", lines[-1]
        for ev in lines:
            if ev["status"] == "error":
                pytest.fail(f"sightd: {chunk[ev['index']].name}: {ev['error']}")
            if ev["status"] == "done":
                results[chunk[ev["index"]]] = ev["result"]
        assert len(results) == start + len(chunk), lines
    return results


class ModelRun:
    def __init__(self, name, server, reference, server_s, reference_s):
        self.name, self.server, self.reference = name, server, reference
        self.server_s, self.reference_s = server_s, reference_s


TIMES = {}     # model -> (server seconds, reference seconds), printed at the end
MAP_ROWS = []  # (model, server mAP50, reference mAP50, server mAP50-95, reference mAP50-95)


@pytest.fixture(scope="module")
def model_run(tmp_path_factory, reference):
    """get(name) -> ModelRun: one server per model (started with --model), all photos and coco8
    through it in one request, and the reference on the same files; computed once per module."""
    cache = {}

    def get(name):
        if name in cache:
            return cache[name]
        model = model_file(name)
        files = photo_files() + coco8_files()
        if len(photo_files()) < 8:
            pytest.fail(f"too few test photos ({len(photo_files())}): scripts/bootstrap --test provides them")
        tmp = tmp_path_factory.mktemp(name)
        # The built-in model is served as built in (no --model): what users get. The reference
        # decodes with no colour management, so neither does the server here: bus.jpg is
        # Display P3, and converting it moves scores (test_formats checks the conversion).
        plain = "--icc-to-srgb=false"
        s = Server(tmp, plain) if name == BUILTIN else Server(tmp, "--model", str(model), plain)
        try:
            t0 = time.monotonic()
            srv = detect_with_server(s, files)
            server_s = time.monotonic() - t0
        finally:
            rc = s.stop()
        assert rc == 0, f"sightd exited with {rc}:\n{s.log_text()[-4000:]}"
        t0 = time.monotonic()
        ref = reference(model, files)
        reference_s = time.monotonic() - t0
        TIMES[name] = (server_s, reference_s)
        cache[name] = ModelRun(name, srv, ref, server_s, reference_s)
        return cache[name]

    yield get
    if TIMES:
        print(f"\n\ndetection accuracy: seconds per model for {len(photo_files()) + len(coco8_files())} images")
        print(f"  {'model':18} {'sightd':>8} {'reference':>10}")
        for name, (a, b) in TIMES.items():
            print(f"  {name:18} {a:8.1f} {b:10.1f}")
    if MAP_ROWS:
        print("\ncoco8 at conf 0.25 (Ultralytics' mAP: 101-point interpolated AP per class, mean over classes)")
        print(f"  {'model':18} {'mAP50 sightd':>13} {'reference':>10} {'mAP50-95 sightd':>16} {'reference':>10}")
        for row in MAP_ROWS:
            print(f"  {row[0]:18} {row[1]:13.4f} {row[2]:10.4f} {row[3]:16.4f} {row[4]:10.4f}")


# ---------------------------------------------------------------------------- matching

def box_tuple(d):
    b = d["box"]
    return (b["x1"], b["y1"], b["x2"], b["y2"])


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(ours, theirs):
    """Greedy one-to-one matching by IoU (> MATCH_IOU) within a class.
    Returns (pairs, unmatched ours, unmatched theirs)."""
    cands = sorted(((iou(box_tuple(a), box_tuple(b)), i, j) for i, a in enumerate(ours)
                    for j, b in enumerate(theirs) if a["class_id"] == b["class_id"]), reverse=True)
    used_a, used_b, pairs = set(), set(), []
    for v, i, j in cands:
        if v > MATCH_IOU and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((ours[i], theirs[j]))
    return (pairs, [a for i, a in enumerate(ours) if i not in used_a],
            [b for j, b in enumerate(theirs) if j not in used_b])


def fmt(d):
    b = box_tuple(d)
    return (f"{d.get('class', d['class_id'])}({d['class_id']}) {d['confidence']:.5f} "
            f"[{b[0]:.2f} {b[1]:.2f} {b[2]:.2f} {b[3]:.2f}]")


def test_shared_accuracy_material_is_there():
    """Says what is not checked on this machine: the Ultralytics models (AGPL-3.0, never part of
    the repository), coco8 and the shared photos come only from SIGHT_SHARED."""
    missing = [str(p) for p in [*(model_file(m) for m in ULTRALYTICS), IMAGES, COCO8] if not p.exists()]
    if missing:
        pytest.skip("without the shared material (set SIGHT_SHARED) the Ultralytics models' accuracy, coco8 mAP "
                    "and the bus/zidane checks are not run; missing: " + ", ".join(missing))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_detections_match_reference(model_run, name):
    run = model_run(name)
    problems = []
    for path in photo_files():
        srv, ref = run.server[path], run.reference[path]
        img = srv["image"]
        assert (img["width"], img["height"]) == (ref["width"], ref["height"]), \
            f"{path.name}: sightd decoded {img['width']}x{img['height']}, reference {ref['width']}x{ref['height']}"
        ours, theirs = srv["yolo"]["detections"], ref["detections"]
        pairs, only_ours, only_ref = match(ours, theirs)
        bad = []
        for a, b in pairs:
            da = max(abs(x - y) for x, y in zip(box_tuple(a), box_tuple(b)))
            ds = abs(a["confidence"] - b["confidence"])
            if da > BOX_TOL or ds > SCORE_TOL or a["class"] != COCO_NAMES[a["class_id"]]:
                bad.append(f"    sightd    {fmt(a)}\n    reference {fmt(b)}   (box off {da:.3f} px, score off {ds:.2e})")
        # A detection whose score is within SCORE_TOL of the confidence threshold may legitimately
        # fall on either side of it (the two runtimes' float sums differ in the last bits): that,
        # and only that, is allowed to be unmatched.
        borderline = lambda d: abs(d["confidence"] - CONF) <= SCORE_TOL
        for a in only_ours:
            if not borderline(a):
                bad.append(f"    only sightd    {fmt(a)}")
        for b in only_ref:
            if not borderline(b):
                bad.append(f"    only reference {fmt(b)}")
        if bad:
            problems.append(f"  {path.name} ({len(ours)} sightd vs {len(theirs)} reference detections):\n"
                            + "\n".join(bad))
    if problems:
        pytest.fail(f"{name}: sightd disagrees with the reference:\n" + "\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------- mAP

def interp(x, xp, fp):
    """numpy.interp for non-decreasing xp."""
    if x <= xp[0]:
        return fp[0]
    if x >= xp[-1]:
        return fp[-1]
    lo, hi = 0, len(xp) - 1           # largest j with xp[j] <= x
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    return fp[lo] + (fp[lo + 1] - fp[lo]) * (x - xp[lo]) / (xp[lo + 1] - xp[lo])


def average_precision(recall, precision):
    """Ultralytics' compute_ap: precision envelope, interpolated at 101 recall points, trapezoid."""
    mrec = [0.0] + recall + [1.0]
    mpre = [1.0] + precision + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    xs = [i / 100 for i in range(101)]
    ys = [interp(x, mrec, mpre) for x in xs]
    return sum((ys[i] + ys[i + 1]) / 2 * (xs[i + 1] - xs[i]) for i in range(100))


IOU_THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]


def correct_matrix(preds, gts):
    """Ultralytics' match_predictions (use_scipy=False), preds in descending confidence: at each
    IoU threshold every pred takes its best same-class gt with IoU >= threshold, and each gt keeps
    the first (most confident) of the preds that took it; those preds are correct."""
    ious = [[iou(p[0], g[0]) if p[2] == g[1] else 0.0 for g in gts] for p in preds]
    correct = [[False] * len(IOU_THRESHOLDS) for _ in preds]
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = set()
        for i, row in enumerate(ious):
            j = max(range(len(gts)), key=lambda k: row[k], default=None)
            if j is not None and row[j] >= thr and j not in taken:
                taken.add(j)
                correct[i][t] = True
    return correct


def coco8_labels(path, width, height):
    """YOLO labels (class cx cy w h, normalised) -> [(xyxy in pixels, class)]."""
    gts = []
    for line in (COCO8 / "labels" / (path.stem + ".txt")).read_text().splitlines():
        if line.strip():
            c, cx, cy, w, h = line.split()
            cx, cy, w, h = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
            gts.append(((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), int(c)))
    return gts


def mean_ap(detections_by_image):
    """detections_by_image: {path: (width, height, detections)} -> (mAP50, mAP50-95)."""
    stats, n_labels = [], {}
    for path, (w, h, dets) in detections_by_image.items():
        gts = coco8_labels(path, w, h)
        for _, c in gts:
            n_labels[c] = n_labels.get(c, 0) + 1
        preds = sorted(((box_tuple(d), d["confidence"], d["class_id"]) for d in dets), key=lambda p: -p[1])
        for p, corr in zip(preds, correct_matrix(preds, gts)):
            stats.append((p[1], p[2], corr))
    stats.sort(key=lambda s: -s[0])
    ap50, ap = [], []
    for c, n_l in sorted(n_labels.items()):   # classes that have labels, as Ultralytics does
        rows = [s[2] for s in stats if s[1] == c]
        if not rows:
            ap50.append(0.0)
            ap.append(0.0)
            continue
        per_t = []
        for t in range(len(IOU_THRESHOLDS)):
            tp = fp = 0
            recall, precision = [], []
            for r in rows:
                tp += r[t]
                fp += not r[t]
                recall.append(tp / (n_l + 1e-16))
                precision.append(tp / (tp + fp))
            per_t.append(average_precision(recall, precision))
        ap50.append(per_t[0])
        ap.append(sum(per_t) / len(per_t))
    return sum(ap50) / len(ap50), sum(ap) / len(ap)


# coco8 is shared material: without it the test is not generated (see test_shared_accuracy_material_is_there).
if HAVE_COCO8:
    @pytest.mark.parametrize("name", ALL_MODELS)
    def test_coco8_map(model_run, name):
        run = model_run(name)
        srv = {p: (run.server[p]["image"]["width"], run.server[p]["image"]["height"], run.server[p]["yolo"]["detections"])
               for p in coco8_files()}
        ref = {p: (run.reference[p]["width"], run.reference[p]["height"], run.reference[p]["detections"])
               for p in coco8_files()}
        s50, s5095 = mean_ap(srv)
        r50, r5095 = mean_ap(ref)
        MAP_ROWS.append((name, s50, r50, s5095, r5095))
        assert abs(s50 - r50) <= MAP_TOL and abs(s5095 - r5095) <= MAP_TOL, \
            f"{name}: coco8 mAP50 {s50:.4f} vs reference {r50:.4f}, mAP50-95 {s5095:.4f} vs {r5095:.4f}"
        floor50, floor5095 = MODELS_FLOORS[name]
        assert s50 > floor50 and s5095 > floor5095, \
            f"{name}: coco8 mAP50 {s50:.4f} (floor {floor50}), mAP50-95 {s5095:.4f} (floor {floor5095})"


# ---------------------------------------------------------------------------- obvious facts

def classes(dets):
    out = {}
    for d in dets:
        out[d["class"]] = out.get(d["class"], 0) + 1
    return out


# Shared photos and an Ultralytics model: generated only with them.
if IMAGES.is_dir() and DEFAULT_MODEL in ALL_MODELS:
    def test_bus_and_zidane_default_model(model_run):
        run = model_run(DEFAULT_MODEL)
        for side, get in (("sightd", lambda p: run.server[p]["yolo"]["detections"]),
                          ("reference", lambda p: run.reference[p]["detections"])):
            bus = classes(get(IMAGES / "bus.jpg"))
            assert bus.get("bus", 0) >= 1 and bus.get("person", 0) >= 4, f"{side}: bus.jpg: {bus}"
            zidane = classes(get(IMAGES / "zidane.jpg"))
            assert zidane.get("person", 0) >= 2 and zidane.get("tie", 0) >= 1, f"{side}: zidane.jpg: {zidane}"
        assert run.server[IMAGES / "bus.jpg"]["yolo"]["model"], "result.yolo.model is empty"


# ---------------------------------------------------------------------------- the reference itself

@pytest.mark.parametrize("name,style", [(m, "yolox" if m == BUILTIN else "ultralytics") for m in ALL_MODELS
                                        if m in (BUILTIN, "yolo26n-w8a32", "yolo11n-320-int8")])
def test_reference_preprocessing_is_cv2(reference, tmp_path, name, style):
    """The reference's input tensors equal what upstream computes with OpenCV (cv2.resize
    INTER_LINEAR, pad 114) from the same pixels. Needs python3-opencv; skipped without it, since
    it checks the reference, not sightd."""
    cv2 = pytest.importorskip("cv2", reason="python3-opencv is not installed (checks the reference only)")
    import numpy as np
    model = model_file(name)
    files = photo_files() + coco8_files()
    dump = tmp_path / "inputs.f32"
    r = subprocess.run(["node", str(REFERENCE / "reference.mjs"), "--model", str(model), *map(str, files)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, REFERENCE_DUMP_TENSOR=str(dump)))
    assert r.returncode == 0, r.stderr
    size = {"yolo11n-320-int8": 320, "yolox-nano": 416}.get(name, 640)
    tensors = np.fromfile(dump, np.float32).reshape(len(files), 3, size, size)
    for path, t in zip(files, tensors):
        if path.suffix.lower() == ".png":
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
        else:
            ppm = subprocess.run(["djpeg", "-ppm", str(path)], capture_output=True, check=True).stdout
            head = ppm.split(b"\n", 3)
            w, h = map(int, head[1].split())
            img = np.frombuffer(head[3], np.uint8).reshape(h, w, -1)
            img = np.repeat(img, 3, 2) if img.shape[2] == 1 else img
        h, w = img.shape[:2]
        r_ = min(size / h, size / w)
        canvas = np.full((size, size, 3), 114, np.uint8)
        if style == "ultralytics":   # LetterBox: round(), centred with round(pad - 0.1); RGB / 255
            nw, nh = round(w * r_), round(h * r_)
            left, top = round((size - nw) / 2 - 0.1), round((size - nh) / 2 - 0.1)
            canvas[top:top + nh, left:left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR) \
                if (nw, nh) != (w, h) else img
            want = canvas.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        else:                        # YOLOX preproc: int(), top-left; BGR 0..255
            nw, nh = int(w * r_), int(h * r_)
            canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            want = canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
        bad = int(np.count_nonzero(np.abs(t - want) > 1e-6))
        assert bad == 0, f"{name}: {path.name}: {bad} input values differ from cv2's"
