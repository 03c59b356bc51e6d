"""Decompression bombs whose cost is not in their pixel count (issue 25), built by
decode_bombs.py, against the real binary: each is refused before decoding with a per-file
image_too_complex that names the limit, in under 0.5 s of the server's CPU and 200 MB of its
peak memory (read from /proc), while a normal file in the same request decodes. A client that
drops its stream while its files decode frees the workers at once. HEIF/AVIF have their own
--max-pixels-heif."""
import json
import os
import shutil
import socket
import subprocess
import time

import httpx
import pytest

from conftest import V1, multipart, png_bytes
from decode_bombs import bombs, progressive_jpeg

META = json.dumps({"is_yolo": False, "is_llm": False})
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of the process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024


def predict(s, files, timeout=60):
    r = httpx.post(s.url + V1, **multipart(s.key, files, [META] * len(files)), timeout=timeout)
    assert r.status_code == 200, r.text
    return {m["index"]: m for m in map(json.loads, r.text.splitlines()) if m.get("status") in ("done", "error")}


@pytest.fixture(scope="module")
def bomb_files():
    return bombs()


@pytest.mark.parametrize("name", [
    "scans_direct.jpg", "scans_budget.jpg", "scans_icc.jpg", "scans_cmyk.jpg", "coefficients_cmyk.jpg", "bands10.jpg",
    "samples256.tif", "bits32.tif", "jpeg_strips.tif", "pages.tif", "frames.gif"])
def test_bomb_is_refused_before_decoding(start_server, bomb_files, name):
    """A fresh server per bomb, so that its peak memory is this request's."""
    s = start_server()
    small_predict_ok = predict(s, [("warm.png", png_bytes(8, 8))])  # libraries loaded: the baseline
    assert small_predict_ok[0]["status"] == "done"
    cpu0, hwm0 = cpu_s(s.proc.pid), hwm_mb(s.proc.pid)
    out = predict(s, [(name, bomb_files[name]), ("ok.png", png_bytes(64, 48))])
    cpu, grew = cpu_s(s.proc.pid) - cpu0, hwm_mb(s.proc.pid) - hwm0
    err = out[0].get("error")
    assert out[0]["status"] == "error" and err["code"] == "image_too_complex", out[0]
    assert "limit" in err["message"] or "budget" in err["message"], err
    assert out[1]["status"] == "done", out[1]
    assert cpu < 0.5, f"{name}: {cpu:.2f} s of server CPU"
    assert grew < 200, f"{name}: peak memory grew {grew:.0f} MB"


def test_ordinary_progressive_and_16_bit_files_still_decode(server):
    """The budget is not in the way of real files: a progressive JPEG from ImageMagick and a
    16-bit RGBA PNG (twice the 4-byte pixels of an 8-bit one, well under --max-pixels)."""
    if not shutil.which("convert"):
        pytest.fail("ImageMagick's convert is missing: scripts/bootstrap --test installs it")
    png = png_bytes(640, 480)
    jpg = subprocess.run(["convert", "png:-", "-interlace", "Plane", "-quality", "90", "jpg:-"], input=png,
                         capture_output=True, check=True).stdout
    png16 = subprocess.run(["convert", "png:-", "-alpha", "on", "-depth", "16", "png64:-"], input=png,
                           capture_output=True, check=True).stdout
    out = predict(server, [("p.jpg", jpg), ("deep.png", png16)])
    assert out[0]["status"] == "done" and out[0]["result"]["image"]["width"] == 640, out[0]
    assert out[1]["status"] == "done" and out[1]["result"]["image"]["height"] == 480, out[1]


def small_request_s(s):
    t0 = time.monotonic()
    out = predict(s, [("a.png", png_bytes(320, 240))], timeout=30)
    assert out[0]["status"] == "done", out[0]
    return time.monotonic() - t0


@pytest.mark.parametrize("route", ["stream", "batch"])
def test_client_that_drops_its_request_frees_the_workers_at_once(start_server, route):
    """Four scan bombs that pass the cost budget (a server with a huge --max-pixels) take
    seconds each to decode. The client drops the stream once they are being decoded: the
    decodes stop (libjpeg's progress monitor sees the request cancelled), so a normal request
    sent 0.2 s later is about as fast as on the idle server, and the server's CPU goes quiet."""
    s = start_server("--workers", "2", "--max-pixels", "100G")
    bomb = progressive_jpeg(7000, 7000, 1, scans=480)
    idle = sorted(small_request_s(s) for _ in range(3))[1]

    path = V1 if route == "stream" else V1.replace("/stream", "/batch")
    req = httpx.Request("POST", s.url + path, **multipart(s.key, [(f"b{i}.jpg", bomb) for i in range(4)], [META] * 4))
    body = req.read()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "host") + "\r\n"
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    sock.sendall(head.encode() + body)
    if route == "stream":
        seen, t0 = b"", time.monotonic()
        while seen.count(b'"processing"') < 2 and time.monotonic() - t0 < 20:
            seen += sock.recv(65536)
        assert seen.count(b'"processing"') >= 2, seen
    time.sleep(0.5)  # well into the decodes (each takes seconds); a batch answers only at the end
    assert s.metric('sight_workers_busy{pool="cpu"}') == 2  # both workers on bombs
    sock.close()
    cpu0 = cpu_s(s.proc.pid)
    time.sleep(0.2)
    after = small_request_s(s)
    print(f"idle {idle:.3f} s, after the drop {after:.3f} s")
    # A decode still running would hold its worker for seconds (each takes ~4 s); the margin is
    # for a shared machine and sanitizer builds, where freeing the aborted decodes' 100 MB
    # coefficient buffers takes a visible fraction of a second.
    assert after < idle + 1.0, f"{after:.2f} s after the drop, {idle:.2f} s idle"
    time.sleep(0.5)
    assert cpu_s(s.proc.pid) - cpu0 < 0.5, "the dropped request's decodes went on"


def test_deepstack_route_refuses_a_bomb_with_400(server):
    bomb = progressive_jpeg(4000, 4000, 1, scans=600)
    r = httpx.post(server.url + "/v1/vision/detection", data={"api_key": server.key},
                   files={"image": ("b.jpg", bomb, "image/jpeg")}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False and "scans" in r.json()["error"], r.text


def heic_of(tmp_path, w, h):
    if not shutil.which("heif-enc"):
        pytest.fail("heif-enc is missing: scripts/bootstrap --test installs it (libheif-examples)")
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(w, h))
    subprocess.run(["heif-enc", "-q", "50", "-o", str(tmp_path / "out.heic"), str(src)], check=True,
                   capture_output=True, timeout=120)
    return (tmp_path / "out.heic").read_bytes()


def test_heif_has_its_own_pixel_limit(start_server, tmp_path):
    """libheif decodes at full size: --max-pixels-heif (SIGHT_MAX_PIXELS_HEIF) bounds HEIF and
    AVIF below --max-pixels; other formats of the same size pass."""
    heic = heic_of(tmp_path, 400, 300)
    s = start_server(env={"SIGHT_MAX_PIXELS_HEIF": "100000"})
    out = predict(s, [("x.heic", heic), ("x.png", png_bytes(400, 300))])
    assert out[0]["status"] == "error" and out[0]["error"]["code"] == "image_too_large", out[0]
    assert "--max-pixels-heif" in out[0]["error"]["message"], out[0]
    assert out[1]["status"] == "done", out[1]
    s2 = start_server("--max-pixels-heif", "120000")
    assert predict(s2, [("x.heic", heic)])[0]["status"] == "done"
