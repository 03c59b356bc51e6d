"""Several detection models served by name: --model NAME=PATH (or PATH, named
by its stem), --default-model, a file's "model", GET /api/v1/models and the
DeepStack custom route."""
import json
import os
import signal
import threading
import time
import subprocess

import httpx
import pytest

from conftest import REPO, SIGHTD, V1, multipart, photo

BUILTIN = REPO / "share" / "models" / "yolox-nano.onnx"
STREET = "opencv_scenetext01.jpg"


@pytest.fixture
def two(start_server, tmp_path):
    # Two copies of one model under different file names: the result's "model"
    # (the file's name) tells which one ran.
    (tmp_path / "alpha.onnx").write_bytes(BUILTIN.read_bytes())
    (tmp_path / "beta.onnx").write_bytes(BUILTIN.read_bytes())
    return start_server("--model", f"a={tmp_path / 'alpha.onnx'}", "--model", str(tmp_path / "beta.onnx"),
                        "--default-model", "beta")


def stream(s, meta):
    r = httpx.post(s.url + V1, timeout=60, **multipart(s.key, [("street.jpg", photo(STREET))], [json.dumps(meta)]))
    return r, [json.loads(x) for x in r.text.splitlines() if x]


def test_models_list(two):
    assert httpx.get(two.url + "/api/v1/models").status_code == 401
    assert httpx.get(two.url + "/api/v1/models", headers={"X-API-Key": "sk-wrong"}).status_code == 401
    r = httpx.get(two.url + "/api/v1/models", headers={"Authorization": f"Bearer {two.key}"})
    assert r.status_code == 200
    models = r.json()["models"]
    assert [(m["name"], m["default"]) for m in models] == [("a", False), ("beta", True)]
    for m in models:
        assert m["layout"] == "yolox" and m["input"] == [416, 416] and m["source"] == "file"
        # A bare copy has no names metadata: classes go by id, as in its results.
        assert m["classes"] == [str(i) for i in range(80)]
        assert m["loaded_at"].endswith("Z")


def test_file_picks_its_model(two):
    _, lines = stream(two, {"is_yolo": True, "model": "a"})
    assert [l["result"]["yolo"]["model"] for l in lines if l["status"] == "done"] == ["alpha"]
    _, lines = stream(two, {"is_yolo": True})
    assert [l["result"]["yolo"]["model"] for l in lines if l["status"] == "done"] == ["beta"]


def test_unknown_model_is_422_before_any_work(two):
    r, _ = stream(two, {"is_yolo": True, "model": "nope"})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_model"
    # v2: refused before the URL is fetched (nothing listens there).
    body = {"api_key": two.key, "data": [{"image_url": "https://127.0.0.1:1/x.jpg", "is_yolo": True, "model": "nope"}]}
    r = httpx.post(two.url + "/api/v1/inference/predict/batch/v2", json=body, timeout=30)
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_model"
    r, _ = stream(two, {"is_yolo": True, "model": 5})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid_model"


def test_deepstack_custom_route(two):
    files = {"image": ("f.jpg", photo(STREET), "image/jpeg")}
    r = httpx.post(two.url + "/v1/vision/custom/a", data={"api_key": two.key}, files=files, timeout=60)
    assert r.status_code == 200 and r.json()["success"] and r.json()["count"] > 0
    r = httpx.post(two.url + "/v1/vision/custom/nope", data={"api_key": two.key}, files=files, timeout=60)
    assert r.status_code == 404 and r.json()["success"] is False and r.json()["code"] == 404


def _start_fails(tmp_path, *args):
    r = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "k.db"), *args],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 1
    return r.stderr


def test_builtin_is_listed_by_default(server):
    [m] = httpx.get(server.url + "/api/v1/models", params={"api_key": server.key}).json()["models"]
    assert m["name"] == "yolox-nano" and m["default"] and m["source"] == "built-in"
    assert len(m["classes"]) == 80 and m["classes"][:3] == ["person", "bicycle", "car"]


def test_model_name_errors_stop_the_server(tmp_path):
    assert "two models are called 'yolox-nano'" in _start_fails(tmp_path, "--model", str(BUILTIN), "--model", str(BUILTIN))
    assert "--default-model zz" in _start_fails(tmp_path, "--model", str(BUILTIN), "--default-model", "zz")


def _with_names(names):
    """The built-in model's file with names metadata added: ONNX metadata_props
    (ModelProto field 14) may follow the other fields, so appending one is a
    valid model whose class names differ."""
    from onnx_builder import _bytes
    return BUILTIN.read_bytes() + _bytes(14, _bytes(1, "names") + _bytes(2, names))


def _models(s):
    return {m["name"]: m for m in httpx.get(s.url + "/api/v1/models", params={"api_key": s.key}).json()["models"]}


def _wait(pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def test_sighup_reloads_under_load_without_a_failure(start_server, tmp_path):
    alpha, beta = tmp_path / "alpha.onnx", tmp_path / "beta.onnx"
    alpha.write_bytes(BUILTIN.read_bytes())
    beta.write_bytes(BUILTIN.read_bytes())
    s = start_server("--model", f"a={alpha}", "--model", f"b={beta}")
    img = photo(STREET)
    stop, results = threading.Event(), []

    def client():
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                r = c.post(s.url + V1, **multipart(s.key, [("s.jpg", img)], [json.dumps({"is_yolo": True, "model": "a"})]))
                lines = [json.loads(x) for x in r.text.splitlines() if x]
                done = [x for x in lines if x["status"] == "done"]
                results.append((r.status_code, [d["class"] for d in done[0]["result"]["yolo"]["detections"]] if done else None))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: len(results) >= 3, "no requests completed")
        # Replaced atomically, as a deploy would: new class names tell the new model.
        tmp = tmp_path / "alpha.tmp"
        tmp.write_bytes(_with_names(repr({i: f"c{i}" for i in range(80)})))
        os.replace(tmp, alpha)
        before = len(results)
        s.proc.send_signal(signal.SIGHUP)
        _wait(lambda: _models(s)["a"]["classes"][0] == "c0", "the new model was not swapped in")
        n = len(results)
        _wait(lambda: len(results) >= n + 6, "requests stopped after the reload")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(results) > before
    assert all(code == 200 and classes is not None for code, classes in results), results
    # Before: ids (no names); the last requests ran on the new model.
    assert "2" in results[0][1] and "c2" in results[-1][1], (results[0], results[-1])

    # A file that fails to load leaves the old model serving; the log says why.
    beta.write_bytes(b"not an onnx model")
    s.proc.send_signal(signal.SIGHUP)
    _wait(lambda: "reload: model b:" in s.log_text() and "keeps serving" in s.log_text(), "no failed-reload log")
    r = httpx.post(s.url + V1, timeout=60, **multipart(s.key, [("s.jpg", img)], [json.dumps({"is_yolo": True, "model": "b"})]))
    assert r.status_code == 200 and '"done"' in r.text

    # A removed file stops being offered (the default stays).
    beta.unlink()
    s.proc.send_signal(signal.SIGHUP)
    _wait(lambda: "b" not in _models(s), "the removed model is still offered")
    r = httpx.post(s.url + V1, timeout=60, **multipart(s.key, [("s.jpg", img)], [json.dumps({"is_yolo": True, "model": "b"})]))
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_model"
    alpha.unlink()
    s.proc.send_signal(signal.SIGHUP)
    _wait(lambda: "it is the default" in s.log_text(), "no log for the default's file")
    assert "a" in _models(s)


def test_models_dir_and_reload_picks_up_new_files(start_server, tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    (d / "cam1.onnx").write_bytes(BUILTIN.read_bytes())
    (d / "cam2.onnx").write_bytes(BUILTIN.read_bytes())
    (d / "notes.txt").write_text("not a model")
    s = start_server("--models-dir", str(d))
    ms = _models(s)
    assert sorted(ms) == ["cam1", "cam2"] and ms["cam1"]["default"] and ms["cam1"]["source"] == "file"
    assert httpx.get(s.url + "/readyz").json()["models"]["yolo"] == {"model": "cam1", "source": "file"}
    (d / "cam3.onnx").write_bytes(BUILTIN.read_bytes())
    (d / "cam2.onnx").unlink()
    s.proc.send_signal(signal.SIGHUP)
    _wait(lambda: sorted(_models(s)) == ["cam1", "cam3"], "the folder's changes were not picked up")
    r, lines = stream(s, {"is_yolo": True, "model": "cam3"})
    assert r.status_code == 200 and [l["result"]["yolo"]["model"] for l in lines if l["status"] == "done"] == ["cam3"]
