"""The v1 streaming endpoint through real HTTP: line sequence, streaming,
every refusal status, authentication, cancellation, limits, shutdown."""
import json
import socket
import subprocess
import threading
import time

import httpx
import pytest

from conftest import V1, multipart, photo, png_bytes

META_PLAIN = json.dumps({"is_yolo": False, "is_llm": False})


def stream_lines(url, timeout=60, **kw):
    """Posts and returns [(arrival_seconds, parsed_line)], read incrementally."""
    out = []
    t0 = time.monotonic()
    with httpx.Client(timeout=timeout) as c:
        with c.stream("POST", url + V1, **kw) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"] == "application/x-ndjson"
            assert r.headers.get("x-request-id")
            for line in r.iter_lines():
                if line:
                    out.append((time.monotonic() - t0, json.loads(line)))
    return out


def post(url, **kw):
    return httpx.post(url + V1, timeout=60, **kw)


def assert_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["detail"]["code"] == code, body
    assert body["detail"]["message"]
    assert r.headers.get("x-request-id")


def check_sequence(lines, n):
    """Each file: processing before done/error; complete last with the right counts."""
    msgs = [m for _, m in lines]
    assert msgs[-1]["status"] == "complete"
    assert msgs[-1]["total"] == n
    seen = {}
    for pos, m in enumerate(msgs[:-1]):
        i = m["index"]
        seen.setdefault(i, []).append((pos, m["status"]))
    assert sorted(seen) == list(range(n))
    for i, evs in seen.items():
        assert [s for _, s in evs][0] == "processing", evs
        assert [s for _, s in evs][1] in ("done", "error"), evs
        assert len(evs) == 2
    ok = sum(1 for m in msgs if m["status"] == "done")
    assert msgs[-1]["succeeded"] == ok
    assert msgs[-1]["failed"] == n - ok
    return msgs


def test_three_images_stream_processing_done_error_complete(server):
    files = [("street.jpg", photo("opencv_scenetext01.jpg"), "image/jpeg"),
             ("football.jpg", photo("opencv_messi5.jpg"), "image/jpeg"),
             ("coffee.png", photo("skimage_coffee.png"), "image/png")]
    meta = [META_PLAIN, json.dumps({"is_yolo": True, "is_llm": False}), json.dumps({"is_yolo": False, "is_llm": True})]
    lines = stream_lines(server.url, **multipart(server.key, files, meta, query="find me the serial number"))
    msgs = check_sequence(lines, 3)
    by = {(m["index"], m["status"]): m for m in msgs[:-1]}
    done = by[(0, "done")]
    assert done["filename"] == "street.jpg"
    assert done["result"]["image"] == {"width": 800, "height": 600, "format": "jpeg"}
    assert "yolo" not in done["result"] and "llm" not in done["result"]
    assert done["result"]["timing_ms"]["decode"] >= 0
    # The built-in detector serves is_yolo.
    yolo = by[(1, "done")]["result"]["yolo"]
    assert yolo["model"] == "yolox-nano" and "person" in [d["class"] for d in yolo["detections"]], yolo
    # Without --llm-url the local provider answers, and says what it is.
    llm = by[(2, "done")]["result"]["llm"]
    assert llm["provider"] == "local" and "serial number" in llm["response"]
    assert msgs[-1]["succeeded"] == 3 and msgs[-1]["failed"] == 0


def test_lines_arrive_while_later_files_are_still_worked_on(start_server, slow_png):
    # One worker: file 0 (small) finishes, then two slow decodes follow. If the
    # server buffered the stream, every line would arrive together at the end.
    s = start_server("--workers", "1")
    files = [("small.png", png_bytes(8, 8)), ("slow1.png", slow_png), ("slow2.png", slow_png)]
    lines = stream_lines(s.url, **multipart(s.key, files, [META_PLAIN] * 3))
    msgs = check_sequence(lines, 3)
    t_done0 = next(t for t, m in lines if m["status"] == "done" and m["index"] == 0)
    t_proc1 = next(t for t, m in lines if m["status"] == "processing" and m["index"] == 1)
    t_end = lines[-1][0]
    slow_ms = sum(m["result"]["timing_ms"]["total"] for m in msgs if m["status"] == "done" and m["index"] > 0)
    assert slow_ms > 100, "the slow image decoded too fast to tell streaming from buffering"
    assert t_end - t_done0 >= 0.7 * slow_ms / 1000, (t_done0, t_end, slow_ms)
    assert t_proc1 < t_end - 0.3 * slow_ms / 1000


def test_batch_answer_is_the_stream_s_lines(server):
    """The batch route answers with the very events the stream sends for the
    same request: each file's done or error line and the complete line, keys
    in the same order, numbers alike (timings aside)."""
    files = [("street.jpg", photo("opencv_scenetext01.jpg")), ("bad.jpg", b"nope"), ("caf\u00e9.png", png_bytes(5, 3))]
    meta = [json.dumps({"is_yolo": True, "is_llm": False})] * 2 + [META_PLAIN]
    lines = [ev for _, ev in stream_lines(server.url, **multipart(server.key, files, meta))]
    r = httpx.post(server.url + "/api/v1/inference/predict/batch", timeout=60, **multipart(server.key, files, meta))
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["result", "code"] and list(body["result"]) == ["files", "complete"]

    def untimed(ev):
        ev = json.loads(json.dumps(ev))
        ev.pop("time_ms", None)
        ev.get("result", {}).pop("timing_ms", None)
        ev.get("result", {}).get("yolo", {}).pop("speed_ms", None)
        return json.dumps(ev)  # dicts keep their order: the keys' order is compared too

    finals = sorted((ev for ev in lines if ev["status"] in ("done", "error")), key=lambda ev: ev["index"])
    assert [ev["status"] for ev in finals] == ["done", "error", "done"]
    assert len(finals[0]["result"]["yolo"]["detections"]) > 0  # reals, nested objects
    assert [untimed(ev) for ev in finals] == [untimed(ev) for ev in body["result"]["files"]]
    assert untimed(lines[-1]) == untimed(body["result"]["complete"])


def test_files_and_metadata_in_any_interleaving(server):
    # Hand-built body: metadata before files, interleaved, and after.
    b = "XyZboundary"
    def part(name, value, filename=None, ctype=None):
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{b}\r\nContent-Disposition: {disp}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "") + "\r\n"
        return head.encode() + value + b"\r\n"
    img = png_bytes(3, 2)
    body = (part("metadata", META_PLAIN.encode()) + part("files", img, "a.png", "image/png") +
            part("api_key", server.key.encode()) + part("files", img, "b.png", "image/png") +
            part("metadata", json.dumps({"is_yolo": True}).encode()) + f"--{b}--\r\n".encode())
    lines = stream_lines(server.url, content=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"})
    msgs = check_sequence(lines, 2)
    res = {(m["index"], m["status"]): m for m in msgs[:-1]}
    assert res[(0, "done")]["filename"] == "a.png"
    assert res[(0, "done")]["result"]["image"]["width"] == 3
    # Each file got its own metadata: only the second asked for detection.
    assert "yolo" not in res[(0, "done")]["result"]
    assert res[(1, "done")]["filename"] == "b.png" and "detections" in res[(1, "done")]["result"]["yolo"]


@pytest.mark.parametrize("how", ["bearer", "x-api-key"])
def test_key_in_headers(server, how):
    headers = {"Authorization": f"Bearer {server.key}"} if how == "bearer" else {"X-API-Key": server.key}
    lines = stream_lines(server.url, headers=headers, **multipart(None, [("a.png", png_bytes(2, 2))], [META_PLAIN]))
    assert lines[-1][1] == {**lines[-1][1], "status": "complete", "succeeded": 1}


def test_refusals_before_the_stream(server):
    img = [("a.png", png_bytes(2, 2))]
    assert_error(post(server.url, **multipart(None, img, [META_PLAIN])), 401, "missing_api_key")
    assert_error(post(server.url, **multipart("sk_" + "A" * 43, img, [META_PLAIN])), 401, "invalid_api_key")
    assert_error(post(server.url, headers={"X-API-Key": "nope"}, **multipart(None, img, [META_PLAIN])), 401, "invalid_api_key")
    assert_error(post(server.url, **multipart(server.key, [], [META_PLAIN])), 422, "no_files")
    assert_error(post(server.url, **multipart(server.key, img, [])), 422, "metadata_count_mismatch")
    assert_error(post(server.url, **multipart(server.key, img, [META_PLAIN, META_PLAIN])), 422, "metadata_count_mismatch")
    assert_error(post(server.url, **multipart(server.key, img, ["[1,2]"])), 422, "invalid_metadata")
    assert_error(post(server.url, **multipart(server.key, img, ["{not json"])), 422, "invalid_metadata")
    assert_error(post(server.url, **multipart(server.key, img, ['{"is_yolo": "yes"}'])), 422, "invalid_metadata")
    r = post(server.url, data={"api_key": server.key, "metadata": META_PLAIN, "bogus": "1"}, files=img)
    assert_error(r, 422, "unknown_field")
    assert_error(post(server.url, json={"api_key": server.key}), 415, "unsupported_media_type")
    r = post(server.url, content=b"--x\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk",
             headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert_error(r, 400, "malformed_multipart")
    r = post(server.url, content=b"abc", headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400, "malformed_multipart")
    assert_error(httpx.get(server.url + V1), 405, "method_not_allowed")
    assert httpx.get(server.url + V1).headers["allow"] == "POST"
    assert_error(httpx.get(server.url + "/api/v1/nothing"), 404, "not_found")
    assert_error(httpx.post(server.url + "/healthz"), 405, "method_not_allowed")


def test_truncated_multipart_body_is_400(server):
    # The body ends in the middle of a file part: no closing boundary.
    body = (f'--B\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n{server.key}\r\n'
            '--B\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{}\r\n'
            '--B\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n').encode() + png_bytes(4, 4)[:30]
    r = post(server.url, content=body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert_error(r, 400, "malformed_multipart")


def test_size_limits_are_413(start_server):
    s = start_server("--max-file-size", "1KiB", "--max-body-size", "8KiB", "--max-files", "2")
    big = png_bytes(40, 40, pixel=lambda x, y: ((x * 31 + y * 17) % 256, (x * y) % 256, (x ^ y) % 256))
    assert len(big) > 1024
    assert_error(post(s.url, **multipart(s.key, [("big.png", big)], [META_PLAIN])), 413, "file_too_large")
    small = png_bytes(2, 2)
    r = post(s.url, **multipart(s.key, [("a.png", small)] * 3, [META_PLAIN] * 3))
    assert_error(r, 413, "too_many_files")
    # Declared length over the body limit: refused before the body is read.
    r = post(s.url, content=b"x" * 9000, headers={"Content-Type": "multipart/form-data; boundary=zzzz", "X-API-Key": s.key})
    assert_error(r, 413, "body_too_large")
    # Chunked upload (no Content-Length) that grows past the limit.
    def gen():
        yield f'--zzzz\r\nContent-Disposition: form-data; name="query"\r\n\r\n'.encode()
        for _ in range(10):
            yield b"q" * 1000
    r = post(s.url, content=gen(), headers={"Content-Type": "multipart/form-data; boundary=zzzz", "X-API-Key": s.key})
    assert_error(r, 413, "body_too_large")
    # Without a valid key the answer is 401 whatever else is wrong.
    r = post(s.url, content=gen(), headers={"Content-Type": "multipart/form-data; boundary=zzzz"})
    assert_error(r, 401, "missing_api_key")
    r = post(s.url, data={"api_key": "sk_wrong", "bogus": "1"}, files=[("files", ("a.png", small))])
    assert_error(r, 401, "invalid_api_key")
    # The server is still fine afterwards.
    assert stream_lines(s.url, **multipart(s.key, [("a.png", small)], [META_PLAIN]))[-1][1]["succeeded"] == 1


def test_bad_images_get_per_file_errors_and_the_rest_goes_on(start_server):
    s = start_server("--max-pixels", "1000000")
    good = png_bytes(5, 4)
    bomb = bytearray(png_bytes(1, 1))
    bomb[16:24] = (20000).to_bytes(4, "big") * 2        # IHDR says 20000x20000
    import zlib
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    files = [("empty.jpg", b""), ("text.jpg", b"hello, not an image"), ("cut.png", good[:40]),
             ("bomb.png", bytes(bomb)), ("good.png", good), ("jpeg.jpg", photo("opencv_scenetext01.jpg")[:5000])]
    lines = stream_lines(s.url, **multipart(s.key, files, [META_PLAIN] * len(files)))
    msgs = check_sequence(lines, len(files))
    codes = {m["index"]: m.get("error", {}).get("code", "ok") for m in msgs[:-1] if m["status"] != "processing"}
    assert codes == {0: "empty_file", 1: "unsupported_image", 2: "corrupt_image", 3: "image_too_large",
                     4: "ok", 5: "corrupt_image"}


def test_filenames_are_returned_safely(server):
    # Raw bytes as a client may send them: quotes, backslash, UTF-8 and one invalid byte.
    raw_name = 'we\\ird name \u00fc'.encode() + b"\xff.png"
    body = (b'--bbbb\r\nContent-Disposition: form-data; name="files"; filename="' + raw_name + b'"\r\n\r\n' +
            png_bytes(2, 2) + b'\r\n--bbbb\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{}\r\n--bbbb--\r\n')
    lines = stream_lines(server.url, content=body, headers={"Content-Type": "multipart/form-data; boundary=bbbb",
                                                             "X-API-Key": server.key})
    assert lines[0][1]["filename"] == "we\\ird name \u00fc\ufffd.png"


def test_revoked_key_is_refused_within_a_second_by_a_running_server(server):
    # Verified keys are cached in memory, dropped when the store's keys
    # version moves (polled every 200 ms): a revocation applies within a second.
    key = server.keys("create", "--name", "short-lived").strip()
    img = [("a.png", png_bytes(2, 2))]
    assert stream_lines(server.url, **multipart(key, img, [META_PLAIN]))[-1][1]["succeeded"] == 1
    listing = server.keys("list")
    row = next(l for l in listing.splitlines() if "short-lived" in l)
    assert "active" in row and key not in listing  # the key itself is never shown again
    server.keys("revoke", row.split()[0])
    t0 = time.monotonic()
    while (r := post(server.url, **multipart(key, img, [META_PLAIN]))).status_code == 200:
        assert time.monotonic() - t0 < 1.0
    assert_error(r, 401, "invalid_api_key")
    assert "revoked" in next(l for l in server.keys("list").splitlines() if "short-lived" in l)


def test_request_id_is_echoed_or_generated(server):
    r = httpx.get(server.url + "/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = httpx.get(server.url + "/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 16
    assert httpx.get(server.url + "/nope").headers["x-request-id"]


def test_health_ready_metrics(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["active_keys"] >= 1
    stream_lines(server.url, **multipart(server.key, [("a.png", png_bytes(2, 2))], [META_PLAIN]))
    text = httpx.get(server.url + "/metrics").text
    assert 'sight_http_requests_total{route="predict_v1",status="200"}' in text
    assert 'sight_files_total{outcome="done"}' in text
    assert 'sight_stage_duration_seconds_bucket{stage="decode",le="+Inf"}' in text
    assert server.metric("sight_requests_in_flight") == 0


def test_client_disconnect_mid_stream_cancels_and_frees_the_request(start_server, slow_png):
    s = start_server("--workers", "1")
    files = [("small.png", png_bytes(4, 4))] + [(f"slow{i}.png", slow_png) for i in range(6)]
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", s.url + V1, **multipart(s.key, files, [META_PLAIN] * len(files))) as r:
            assert r.status_code == 200
            first = next(r.iter_lines())
            assert json.loads(first)["status"] == "processing"
        # leaving the block closes the connection mid-stream
    deadline = time.time() + 20
    while time.time() < deadline:
        if s.metric("sight_requests_in_flight") == 0 and s.metric('sight_files_total{outcome="cancelled"}') >= 1:
            break
        time.sleep(0.1)
    assert s.metric("sight_requests_in_flight") == 0
    # Most of the six slow files were skipped, not decoded for nobody.
    assert s.metric('sight_files_total{outcome="cancelled"}') >= 3
    assert "client went away" in s.log_text()


def test_too_many_requests_in_flight_is_429(start_server, slow_png):
    s = start_server("--workers", "1", "--max-inflight", "1", "--retry-after", "2")
    files = [(f"slow{i}.png", slow_png) for i in range(3)]
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", s.url + V1, **multipart(s.key, files, [META_PLAIN] * 3)) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # one iterator: dropping it would close the stream
            next(lines)
            r2 = post(s.url, **multipart(s.key, [("a.png", png_bytes(2, 2))], [META_PLAIN]))
            assert_error(r2, 429, "too_many_requests")
            assert r2.headers["retry-after"] == "2"
            rest = [json.loads(l) for l in lines if l]
    assert rest[-1]["status"] == "complete" and rest[-1]["succeeded"] == 3
    # Capacity is back once the first stream has ended.
    assert stream_lines(s.url, **multipart(s.key, [("a.png", png_bytes(2, 2))], [META_PLAIN]))[-1][1]["succeeded"] == 1


def test_slow_clients_do_not_block_others(start_server):
    s = start_server("--client-timeout", "2")
    idle = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=qqqq\r\nContent-Length: 100000\r\n\r\n--qqqq\r\n")
        idle.append(sock)
    t0 = time.monotonic()
    lines = stream_lines(s.url, **multipart(s.key, [("a.png", png_bytes(2, 2))], [META_PLAIN]))
    assert lines[-1][1]["succeeded"] == 1
    assert time.monotonic() - t0 < 1.5
    # The silent uploads are dropped after the client timeout.
    idle[0].settimeout(10)
    assert idle[0].recv(100) == b""
    for sock in idle:
        sock.close()


def test_sigterm_lets_running_streams_finish_then_exits_0(start_server, slow_png):
    s = start_server("--workers", "1")
    files = [("small.png", png_bytes(4, 4)), ("slow.png", slow_png), ("slow2.png", slow_png)]
    got = []

    def client():
        got.extend(m for _, m in stream_lines(s.url, **multipart(s.key, files, [META_PLAIN] * 3)))

    t = threading.Thread(target=client)
    t.start()
    deadline = time.time() + 20
    while s.metric("sight_requests_in_flight") < 1 and time.time() < deadline:
        time.sleep(0.02)
    s.proc.terminate()
    t.join(60)
    assert got and got[-1]["status"] == "complete" and got[-1]["succeeded"] == 3
    assert s.proc.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/healthz")


def test_cli_version_and_usage_errors(server):
    from conftest import SIGHTD
    r = subprocess.run([SIGHTD, "version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("sightd ")
    r = subprocess.run([SIGHTD, "serve", "--no-such-flag"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --no-such-flag" in r.stderr
    r = subprocess.run([SIGHTD, "keys", "create", "--db", server.db], capture_output=True, text=True)
    assert r.returncode == 2 and "--name" in r.stderr
    r = subprocess.run([SIGHTD, "keys", "revoke", "999999", "--db", server.db], capture_output=True, text=True)
    assert r.returncode == 1 and "no active key" in r.stderr
