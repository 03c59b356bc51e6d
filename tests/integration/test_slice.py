"""Sliced detection (SAHI) for small objects in large images: the "slice"
metadata key, its tiles merged across seams, and its errors.

The mosaic test builds a 3840x2160 canvas of 36 photos a fresh clone has
(mosaic.py) and measures recall against what the same model finds in each
photo at full size; the parity test recomputes the merge in numpy from each
tile sent as an image of its own."""
import json
import subprocess

import httpx
import numpy as np
import pytest

import mosaic
from conftest import SHARED, SIGHTD, V1, multipart, png_bytes

V2 = V1 + "/v2"
YOLO26 = SHARED / "models" / "yolo26n-w8a32.onnx"
SEG = SHARED / "models" / "yolo11n-seg-int8.onnx"
POSE = SHARED / "models" / "yolo11n-pose-w8a32.onnx"
MERGE_THR = 0.5  # slice_detect.c's MERGE_THRESHOLD (SAHI's default)


def lines(r):
    assert r.status_code == 200, r.text
    return [json.loads(x) for x in r.text.splitlines()]


def detect(s, files, metas, **params):
    """The done (or error) line of each file, in order."""
    args = multipart(s.key, files=files, metadata=[json.dumps(m) for m in metas])
    args["data"].update(params)
    out = {ev["index"]: ev for ev in lines(httpx.post(s.url + V1, timeout=600, **args)) if ev["status"] in ("done", "error")}
    return [out[i] for i in range(len(files))]


def yolo(ev):
    assert ev["status"] == "done", ev
    return ev["result"]["yolo"]


@pytest.fixture(scope="module")
def canvas():
    img, placed = mosaic.build()
    return img, placed, mosaic.png(img)


def truth_of(s, placed, min_conf=0.5, model=None):
    """Each photo's detections at full size (confident ones: those near the
    0.25 threshold come and go with any change of scale), mapped to where the
    photo sits in the mosaic."""
    cache, truth = {}, []
    meta = {"is_yolo": True, **({"model": model} if model else {})}
    for path, x, y, sx, sy in placed:
        if path not in cache:
            cache[path] = yolo(detect(s, [(path.name, path.read_bytes())], [meta])[0])["detections"]
        for d in cache[path]:
            if d["confidence"] >= min_conf:
                b = mosaic.box(d)
                truth.append((d["class"], (b[0] * sx + x, b[1] * sy + y, b[2] * sx + x, b[3] * sy + y)))
    return truth


def worst_same_class_iou(dets):
    worst = 0.0
    for i, a in enumerate(dets):
        for b in dets[i + 1:]:
            if a["class"] == b["class"]:
                worst = max(worst, mosaic.iou(mosaic.box(a), mosaic.box(b)))
    return worst


def check_mosaic(s, canvas, model=None):
    img, placed, data = canvas
    truth = truth_of(s, placed, model=model)
    assert len(truth) >= 40, len(truth)
    meta = {"is_yolo": True, **({"model": model} if model else {})}
    plain, sliced = (yolo(ev) for ev in detect(s, [("m.png", data), ("m.png", data)], [meta, {**meta, "slice": True}]))
    r_plain, r_sliced = mosaic.recall(truth, plain["detections"]), mosaic.recall(truth, sliced["detections"])
    assert "slices" not in plain and plain.get("runs") is None
    assert r_plain <= 0.1, r_plain
    assert r_sliced >= 0.75, (r_sliced, len(truth), len(sliced["detections"]))
    # Seams merged: no two boxes of a class overlap much.
    assert worst_same_class_iou(sliced["detections"]) <= 0.6
    tiles = sliced["slices"]
    assert sliced["runs"] == len(tiles) + 1 and sliced["full_pass"] is True and sliced["merge"] == "nmm"
    assert len(tiles) <= 64
    # The tiles cover the image.
    cover = np.zeros(img.shape[:2], bool)
    for x, y, w, h in tiles:
        cover[y:y + h, x:x + w] = True
    assert cover.all()
    return r_plain, r_sliced


def test_mosaic_recall_builtin(server, canvas):
    check_mosaic(server, canvas)


def test_mosaic_recall_yolo26n(start_server, canvas):
    if not YOLO26.exists():
        pytest.skip(f"{YOLO26} not found (set SIGHT_SHARED)")
    check_mosaic(start_server("--model", str(YOLO26)), canvas)


def place(canvas_w, canvas_h, img, x, y):
    c = np.full((canvas_h, canvas_w, 3), 114, np.uint8)
    c[y:y + img.shape[0], x:x + img.shape[1]] = img
    return c


def test_seam_object_comes_back_as_one_box(server):
    """A person across the seam of the first two 416 tiles (x 333..416 is in
    both; no full pass to help): each tile sees a part, and the parts come
    back as one box spanning the seam."""
    person = mosaic.shrink(mosaic.read_rgb(mosaic.SKIMAGE / "astronaut.png"), 190, 190)
    alone = yolo(detect(server, [("p.png", mosaic.png(person))], [{"is_yolo": True}])[0])["detections"]
    want = max((d for d in alone if d["class"] == "person"), key=lambda d: d["confidence"])
    x0, y0 = 286, 100
    data = mosaic.png(place(1920, 1080, person, x0, y0))
    slc = {"size": 416, "overlap": 0.2, "full": False}
    merged, separate = (yolo(ev) for ev in detect(server, [("s.png", data)] * 2, [{"is_yolo": True, "slice": slc},
                                                                                  {"is_yolo": True, "slice": {**slc, "merge": "nms"}}]))
    tiles = merged["slices"]
    assert tiles[0][:3] == [0, 0, 416] and tiles[1][0] == 333  # step round(416 * 0.8)
    persons = [d for d in merged["detections"] if d["class"] == "person"]
    assert len(persons) == 1, persons
    b = mosaic.box(persons[0])
    # It spans the seam and is the object's box.
    assert b[0] < 333 and b[2] > 416, b
    wb = mosaic.box(want)
    assert mosaic.iou(b, (wb[0] + x0, wb[1] + y0, wb[2] + x0, wb[3] + y0)) >= 0.8
    # Plain NMS keeps only the higher-scoring part: a box cut at the tile's edge.
    parts = [mosaic.box(d) for d in separate["detections"] if d["class"] == "person"]
    assert len(parts) == 1 and parts[0][2] <= 416 < b[2], (parts, b)


# --- numpy reference of the merge ------------------------------------------

def grid(W, H, tile, overlap):
    """SAHI's get_slice_bboxes, as slice_merge.c's slice_grid."""
    tw, th = min(tile, W), min(tile, H)

    def starts(n, t):
        step = max(1, int(np.floor(t * (1 - overlap) + 0.5)))
        k = 1 if n <= t else (n - t + step - 1) // step + 1
        return [n - t if i == k - 1 else i * step for i in range(k)]
    return [[x, y, tw, th] for y in starts(H, th) for x in starts(W, tw)]


def np_merge(boxes, scores, classes, nmm, thr, max_det=300):
    """GREEDYNMM (IOS against the keeping box) then class-wise NMS at IoU, or
    NMS alone; returns [(box, score, class)] highest score first."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)

    def inter(i, j):
        w = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])
        h = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])
        return w * h if w > 0 and h > 0 else 0.0
    taken, cands = set(), []
    for a_pos, a in enumerate(order):
        if a in taken:
            continue
        taken.add(a)
        u = b[a].copy()
        for c in order[a_pos + 1:] if nmm else []:
            if c in taken or classes[c] != classes[a]:
                continue
            small = min(area[a], area[c])
            if small > 0 and inter(a, c) / small > thr:
                taken.add(c)
                u[:2] = np.minimum(u[:2], b[c, :2])
                u[2:] = np.maximum(u[2:], b[c, 2:])
        cands.append((u, scores[a], classes[a]))
    out = []
    for u, s, c in cands:
        if len(out) >= max_det:
            break
        ok = True
        for v, _, c2 in out:
            if c2 != c:
                continue
            w = min(u[2], v[2]) - max(u[0], v[0])
            h = min(u[3], v[3]) - max(u[1], v[1])
            i = w * h if w > 0 and h > 0 else 0.0
            un = (u[2] - u[0]) * (u[3] - u[1]) + (v[2] - v[0]) * (v[3] - v[1]) - i
            if un > 0 and i / un > thr:
                ok = False
                break
        if ok:
            out.append((u, s, c))
    return out


@pytest.mark.parametrize("merge", ["nmm", "nms"])
def test_merge_parity_with_numpy(server, merge):
    """Each tile (and the whole image) sent as an image of its own gives the
    per-tile detections; merged in numpy they equal the sliced result."""
    img, placed = mosaic.build(width=1920, height=1080, cols=4, rows=3)
    data = mosaic.png(img)
    slc = {"size": 416, "overlap": 0.2, "full": True, "merge": merge}
    sliced = yolo(detect(server, [("m.png", data)], [{"is_yolo": True, "slice": slc}])[0])
    tiles = grid(1920, 1080, 416, 0.2)
    assert sliced["slices"] == tiles
    crops = [mosaic.png(np.ascontiguousarray(img[y:y + h, x:x + w])) for x, y, w, h in tiles] + [data]
    evs = detect(server, [(f"t{i}.png", c) for i, c in enumerate(crops)], [{"is_yolo": True}] * len(crops))
    boxes, scores, classes = [], [], []
    for (x, y, _, _), ev in zip(tiles + [[0, 0, 0, 0]], evs):
        for d in yolo(ev)["detections"]:
            b = mosaic.box(d)
            boxes.append((b[0] + x, b[1] + y, b[2] + x, b[3] + y))
            scores.append(d["confidence"])
            classes.append(d["class_id"])
    ref = np_merge(boxes, scores, classes, merge == "nmm", MERGE_THR)
    got = sliced["detections"]
    assert len(boxes) > len(got) >= 10  # the merge did something, on something
    assert len(got) == len(ref)
    for d, (u, s, c) in zip(got, ref):
        assert d["class_id"] == c and d["confidence"] == pytest.approx(s, abs=1e-9)
        assert np.allclose(mosaic.box(d), u, atol=2e-3), (mosaic.box(d), u)


# --- options and errors ------------------------------------------------------

def test_auto_leaves_small_images_alone(server):
    data = png_bytes(800, 600)
    y = yolo(detect(server, [("a.png", data)], [{"is_yolo": True, "slice": True}])[0])
    assert "slices" not in y
    # An explicit object always slices.
    y = yolo(detect(server, [("a.png", data)], [{"is_yolo": True, "slice": {"full": False}}])[0])
    assert y["slices"] == grid(800, 600, 416, 0.2) and y["runs"] == 6 and y["full_pass"] is False


@pytest.mark.parametrize("value,words", [
    ({"size": 640, "sise": 1}, "unknown key 'sise'"),
    ({"size": 8}, "slice.size"),
    ({"overlap": 1.5}, "slice.overlap"),
    ({"merge": "wbf"}, "slice.merge"),
    ({"full": "yes"}, "slice.full"),
    ("always", "slice must be"),
])
def test_bad_slice_is_422(server, value, words):
    r = httpx.post(server.url + V1, timeout=30, **multipart(server.key, files=[("a.png", png_bytes(8, 8))],
                                                          metadata=[json.dumps({"is_yolo": True, "slice": value})]))
    assert r.status_code == 422, r.text
    e = r.json()["detail"]
    assert e["code"] == "invalid_slice" and words in e["message"] and "metadata[0]" in e["message"]
    r = httpx.post(server.url + V2, timeout=30, json={"api_key": server.key, "data": [
        {"image_url": "http://127.0.0.1:9/x.png", "is_yolo": True, "slice": value}]})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid_slice", r.text


def test_too_many_tiles_is_that_files_error(start_server):
    s = start_server("--max-tiles", "4")
    evs = detect(s, [("big.png", png_bytes(1000, 700)), ("ok.png", png_bytes(300, 200))],
                 [{"is_yolo": True, "slice": {"size": 256}}, {"is_yolo": True, "slice": {"size": 256}}])
    assert evs[0]["status"] == "error" and evs[0]["error"]["code"] == "too_many_tiles", evs[0]
    assert "--max-tiles" in evs[0]["error"]["message"]
    assert evs[1]["status"] == "done" and evs[1]["result"]["yolo"]["runs"] == 3  # 2 tiles and the full pass
    # Automatic slicing grows its tiles to fit the limit instead.
    y = yolo(detect(s, [("big.png", png_bytes(2000, 1400))], [{"is_yolo": True, "slice": True}])[0])
    assert len(y["slices"]) <= 4 and y["runs"] == len(y["slices"]) + 1


def test_usage_counts_model_runs(start_server, canvas):
    s = start_server()
    y = yolo(detect(s, [("m.png", canvas[2]), ("p.png", png_bytes(64, 48))],
                    [{"is_yolo": True, "slice": {"size": 640}}, {"is_yolo": True}])[0])
    assert y["runs"] == 33  # 8 x 4 tiles of 640 at 20% overlap, and the full pass
    assert s.metric("sight_slice_images_total") == 1 and s.metric("sight_slice_runs_total") == 33
    usage = httpx.get(s.url + "/api/v1/usage", headers={"X-API-Key": s.key}, timeout=30).json()["usage"]
    assert sum(d["yolo_runs"] for d in usage) == 33 + 1 and sum(d["files"] for d in usage) == 2


def test_deepstack_slice_field(server, canvas):
    data, key = canvas[2], {"api_key": server.key}
    plain = httpx.post(server.url + "/v1/vision/detection", files={"image": ("m.png", data)}, data=key, timeout=300).json()
    sliced = httpx.post(server.url + "/v1/vision/detection", files={"image": ("m.png", data)},
                        data={**key, "slice": "true"}, timeout=300).json()
    assert plain["success"] and sliced["success"]
    assert sliced["count"] >= 5 * max(1, plain["count"])
    bad = httpx.post(server.url + "/v1/vision/detection", files={"image": ("m.png", data)},
                     data={**key, "slice": '{"size": 1}'}, timeout=60)
    # DeepStack's shape: 400 for what is wrong with the request.
    assert bad.status_code == 400 and bad.json()["success"] is False and "slice.size" in bad.json()["error"]


def test_cli_slice(tmp_path, canvas):
    p = tmp_path / "m.png"
    p.write_bytes(canvas[2])
    out = subprocess.run([SIGHTD, "detect", str(p), "--slice"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    y = json.loads(out.stdout)["result"]["yolo"]
    assert y["runs"] == len(y["slices"]) + 1 and len(y["detections"]) >= 40
    bad = subprocess.run([SIGHTD, "detect", str(p), '--slice={"merge": "x"}'], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "slice.merge" in bad.stderr


def rle_bounds(rle):
    """Bounds (x1, y1, x2, y2) of a column-major COCO RLE's pixels."""
    h = rle["size"][0]
    pos, xs, ys = 0, [], []
    for i, n in enumerate(rle["counts"]):
        if i % 2 and n:
            for p in (pos, pos + n - 1):
                xs.append(p // h)
                ys.append(p % h)
            if pos // h != (pos + n - 1) // h:  # runs over a column's end: whole columns between
                ys += [0, h - 1]
        pos += n
    return (min(xs), min(ys), max(xs) + 1, max(ys) + 1)


@pytest.mark.parametrize("model,part", [(SEG, "mask"), (POSE, "keypoints")])
def test_masks_and_keypoints_in_image_coordinates(start_server, canvas, model, part):
    if not model.exists():
        pytest.skip(f"{model} not found (set SIGHT_SHARED)")
    s = start_server("--model", str(model))
    for fmt in ("polygon", "rle") if part == "mask" else ("polygon",):
        y = yolo(detect(s, [("m.png", canvas[2])], [{"is_yolo": True, "slice": True}], mask_format=fmt)[0])
        dets = y["detections"]
        assert len(dets) >= 10
        near = 0
        for d in dets:
            b = mosaic.box(d)
            if part == "keypoints":
                pts = [(k["x"], k["y"]) for k in d["keypoints"] if k.get("confidence", 1) > 0.5]
                near += all(b[0] - 2 <= x <= b[2] + 2 and b[1] - 2 <= yy <= b[3] + 2 for x, yy in pts)
            elif fmt == "polygon":
                xs, ys = [p[0] for p in d["polygon"]], [p[1] for p in d["polygon"]]
                near += bool(xs) and mosaic.iou(b, (min(xs), min(ys), max(xs) + 1, max(ys) + 1)) >= 0.5
            else:
                assert d["rle"]["size"] == [2160, 3840] and sum(d["rle"]["counts"]) == 3840 * 2160
                assert d["mask_area"] == sum(d["rle"]["counts"][1::2]) > 0
                near += mosaic.iou(b, rle_bounds(d["rle"])) >= 0.5
        # Masks and keypoints lie on their (merged) boxes, in image coordinates.
        assert near >= 0.9 * len(dets), (near, len(dets))


def test_v2_and_batch_routes_take_slice(start_server):
    """The same key in a v2 item (fetched from 127.0.0.2) and on the batch routes."""
    import http.server
    import threading
    data = png_bytes(800, 600)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = start_server("--url-allow", "127.0.0.2/32")
        url = f"http://127.0.0.2:{srv.server_address[1]}/a.png"
        slc = {"full": False}
        evs = [ev for ev in lines(httpx.post(s.url + V2, timeout=120, json={"api_key": s.key, "data": [
            {"image_url": url, "is_yolo": True, "slice": slc}, {"image_url": url, "is_yolo": True}]}))
            if ev["status"] == "done"]
        runs = sorted(ev["result"]["yolo"].get("runs", 1) for ev in evs)
        assert runs == [1, 6]  # 3 x 2 tiles of 416 over 800x600, no full pass; the plain file: one run
        r = httpx.post(s.url + "/api/v1/inference/predict/batch/v2", timeout=120, json={"api_key": s.key, "data": [
            {"image_url": url, "is_yolo": True, "slice": slc}]})
        assert r.json()["result"]["files"][0]["result"]["yolo"]["runs"] == 6
        args = multipart(s.key, files=[("a.png", data)], metadata=[json.dumps({"is_yolo": True, "slice": slc})])
        r = httpx.post(s.url + "/api/v1/inference/predict/batch", timeout=120, **args)
        assert r.json()["result"]["files"][0]["result"]["yolo"]["runs"] == 6
    finally:
        srv.shutdown()
