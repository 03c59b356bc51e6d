"""Per-key rate limits, quotas, concurrency caps and the usage ledger, against
a real server and its real SQLite store."""
import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest

from conftest import SIGHTD, V1, Server, multipart, png_bytes
from fake_openai import FakeOpenAI

PLAIN = json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": False})
YOLO = json.dumps({"is_yolo": True, "is_ocr": False, "is_llm": False})
LLM_API_KEY = "sk-test-0123456789abcdef"


def small_png():
    return png_bytes(64, 48)


def predict(s, nfiles=1, meta=PLAIN, key=None, timeout=60):
    """One v1 stream with the key in a header; returns (response, lines)."""
    files = [(f"f{i}.png", small_png(), "image/png") for i in range(nfiles)]
    form = multipart(None, files, [meta] * nfiles)
    with httpx.Client(timeout=timeout) as c:
        r = c.post(s.url + V1, headers={"X-API-Key": key or s.key}, **form)
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()] if r.status_code == 200 else []
    return r, lines


def error_code(r):
    return r.json()["detail"]["code"]


def usage(s, key=None, **params):
    r = httpx.get(s.url + "/api/v1/usage", headers={"Authorization": f"Bearer {key or s.key}"}, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def today():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def key_id(s, name="test"):
    for line in s.keys("list").splitlines()[1:]:
        if line.split()[2] == name:
            return line.split()[0]
    raise AssertionError(name)


def test_exact_count_of_a_30_per_minute_key(start_server):
    s = start_server()
    s.keys("update", key_id(s), "--rate", "30/min")
    # 45 quick requests at once: a token comes back every 2 s, far longer than they
    # take on an idle machine (exactly 30 then); on a machine so loaded that they
    # take longer, GCRA rightly admits one more for each 2 s that passed.
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: predict(s), range(45)))
    refills = int((time.monotonic() - t0) // 2)
    ok = [r for r, lines in results if r.status_code == 200]
    refused = [r for r, _ in results if r.status_code != 200]
    assert 30 <= len(ok) <= 30 + refills, (len(ok), refills)
    assert len(refused) == 45 - len(ok)
    for r in refused:
        assert r.status_code == 429
        assert error_code(r) == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 2
        assert r.headers["RateLimit-Policy"] == '"rate";q=30;w=60'
        assert r.headers["RateLimit"].startswith('"rate";r=0;t=')
    for r, lines in results:
        if r.status_code == 200:
            assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == 1
            assert r.headers["RateLimit-Policy"] == '"rate";q=30;w=60'
    # Refusals are not use; the 30 served are.
    day = usage(s)["usage"][-1]
    assert day["date"] == today()
    n = len(ok)
    assert day["requests"] == n and day["files"] == n and day["succeeded"] == n
    assert s.metric('sight_requests_refused_total{code="rate_limited"}') == 45 - n


def test_burst(start_server):
    s = start_server()
    s.keys("update", key_id(s), "--rate", "1/h", "--burst", "3")
    codes = [predict(s)[0].status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = predict(s)[0]
    assert error_code(r) == "rate_limited"
    assert int(r.headers["Retry-After"]) > 1000  # one token an hour


def test_image_quota_refuses_whole_requests(start_server):
    s = start_server()
    s.keys("update", key_id(s), "--quota-images", "5/day")
    assert predict(s, 3)[0].status_code == 200
    r, _ = predict(s, 3)  # 3 + 3 > 5: refused whole, before any work
    assert r.status_code == 429 and error_code(r) == "quota_exceeded"
    assert 0 < int(r.headers["Retry-After"]) <= 86400
    assert predict(s, 2)[0].status_code == 200  # exactly 5
    r, _ = predict(s, 1)
    assert r.status_code == 429 and error_code(r) == "quota_exceeded"
    day = usage(s)["usage"][-1]
    assert day["files"] == 5 and day["requests"] == 2
    assert usage(s)["key"]["limits"]["quota_images"] == "5/day"
    # The form's key is checked the same way, once the form is read.
    form = multipart(s.key, [("a.png", small_png(), "image/png")], [PLAIN])
    r = httpx.post(s.url + V1, timeout=30, **form)
    assert r.status_code == 429 and error_code(r) == "quota_exceeded"
    assert s.metric('sight_requests_refused_total{code="quota_exceeded"}') == 3


@pytest.fixture
def fake():
    f = FakeOpenAI(api_key=LLM_API_KEY)
    yield f
    f.close()


def llm_server(start_server, fake, *extra):
    return start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "200",
                        "--llm-timeout", "20", *extra, env={"SIGHT_LLM_API_KEY": LLM_API_KEY})


def test_llm_token_quota(start_server, fake):
    fake.script = lambda req: ("stream", ["A cat."], {"usage": {"prompt_tokens": 700, "completion_tokens": 350,
                                                                "total_tokens": 1050}})
    s = llm_server(start_server, fake)
    s.keys("update", key_id(s), "--quota-llm-tokens", "1000/day")
    llm = json.dumps({"is_yolo": True, "is_llm": True})
    r, lines = predict(s, 1, llm)
    assert lines[-1]["succeeded"] == 1
    day = usage(s)["usage"][-1]
    assert day["llm_calls"] == 1 and day["llm_prompt_tokens"] == 700 and day["llm_completion_tokens"] == 350
    # Spent: is_llm files end in llm_quota_exceeded, other files still run.
    files = [("a.png", small_png(), "image/png"), ("b.png", small_png(), "image/png")]
    form = multipart(None, files, [llm, YOLO])
    r = httpx.post(s.url + V1, headers={"X-API-Key": s.key}, timeout=60, **form)
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    ends = {m["index"]: m for m in lines if m["status"] in ("done", "error")}
    assert ends[0]["status"] == "error" and ends[0]["error"]["code"] == "llm_quota_exceeded"
    assert ends[1]["status"] == "done" and "yolo" in ends[1]["result"]
    assert len(fake.requests) == 1  # the provider was not called again


def test_concurrency_with_a_long_stream_open(start_server, fake):
    fake.script = lambda req: ("stream", ["one ", "two ", "three ", "four."], {"delay": 0.5})
    s = llm_server(start_server, fake)
    s.keys("update", key_id(s), "--max-concurrent", "1")
    meta = json.dumps({"is_yolo": False, "is_llm": True})
    form = multipart(None, [("a.png", small_png(), "image/png")], [meta])
    with httpx.Client(timeout=60) as c, c.stream("POST", s.url + V1, headers={"X-API-Key": s.key}, **form) as st:
        assert st.status_code == 200
        lines = st.iter_lines()
        next(lines)  # the stream is open
        r, _ = predict(s)
        assert r.status_code == 429 and error_code(r) == "concurrency_limited"
        assert "Retry-After" in r.headers
        rest = [json.loads(x) for x in lines if x.strip()]
        assert rest[-1]["status"] == "complete"
    deadline = time.time() + 5
    while True:  # the slot is freed once the stream's request has ended
        r, _ = predict(s)
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 200
    assert s.metric('sight_requests_refused_total{code="concurrency_limited"}') >= 1


def test_usage_equals_what_was_served(start_server):
    s = start_server()
    served = [predict(s, n, YOLO) for n in (1, 2, 3)]
    bad = [("x.png", b"not an image", "image/png")]
    r = httpx.post(s.url + V1, headers={"X-API-Key": s.key}, timeout=30, **multipart(None, bad, [PLAIN]))
    assert r.status_code == 200
    rep = usage(s)
    assert rep["key"]["name"] == "test" and rep["key"]["limits"]["rate"] is None
    day = rep["usage"][-1]
    assert day["date"] == today()
    assert day["requests"] == 4 and day["files"] == 7
    assert day["succeeded"] == 6 and day["failed"] == 1 and day["yolo_runs"] == 6
    assert abs(day["megapixels"] - 6 * 64 * 48 / 1e6) < 1e-6
    assert day["bytes_in"] == 6 * len(small_png()) + len(b"not an image")
    assert sum(len([m for m in lines if m["status"] == "done"]) for _, lines in served) == 6
    # A range: one entry per day, ascending, zeros where nothing was used.
    rng = usage(s, **{"from": "2020-01-01", "to": "2020-01-03"})["usage"]
    assert [d["date"] for d in rng] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert all(d["requests"] == 0 for d in rng)
    assert httpx.get(s.url + "/api/v1/usage", params={"api_key": s.key, "from": "2020-13-01"}).status_code == 422
    assert httpx.get(s.url + "/api/v1/usage").status_code == 401
    assert httpx.get(s.url + "/api/v1/usage", params={"api_key": s.key}).status_code == 200
    # The CLI reports the same.
    out = subprocess.run([SIGHTD, "usage", "--json", "--db", s.db], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert cli[0]["usage"][-1] == day


def test_sigkill_right_after_complete_keeps_the_request(tmp_path):
    s = Server(tmp_path)
    try:
        for _ in range(3):
            r, lines = predict(s, 2)
            assert lines[-1]["status"] == "complete"
        s.proc.send_signal(signal.SIGKILL)  # at once, no shutdown
        s.proc.wait(timeout=30)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        s.log.close()
    out = subprocess.run([SIGHTD, "usage", "--json", "--db", s.db], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    day = json.loads(out.stdout)[0]["usage"][-1]
    assert day["requests"] == 3 and day["files"] == 6 and day["succeeded"] == 6


def until(fn, want, within=1.0):
    """Calls fn until it returns want; the seconds that took and what it returned
    on the way (failing if want did not come within the time)."""
    t0, seen = time.monotonic(), []
    while True:
        seen.append(fn())
        if seen[-1] == want:
            return time.monotonic() - t0, seen
        assert time.monotonic() - t0 < within, seen


def test_keys_update_reaches_a_running_server_within_a_second(start_server):
    """The server caches verified keys (and their limits) in memory and drops
    them when the store's keys version moves, polled every 200 ms: a change
    by `sightd keys` in another process applies within a second."""
    s = start_server()
    assert predict(s)[0].status_code == 200
    assert predict(s)[0].status_code == 200  # now from the key cache
    assert s.metric('sight_key_lookups_total{source="cache"}') >= 1
    s.keys("update", key_id(s), "--rate", "1/h", "--burst", "1")
    took, seen = until(lambda: predict(s)[0].status_code, 429)
    # Old limits for at most a poll or two, then the new ones: 1 allowed, then 429.
    assert seen[-2:] == [200, 429], seen
    print(f"keys update seen after {took * 1000:.0f} ms ({len(seen)} requests)")
    s.keys("update", key_id(s), "--rate", "none")
    until(lambda: predict(s)[0].status_code, 200)
    assert "rate=" not in s.keys("list")


def test_keys_revoke_reaches_a_running_server_within_a_second(start_server):
    """A revoked key, cached by the server, is refused within a second on every
    route that takes a key (header key, form key, usage, models)."""
    s = start_server()
    key = s.keys("create", "--name", "short").strip()
    time.sleep(0.5)  # the creation empties the cache (a poll is 200 ms): what it holds from here stays
    img = [("a.png", small_png(), "image/png")]

    def header():
        return predict(s, key=key)[0].status_code

    def form():
        return httpx.post(s.url + V1, timeout=60, **multipart(key, img, [PLAIN])).status_code

    def get(path):
        return lambda: httpx.get(s.url + path, headers={"X-API-Key": key}, timeout=30).status_code

    routes = [header, form, get("/api/v1/usage"), get("/api/v1/models")]
    for f in routes:  # each verified, and then served from the cache
        assert f() == 200 and f() == 200
    cached = s.metric('sight_key_lookups_total{source="cache"}')
    assert cached >= 4, cached
    s.keys("revoke", key_id(s, "short"))
    took, seen = until(header, 401)
    print(f"keys revoke seen after {took * 1000:.0f} ms ({len(seen)} requests)")
    for f in routes:
        assert f() == 401
    r = httpx.get(s.url + "/api/v1/usage", headers={"X-API-Key": key})
    assert error_code(r) == "invalid_api_key"
    assert predict(s)[0].status_code == 200  # the other key is unaffected


@pytest.mark.parametrize("flags", [["--rate", "0/min"], ["--rate", "ten"], ["--quota-images", "5/week"],
                                   ["--burst", "-1"], ["--max-concurrent", "x"], ["--quota-llm-tokens", "1/year"],
                                   ["--rate"]])
def test_malformed_flag_values_exit_2(tmp_path, flags):
    db = str(tmp_path / "k.db")
    r = subprocess.run([SIGHTD, "keys", "create", "--name", "x", *flags, "--db", db], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert r.stdout == "" and ("rate" in r.stderr or "quota" in r.stderr or "burst" in r.stderr
                               or "concurrent" in r.stderr)
    r = subprocess.run([SIGHTD, "keys", "update", "1", *flags, "--db", db], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2


@pytest.mark.parametrize("flag", ["--default-rate=5/week", "--default-quota-images=0/day",
                                  "--default-max-concurrent=none2"])
def test_malformed_server_defaults_exit_2(tmp_path, flag):
    r = subprocess.run([SIGHTD, "serve", flag, "--db", str(tmp_path / "k.db"), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and flag.split("=")[0] in r.stderr


def test_keys_create_with_limits_and_list(tmp_path):
    db = str(tmp_path / "k.db")
    r = subprocess.run([SIGHTD, "keys", "create", "--name", "lim", "--rate", "10/s", "--burst", "20",
                        "--max-concurrent", "4", "--quota-images", "1000/month", "--quota-llm-tokens", "5000/day",
                        "--db", db], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("sk_") and len(r.stdout.strip().split()) == 1
    out = subprocess.run([SIGHTD, "keys", "list", "--db", db], capture_output=True, text=True, timeout=30).stdout
    assert "rate=10/s burst=20 max-concurrent=4 quota-images=1000/month quota-llm-tokens=5000/day" in out


def test_server_default_rate(start_server):
    s = start_server("--default-rate", "2/h")
    codes = [predict(s)[0].status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert usage(s)["key"]["limits"]["rate"] == "2/h"


# ---- a header key's limits before the body -----------------------------------

BIG = 8 * 2**20


def upload_until_answered(s, key, expect_continue=False):
    """Sends a prediction with the key in a header and an 8 MiB body in 64 KiB
    pieces, 10 ms apart, reading between the pieces. Returns (answer bytes,
    body bytes sent when the answer came, seconds from the headers to it)."""
    head = (f"POST {V1} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary=bbbb\r\nContent-Length: {BIG}\r\n"
            + ("Expect: 100-continue\r\n" if expect_continue else "") + "\r\n").encode()
    k = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    k.sendall(head)
    t0, sent, got = time.monotonic(), 0, b""
    piece = b"x" * 65536
    try:
        while sent < BIG and b"\r\n\r\n" not in got:
            k.settimeout(0.01)
            try:
                d = k.recv(65536)
                if not d:
                    break
                got += d
                continue
            except socket.timeout:
                pass
            if expect_continue:
                continue  # nothing is sent before a 100 Continue
            k.settimeout(10)
            k.sendall(piece)
            sent += len(piece)
        took = time.monotonic() - t0
        k.settimeout(5)
        while True:  # the rest of the answer, up to the server's close
            try:
                d = k.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            got += d
    finally:
        k.close()
    return got, sent, took


def check_early_429(got, sent, took):
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in lines[1:]}
    assert lines[0].startswith("HTTP/1.1 429"), got[:300]
    assert hdrs["connection"] == "close"
    assert int(hdrs["retry-after"]) >= 1
    assert hdrs["ratelimit-policy"] == '"rate";q=1;w=3600'
    assert hdrs["ratelimit"].startswith('"rate";r=0;t=')
    assert json.loads(body)["detail"]["code"] == "rate_limited"
    # Answered while the upload had barely begun: not after the 8 MiB.
    assert sent <= BIG // 4, (sent, took)


def test_rate_limited_header_key_is_answered_before_its_body(start_server):
    """A header key over its rate gets its 429 before it uploads the body:
    from the key cache at once, and for a key the cache does not hold (cold)
    once the key's check (on a key_check thread, the connection suspended
    before any body byte is read) is done."""
    s = start_server()
    s.keys("update", key_id(s), "--rate", "1/h", "--burst", "1")
    time.sleep(0.5)  # the update has emptied the cache (a poll is 200 ms): what it holds from here stays
    until(lambda: predict(s)[0].status_code, 429)  # the one allowed is spent; the key is cached
    cache0 = s.metric('sight_key_lookups_total{source="cache"}')
    store0 = s.metric('sight_key_lookups_total{source="store"}')
    got, sent, took = upload_until_answered(s, s.key)
    check_early_429(got, sent, took)
    assert s.metric('sight_key_lookups_total{source="cache"}') == cache0 + 1
    assert s.metric('sight_key_lookups_total{source="store"}') == store0
    print(f"\ncache hit: 429 after {sent} of {BIG} body bytes, {took * 1000:.0f} ms")

    # Cold: another key created moves the keys version, which empties the cache.
    s.keys("create", "--name", "other")
    time.sleep(0.6)
    got, sent, took = upload_until_answered(s, s.key)
    check_early_429(got, sent, took)
    assert s.metric('sight_key_lookups_total{source="store"}') == store0 + 1
    print(f"cold key: 429 after {sent} of {BIG} body bytes, {took * 1000:.0f} ms")

    # With Expect: 100-continue, no 100 and no body at all: the 429 alone.
    got, sent, _ = upload_until_answered(s, s.key, expect_continue=True)
    assert b"100 Continue" not in got
    check_early_429(got, sent, 0)
    assert sent == 0
    assert s.metric('sight_requests_refused_total{code="rate_limited"}') >= 4
    # The server goes on serving.
    assert httpx.get(s.url + "/healthz").status_code == 200


def test_admitted_header_key_uploads_as_before_after_a_cold_check(start_server):
    """A cold header key is checked with the connection suspended before its
    body is read; once admitted, the upload (100-continue or not) goes on and
    the stream is served."""
    s = start_server()
    s.keys("create", "--name", "other")  # whatever the cache held is dropped
    time.sleep(0.5)
    r, lines = predict(s)
    assert r.status_code == 200 and lines[-1]["succeeded"] == 1
    files = [("f.png", small_png(), "image/png")]
    with httpx.Client(timeout=60) as c:
        r = c.post(s.url + V1, headers={"X-API-Key": s.key, "Expect": "100-continue"},
                   **multipart(None, files, [PLAIN]))
    assert r.status_code == 200 and json.loads(r.text.splitlines()[-1])["succeeded"] == 1
    r = httpx.post(s.url + V1, headers={"X-API-Key": "sk_" + "x" * 43}, **multipart(None, files, [PLAIN]))
    assert r.status_code == 401 and error_code(r) == "invalid_api_key"
