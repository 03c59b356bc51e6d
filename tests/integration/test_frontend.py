"""The event-driven front end (issue 15): connections and open streams cost
memory, not threads; keep-alive; early refusals that read the body.

The scale tests print their figures (run with -s to see them): memory per idle
connection, thread counts, latency ratios."""
import asyncio
import json
import os
import resource
import select
import socket
import statistics
import threading
import time

import httpx
import pytest

from conftest import SIGHTD, V1, png_bytes
from fake_openai import FakeOpenAI

V2 = V1 + "/v2"
META_PLAIN = json.dumps({"is_yolo": False, "is_llm": False})
META_YOLO = json.dumps({"is_yolo": True, "is_llm": False})
META_LLM = json.dumps({"is_yolo": False, "is_llm": True})


def sanitized():
    """A sanitizer build (ASan or TSan): its shadow memory and redzones make memory figures meaningless."""
    with open(SIGHTD, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def threads(s):
    return proc_status(s.proc.pid, "Threads")


def rss_kib(s):
    return proc_status(s.proc.pid, "VmRSS")


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the open-file hard limit {hard} is below {need}")


def predict(s, meta=META_YOLO, size=(320, 240)):
    """One v1 prediction on a fresh connection; its seconds. Fails unless it completes."""
    t0 = time.monotonic()
    r = httpx.post(s.url + V1, timeout=30, headers={"X-API-Key": s.key},
                   data={"metadata": meta}, files=[("files", ("a.png", png_bytes(*size)))])
    assert r.status_code == 200, r.text
    assert json.loads(r.text.splitlines()[-1])["succeeded"] == 1, r.text
    return time.monotonic() - t0


def idle_median(s, n=9):
    predict(s)  # warm-up: the model's first Run
    return statistics.median(predict(s) for _ in range(n))


class Sampler:
    """Peak thread count of the server while it runs."""

    def __init__(self, s):
        self.s, self.peak, self.stop = s, threads(s), threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, threads(self.s))
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak


# Keep-alive -------------------------------------------------------------------

def test_gets_and_predictions_share_one_connection(server):
    """50 GETs and 5 predictions (streams and a batch) over one TCP connection."""
    ports = set()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for i in range(50):
            r = c.get(["/healthz", "/readyz", "/metrics", "/"][i % 4])
            assert r.status_code == 200, r.text
            assert r.headers.get("connection", "").lower() != "close"
            ports.add(r.extensions["network_stream"].get_extra_info("socket").getsockname()[1])
        for i in range(5):
            path = V1 if i < 4 else "/api/v1/inference/predict/batch"
            with c.stream("POST", path, headers={"X-API-Key": server.key}, data={"metadata": META_PLAIN},
                          files=[("files", ("a.png", png_bytes(8, 8)))]) as r:
                body = r.read()
                assert r.status_code == 200, body
                ports.add(r.extensions["network_stream"].get_extra_info("socket").getsockname()[1])
            if i < 4:
                assert json.loads(body.splitlines()[-1])["succeeded"] == 1
            else:
                assert json.loads(body)["result"]["complete"]["succeeded"] == 1
    assert len(ports) == 1, ports


@pytest.mark.parametrize("path,status", [("/nope", 404), ("/healthz", 405)])
def test_early_refusal_reads_the_body_and_keeps_the_connection(server, path, status):
    """A 404/405 to a request with a large body: the answer, not a reset, and the
    connection serves the next request."""
    body = b"x" * (4 << 20)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode())
    sock.sendall(body)  # a server that answered and closed first would reset this
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while got.count(b"HTTP/1.1 ") < 2 or not got.endswith(b'{"status":"ok"}\n'):
        d = sock.recv(65536)
        assert d, got
        got += d
    sock.close()
    assert got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200]
    assert b"Connection: close" not in got
    assert b"HTTP/1.1 200 OK" in got


# Capacity -------------------------------------------------------------------

def test_per_address_connection_limit(start_server):
    s = start_server("--max-connections-per-ip", "5", "--header-timeout", "30")
    socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(5)]
    try:
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert extra.recv(100) == b""  # closed at once, no answer
        except ConnectionResetError:
            pass
        extra.close()
    finally:
        for k in socks:
            k.close()
    time.sleep(0.3)
    assert httpx.get(s.url + "/healthz").status_code == 200
    assert "open-file limit" in s.log_text()


def test_ten_thousand_idle_connections(start_server):
    """10,000 connections with half-sent headers are held while predictions on
    other connections keep their idle speed; threads stay as they were."""
    n = 10_000
    raise_fd_limit(n + 2000)
    s = start_server("--header-timeout", "300", "--max-connections", str(n + 100))
    base = idle_median(s)
    t_before, rss_before = threads(s), rss_kib(s)
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            k = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            k.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
            socks.append(k)
        opened = time.monotonic() - t0
        time.sleep(1.0)
        rss_idle = rss_kib(s)
        during = [predict(s) for _ in range(9)]
        t_during = threads(s)
        # Every idle connection is still open: none readable (no answer, no EOF).
        p = select.poll()
        for k in socks:
            p.register(k, select.POLLIN | select.POLLHUP | select.POLLERR)
        assert p.poll(0) == []
        per_conn = (rss_idle - rss_before) * 1024 / n
        med = statistics.median(during)
        print(f"\n10k idle: opened in {opened:.1f} s; memory per idle connection {per_conn / 1024:.1f} KiB "
              f"(RSS {rss_before} -> {rss_idle} KiB); threads {t_before} -> {t_during}; prediction median "
              f"idle {base * 1000:.0f} ms, with 10k idle {med * 1000:.0f} ms (x{med / base:.2f})")
        assert t_during == t_before
        assert med <= 2 * base + 0.01, (base, during)
        assert per_conn <= 16 * 1024 or sanitized(), per_conn
    finally:
        for k in socks:
            k.close()


def test_slowloris_does_not_delay_predictions(start_server):
    """300 connections that send a byte of their head now and then."""
    raise_fd_limit(2000)
    s = start_server("--header-timeout", "60")
    base = idle_median(s, 5)
    socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(300)]
    stop = threading.Event()

    def drip():
        msg = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        i = 0
        while not stop.is_set():
            for k in socks:
                k.send(msg[i:i + 1])
            i += 1
            stop.wait(0.2)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        time.sleep(1)
        during = [predict(s) for _ in range(5)]
        print(f"\nslowloris 300: prediction idle median {base * 1000:.0f} ms, during max {max(during) * 1000:.0f} ms")
        assert max(during) <= base + 1.0, (base, during)
    finally:
        stop.set()
        t.join()
        for k in socks:
            k.close()


# Many open streams ---------------------------------------------------------

def dechunk(b):
    out, i = b"", 0
    while True:
        j = b.index(b"\r\n", i)
        size = int(b[i:j].split(b";")[0], 16)
        if size == 0:
            return out
        out += b[j + 2:j + 2 + size]
        i = j + 2 + size + 2


async def one_stream(port, path, body, ctype):
    """One streamed request (Connection: close); its NDJSON lines."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:300]
    text = dechunk(rest) if b"chunked" in head.lower() else rest
    return [json.loads(x) for x in text.splitlines() if x.strip()]


async def many(port, path, body, ctype, n):
    return await asyncio.gather(*(one_stream(port, path, body, ctype) for _ in range(n)))


def run_streams(s, path, body, ctype, n):
    sampler = Sampler(s)
    t0 = time.monotonic()
    results = asyncio.run(many(s.port, path, body, ctype, n))
    took = time.monotonic() - t0
    return results, took, sampler.done()


def test_a_thousand_v2_streams_on_a_slow_image_host(start_server):
    raise_fd_limit(5000)
    png = png_bytes(16, 16)
    ready = threading.Event()
    info = {}

    async def handle(r, w):
        await r.readuntil(b"\r\n\r\n")
        await asyncio.sleep(2.0)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " + str(len(png)).encode() +
                b"\r\nConnection: close\r\n\r\n" + png)
        await w.drain()
        w.close()

    def host():
        async def main():
            srv = await asyncio.start_server(handle, "127.0.0.2", 0, backlog=2048)
            info["port"] = srv.sockets[0].getsockname()[1]
            info["loop"] = asyncio.get_running_loop()
            info["stop"] = asyncio.Event()
            ready.set()
            await info["stop"].wait()
            srv.close()
        asyncio.run(main())

    t = threading.Thread(target=host, daemon=True)
    t.start()
    ready.wait(10)
    s = start_server("--model", "none", "--url-allow", "127.0.0.2/32", "--max-inflight", "1100",
                     "--max-inflight-per-key", "1100",
                     "--url-timeout", "60")
    idle = threads(s)
    n = 1000
    body = json.dumps({"api_key": s.key, "query": "q", "data": [
        {"image_url": f"http://127.0.0.2:{info['port']}/slow.png", "is_yolo": False, "is_llm": False}]}).encode()
    try:
        results, took, peak = run_streams(s, V2, body, "application/json", n)
    finally:
        info["loop"].call_soon_threadsafe(info["stop"].set)
    print(f"\n{n} v2 streams on a 2 s image host: all done in {took:.1f} s; threads idle {idle}, peak {peak}")
    assert len(results) == n
    for lines in results:
        assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == 1, lines
    assert peak <= idle + 2, (idle, peak)  # libcurl's resolver may add a short-lived thread


def test_two_hundred_v1_streams_on_a_slow_llm(start_server):
    raise_fd_limit(2000)
    fake = FakeOpenAI(api_key="sk-fake")
    fake.script = lambda req: ("stream", ["The ", "answer ", "is ", "here."], {"delay": 0.1})
    try:
        s = start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "64",
                         "--llm-concurrency", "50", "--max-inflight", "300", "--max-inflight-per-key", "300",
                         "--llm-timeout", "60",
                         env={"SIGHT_LLM_API_KEY": "sk-fake"})
        idle = threads(s)
        req = httpx.Request("POST", s.url + V1, data={"api_key": s.key, "metadata": META_LLM, "query": "q"},
                            files=[("files", ("a.png", png_bytes(32, 32)))])
        body = req.read()
        n = 200
        results, took, peak = run_streams(s, V1, body, req.headers["content-type"], n)
        print(f"\n{n} v1 streams on a dripping LLM: all done in {took:.1f} s; threads idle {idle}, peak {peak}")
        assert not fake.errors, fake.errors[:3]
        for lines in results:
            done = next(m for m in lines if m["status"] == "done")
            assert done["result"]["llm"]["response"] == "The answer is here."
            assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == 1
        assert peak <= idle + 2, (idle, peak)
    finally:
        fake.close()
