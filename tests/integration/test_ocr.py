"""OCR through the HTTP API (metadata {"is_ocr": true}) and `sightd ocr`: the
issue's proofs on the shared photos, labels rendered here and read back
exactly, hostile images, requests that did not ask for OCR, and servers with
missing or broken models."""
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import SIGHTD, V1, Server, multipart, photo, png_bytes
from ocr_reference import CONVERT, DOCUMENTS, FONTS, LABELS, REFERENCE, char_accuracy, render_label

REPO = Path(__file__).resolve().parents[2]
OCR_DIR = Path(os.environ.get("SIGHT_OCR_DIR") or REPO / "models" / "ocr").resolve()
OCR = json.dumps({"is_ocr": True})


def have_models():
    return (OCR_DIR / "ch_PP-OCRv4_det_infer.onnx").exists() and (OCR_DIR / "ppocr_keys_v1.txt").exists()


@pytest.fixture(scope="module")
def ocr_server(tmp_path_factory):
    if not have_models():
        pytest.skip(f"no OCR models in {OCR_DIR} (scripts/bootstrap provisions them)")
    s = Server(tmp_path_factory.mktemp("ocr"), "--ocr-dir", str(OCR_DIR))
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def run(server, files, meta=OCR):
    form = multipart(server.key, files, [meta] * len(files))
    with httpx.Client(timeout=300) as c:
        r = c.post(server.url + V1, **form)
    assert r.status_code == 200, r.text
    return [json.loads(l) for l in r.text.splitlines() if l.strip()]


def done(lines, index=0):
    return next(m for m in lines if m.get("index") == index and m["status"] in ("done", "error"))


def read(server, name, data):
    line = done(run(server, [(name, data)]))
    assert line["status"] == "done", line
    return line["result"]


def test_scene_text_notice(ocr_server):
    r = read(ocr_server, "opencv_scenetext01.jpg", photo("opencv_scenetext01.jpg"))
    texts = [l["text"] for l in r["ocr"]["lines"]]
    for word in ["NOTICE", "DOUBLE", "PARKING", "PROHIBITED"]:
        assert word in texts, texts
    # Reading order: top to bottom.
    assert texts.index("NOTICE") < texts.index("DOUBLE") < texts.index("PARKING") < texts.index("PROHIBITED")


def test_scene_text_no_parking(ocr_server):
    r = read(ocr_server, "opencv_scenetext05.jpg", photo("opencv_scenetext05.jpg"))
    assert "NO PARKING" in [l["text"] for l in r["ocr"]["lines"]], r["ocr"]
    assert "NO PARKING" in r["ocr"]["text"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_documents_character_accuracy(ocr_server, name):
    r = read(ocr_server, name, photo(name))
    acc = char_accuracy(r["ocr"]["text"], REFERENCE[name])
    assert acc >= 0.90, f"{name}: {acc:.3f}\n{r['ocr']['text']}"


def test_result_shape(ocr_server):
    r = read(ocr_server, "opencv_scenetext05.jpg", photo("opencv_scenetext05.jpg"))
    o = r["ocr"]
    assert set(o) == {"model", "lines", "text", "speed_ms"}
    assert o["model"] == "PP-OCRv4"
    assert set(o["speed_ms"]) == {"detection", "recognition", "postprocess"}
    w, h = r["image"]["width"], r["image"]["height"]
    for l in o["lines"]:
        assert set(l) == {"text", "confidence", "box"}
        assert 0.5 <= l["confidence"] <= 1
        assert len(l["box"]) == 4
        for x, y in l["box"]:
            assert 0 <= x < w and 0 <= y < h
        (x0, y0), (x1, _), (_, y2), _ = l["box"]
        assert x1 > x0 and y2 > y0  # clockwise from the top-left
    assert r["timing_ms"]["ocr"] > 0
    assert o["text"] == "\n".join(l["text"] for l in o["lines"])


def render(tmp_path, name, args):
    if not Path(CONVERT).exists() or not FONTS.exists():
        pytest.skip("ImageMagick or DejaVu fonts missing (scripts/bootstrap --test installs them)")
    return render_label(tmp_path / name, args)


@pytest.mark.parametrize("name,want,args", LABELS, ids=[l[0] for l in LABELS])
def test_rendered_labels_read_exactly(ocr_server, tmp_path, name, want, args):
    r = read(ocr_server, name, render(tmp_path, name, args))
    assert [l["text"] for l in r["ocr"]["lines"]] == want, r["ocr"]


def test_request_without_is_ocr_does_not_run_ocr(ocr_server):
    count = 'sight_stage_duration_seconds_count{stage="ocr"}'
    before = ocr_server.metric(count)
    meta = json.dumps({"is_yolo": False, "is_llm": False})
    r = read_meta(ocr_server, meta)
    assert "ocr" not in r and "ocr" not in r["timing_ms"]
    # Also the spec's clients' exact metadata, with no is_ocr key at all.
    r = read_meta(ocr_server, json.dumps({"is_yolo": False}))
    assert "ocr" not in r
    assert ocr_server.metric(count) == before
    read(ocr_server, "opencv_scenetext05.jpg", photo("opencv_scenetext05.jpg"))
    assert ocr_server.metric(count) == before + 1


def read_meta(server, meta):
    line = done(run(server, [("opencv_scenetext05.jpg", photo("opencv_scenetext05.jpg"))], meta=meta))
    assert line["status"] == "done", line
    return line["result"]


def test_hostile_images_give_empty_results(ocr_server):
    w, h = 6000, 4000
    white_rows = [b"\xff" * (w * 3)] * h
    cases = [
        ("1x1.png", png_bytes(1, 1)),
        ("blank.png", png_bytes(1500, 1500, rows=[b"\x80" * 4500] * 1500)),
        ("sliver.png", png_bytes(5000, 2)),
        ("tall.png", png_bytes(2, 5000)),
        ("huge.png", png_bytes(w, h, rows=white_rows)),
    ]
    lines = run(ocr_server, cases)
    for i, (name, _) in enumerate(cases):
        m = done(lines, i)
        assert m["status"] == "done", m
        if name != "sliver.png" and name != "tall.png":
            assert m["result"]["ocr"]["lines"] == [] and m["result"]["ocr"]["text"] == "", (name, m)
    assert lines[-1]["status"] == "complete" and lines[-1]["failed"] == 0


def test_is_ocr_with_detection_and_metadata_mixes(ocr_server):
    files = [("a.jpg", photo("opencv_scenetext05.jpg")), ("b.jpg", photo("opencv_scenetext05.jpg"))]
    form = multipart(ocr_server.key, files, [OCR, json.dumps({"is_ocr": False})])
    r = httpx.post(ocr_server.url + V1, timeout=300, **form)
    lines = [json.loads(l) for l in r.text.splitlines()]
    assert "ocr" in done(lines, 0)["result"]
    assert "ocr" not in done(lines, 1)["result"]
    both = run(ocr_server, [("c.jpg", photo("opencv_scenetext05.jpg"))], meta=json.dumps({"is_ocr": True, "is_yolo": True}))
    result = done(both)["result"]
    assert "PARKING" in result["ocr"]["text"] and result["yolo"]["model"] == "yolox-nano"


def test_is_ocr_with_detection_off_fails_that_file_alone(start_server):
    s = start_server("--model", "none")
    files = [("a.jpg", photo("opencv_scenetext05.jpg")), ("b.jpg", photo("opencv_scenetext05.jpg"))]
    lines = run(s, files, meta=json.dumps({"is_ocr": True, "is_yolo": True}))
    assert done(lines, 0)["error"]["code"] == done(lines, 1)["error"]["code"] == "yolo_unavailable"
    lines = run(s, files[:1])
    assert "PARKING" in done(lines)["result"]["ocr"]["text"]


@pytest.mark.skipif(not have_models(), reason="no OCR models")
def test_default_ocr_models_do_not_depend_on_the_working_directory(start_server):
    """No --ocr-dir, started in an empty temporary folder: the models are found
    from the executable's location (the build tree's models/ocr)."""
    s = start_server()
    assert httpx.get(s.url + "/readyz").json()["models"]["ocr"] is True
    assert f"OCR models {OCR_DIR}" in s.log_text()
    assert "PARKING" in done(run(s, [("a.jpg", photo("opencv_scenetext05.jpg"))]))["result"]["ocr"]["text"]


def test_server_without_models_answers_ocr_unavailable(start_server, tmp_path):
    s = start_server("--ocr-dir", str(tmp_path / "nothing-here"))
    assert "no OCR models in" in s.log_text()
    m = done(run(s, [("a.png", png_bytes(64, 64))]))
    assert m["status"] == "error" and m["error"]["code"] == "ocr_unavailable"
    # Files that did not ask are unaffected.
    m = done(run(s, [("a.png", png_bytes(64, 64))], meta=json.dumps({"is_yolo": False})))
    assert m["status"] == "done"


def test_broken_models_stop_the_server(tmp_path):
    d = tmp_path / "ocr"
    d.mkdir()
    for f in ["ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"]:
        (d / f).write_bytes(b"not an onnx model")
    (d / "ppocr_keys_v1.txt").write_text("a\nb\n")
    r = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "k.db"), "--ocr-dir", str(d)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode != 0
    assert "OCR models in" in r.stderr + r.stdout


@pytest.mark.skipif(not have_models(), reason="no OCR models")
def test_cli_prints_ndjson(tmp_path):
    src = photo("opencv_scenetext05.jpg")
    img = tmp_path / "sign.jpg"
    img.write_bytes(src)
    r = subprocess.run([SIGHTD, "ocr", str(img), str(tmp_path / "missing.jpg"), "--ocr-dir", str(OCR_DIR),
                        "--log-level", "warn"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1  # one file failed
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines[0]["status"] == "done" and "NO PARKING" in lines[0]["result"]["ocr"]["text"]
    assert lines[1]["status"] == "error" and lines[1]["error"]["code"] == "unreadable_file"
    r = subprocess.run([SIGHTD, "ocr", str(img), "--ocr-dir", str(tmp_path / "none")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "no OCR models in" in r.stderr
