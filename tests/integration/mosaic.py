"""A large canvas of many shrunk photos, for sliced detection (test_slice.py
and scripts/bench's slice bench): small objects a one-pass detector misses.

Photos are read with djpeg / ImageMagick (libjpeg-turbo-progs and imagemagick
are test packages of scripts/bootstrap) and placed with numpy; the canvas is a
PNG, so the server sees exactly these pixels."""
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

OPENCV = Path("/usr/share/doc/opencv-doc/examples")
SKIMAGE = Path(__file__).resolve().parents[2] / ".deps" / "testdata" / "skimage"

# Photos a fresh clone has (scripts/bootstrap --test) with objects YOLOX-Nano finds.
MOSAIC_PHOTOS = [
    OPENCV / "data" / "messi5.jpg", OPENCV / "text" / "scenetext01.jpg", OPENCV / "text" / "scenetext06.jpg",
    OPENCV / "data" / "basketball1.png", OPENCV / "data" / "basketball2.png", OPENCV / "data" / "fruits.jpg",
    OPENCV / "data" / "orange.jpg", OPENCV / "data" / "apple.jpg", OPENCV / "data" / "baboon.jpg",
    OPENCV / "data" / "building.jpg", OPENCV / "data" / "smarties.png", OPENCV / "data" / "squirrel_cls.jpg",
    SKIMAGE / "astronaut.png", SKIMAGE / "coffee.png", SKIMAGE / "chelsea.png",
]


def read_rgb(path):
    """The photo's pixels, H x W x 3 uint8 (a PPM from djpeg or convert)."""
    path = str(path)
    cmd = ["djpeg", "-pnm", path] if path.lower().endswith((".jpg", ".jpeg")) else ["convert", path, "-alpha", "off", "ppm:-"]
    data = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    fields, pos = [], 0
    while len(fields) < 4:  # P6 W H MAXVAL, whitespace separated, '#' comments to the line's end
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", fields
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1:pos + 1 + w * h * 3], np.uint8).reshape(h, w, 3)


def shrink(img, w, h):
    """Area-average resize down to w x h (not up)."""
    H, W = img.shape[:2]
    ys = (np.arange(h) * H) // h
    xs = (np.arange(w) * W) // w
    rows = np.add.reduceat(img.astype(np.float64), ys, axis=0)
    ny = np.diff(np.append(ys, H))[:, None, None]
    out = np.add.reduceat(rows, xs, axis=1)
    nx = np.diff(np.append(xs, W))[None, :, None]
    return np.clip(np.rint(out / (ny * nx)), 0, 255).astype(np.uint8)


def png(img):
    """An RGB PNG of img (zlib alone)."""
    h, w = img.shape[:2]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 3)) + chunk(b"IEND", b"")


def build(width=3840, height=2160, cols=6, rows=6, photos=None):
    """The canvas (H x W x 3, gray) and where each photo went: a list of
    (path, x, y, scale), photos repeated in order to fill every cell, each
    shrunk to fit its cell and centred in it."""
    photos = photos or MOSAIC_PHOTOS
    canvas = np.full((height, width, 3), 114, np.uint8)
    cw, ch = width // cols, height // rows
    cache, placed = {}, []
    for k in range(cols * rows):
        path = photos[k % len(photos)]
        if path not in cache:
            cache[path] = read_rgb(path)
        img = cache[path]
        s = min(cw / img.shape[1], ch / img.shape[0], 1.0)
        w, h = max(1, int(img.shape[1] * s)), max(1, int(img.shape[0] * s))
        x = (k % cols) * cw + (cw - w) // 2
        y = (k // cols) * ch + (ch - h) // 2
        canvas[y:y + h, x:x + w] = shrink(img, w, h)
        placed.append((path, x, y, w / img.shape[1], h / img.shape[0]))
    return canvas, placed


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def box(d):
    b = d["box"]
    return (b["x1"], b["y1"], b["x2"], b["y2"])


def recall(truth, found, thr=0.5):
    """Share of truth [(class, box)] matched one-to-one by a found detection
    of its class at IoU >= thr (greedy, best IoU first)."""
    pairs = sorted(((iou(t[1], box(f)), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)
                    if f["class"] == t[0]), reverse=True)
    used_t, used_f = set(), set()
    for v, i, j in pairs:
        if v < thr:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i), used_f.add(j)
    return len(used_t) / max(1, len(truth))
