"""make bench, BENCH_ONLY=phone: what a phone's photo costs outside the model.

Makes a 0.87 MP (810x1080) and a 12 MP (4032x3024) Display P3 JPEG (4:2:0, quality 90, the
Display P3 profile of tests/integration/image_formats.py embedded in an APP2 marker), then,
for each server binary given (label=path; e.g. before=... after=...), started in turn with the
default settings (ICC conversion on) and the model, in ROUNDS rounds whose order alternates:
- decode: the median `timing_ms.decode` of the done line, one request at a time, next to
  `djpeg`'s time on the same file (full size for 0.87 MP, `-scale 1/4` for 12 MP: the scale a
  640 model needs), process start subtracted (djpeg of a 16x16 JPEG);
- minor page faults per request at steady state: /proc/PID/stat field 10 (minflt) before and
  after those requests, divided by their number;
- end to end: images/s at concurrency 4, next to the bare ONNX Runtime Run rate measured at the
  start and the end of the same round, averaged (`sightd bench-ort --callers 2 --ort-concurrency 2
  --ort-threads 1`); the ratio is also given per round, as a range;
- RSS: loadgen's load mode with the 12 MP photo for LOAD_S seconds (8 clients): RSS 5 s after,
  against the RSS when the server had started (model loaded, no request yet).
Medians over the rounds. Usage:
  phone_bench.py OUT_DIR PHOTO MODEL LOADGEN LABEL=SIGHTD [LABEL=SIGHTD ...]
Env: BENCH_PHONE_ROUNDS (3), BENCH_PHONE_N (requests per point, 40), BENCH_PHONE_LOAD_S (10)."""
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
from image_formats import P3_D50, icc_profile  # noqa: E402  the tests' Display P3 profile
from make_images import read_ppm, resize  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_PHONE_ROUNDS", "3"))
N = int(os.environ.get("BENCH_PHONE_N", "40"))
LOAD_S = int(os.environ.get("BENCH_PHONE_LOAD_S", "10"))
IMAGES = {"0.87mp": (810, 1080, "1"), "12mp": (4032, 3024, "1/4")}


def with_icc(jpeg: bytes, profile: bytes) -> bytes:
    """The JPEG with profile in one ICC_PROFILE APP2 marker, right after SOI."""
    body = b"ICC_PROFILE\x00" + bytes([1, 1]) + profile
    assert jpeg[:2] == b"\xff\xd8" and len(body) + 2 < 65536
    return jpeg[:2] + b"\xff\xe2" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def make_images(out: Path, photo: str):
    out.mkdir(parents=True, exist_ok=True)
    w, h, px = read_ppm(subprocess.run(["djpeg", "-ppm", photo], check=True, capture_output=True).stdout)
    profile = icc_profile("Display P3 (bench)", P3_D50)
    paths = {}
    for name, (nw, nh, _) in IMAGES.items():
        p = out / f"phone-{name}.jpg"
        if not p.exists():
            ppm = b"P6\n%d %d\n255\n" % (nw, nh) + resize(w, h, px, nw, nh)
            jpg = subprocess.run(["cjpeg", "-quality", "90", "-sample", "2x2"], input=ppm, check=True,
                                 capture_output=True).stdout
            p.write_bytes(with_icc(jpg, profile))
        paths[name] = p
    tiny = out / "tiny.jpg"
    if not tiny.exists():
        ppm = b"P6\n16 16\n255\n" + bytes(16 * 16 * 3)
        tiny.write_bytes(subprocess.run(["cjpeg"], input=ppm, check=True, capture_output=True).stdout)
    return paths, tiny


def djpeg_ms(path, scale, tiny, runs=15):
    def med(p, args):
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(["djpeg", *args, "-outfile", "/dev/null", str(p)], check=True)
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1000
    return med(path, ["-scale", scale] if scale != "1" else []) - med(tiny, [])


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def minflt(pid):
    # Field 10 of /proc/PID/stat, counted after the ")" that ends the command name.
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])


class Server:
    def __init__(self, sightd, out, model, label):
        self.sightd = sightd
        db = out / f"phone-{label}.db"
        for f in out.glob(f"phone-{label}.db*"):
            f.unlink()
        self.key = subprocess.run([sightd, "keys", "create", "--name", "bench", "--db", str(db)], check=True,
                                  capture_output=True, text=True).stdout.strip()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(out / f"server-phone-{label}.log", "w")
        self.proc = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{self.port}", "--db", str(db),
                                      "--log-level", "warn", "--model", model], stdout=self.log, stderr=self.log)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}/api/v1/inference/predict/stream"
        self.rss_start = rss_kb(self.proc.pid)  # idle: started, model loaded, no request yet

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def loadgen(lg, srv, path, *args):
    r = subprocess.run([lg, "-url", srv.url, "-key", srv.key, "-file", str(path), *args], capture_output=True,
                       text=True)
    if not r.stdout.strip():
        raise SystemExit(f"loadgen failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(out_dir, photo, model, lg, *sides):
    out = Path(out_dir)
    paths, tiny = make_images(out / "images", photo)
    sides = [s.split("=", 1) for s in sides]
    servers = {label: Server(path, out, model, label) for label, path in sides}
    rows = []  # (round, label, image, metric, value)
    try:
        for srv in servers.values():  # warm: the model's first runs, the ICC transform's build
            for p in paths.values():
                loadgen(lg, srv, p, "-c", "1", "-n", "4")
        for name, (_, _, scale) in IMAGES.items():
            rows.append((0, "djpeg", name, "decode_ms", djpeg_ms(paths[name], scale, tiny)))
        def bare():
            out = subprocess.run([sides[-1][1], "bench-ort", "--model", model, "--runs", str(2 * N), "--callers",
                                  "2", "--ort-concurrency", "2", "--ort-threads", "1", "--log-level", "warn"],
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out)["runs_per_s"]
        for r in range(ROUNDS):
            # The bare rate before and after the round's requests, averaged: the machine's load
            # drifts within a round too.
            b0 = bare()
            order = list(servers.items()) if r % 2 == 0 else list(reversed(servers.items()))
            for label, srv in order:
                for name, p in paths.items():
                    f0 = minflt(srv.proc.pid)
                    one = loadgen(lg, srv, p, "-c", "1", "-n", str(N // 2), "-warmup", "0")
                    faults = (minflt(srv.proc.pid) - f0) / (N // 2)
                    rows.append((r, label, name, "decode_ms", one["decode_p50_ms"]))
                    rows.append((r, label, name, "faults_per_req", faults))
                    four = loadgen(lg, srv, p, "-c", "4", "-n", str(N), "-warmup", "0")
                    rows.append((r, label, name, "img_per_s_c4", four["images_per_s"]))
            rows.append((r, "bare", "-", "runs_per_s", (b0 + bare()) / 2))
        for label, srv in servers.items():
            ld = loadgen(lg, srv, paths["12mp"], "-c", "8", "-duration", f"{LOAD_S}s", "-pid", str(srv.proc.pid),
                         "-settle", "5s")
            rows.append((0, label, "12mp", "rss_start_mb", srv.rss_start / 1024))
            rows.append((0, label, "12mp", "rss_before_load_mb", ld["rss_idle_kb"] / 1024))
            rows.append((0, label, "12mp", "rss_peak_mb", ld["rss_peak_kb"] / 1024))
            rows.append((0, label, "12mp", "rss_after_mb", ld["rss_after_kb"] / 1024))
    finally:
        for srv in servers.values():
            srv.stop()
    with open(out / "phone.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(dict(zip(("round", "side", "image", "metric", "value"), r))) + "\n")
    report(rows, [label for label, _ in sides])


def report(rows, labels):
    def med(side, image, metric):
        v = [x[4] for x in rows if x[1] == side and x[2] == image and x[3] == metric]
        return statistics.median(v) if v else float("nan")
    bare = med("bare", "-", "runs_per_s")
    bare_of = {x[0]: x[4] for x in rows if x[1] == "bare"}
    print(f"phone photos (Display P3, ICC conversion on), medians of {ROUNDS} rounds; bare ORT Run: {bare:.1f}/s")
    for name, (w, h, scale) in IMAGES.items():
        dj = med("djpeg", name, "decode_ms")
        print(f"{name} ({w}x{h}): djpeg{'' if scale == '1' else ' -scale ' + scale} {dj:.1f} ms")
        for label in labels:
            d, ips = med(label, name, "decode_ms"), med(label, name, "img_per_s_c4")
            per = sorted(x[4] / bare_of[x[0]] for x in rows if x[1] == label and x[2] == name
                         and x[3] == "img_per_s_c4")
            print(f"  {label:>7}: decode {d:6.1f} ms ({d / dj:4.2f}x djpeg)  faults/request "
                  f"{med(label, name, 'faults_per_req'):6.0f}  c=4 {ips:5.1f} img/s ({ips / bare:4.2f}x bare Run; "
                  f"per round {per[0]:.2f}-{per[-1]:.2f}, median {statistics.median(per):.2f})")
    for label in labels:
        start, after = med(label, "12mp", "rss_start_mb"), med(label, "12mp", "rss_after_mb")
        print(f"RSS, 12 MP load ({LOAD_S} s, 8 clients), {label}: idle at start {start:.0f} MB, before the load "
              f"{med(label, '12mp', 'rss_before_load_mb'):.0f} MB, peak {med(label, '12mp', 'rss_peak_mb'):.0f} MB, "
              f"5 s after {after:.0f} MB ({(after / start - 1) * 100:+.1f}% of idle at start)")


if __name__ == "__main__":
    main(*sys.argv[1:])
