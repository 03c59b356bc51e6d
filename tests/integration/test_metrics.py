"""What an operator scrapes and ships: /metrics parsed with the Prometheus
client library's own text-format parser (Debian python3-prometheus-client),
its types, and its counters moving as requests are served; and the JSON log
(--log-format json), one object a line, each line of a request with its id."""
import http.server
import json
import re
import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, SIGHTD, V1, multipart, photo, png_bytes
from fake_openai import FakeOpenAI

V2 = "/api/v1/inference/predict/stream/v2"
YOLO = json.dumps({"is_yolo": True})
LLM = json.dumps({"is_yolo": False, "is_llm": True})
API_KEY = "sk-test-0123456789abcdef"
BUILTIN = REPO / "share" / "models" / "yolox-nano.onnx"

# Every family the page must hold, by the type the parser gives it (counters
# are named without _total, as the parser names them).
TYPES = {
    "sight_http_requests": "counter",
    "sight_files": "counter",
    "sight_requests_refused": "counter",
    "sight_limits_redis_errors": "counter",
    "sight_connections_cut": "counter",
    "sight_llm_tokens": "counter",
    "sight_stream_progress_dropped": "counter",
    "sight_request_duration_seconds": "histogram",
    "sight_stage_duration_seconds": "histogram",
    "sight_queue_wait_seconds": "histogram",
    "sight_fetch_duration_seconds": "histogram",
    "sight_requests_in_flight": "gauge",
    "sight_connections_open": "gauge",
    "sight_workers": "gauge",
    "sight_workers_busy": "gauge",
    "sight_model_info": "gauge",
    "sight_build_info": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


class Page:
    """One scrape, parsed."""

    def __init__(self, server):
        r = httpx.get(server.url + "/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        self.text = r.text
        self.families = {f.name: f for f in text_string_to_metric_families(r.text)}

    def samples(self, family, sample=None, **labels):
        """The samples called sample (default: the family's own, or _total for
        a counter) whose labels include labels."""
        f = self.families[family]
        sample = sample or (family + "_total" if f.type == "counter" else family)
        return [s for s in f.samples if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, family, sample=None, **labels):
        found = [s for s in self.samples(family, sample, **labels) if "le" not in s.labels or "le" in labels]
        assert len(found) == 1, (family, sample, labels, found)
        return found[0].value

    def hist(self, family, **labels):
        """(count, sum) of one histogram series."""
        return self.value(family, family + "_count", **labels), self.value(family, family + "_sum", **labels)


def check_page(page):
    for name, kind in TYPES.items():
        assert name in page.families, f"{name} missing from /metrics"
        assert page.families[name].type == kind, (name, page.families[name].type)
    # Every sample belongs to a family with HELP and TYPE: none comes out untyped.
    assert all(f.type != "unknown" and f.documentation for f in page.families.values()), \
        [f.name for f in page.families.values() if f.type == "unknown" or not f.documentation]
    # Histograms: per series, buckets ascending in le, cumulative, +Inf equal to _count.
    for f in page.families.values():
        if f.type != "histogram":
            continue
        series = {}
        for s in f.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {"buckets": []})
            if s.name.endswith("_bucket"):
                series[key]["buckets"].append((float(s.labels["le"]), s.value))
            else:
                series[key][s.name[len(f.name) + 1:]] = s.value
        assert series, f.name
        for key, sr in series.items():
            les = [le for le, _ in sr["buckets"]]
            counts = [n for _, n in sr["buckets"]]
            assert les == sorted(les) and les[-1] == float("inf"), (f.name, key, les)
            assert counts == sorted(counts), (f.name, key, counts)
            assert counts[-1] == sr["count"], (f.name, key)
            assert sr["sum"] >= 0


def stream(server, path, headers=None, **kw):
    lines = []
    with httpx.Client(timeout=60) as c, c.stream("POST", server.url + path, headers=headers, **kw) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.strip():
                lines.append(json.loads(line))
    assert lines[-1]["status"] == "complete"
    return r, lines


def wait_for(fn, timeout=10):
    """fn() until it is true (the connection count settles once libmicrohttpd
    has cleaned up a closed connection)."""
    deadline = time.time() + timeout
    while not fn() and time.time() < deadline:
        time.sleep(0.05)
    return fn()


def test_page_types_and_counters_move_with_predictions(start_server):
    t_start = time.time()
    s = start_server("--workers", "2")
    before = Page(s)
    check_page(before)
    version = subprocess.run([SIGHTD, "version"], capture_output=True, text=True).stdout.split()[1]
    assert before.value("sight_build_info", version=version) == 1
    assert before.value("sight_model_info", name="yolox-nano", layout="yolox", task="detect") == 1
    assert before.value("sight_workers", pool="cpu") == 2
    # Standard process metrics, as the client libraries report them.
    assert before.value("process_resident_memory_bytes") > 10e6
    assert before.value("process_virtual_memory_bytes") >= before.value("process_resident_memory_bytes")
    assert 5 < before.value("process_open_fds") <= before.value("process_max_fds")
    assert t_start - 5 < before.value("process_start_time_seconds") < time.time() + 1
    cpu0 = before.value("process_cpu_seconds")
    assert cpu0 > 0

    n = 3
    street = photo("opencv_scenetext01.jpg")
    for i in range(n):
        _, lines = stream(s, V1, **multipart(s.key, [(f"s{i}.jpg", street, "image/jpeg")], [YOLO]))
        assert lines[-2]["status"] == "done"
    # A wrong key: counted by route and status.
    assert httpx.post(s.url + V1, **multipart("sk-wrong", [("a.png", png_bytes(8, 8))], [YOLO])).status_code == 401

    after = Page(s)
    check_page(after)

    def moved(family, **labels):
        old = before.samples(family, **labels)
        return after.value(family, **labels) - (old[0].value if old else 0)

    assert moved("sight_http_requests", route="predict_v1", status="200") == n
    assert moved("sight_http_requests", route="predict_v1", status="401") == 1
    assert moved("sight_files", outcome="done") == n
    # Request durations: one per request, each at least its stage times.
    count0, sum0 = before.hist("sight_request_duration_seconds", route="predict_v1")
    count1, sum1 = after.hist("sight_request_duration_seconds", route="predict_v1")
    assert count1 - count0 == n + 1
    yolo_count0, yolo_sum0 = before.hist("sight_stage_duration_seconds", stage="yolo")
    yolo_count1, yolo_sum1 = after.hist("sight_stage_duration_seconds", stage="yolo")
    assert yolo_count1 - yolo_count0 == n
    assert sum1 - sum0 >= yolo_sum1 - yolo_sum0 > 0
    # Queue wait: each file, once, on the CPU pool; nothing still busy.
    assert after.hist("sight_queue_wait_seconds", pool="cpu")[0] - before.hist("sight_queue_wait_seconds", pool="cpu")[0] == n
    assert after.hist("sight_queue_wait_seconds", pool="llm")[0] == 0
    assert after.value("sight_workers_busy", pool="cpu") == 0
    assert after.value("sight_requests_in_flight") == 0
    assert after.value("process_cpu_seconds") > cpu0
    assert moved("sight_http_requests", route="metrics", status="200") >= 1


def test_connections_open_follows_the_sockets(start_server):
    s = start_server()
    base = Page(s).value("sight_connections_open")  # counts the scrape's own connection
    socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(5)]
    try:
        assert wait_for(lambda: Page(s).value("sight_connections_open") == base + 5), Page(s).value("sight_connections_open")
    finally:
        for k in socks:
            k.close()
    assert wait_for(lambda: Page(s).value("sight_connections_open") == base), Page(s).value("sight_connections_open")


def test_llm_tokens_and_the_llm_pool(start_server):
    fake = FakeOpenAI(api_key=API_KEY)
    try:
        fake.script = lambda req: ("stream", ["The serial ", "number is ", "AB12."], {})
        s = start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "200",
                         env={"SIGHT_LLM_API_KEY": API_KEY})
        before = Page(s)
        assert before.value("sight_llm_tokens", direction="prompt") == 0
        img = png_bytes(300, 200, pixel=lambda x, y: ((x * 3) % 256, (y * 5) % 256, 128))
        for i in range(2):
            _, lines = stream(s, V1, **multipart(s.key, [(f"l{i}.png", img, "image/png")], [LLM], query="serial?"))
            done = next(m for m in lines if m["status"] == "done")
            assert done["result"]["llm"]["usage"]["completion_tokens"] == 3
        assert not fake.errors, fake.errors
        after = Page(s)
        check_page(after)
        # The fake reports 812 prompt tokens and one completion token per piece.
        assert after.value("sight_llm_tokens", direction="prompt") == 2 * 812
        assert after.value("sight_llm_tokens", direction="completion") == 2 * 3
        assert after.hist("sight_stage_duration_seconds", stage="llm")[0] == 2
        # Decoded on the CPU pool, then handed to an llm thread: a wait in each queue.
        assert after.hist("sight_queue_wait_seconds", pool="llm")[0] == 2
        assert after.value("sight_workers", pool="llm") >= 1
        assert after.value("sight_workers_busy", pool="llm") == 0
    finally:
        fake.close()


class ImageHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = png_bytes(64, 48)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path != "/slow.png":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(0.3)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def image_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), ImageHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.2:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fetch_durations_by_outcome(start_server, image_server):
    s = start_server("--model", "none", "--url-allow", "127.0.0.2/32")
    before = Page(s)
    assert not before.samples("sight_model_info")  # detection off: no model served
    data = [{"image_url": image_server + "/slow.png", "is_yolo": False, "is_llm": False},
            {"image_url": image_server + "/missing.png", "is_yolo": False, "is_llm": False}]
    _, lines = stream(s, V2, json={"api_key": s.key, "query": "q", "data": data})
    outcomes = {m["index"]: m.get("error", {}).get("code", "ok") for m in lines if m["status"] in ("done", "error")}
    assert outcomes == {0: "ok", 1: "url_http_status"}
    after = Page(s)
    check_page(after)
    ok_count, ok_sum = after.hist("sight_fetch_duration_seconds", outcome="ok")
    assert ok_count == 1 and 0.3 <= ok_sum < 10
    assert after.hist("sight_fetch_duration_seconds", outcome="error")[0] == 1
    assert after.hist("sight_fetch_duration_seconds", outcome="cancelled")[0] == 0
    # The stream took at least its slowest download.
    assert after.hist("sight_request_duration_seconds", route="predict_v2")[1] >= 0.3


def test_model_info_follows_a_reload(start_server, tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    (d / "cam1.onnx").write_bytes(BUILTIN.read_bytes())
    s = start_server("--models-dir", str(d))

    def names():
        return sorted(x.labels["name"] for x in Page(s).samples("sight_model_info"))
    assert names() == ["cam1"]
    # A name the text format must escape (a quote and a backslash) reads back whole.
    (d / 'odd"cam\\2.onnx').write_bytes(BUILTIN.read_bytes())
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: names() == ["cam1", 'odd"cam\\2']), names()
    page = Page(s)
    check_page(page)
    assert page.value("sight_model_info", name='odd"cam\\2', layout="yolox", task="detect") == 1


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_json_log_one_object_a_line_with_request_ids(start_server):
    fake = FakeOpenAI(api_key=API_KEY)
    calls = []

    def script(req):
        # The first call fails and is retried: the retry's warning is written
        # by the llm worker thread, which names the request too.
        calls.append(req)
        if len(calls) == 1:
            return ("status", 503, {"error": {"message": "busy"}}, {})
        return ("stream", ["ok"], {})
    fake.script = script
    try:
        s = start_server("--log-format", "json", "--llm-url", fake.url, "--llm-model", fake.model,
                         env={"SIGHT_LLM_API_KEY": API_KEY})
        img = png_bytes(64, 48)
        # A proxy's id is kept; a request without one gets its own.
        r1, _ = stream(s, V1, headers={"X-Request-Id": "proxy-7f3a.1"},
                       **multipart(s.key, [("a.png", img, "image/png")], [LLM], query="what?"))
        assert r1.headers["x-request-id"] == "proxy-7f3a.1"
        r2, _ = stream(s, V1, **multipart(s.key, [("b.png", img, "image/png")], [YOLO]))
        generated = r2.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", generated)
        # An unsafe one is replaced, never written to the log.
        r3 = httpx.get(s.url + "/healthz", headers={"X-Request-Id": 'evil"id\\with{json}'})
        assert r3.headers["x-request-id"] != 'evil"id\\with{json}'
        # A message that quotes the client: a decoded newline, quotes and bytes
        # that are not UTF-8 stay inside one record.
        r4 = httpx.get(s.url + "/nope%0A%22x%22%FF")
        assert r4.status_code == 404
        refused = httpx.post(s.url + V1, **multipart("sk-wrong", [("a.png", img)], [YOLO]))
        assert refused.status_code == 401
        refused_id = refused.headers["x-request-id"]
    finally:
        rc = s.stop() if "s" in locals() else 0
        fake.close()
    assert rc == 0
    raw = s.log_path.read_bytes()
    records = []
    for line in raw.decode("utf-8").split("\n")[:-1]:  # every line, the last one ended too
        rec = json.loads(line)  # each line a whole JSON object
        assert isinstance(rec, dict), line
        assert RFC3339_MS.match(rec["ts"]), rec
        assert rec["level"] in ("error", "warn", "info", "debug"), rec
        assert isinstance(rec["msg"], str) and rec["msg"], rec
        records.append(rec)
    assert raw.endswith(b"\n") and len(records) > 10

    def lines_of(rid):
        return [r["msg"] for r in records if r.get("request_id") == rid]

    mine = lines_of("proxy-7f3a.1")
    assert "streaming 1 file(s)" in mine, mine
    assert any(m.startswith("llm: ") and "retrying" in m for m in mine), mine  # from the llm worker
    assert "streaming 1 file(s)" in lines_of(generated)
    assert any(m.startswith("401 invalid_api_key") for m in lines_of(refused_id)), lines_of(refused_id)
    assert not any('evil"id' in json.dumps(r) for r in records)
    quoted = [r["msg"] for r in records if r["msg"].startswith("404 not_found")]
    assert any('/nope\n"x"\ufffd' in m for m in quoted), quoted
    # The start-up lines belong to no request.
    assert any(r["msg"].startswith("sightd ") and "request_id" not in r for r in records)


def test_log_format_is_checked(tmp_path):
    r = subprocess.run([SIGHTD, "serve", "--log-format", "yaml", "--db", str(tmp_path / "k.db")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--log-format wants text or json, got 'yaml'" in r.stderr
