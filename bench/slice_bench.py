"""make bench, sliced detection part (BENCH_ONLY=slice): a 3840x2160 mosaic of
36 photos (tests/integration/mosaic.py) through one server per model and per
worker count, side by side in the same run:

  slice_bench.py SIGHTD OUT_DIR ROUNDS [MODEL...]   ("" or none: the built-in model)

- plain: one pass over the 4K image;
- sliced: "slice": true on the default server (tiles spread over every worker);
- one by one: the same sliced request on a server with --workers 1 (the same
  tiles, run one after the other);
- recall of plain and sliced against each photo's confident (>= 0.5)
  detections at full size, as tests/integration/test_slice.py measures it.
Medians of ROUNDS requests each, rounds interleaved; writes slice_results.jsonl."""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import mosaic  # noqa: E402

sightd, out, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
models = [m or None for m in sys.argv[4:]] or [None]  # "": the built-in model
out.mkdir(parents=True, exist_ok=True)
V1 = "/api/v1/inference/predict/stream"


def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp, *args):
        self.db = str(Path(tmp) / f"b{port()}.db")
        self.key = subprocess.run([sightd, "keys", "create", "--name", "bench", "--db", self.db], capture_output=True,
                                  text=True, check=True).stdout.strip()
        self.url = f"http://127.0.0.1:{port()}"
        self.proc = subprocess.Popen([sightd, "serve", "--listen", self.url[7:], "--db", self.db, "--log-level", "warn",
                                      *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("slice bench: sightd did not start")

    def cpu_s(self):
        """The server's CPU seconds so far (user + system)."""
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def detect(self, name, data, meta):
        t = time.perf_counter()
        r = httpx.post(self.url + V1, timeout=600, data={"api_key": self.key, "metadata": [json.dumps(meta)]},
                       files=[("files", (name, data))])
        dt = time.perf_counter() - t
        done = [json.loads(x) for x in r.text.splitlines() if '"done"' in x]
        if not done:
            raise SystemExit(f"slice bench: {r.text[:500]}")
        return done[0]["result"], dt

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


canvas, placed = mosaic.build()
data = mosaic.png(canvas)
cores = os.cpu_count()
print(f"sliced detection: 3840x2160 mosaic of {len(placed)} photos, {rounds} rounds, {cores} cores")
rows = []
with tempfile.TemporaryDirectory() as tmp, open(out / "slice_results.jsonl", "w") as f:
    for model in models:
        margs = ["--model", model] if model else []
        name = Path(model).stem if model else "yolox-nano (built-in)"
        par, one = Server(tmp, *margs), Server(tmp, *margs, "--workers", "1")
        try:
            meta = {"is_yolo": True}
            truth, cache = [], {}
            for path, x, y, sx, sy in placed:
                if path not in cache:
                    cache[path] = par.detect(path.name, path.read_bytes(), meta)[0]["yolo"]["detections"]
                for d in cache[path]:
                    if d["confidence"] >= 0.5:
                        b = mosaic.box(d)
                        truth.append((d["class"], (b[0] * sx + x, b[1] * sy + y, b[2] * sx + x, b[3] * sy + y)))
            times = {"plain": [], "sliced": [], "one_by_one": []}
            yolo_ms = {k: [] for k in times}  # the detection stage alone (timing_ms.yolo), without the decode
            busy = {k: [] for k in times}  # server CPU seconds per wall second of the request: cores kept busy
            # Runs in flight on average: the runs' own times (speed_ms, summed over tiles) over the
            # stage's wall time; unlike the CPU share, a busy machine does not hide it.
            flight = {k: [] for k in times}
            res = {}
            for _ in range(rounds):
                for k, srv, m in (("plain", par, meta), ("sliced", par, {**meta, "slice": True}),
                                  ("one_by_one", one, {**meta, "slice": True})):
                    c0 = srv.cpu_s()
                    res[k], dt = srv.detect("m.png", data, m)
                    busy[k].append((srv.cpu_s() - c0) / dt)
                    times[k].append(dt)
                    yolo_ms[k].append(res[k]["timing_ms"]["yolo"])
                    sp = res[k]["yolo"]["speed_ms"]
                    flight[k].append(sum(sp.get(x, 0) for x in ("preprocess", "inference", "postprocess")) / yolo_ms[k][-1])
            y = res["sliced"]["yolo"]
            row = {"model": name, "tiles": len(y["slices"]), "runs": y["runs"], "truth": len(truth), "cores": cores,
                   **{f"{k}_s": statistics.median(v) for k, v in times.items()},
                   **{f"{k}_yolo_ms": statistics.median(v) for k, v in yolo_ms.items()},
                   **{f"{k}_cores": statistics.median(v) for k, v in busy.items()},
                   **{f"{k}_in_flight": statistics.median(v) for k, v in flight.items()},
                   "recall_plain": mosaic.recall(truth, res["plain"]["yolo"]["detections"]),
                   "recall_sliced": mosaic.recall(truth, y["detections"])}
            row["speedup"] = row["one_by_one_yolo_ms"] / row["sliced_yolo_ms"]
            f.write(json.dumps(row) + "\n")
            rows.append(row)
        finally:
            par.stop()
            one.stop()
print("request wall time in s (detection stage alone in ms), medians; speed-up of the detection stage")
print(f"{'model':24} {'runs':>5} {'plain':>14} {'sliced':>14} {'one by one':>14} {'speed-up':>9} {'recall plain':>13} {'sliced':>7}")
for r in rows:
    cell = lambda k: f"{r[k + '_s']:.2f} ({r[k + '_yolo_ms']:.0f})"  # noqa: E731
    print(f"{r['model']:24} {r['runs']:>5} {cell('plain'):>14} {cell('sliced'):>14} {cell('one_by_one'):>14} "
          f"{r['speedup']:>8.2f}x {r['recall_plain']:>13.1%} {r['recall_sliced']:>7.1%}  ({r['truth']} objects)")
    print(f"{'':24} cores busy: plain {r['plain_cores']:.2f}, sliced {r['sliced_cores']:.2f}, "
          f"one by one {r['one_by_one_cores']:.2f} (of {r['cores']}; load average {os.getloadavg()[0]:.1f}); "
          f"runs in flight: sliced {r['sliced_in_flight']:.2f}, one by one {r['one_by_one_in_flight']:.2f}")
