"""Request smuggling (issue 19): RFC 9112 framing and syntax against the real
binary, with raw sockets (an HTTP library would not send these bytes).

Each vector goes on a fresh connection, followed in the same bytes by a
`GET /healthz`: the server must give exactly one answer (400, or 501 for a
transfer coding it does not implement) with the usual JSON error, then close,
and never answer the GET carved out of the leftover bytes. The same vectors
then go through HAProxy (the cluster's balancer): the node must never see a
request that the balancer did not forward as one.

docs/http-strictness.md has the table with nginx's answers."""
import json
import re
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from conftest import V1, free_port, png_bytes

TAIL = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: x\r\n"
CHUNKED_EMPTY = b"0\r\n\r\n"

# (id, bytes before TAIL, status). Each answered by Sight's own checks
# (src/http/front/request_check.c) with {"detail":{"code":"malformed_request",...}}.
VECTORS = [
    # Content-Length and Transfer-Encoding (RFC 9112 6.1, 6.3)
    ("cl_and_te", POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_and_cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("cl_twice_different", POST + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\nab", 400),
    ("cl_twice_equal", POST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nab", 400),
    ("cl_valid_then_signed", POST + b"Content-Length: 2\r\nContent-Length: +2\r\n\r\nab", 400),
    ("te_xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_EMPTY, 501),
    ("te_identity", POST + b"Transfer-Encoding: identity\r\n\r\n", 501),
    ("te_gzip_chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + CHUNKED_EMPTY, 501),
    ("te_chunked_identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_chunked_twice", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_trailing_space", POST + b"Transfer-Encoding: chunked \r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_vertical_tab", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_quoted", POST + b'Transfer-Encoding: "chunked"\r\n\r\n' + CHUNKED_EMPTY, 400),
    ("te_http10", b"POST " + V1.encode() + b" HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("te_get_unknown", b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
    # Field syntax (RFC 9112 5.1, 5.2)
    ("space_before_colon", POST + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("tab_before_colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A\t: a\r\n\r\n", 400),
    ("obs_fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("obs_fold_te", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + CHUNKED_EMPTY, 400),
    ("obs_fold_first_line", b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("name_brackets", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX[A]: a\r\n\r\n", 400),
    ("name_empty", b"GET /healthz HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", 400),
    ("name_empty_splits_head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n: a\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("value_nul", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("value_nul_last", b"GET /healthz HTTP/1.1\r\nX-A: a\r\nHost: x\x00y\r\n\r\n", 400),
    ("value_cr", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    ("value_control", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    ("value_del", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("bare_lf", b"GET /healthz HTTP/1.1\nHost: x\nX-A: a\n\n", 400),
    # Host (RFC 9112 3.2)
    ("no_host", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("host_space", b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    # Request line (RFC 9112 3)
    ("target_control", b"GET /healthz\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target_nul", b"GET /healthz\x00x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target_space", b"GET /health z HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("double_space", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("method_not_token", b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]

# Content-Length values libmicrohttpd 0.9.75 refuses before the handler runs
# (and answers with its header block written twice): Sight's refusal goes out
# first, from the log line that is the only sign of it (src/http/front/engine.c,
# cl_refusal). Not under TLS, where no raw bytes can be written.
CL_VECTORS = [
    ("cl_plus", POST + b"Content-Length: +2\r\n\r\nab", 400),
    ("cl_negative", POST + b"Content-Length: -1\r\n\r\n", 400),
    ("cl_list", POST + b"Content-Length: 2, 2\r\n\r\nab", 400),
    ("cl_hex", POST + b"Content-Length: 0x2\r\n\r\nab", 400),
    ("cl_space_inside", POST + b"Content-Length: 1 2\r\n\r\nab", 400),
    ("cl_over_64_bits", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
]

# Refused by libmicrohttpd 0.9.75 itself before Sight's handler runs: one
# status, the connection closed, the GET never answered; but the body is
# libmicrohttpd's HTML (see docs/http-strictness.md).
MHD_VECTORS = [
    ("chunk_size_not_hex", POST + b"Transfer-Encoding: chunked\r\n\r\n2g\r\nab\r\n0\r\n\r\n", 400),
    ("chunk_size_0x", POST + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n", 400),
    ("chunk_size_space", POST + b"Transfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", 400),
    ("chunk_size_negative", POST + b"Transfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n", 400),
    ("chunk_data_overrun", POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabX0\r\n\r\n", 400),
    ("chunk_size_over_64_bits", POST + b"Transfer-Encoding: chunked\r\n\r\n1" + b"0" * 16 + b"\r\nab\r\n0\r\n\r\n", 413),
    ("name_nul", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX\x00A: a\r\n\r\n", 400),
    ("no_colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nXA\r\n\r\n", 400),
    ("method_tab", b"GET\t/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("version_lowercase", b"GET /healthz http/1.1\r\nHost: x\r\n\r\n", 400),
]

# Chunked framing that libmicrohttpd 0.9.75 reads its own RFC-permitted way:
# a bare LF ends a chunk line (RFC 9112 2.2 MAY), extensions are skipped
# unparsed, a 100 KB extension overflows its buffer (500). Only the proxy test
# uses them: what matters is that HAProxy and the node agree on the frame.
CHUNK_VECTORS = [
    ("chunk_ext_bare_lf", POST + b"Transfer-Encoding: chunked\r\n\r\n2;a\nb\r\nab\r\n0\r\n\r\n", None),
    ("chunk_size_bare_lf", POST + b"Transfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", None),
    ("chunk_data_bare_lf", POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n", None),
    ("chunk_ext_control", POST + b"Transfer-Encoding: chunked\r\n\r\n2;\x01\r\nab\r\n0\r\n\r\n", None),
    ("chunk_ext_100k", POST + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"a" * 100000 + b"\r\nab\r\n0\r\n\r\n", None),
]


def exchange(port, data, timeout=10):
    """Sends data on a fresh connection; returns (everything received, how it ended:
    "eof" when recv returned 0, "reset", or False when it was still open at the timeout)."""
    return exchange_on(socket.create_connection(("127.0.0.1", port), timeout=timeout), data, timeout)


def exchange_on(sock, data, timeout):
    """exchange() on a connected socket (plain or TLS), which it closes."""
    try:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer and close before it has all of it
        out, closed = b"", False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError):  # a TLS peer's reset can surface as either
                closed = "reset"
                break
            if not d:
                closed = "eof"
                break
            out += d
        return out, closed
    finally:
        sock.close()


def responses(raw):
    """Splits raw into HTTP/1.1 responses framed by Content-Length: [(status, headers, body)] and the rest."""
    out = []
    while raw.startswith(b"HTTP/1."):
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        raw = rest[n:]
    return out, raw


@pytest.mark.parametrize("name,data,status", VECTORS + CL_VECTORS, ids=[v[0] for v in VECTORS + CL_VECTORS])
def test_vector_gets_one_json_answer_and_the_connection_closes(server, name, data, status):
    raw, closed = exchange(server.port, data + TAIL)
    got, rest = responses(raw)
    assert len(got) == 1 and rest == b"", raw[:600]  # one answer, nothing carved out of the leftover bytes
    st, headers, body = got[0]
    assert st == status, raw[:600]
    detail = json.loads(body)["detail"]
    assert detail["code"] == "malformed_request" and detail["message"], detail
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert headers.get("x-request-id")
    # A clean close after the answer (shutdown, then a lingering read), not a reset.
    assert closed == "eof", closed


@pytest.mark.parametrize("name,data,status", MHD_VECTORS, ids=[v[0] for v in MHD_VECTORS])
def test_vector_refused_by_libmicrohttpd_ends_the_connection(server, name, data, status):
    t0 = time.monotonic()
    raw, closed = exchange(server.port, data + TAIL)
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:300]
    assert closed and time.monotonic() - t0 < 5
    # Whatever libmicrohttpd wrote, no second request was answered.
    assert b'{"status":"ok"}' not in raw and b"200 OK" not in raw, raw


def test_refusals_are_counted_and_the_server_goes_on(start_server):
    s = start_server()
    healthz = s.metric('sight_http_requests_total{route="healthz",status="200"}')  # the start-up probe
    for name, data, status in VECTORS[:6] + CL_VECTORS[:2]:
        exchange(s.port, data + TAIL)
    # Each reached the handler (or, for a Content-Length libmicrohttpd refuses, Sight's
    # refusal ran first) once, as one refused request; no /healthz was carved out.
    assert s.metric('sight_http_requests_total{route="predict_v1",status="400"}') == 7
    assert s.metric('sight_http_requests_total{route="predict_v1",status="501"}') == 1
    assert s.metric('sight_http_requests_total{route="healthz",status="200"}') == healthz
    assert s.metric("sight_requests_in_flight") == 0
    assert "malformed_request: both Content-Length and Transfer-Encoding; connection closed" in s.log_text()
    assert "400 malformed_request: Content-Length must be 1 to 19 digits" in s.log_text()
    assert httpx.get(s.url + "/healthz").json() == {"status": "ok"}


def test_well_formed_requests_still_work(server):
    # Pipelined, keep-alive: requests after the first in libmicrohttpd's buffer
    # pass the checks too. (Sight answers a request that is refused before its
    # body, or a GET, with Connection: close; these two are answered once
    # their body is in: 422, no files.)
    body = b"api_key=" + server.key.encode()
    post = (POST + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body) +
            body)
    raw, closed = exchange(server.port, post + post + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got, rest = responses(raw)
    assert [g[0] for g in got] == [422, 422, 200] and rest == b"", raw[:600]
    assert json.loads(got[0][2])["detail"]["code"] != "malformed_request"
    # HTTP/1.0 without Host, leading empty line, tabs and obs-text in values,
    # an empty value, a GET with a Content-Length body.
    for req in [b"GET /healthz HTTP/1.0\r\n\r\n",
                b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nhost: x\r\nX-A:\ta\tb \r\nX-B: caf\xc3\xa9\r\nX-C:\r\nConnection: close\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"]:
        raw, closed = exchange(server.port, req)
        got, _ = responses(raw)
        assert [g[0] for g in got] == [200], (req, raw[:300])
    # A chunked upload with chunk extensions and a trailer, CHUNKED in capitals.
    b = b"C"
    body = (b"--C\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" +
            json.dumps({"is_yolo": False, "is_llm": False}).encode() + b"\r\n"
            b"--C\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\n" +
            png_bytes(2, 2) + b"\r\n--C--\r\n")
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50]) for i in range(0, len(body), 50))
    req = (POST + b"X-API-Key: " + server.key.encode() + b"\r\nContent-Type: multipart/form-data; boundary=" + b +
           b"\r\nTransfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n" + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
    raw, _ = exchange(server.port, req, timeout=20)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:300]
    assert b'"status":"complete"' in rest and b'"succeeded":1' in rest


# Through HAProxy -------------------------------------------------------------

HAPROXY_CFG = """global
    log stdout format raw local0
    maxconn 200
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 5s
    timeout server 10s
    timeout http-request 5s
    timeout http-keep-alive 500ms
frontend fe
    bind 127.0.0.1:{front}
    default_backend be
backend be
    server node 127.0.0.1:{node}
"""

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def haproxy(server, tmp_path_factory):
    """HAProxy in front of the module's node, on loopback ports, without health checks."""
    exe = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if not exe:
        pytest.skip("haproxy not installed (scripts/bootstrap --test installs it)")
    tmp = tmp_path_factory.mktemp("haproxy")
    front = free_port()
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(front=front, node=server.port))
    log = open(tmp / "haproxy.log", "wb")
    proc = subprocess.Popen([exe, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{front}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp / "haproxy.log").read_text()
            time.sleep(0.1)
        yield front, server, tmp / "haproxy.log"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def node_targets(node):
    return re.findall(r"request line received: target (\S+)", node.log_text())


def proxy_paths(path):
    return re.findall(r'"[A-Z(]+ (\S+) HTTP/1\.[01]"', path.read_text(errors="replace"))


ALL = VECTORS + CL_VECTORS + MHD_VECTORS + CHUNK_VECTORS


@pytest.mark.parametrize("name,data,status", ALL, ids=[v[0] for v in ALL])
def test_through_haproxy_no_vector_reaches_the_node_as_two_requests(haproxy, name, data, status):
    front, node, hlog = haproxy
    before_node, before_proxy = len(node_targets(node)), len(proxy_paths(hlog))
    raw, _ = exchange(front, data + SMUGGLED, timeout=6)
    # HAProxy logs a request as it ends, possibly after the node's log.
    deadline = time.monotonic() + 3
    while True:
        seen = node_targets(node)[before_node:]
        forwarded = proxy_paths(hlog)[before_proxy:]
        if seen.count("/smuggled") <= forwarded.count("/smuggled") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    first = raw.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"{name}: client got {first!r}; HAProxy logged {forwarded}; the node saw {seen}")
    # The node sees at most the vector itself, never a request the balancer did not forward.
    assert len([t for t in seen if t != "/smuggled"]) <= 1, seen
    assert seen.count("/smuggled") <= forwarded.count("/smuggled"), (seen, forwarded)
