"""make bench, BENCH_ONLY=limits: what the per-key limit check adds to a
request, in this process (no --redis) and in Redis (--redis), and how many
Redis commands a request costs.

  limits_bench.py SIGHTD OUT_DIR [ROUNDS]

Starts a redis-server on a free loopback port (no persistence) and two
servers on one key store: "local" and "redis". Each has a key with every
limit (rate, concurrency, image quota; set high, so none refuses) and a key
with none. One client at a time, on kept-up connections, sends the same
small one-file request (no model run) to each (server, key) in turn, ROUNDS
times (default 400); medians and p95 in ms. The limit check's cost is the
limited key's median less the unlimited key's on the same server. Redis
commands per request: INFO commandstats before and after the redis server's
limited-key requests."""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from conftest import V1, multipart, png_bytes  # noqa: E402
from redis_service import RedisService  # noqa: E402

sightd, out = sys.argv[1], Path(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 400
out.mkdir(parents=True, exist_ok=True)
tmp = Path(tempfile.mkdtemp(prefix="sight-limits-bench-"))
db = str(tmp / "keys.db")


def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keys(*args):
    return subprocess.run([sightd, "keys", *args, "--db", db], capture_output=True, text=True, check=True).stdout


limited = keys("create", "--name", "limited").strip()
free = keys("create", "--name", "free").strip()
kid = [ln.split()[0] for ln in keys("list").splitlines()[1:] if ln.split()[2] == "limited"][0]
keys("update", kid, "--rate", "1000000/min", "--max-concurrent", "1000", "--quota-images", "100000000/day")

redis = RedisService(tmp / "redis")
procs, urls = [], {}
try:
    for name, extra in (("local", []), ("redis", ["--redis", redis.url])):
        p = port()
        procs.append(subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{p}", "--db", db, "--log-level",
                                       "warn", "--workers", "1", *extra],
                                      stdout=open(out / f"server-{name}.log", "wb"), stderr=subprocess.STDOUT))
        urls[name] = f"http://127.0.0.1:{p}"
        for _ in range(200):
            try:
                if httpx.get(urls[name] + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
    form = multipart(None, [("f.png", png_bytes(64, 48), "image/png")],
                     [json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": False})])
    combos = [(n, k) for n in urls for k in ("limited", "free")]
    times = {c: [] for c in combos}
    # Each request as one write on a kept-up TCP_NODELAY connection (httpx's
    # two writes meet delayed ACKs: 40 ms that would hide what is measured).
    wire, conns = {}, {}
    for n, k in combos:
        req = httpx.Request("POST", urls[n] + V1, headers={"X-API-Key": limited if k == "limited" else free}, **form)
        body = req.read()
        head = f"POST {V1} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
            f"{h}: {v}\r\n" for h, v in req.headers.items() if h.lower() not in ("host", "connection"))
        wire[(n, k)] = head.encode() + b"\r\n" + body
        conns[(n, k)] = socket.create_connection(("127.0.0.1", int(urls[n].rsplit(":", 1)[1])))
        conns[(n, k)].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one(n, k):
        s = conns[(n, k)]
        t = time.perf_counter()
        s.sendall(wire[(n, k)])
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            chunk = s.recv(65536)
            assert chunk, "closed"
            data += chunk
        dt = time.perf_counter() - t
        assert data.startswith(b"HTTP/1.1 200") and b'"complete"' in data, (n, k, data[:300])
        return dt

    for c in combos:  # warm up
        for _ in range(20):
            one(*c)

    def commandstats():
        """{command: (calls, usec)}; EVALSHA/EVAL are round trips, the rest ran inside scripts
        (a script's usec includes theirs)."""
        with socket.create_connection(("127.0.0.1", redis.port)) as s:
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
            data = b""
            while b"\r\n" not in data:
                data += s.recv(65536)
            size = int(data[1:data.index(b"\r\n")])
            while len(data) < data.index(b"\r\n") + 2 + size:
                data += s.recv(65536)
        stats = {}
        for line in data.decode().splitlines():
            if line.startswith("cmdstat_"):
                stats[line[8:line.index(":")]] = (int(line.split("calls=")[1].split(",")[0]),
                                                  int(line.split("usec=")[1].split(",")[0]))
        return stats

    def per_request(key, n=50):
        a = commandstats()
        for _ in range(n):
            one("redis", key)
        time.sleep(0.3)  # the last commits land
        b = commandstats()
        zero = (0, 0)
        d = {c: (b[c][0] - a.get(c, zero)[0]) / n for c in b if c != "info" and b[c][0] != a.get(c, zero)[0]}
        trips = sum(v for c, v in d.items() if c in ("evalsha", "eval", "ping"))
        # Redis's own time for them (it runs commands one at a time: this is what bounds a cluster).
        usec = sum(b[c][1] - a.get(c, zero)[1] for c in ("evalsha", "eval", "ping") if c in b) / n
        return trips, d, usec

    trips_limited, cmds_limited, usec_limited = per_request("limited")
    trips_free, _, _ = per_request("free")

    for i in range(rounds):
        for c in (combos if i % 2 == 0 else combos[::-1]):
            times[c].append(one(*c))
    for c in conns.values():
        c.close()
finally:
    for p in procs:
        p.terminate()
        p.wait(30)
    redis.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def ms(v):
    return statistics.median(v) * 1000, sorted(v)[int(len(v) * 0.95)] * 1000


print(f"limits bench: {rounds} rounds, one client, one small file per request (no model run)")
print(f"{'server':8} {'key':8} {'p50 ms':>8} {'p95 ms':>8}")
res = {}
for (n, k), v in times.items():
    p50, p95 = ms(v)
    res[f"{n}/{k}"] = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3)}
    print(f"{n:8} {k:8} {p50:8.3f} {p95:8.3f}")
for n in urls:
    d = res[f"{n}/limited"]["p50_ms"] - res[f"{n}/free"]["p50_ms"]
    res[f"{n}/check_added_p50_ms"] = round(d, 3)
    print(f"limit check added ({n}): {d:+.3f} ms (p50, limited key less unlimited key)")
print(f"Redis round trips (EVALSHA) per request: {trips_limited:.2f} with every limit "
      f"(rate + concurrency + image quota), {trips_free:.2f} for a key without limits")
print("commands per request inside them: " + ", ".join(f"{c} {v:.2f}" for c, v in sorted(cmds_limited.items())))
print(f"Redis time per request with every limit: {usec_limited:.0f} us inside Redis "
      f"(one Redis core: ~{1e6 / usec_limited:.0f} such requests/s at most)" if usec_limited else "")
res["redis_per_request"] = {"round_trips_limited": trips_limited, "round_trips_free": trips_free,
                            "commands_limited": cmds_limited, "redis_usec_limited": usec_limited}
(out / "limits_results.json").write_text(json.dumps(res, indent=1))
