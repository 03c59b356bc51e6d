"""v2 (images by URL) and the batch endpoints: concurrent downloads, every
SSRF refusal, size and time limits, validation. Images come from a local HTTP
server started here; sightd reaches it only through --url-allow. Every address
used is on loopback."""
import base64
import http.server
import json
import socket
import threading
import time

import httpx
import pytest

from conftest import V1, multipart, photo, png_bytes

V2 = "/api/v1/inference/predict/stream/v2"
BATCH = "/api/v1/inference/predict/batch"
BATCH_V2 = "/api/v1/inference/predict/batch/v2"


class ImageHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        route = self.routes.get(path)
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route(self)


def serve_bytes(body, delay=0.0, ctype="image/png"):
    def h(req):
        time.sleep(delay)
        req.send_response(200)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
    return h


def redirect_to(location):
    def h(req):
        req.send_response(302)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.end_headers()
    return h


def endless(req):
    # No Content-Length: the server must stop reading by itself.
    req.send_response(200)
    req.send_header("Content-Type", "image/png")
    req.send_header("Connection", "close")
    req.end_headers()
    try:
        for _ in range(10000):
            req.wfile.write(b"\0" * 65536)
    except OSError:
        pass


def drip(req):
    req.send_response(200)
    req.send_header("Content-Type", "image/png")
    req.send_header("Content-Length", "100000")
    req.end_headers()
    try:
        for _ in range(100):
            req.wfile.write(b"\x89")
            req.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


@pytest.fixture(scope="module")
def images():
    """An image server on 127.0.0.2 (allowlisted in the tests) with a few routes."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), ImageHandler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    png = png_bytes(64, 48)
    ImageHandler.routes = {
        "/street.jpg": serve_bytes(photo("opencv_scenetext01.jpg"), ctype="image/jpeg"),
        "/small.png": serve_bytes(png),
        "/slow1.png": serve_bytes(png, delay=1.0),
        "/slow2.png": serve_bytes(png, delay=1.0),
        "/slow3.png": serve_bytes(png, delay=1.0),
        "/text.html": serve_bytes(b"<html>not an image</html>", ctype="text/html"),
        "/big.png": serve_bytes(b"\0" * 2_000_000),
        "/endless.png": endless,
        "/drip.png": drip,
        "/to-loopback.png": redirect_to(f"http://127.0.0.1:{port}/small.png"),
        "/to-allowed.png": redirect_to(f"http://127.0.0.2:{port}/small.png"),
        "/to-file.png": redirect_to("file:///etc/passwd"),
        "/loop.png": redirect_to(f"http://127.0.0.2:{port}/loop.png"),
    }
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.2:{port}", port
    srv.shutdown()


@pytest.fixture(scope="module")
def v2server(tmp_path_factory, images):
    from conftest import Server
    _, port = images
    # Detection off: is_yolo gets yolo_unavailable, an error line among done lines.
    s = Server(tmp_path_factory.mktemp("v2"), "--model", "none", "--url-allow", "127.0.0.2/32", "--url-max-size", "1MiB",
               "--url-timeout", "3", env={"SIGHT_FETCH_RESOLVE": f"images.test:{port}:127.0.0.2,evil.test:{port}:127.0.0.1"})
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def item(url, filename=None, **flags):
    d = {"image_url": url, "is_yolo": False, "is_llm": False, **flags}
    if filename is not None:
        d["filename"] = filename
    return d


def stream_v2(server, data, query="what is this", path=V2, **extra):
    t0 = time.monotonic()
    lines = []
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", server.url + path, json={"api_key": server.key, "query": query, "data": data, **extra}) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"] == "application/x-ndjson"
            for line in r.iter_lines():
                if line:
                    lines.append((time.monotonic() - t0, json.loads(line)))
    return lines


def outcome(lines):
    """index -> "ok" or the error code, checking processing came first."""
    seen, out = set(), {}
    for _, m in lines:
        if m["status"] == "processing":
            seen.add(m["index"])
        elif m["status"] in ("done", "error"):
            assert m["index"] in seen
            out[m["index"]] = "ok" if m["status"] == "done" else m["error"]["code"]
    assert lines[-1][1]["status"] == "complete"
    return out


def test_v2_streams_like_v1(v2server, images):
    base, _ = images
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(5, 7)).decode()
    lines = stream_v2(v2server, [item(base + "/street.jpg", "street.jpg"), item(base + "/small.png?x=1"),
                                 item(data_url, "inline.png"), item(base + "/small.png", is_yolo=True)])
    msgs = {m["index"]: m for _, m in lines if m["status"] in ("done", "error")}
    assert msgs[0]["filename"] == "street.jpg" and msgs[0]["result"]["image"]["width"] == 800
    assert msgs[1]["filename"] == "small.png"          # derived from the URL path
    assert msgs[1]["result"]["image"] == {"width": 64, "height": 48, "format": "png"}
    assert msgs[2]["result"]["image"]["height"] == 7
    assert msgs[3]["error"]["code"] == "yolo_unavailable"  # detection is off on this server
    assert lines[-1][1] == {**lines[-1][1], "total": 4, "succeeded": 3, "failed": 1}


def test_downloads_run_concurrently(v2server, images):
    base, _ = images
    t0 = time.monotonic()
    lines = stream_v2(v2server, [item(base + f"/slow{i}.png") for i in (1, 2, 3)])
    took = time.monotonic() - t0
    assert outcome(lines) == {0: "ok", 1: "ok", 2: "ok"}
    assert took < 2.2, f"three 1 s downloads took {took:.2f} s: not concurrent"


def test_a_slow_url_delays_only_its_own_file(v2server, images):
    base, _ = images
    lines = stream_v2(v2server, [item(base + "/slow1.png"), item(base + "/small.png")])
    t_fast = next(t for t, m in lines if m["status"] == "done" and m["index"] == 1)
    t_slow = next(t for t, m in lines if m["status"] == "done" and m["index"] == 0)
    assert t_fast < t_slow - 0.5


def test_ssrf_refusals(v2server, images):
    base, port = images
    cases = {
        f"http://127.0.0.1:{port}/small.png": "url_forbidden",        # loopback, not allowlisted
        f"http://[::1]:{port}/small.png": "url_forbidden",
        f"http://[::ffff:127.0.0.1]:{port}/small.png": "url_forbidden",  # IPv4-mapped
        f"http://2130706433:{port}/small.png": "url_forbidden",       # 127.0.0.1 as a number
        f"http://0.0.0.0:{port}/small.png": "url_forbidden",
        f"http://evil.test:{port}/small.png": "url_forbidden",        # a name resolving to 127.0.0.1
        base + "/to-loopback.png": "url_forbidden",                    # redirect hop re-checked
        base + "/to-file.png": "url_forbidden",
        "file:///etc/passwd": "url_forbidden",
        "ftp://127.0.0.2/x.png": "url_forbidden",
        "gopher://127.0.0.2/x": "url_forbidden",
        "data:text/plain;base64,aGVsbG8=": "url_forbidden",
        "not a url at all": "url_invalid",
    }
    urls = list(cases)
    got = outcome(stream_v2(v2server, [item(u, f"f{i}") for i, u in enumerate(urls)]))
    assert {urls[i]: code for i, code in got.items()} == cases


def test_allowed_paths_still_work(v2server, images):
    base, port = images
    got = outcome(stream_v2(v2server, [item(base + "/to-allowed.png"), item(f"http://images.test:{port}/small.png")]))
    assert got == {0: "ok", 1: "ok"}


def test_limits_and_bad_content(v2server, images):
    base, _ = images
    urls = [base + "/endless.png", base + "/big.png", base + "/drip.png", base + "/text.html", base + "/missing.png",
            base + "/loop.png"]
    got = outcome(stream_v2(v2server, [item(u) for u in urls]))
    assert got == {0: "url_too_large", 1: "url_too_large", 2: "url_timeout", 3: "unsupported_image",
                   4: "url_http_status", 5: "url_too_many_redirects"}


def test_http_can_be_turned_off(start_server, images):
    base, _ = images
    s = start_server("--url-allow", "127.0.0.2/32", "--url-http=false")
    assert outcome(stream_v2(s, [item(base + "/small.png")])) == {0: "url_forbidden"}


@pytest.mark.parametrize("body,status,code", [
    ({"data": [{"image_url": "http://x/a.png"}]}, 401, "missing_api_key"),
    ("KEY", 422, "no_files"),                                     # no data
    ({"data": []}, 422, "no_files"),
    ({"data": [{"filename": "a.png"}]}, 422, "invalid_item"),
    ({"data": [{"image_url": 5}]}, 422, "invalid_item"),
    ({"data": [{"image_url": "http://x/a.png", "is_yolo": "yes"}]}, 422, "invalid_item"),
    ({"data": [{"image_url": "http://x/a.png", "colour": True}]}, 422, "invalid_item"),
    ({"data": ["http://x/a.png"]}, 422, "invalid_item"),
    ({"data": {"image_url": "http://x"}}, 422, "invalid_field"),
    ({"data": [{"image_url": "http://x/a.png"}], "extra": 1}, 422, "unknown_field"),
    ({"data": [{"image_url": "http://x/a.png"}], "query": 7}, 422, "invalid_field"),
    ([1, 2], 422, "invalid_body"),
])
def test_v2_validation(v2server, body, status, code):
    if body == "KEY":
        body = {"query": "x"}
    headers = {} if status == 401 else {"X-API-Key": v2server.key}
    r = httpx.post(v2server.url + V2, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["code"] == code


def test_v2_malformed_and_wrong_type(v2server):
    r = httpx.post(v2server.url + V2, content=b'{"api_key": "x", "data": [', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"]["code"] == "malformed_json"
    r = httpx.post(v2server.url + V2, data={"api_key": v2server.key})
    assert r.status_code == 415


def test_batch_v1_answers_once_in_request_order(v2server):
    files = [("a.png", png_bytes(3, 3)), ("bad.jpg", b"nope"), ("c.png", png_bytes(4, 2))]
    meta = [json.dumps({"is_yolo": False, "is_llm": False})] * 3
    r = httpx.post(v2server.url + BATCH, timeout=60, **multipart(v2server.key, files, meta))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert "chunked" not in r.headers.get("transfer-encoding", "")
    body = r.json()
    assert body["code"] == 0
    out = body["result"]["files"]
    assert [f["filename"] for f in out] == ["a.png", "bad.jpg", "c.png"]
    assert [f["status"] for f in out] == ["done", "error", "done"]
    assert out[2]["result"]["image"]["width"] == 4
    assert body["result"]["complete"]["total"] == 3 and body["result"]["complete"]["failed"] == 1


def test_batch_v2(v2server, images):
    base, _ = images
    r = httpx.post(v2server.url + BATCH_V2, timeout=60,
                   json={"api_key": v2server.key, "data": [item(base + "/small.png"), item("file:///etc/passwd")]})
    assert r.status_code == 200
    out = r.json()["result"]["files"]
    assert out[0]["status"] == "done" and out[1]["error"]["code"] == "url_forbidden"


def test_spec_style_v2_client(v2server, images):
    """The spec's Python v2 client, unchanged but for the base URL."""
    base, _ = images

    def predict_stream_v2(api_key, query, data):
        payload = {"api_key": api_key, "query": query, "data": data}
        with httpx.Client() as client:
            with client.stream("POST", v2server.url + "/api/v1/inference/predict/stream/v2", json=payload) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)

    chunks = list(predict_stream_v2(v2server.key, "Describe the scene",
                                    [{"image_url": base + "/street.jpg", "filename": "photo.jpg", "is_yolo": False,
                                      "is_llm": False}]))
    assert [c["status"] for c in chunks] == ["processing", "done", "complete"]
