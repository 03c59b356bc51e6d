"""GET /openapi.json: docs/openapi.json served as is, valid OpenAPI 3.1
(swagger-parser), real responses valid against its schemas (ajv), and every
route the server answers in it."""
import json
import shutil
import subprocess

import httpx
import pytest

from conftest import REPO, V1, multipart, photo

DOC = REPO / "docs" / "openapi.json"
CHECK = REPO / "tests" / "openapi"
STREET = "opencv_scenetext01.jpg"


@pytest.fixture(scope="module")
def checker():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed (scripts/bootstrap --test installs them)")
    if not (CHECK / "node_modules" / "ajv").exists():
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CHECK, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.fail(f"npm ci in tests/openapi failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")

    def check(doc_path, samples, tmp):
        sp = tmp / "samples.json"
        sp.write_text(json.dumps(samples))
        r = subprocess.run([node, str(CHECK / "check.mjs"), str(doc_path), str(sp)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])
    return check


def test_served_document_is_docs_openapi_json(server):
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.content == DOC.read_bytes()
    assert r.json()["openapi"].startswith("3.1")
    assert 'href="/openapi.json"' in httpx.get(server.url + "/").text


def test_every_route_is_documented(server):
    paths = json.loads(DOC.read_text())["paths"]
    # The routes the server answers, found by asking it: anything but 404.
    candidates = ["/api/v1/inference/predict/stream", "/api/v1/inference/predict/batch",
                  "/api/v1/inference/predict/stream/v2", "/api/v1/inference/predict/batch/v2",
                  "/api/v1/usage", "/api/v1/models", "/v1/vision/detection", "/v1/vision/custom/x",
                  "/healthz", "/readyz", "/metrics", "/openapi.json", "/"]
    for p in candidates:
        assert httpx.get(server.url + p).status_code != 404, p
        documented = p.replace("/custom/x", "/custom/{model}")
        assert documented in paths, p
    # ... and nothing documented that the server does not answer.
    for p in paths:
        assert httpx.get(server.url + p.replace("{model}", "x")).status_code != 404, p
    # Each documented operation lists error codes.
    for p, ops in paths.items():
        for method, op in ops.items():
            assert any(c.startswith(("4", "5")) for c in op["responses"]), (p, method)


def test_document_and_real_responses_validate(server, checker, tmp_path):
    key = {"X-API-Key": server.key}
    s = []
    r = httpx.post(server.url + V1, timeout=60, **multipart(server.key, [("a.jpg", photo(STREET)), ("b.jpg", b"nope")],
                                                             ['{"is_yolo": true}', '{"is_yolo": true}']))
    lines = [json.loads(x) for x in r.text.splitlines() if x]
    kinds = {x["status"] for x in lines}
    assert {"processing", "done", "error", "complete"} <= kinds, kinds
    s += [{"schema": "StreamEvent", "body": x} for x in lines]
    s += [{"schema": {"processing": "Processing", "done": "Done", "error": "FileError", "complete": "Complete"}[x["status"]], "body": x} for x in lines]
    r = httpx.post(server.url + "/api/v1/inference/predict/batch", timeout=60,
                   **multipart(server.key, [("a.jpg", photo(STREET))], ['{"is_yolo": true}']))
    s.append({"schema": "BatchAnswer", "body": r.json()})
    s.append({"schema": "Error", "body": httpx.post(server.url + V1, **multipart("sk-bad", [("a.jpg", b"x")], ["{}"])).json()})
    s.append({"schema": "Usage", "body": httpx.get(server.url + "/api/v1/usage", headers=key).json()})
    s.append({"schema": "Models", "body": httpx.get(server.url + "/api/v1/models", headers=key).json()})
    s.append({"schema": "Ready", "body": httpx.get(server.url + "/readyz").json()})
    files = {"image": ("f.jpg", photo(STREET), "image/jpeg")}
    s.append({"schema": "DeepStackAnswer", "body": httpx.post(server.url + "/v1/vision/detection", data={"api_key": server.key}, files=files, timeout=60).json()})
    s.append({"schema": "DeepStackError", "body": httpx.post(server.url + "/v1/vision/detection", files=files, timeout=60).json()})
    out = checker(DOC, s, tmp_path)
    assert out["ok"], out["errors"]

    # The checker can fail: a wrong document and a wrong body are caught.
    bad = json.loads(DOC.read_text())
    bad["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nope"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    out = checker(tmp_path / "bad.json", [{"schema": "Models", "body": {"models": [{"name": 1}]}}], tmp_path)
    assert not out["ok"] and any(e.startswith("document") for e in out["errors"]) and any("Models" in e for e in out["errors"])


def test_video_lines_validate(server, checker, tmp_path):
    """A tracked video's frame and done lines, and an image's track_id, against the document."""
    if not shutil.which("ffmpeg"):
        pytest.fail("ffmpeg is needed (scripts/bootstrap --test installs it)")
    clip = tmp_path / "c.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(REPO / ".deps" / "testdata" / "skimage" / "astronaut.png"),
                    "-vf", "scale=320:320,format=yuv420p", "-t", "1", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast",
                    str(clip)], check=True, timeout=60)
    r = httpx.post(server.url + V1, timeout=60, **multipart(server.key, [("c.mp4", clip.read_bytes()), ("a.jpg", photo(STREET))],
                                                             ['{"is_yolo": true, "track": true, "fps": 0}', '{"is_yolo": true, "track": true}']))
    lines = [json.loads(x) for x in r.text.splitlines() if x]
    frames = [x for x in lines if x["status"] == "frame"]
    assert len(frames) == 10 and all(d.get("track_id") for d in frames[-1]["result"]["yolo"]["detections"])
    assert any("tracks" in x.get("result", {}) for x in lines)
    s = [{"schema": "StreamEvent", "body": x} for x in lines] + [{"schema": "Frame", "body": x} for x in frames]
    out = checker(DOC, s, tmp_path)
    assert out["ok"], out["errors"]
