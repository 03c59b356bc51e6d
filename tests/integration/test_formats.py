"""Every image format the server loads (libvips): JPEG, PNG, WebP, HEIC, AVIF, GIF, TIFF, BMP,
made here from one photo (image_formats.py; opencv-doc's scenetext01.jpg, which a fresh clone has
after scripts/bootstrap --test), through the HTTP API with the built-in detector (YOLOX-Nano):
the same people found in each, the right size and format; EXIF orientation 6 in HEIC and AVIF;
a Display P3 JPEG; the HEIF thumbnail used as shrink-on-load. Corrupt and truncated files of
each format are in test_hostile.py."""
import json
import subprocess

import httpx
import pytest

from conftest import SIGHTD, V1, Server, multipart, photo_path
from image_formats import FORMATS, SUFFIX, make_images, png_size, tools_missing

YOLO = json.dumps({"is_yolo": True, "is_llm": False})
# A street: a person at each side and a car between them; no ICC profile, no EXIF orientation.
PHOTO = "opencv_scenetext01.jpg"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    if tools_missing():
        pytest.fail(f"missing {tools_missing()}: scripts/bootstrap --test (make test runs it) installs them")
    return make_images(tmp_path_factory.mktemp("formats"), photo_path(PHOTO))


@pytest.fixture(scope="module")
def size(images):
    """(width, height) of the photo as ImageMagick wrote it to PNG: the reference for every format."""
    return png_size(images["png"].read_bytes())


@pytest.fixture(scope="module")
def fmt_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("fmt"))
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def post(server, files):
    form = multipart(server.key, files, [YOLO] * len(files))
    with httpx.Client(timeout=120) as c:
        r = c.post(server.url + V1, **form)
    assert r.status_code == 200, r.text
    lines = [json.loads(l) for l in r.text.splitlines() if l.strip()]
    return {m["index"]: m for m in lines if m.get("status") in ("done", "error")}


def people(result):
    return [d for d in result["yolo"]["detections"] if d["class"] == "person"]


def iou(a, b):
    ix = max(0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    iy = max(0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = ix * iy
    area = lambda r: (r["x2"] - r["x1"]) * (r["y2"] - r["y1"])
    return inter / (area(a) + area(b) - inter)


def matches(found, ref, min_iou):
    """Each reference person has a person in found with IoU >= min_iou."""
    return all(any(iou(f["box"], r["box"]) >= min_iou for f in found) for r in ref)


def test_every_format_finds_the_same_people(fmt_server, images, size):
    files = [(f"photo.{SUFFIX[f]}", images[f].read_bytes()) for f in FORMATS]
    out = post(fmt_server, files)
    ref = None
    for i, fmt in enumerate(FORMATS):
        m = out[i]
        assert m["status"] == "done", (fmt, m)
        r = m["result"]
        assert r["image"] == {"width": size[0], "height": size[1], "format": fmt}, fmt
        p = people(r)
        assert len(p) >= 2, (fmt, r["yolo"]["detections"])
        if ref is None:
            ref = p  # the JPEG
        # GIF has 256 colours; the rest are close to lossless at this quality.
        assert matches(p, ref, 0.6 if fmt == "gif" else 0.8), (fmt, p, ref)


def test_exif_orientation_6_in_heic_and_avif(fmt_server, images, size):
    names = ["jpeg", "jpeg_exif6", "heif_exif6", "avif_exif6"]
    out = post(fmt_server, [(images[n].name, images[n].read_bytes()) for n in names])
    ref = people(out[0]["result"])
    for i, n in enumerate(names):
        r = out[i]["result"]
        # Stored turned (height x width); shown upright, as the photo.
        assert (r["image"]["width"], r["image"]["height"]) == size, (n, r["image"])
        assert matches(people(r), ref, 0.8), (n, people(r), ref)


def test_display_p3_jpeg(tmp_path, images, size):
    data = images["jpeg_p3"].read_bytes()
    assert b"Display P3 (test)" in data
    # Converted to sRGB (the default), the P3 file shows what the sRGB one shows.
    s = Server(tmp_path)
    try:
        out = post(s, [("srgb.jpg", images["jpeg"].read_bytes()), ("p3.jpg", data)])
    finally:
        assert s.stop() == 0
    ref = people(out[0]["result"])
    r = out[1]["result"]
    assert r["image"] == {"width": size[0], "height": size[1], "format": "jpeg"}
    assert len(people(r)) >= 2 and matches(people(r), ref, 0.8), (people(r), ref)


def test_heif_thumbnail_is_used_only_when_it_is_large_enough(fmt_server, images, size, tmp_path):
    """heif-enc -t stores a thumbnail beside the image. With one whose long side is 3/4 of the
    photo's (600 px of 800) the detector (416 px) can work from it; with one of 160 px it must not.
    Either way the reported size is the image's, and the same people are found."""
    png = images["png"]
    sides = (max(size) * 3 // 4, 160)
    assert sides[0] >= 416, f"the photo ({size}) is too small for this test"
    ref = people(post(fmt_server, [("photo.png", png.read_bytes())])[0]["result"])
    out_files = []
    for side in sides:
        p = tmp_path / f"thumb{side}.heic"
        subprocess.run(["heif-enc", "-q", "80", "-t", str(side), "-o", str(p), str(png)], check=True,
                       capture_output=True, timeout=120)
        out_files.append((p.name, p.read_bytes()))
    out = post(fmt_server, out_files)
    for i in range(2):
        r = out[i]["result"]
        assert r["image"] == {"width": size[0], "height": size[1], "format": "heif"}
        assert len(people(r)) >= 2 and matches(people(r), ref, 0.7), (sides[i], people(r), ref)


def test_cli_detect_reads_every_format(images):
    paths = [str(images[f]) for f in ("heif", "avif", "gif", "tiff", "bmp")]
    r = subprocess.run([SIGHTD, "detect", *paths, "--classes", "person"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [l["result"]["image"]["format"] for l in lines] == ["heif", "avif", "gif", "tiff", "bmp"]
    assert all(len(l["result"]["yolo"]["detections"]) >= 2 for l in lines)
    assert all(d["class"] == "person" for l in lines for d in l["result"]["yolo"]["detections"])


@pytest.mark.parametrize("what,data,word", [
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    ("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
    ("pgm", b"P5\n2 2\n255\n\x00\x01\x02\x03", "Netpbm"),
])
def test_other_formats_are_unsupported_by_name(fmt_server, what, data, word):
    m = post(fmt_server, [(f"x.{what}", data)])[0]
    assert m["status"] == "error" and m["error"]["code"] == "unsupported_image", m
    assert word in m["error"]["message"], m


def test_large_images_never_touch_the_disc(tmp_path, images):
    """libvips keeps images over 100 MB that a loader decodes whole (WebP) in a temporary file
    unless told otherwise: a 6000x6000 WebP (108 MB decoded) must decode with TMPDIR pointing
    nowhere (libvips deletes its temporary files at once, so an empty folder would prove nothing)."""
    big = tmp_path / "big.webp"
    subprocess.run(["convert", "-size", "6000x6000", "plasma:", "-quality", "40", str(big)], check=True,
                   capture_output=True, timeout=300)
    (tmp_path / "srv").mkdir()
    s = Server(tmp_path / "srv", env={"TMPDIR": str(tmp_path / "missing")})
    try:
        form = multipart(s.key, [("big.webp", big.read_bytes())], [json.dumps({"is_yolo": False, "is_llm": False})])
        r = httpx.post(s.url + V1, **form, timeout=300)
        done = [json.loads(l) for l in r.text.splitlines() if '"done"' in l]
        assert done and done[0]["result"]["image"] == {"width": 6000, "height": 6000, "format": "webp"}, r.text
    finally:
        assert s.stop() == 0
