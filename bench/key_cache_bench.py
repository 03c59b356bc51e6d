"""What the verified-key cache saves a prediction: two servers side by side,
--key-cache-ttl 60 (the default) and 0 (every request reads the key store),
no detection model, loaded in turn (the order swapped each round) with the same quick request (a 2x2 PNG,
no stage: the request's own cost) over kept-alive connections. Prints per
server the median request time over the rounds and the store lookups per
request (sight_key_lookups_total), then the ratio.

    python3 bench/key_cache_bench.py SIGHTD [ROUNDS] [REQUESTS] [CLIENTS]
"""
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

V1 = "/api/v1/inference/predict/stream"


def png(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(3 * w) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


BODY = (b'--bb\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        + png(2, 2) + b'\r\n--bb\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
        + json.dumps({"is_yolo": False, "is_ocr": False, "is_llm": False}).encode() + b"\r\n--bb--\r\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(sightd, work, name, ttl):
    db = os.path.join(work, name + ".db")
    key = subprocess.run([sightd, "keys", "create", "--name", "b", "--db", db], capture_output=True, text=True,
                         check=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--model", "none",
                             "--key-cache-ttl", str(ttl), "--log-level", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.05)
    return proc, port, key


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def load(port, key, n, clients):
    """n requests spread over clients kept-alive connections; seconds per request (wall / n)."""
    hdr = {"X-API-Key": key, "Content-Type": "multipart/form-data; boundary=bb"}
    per = n // clients

    def one():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per):
            c.request("POST", V1, body=BODY, headers=hdr)
            r = c.getresponse()
            text = r.read()
            assert r.status == 200 and b'"complete"' in text, (r.status, text[:200])

    ts = [threading.Thread(target=one) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (time.perf_counter() - t0) / (per * clients)


def main():
    sightd = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with tempfile.TemporaryDirectory() as work:
        servers = {"cache": start(sightd, work, "cache", 60), "no cache": start(sightd, work, "nocache", 0)}
        try:
            times = {k: [] for k in servers}
            before = {k: metric(p, 'sight_key_lookups_total{source="store"}') for k, (_, p, _) in servers.items()}
            for i in range(rounds):
                # In turn, the order swapped each round: neither always runs first.
                for k in list(servers)[:: 1 if i % 2 == 0 else -1]:
                    _, port, key = servers[k]
                    times[k].append(load(port, key, n, clients))
            for k, (_, port, _) in servers.items():
                store = metric(port, 'sight_key_lookups_total{source="store"}') - before[k]
                print(f"{k:>9}: median {statistics.median(times[k]) * 1e3:.3f} ms per request over {rounds} rounds "
                      f"of {n} ({clients} client(s)); store lookups per request {store / (rounds * n):.3f}")
            ratio = statistics.median(times["no cache"]) / statistics.median(times["cache"])
            print(f"no cache / cache: x{ratio:.2f}")
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
