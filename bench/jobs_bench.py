"""make bench BENCH_ONLY=jobs: jobs against v2 streams on one node (SQLite), in the same run.

1. Throughput: $BENCH_JOB_N images (default 1000; the same 320x320 JPEG behind distinct URLs on a
   local image server on 127.0.0.2) as one job, against the same images through v2 streams sent by
   two kinds of client ($BENCH_V2_SHAPES, FILESxCONCURRENT): requests of 32 URLs (--max-files), 4
   at once, as a client cutting the set into chunks does; and one-URL requests, twice the CPUs at
   once, which keeps every worker fed. Items/s of each and the ratios (job / each client, job /
   the faster). Turns alternate for $BENCH_ROUNDS rounds (default 2); medians. The bench
   process's own CPU (client and image server, in cores) is reported, to show it is not the
   limit.
2. Fairness: p50/p95 of $BENCH_P95_N (default 60) single-image v2 stream requests, one at a time,
   with no job running and then while a job of $BENCH_JOB_N items runs.

Every item asks for detection (is_yolo) with the built-in model. Usage: jobs_bench.py SIGHTD IMAGE OUTDIR
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sightd, image, out = sys.argv[1:4]
out = Path(out)
out.mkdir(parents=True, exist_ok=True)
N = int(os.environ.get("BENCH_JOB_N", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
P95_N = int(os.environ.get("BENCH_P95_N", "60"))
# v2 clients, as FILESxCONCURRENT: a client cutting the set into --max-files chunks, and one that keeps
# the workers fed with one-file requests (twice the CPUs at once, so a fetch overlaps another's compute).
V2_SHAPES = [tuple(int(v) for v in x.split("x")) for x in
             os.environ.get("BENCH_V2_SHAPES", f"32x4,1x{2 * os.cpu_count()}").split(",")]
JPEG = Path(image).read_bytes()


class Images(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, key, body=None, timeout=600):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Images)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base_img = f"http://127.0.0.2:{srv.server_address[1]}"
    db = str(out / "jobs-bench.db")
    for f in Path(out).glob("jobs-bench.db*"):
        f.unlink()
    key = subprocess.run([sightd, "keys", "create", "--name", "bench", "--db", db], capture_output=True, text=True,
                         check=True).stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(out / "server-jobs.log", "wb")
    p = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--log-level", "warn",
                          "--url-allow", "127.0.0.2/32", "--max-open-jobs", "0", "--max-inflight", "1000"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        serial = [0]
        bench_cpu = {"job": [], **{f"streams_{f}x{c}": [] for f, c in V2_SHAPES}}  # the bench process's own CPU (client + image server), in cores

        def urls(n):
            serial[0] += 1
            return [{"url": f"{base_img}/r{serial[0]}/{i}.jpg", "is_yolo": True} for i in range(n)]

        def v2(items):
            body = {"data": [{"image_url": x["url"], "is_yolo": True} for x in items]}
            call("POST", base + "/api/v1/inference/predict/stream/v2", key, body)

        def streams_rate(files, conc):
            items = urls(N)
            chunks = [items[i:i + files] for i in range(0, N, files)]
            t0, c0 = time.monotonic(), time.process_time()
            with ThreadPoolExecutor(conc) as ex:
                list(ex.map(v2, chunks))
            dt = time.monotonic() - t0
            bench_cpu[f"streams_{files}x{conc}"].append((time.process_time() - c0) / dt)
            return N / dt

        def start_job(n):
            return json.loads(call("POST", base + "/api/v1/jobs", key, {"items": urls(n)}))["id"]

        def job_status(job):
            return json.loads(call("GET", f"{base}/api/v1/jobs/{job}", key))

        def job_rate():
            t0, c0 = time.monotonic(), time.process_time()
            job = start_job(N)
            while job_status(job)["status"] != "completed":
                time.sleep(0.05)
            dt = time.monotonic() - t0
            bench_cpu["job"].append((time.process_time() - c0) / dt)
            return N / dt

        def latencies():
            lat = []
            for _ in range(P95_N):
                t0 = time.monotonic()
                v2(urls(1))
                lat.append(time.monotonic() - t0)
            lat.sort()
            return {"p50_ms": 1000 * statistics.median(lat), "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))]}

        v2(urls(8))  # warm-up
        job_r, stream_r = [], {f"{f}x{c}": [] for f, c in V2_SHAPES}

        def streams_all():
            for f, c in V2_SHAPES:
                stream_r[f"{f}x{c}"].append(streams_rate(f, c))

        for i in range(ROUNDS):
            if i % 2 == 0:
                streams_all()
                job_r.append(job_rate())
            else:
                job_r.append(job_rate())
                streams_all()
        idle = latencies()
        job = start_job(N)
        while job_status(job)["status"] == "queued":
            time.sleep(0.05)
        busy = latencies()
        still = job_status(job)
        call("DELETE", f"{base}/api/v1/jobs/{job}", key)
        job_med = statistics.median(job_r)
        streams_med = {k: statistics.median(v) for k, v in stream_r.items()}
        res = {"items": N, "rounds": ROUNDS, "cores": os.cpu_count(), "job_items_per_s": job_med,
               "streams_items_per_s": streams_med, "job_runs": job_r, "stream_runs": stream_r,
               "ratio_job_to_streams": {k: job_med / v for k, v in streams_med.items()},
               "ratio_job_to_best_streams": job_med / max(streams_med.values()),
               "bench_process_cores": bench_cpu,
               "single_stream_idle": idle, "single_stream_during_job": busy,
               "job_was_running_throughout": still["status"] == "running",
               "p95_ratio_during_job": busy["p95_ms"] / idle["p95_ms"]}
        (out / "jobs.json").write_text(json.dumps(res, indent=1))
        print(json.dumps(res, indent=1))
    finally:
        p.terminate()
        p.wait(60)
        srv.shutdown()


main()
