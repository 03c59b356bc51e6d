"""Three sightd nodes as one service: a real PostgreSQL (keys and the usage
ledger), a real Redis (limits) and HAProxy in front (deploy/haproxy.cfg), all
started here on 127.0.0.1 and stopped at the end.

Requests are "quick" (a small PNG, no model stage) unless a test needs work
in flight, so what is measured is the sharing, not the inference."""
import json
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import SIGHTD, V1, multipart, png_bytes
from haproxy_service import HAProxy
from pg_service import PgService, skip_reason, wait_until
from redis_service import REDIS_SERVER, RedisService
from sight_node import Node

pytestmark = [
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
    pytest.mark.skipif(not __import__("os").path.exists(REDIS_SERVER),
                       reason="redis-server is not installed (scripts/bootstrap --test)"),
]

QUICK = json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": False})
YOLO = json.dumps({"is_yolo": True, "is_ocr": False, "is_llm": False})
SMALL_PNG = png_bytes(64, 48)
# Large enough that its decode and detection keep a request in flight for a while (the kill test).
BIG_PNG = png_bytes(2400, 1800, pixel=lambda x, y: ((x * 7 + y) % 256, (y * 5) % 256, (x ^ y) % 256))


class Fleet:
    """PostgreSQL + Redis + three nodes + HAProxy, in that order."""

    def __init__(self, tmp, *node_args):
        self.tmp = tmp
        self.pg = PgService().start()
        self.db = self.pg.url(self.pg.createdb("sight"))
        self.redis = RedisService(tmp / "redis")
        self.nodes = [Node(tmp, self.db, "--redis", self.redis.url, "--workers", "1", *node_args)
                      for _ in range(3)]
        self.lb = HAProxy(tmp, [f"127.0.0.1:{n.port}" for n in self.nodes])
        self.lb.wait_states({"n1": "UP", "n2": "UP", "n3": "UP"}, timeout=15)

    def sightd(self, *args):
        r = subprocess.run([SIGHTD, *args, "--db", self.db], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def new_key(self, name, *limits):
        """A key made once through the CLI on PostgreSQL; returns (key, id)."""
        key = self.sightd("keys", "create", "--name", name).strip()
        kid = next(line.split()[0] for line in self.sightd("keys", "list").splitlines()[1:]
                   if line.split()[2] == name)
        if limits:
            self.sightd("keys", "update", kid, *limits)
        return key, kid

    def usage_today(self, kid):
        rows = json.loads(self.sightd("usage", "--key", kid, "--json"))
        entries = rows[0]["usage"] if isinstance(rows, list) else rows["usage"]
        return entries[-1]

    def close(self, killed=()):
        self.lb.stop()
        codes = [(n, n.stop()) for n in self.nodes if n not in killed]
        self.redis.stop()
        self.pg.close()
        for n, rc in codes:
            assert rc == 0, f"sightd exited with {rc}:\n{n.log_text()[-4000:]}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    yield f
    f.close()


def predict(base, key, meta=QUICK, timeout=60, image=SMALL_PNG):
    """One v1 request; returns (status, events) with events parsed from NDJSON."""
    with httpx.Client(timeout=timeout) as c:
        r = c.post(base + V1, **multipart(key, [("a.png", image, "image/png")], [meta]))
        events = [json.loads(line) for line in r.text.splitlines() if line.strip()] if r.status_code == 200 else []
        return r, events


def completed(events):
    return bool(events) and events[-1].get("status") == "complete"


def test_a_key_made_once_works_on_every_node(fleet):
    key, _ = fleet.new_key("everywhere")
    for n in fleet.nodes:
        r, ev = predict(n.url, key)
        assert r.status_code == 200 and completed(ev), (n.url, r.text)
    r, ev = predict(fleet.lb.url, key)
    assert r.status_code == 200 and completed(ev)


def test_a_rate_is_shared_by_the_nodes(fleet):
    """60/min across the cluster: 60 (+1 if the bucket refills meanwhile) of 90. The bucket
    gains a token a second, so a run slowed past a second (a loaded machine) may earn more."""
    key, _ = fleet.new_key("shared-rate", "--rate", "60/min")
    t0 = time.monotonic()
    with ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(lambda _: predict(fleet.lb.url, key)[0], range(90)))
    refills = int(time.monotonic() - t0)
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert 60 <= len(ok) <= 61 + refills, (refills, [r.status_code for r in answers])
    for r in refused:
        assert r.status_code == 429 and r.json()["detail"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
    # The round robin spread them: every node answered some of the 90.
    served = [n.metric('sight_http_requests_total{route="predict_v1",status="200"}') for n in fleet.nodes]
    assert all(s > 0 for s in served), served


def test_a_revocation_reaches_every_node_within_a_second(fleet):
    key, kid = fleet.new_key("to-revoke")
    for n in fleet.nodes:  # cached on every node
        assert predict(n.url, key)[0].status_code == 200
    fleet.sightd("keys", "revoke", kid)
    t0 = time.monotonic()
    refused_at = {}
    while len(refused_at) < 3 and time.monotonic() - t0 < 5:
        for n in fleet.nodes:
            if n.url not in refused_at and predict(n.url, key)[0].status_code == 401:
                refused_at[n.url] = time.monotonic() - t0
        time.sleep(0.02)
    assert len(refused_at) == 3 and max(refused_at.values()) <= 1.0, refused_at


def test_usage_summed_over_the_cluster_equals_what_was_served(fleet):
    key, kid = fleet.new_key("metered")
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: predict(fleet.lb.url, key), range(30)))
    served = sum(1 for r, ev in results if completed(ev))
    assert served == 30
    today = fleet.usage_today(kid)
    assert today["requests"] == 30 and today["files"] == 30 and today["succeeded"] == 30, today
    assert today["bytes_in"] == 30 * len(SMALL_PNG), today


def refusal(r):
    try:
        return r.json()["detail"]["code"]
    except (ValueError, KeyError, TypeError):
        return r.text[:60]


class Load:
    """Four clients sending requests through the balancer until stopped; each
    result is (start time, status, completed, error)."""

    def __init__(self, base, key, meta, image=SMALL_PNG):
        self.base, self.key, self.meta, self.image = base, key, meta, image
        self.results = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(4)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                r, ev = predict(self.base, self.key, self.meta, timeout=90, image=self.image)
                # A refusal's code, or the start of a body that is not Sight's (the balancer's own).
                item = (t, r.status_code, completed(ev), None if r.status_code == 200 else refusal(r))
            except httpx.HTTPError as e:
                item = (t, None, False, type(e).__name__)
            with self.lock:
                self.results.append(item)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.results


def test_a_node_killed_under_load(tmp_path):
    f = Fleet(tmp_path)
    victim = f.nodes[1]
    try:
        key, kid = f.new_key("under-load")
        load = Load(f.lb.url, key, YOLO, BIG_PNG)  # requests are in flight when the node dies
        time.sleep(2)
        assert wait_until(lambda: victim.metric("sight_requests_in_flight") >= 1, timeout=30, step=0.01)
        victim.proc.send_signal(signal.SIGKILL)
        t_kill = time.monotonic()
        victim.proc.wait()
        time.sleep(3)
        results = load.finish()
        f.lb.wait_states({"n2": "DOWN"})
        # Clients of the killed node saw their stream end without `complete`.
        cut = [x for x in results if not x[2]]
        assert cut, "no request was in flight on the killed node"
        assert len(cut) <= 4, cut  # at most one per client: those on the node when it died
        # Every request started after the kill succeeded: HAProxy retried or routed around it.
        after = [x for x in results if x[0] > t_kill]
        assert len(after) >= 8 and all(x[1] == 200 and x[2] for x in after), after
        # Every request that got `complete` is in the ledger (a cut one may be too:
        # its row is committed just before its `complete` line is sent).
        done = sum(1 for x in results if x[2])
        requests = f.usage_today(kid)["requests"]
        assert done <= requests <= done + len(cut), (done, requests, len(cut))
    finally:
        f.close(killed=(victim,))


def test_postgresql_restarted_under_load(tmp_path):
    f = Fleet(tmp_path)
    try:
        key, kid = f.new_key("pg-outage")
        for n in f.nodes:  # the key is cached on every node
            assert predict(n.url, key)[0].status_code == 200
        load = Load(f.lb.url, key, QUICK)
        time.sleep(1)
        f.pg.stop(mode="immediate")
        time.sleep(3)
        f.pg.start()
        # Ledger writes are retried until they succeed; then requests flow again.
        wait_until(lambda: len([x for x in load.results if x[0] > time.monotonic() - 1 and x[2]]) > 0, timeout=30)
        time.sleep(1)
        results = load.finish()
        assert results and all(x[1] == 200 and x[2] for x in results), [x for x in results if not x[2]][:5]
        # Nothing that completed is lost: the ledger holds them all (+3 from the warm-up).
        assert f.usage_today(kid)["requests"] == len(results) + 3
    finally:
        f.close()


def test_redis_stopped_limits_allow_and_count_it(tmp_path):
    f = Fleet(tmp_path)  # --limits-on-redis-error defaults to allow
    try:
        key, _ = f.new_key("redis-gone", "--rate", "600/min")
        assert predict(f.lb.url, key)[0].status_code == 200
        f.redis.stop()
        answers = [predict(f.lb.url, key)[0].status_code for _ in range(9)]
        assert answers == [200] * 9
        errors = sum(n.metric('sight_limits_redis_errors_total{action="allowed"}') for n in f.nodes)
        assert errors >= 1
        # Every node stays in the rotation: with allow, Redis is not needed to serve.
        assert set(f.lb.node_states().values()) == {"UP"}
    finally:
        f.close()
