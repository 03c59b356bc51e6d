"""A client that stops reading its stream: the server holds a bounded amount
for it (progress lines are dropped once 1 MiB waits unread; the done line still
carries the whole answer) and gives up on it after --client-timeout seconds
without progress, freeing the request (its place in --max-inflight is free
once its work is done)."""
import json
import socket
import time
import uuid

import pytest

from conftest import V1, png_bytes
from fake_openai import FakeOpenAI

API_KEY = "sk-test-backpressure"
PIECE = "0123456789abcdef" * 64          # 1 KiB per delta
PIECES = 10000                           # a 10 MiB answer: past the 1 MiB progress budget plus
                                         # what the kernel buffers on loopback (tcp_wmem max, 4 MiB)


@pytest.fixture
def fake():
    f = FakeOpenAI(api_key=API_KEY)
    # Numbered pieces, so a gap in the deltas a client receives would show.
    f.script = lambda req: ("stream", [f"{i:05d}" + PIECE[5:] for i in range(PIECES)], {})
    yield f
    f.close()


def raw_request(server, rcvbuf=None):
    """Sends one v1 request (one small PNG, is_llm) over a raw socket and
    returns the socket without reading anything."""
    b = uuid.uuid4().hex
    parts = [
        ("api_key", None, server.key.encode()),
        ("query", None, b"read it"),
        ("metadata", None, json.dumps({"is_yolo": False, "is_llm": True}).encode()),
        ("files", "a.png", png_bytes(64, 48)),
    ]
    body = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = "Content-Type: image/png\r\n" if filename else ""
        body += f"--{b}\r\nContent-Disposition: {disp}\r\n{ctype}\r\n".encode() + data + b"\r\n"
    body += f"--{b}--\r\n".encode()
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", server.port))
    s.sendall(f"POST {V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={b}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return s


def read_all(s, timeout=30):
    s.settimeout(timeout)
    data = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return bytes(data)
        data += chunk


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def server_for(start_server, fake, *extra):
    return start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "64",
                        *extra, env={"SIGHT_LLM_API_KEY": API_KEY})


def dechunk(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    out, i = bytearray(), 0
    while i < len(rest):
        j = rest.index(b"\r\n", i)
        n = int(rest[i:j], 16)
        if n == 0:
            break
        out += rest[j + 2:j + 2 + n]
        i = j + 2 + n + 2
    return head, bytes(out)


def test_progress_lines_stop_for_a_client_that_is_behind(start_server, fake):
    s = server_for(start_server, fake)
    sock = raw_request(s)
    # Not reading while the whole answer is produced: the file finishes server-side.
    assert wait_for(lambda: s.metric('sight_files_total{outcome="done"}') >= 1, 60), s.log_text()[-2000:]
    dropped = s.metric("sight_stream_progress_dropped_total")
    head, body = dechunk(read_all(sock))
    sock.close()
    assert b" 200 " in head.split(b"\r\n")[0]
    lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line]
    deltas = [m["delta"] for m in lines if m["status"] == "llm_delta"]
    done = next(m for m in lines if m["status"] == "done")
    answer = done["result"]["llm"]["response"]
    assert len(answer) == PIECES * len(PIECE)           # the done line has it all
    assert 0 < len(deltas) < PIECES                      # some progress, not all of it
    assert dropped >= PIECES - len(deltas) > 0
    joined = "".join(deltas)
    assert answer.startswith(joined)                     # no gap: a prefix of the answer
    # What reached the client is what the kernel's socket buffers took plus the
    # 1 MiB budget, not the whole answer again.
    assert len(joined) < 6 * (1 << 20)
    assert lines[-1]["status"] == "complete"


def test_a_client_that_never_reads_is_dropped_after_the_client_timeout(start_server, fake):
    s = server_for(start_server, fake, "--client-timeout", "2")
    sock = raw_request(s, rcvbuf=4096)
    t0 = time.time()
    ended = 'sight_http_requests_total{route="predict_v1",status="200"}'
    # The done line alone (10 MiB) cannot fit in the socket buffers: the server is
    # stuck writing until its write timeout gives up on the client.
    assert wait_for(lambda: s.metric(ended) == 1, 30), s.log_text()[-2000:]
    # Its place is free once its work is over (a file cut mid-answer is cancelled).
    assert wait_for(lambda: s.metric("sight_requests_in_flight") == 0, 10)
    took = time.time() - t0
    data = read_all(sock, timeout=10)                    # what had been sent, then EOF
    sock.close()
    assert b'"status":"complete"' not in data             # cut off, not finished
    assert took < 20
    # Still serving others.
    other = raw_request(s)
    head, body = dechunk(read_all(other))
    other.close()
    assert body.decode().splitlines()[-1].startswith('{"status":"complete"')
