"""make bench BENCH_ONLY=slowredis: limited requests through a Redis that answers late.

A redis-server (no persistence, 127.0.0.1) behind a small proxy that holds every reply for
D ms, as a Redis in another zone or under load would; one sightd with --redis through it and a
key with a rate, a concurrency cap and an image quota (set far above what the run uses, so every
request pays for every check: enter and reserve on the key-check threads, leave in the
background), no model. For each D: quick requests (decode only) at concurrency 16, req/s and p50.
The node's threads that wait on Redis are what this measures.

  slow_redis_bench.py SIGHTD LOADGEN IMAGE OUTDIR [DELAYS_MS, default 0,1,5]
"""
import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from redis_service import RedisService  # noqa: E402

sightd, loadgen, image, out = sys.argv[1:5]
delays = [float(x) for x in (sys.argv[5] if len(sys.argv) > 5 else "0,1,5").split(",")]
out = Path(out).resolve()
out.mkdir(parents=True, exist_ok=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def delaying_proxy(port, upstream, delay_s, ready):
    """Forwards requests at once and every reply delay_s late, in order."""
    async def pipe(r, w, d):
        try:
            while data := await r.read(65536):
                if d:
                    await asyncio.sleep(d)
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def handle(cr, cw):
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
        asyncio.ensure_future(pipe(cr, uw, 0))
        asyncio.ensure_future(pipe(ur, cw, delay_s))

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def sightd_cli(*args):
    return subprocess.run([sightd, *args], capture_output=True, text=True, check=True).stdout


redis = RedisService(out / "redis")
try:
    print(f"limited quick requests (decode only, {Path(image).name}), concurrency 16, 600 per delay:")
    for d in delays:
        pport = free_port()
        ready = threading.Event()
        threading.Thread(target=delaying_proxy, args=(pport, redis.port, d / 1000, ready), daemon=True).start()
        ready.wait(10)
        db = out / f"keys-{d:g}.db"
        for f in out.glob(db.name + "*"):
            f.unlink()
        key = sightd_cli("keys", "create", "--name", "bench", "--db", str(db)).strip()
        kid = sightd_cli("keys", "list", "--db", str(db)).splitlines()[1].split()[0]
        sightd_cli("keys", "update", kid, "--rate", "1000000/min", "--max-concurrent", "10000",
                   "--quota-images", "100000000/day", "--db", str(db))
        port = free_port()
        log = open(out / f"server-{d:g}.log", "wb")
        srv = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", str(db), "--redis",
                                f"redis://127.0.0.1:{pport}/0", "--log-level", "warn", "--model", "none"],
                               stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            r = subprocess.run([loadgen, "-url", f"http://127.0.0.1:{port}/api/v1/inference/predict/stream",
                                "-key", key, "-file", image, "-c", "16", "-n", "600", "-warmup", "20",
                                "-meta", '{"is_yolo": false, "is_llm": false}'], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"loadgen failed: {r.stdout}{r.stderr}")
            j = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  Redis {d:g} ms late: {j['images_per_s']:.1f} req/s  p50 {j['p50_ms']:.1f} ms  "
                  f"p95 {j['p95_ms']:.1f} ms  failed {j['failed']}", flush=True)
        finally:
            srv.terminate()
            srv.wait(30)
            log.close()
finally:
    redis.stop()
