"""Jobs (POST /api/v1/jobs and below) on the SQLite key store with one node:
the whole flow, events resumed with after=, results, idempotency, cancel,
retention, limits, and a node killed mid-job and restarted on the same
database. Images come from a local server on 127.0.0.2 (allowlisted with
--url-allow); every address used is on loopback."""
import http.server
import json
import shutil
import sqlite3
import threading
import time

import httpx
import pytest

from conftest import Server, png_bytes
from fake_openai import FakeOpenAI
from test_openapi import checker  # noqa: F401 (the fixture)

JOBS = "/api/v1/jobs"


class ImageHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    png = png_bytes(64, 48)
    big = png_bytes(800, 600)  # sliced: 3 x 2 tiles of 416
    clip = b""  # a short video, set by the test that serves it
    hits = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        ImageHandler.hits[path] = ImageHandler.hits.get(path, 0) + 1
        if path.startswith("/slow"):
            time.sleep(0.3)
        if path.startswith("/text"):
            body, ctype = b"<html>not an image</html>", "text/html"
        elif path.startswith("/big"):
            body, ctype = self.big, "image/png"
        elif path.startswith("/clip"):
            body, ctype = self.clip, "video/mp4"
        else:
            body, ctype = self.png, "image/png"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def images():
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), ImageHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.2:{srv.server_address[1]}"
    srv.shutdown()


ARGS = ("--model", "none", "--url-allow", "127.0.0.2/32", "--workers", "3")


@pytest.fixture(scope="module")
def node(tmp_path_factory, images):
    s = Server(tmp_path_factory.mktemp("jobs"), *ARGS)
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def create(s, items, key=None, headers=None, **extra):
    h = {"X-API-Key": key or s.key, **(headers or {})}
    return httpx.post(s.url + JOBS, json={"items": items, **extra}, headers=h, timeout=60)


def get(s, path, key=None, **kw):  # s: anything with .url and .key
    return httpx.get(s.url + path, headers={"X-API-Key": key or s.key}, timeout=60, **kw)


def lines(text):
    return [json.loads(x) for x in text.splitlines() if x]


def wait_status(s, job_id, want, key=None, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = get(s, f"{JOBS}/{job_id}", key).json()
        if j["status"] in want:
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {j}")


def usage_files(s, key=None):
    days = get(s, "/api/v1/usage", key).json()["usage"]
    return sum(d["files"] for d in days)


def check_exactly_once(s, job_id, total, key=None):
    res = lines(get(s, f"{JOBS}/{job_id}/results", key).text)
    assert sorted(r["index"] for r in res) == list(range(total))
    assert all(r["status"] in ("done", "error") for r in res)
    evs = lines(get(s, f"{JOBS}/{job_id}/events", key).text)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))  # gapless, no repeat
    finals = [e["index"] for e in evs if e["status"] in ("done", "error") and "index" in e]
    assert sorted(finals) == list(range(total))
    assert evs[-1]["status"] == "complete"
    return res, evs


def test_job_flow_events_results_and_usage(node, images):
    before = usage_files(node)
    items = [{"url": f"{images}/ok{i}.png"} for i in range(12)] + [{"url": f"{images}/text{i}.html"} for i in range(3)]
    r = create(node, items)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["total"] == 15 and job["id"].startswith("job_")
    # Following the events from the start ends with "complete" by itself.
    with httpx.stream("GET", node.url + f"{JOBS}/{job['id']}/events", headers={"X-API-Key": node.key}, timeout=60) as ev:
        assert ev.status_code == 200
        assert ev.headers["content-type"].startswith("application/x-ndjson")
        followed = [json.loads(x) for x in ev.iter_lines() if x]
    assert followed[-1]["status"] == "complete" and followed[-1]["succeeded"] == 12 and followed[-1]["failed"] == 3
    j = get(node, f"{JOBS}/{job['id']}").json()
    assert j["status"] == "completed" and j["succeeded"] == 12 and j["failed"] == 3 and j["finished_at"]
    res, evs = check_exactly_once(node, job["id"], 15)
    assert [e["seq"] for e in followed] == [e["seq"] for e in evs]
    by_index = {x["index"]: x for x in res}
    assert by_index[0]["status"] == "done" and by_index[0]["url"] == f"{images}/ok0.png"
    assert by_index[12]["status"] == "error"
    # Resumed after any seq: the rest, no gap, no repeat.
    for k in (0, 5, len(evs) - 1, len(evs)):
        rest = lines(get(node, f"{JOBS}/{job['id']}/events", params={"after": k}).text)
        assert [e["seq"] for e in rest] == list(range(k + 1, len(evs) + 1))
    # Each item once in the ledger.
    assert usage_files(node) - before == 15


def test_other_key_and_unknown_job_are_404(node, images):
    other = node.keys("create", "--name", "other").strip()
    job = create(node, [{"url": f"{images}/ok.png"}]).json()
    for path in (f"{JOBS}/{job['id']}", f"{JOBS}/{job['id']}/events", f"{JOBS}/{job['id']}/results"):
        r = get(node, path, other)
        assert r.status_code == 404 and r.json()["detail"]["code"] == "job_not_found", path
    assert httpx.delete(node.url + f"{JOBS}/{job['id']}", headers={"X-API-Key": other}).status_code == 404
    assert get(node, f"{JOBS}/job_00000000000000000000").status_code == 404
    assert httpx.get(node.url + f"{JOBS}/{job['id']}").status_code == 401
    assert get(node, JOBS, other).json()["jobs"] == []
    wait_status(node, job["id"], ("completed",))


def test_list_is_newest_first_and_paginated(node, images):
    key = node.keys("create", "--name", "lister").strip()
    ids = [create(node, [{"url": f"{images}/ok.png"}], key=key).json()["id"] for _ in range(5)]
    for i in ids:
        wait_status(node, i, ("completed",), key)
    page1 = get(node, JOBS, key, params={"limit": 2}).json()
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:2]
    page2 = get(node, JOBS, key, params={"limit": 2, "before": page1["next_before"]}).json()
    page3 = get(node, JOBS, key, params={"limit": 2, "before": page2["next_before"]}).json()
    assert [j["id"] for j in page2["jobs"] + page3["jobs"]] == ids[::-1][2:]
    assert page3["next_before"] is None


def test_idempotency_key_replay_and_reuse(node, images):
    h = {"Idempotency-Key": "batch-42"}
    items = [{"url": f"{images}/ok.png", "is_yolo": False}]
    a = create(node, items, headers=h)
    b = create(node, items, headers=h)
    assert a.status_code == 201 and b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    c = create(node, items + items, headers=h)
    assert c.status_code == 422 and c.json()["detail"]["code"] == "idempotency_key_reused"
    # Another key's same Idempotency-Key is its own.
    other = node.keys("create", "--name", "idem").strip()
    assert create(node, items, key=other, headers=h).status_code == 201
    wait_status(node, a.json()["id"], ("completed",))


def test_body_checks(node, images):
    r = httpx.post(node.url + JOBS, content=b"{nope", headers={"X-API-Key": node.key, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"]["code"] == "malformed_json"
    r = httpx.post(node.url + JOBS, json={"items": [{"url": "x"}]})
    assert r.status_code == 401
    r = httpx.post(node.url + JOBS, json={"api_key": node.key, "items": []})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "no_items"
    r = create(node, [{"url": f"{images}/ok.png", "colour": 1}])
    assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid_item"
    r = create(node, [{"url": f"{images}/ok.png"}], surprise=True)
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_field"
    r = httpx.put(node.url + JOBS, headers={"X-API-Key": node.key})
    assert r.status_code == 405


@pytest.mark.parametrize("opt,code,words", [
    ({"slice": {"size": 8}}, "invalid_slice", "items[1].slice.size"),
    ({"slice": {"size": 640, "sise": 1}}, "invalid_slice", "items[1].slice has unknown key 'sise'"),
    ({"slice": "always"}, "invalid_slice", "items[1].slice must be"),
    ({"fps": -2}, "invalid_item", "items[1].fps"),
    ({"max_frames": 0}, "invalid_item", "items[1].max_frames"),
    ({"track": "yes"}, "invalid_item", "items[1].track"),
    ({"track_stream": ""}, "invalid_item", "items[1].track_stream"),
])
def test_item_options_are_checked_as_v2_checks_them(node, images, opt, code, words):
    """v2's per-file options, refused with v2's codes, naming the item; no job is made."""
    before = len(get(node, JOBS, params={"limit": 100}).json()["jobs"])
    r = create(node, [{"url": f"{images}/ok.png"}, {"url": f"{images}/ok.png", "is_yolo": True, **opt}])
    assert r.status_code == 422 and r.json()["detail"]["code"] == code, r.text
    assert words in r.json()["detail"]["message"], r.text
    assert len(get(node, JOBS, params={"limit": 100}).json()["jobs"]) == before
    v2 = httpx.post(node.url + "/api/v1/inference/predict/stream/v2", timeout=60, json={"api_key": node.key, "data": [
        {"image_url": f"{images}/ok.png", "is_yolo": True, **opt}]})
    assert v2.status_code == 422 and v2.json()["detail"]["code"] == code, v2.text


def test_limits_on_items_and_open_jobs(start_server, images):
    s = start_server(*ARGS, "--max-job-items", "3", "--max-open-jobs", "1")
    r = create(s, [{"url": f"{images}/ok.png"}] * 4)
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_many_items"
    first = create(s, [{"url": f"{images}/slow.png"}] * 3)
    assert first.status_code == 201
    r = create(s, [{"url": f"{images}/ok.png"}])
    assert r.status_code == 429 and r.json()["detail"]["code"] == "too_many_open_jobs"
    wait_status(s, first.json()["id"], ("completed",))
    assert create(s, [{"url": f"{images}/ok.png"}]).status_code == 201


def test_cancel_stops_items_not_started(start_server, images):
    s = start_server(*ARGS[:-2], "--workers", "2")  # four items at a time (2 x workers)
    before = usage_files(s)
    job = create(s, [{"url": f"{images}/slow{i}.png"} for i in range(20)]).json()
    time.sleep(0.8)
    r = httpx.delete(s.url + f"{JOBS}/{job['id']}", headers={"X-API-Key": s.key})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    done = r.json()["succeeded"] + r.json()["failed"]
    assert done < 20
    time.sleep(1.0)
    j = get(s, f"{JOBS}/{job['id']}").json()
    assert j["status"] == "cancelled" and j["succeeded"] + j["failed"] == done
    res = lines(get(s, f"{JOBS}/{job['id']}/results").text)
    assert sorted(x["index"] for x in res) == list(range(20))
    assert sum(1 for x in res if x["status"] == "error" and x["error"]["code"] == "cancelled") == 20 - done
    evs = lines(get(s, f"{JOBS}/{job['id']}/events").text)
    assert evs[-1]["status"] == "complete" and evs[-1]["job_status"] == "cancelled"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    # Only what ran is metered; the rest never ran.
    assert usage_files(s) - before == done
    assert sum(ImageHandler.hits.get(f"/slow{i}.png", 0) for i in range(20)) <= done + 4  # + those running


def test_retention_purges_ended_jobs(start_server, images):
    s = start_server(*ARGS, "--job-retention", "1")
    job = create(s, [{"url": f"{images}/ok.png"}]).json()
    wait_status(s, job["id"], ("completed",))
    deadline = time.time() + 10
    while time.time() < deadline and get(s, f"{JOBS}/{job['id']}").status_code == 200:
        time.sleep(0.2)
    assert get(s, f"{JOBS}/{job['id']}").status_code == 404
    assert "purged 1 ended job" in s.log_text()


def test_node_killed_mid_job_finishes_after_restart(tmp_path, images):
    db = str(tmp_path / "shared.db")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", *ARGS, "--job-lease", "2", db=db)
    key = a.key
    b = None
    try:
        total = 24
        job = create(a, [{"url": f"{images}/slow{i}.png"} for i in range(total)]).json()
        wait_for = time.time() + 30
        while get(a, f"{JOBS}/{job['id']}").json()["succeeded"] < 3 and time.time() < wait_for:
            time.sleep(0.05)
        a.proc.kill()  # SIGKILL: its claimed items keep their lease until it lapses
        a.proc.wait()
        a.log.close()
        b = Server(tmp_path / "b", *ARGS, "--job-lease", "2", db=db)
        j = wait_status(b, job["id"], ("completed",), key)
        assert j["succeeded"] == total
        check_exactly_once(b, job["id"], total, key)
        days = get(b, "/api/v1/usage", key).json()["usage"]
        assert sum(d["files"] for d in days) == total
    finally:
        if b:
            assert b.stop() == 0, b.log_text()[-3000:]
        if a.proc.poll() is None:
            a.stop()


class HookReceiver(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first delivery of each webhook-id, then 200."""
    protocol_version = "HTTP/1.1"
    got = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        wid = self.headers["webhook-id"]
        first = all(g["id"] != wid for g in HookReceiver.got)
        HookReceiver.got.append({"id": wid, "ts": self.headers["webhook-timestamp"],
                                 "sig": self.headers["webhook-signature"], "body": body, "at": time.time()})
        self.send_response(500 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_webhook_is_signed_and_retried(start_server, images):
    import base64
    import hashlib
    import hmac
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), HookReceiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    raw = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(raw).decode()
    try:
        s = start_server(*ARGS)
        hook = {"url": f"http://127.0.0.2:{srv.server_address[1]}/hook", "secret": secret}
        bad = create(s, [{"url": f"{images}/ok.png"}], webhook={**hook, "secret": "nope"})
        assert bad.status_code == 422 and bad.json()["detail"]["code"] == "invalid_webhook_secret"
        job = create(s, [{"url": f"{images}/ok{i}.png"} for i in range(3)], webhook=hook).json()
        deadline = time.time() + 20
        while time.time() < deadline and len(HookReceiver.got) < 2:
            time.sleep(0.1)
        got = HookReceiver.got
        assert len(got) == 2, got
        assert got[0]["id"] == got[1]["id"] and got[1]["at"] - got[0]["at"] >= 0.9  # the same message, after a backoff
        for g in got:
            signed = f"{g['id']}.{g['ts']}.".encode() + g["body"]
            want = base64.b64encode(hmac.new(raw, signed, hashlib.sha256).digest()).decode()
            assert g["sig"] == "v1," + want
        ev = json.loads(got[1]["body"])
        assert ev["type"] == "job.completed"
        assert ev["data"]["id"] == job["id"] and ev["data"]["succeeded"] == 3 and ev["data"]["status"] == "completed"
        time.sleep(1.5)
        assert len(HookReceiver.got) == 2  # delivered: no more attempts
    finally:
        srv.shutdown()


def test_webhook_url_goes_through_the_address_policy(start_server, images):
    import base64
    s = start_server(*ARGS)
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    # 127.0.0.1 is not allowlisted (only 127.0.0.2 is): never connected to.
    seen = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(1)
            self.send_response(200)
            self.end_headers()

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        hook = {"url": f"http://127.0.0.1:{trap.server_address[1]}/hook", "secret": secret}
        job = create(s, [{"url": f"{images}/ok.png"}], webhook=hook).json()
        wait_status(s, job["id"], ("completed",))
        time.sleep(2.0)
        assert seen == []
        assert "webhook" in s.log_text() and "got no answer" in s.log_text()
    finally:
        trap.shutdown()


def test_job_responses_match_the_openapi_document(node, images, checker, tmp_path):
    from test_openapi import DOC
    job = create(node, [{"url": f"{images}/ok.png"}, {"url": f"{images}/text.html"}]).json()
    wait_status(node, job["id"], ("completed",))
    s = [{"schema": "Job", "body": job}, {"schema": "Job", "body": get(node, f"{JOBS}/{job['id']}").json()},
         {"schema": "JobList", "body": get(node, JOBS).json()},
         {"schema": "Error", "body": get(node, f"{JOBS}/job_00000000000000000000").json()}]
    s += [{"schema": "JobEvent", "body": x} for x in lines(get(node, f"{JOBS}/{job['id']}/events").text)]
    s += [{"schema": "JobEvent", "body": x} for x in lines(get(node, f"{JOBS}/{job['id']}/results").text)]
    out = checker(DOC, s, tmp_path)
    assert out["ok"], out["errors"]


def test_cli_lists_shows_and_cancels(start_server, images):
    import subprocess
    from conftest import SIGHTD
    s = start_server(*ARGS[:-2], "--workers", "2")

    def cli(*args):
        return subprocess.run([SIGHTD, "jobs", *args, "--db", s.db], capture_output=True, text=True, timeout=30)

    job = create(s, [{"url": f"{images}/slow-cli{i}.png"} for i in range(60)]).json()  # 9 s at 2 at once
    out = cli("list", "--json")
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[0])["id"] == job["id"]
    assert job["id"] in cli("list").stdout
    assert json.loads(cli("show", job["id"]).stdout)["total"] == 60
    c = cli("cancel", job["id"])
    assert c.returncode == 0 and json.loads(c.stdout)["status"] == "cancelled"
    assert get(s, f"{JOBS}/{job['id']}").json()["status"] == "cancelled"
    bad = cli("show", "job_nope")
    assert bad.returncode == 1 and "no job" in bad.stderr
    assert cli("frobnicate").returncode == 2


def test_quota_counts_items_as_they_run(start_server, images):
    s = start_server(*ARGS)
    key = s.keys("create", "--name", "quota").strip()
    kid = next(line.split()[0] for line in s.keys("list").splitlines()[1:] if line.split()[2] == "quota")
    s.keys("update", kid, "--quota-images", "5/day")
    job = create(s, [{"url": f"{images}/q{i}.png"} for i in range(8)], key=key).json()
    j = wait_status(s, job["id"], ("completed",), key)
    assert j["succeeded"] == 5 and j["failed"] == 3
    res = lines(get(s, f"{JOBS}/{job['id']}/results", key).text)
    assert sorted(x["index"] for x in res) == list(range(8))
    assert sum(1 for x in res if x["status"] == "error" and x["error"]["code"] == "quota_exceeded") == 3
    assert usage_files(s, key) == 5  # the refused items are not metered


def test_llm_deltas_are_kept_one_line_per_item(start_server, images):
    fake = FakeOpenAI(api_key="sk-jobs")
    fake.script = lambda req: ("stream", ["A ", "red ", "square", "."], {})
    try:
        s = start_server(*ARGS, "--llm-url", fake.url, "--llm-model", fake.model, "--llm-timeout", "20",
                         env={"SIGHT_LLM_API_KEY": "sk-jobs"})
        items = [{"url": f"{images}/llm{i}.png", "is_llm": True, "is_yolo": False} for i in range(3)]
        items.append({"url": f"{images}/plain.png"})
        job = create(s, items, query="What is it?").json()
        wait_status(s, job["id"], ("completed",))
        res, evs = check_exactly_once(s, job["id"], 4)
        assert len(fake.requests) == 3 and not fake.errors
        for i in range(3):
            mine = [e for e in evs if e.get("index") == i]
            # processing, the deltas as one line, then done; seq in that order.
            assert [e["status"] for e in mine] == ["processing", "llm_delta", "done"], mine
            assert mine[0]["seq"] < mine[1]["seq"] < mine[2]["seq"]
            assert mine[1]["delta"] == "A red square." and mine[1]["url"] == f"{images}/llm{i}.png"
            assert mine[2]["result"]["llm"]["response"] == "A red square."
        assert [e["status"] for e in evs if e.get("index") == 3] == ["processing", "done"]
    finally:
        fake.close()


def v2_lines(s, item):
    r = httpx.post(s.url + "/api/v1/inference/predict/stream/v2", json={"api_key": s.key, "data": [item]}, timeout=120)
    assert r.status_code == 200, r.text
    return lines(r.text)


def test_sliced_item_runs_sliced_as_in_v2(start_server, images):
    """A job item with "slice" gives the done line v2 gives the same item;
    the option is kept with the item in the store (a restart would run it so)."""
    s = start_server("--url-allow", "127.0.0.2/32")
    slc = {"full": False}
    items = [{"url": f"{images}/big-a.png", "is_yolo": True, "slice": slc},
             {"url": f"{images}/big-b.png", "is_yolo": True},
             {"url": f"{images}/big-c.png", "is_yolo": True, "slice": True}]  # automatic: 800x600 is not big enough
    r = create(s, items)
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    assert wait_status(s, job, ("completed",))["succeeded"] == 3
    res = {x["index"]: x for x in lines(get(s, f"{JOBS}/{job}/results").text)}
    sliced, plain, auto = (res[i]["result"]["yolo"] for i in range(3))
    assert sliced["runs"] == 6 and len(sliced["slices"]) == 6 and sliced["full_pass"] is False
    assert sliced["merge"] == "nmm"
    assert "slices" not in plain and plain.get("runs") is None
    assert "slices" not in auto
    # Kept with each item in the store, as given.
    with sqlite3.connect(s.db) as db:
        stored = [x for (x,) in db.execute("SELECT opts FROM job_items WHERE job_id = ? ORDER BY idx", (job,))]
    assert stored == ['{"slice":{"full":false}}', None, '{"slice":true}']
    # What v2 shows for the same item.
    want = next(x for x in v2_lines(s, {"image_url": items[0]["url"], "is_yolo": True, "slice": slc})
                if x["status"] == "done")["result"]["yolo"]
    for k in ("runs", "slices", "full_pass", "merge", "detections"):
        assert sliced[k] == want[k], k
    check_exactly_once(s, job, 3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (Debian) makes the clip")
def test_video_item_keeps_its_frames_and_tracks(start_server, images, tmp_path, checker):  # noqa: F811
    """A video URL with v2's video keys: its frame lines are the job's events
    (numbered with the rest, between its processing and done lines) and its
    done line has the frames and tracks v2 gives."""
    from test_video import ffmpeg, walk_args
    ffmpeg(*walk_args(2), "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart",
           str(tmp_path / "short.mp4"))
    ImageHandler.clip = (tmp_path / "short.mp4").read_bytes()
    s = start_server("--url-allow", "127.0.0.2/32")
    item = {"url": f"{images}/clip.mp4", "is_yolo": True, "track": True, "fps": 2}
    r = create(s, [{"url": f"{images}/ok.png", "is_yolo": True}, item])
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    assert wait_status(s, job, ("completed",))["succeeded"] == 2
    res, evs = check_exactly_once(s, job, 2)
    mine = [e for e in evs if e.get("index") == 1]
    assert [e["status"] for e in mine] == ["processing"] + ["frame"] * 4 + ["done"]
    assert [e["seq"] for e in mine] == list(range(mine[0]["seq"], mine[0]["seq"] + 6))
    frames, done = mine[1:5], mine[5]
    assert all(f["url"] == item["url"] and f["filename"] == "clip.mp4" for f in frames)
    assert done == {**res[1], "seq": done["seq"]}
    v2 = v2_lines(s, {"image_url": item["url"], "is_yolo": True, "track": True, "fps": 2})
    v2_frames = [x for x in v2 if x["status"] == "frame"]
    v2_done = next(x for x in v2 if x["status"] == "done")
    assert [f["time_ms"] for f in frames] == [f["time_ms"] for f in v2_frames] == [0, 520, 1000, 1520]
    assert [f["frame"] for f in frames] == [f["frame"] for f in v2_frames]
    dets = [[(d["class"], d["track_id"], d["box"]) for d in f["result"]["yolo"]["detections"]] for f in frames]
    assert dets == [[(d["class"], d["track_id"], d["box"]) for d in f["result"]["yolo"]["detections"]]
                    for f in v2_frames]
    assert any(d[1] is not None for f in dets for d in f)  # tracked
    assert done["result"]["video"]["frames"] == v2_done["result"]["video"]["frames"] == 4
    assert done["result"]["tracks"] and done["result"]["tracks"] == v2_done["result"]["tracks"]
    from test_openapi import DOC
    body = {"items": [item, {"url": f"{images}/big.png", "slice": {"size": 256, "merge": "nms"}}]}
    out = checker(DOC, [{"schema": "JobRequest", "body": body}] + [{"schema": "JobEvent", "body": x} for x in evs], tmp_path)
    assert out["ok"], out["errors"]
