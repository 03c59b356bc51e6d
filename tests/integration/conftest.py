"""Fixtures that run the real sightd binary on a free port with its own key store.

SIGHTD names the binary (the Makefile sets it). Servers detect with the built-in
model unless a test says otherwise (--model PATH, or --model none). Photos come
from Debian packages that scripts/bootstrap --test provides (photo() below);
SIGHT_SHARED, the shared test material, is read only by the accuracy tests of
the Ultralytics models, which skip without it. Each server is stopped with SIGTERM at the end and must exit 0,
which under the sanitizer build also means no leak or memory error was reported.
"""
import os
import signal
import socket
import struct
import subprocess
import time
import zlib
from pathlib import Path

import httpx
import pytest

# The clients' toolchain builds are session fixtures shared by test_clients*.py.
from client_toolchains import curl_bin, dotnet_client, go_client, java_client, node_bin, ts_client  # noqa: F401

SIGHTD = os.environ.get("SIGHTD", str(Path(__file__).resolve().parents[2] / "build" / "sightd"))
# Seconds a server has to answer /healthz after its start. The ThreadSanitizer build
# (make test-tsan) loads its models several times slower and sets more.
START_S = float(os.environ.get("SIGHT_TEST_START_S", "20"))
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SIGHT_SHARED", REPO.parent / "shared"))
IMAGES = SHARED / "testdata" / "images"
# Photos a fresh clone has after scripts/bootstrap --test: opencv-doc's samples
# (installed) and scikit-image's (unpacked into .deps). Named as in the shared
# folder, which holds the same bytes under these names.
OPENCV = Path("/usr/share/doc/opencv-doc/examples")
SKIMAGE = REPO / ".deps" / "testdata" / "skimage"
PHOTOS = {
    "opencv_scenetext01.jpg": OPENCV / "text" / "scenetext01.jpg",  # a sign, two people, a car
    "opencv_scenetext02.jpg": OPENCV / "text" / "scenetext02.jpg",
    "opencv_scenetext05.jpg": OPENCV / "text" / "scenetext05.jpg",
    "opencv_scenetext06.jpg": OPENCV / "text" / "scenetext06.jpg",  # a car and a person
    "opencv_imageTextN.png": OPENCV / "data" / "imageTextN.png",
    "opencv_messi5.jpg": OPENCV / "data" / "messi5.jpg",            # footballers and a ball
    "skimage_page.png": SKIMAGE / "page.png",
    "skimage_coffee.png": SKIMAGE / "coffee.png",
    "skimage_chelsea_cat.png": SKIMAGE / "chelsea.png",
    "skimage_astronaut.png": SKIMAGE / "astronaut.png",
}
V1 = "/api/v1/inference/predict/stream"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, *args, env=None, db=None):
        self.tmp = tmp
        self.db = db or str(tmp / "keys.db")  # a SQLite file, or a postgresql:// URL
        self.port = free_port()
        # With --tls-cert the server speaks HTTPS; clients trust that certificate.
        self.verify = args[list(args).index("--tls-cert") + 1] if "--tls-cert" in args else True
        self.url = f"{'https' if '--tls-cert' in args else 'http'}://127.0.0.1:{self.port}"
        self.log_path = tmp / "sightd.log"
        self.key = self.keys("create", "--name", "test").strip()
        e = dict(os.environ, **(env or {}))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [SIGHTD, "serve", "--listen", f"127.0.0.1:{self.port}", "--db", self.db, "--log-level", "debug", *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=e,
            # Its own folder as working directory: what it loads must not depend on it.
            cwd=tmp)
        deadline = time.time() + START_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sightd exited early:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("sightd did not start")

    def keys(self, *args):
        r = subprocess.run([SIGHTD, "keys", *args, "--db", self.db], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def log_text(self):
        if not self.log.closed:  # stop() closes it; the failure message still wants the text
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def metric(self, name):
        """Value of one sample line of /metrics, e.g. 'sight_requests_in_flight'."""
        for line in httpx.get(self.url + "/metrics", verify=self.verify).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


@pytest.fixture
def start_server(tmp_path):
    """Starts a server with extra command-line arguments; stops it (expecting exit 0) at teardown."""
    servers = []

    def start(*args, env=None):
        d = tmp_path / f"s{len(servers)}"
        d.mkdir()
        s = Server(d, *args, env=env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        rc = s.stop()
        assert rc == 0, f"sightd exited with {rc}:\n{s.log_text()[-4000:]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("sightd"))
    yield s
    rc = s.stop()
    assert rc == 0, f"sightd exited with {rc}:\n{s.log_text()[-4000:]}"


def png_bytes(width, height, pixel=lambda x, y: (x % 256, y % 256, (x + y) % 256), rows=None):
    """A valid 8-bit RGB PNG made with zlib alone (no imaging library needed)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    if rows is None:
        rows = [bytes(v for x in range(width) for v in pixel(x, y)) for y in range(height)]
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def slow_png():
    """A 6500x6500 PNG (42 megapixels, a few MB): its decode takes a visible
    fraction of a second, which is what streaming and cancellation tests need."""
    w = h = 6500
    row = bytes((x * 7) % 256 for x in range(w * 3))
    rows = [row[y % 3:] + row[:y % 3] for y in range(h)]
    return png_bytes(w, h, rows=rows)


def photo_path(name):
    """A test photo: one of PHOTOS (missing = a broken set-up, so the test fails),
    else from the shared folder (skipped without it)."""
    if name in PHOTOS:
        p = PHOTOS[name]
        if not p.exists():
            pytest.fail(f"{p} not found: scripts/bootstrap --test (make test runs it) provides it")
        return p
    p = IMAGES / name
    if not p.exists():
        pytest.skip(f"shared test photo {p} not found (set SIGHT_SHARED)")
    return p


def photo(name):
    return photo_path(name).read_bytes()


def multipart(api_key=None, files=(), metadata=(), query=None):
    """httpx arguments shaped like the spec's Python client."""
    data = {}
    if api_key is not None:
        data["api_key"] = api_key
    if metadata:
        data["metadata"] = list(metadata)
    if query:
        data["query"] = query
    return {"data": data, "files": [("files", f) for f in files]}
