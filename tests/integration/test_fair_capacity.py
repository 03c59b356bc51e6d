"""Clients that do not read their streams may not hoard the server: a request
gives its place in --max-inflight back once its work is done, what waits
unsent for a client is bounded (its next files wait while it is behind), a
stream held at that bound past --client-timeout is cut, and no key holds more
than half of --max-inflight by default."""
import json
import socket
import threading
import time
import uuid

import httpx
import pytest

from conftest import V1, png_bytes
from fake_openai import FakeOpenAI

LLM_API_KEY = "sk-test-fair-capacity"
PIECE = "0123456789abcdef" * 64  # 1 KiB per delta
YOLO = json.dumps({"is_yolo": True, "is_ocr": False, "is_llm": False})
LLM = json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": True})


def body_of(files, meta, fields=None, key=None):
    b = uuid.uuid4().hex
    out = bytearray()
    for name, value in ([("api_key", key)] if key else []) + list((fields or {}).items()):
        out += f'--{b}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for i, data in enumerate(files):
        out += f'--{b}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'.encode()
        out += (f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.png"\r\n'
                "Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return b, bytes(out)


def open_stream(server, key, files, meta, fields=None):
    """Sends one v1 stream request over a raw socket with a tiny receive
    buffer and reads nothing."""
    b, body = body_of(files, meta, fields)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    s.sendall(f"POST {V1} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nConnection: close\r\n"
              f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
              + body)
    return s


def read_all(s, timeout=60):
    s.settimeout(timeout)
    data = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return bytes(data)
        data += chunk


def dechunk(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    out, i = bytearray(), 0
    while i < len(rest):
        j = rest.find(b"\r\n", i)
        if j < 0:
            break
        n = int(rest[i:j], 16)
        if n == 0:
            break
        out += rest[j + 2:j + 2 + n]
        i = j + 2 + n + 2
    return head, bytes(out)


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def settled(s):
    return sum(s.metric(f'sight_files_total{{outcome="{o}"}}') for o in ("done", "error", "cancelled"))


def predict(s, key, nfiles=1):
    b, body = body_of([png_bytes(64, 48)] * nfiles, YOLO)
    return httpx.post(s.url + V1, content=body, timeout=60,
                      headers={"X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={b}"})


def error_code(r):
    return r.json()["detail"]["code"]


# Each file's answer is ~180 KB (every box the detector finds at confidence 0):
# 32 of them are ~6 MB, more than the loopback socket buffers take from a client
# that reads nothing (its own buffer is 4 KiB), less than the 4 MiB the server
# keeps for it before its next files wait plus what the kernel holds.
MANY_BOXES = {"confidence": "0", "max_detections": "10000"}


def test_clients_that_never_read_give_their_places_back_once_their_work_is_done(start_server):
    s = start_server("--max-inflight", "4")
    keys = [s.keys("create", "--name", f"hoarder{i}").strip() for i in range(4)]
    img = png_bytes(320, 240)
    socks = [open_stream(s, k, [img] * 32, YOLO, MANY_BOXES) for k in keys]
    assert wait_for(lambda: s.metric('sight_files_total{outcome="done"}') == 128, 180), s.log_text()[-3000:]
    # Their clients have read nothing, yet their places are free again.
    assert wait_for(lambda: s.metric("sight_requests_in_flight") == 0, 10), s.log_text()[-3000:]
    t0 = time.time()
    r = predict(s, s.key)
    assert r.status_code == 200, r.text
    assert json.loads(r.text.splitlines()[-1])["status"] == "complete"
    assert time.time() - t0 < 10
    # And their answers are still whole for them.
    for sock in socks:
        head, body = dechunk(read_all(sock))
        sock.close()
        lines = [json.loads(x) for x in body.decode().splitlines()]
        assert b" 200 " in head.split(b"\r\n")[0]
        assert sum(1 for m in lines if m["status"] == "done") == 32
        assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == 32


def test_one_key_holds_at_most_half_of_max_inflight(start_server):
    fake = FakeOpenAI(api_key=LLM_API_KEY)
    fake.script = lambda req: ("stream", ["slow ", "answer"], {"delay": 1.5})
    try:
        s = start_server("--max-inflight", "4", "--llm-url", fake.url, "--llm-model", fake.model,
                         env={"SIGHT_LLM_API_KEY": LLM_API_KEY})
        img = png_bytes(64, 48)
        socks = [open_stream(s, s.key, [img], LLM) for _ in range(2)]
        assert wait_for(lambda: s.metric("sight_requests_in_flight") == 2, 10)
        r = predict(s, s.key)
        assert r.status_code == 429 and error_code(r) == "concurrency_limited", r.text
        assert r.headers["Retry-After"] == "1"
        assert "X-Request-Id" in r.headers
        assert s.metric('sight_requests_refused_total{code="concurrency_limited"}') >= 1
        # Another key still gets the other half.
        other = s.keys("create", "--name", "other").strip()
        assert predict(s, other).status_code == 200
        for sock in socks:
            sock.close()
        # The places come back with the work: the key is served again.
        assert wait_for(lambda: s.metric("sight_requests_in_flight") == 0, 15)
        assert predict(s, s.key).status_code == 200
    finally:
        fake.close()


def test_max_inflight_per_key_sets_the_share(start_server):
    fake = FakeOpenAI(api_key=LLM_API_KEY)
    fake.script = lambda req: ("stream", ["slow ", "answer"], {"delay": 1.5})
    try:
        s = start_server("--max-inflight", "4", "--max-inflight-per-key", "1", "--llm-url", fake.url,
                         "--llm-model", fake.model, env={"SIGHT_LLM_API_KEY": LLM_API_KEY})
        sock = open_stream(s, s.key, [png_bytes(64, 48)], LLM)
        assert wait_for(lambda: s.metric("sight_requests_in_flight") == 1, 10)
        r = predict(s, s.key)
        assert r.status_code == 429 and error_code(r) == "concurrency_limited", r.text
        sock.close()
    finally:
        fake.close()


@pytest.fixture
def big_answers():
    """A provider whose every answer is 10 MiB (10000 deltas of 1 KiB)."""
    f = FakeOpenAI(api_key=LLM_API_KEY)
    f.script = lambda req: ("stream", [PIECE] * 10000, {})
    yield f
    f.close()


def llm_server(start_server, fake, *extra):
    # One provider call at a time, one CPU worker: each file starts after the
    # one before, and at most one waits decoded for the provider's thread.
    return start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "64",
                        "--llm-concurrency", "1", "--workers", "1", *extra,
                        env={"SIGHT_LLM_API_KEY": LLM_API_KEY})


def test_a_client_that_is_behind_gets_no_new_file_started(start_server, big_answers):
    s = llm_server(start_server, big_answers)
    sock = open_stream(s, s.key, [png_bytes(64, 48)] * 3, LLM)
    # The first answer (10 MiB) waits unsent: the last file is not started (the
    # second may have been decoded and handed to the provider's thread already).
    done = lambda: s.metric('sight_files_total{outcome="done"}')  # noqa: E731
    assert wait_for(lambda: done() >= 1, 60), s.log_text()[-2000:]
    time.sleep(1)  # a second file in hand starts now, if there is one
    assert wait_for(lambda: done() == len(big_answers.requests), 30)
    time.sleep(3)
    started = len(big_answers.requests)
    assert started < 3
    assert done() == started
    assert s.metric("sight_requests_in_flight") == 1
    # Reading lets them go on, in order, and the answer is whole.
    head, body = dechunk(read_all(sock))
    sock.close()
    lines = [json.loads(x) for x in body.decode().splitlines()]
    done = [m for m in lines if m["status"] == "done"]
    assert [m["index"] for m in done] == [0, 1, 2]
    assert all(len(m["result"]["llm"]["response"]) == 10000 * len(PIECE) for m in done)
    assert lines[-1]["status"] == "complete"
    assert len(big_answers.requests) == 3


def test_a_stream_held_behind_past_the_client_timeout_is_cut(start_server, big_answers):
    s = llm_server(start_server, big_answers, "--client-timeout", "3")
    sock = open_stream(s, s.key, [png_bytes(64, 48)] * 3, LLM)
    # A trickle from the start: always some progress (so no inactivity timeout
    # applies), never enough to catch up.
    stop = threading.Event()

    def trickle():
        sock.settimeout(1)
        while not stop.is_set():
            try:
                if not sock.recv(2048):
                    return
            except (socket.timeout, OSError):
                pass
            time.sleep(0.2)

    reader = threading.Thread(target=trickle)
    reader.start()
    try:
        t0 = time.time()
        # Cut: the files it held back are cancelled and its place is free.
        assert wait_for(lambda: s.metric('sight_files_total{outcome="cancelled"}') >= 1, 40), s.log_text()[-3000:]
        assert time.time() - t0 < 30
        assert wait_for(lambda: settled(s) == 3, 10)
        started = len(big_answers.requests)
        assert started < 3
        # (the second file may have been cut mid-answer too)
        assert s.metric('sight_files_total{outcome="done"}') + s.metric('sight_files_total{outcome="cancelled"}') == 3
        assert wait_for(lambda: s.metric("sight_requests_in_flight") == 0, 5)
        # Cut for reading too little while files waited, or (when the kernel's
        # buffer never had room for a write) for making no progress at all.
        log = s.log_text()
        assert "stream cut" in log or "made no progress" in log, log[-3000:]
    finally:
        stop.set()
        reader.join()
        sock.close()
