"""Jobs on PostgreSQL shared by three nodes: a node SIGKILLed mid-job and the
job finishing on the others, and PostgreSQL restarted mid-job; in both each
item is exactly once in the results, the events and the usage ledger."""
import time

import httpx
import pytest

from pg_service import PgService, skip_reason
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
