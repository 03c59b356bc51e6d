"""Detection through the HTTP API and the CLI with the built-in model (YOLOX-Nano):
options, validation, bad images, bad models, which model serves. Accuracy of the
Ultralytics models against a reference is in test_detect_accuracy.py."""
import json
import os
import subprocess

import httpx
import pytest

from conftest import REPO, SHARED, SIGHTD, V1, multipart, photo, photo_path, png_bytes
from onnx_builder import identity_model

ULTRALYTICS = SHARED / "models" / "yolo26n-w8a32.onnx"
BUILTIN = REPO / "share" / "models" / "yolox-nano.onnx"  # the file the build embeds
STREET = "opencv_scenetext01.jpg"  # 800x600: a sign, two people, a car
YOLO = json.dumps({"is_yolo": True, "is_llm": False})


@pytest.fixture(scope="module")
def det_server(tmp_path_factory):
    """A server with no model option: the built-in one serves."""
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("det"))
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


def test_street_has_people_and_a_car(det_server):
    status, lines = run(det_server, [(STREET, photo(STREET))])
    y = done(lines)["result"]["yolo"]
    assert y["model"] == "yolox-nano"
    classes = [d["class"] for d in y["detections"]]
    assert "car" in classes and classes.count("person") >= 2, classes
    for d in y["detections"]:
        b = d["box"]
        assert 0 <= b["x1"] < b["x2"] <= 800 and 0 <= b["y1"] < b["y2"] <= 600
        assert 0.25 <= d["confidence"] <= 1
        assert d["class_id"] == {"car": 2, "person": 0}.get(d["class"], d["class_id"])
    assert set(y["speed_ms"]) == {"preprocess", "inference", "postprocess"}
    assert done(lines)["result"]["timing_ms"]["yolo"] > 0


def test_options_filter_and_limit(det_server):
    img = [(STREET, photo(STREET))]
    _, lines = run(det_server, img, {"classes": "car"})
    assert [d["class"] for d in done(lines)["result"]["yolo"]["detections"]] == ["car"]
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
    status, body = run(det_server, [(STREET, photo(STREET))], {field: value})
    assert status == 422
    assert body["detail"]["code"] == "invalid_option"
    assert field in body["detail"]["message"]


def test_bad_images_with_detection_get_clean_errors(det_server):
    bomb = bytearray(png_bytes(1, 1))
    bomb[16:24] = (20000).to_bytes(4, "big") * 2
    import zlib
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    files = [("zero.jpg", b""), ("corrupt.jpg", photo(STREET)[:3000]), ("one.png", png_bytes(1, 1)),
             ("bomb.png", bytes(bomb)), (STREET, photo(STREET))]
    _, lines = run(det_server, files)
    out = {i: done(lines, i) for i in range(len(files))}
    assert out[0]["error"]["code"] == "empty_file"
    assert out[1]["error"]["code"] == "corrupt_image"
    assert out[2]["status"] == "done" and out[2]["result"]["image"] == {"width": 1, "height": 1, "format": "png"}
    assert isinstance(out[2]["result"]["yolo"]["detections"], list)
    assert out[3]["error"]["code"] == "image_too_large"
    assert out[4]["status"] == "done" and out[4]["result"]["yolo"]["detections"]


def test_cli_detect_prints_the_same_result(det_server):
    r = subprocess.run([SIGHTD, "detect", str(photo_path(STREET)), "--classes", "person,car"],
                       capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout.splitlines()[0])
    _, lines = run(det_server, [(STREET, photo(STREET))], {"classes": "person,car"})
    http = done(lines)["result"]["yolo"]["detections"]
    assert cli["status"] == "done" and cli["result"]["yolo"]["model"] == "yolox-nano"
    assert http and [d["box"] for d in cli["result"]["yolo"]["detections"]] == [d["box"] for d in http]


def test_cli_detect_errors(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"nope")
    r = subprocess.run([SIGHTD, "detect", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"]["code"] == "unsupported_image"
    r = subprocess.run([SIGHTD, "detect", str(bad), "--confidence", "7"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "confidence" in r.stderr


def test_model_none_switches_detection_off(start_server):
    s = start_server("--model", "none")
    _, lines = run(s, [("a.png", png_bytes(4, 4))])
    err = done(lines)["error"]
    assert err["code"] == "yolo_unavailable"
    assert "log" not in err["message"]
    assert "detection is off" in s.log_text()
    assert httpx.get(s.url + "/readyz").json()["models"]["yolo"] is None


def test_readyz_and_log_name_the_model_and_its_source(start_server, tmp_path):
    s = start_server()
    assert httpx.get(s.url + "/readyz").json()["models"]["yolo"] == {"model": "yolox-nano", "source": "built-in"}
    assert "detector ready: yolox-nano" in s.log_text() and "built in" in s.log_text()
    # SIGHT_MODEL names a file; the flag wins over it.
    f = tmp_path / "mine.onnx"
    f.write_bytes(BUILTIN.read_bytes())
    s = start_server(env={"SIGHT_MODEL": str(f)})
    assert httpx.get(s.url + "/readyz").json()["models"]["yolo"] == {"model": "mine", "source": "file"}
    assert f"(from {f})" in s.log_text()
    s = start_server("--model", "none", env={"SIGHT_MODEL": str(f)})
    assert httpx.get(s.url + "/readyz").json()["models"]["yolo"] is None


def test_sight_model_that_cannot_load_stops_the_server(tmp_path):
    err = _start_fails(tmp_path, env={"SIGHT_MODEL": str(tmp_path / "gone.onnx")})
    assert "gone.onnx" in err


def test_ultralytics_model_from_a_file():
    """The README's way to serve a more accurate model: --model PATH. The
    Ultralytics files are AGPL-3.0 and never part of the repository."""
    if not ULTRALYTICS.exists():
        pytest.skip(f"{ULTRALYTICS} not found (set SIGHT_SHARED): the Ultralytics models are never committed")
    # Colour as the reference pipelines see it (no management): bus.jpg is Display P3, and one of its
    # people scores 0.83 in the file's colours, 0.14 converted (README, "Image formats").
    r = subprocess.run([SIGHTD, "detect", str(photo_path("bus.jpg")), "--model", str(ULTRALYTICS),
                        "--icc-to-srgb=false"],
                       capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr
    y = json.loads(r.stdout)["result"]["yolo"]
    classes = [d["class"] for d in y["detections"]]
    assert y["model"] == "yolo26n-w8a32" and "bus" in classes and classes.count("person") >= 4


def _start_fails(tmp_path, *args, env=None):
    db = tmp_path / "k.db"
    r = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(db), *args],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, **(env or {})))
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
    """YOLOX exports carry no names: --labels supplies them (the built-in model's
    own file, loaded as any user's model would be)."""
    labels = REPO / "share" / "coco80.names"
    r = subprocess.run([SIGHTD, "detect", str(photo_path(STREET)), "--model", str(BUILTIN), "--labels", str(labels)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    classes = [d["class"] for d in json.loads(r.stdout)["result"]["yolo"]["detections"]]
    assert "car" in classes and "person" in classes
    r = subprocess.run([SIGHTD, "detect", str(photo_path(STREET)), "--model", str(BUILTIN)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    dets = json.loads(r.stdout)["result"]["yolo"]["detections"]
    # Without names, ids stand in for them.
    assert dets and all(d["class"] == str(d["class_id"]) for d in dets), dets
