"""make bench BENCH_ONLY=store: one node on SQLite, one on PostgreSQL and one on PostgreSQL + Redis
(the cluster's setting), in the same run.

1. The ledger's commit latency (bench/ledger_bench.c through ledger_commit): one caller
   (a transaction per row) and 16 callers (group commit), on a SQLite file and on PostgreSQL.
2. Quick requests (one small JPEG, decode only: is_yolo false) through the HTTP API on three
   servers, SQLite, PostgreSQL and PostgreSQL + Redis (--redis), loaded in turn for $BENCH_ROUNDS rounds (default 6) at
   concurrency $BENCH_C (default 8), $BENCH_N requests a turn (default 400): medians of req/s
   and p50, and the ratios. Every key has a rate, a concurrency cap and an image quota set far
   above what the run uses, so each request pays for every limit check (in process on the first
   two, three Redis round trips on the third) and nothing is refused.

PostgreSQL runs from tests/integration/pg_service.py with fsync on (its default; BENCH_PG_FSYNC=off
turns it off), so a commit is flushed to disk; SQLite runs as sightd runs it (WAL, synchronous=NORMAL: in the OS's cache
at commit). Usage: store_bench.py SIGHTD LOADGEN LEDGER_BENCH IMAGE OUTDIR
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from pg_service import PgService, skip_reason  # noqa: E402
from redis_service import REDIS_SERVER, RedisService  # noqa: E402

sightd, loadgen, ledger_bench, image, out = sys.argv[1:6]
out = Path(out)
out.mkdir(parents=True, exist_ok=True)
rounds = int(os.environ.get("BENCH_ROUNDS", "6"))
conc = int(os.environ.get("BENCH_C", "8"))
n = int(os.environ.get("BENCH_N", "400"))
why = skip_reason()
if why:
    sys.exit(f"bench store: {why}")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIMITS = ["--rate", "1000000/min", "--max-concurrent", "1000", "--quota-images", "100000000/day"]


def serve(name, db, *args):
    key = subprocess.run([sightd, "keys", "create", "--name", name, "--db", db], capture_output=True, text=True,
                         check=True).stdout.strip()
    listing = subprocess.run([sightd, "keys", "list", "--db", db], capture_output=True, text=True, check=True).stdout
    kid = next(line.split()[0] for line in listing.splitlines()[1:] if line.split()[2] == name)
    subprocess.run([sightd, "keys", "update", kid, *LIMITS, "--db", db], check=True, capture_output=True)
    port = free_port()
    log = open(out / f"server-{name}.log", "wb")
    p = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--log-level", "warn", *args],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return p, port, key


fsync = os.environ.get("BENCH_PG_FSYNC", "on") != "off"
pg = PgService(fsync=fsync).start()
if not os.path.exists(REDIS_SERVER):
    sys.exit("bench store: redis-server is not installed (scripts/bootstrap --test)")
redis = RedisService(out / "redis")
print(f"PostgreSQL with fsync {'on' if fsync else 'off (BENCH_PG_FSYNC=off)'}")
procs = []
try:
    sqlite_db = str(out / "store-bench.db")
    for f in Path(out).glob("store-bench.db*"):
        f.unlink()
    pg_db = pg.url(pg.createdb("bench"))
    ledger_db = {"sqlite": str(out / "ledger-bench.db"), "postgresql": pg.url(pg.createdb("ledger_bench"))}
    for f in Path(out).glob("ledger-bench.db*"):
        f.unlink()

    print("ledger commit latency (ledger_commit, until durable):")
    for threads, per in ((1, 300), (16, 50)):
        for name, db in ledger_db.items():
            r = json.loads(subprocess.run([ledger_bench, db, str(threads), str(per)], capture_output=True, text=True,
                                          check=True).stdout)
            print(f"  {name:<10} callers {threads:>2}: p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  "
                  f"max {r['max_ms']:.1f} ms  {r['commits_per_s']:.0f} commits/s")

    servers = {"sqlite": serve("sqlite", sqlite_db), "postgresql": serve("postgresql", pg_db),
               "pg+redis": serve("pg+redis", pg_db, "--redis", redis.url)}
    procs = [s[0] for s in servers.values()]
    print(f"quick requests (decode only, {Path(image).name}), concurrency {conc}, {n} a turn, {rounds} rounds:")
    res = {k: [] for k in servers}
    for rnd in range(rounds):
        order = list(servers)[rnd % 3:] + list(servers)[:rnd % 3]
        for name in order:
            _, port, key = servers[name]
            r = subprocess.run([loadgen, "-url", f"http://127.0.0.1:{port}/api/v1/inference/predict/stream", "-key",
                                key, "-file", image, "-meta", '{"is_yolo": false, "is_llm": false, "is_ocr": false}',
                                "-c", str(conc), "-n", str(n), "-warmup", "8"], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"loadgen against {name} failed: {r.stdout}{r.stderr}")
            j = json.loads(r.stdout)
            res[name].append(j)
            print(f"  {name:<10} {j['images_per_s']:.1f} req/s  p50 {j['p50_ms']:.1f} ms  p95 {j['p95_ms']:.1f} ms")
    med = {k: statistics.median(x["images_per_s"] for x in v) for k, v in res.items()}
    p50 = {k: statistics.median(x["p50_ms"] for x in v) for k, v in res.items()}
    print(f"median req/s: SQLite {med['sqlite']:.1f}, PostgreSQL {med['postgresql']:.1f}, "
          f"PostgreSQL + Redis {med['pg+redis']:.1f}: PostgreSQL/SQLite = {med['postgresql'] / med['sqlite'] * 100:.1f}%, "
          f"PostgreSQL + Redis/SQLite = {med['pg+redis'] / med['sqlite'] * 100:.1f}%")
    print(f"median p50 ms: SQLite {p50['sqlite']:.1f}, PostgreSQL {p50['postgresql']:.1f}, "
          f"PostgreSQL + Redis {p50['pg+redis']:.1f}")
finally:
    for p in procs:
        p.terminate()
        p.wait(timeout=60)
    pg.close()
    redis.stop()
