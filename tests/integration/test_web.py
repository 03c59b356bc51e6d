"""The playground page (GET / and its assets) and its end-to-end test in a real browser:
Debian's chromium driven by playwright-core (tests/web, installed with npm ci)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import SIGHTD, photo_path
from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
WEB_TESTS = ROOT / "tests" / "web"
OCR_DIR = ROOT / "models" / "ocr"
CHROMIUM = "/usr/bin/chromium"


def test_page_and_assets(server):
    r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<!doctype html>" in r.text and "/app.js" in r.text
    assert r.headers["x-request-id"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-cache"
    etag = r.headers["etag"]
    assert httpx.get(server.url + "/index.html").content == r.content
    # Revalidation: the same ETag gives 304 with no body.
    r304 = httpx.get(server.url + "/", headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    assert httpx.get(server.url + "/", headers={"If-None-Match": '"other"'}).status_code == 200
    js = httpx.get(server.url + "/app.js")
    assert js.status_code == 200 and js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "/api/v1/inference/predict/stream" in js.text
    css = httpx.get(server.url + "/style.css")
    assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    h = httpx.head(server.url + "/app.js")
    assert h.status_code == 200 and h.content == b"" and int(h.headers["content-length"]) == len(js.content)


def test_assets_only_get_and_unknown_paths_404(server):
    r = httpx.post(server.url + "/", content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert r.json()["detail"]["code"] == "method_not_allowed"
    for p in ("/nope.js", "/web/app.js", "/app.js/", "/index.html.bak"):
        r = httpx.get(server.url + p)
        assert r.status_code == 404, p
        assert r.json()["detail"]["code"] == "not_found"
        assert r.headers["x-request-id"]
    assert 'route="web"' in httpx.get(server.url + "/metrics").text


@pytest.fixture(scope="session")
def playwright_dir():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found (scripts/bootstrap --test installs Debian's chromium)")
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm not found (scripts/bootstrap --test installs it)")
    if not (WEB_TESTS / "node_modules" / "playwright-core").exists():
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_TESTS, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            pytest.fail(f"npm ci in tests/web failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return WEB_TESTS


def test_playground_in_chromium(start_server, playwright_dir, node_bin, tmp_path):
    bus, text = photo_path("opencv_scenetext01.jpg"), photo_path("opencv_scenetext05.jpg")
    if not (OCR_DIR / "ppocr_keys_v1.txt").exists() and not (OCR_DIR / "dict.txt").exists():
        pytest.fail(f"no OCR models in {OCR_DIR} (make build provisions them)")
    # The car the built-in model finds, from the CLI, to check where the page draws its box.
    det = json.loads(subprocess.run([SIGHTD, "detect", str(bus), "--classes", "car"], capture_output=True, text=True,
                                    timeout=120, check=True).stdout)["result"]
    b = det["yolo"]["detections"][0]["box"]
    box = ",".join(str(v) for v in ["car", b["x1"], b["y1"], b["x2"], b["y2"], det["image"]["width"], det["image"]["height"]])
    s = start_server("--ocr-dir", str(OCR_DIR))
    # A second server whose LLM is a fake that streams its answer slowly, for llm_delta.
    pieces = ["A street ", "with a sign, ", "people ", "and a car."]
    fake = FakeOpenAI(api_key="sk-fake-llm")
    fake.script = lambda req: ("stream", pieces, {"delay": 0.5})
    try:
        s2 = start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-timeout", "30",
                          env={"SIGHT_LLM_API_KEY": "sk-fake-llm"})
        out = tmp_path / "screenshots"
        env = dict(os.environ, E2E_LLM_URL=s2.url, E2E_LLM_KEY=s2.key, E2E_LLM_ANSWER="".join(pieces), E2E_BOX=box)
        r = subprocess.run([node_bin, str(playwright_dir / "e2e.mjs"), s.url, s.key, str(bus), str(text), str(out)],
                           capture_output=True, text=True, timeout=300, env=env)
        assert not fake.errors, fake.errors
    finally:
        fake.close()
    print(r.stdout)
    assert r.returncode == 0, f"e2e.mjs failed:\n{r.stdout}\n{r.stderr}\nserver log:\n{s.log_text()[-3000:]}"
    assert (out / "playground.png").stat().st_size > 10000
