"""Detection through the HTTP API and the CLI: options, validation, bad
images and bad models. Accuracy against a reference is in test_detect_accuracy.py."""
import json
import subprocess

import httpx
import pytest

from conftest import SHARED, SIGHTD, V1, multipart, photo, png_bytes
from onnx_builder import identity_model

MODEL = SHARED / "models" / "yolo26n-w8a32.onnx"
YOLO = json.dumps({"is_yolo": True, "is_llm": False})


@pytest.fixture(scope="module")
def det_server(tmp_path_factory):
    if not MODEL.exists():
        pytest.skip(f"{MODEL} not found (set SIGHT_SHARED)")
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("det"), "--model", str(MODEL))
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def run(server, files, data=None, meta=YOLO):
    form = multipart(server.key, files, [meta] * len(files))
    form["data"].update(data or {})
    with httpx.Client(timeout=120) as c:
        r = c.post(server.url + V1, **form)
    if r.status_code != 200:
        return r.status_code, r.json()
    return 200, [json.loads(l) for l in r.text.splitlines() if l.strip()]


def done(lines, index=0):
    return next(m for m in lines if m.get("index") == index and m["status"] in ("done", "error"))


def test_bus_has_a_bus_and_people(det_server):
    status, lines = run(det_server, [("bus.jpg", photo("bus.jpg"))])
    y = done(lines)["result"]["yolo"]
    assert y["model"] == "yolo26n-w8a32"
    classes = [d["class"] for d in y["detections"]]
    assert "bus" in classes and classes.count("person") >= 4
    for d in y["detections"]:
        b = d["box"]
        assert 0 <= b["x1"] < b["x2"] <= 810 and 0 <= b["y1"] < b["y2"] <= 1080
        assert 0.25 < d["confidence"] <= 1
        assert d["class_id"] == (5 if d["class"] == "bus" else d["class_id"])
    assert set(y["speed_ms"]) == {"preprocess", "inference", "postprocess"}
    assert done(lines)["result"]["timing_ms"]["yolo"] > 0


def test_options_filter_and_limit(det_server):
    img = [("bus.jpg", photo("bus.jpg"))]
    _, lines = run(det_server, img, {"classes": "bus"})
    assert [d["class"] for d in done(lines)["result"]["yolo"]["detections"]] == ["bus"]
    _, lines = run(det_server, img, {"classes": "0"})
    assert {d["class"] for d in done(lines)["result"]["yolo"]["detections"]} == {"person"}
    _, lines = run(det_server, img, {"max_detections": "2"})
    assert len(done(lines)["result"]["yolo"]["detections"]) == 2
    _, lines = run(det_server, img, {"confidence": "0.9"})
    assert all(d["confidence"] > 0.9 for d in done(lines)["result"]["yolo"]["detections"])
    _, lo = run(det_server, img, {"confidence": "0.05"})
    assert len(done(lo)["result"]["yolo"]["detections"]) > len(done(lines)["result"]["yolo"]["detections"])


@pytest.mark.parametrize("field,value", [("confidence", "2"), ("confidence", "abc"), ("iou", "-0.1"),
                                         ("max_detections", "0"), ("max_detections", "1.5"),
                                         ("classes", "unicorn"), ("classes", "80"), ("classes", "[1,")])
def test_invalid_options_are_422(det_server, field, value):
    status, body = run(det_server, [("bus.jpg", photo("bus.jpg"))], {field: value})
    assert status == 422
    assert body["detail"]["code"] == "invalid_option"
    assert field in body["detail"]["message"]


def test_bad_images_with_detection_get_clean_errors(det_server):
    bomb = bytearray(png_bytes(1, 1))
    bomb[16:24] = (20000).to_bytes(4, "big") * 2
    import zlib
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    files = [("zero.jpg", b""), ("corrupt.jpg", photo("bus.jpg")[:3000]), ("one.png", png_bytes(1, 1)),
             ("bomb.png", bytes(bomb)), ("bus.jpg", photo("bus.jpg"))]
    _, lines = run(det_server, files)
    out = {i: done(lines, i) for i in range(len(files))}
    assert out[0]["error"]["code"] == "empty_file"
    assert out[1]["error"]["code"] == "corrupt_image"
    assert out[2]["status"] == "done" and out[2]["result"]["image"] == {"width": 1, "height": 1, "format": "png"}
    assert isinstance(out[2]["result"]["yolo"]["detections"], list)
    assert out[3]["error"]["code"] == "image_too_large"
    assert out[4]["status"] == "done" and out[4]["result"]["yolo"]["detections"]


def test_cli_detect_prints_the_same_result(det_server):
    img = SHARED / "testdata" / "images" / "bus.jpg"
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(MODEL), "--classes", "person,bus"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout.splitlines()[0])
    _, lines = run(det_server, [("bus.jpg", photo("bus.jpg"))])
    http = done(lines)["result"]["yolo"]["detections"]
    assert cli["status"] == "done"
    assert [d["box"] for d in cli["result"]["yolo"]["detections"]] == [d["box"] for d in http]


def test_cli_detect_errors(tmp_path):
    if not MODEL.exists():
        pytest.skip("no model")
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"nope")
    r = subprocess.run([SIGHTD, "detect", str(bad), "--model", str(MODEL)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"]["code"] == "unsupported_image"
    r = subprocess.run([SIGHTD, "detect", str(bad), "--model", str(MODEL), "--confidence", "7"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "confidence" in r.stderr


def test_server_without_a_model_answers_yolo_unavailable(start_server):
    s = start_server("--models-dir", "/nonexistent")
    _, lines = run(s, [("a.png", png_bytes(4, 4))])
    err = done(lines)["error"]
    assert err["code"] == "yolo_unavailable"
    assert "log" not in err["message"]
    assert "no detection model" in s.log_text()


def _start_fails(tmp_path, *args):
    db = tmp_path / "k.db"
    r = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(db), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    return r.stderr


def test_unusable_models_are_clear_startup_errors(tmp_path):
    missing = _start_fails(tmp_path, "--model", str(tmp_path / "missing.onnx"))
    assert "missing.onnx" in missing
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not an onnx file")
    assert "junk.onnx" in _start_fails(tmp_path, "--model", str(junk))
    odd = tmp_path / "odd.onnx"
    odd.write_bytes(identity_model([1, 3, 64, 64]))
    err = _start_fails(tmp_path, "--model", str(odd))
    assert "[1, 3, 64, 64]" in err, err


def test_a_model_without_metadata_uses_labels_file(tmp_path):
    """YOLOX exports carry no names: --labels supplies them."""
    yolox = SHARED / "models" / "yolox-nano.onnx"
    if not yolox.exists():
        pytest.skip("no yolox model")
    from pathlib import Path
    labels = Path(__file__).resolve().parents[2] / "share" / "coco80.names"
    img = SHARED / "testdata" / "images" / "bus.jpg"
    r = subprocess.run([SIGHTD, "detect", str(img), "--model", str(yolox), "--labels", str(labels)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    classes = [d["class"] for d in json.loads(r.stdout)["result"]["yolo"]["detections"]]
    assert "bus" in classes and "person" in classes
