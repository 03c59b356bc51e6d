"""Jobs on PostgreSQL shared by three nodes: a node SIGKILLed mid-job and the
job finishing on the others, and PostgreSQL restarted mid-job; in both each
item is exactly once in the results, the events and the usage ledger. And a
job's events followed while PostgreSQL is frozen stall no HTTP thread."""
import json
import threading
import time

import httpx
import pytest

from pg_service import PgService, skip_reason, wait_until
from sight_node import Node
from test_jobs import check_exactly_once, images  # noqa: F401 (images: the fixture)

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
JOBS = "/api/v1/jobs"


@pytest.fixture
def cluster(tmp_path, images):  # noqa: F811
    import subprocess
    from conftest import SIGHTD
    pg = PgService().start()
    db = pg.url(pg.createdb("jobs"))
    key = subprocess.run([SIGHTD, "keys", "create", "--name", "t", "--db", db], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    nodes = [Node(tmp_path, db, "--model", "none", "--url-allow", "127.0.0.2/32", "--job-lease", "2")
             for _ in range(3)]
    yield pg, nodes, key
    for n in nodes:
        if n.proc.poll() is None:
            assert n.stop() == 0, n.log_text()[-3000:]
    pg.close()


class Fake:
    def __init__(self, url):
        self.url = url


def status(node, key, job_id):
    return httpx.get(node.url + f"{JOBS}/{job_id}", headers={"X-API-Key": key}, timeout=30).json()


def wait(nodes, key, job_id, pred, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for n in nodes:
            try:
                j = status(n, key, job_id)
                if pred(j):
                    return j
            except (httpx.HTTPError, ValueError, KeyError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get there: {j}")


def usage_files(node, key):
    u = httpx.get(node.url + "/api/v1/usage", headers={"X-API-Key": key}, timeout=30).json()["usage"]
    return sum(d["files"] for d in u)


def test_node_killed_mid_job_the_others_finish_it_exactly_once(cluster, images):  # noqa: F811
    _, nodes, key = cluster
    total = 30
    items = [{"url": f"{images}/slow-k{i}.png"} for i in range(total)]
    r = httpx.post(nodes[0].url + JOBS, json={"items": items}, headers={"X-API-Key": key}, timeout=60)
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    wait(nodes, key, job, lambda j: j["succeeded"] >= 4)
    nodes[0].proc.kill()  # SIGKILL: the items it held come back when their lease lapses
    nodes[0].proc.wait()
    nodes[0].log.close()
    rest = nodes[1:]
    j = wait(rest, key, job, lambda j: j["status"] == "completed")
    assert j["succeeded"] == total and j["failed"] == 0
    check_exactly_once(Fake(rest[1].url), job, total, key)
    assert usage_files(rest[0], key) == total


def test_postgresql_restarted_mid_job(cluster, images):  # noqa: F811
    pg, nodes, key = cluster
    total = 24
    items = [{"url": f"{images}/slow-r{i}.png"} for i in range(total)]
    job = httpx.post(nodes[1].url + JOBS, json={"items": items}, headers={"X-API-Key": key}, timeout=60).json()["id"]
    wait(nodes, key, job, lambda j: j["succeeded"] >= 3)
    pg.stop(mode="immediate")
    time.sleep(1.0)
    pg.start()
    j = wait(nodes, key, job, lambda j: j["status"] == "completed", timeout=120)
    assert j["succeeded"] == total
    check_exactly_once(Fake(nodes[2].url), job, total, key)
    assert usage_files(nodes[0], key) == total


def test_events_read_with_postgres_frozen_stalls_no_http_thread(tmp_path, images):  # noqa: F811
    """The events route reads the store off the HTTP threads: with PostgreSQL
    frozen (SIGSTOP) while a follower waits for the next event, /healthz on
    the same (only) HTTP thread answers at once, and the follower, once
    PostgreSQL thaws, goes on to the complete line without a gap."""
    import subprocess
    from conftest import SIGHTD
    pg = PgService().start()
    node = None
    try:
        db = pg.url(pg.createdb("jobsfrozen"))
        key = subprocess.run([SIGHTD, "keys", "create", "--name", "t", "--db", db], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
        node = Node(tmp_path, db, "--model", "none", "--url-allow", "127.0.0.2/32", "--http-threads", "1")
        # Jobs are available from the first request (the store is opened before the HTTP front).
        assert wait_until(lambda: httpx.get(node.url + JOBS, headers={"X-API-Key": key}, timeout=30).status_code == 200,
                          timeout=30), node.log_text()[-3000:]
        total = 12
        items = [{"url": f"{images}/slow-f{i}.png"} for i in range(total)]
        r = httpx.post(node.url + JOBS, json={"items": items}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 201, r.text + node.log_text()[-3000:]
        job = r.json()["id"]
        got, failed = [], []

        def follow():
            # As a client does: a dropped stream is resumed with after= the last seq read.
            drops = 0
            while not (got and got[-1][1]["status"] == "complete"):
                after = got[-1][1]["seq"] if got else 0
                try:
                    with httpx.stream("GET", node.url + f"{JOBS}/{job}/events?after={after}",
                                      headers={"X-API-Key": key}, timeout=120) as resp:
                        assert resp.status_code == 200
                        for line in resp.iter_lines():
                            if line:
                                got.append((time.time(), json.loads(line)))
                except httpx.HTTPError as e:
                    drops += 1
                    if drops > 5:
                        failed.append(e)
                        return
                    time.sleep(0.5)

        t = threading.Thread(target=follow)
        t.start()
        wait([node], key, job, lambda j: j["succeeded"] >= 2)
        pg.freeze()
        frozen_at = time.time()
        health = []
        try:
            time.sleep(0.5)  # the follower's next read (every 200 ms) is in, waiting on PostgreSQL
            while time.time() - frozen_at < 4:
                h = time.time()
                assert httpx.get(node.url + "/healthz", timeout=30).status_code == 200
                health.append(time.time() - h)
                time.sleep(0.1)
            during = [e for at, e in got if frozen_at + 0.5 < at]
        finally:
            pg.thaw()
        thawed_at = time.time()
        t.join(timeout=120)
        assert not t.is_alive() and not failed, failed
        assert during == [], during  # the store read did stall while frozen
        assert len(health) >= 10 and max(health) < 0.5, health
        events = [e for _, e in got]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["status"] == "complete", events[-3:]
        assert any(at > thawed_at for at, _ in got)  # the stream went on after the thaw
        assert status(node, key, job)["succeeded"] == total
    finally:
        if node is not None and node.proc.poll() is None:
            assert node.stop() == 0, node.log_text()[-3000:]
        pg.close()


def test_item_options_survive_the_postgresql_store(tmp_path, images):  # noqa: F811
    """A sliced item's option is stored with it (job_items.opts) and the
    node that claims it from PostgreSQL runs it sliced."""
    import subprocess
    from conftest import SIGHTD
    pg = PgService().start()
    node = None
    try:
        name = pg.createdb("jobopts")
        db = pg.url(name)
        key = subprocess.run([SIGHTD, "keys", "create", "--name", "t", "--db", db], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
        node = Node(tmp_path, db, "--url-allow", "127.0.0.2/32")
        items = [{"url": f"{images}/big-pg.png", "is_yolo": True, "slice": {"full": False}},
                 {"url": f"{images}/big-pg.png", "is_yolo": True}]
        r = httpx.post(node.url + JOBS, json={"items": items}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 201, r.text
        job = r.json()["id"]
        wait([node], key, job, lambda j: j["status"] == "completed")
        stored = pg.psql(f"SELECT string_agg(coalesce(opts, '-'), ' ' ORDER BY idx) FROM job_items"
                         f" WHERE job_id = '{job}'", db=name)
        assert stored == '{"slice":{"full":false}} -', stored
        res, _ = check_exactly_once(Fake(node.url), job, 2, key)
        sliced, plain = (x["result"]["yolo"] for x in sorted(res, key=lambda x: x["index"]))
        assert sliced["runs"] == 6 and sliced["full_pass"] is False and "slices" not in plain
    finally:
        if node and node.proc.poll() is None:
            assert node.stop() == 0, node.log_text()[-3000:]
        pg.close()
