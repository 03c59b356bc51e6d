"""The key store and usage ledger on a real PostgreSQL (pg_service.py starts
one per module on 127.0.0.1): the CLI, a server serving from it, migrations
when several processes start at once, SIGKILL after "complete", and the
database stopped and restarted under load."""
import json
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import SIGHTD, V1, Server, multipart, png_bytes
from pg_service import PASSWORD, PASSWORD_USER, PgService, skip_reason, wait_until

PLAIN = json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": False})
YOLO = json.dumps({"is_yolo": True, "is_ocr": False, "is_llm": False})

_why = skip_reason()
if _why:
    print(f"test_pg_store: skipped: {_why}")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


@pytest.fixture(scope="module")
def pg():
    p = PgService().start()
    yield p
    p.close()


@pytest.fixture
def db_url(pg):
    """A fresh database on the module's server."""
    return pg.url(pg.createdb("t_" + uuid.uuid4().hex[:10]))


def cli(*args, db, check=True):
    r = subprocess.run([SIGHTD, *args, "--db", db], capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def key_id(db, name):
    for line in cli("keys", "list", db=db).stdout.splitlines()[1:]:
        if line.split()[2] == name:
            return line.split()[0]
    raise AssertionError(name)


def predict(url, key, nfiles=1, meta=PLAIN, data=None, timeout=60):
    files = [(f"f{i}.png", data or png_bytes(64, 48), "image/png") for i in range(nfiles)]
    r = httpx.post(url + V1, headers={"X-API-Key": key}, timeout=timeout, **multipart(None, files, [meta] * nfiles))
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()] if r.status_code == 200 else []
    return r, lines


def ledger(db):
    """Today's usage row of the first key, from the CLI."""
    rep = json.loads(cli("usage", "--json", db=db).stdout)
    return rep[0]["usage"][-1] if rep and rep[0]["usage"] else {"requests": 0, "files": 0}


def test_keys_and_usage_cli_with_a_password_url(pg):
    db = pg.createdb("t_cli")
    pg.create_password_user(db)
    url = pg.url(db, PASSWORD_USER, PASSWORD)
    r = cli("keys", "create", "--name", "alpha", "--rate", "30/min", db=url)
    key = r.stdout.strip()
    assert key.startswith("sk_") and len(key) == 46
    assert PASSWORD not in r.stderr + r.stdout
    cli("keys", "create", "--name", "beta", db=url)
    listing = cli("keys", "list", db=url).stdout
    assert "alpha" in listing and "beta" in listing and "rate=30/min" in listing
    # Stored hashed exactly as the SQLite store does: SHA-256 hex, the key's first 8 characters.
    import hashlib
    row = pg.psql("SELECT key_hash, prefix FROM api_keys WHERE name = 'alpha'", db=db)
    assert row == f"{hashlib.sha256(key.encode()).hexdigest()}|{key[:8]}"
    v0 = int(pg.psql("SELECT version FROM keys_version", db=db))
    cli("keys", "update", key_id(url, "alpha"), "--quota-images", "100/day", db=url)
    assert "quota-images=100/day" in cli("keys", "list", db=url).stdout
    v1 = int(pg.psql("SELECT version FROM keys_version", db=db))
    cli("keys", "revoke", key_id(url, "beta"), db=url)
    v2 = int(pg.psql("SELECT version FROM keys_version", db=db))
    assert v0 < v1 < v2, (v0, v1, v2)
    assert "revoked" in cli("keys", "list", db=url).stdout
    assert cli("keys", "revoke", key_id(url, "beta"), db=url, check=False).returncode != 0
    rep = json.loads(cli("usage", "--json", db=url).stdout)
    assert {k["key"]["name"] for k in rep} == {"alpha", "beta"}
    # A wrong password: a clear error, and the URL in it is masked.
    bad = cli("keys", "list", db=pg.url(db, PASSWORD_USER, "wrong-secret"), check=False)
    assert bad.returncode == 1
    assert "password authentication failed" in bad.stderr and "wrong-secret" not in bad.stderr
    assert f"{PASSWORD_USER}:***@" in bad.stderr
    # Nothing listening: fails within the connect timeout, not a hang.
    t = time.time()
    dead = cli("keys", "list", db=f"postgresql://postgres@127.0.0.1:1/{db}", check=False)
    assert dead.returncode == 1 and time.time() - t < 10


def test_concurrent_starts_migrate_once(pg, db_url):
    procs = [subprocess.Popen([SIGHTD, "keys", "list", "--db", db_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    applied = [e for _, e in outs if "applied 4 schema migration(s)" in e]
    assert len(applied) == 1, outs
    db = db_url.rsplit("/", 1)[1]
    assert pg.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations", db=db) == "1,2,3,4"
    # A schema newer than this binary knows is refused, not used.
    pg.psql("INSERT INTO schema_migrations(version) VALUES (99)", db=db)
    r = cli("keys", "list", db=db_url, check=False)
    assert r.returncode == 1 and "newer" in r.stderr


def test_server_on_postgres_limits_and_usage(tmp_path, db_url):
    s = Server(tmp_path, db=db_url)
    try:
        kid = key_id(db_url, "test")
        cli("keys", "update", kid, "--quota-images", "5/day", db=db_url)
        r1, l1 = predict(s.url, s.key, 2, YOLO)
        r2, l2 = predict(s.url, s.key, 3, PLAIN)
        assert l1[-1]["status"] == "complete" and l2[-1]["status"] == "complete"
        r3, _ = predict(s.url, s.key, 1)
        assert r3.status_code == 429 and r3.json()["detail"]["code"] == "quota_exceeded"
        assert predict(s.url, "sk_" + "x" * 43)[0].status_code == 401
        ready = httpx.get(s.url + "/readyz").json()
        assert ready["status"] == "ready" and ready["active_keys"] == 1
        day = httpx.get(s.url + "/api/v1/usage", headers={"X-API-Key": s.key}).json()["usage"][-1]
        assert day["requests"] == 2 and day["files"] == 5 and day["succeeded"] == 5 and day["yolo_runs"] == 2
        assert ledger(db_url) == day
        # A revocation by another process reaches the key cache within a second.
        cli("keys", "revoke", kid, db=db_url)
        t0 = time.monotonic()
        assert wait_until(lambda: predict(s.url, s.key)[0].status_code == 401, timeout=2)
        assert time.monotonic() - t0 <= 1.0
        assert "postgresql://postgres@" in s.log_text()
    finally:
        assert s.stop() == 0, s.log_text()[-3000:]


def test_sigkill_right_after_complete_keeps_the_request(tmp_path, db_url):
    s = Server(tmp_path, db=db_url)
    try:
        for _ in range(3):
            assert predict(s.url, s.key, 2)[1][-1]["status"] == "complete"
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=30)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        s.log.close()
    day = ledger(db_url)
    assert day["requests"] == 3 and day["files"] == 6 and day["succeeded"] == 6


def test_postgres_restart_under_load_loses_nothing_completed(tmp_path, pg, db_url):
    s = Server(tmp_path, "--workers", "2", db=db_url)
    completed, other = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                r, lines = predict(s.url, s.key, 1, timeout=60)
            except httpx.HTTPError as e:
                other.append(repr(e))
                continue
            if lines and lines[-1]["status"] == "complete":
                completed.append(1)
            else:
                other.append(r.status_code if r.status_code != 200 else lines[-1])
                time.sleep(0.05)

    try:
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(client) for _ in range(4)]
            wait_until(lambda: len(completed) >= 20, timeout=30)
            pg.stop(mode="immediate")  # a crash: every connection drops at once
            down = wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 503, timeout=15)
            assert down, "readyz stayed ready with the database down"
            assert httpx.get(s.url + "/readyz").json()["detail"]["code"] in ("key_store_unavailable",
                                                                            "ledger_unavailable")
            time.sleep(2)
            pg.start()
            assert wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 200, timeout=30), s.log_text()[-3000:]
            n_after = len(completed)
            wait_until(lambda: len(completed) >= n_after + 20, timeout=30)
            stop.set()
            for f in futs:
                f.result(timeout=120)
        assert len(completed) >= n_after + 20, (len(completed), other[-5:])
        # Refusals while down were 503s (never a crash or a hang); every
        # "complete" the clients saw is in the ledger.
        assert all(o == 503 for o in other if isinstance(o, int)), other
        day = ledger(db_url)
        assert day["requests"] == len(completed), (day, len(completed), other[-5:])
    finally:
        stop.set()
        pg.start() if not pg.running else None
        assert s.stop() == 0, s.log_text()[-3000:]


def test_ledger_down_past_the_bound_refuses_work_then_recovers(tmp_path, pg, db_url, slow_png):
    s = Server(tmp_path, "--workers", "1", "--ledger-timeout", "2", db=db_url)
    try:
        result = {}
        # The key (a header) is verified in the store before the body is read; the body waits
        # until the database is down, so the request's use cannot be committed, however fast
        # its files decode.
        files = [(f"f{i}.png", slow_png, "image/png") for i in range(3)]
        body_req = httpx.Request("POST", s.url + V1, headers={"X-API-Key": s.key},
                                 **multipart(None, files, [PLAIN] * 3))
        body = body_req.read()
        go_on = threading.Event()

        def upload():
            yield body[:1000]
            go_on.wait(60)
            yield body[1000:]

        def slow():
            headers = {"X-API-Key": s.key, "Content-Type": body_req.headers["Content-Type"],
                       "Content-Length": str(len(body))}
            r = httpx.post(s.url + V1, headers=headers, content=upload(), timeout=120)
            result["r"] = r, [json.loads(x) for x in r.text.splitlines() if x.strip()] if r.status_code == 200 else []

        t = threading.Thread(target=slow)
        t.start()
        assert wait_until(lambda: s.metric('sight_key_lookups_total{source="store"}') >= 1, timeout=30)
        pg.stop(mode="immediate")
        go_on.set()
        t.join(timeout=120)
        r, lines = result["r"]
        assert r.status_code == 200
        assert [x["status"] for x in lines[:-1]].count("done") == 3
        assert lines[-1]["status"] == "error" and lines[-1]["error"]["code"] == "ledger_unavailable", lines[-1]
        # Past the bound: not ready, and new work refused with the reason.
        ready = httpx.get(s.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["detail"]["code"] == "ledger_unavailable"
        r2, _ = predict(s.url, s.key)
        assert r2.status_code == 503 and r2.json()["detail"]["code"] == "ledger_unavailable"
        pg.start()
        assert wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 200, timeout=30), s.log_text()[-3000:]
        # The row was kept and committed once the database came back.
        day = ledger(db_url)
        assert day["requests"] == 1 and day["files"] == 3
        assert predict(s.url, s.key)[1][-1]["status"] == "complete"
    finally:
        pg.start() if not pg.running else None
        assert s.stop() == 0, s.log_text()[-3000:]


def test_frozen_postgres_costs_seconds_not_a_hang(tmp_path, pg, db_url):
    s = Server(tmp_path, db=db_url)
    try:
        assert predict(s.url, s.key)[1][-1]["status"] == "complete"
        # A key the node has not seen (so not in its key cache) must be looked up.
        cold = cli("keys", "create", "--name", "cold", db=db_url).stdout.strip()
        pg.freeze()
        try:
            t = time.time()
            r, _ = predict(s.url, cold, timeout=60)
            took = time.time() - t
            assert r.status_code == 503 and r.json()["detail"]["code"] == "key_store_unavailable", r.text
            assert took < 20, took  # the client's own answer timeout (8 s), not a hang
            assert wait_until(lambda: httpx.get(s.url + "/readyz", timeout=5).status_code == 503, timeout=30)
            assert httpx.get(s.url + "/healthz", timeout=5).status_code == 200  # the process itself is fine
        finally:
            pg.thaw()
        assert wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 200, timeout=30), s.log_text()[-3000:]
        assert predict(s.url, s.key)[1][-1]["status"] == "complete"
        assert ledger(db_url)["requests"] == 2
    finally:
        assert s.stop() == 0, s.log_text()[-3000:]


def test_frozen_postgres_stalls_no_http_thread_for_a_quota(tmp_path, pg, db_url):
    """A quota is checked against the ledger in the store, off the HTTP
    threads: with PostgreSQL frozen, a request of a quota key waits out the
    store's answer timeout while /healthz on the same (only) HTTP thread
    answers at once."""
    s = Server(tmp_path, "--http-threads", "1", db=db_url)
    try:
        cli("keys", "update", key_id(db_url, "test"), "--quota-images", "100/day", db=db_url)
        assert predict(s.url, s.key)[1][-1]["status"] == "complete"  # the key is cached
        pg.freeze()
        try:
            with ThreadPoolExecutor(1) as ex:
                t = time.time()
                waiting = ex.submit(predict, s.url, s.key)
                time.sleep(0.5)  # the request is in, waiting on the ledger
                health = []
                while not waiting.done() and time.time() - t < 30:
                    h = time.time()
                    assert httpx.get(s.url + "/healthz", timeout=30).status_code == 200
                    health.append(time.time() - h)
                    time.sleep(0.1)
                r, _ = waiting.result()
            took = time.time() - t
        finally:
            pg.thaw()
        assert r.status_code == 503 and r.json()["detail"]["code"] == "key_store_unavailable", r.text
        assert took > 2, took  # it did wait on the store
        assert len(health) >= 5 and max(health) < 0.5, health
        assert wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 200, timeout=30)
        assert predict(s.url, s.key)[1][-1]["status"] == "complete"
    finally:
        assert s.stop() == 0, s.log_text()[-3000:]


def test_two_nodes_share_keys_and_ledger(tmp_path, db_url):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", db=db_url)
    b = Server(tmp_path / "b", db=db_url)  # creates a second key, "test" too
    try:
        for s in (a, b):
            for k in (a.key, b.key):
                assert predict(s.url, k)[1][-1]["status"] == "complete"
        rep = json.loads(cli("usage", "--json", db=db_url).stdout)
        assert [k["usage"][-1]["requests"] for k in rep] == [2, 2]
        # A key revoked through either node's database is refused by both.
        cli("keys", "revoke", str(rep[1]["key"]["id"]), db=db_url)
        t0 = time.monotonic()
        assert wait_until(lambda: [predict(s.url, b.key)[0].status_code for s in (a, b)] == [401, 401], timeout=2)
        assert time.monotonic() - t0 <= 1.0
        assert [predict(s.url, a.key)[0].status_code for s in (a, b)] == [200, 200]
    finally:
        assert a.stop() == 0 and b.stop() == 0
