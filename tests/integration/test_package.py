"""The Debian package (`make deb`, scripts/mkdeb): it states its runtime dependencies, and
unpacked into a temporary root (no install, no LD_LIBRARY_PATH) its sightd, started from `/`,
finds its own ONNX Runtime, built-in model and OCR models and serves detection and OCR."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import REPO, SIGHTD, V1, free_port, multipart, photo

BUILD = Path(os.environ.get("SIGHT_TEST_BUILD") or Path(SIGHTD).parent)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    for tool in ("dpkg-deb", "dpkg-shlibdeps"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: scripts/bootstrap --test installs dpkg-dev")
    out = tmp_path_factory.mktemp("deb")
    r = subprocess.run([str(REPO / "scripts" / "mkdeb"), str(BUILD), str(out)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def test_package_states_its_dependencies(deb):
    info = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Depends"], capture_output=True, text=True,
                          check=True).stdout
    assert "Package: sight" in info
    depends = info.split("Depends:", 1)[1]
    for lib in ("libc6", "libmicrohttpd12", "libjansson4", "libcurl4", "libsqlite3-0", "libssl3", "libavformat59", "libavcodec59",
                "libswscale6"):
        assert lib in depends, depends
    files = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for f in ("./usr/bin/sightd", "./usr/lib/sight/libonnxruntime.so.1", "./usr/share/sight/models/yolox-nano.onnx",
              "./usr/share/sight/models/LICENSE.yolox-nano", "./usr/share/sight/ocr/ppocr_keys_v1.txt",
              "./usr/lib/systemd/system/sight.service", "./etc/sight/sight.env.example",
              "./usr/share/doc/sight/NOTICE", "./usr/share/doc/sight/LICENSE"):
        assert f in files, f


def test_unpacked_package_serves_from_root(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    sightd = root / "usr" / "bin" / "sightd"
    unit = (root / "usr" / "lib" / "systemd" / "system" / "sight.service").read_text()
    assert "ExecStart=/usr/bin/sightd serve" in unit and "DynamicUser=yes" in unit
    assert "EnvironmentFile=-/etc/sight/sight.env" in unit and "StateDirectory=sight" in unit
    data = tmp_path / "state"
    # Nothing from the build tree or this environment may help it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHT_") and k != "LD_LIBRARY_PATH"}
    env["SIGHT_DATA_DIR"] = str(data)
    key = subprocess.run([str(sightd), "keys", "create", "--name", "t"], capture_output=True, text=True, cwd="/",
                         env=env, timeout=60)
    assert key.returncode == 0, key.stderr
    assert (data / "sight.db").exists()
    port = free_port()
    log = open(tmp_path / "sightd.log", "wb")
    proc = subprocess.Popen([str(sightd), "serve", "--listen", f"127.0.0.1:{port}"], cwd="/", env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "sightd.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "sightd did not start"
            time.sleep(0.1)
        ready = httpx.get(url + "/readyz").json()
        assert ready["models"] == {"yolo": {"model": "yolox-nano", "source": "built-in"}, "ocr": True}, ready
        label = tmp_path / "label.png"
        subprocess.run(["convert", "-size", "640x160", "xc:white", "-font", "DejaVu-Sans", "-pointsize", "56",
                        "-fill", "black", "-annotate", "+30+100", "LOT 7731-B", str(label)], check=True, timeout=60)
        form = multipart(key.stdout.strip(), [("street.jpg", photo("opencv_scenetext01.jpg")),
                                              ("label.png", label.read_bytes())],
                         ['{"is_yolo": true, "is_llm": false}', '{"is_yolo": false, "is_ocr": true, "is_llm": false}'])
        r = httpx.post(url + V1, timeout=120, **form)
        done = {m["index"]: m for m in map(json.loads, r.text.splitlines()) if m.get("status") == "done"}
        classes = [d["class"] for d in done[0]["result"]["yolo"]["detections"]]
        assert "car" in classes and "person" in classes, classes
        assert done[1]["result"]["ocr"]["text"] == "LOT 7731-B", done[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    text = (tmp_path / "sightd.log").read_text()
    assert rc == 0, text
    assert f"OCR models {root}/usr/share/sight/ocr" in text, text
