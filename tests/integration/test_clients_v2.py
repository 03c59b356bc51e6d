"""The spec's v2 client examples (POST /api/v1/inference/predict/stream/v2, a
JSON body of image URLs), run unchanged but for the base URL against a real
sightd: JavaScript and TypeScript (Node 20 fetch), Go net/http, C# HttpClient
with JsonContent.Create, Java OkHttp with Jackson, Python httpx, and curl.
Each asks for two images served by test_v2's local image server (127.0.0.2,
opened to sightd with --url-allow) and must read the whole stream; each must
also take its own error path for a wrong key. A relay in front of sightd
records each client's request, so the exact bytes (Content-Type, framing) are
checked, and shown when something fails.

Servers and toolchains are test_v2's and test_clients' fixtures, imported
here; the v1 programs of tests/clients/ take a "v2" mode (Go, C#) or have a v2
sibling (predict-v2.mjs/.mts, RakuSightClient.java + PredictV2.java). The Java
client needs Debian's libjackson2-databind-java besides libokhttp-java;
without it that client is skipped, saying so.
"""
import json
import os
import shutil
import socket
import threading
from collections.abc import Generator

import httpx
import pytest

from conftest import photo
from test_v2 import V2, images, v2server  # noqa: F401  (fixtures)
from client_toolchains import CLIENTS_DIR, DOTNET_ENV, JAVA_JARS, _build  # noqa: F401
from test_clients import CLIENTS, Outcome, assert_refused_401, check_stream, jpeg_size, png_size, run_cli  # noqa: F401

QUERY = "Describe the scene"
JACKSON_JARS = ["/usr/share/java/jackson-databind.jar", "/usr/share/java/jackson-core.jar",
                "/usr/share/java/jackson-annotations.jar"]


# ---- the spec's Python v2 client, copied as-is but for the base URL ----

def predict_stream_v2(
    base_url: str,
    api_key: str,
    query: str,
    data: list[dict],
) -> Generator[dict, None, None]:
    payload = {"api_key": api_key, "query": query, "data": data}

    with httpx.Client() as client:
        with client.stream(
            "POST",
            f"{base_url}/api/v1/inference/predict/stream/v2",
            json=payload,
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

# ---- end of spec code ----


# ---- fixtures: the clients that differ from v1's builds ----

@pytest.fixture(scope="session")
def ts_v2_client(node_bin, tmp_path_factory):
    tsc = shutil.which("tsc")
    if not tsc:
        pytest.skip("tsc not found: Node 20 cannot run TypeScript; install Debian's node-typescript "
                    "(apt-get install node-typescript) to check the spec's TypeScript v2 client")
    out = tmp_path_factory.mktemp("ts-v2")
    _build([tsc, "-p", "tsconfig.v2.json", "--outDir", str(out)], cwd=CLIENTS_DIR / "node")
    return [node_bin, str(out / "predict-v2.mjs")]


@pytest.fixture(scope="session")
def java_v2_client(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not found: a JDK (11+) is needed to check the spec's Java OkHttp v2 client "
                    "(scripts/bootstrap does not install it)")
    jars = JAVA_JARS + JACKSON_JARS
    missing = [j for j in jars if not os.path.exists(j)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: install Debian's libokhttp-java and "
                    "libjackson2-databind-java (the spec's v2 client serialises with Jackson's ObjectMapper) "
                    "to check the spec's Java v2 client; Maven Central is not used")
    out = tmp_path_factory.mktemp("java-v2")
    cp = ":".join(jars)
    _build([javac, "-cp", cp, "-d", str(out), "RakuSightClient.java", "PredictV2.java"], cwd=CLIENTS_DIR / "java")
    return [java, "-cp", f"{out}:{cp}", "PredictV2"]


def curl_cmd(curl, url, key, query, data):
    # What a user would type for a JSON body.
    body = json.dumps({"api_key": key, "query": query, "data": data})
    return [curl, "-sS", "-N", "-v", "--fail-with-body", "-H", "Content-Type: application/json",
            "--data-binary", body, url + V2]


@pytest.fixture(params=CLIENTS)
def client(request):
    return request.param


@pytest.fixture
def run_client(request, client):
    """run(url, key, query, data) -> Outcome, for the parametrised client."""
    if client == "httpx":
        def run(url, key, query, data):
            try:
                return Outcome(0, list(predict_stream_v2(url, key, query, data)), [])
            except httpx.HTTPStatusError as e:
                return Outcome(1, [], [e])
        return run
    if client == "curl":
        curl = request.getfixturevalue("curl_bin")
        return lambda url, key, query, data: run_cli(curl_cmd(curl, url, key, query, data))
    prefix = {
        "node": lambda: [request.getfixturevalue("node_bin"), str(CLIENTS_DIR / "node" / "predict-v2.mjs")],
        "typescript": lambda: request.getfixturevalue("ts_v2_client"),
        "go": lambda: [*request.getfixturevalue("go_client"), "v2"],
        "dotnet": lambda: [*request.getfixturevalue("dotnet_client"), "v2"],
        "java": lambda: request.getfixturevalue("java_v2_client"),
    }[client]()
    env = dict(os.environ, **DOTNET_ENV) if client == "dotnet" else None
    return lambda url, key, query, data: run_cli([*prefix, url, key, query, json.dumps(data)], env=env)


class Recorder:
    """A TCP relay in front of sightd that keeps the bytes each connection's
    client sends, so a test can show the exact request a client made."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests = []  # one bytearray per connection, in accept order
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.target_port))
            rec = bytearray()
            self.requests.append(rec)
            threading.Thread(target=self._pipe, args=(conn, up, rec), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, None), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, rec):
        try:
            while data := src.recv(65536):
                if rec is not None:
                    rec += data
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.listener.close()


@pytest.fixture(scope="module")
def recorder(v2server):
    r = Recorder(v2server.port)
    yield r
    r.close()


def split_request(raw):
    """(request line, {lower-case header: value}, body with any chunked framing removed)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw
    line, *fields = head.decode("latin-1").split("\r\n")
    headers = {}
    for f in fields:
        k, _, v = f.partition(":")
        assert k.lower() not in headers, head
        headers[k.lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, body = out + body[:n], body[n + 2:]
        body = out
    else:
        assert int(headers["content-length"]) == len(body), head
    return line, headers, body


# ---- inputs ----

def data_items(base):
    """Two images from the image server; the small PNG a second time with is_yolo,
    so the flags are seen to arrive (detection is off on this server: yolo_unavailable).
    street.jpg is renamed, so filename is seen to come from the body, not the URL."""
    return [
        {"image_url": base + "/street.jpg", "filename": "photo.jpg", "is_yolo": False, "is_llm": False},
        {"image_url": base + "/small.png", "filename": "small.png", "is_yolo": False, "is_llm": False},
        {"image_url": base + "/small.png?again", "filename": "yolo.png", "is_yolo": True, "is_llm": False},
    ]


@pytest.fixture(scope="module")
def served_sizes(images):
    """(width, height) of what the image server serves, read from the bytes, not from sightd."""
    base, _ = images
    street = httpx.get(base + "/street.jpg").content
    assert street == photo("opencv_scenetext01.jpg")
    return {"photo.jpg": (*jpeg_size(street), "jpeg"), "small.png": (*png_size(httpx.get(base + "/small.png").content), "png")}


# ---- the tests ----

def test_served_sizes(served_sizes):
    assert served_sizes == {"photo.jpg": (800, 600, "jpeg"), "small.png": (64, 48, "png")}


def test_two_urls_stream(v2server, images, served_sizes, client, run_client):
    base, _ = images
    out = run_client(v2server.url, v2server.key, QUERY, data_items(base))
    assert out.rc == 0 and not out.errors, out
    per_file = check_stream(out.chunks, ["photo.jpg", "small.png", "yolo.png"], ["done", "done", "yolo_unavailable"])
    for i, name in enumerate(["photo.jpg", "small.png"]):
        result = per_file[i][1]["result"]
        w, h, fmt = served_sizes[name]
        assert result["image"] == {"width": w, "height": h, "format": fmt}, result
        assert "yolo" not in result and "llm" not in result, result
        assert {"decode", "total"} <= set(result["timing_ms"]), result


def test_wrong_key_takes_the_clients_error_path(v2server, images, client, run_client):
    base, _ = images
    assert_refused_401(client, run_client(v2server.url, "sk_not_a_key", QUERY, data_items(base)))


# What each client puts on the wire, as seen through the Recorder: all say
# application/json; OkHttp (like .NET's JsonContent) adds a charset, and .NET
# sends JsonContent chunked because it does not know its length beforehand.
WIRE = {
    "node": ("application/json", "content-length"),
    "typescript": ("application/json", "content-length"),
    "go": ("application/json", "content-length"),
    "dotnet": ("application/json; charset=utf-8", "chunked"),
    "java": ("application/json; charset=utf-8", "content-length"),
    "httpx": ("application/json", "content-length"),
    "curl": ("application/json", "content-length"),
}


@pytest.mark.parametrize("query", [QUERY, ""], ids=["query", "empty-query"])
def test_request_on_the_wire(v2server, images, recorder, client, run_client, query):
    """The request each client makes, shown on failure; an empty query is sent
    as "" by every client (the spec's Go client always sends the key) and accepted."""
    base, _ = images
    data = data_items(base)[:1]
    recorder.requests.clear()
    out = run_client(recorder.url, v2server.key, query, data)
    assert out.rc == 0 and not out.errors, out
    check_stream(out.chunks, ["photo.jpg"], ["done"])
    (raw,) = [bytes(r) for r in recorder.requests]
    line, headers, body = split_request(raw)
    shown = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
    assert line == "POST " + V2 + " HTTP/1.1", shown
    ctype, framing = WIRE[client]
    assert headers["content-type"] == ctype, shown
    assert ("transfer-encoding" in headers) == (framing == "chunked"), shown
    assert json.loads(body) == {"api_key": v2server.key, "query": query, "data": data}, body
