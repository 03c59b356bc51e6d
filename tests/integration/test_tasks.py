"""The Ultralytics tasks beyond boxes: segmentation masks, pose keypoints,
oriented boxes and classification.

Segmentation and pose are checked against a reference written here in numpy
from the same raw model outputs (`sightd detect --dump-raw` writes them), with
Ultralytics' own mask procedure (process_mask with upsampling, then
scale_masks), not Sight's single-step sampling: on small models built here
whose outputs have the Ultralytics layouts (seg_model, pose_model), which a
fresh clone runs, and on the real Ultralytics models, which are AGPL-3.0 test
material read through SIGHT_SHARED (those tests skip with the reason without
them). OBB and classification use small models built here with known outputs."""
import json
import math
import subprocess

import httpx
import pytest

from conftest import SHARED, SIGHTD, V1, multipart, photo_path, png_bytes
from onnx_builder import constant_model

np = pytest.importorskip("numpy", reason="python3-numpy (Debian) is needed for the reference")

MODELS = SHARED / "models"
SEG = ["yolo11n-seg-int8.onnx", "yolov8n-seg-320-int8.onnx"]
POSE = "yolo11n-pose-w8a32.onnx"
BUS = "bus.jpg"


def shared_model(name):
    p = MODELS / name
    if not p.exists():
        pytest.skip(f"{p} not found (set SIGHT_SHARED): the Ultralytics models are AGPL-3.0 and never committed")
    return p


def detect(image, model, *args, dump=None):
    cmd = [SIGHTD, "detect", str(image), "--model", str(model), *args]
    if dump:
        cmd += ["--dump-raw", str(dump)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["result"]


def refused(tmp_path, model):
    """`sightd detect` and `sightd serve` both stop at start; returns serve's message."""
    img = tmp_path / "any.png"
    img.write_bytes(png_bytes(32, 24))
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(model)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and not r.stdout, (r.stdout, r.stderr)
    r2 = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "k.db"), "--model",
                         str(model)], capture_output=True, text=True, timeout=60)
    assert r2.returncode == 1
    assert str(model) in r2.stderr
    return r2.stderr


# ---------------------------------------------------------------- numpy reference

def ref_boxes(out0, nc, meta, W, H, conf=0.25, iou=0.7, max_det=300):
    """Ultralytics non_max_suppression for [1, 4+nc+extra, N]; boxes in image pixels.
    Returns (indices of the kept candidates, boxes in input pixels, image boxes, scores)."""
    p = out0[0]
    scores = p[4:4 + nc]
    best, cls = scores.max(0), scores.argmax(0)
    idx = np.nonzero(best > conf)[0]
    idx = idx[np.argsort(-best[idx], kind="stable")]
    cx, cy, w, h = p[0, idx], p[1, idx], p[2, idx], p[3, idx]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    keep = []
    for i in range(len(idx)):
        ok = True
        for k in keep:
            if cls[idx[k]] != cls[idx[i]]:
                continue
            a, b = xyxy[k], xyxy[i]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            if union > 0 and inter / union > iou:
                ok = False
                break
        if ok:
            keep.append(i)
        if len(keep) == max_det:
            break
    keep = np.array(keep, dtype=int)
    inb = xyxy[keep]
    img = inb.copy()
    img[:, [0, 2]] = ((img[:, [0, 2]] - meta["pad_left"]) / meta["gain"]).clip(0, W)
    img[:, [1, 3]] = ((img[:, [1, 3]] - meta["pad_top"]) / meta["gain"]).clip(0, H)
    return idx[keep], inb, img, best[idx[keep]]


def bilinear(a, oh, ow):
    """torch.nn.functional.interpolate(mode='bilinear', align_corners=False) of a [n, h, w] array."""
    n, h, w = a.shape

    def axis(o, i):
        s = ((np.arange(o) + 0.5) * (i / o) - 0.5).clip(0, None)
        i0 = np.minimum(np.floor(s).astype(int), i - 1)
        i1 = np.minimum(i0 + 1, i - 1)
        return i0, i1, (s - i0).astype(np.float32)

    y0, y1, ly = axis(oh, h)
    x0, x1, lx = axis(ow, w)
    top = a[:, y0][:, :, x0] * (1 - lx) + a[:, y0][:, :, x1] * lx
    bot = a[:, y1][:, :, x0] * (1 - lx) + a[:, y1][:, :, x1] * lx
    return top * (1 - ly)[None, :, None] + bot * ly[None, :, None]


def ref_masks(out0, protos, nc, meta, W, H):
    """process_mask(upsample=True) then scale_masks, as Ultralytics' segment predictor."""
    keep, inb, img, _ = ref_boxes(out0, nc, meta, W, H)
    P, mh, mw = protos.shape[1:]
    ih, iw = meta["in_h"], meta["in_w"]
    coeffs = out0[0][4 + nc:4 + nc + P][:, keep].T
    logits = (coeffs @ protos[0].reshape(P, -1)).reshape(-1, mh, mw)
    down = inb * np.array([mw / iw, mh / ih, mw / iw, mh / ih], dtype=np.float32)
    r, c = np.arange(mw)[None, None, :], np.arange(mh)[None, :, None]
    x1, y1, x2, y2 = (down[:, k][:, None, None] for k in range(4))
    logits = logits * ((r >= x1) & (r < x2) & (c >= y1) & (c < y2))
    m_in = (bilinear(logits, ih, iw) > 0).astype(np.float32)
    gain = meta["gain"]
    pw, ph = (iw - W * gain) / 2, (ih - H * gain) / 2
    top, left = int(round(ph - 0.1)), int(round(pw - 0.1))
    bottom, right = ih - int(round(ph + 0.1)), iw - int(round(pw + 0.1))
    return bilinear(m_in[:, top:bottom, left:right], H, W) > 0.5, img


def rle_decode(rle):
    h, w = rle["size"]
    flat = np.zeros(h * w, dtype=bool)
    pos, val = 0, False
    for n in rle["counts"]:
        flat[pos:pos + n] = val
        pos += n
        val = not val
    assert pos == h * w
    return flat.reshape(w, h).T  # column-major, as pycocotools


def load_dump(d):
    meta = json.loads((d / "0-meta.json").read_text())
    outs = [np.load(d / f"0-output{i}.npy") for i in range(2) if (d / f"0-output{i}.npy").exists()]
    return meta, outs


# ---------------------------------------------------------------- models built here

TASK_SIDE = 320   # input of the built seg and pose models; protos at a quarter of it, as upstream


def wide_png(tmp_path):
    """720x480: letterboxed into 320x320 with gain 4/9 and 53.5 px of padding above and below,
    which the masks' crop must round as upstream."""
    p = tmp_path / "wide.png"
    if not p.exists():
        p.write_bytes(png_bytes(720, 480))
    return p


def _candidates(rows, channels, n=100):
    """[channels, n]: rows (cx, cy, w, h, class, score) first, then candidates of score 0."""
    out = np.zeros((channels, n), dtype=np.float32)
    out[2:4] = 1
    for j, (cx, cy, w, h, _, _) in enumerate(rows):
        out[0:4, j] = [cx, cy, w, h]
    return out


# (cx, cy, w, h, class, score) in model pixels; classes person, bus, dog.
SEG_ROWS = [(80, 140, 60, 120, 0, 0.9),
            (86, 144, 60, 120, 0, 0.6),    # the same person a little moved (IoU 0.77): suppressed by NMS
            (200, 160, 48, 100, 0, 0.8),
            (220, 150, 160, 100, 1, 0.85),  # overlaps a person: another class, kept; its blob overflows the box
            (300, 250, 60, 60, 2, 0.5),    # past the input's right edge and into the bottom padding
            (40, 100, 40, 80, 0, 0.3),
            (160, 80, 20, 20, 2, 0.2)]     # under the confidence threshold
# How far each row's blob reaches (over the 0.45 threshold) from the box's centre, in box sizes:
# inside the box, or past it, where the box crops the mask.
SEG_REACH = [0.36, 0.36, 0.36, 0.7, 0.36, 0.36, 0.36]


def seg_model(path, protos=10):
    """A segmentation model with Ultralytics' outputs: output0 [1, 4+3+P, 100] and output1 mask
    prototypes [1, P, 80, 80]. Prototype 0 is 1 (a bias); prototype 1+j is an elliptic blob over
    row j's box; each row's coefficients weigh its own blob, the others a little (odd shapes)."""
    nc, cells = 3, TASK_SIDE // 4
    assert protos >= 1 + len(SEG_ROWS)
    rng = np.random.default_rng(7)
    out = _candidates(SEG_ROWS, 4 + nc + protos)
    yy, xx = np.mgrid[0:cells, 0:cells].astype(np.float32) + 0.5
    pr = np.zeros((protos, cells, cells), dtype=np.float32)
    pr[0] = 1
    for j, (cx, cy, w, h, c, score) in enumerate(SEG_ROWS):
        out[4 + c, j] = score
        # exp(-r^2 / 2) > 0.45 for r < 1.26 (in sigmas); /4: prototype cells
        sx, sy = (SEG_REACH[j] / 1.264 * v / 4 for v in (w, h))
        pr[1 + j] = np.exp(-((xx - cx / 4) ** 2 / (2 * sx * sx) + (yy - cy / 4) ** 2 / (2 * sy * sy)))
        coef = 0.15 * rng.standard_normal(protos).astype(np.float32)
        coef[0], coef[1 + j] = -0.45, 1.0
        out[4 + nc:, j] = coef
    path.write_bytes(constant_model(TASK_SIDE, [("output0", [1, *out.shape], out.ravel()),
                                                ("output1", [1, *pr.shape], pr.ravel())],
                                    {"task": "segment", "names": "{0: 'person', 1: 'bus', 2: 'dog'}",
                                     "imgsz": f"[{TASK_SIDE}, {TASK_SIDE}]"}))
    return path


# (cx, cy, w, h, -, score): people.
POSE_ROWS = [(80, 140, 60, 120, 0, 0.9), (84, 144, 60, 120, 0, 0.6),   # the second suppressed by NMS
             (200, 160, 48, 100, 0, 0.8), (270, 120, 40, 80, 0, 0.7), (140, 200, 40, 80, 0, 0.4),
             (20, 20, 8, 8, 0, 0.2)]
# A standing figure, COCO's 17 keypoints as fractions of the box (x from its left, y from its top).
FIGURE = [(.5, .1), (.45, .08), (.55, .08), (.4, .1), (.6, .1), (.35, .25), (.65, .25), (.3, .4), (.7, .4),
          (.28, .55), (.72, .55), (.4, .55), (.6, .55), (.4, .75), (.6, .75), (.4, .95), (.6, .95)]


def pose_model(path):
    """A pose model with Ultralytics' output0 [1, 4+1+17*3, 100]: each row's figure drawn in its box,
    visibilities 0.9 but for a few unsure ones; one person's left wrist lies outside the image
    (above the top padding and left of the input), so it must be clipped."""
    rng = np.random.default_rng(11)
    out = _candidates(POSE_ROWS, 4 + 1 + 17 * 3)
    for j, (cx, cy, w, h, _, score) in enumerate(POSE_ROWS):
        out[4, j] = score
        for k, (fx, fy) in enumerate(FIGURE):
            x = cx - w / 2 + fx * w + rng.normal(0, 0.7)
            y = cy - h / 2 + fy * h + rng.normal(0, 0.7)
            v = 0.9 if rng.random() > 0.15 else 0.2
            out[5 + 3 * k:8 + 3 * k, j] = [x, y, v]
    out[5 + 3 * 9:7 + 3 * 9, 0] = [-12.0, 6.0]
    path.write_bytes(constant_model(TASK_SIDE, [("output0", [1, *out.shape], out.ravel())],
                                    {"task": "pose", "kpt_shape": "[17, 3]", "names": "{0: 'person'}",
                                     "imgsz": f"[{TASK_SIDE}, {TASK_SIDE}]"}))
    return path


# ---------------------------------------------------------------- segmentation

def check_masks(model, image, dump, nc, classes, min_dets):
    """Sight's RLE masks and boxes against the numpy reference from the same raw outputs, then
    the default polygons against those masks. Returns the masks' IoUs."""
    res = detect(image, model, "--mask-format", "rle", dump=dump)
    W, H = res["image"]["width"], res["image"]["height"]
    y = res["yolo"]
    assert y["task"] == "segment"
    meta, (out0, protos) = load_dump(dump)
    assert out0.shape[1] - 4 - protos.shape[1] == nc
    ref, ref_img = ref_masks(out0, protos, nc, meta, W, H)
    dets = y["detections"]
    assert len(dets) == len(ref) >= min_dets
    assert {d["class"] for d in dets} >= classes
    ious = []
    for d, m, b in zip(dets, ref, ref_img):
        assert 0 <= d["confidence"] <= 1
        assert np.allclose([d["box"][k] for k in ("x1", "y1", "x2", "y2")], b, atol=0.01)
        mine = rle_decode(d["rle"])
        assert mine.shape == (H, W) and mine.sum() == d["mask_area"]
        assert m.any(), (d["class"], d["box"], "the reference mask is empty")
        iou = (mine & m).sum() / max(1, (mine | m).sum())
        ious.append(iou)
        assert iou >= 0.95, (d["class"], d["box"], iou)

    # The default answer: the outer contour, at most 200 points, on the mask's edge.
    poly = detect(image, model)["yolo"]["detections"]
    assert len(poly) == len(dets)
    for d, r in zip(poly, dets):
        assert "rle" not in d and d["mask_area"] == r["mask_area"]
        pts = np.array(d["polygon"])
        assert 3 <= len(pts) <= 200
        mine = rle_decode(r["rle"])
        assert mine[pts[:, 1], pts[:, 0]].all()  # contour points are mask pixels
        # Upsampling after the crop lets a mask reach up to 1.5 prototype cells past its box, as upstream.
        b, cell = d["box"], 1.5 * meta["in_w"] / protos.shape[3] / meta["gain"]
        assert (pts[:, 0] >= b["x1"] - cell).all() and (pts[:, 0] <= b["x2"] + cell).all()
        assert (pts[:, 1] >= b["y1"] - cell).all() and (pts[:, 1] <= b["y2"] + cell).all()
        # The polygon's area (shoelace) is that of the mask's largest part, within the outline's own pixels.
        x, yy = pts[:, 0].astype(float), pts[:, 1].astype(float)
        area = 0.5 * abs(np.dot(x, np.roll(yy, 1)) - np.dot(yy, np.roll(x, 1)))
        assert area <= d["mask_area"] * 1.05, (area, d["mask_area"])
    return ious


def test_segment_masks_of_a_built_model_match_numpy_reference(tmp_path):
    model = seg_model(tmp_path / "seg.onnx")
    ious = check_masks(model, wide_png(tmp_path), tmp_path, 3, {"person", "bus", "dog"}, 5)
    print("built segment model: mask IoU vs numpy reference per detection: " + ", ".join(f"{i:.4f}" for i in ious))


def test_segment_masks_match_numpy_reference(tmp_path):
    """The real segmentation models (both in one test: the same check on each)."""
    models = [shared_model(name) for name in SEG]
    for name, model in zip(SEG, models):
        dump = tmp_path / name
        dump.mkdir()
        ious = check_masks(model, photo_path(BUS), dump, 80, {"person", "bus"}, 4)
        print(f"{name}: mask IoU vs numpy reference per detection: " + ", ".join(f"{i:.4f}" for i in ious))


def test_segment_over_http_with_options(start_server, tmp_path):
    s = start_server("--model", str(seg_model(tmp_path / "seg.onnx")))
    img = wide_png(tmp_path).read_bytes()
    form = multipart(s.key, [("a.png", img), ("b.png", img)], [json.dumps({"is_yolo": True, "is_llm": False})] * 2)
    form["data"].update({"classes": "person", "max_detections": "2", "mask_format": "rle"})
    r = httpx.post(s.url + "/api/v1/inference/predict/batch", timeout=120, **form)
    assert r.status_code == 200, r.text
    files = r.json()["result"]["files"]
    assert len(files) == 2
    for f in files:
        dets = f["result"]["yolo"]["detections"]
        # Three people are kept by NMS; the two most confident are answered, with their masks.
        assert [(d["class"], round(d["confidence"], 3)) for d in dets] == [("person", 0.9), ("person", 0.8)]
        assert all("rle" in d and "polygon" not in d and d["mask_area"] > 0 for d in dets)
    form = multipart(s.key, [("a.png", img)], [json.dumps({"is_yolo": True, "is_llm": False})])
    form["data"].update({"mask_format": "outline"})
    r = httpx.post(s.url + V1, timeout=60, **form)
    assert r.status_code == 422 and "mask_format" in r.json()["detail"]["message"]


# ---------------------------------------------------------------- pose

def check_keypoints(model, image, dump, min_dets):
    """Sight's boxes and keypoints against the numpy reference from the same raw outputs; returns
    the worst keypoint distance in pixels."""
    res = detect(image, model, dump=dump)
    W, H = res["image"]["width"], res["image"]["height"]
    y = res["yolo"]
    assert y["task"] == "pose"
    meta, (out0,) = load_dump(dump)
    assert out0.shape[1] == 4 + 1 + 17 * 3
    keep, _, img, scores = ref_boxes(out0, 1, meta, W, H)
    dets = y["detections"]
    assert len(dets) == len(keep) >= min_dets
    worst = 0.0
    for d, i, b, s in zip(dets, keep, img, scores):
        assert d["class"] == "person" and abs(d["confidence"] - s) < 1e-5
        assert np.allclose([d["box"][k] for k in ("x1", "y1", "x2", "y2")], b, atol=0.01)
        kp = d["keypoints"]
        assert [k["name"] for k in kp][:3] == ["nose", "left_eye", "right_eye"] and kp[16]["name"] == "right_ankle"
        raw = out0[0][5:, i].reshape(17, 3)
        rx = ((raw[:, 0] - meta["pad_left"]) / meta["gain"]).clip(0, W)
        ry = ((raw[:, 1] - meta["pad_top"]) / meta["gain"]).clip(0, H)
        for k, x, yy, v in zip(kp, rx, ry, raw[:, 2]):
            err = math.hypot(k["x"] - x, k["y"] - yy)
            worst = max(worst, err)
            assert err <= 1.0, (k, x, yy)
            assert 0 <= k["confidence"] <= 1 and abs(k["confidence"] - v) < 1e-5
    return worst


def test_pose_keypoints_of_a_built_model_match_numpy_reference(tmp_path):
    model = pose_model(tmp_path / "pose.onnx")
    worst = check_keypoints(model, wide_png(tmp_path), tmp_path, 4)
    # The clipped wrist: outside the image on both axes, so at its corner.
    wrist = detect(wide_png(tmp_path), model)["yolo"]["detections"][0]["keypoints"][9]
    assert (wrist["name"], wrist["x"], wrist["y"]) == ("left_wrist", 0, 0), wrist
    print(f"built pose model: worst keypoint distance to numpy reference {worst:.4f} px")


def test_pose_keypoints_match_numpy_reference(tmp_path):
    worst = check_keypoints(shared_model(POSE), photo_path(BUS), tmp_path, 3)
    print(f"pose: worst keypoint distance to numpy reference {worst:.4f} px")


# ---------------------------------------------------------------- built models: obb, classify, refusals

SIDE = 64


def square_png():
    return png_bytes(SIDE, SIDE)  # gain 1, no padding: model pixels are image pixels


def obb_output(cands, n=80, nc=2):
    """[1, 4+nc+1, n] from (cx, cy, w, h, class, score, angle) rows; other candidates score 0."""
    out = np.zeros((4 + nc + 1, n), dtype=np.float32)
    out[2:4] = 1
    for j, (cx, cy, w, h, c, s, a) in enumerate(cands):
        out[0:4, j] = [cx, cy, w, h]
        out[4 + c, j] = s
        out[4 + nc, j] = a
    return out


def test_obb_rotated_nms_keeps_crossing_boxes(tmp_path):
    q = math.pi / 4
    cands = [(32, 32, 40, 6, 0, 0.9, q),        # A
             (32, 32, 40, 6, 0, 0.8, 3 * q),    # B: A turned 90 degrees; the same axis-aligned box (IoU 1)
             (33, 32, 40, 6, 0, 0.7, q),        # C: A moved by 1 px: suppressed
             (32, 32, 40, 6, 1, 0.6, q),        # D: as A, other class: kept
             (10, 10, 4, 4, 0, 0.2, 0.0)]       # under the confidence threshold
    out = obb_output(cands)
    m = tmp_path / "obb.onnx"
    m.write_bytes(constant_model(SIDE, [("output0", [1, *out.shape], out.ravel())],
                                 {"task": "obb", "names": "{0: 'plane', 1: 'ship'}", "imgsz": "[64, 64]"}))
    img = tmp_path / "sq.png"
    img.write_bytes(square_png())
    y = detect(img, m)["yolo"]
    assert y["task"] == "obb"
    dets = y["detections"]
    assert [(d["class"], round(d["confidence"], 3)) for d in dets] == [("plane", 0.9), ("plane", 0.8), ("ship", 0.6)]
    a, b = dets[0], dets[1]
    assert a["obb"] == pytest.approx({"cx": 32, "cy": 32, "w": 40, "h": 6, "angle": 45}, abs=1e-3)
    # B is regularised as upstream: the sides swap and the angle stays under 90.
    assert b["obb"] == pytest.approx({"cx": 32, "cy": 32, "w": 6, "h": 40, "angle": 45}, abs=1e-3)
    # box: the axis-aligned bounds of the corners; the same for A and B, which plain NMS would merge.
    half = (40 + 6) / 2 * math.cos(q)
    for d in (a, b):
        assert d["box"] == pytest.approx({"x1": 32 - half, "y1": 32 - half, "x2": 32 + half, "y2": 32 + half}, abs=1e-2)
        assert len(d["polygon"]) == 4
        xs, ys = [p[0] for p in d["polygon"]], [p[1] for p in d["polygon"]]
        assert min(xs) == pytest.approx(d["box"]["x1"], abs=0.02) and max(ys) == pytest.approx(d["box"]["y2"], abs=0.02)
    # Per-request iou carries over: at 0.0 every overlapping box of a class goes.
    y = detect(img, m, "--iou", "0.0")["yolo"]
    assert [d["class"] for d in y["detections"]] == ["plane", "ship"]
    y = detect(img, m, "--classes", "ship")["yolo"]
    assert [d["class"] for d in y["detections"]] == ["ship"]


def cls_model(tmp_path, probs, names):
    m = tmp_path / "cls.onnx"
    meta = {"task": "classify", "imgsz": "[64, 64]"}
    if names is not None:
        meta["names"] = names
    m.write_bytes(constant_model(SIDE, [("output0", [1, len(probs)], probs)], meta))
    return m


def test_classification_top5(tmp_path):
    names = "{0: 'cat', 1: 'dog', 2: 'fox', 3: 'owl', 4: 'elk', 5: 'yak'}"
    m = cls_model(tmp_path, [0.1, 0.5, 0.05, 0.3, 0.04, 0.01], names)
    img = tmp_path / "sq.png"
    img.write_bytes(square_png())
    y = detect(img, m)["yolo"]
    assert y["task"] == "classify" and y["detections"] == []
    assert [(c["class"], c["class_id"]) for c in y["classification"]] == [
        ("dog", 1), ("owl", 3), ("cat", 0), ("fox", 2), ("elk", 4)]
    assert y["classification"][0]["confidence"] == pytest.approx(0.5)
    y = detect(img, m, "--classes", "cat,yak")["yolo"]
    assert [c["class"] for c in y["classification"]] == ["cat", "yak"]


def test_classifier_giving_logits_is_an_error_not_a_confidence(tmp_path):
    m = cls_model(tmp_path, [3.2, -1.0, 0.5], "{0: 'a', 1: 'b', 2: 'c'}")
    img = tmp_path / "sq.png"
    img.write_bytes(square_png())
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(m)], capture_output=True, text=True, timeout=60)
    line = json.loads(r.stdout)
    assert r.returncode == 1 and line["status"] == "error"
    assert "outside [0, 1]" in line["error"]["message"] and "3.2" in line["error"]["message"]


def test_mismatched_models_stop_startup(tmp_path):
    # A detector whose 3 class channels disagree with its 5 names.
    m = tmp_path / "det.onnx"
    out = np.zeros((1, 7, 100), dtype=np.float32)
    m.write_bytes(constant_model(SIDE, [("output0", [1, 7, 100], out.ravel())],
                                 {"names": "{0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e'}"}))
    err = refused(tmp_path, m)
    assert "[1, 7, 100] implies 3 classes but the model has 5 names" in err, err

    # Pose without kpt_shape: its keypoints would be read as class scores.
    out = np.zeros((1, 56, 100), dtype=np.float32)
    m.write_bytes(constant_model(SIDE, [("output0", [1, 56, 100], out.ravel())],
                                 {"task": "pose", "names": "{0: 'person'}"}))
    err = refused(tmp_path, m)
    assert "kpt_shape" in err and "[1, 56, 100]" in err, err
    # Pose whose channels leave 2 classes for 1 name.
    out = np.zeros((1, 57, 100), dtype=np.float32)
    m.write_bytes(constant_model(SIDE, [("output0", [1, 57, 100], out.ravel())],
                                 {"task": "pose", "kpt_shape": "[17, 3]", "names": "{0: 'person'}"}))
    err = refused(tmp_path, m)
    assert "implies 2 classes but the model has 1 names" in err and "4+names+K*D" in err, err
    # Segment without its prototypes output.
    out = np.zeros((1, 116, 200), dtype=np.float32)
    m.write_bytes(constant_model(SIDE, [("output0", [1, 116, 200], out.ravel())], {"task": "segment"}))
    err = refused(tmp_path, m)
    assert "output1 [1, P, mh, mw]" in err and "[1, 116, 200]" in err, err
    # A task Sight does not know.
    m.write_bytes(constant_model(SIDE, [("output0", [1, 7, 100], np.zeros(700))], {"task": "depth"}))
    assert "task 'depth'" in refused(tmp_path, m)



def test_hostile_task_outputs_answer_errors_or_numbers(tmp_path):
    """NaN and huge values from a model end as clipped numbers or an error line, never a crash or bad JSON."""
    img = tmp_path / "sq.png"
    img.write_bytes(square_png())
    m = tmp_path / "pose.onnx"
    out = np.zeros((4 + 1 + 2 * 3, 100), dtype=np.float32)
    out[:5, 0] = [20, 20, 10, 10, 0.9]
    out[5:, 0] = [np.nan, np.nan, 0.5, 1e30, -1e30, 0.7]
    meta = {"task": "pose", "kpt_shape": "[2, 3]", "names": "{0: 'person'}"}
    m.write_bytes(constant_model(SIDE, [("output0", [1, *out.shape], out.ravel())], meta))
    kp = detect(img, m)["yolo"]["detections"][0]["keypoints"]
    assert [(k["name"], k["x"], k["y"]) for k in kp] == [("kp0", 0, 0), ("kp1", SIDE, 0)]
    out[7, 0] = 1.5  # a keypoint confidence that is no probability
    m.write_bytes(constant_model(SIDE, [("output0", [1, *out.shape], out.ravel())], meta))
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(m)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "outside [0, 1]" in json.loads(r.stdout)["error"]["message"]
    o = obb_output([(32, 32, 40, 6, 0, 0.9, float("nan"))])
    m.write_bytes(constant_model(SIDE, [("output0", [1, *o.shape], o.ravel())], {"task": "obb"}))
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(m)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not finite" in json.loads(r.stdout)["error"]["message"]


def test_pose_over_v2_with_options(start_server, tmp_path):
    """v2 (image by URL) carries the per-request options to the pose decoder like v1."""
    import http.server
    import threading

    from test_v2 import ImageHandler, serve_bytes
    model = pose_model(tmp_path / "pose.onnx")
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), type("H", (ImageHandler,), {"routes": {
        "/wide.png": serve_bytes(wide_png(tmp_path).read_bytes(), ctype="image/png")}}))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = start_server("--model", str(model), "--url-allow", "127.0.0.2/32")
        url = f"http://127.0.0.2:{srv.server_address[1]}/wide.png"
        body = {"api_key": s.key, "data": [{"image_url": url, "is_yolo": True, "is_llm": False}],
                "max_detections": 2, "confidence": 0.5}
        r = httpx.post(s.url + "/api/v1/inference/predict/batch/v2", json=body, timeout=120)
        assert r.status_code == 200, r.text
        dets = r.json()["result"]["files"][0]["result"]["yolo"]["detections"]
        # Three people over 0.5 (and one under it): the two most confident, with their keypoints.
        assert [round(d["confidence"], 3) for d in dets] == [0.9, 0.8]
        assert all(len(d["keypoints"]) == 17 for d in dets)
    finally:
        srv.shutdown()


def test_a_detector_with_an_extra_output_still_detects(tmp_path):
    """A second output that is no prototype tensor is left alone (and released: LSan runs this)."""
    img = tmp_path / "sq.png"
    img.write_bytes(square_png())
    out = np.zeros((4 + 3, 100), dtype=np.float32)
    out[:, 0] = [20, 20, 10, 10, 0, 0.8, 0]
    m = tmp_path / "two.onnx"
    m.write_bytes(constant_model(SIDE, [("output0", [1, *out.shape], out.ravel()), ("extra", [1, 4], [1, 2, 3, 4])],
                                 {"names": "{0: 'a', 1: 'b', 2: 'c'}"}))
    y = detect(img, m)["yolo"]
    assert y["task"] == "detect" and [(d["class"], d["confidence"]) for d in y["detections"]] == [("b", 0.8)]


def test_classification_sees_the_centre_of_the_image(tmp_path):
    """classify_transforms framing: the centre crop at the input's aspect, no letterbox padding. The
    model answers each channel's mean: a wide image blue | red | blue is all red in its centre square."""
    from onnx_builder import graph_model, node
    m = tmp_path / "mean.onnx"
    m.write_bytes(graph_model([node("ReduceMean", ["images"], ["output0"], axes=[2, 3], keepdims=0)],
                              [("images", [1, 3, SIDE, SIDE])], [("output0", [1, 3])],
                              metadata={"task": "classify", "names": "{0: 'red', 1: 'green', 2: 'blue'}"}))
    img = tmp_path / "wide.png"
    img.write_bytes(png_bytes(3 * SIDE, SIDE, lambda x, y: (255, 0, 0) if SIDE <= x < 2 * SIDE else (0, 0, 255)))
    cls = detect(img, m)["yolo"]["classification"]
    assert cls[0]["class"] == "red" and cls[0]["confidence"] == pytest.approx(1.0, abs=1e-6), cls
    assert cls[1]["confidence"] == pytest.approx(0.0, abs=1e-6)
