"""HTTPS without a proxy (issue 15): --tls-cert/--tls-key with a self-signed
certificate made here by openssl; curl and the spec's Python client (httpx)
over https, keep-alive included; bad files stop the server at start naming
them; the smuggling vectors still get one answer and a closed connection."""
import json
import shutil
import socket
import ssl
import subprocess

import httpx
import pytest

from conftest import SIGHTD, V1, png_bytes
from test_smuggling import CL_VECTORS, TAIL, VECTORS, exchange_on, responses

META_PLAIN = json.dumps({"is_yolo": False, "is_llm": False})


def make_cert(d, name="server"):
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def tls_server(start_server, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("no openssl")
    cert, key = make_cert(tmp_path)
    return start_server("--tls-cert", cert, "--tls-key", key)


def test_curl_and_httpx_over_https_with_keep_alive(tls_server):
    s = tls_server
    out = subprocess.run(["curl", "-sS", "--cacert", s.verify, "-w", "\\n%{http_code} %{num_connects}",
                          s.url + "/healthz", s.url + "/readyz"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("200 ") == 2 and out.stdout.rstrip().endswith("200 0"), out.stdout  # the 2nd reused it
    ports = set()
    with httpx.Client(base_url=s.url, verify=s.verify, timeout=30) as c:
        for _ in range(3):
            with c.stream("POST", V1, headers={"X-API-Key": s.key}, data={"metadata": META_PLAIN},
                          files=[("files", ("a.png", png_bytes(8, 8)))]) as r:
                lines = [json.loads(x) for x in r.iter_lines() if x.strip()]
                assert r.status_code == 200
                ports.add(r.extensions["network_stream"].get_extra_info("socket").getsockname()[1])
            assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == 1
        assert c.get("/healthz").status_code == 200
    assert len(ports) == 1
    # Plain HTTP to the HTTPS port gets nothing useful, and the server goes on.
    with pytest.raises(httpx.HTTPError):
        httpx.get(s.url.replace("https", "http") + "/healthz", timeout=5)
    assert httpx.get(s.url + "/healthz", verify=s.verify).status_code == 200


def start_fails(tmp_path, *args):
    r = subprocess.run([SIGHTD, "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "k.db"),
                        "--model", "none", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_bad_certificate_or_key_stops_the_server_naming_the_file(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("no openssl")
    cert, key = make_cert(tmp_path)
    _, other_key = make_cert(tmp_path, "other")
    missing = str(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert missing in start_fails(tmp_path, "--tls-cert", missing, "--tls-key", key)
    assert missing in start_fails(tmp_path, "--tls-cert", cert, "--tls-key", missing)
    assert str(junk) in start_fails(tmp_path, "--tls-cert", str(junk), "--tls-key", key)
    assert str(junk) in start_fails(tmp_path, "--tls-cert", cert, "--tls-key", str(junk))
    # Well-formed files that do not belong together.
    msg = start_fails(tmp_path, "--tls-cert", cert, "--tls-key", other_key)
    assert cert in msg and other_key in msg, msg
    assert "--tls-key" in start_fails(tmp_path, "--tls-cert", cert)


def tls_exchange(s, data, timeout=10):
    ctx = ssl.create_default_context(cafile=s.verify)
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    return exchange_on(ctx.wrap_socket(raw, server_hostname="127.0.0.1"), data, timeout)


@pytest.mark.parametrize("name,data,status", VECTORS, ids=[v[0] for v in VECTORS])
def test_smuggling_vectors_over_tls(tls_server, name, data, status):
    """Under TLS the refusal is queued with Connection: close (no raw bytes can
    be written inside the session): still one answer, nothing carved out of the
    leftover bytes, and the connection ends."""
    raw, closed = tls_exchange(tls_server, data + TAIL)
    got, rest = responses(raw)
    assert len(got) == 1 and rest == b"", raw[:600]
    st, headers, body = got[0]
    assert st == status, raw[:600]
    assert json.loads(body)["detail"]["code"] == "malformed_request"
    assert headers["connection"] == "close"
    assert closed, "the connection was left open"


@pytest.mark.parametrize("name,data,status", CL_VECTORS, ids=[v[0] for v in CL_VECTORS])
def test_content_length_vectors_over_tls_are_libmicrohttpds_answer(tls_server, name, data, status):
    """A Content-Length libmicrohttpd 0.9.75 refuses before Sight's handler
    runs: in plain HTTP Sight's answer goes to the socket first, but no raw
    bytes can be written inside TLS, so the library's own answer stands (its
    HTML, its header block written twice; docs/http-strictness.md). Still a
    refusal, the connection ended, the GET after it never answered."""
    raw, closed = tls_exchange(tls_server, data + TAIL)
    assert raw.startswith(b"HTTP/1.1 4"), raw[:300]
    assert b"Content-Length" in raw and b"malformed_request" not in raw, raw[:600]
    assert b'{"status":"ok"}' not in raw and b"200 OK" not in raw, raw
    assert closed, "the connection was left open"
