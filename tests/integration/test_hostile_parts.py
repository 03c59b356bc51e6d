"""Hostile form parts and the JSON that answers them: Unicode line
separators never split an NDJSON line, a NUL in a name or an ambiguous part
is refused with 400 and its own code, an oversized key is 413
field_too_large, a head too large 431 header_too_large; each refusal is
JSON with X-Request-Id and is counted."""
import json
import socket

import httpx

from conftest import V1, png_bytes
from test_hostile import META_PLAIN, V2, assert_error, parse, part, post_raw, read_all

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\u0080", "\u009f"]


def mp_post(server, body, key=True, boundary=b"U"):
    extra = b"X-API-Key: " + server.key.encode() + b"\r\n" if key else b""
    return post_raw(server, V1, body + b"--" + boundary + b"--\r\n", b"multipart/form-data; boundary=" + boundary,
                    extra)


def test_unicode_line_separators_in_names_are_escaped_in_every_line(server):
    names = [f"a{sep}b{i}.png" for i, sep in enumerate(SEPARATORS)]
    body = b"".join(part(b"U", "files", png_bytes(2, 2), n.encode()) + part(b"U", "metadata", META_PLAIN.encode())
                    for n in names)
    r = mp_post(server, body)
    assert r[0] == 200, r
    raw = r[2]
    for sep in SEPARATORS:
        assert sep.encode() not in raw  # escaped, never raw
    text = raw.decode("utf-8")
    # A reader that splits on every Unicode line break sees the same lines as one
    # that splits on \n alone.
    assert text.splitlines() == text.rstrip("\n").split("\n")
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[-1]["status"] == "complete" and lines[-1]["succeeded"] == len(names)
    got = {m["index"]: m["filename"] for m in lines if m["status"] == "done"}
    assert [got[i] for i in range(len(names))] == names  # the names themselves are kept


def test_unicode_line_separators_in_an_error_body_are_escaped(server):
    r = httpx.post(server.url + V1, headers={"X-API-Key": server.key},
                   files=[("files", ("a.png", png_bytes(2, 2)))], data={"metadata": META_PLAIN, "x\u2028y": "1"})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_field"
    assert b"\xe2\x80\xa8" not in r.content and b"\\u2028" in r.content
    assert len(r.text.splitlines()) == 1


def refused_400(server, body, code):
    before = server.metric('sight_http_requests_total{route="predict_v1",status="400"}')
    r = mp_post(server, body)
    assert_error(r, 400, code)
    assert r[1].get("x-request-id")
    assert server.metric('sight_http_requests_total{route="predict_v1",status="400"}') == before + 1
    return r


def test_a_nul_in_a_file_name_is_400_invalid_filename(server):
    for disp in [b'form-data; name="files"; filename="a.png\x00.exe"',
                 b"form-data; name=\"files\"; filename*=UTF-8''a.png%00.exe",
                 b'form-data; name="api_key\x00x"']:
        body = (b"--U\r\nContent-Disposition: " + disp + b"\r\n\r\n" + png_bytes(2, 2) + b"\r\n"
                + part(b"U", "metadata", META_PLAIN.encode()))
        refused_400(server, body, "invalid_filename")


def test_ambiguous_parts_are_400_ambiguous_part(server):
    png = png_bytes(2, 2)
    meta = part(b"U", "metadata", META_PLAIN.encode())
    cases = [
        # A proxy that read the first name saw metadata; the last says files.
        b'--U\r\nContent-Disposition: form-data; name="metadata"; name="files"; filename="a.png"\r\n\r\n' + png
        + b"\r\n" + meta,
        b'--U\r\nContent-Disposition: form-data; name="files"; filename="a.png"; filename="a.exe"\r\n\r\n' + png
        + b"\r\n" + meta,
        b'--U\r\nContent-Disposition: form-data; name="query"\r\nContent-Disposition: form-data; name="files"; '
        b'filename="a.png"\r\n\r\n' + png + b"\r\n" + meta,
        b'--U\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\nContent-Type: image/png\r\n'
        b"Content-Type: text/html\r\n\r\n" + png + b"\r\n" + meta,
    ]
    for body in cases:
        refused_400(server, body, "ambiguous_part")
    # One of each is served as before.
    r = mp_post(server, b'--U\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
                        b"Content-Type: image/png\r\n\r\n" + png + b"\r\n" + meta)
    assert r[0] == 200


def test_an_oversized_api_key_field_is_413_field_too_large(server):
    before = server.metric('sight_http_requests_total{route="predict_v1",status="413"}')
    body = part(b"U", "api_key", b"k" * (1 << 20)) + part(b"U", "files", png_bytes(2, 2), b"a.png") + \
        part(b"U", "metadata", META_PLAIN.encode())
    r = mp_post(server, body, key=False)
    assert_error(r, 413, "field_too_large")
    assert "api_key" in json.loads(r[2])["detail"]["message"]
    assert r[1].get("x-request-id")
    assert server.metric('sight_http_requests_total{route="predict_v1",status="413"}') == before + 1
    # v2: the same key in a JSON body.
    body = json.dumps({"api_key": "k" * 1000, "data": [{"image_url": "http://127.0.0.1:1/a.png"}]}).encode()
    assert_error(post_raw(server, V2, body, b"application/json"), 413, "field_too_large")
    # A key of the right size that is wrong is still 401.
    body = part(b"U", "api_key", b"k" * 256) + part(b"U", "files", png_bytes(2, 2), b"a.png") + \
        part(b"U", "metadata", META_PLAIN.encode())
    assert_error(mp_post(server, body, key=False), 401, "invalid_api_key")


def raw_exchange(server, req):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(req)
    except OSError:
        pass  # the server may answer and close before it has all of it
    got = read_all(sock, 10)
    sock.close()
    return got


def test_a_head_too_large_is_431_json_with_a_request_id_and_counted(server):
    cases = {
        "one 40 KB field": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n",
        "one 100 KB field": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
        "a thousand fields": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H-%04d: v\r\n" % i for i in range(1000)) + b"\r\n",
        "a 40 KB request line": b"GET /healthz?" + b"q" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "on a prediction route": b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Big: "
        + b"a" * 40000 + b"\r\n\r\nhello",
    }
    for what, req in cases.items():
        route = "predict_v1" if "prediction" in what else "healthz"
        metric = f'sight_http_requests_total{{route="{route}",status="431"}}'
        before = server.metric(metric)
        r = parse(raw_exchange(server, req))
        assert_error(r, 431, "header_too_large")
        assert r[1].get("x-request-id"), what
        assert server.metric(metric) == before + 1, what
    # Under the limits (what libmicrohttpd took before): served.
    r = parse(raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
                           + b"a" * 30000 + b"\r\n\r\n"))
    assert r[0] == 200
    r = parse(raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           + b"".join(b"X-H-%03d: v\r\n" % i for i in range(150)) + b"\r\n"))
    assert r[0] == 200
    # Past libmicrohttpd's own buffer for a head it answers itself; still counted.
    before = server.metric('sight_http_requests_total{route="other",status="431"}')
    r = parse(raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000 + b"\r\n\r\n"))
    assert r[0] == 431
    assert server.metric('sight_http_requests_total{route="other",status="431"}') == before + 1
    assert httpx.get(server.url + "/healthz").status_code == 200
