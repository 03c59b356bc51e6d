"""What one hostile file costs the server (issue 25): for each FILE, a fresh server, one v1 request
with that file alone, and the server's own CPU time (utime + stime, /proc/PID/stat) and peak-memory
growth (VmHWM, /proc/PID/status) for it, with the file's outcome.

    python3 tests/integration/decode_bombs.py /tmp/bombs      # makes the bomb files
    python3 bench/bomb_cost.py build/sightd /tmp/bombs/*        # after
    python3 bench/bomb_cost.py /path/to/older/sightd /tmp/bombs/*  # before, for comparison

EXTRA="--max-pixels-heif 48M" passes server flags. Loopback only."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import httpx

TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK


def hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(sightd, path):
    sightd = os.path.abspath(sightd)  # the server runs in a temporary directory
    d = tempfile.mkdtemp()
    try:
        key = subprocess.run([sightd, "keys", "create", "--name", "t", "--db", d + "/k.db"],
                             capture_output=True, text=True, check=True).stdout.strip()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", d + "/k.db",
                              *os.environ.get("EXTRA", "").split()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            c0, m0 = cpu_s(p.pid), hwm_mib(p.pid)
            t0 = time.monotonic()
            r = httpx.post(url + "/api/v1/inference/predict/stream",
                           data={"api_key": key, "metadata": [json.dumps({"is_yolo": False, "is_llm": False})]},
                           files=[("files", (os.path.basename(path), open(path, "rb").read()))], timeout=300)
            wall = time.monotonic() - t0
            c1, m1 = cpu_s(p.pid), hwm_mib(p.pid)
        finally:
            p.terminate()
            p.wait()
        lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
        fin = [m for m in lines if m.get("status") in ("done", "error")]
        what = fin[0].get("error", {}).get("code", "done") if fin else r.status_code
        msg = fin[0].get("error", {}).get("message", "") if fin else r.text[:200]
        print(f"{os.path.basename(path):24s} cpu {c1 - c0:6.2f} s  peak +{m1 - m0:7.1f} MiB (base {m0:.0f})"
              f"  wall {wall:6.2f} s  {what}: {msg}", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for f in sys.argv[2:]:
        measure(sys.argv[1], f)
