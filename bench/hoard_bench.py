#!/usr/bin/env python3
"""Clients that never read their stream: what they cost a server.

Starts SIGHTD (a binary) with its own key store, opens N raw connections that
each upload FILES images in one v1 stream request and never read the answer,
waits until the server has finished every file (or has stopped starting them:
back-pressure holds the rest), then reports the server's RSS
(/proc/PID/status) and how long one more (reading) client waits for its
answer, and what it got (200, or 429 and its code).

  python3 bench/hoard_bench.py --sightd build/sightd --clients 4 --max-inflight 4
  python3 bench/hoard_bench.py --sightd build/sightd --clients 40

--distinct-keys gives each client its own key (the per-key cap is half of
--max-inflight by default). Prints one JSON object.
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

import httpx

V1 = "/api/v1/inference/predict/stream"


def png_bytes(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(((x * 7 + y) % 256) for x in range(w * 3)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


FIELDS = {}


def body_of(nfiles, img, meta):
    b = uuid.uuid4().hex
    out = bytearray()
    for name, value in FIELDS.items():
        out += f'--{b}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for i in range(nfiles):
        out += f'--{b}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'.encode()
        out += (f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.png"\r\n'
                f"Content-Type: image/png\r\n\r\n").encode() + img + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return b, bytes(out)


def open_stream(port, key, nfiles, img, meta, rcvbuf=4096):
    b, body = body_of(nfiles, img, meta)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(f"POST {V1} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: multipart/form-data; "
              f"boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return s


def metric(url, name):
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sightd", required=True)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--side", type=int, default=640, help="images are SIDE x SIDE*3/4 PNGs")
    ap.add_argument("--max-inflight", type=int, default=0, help="0: the server's default")
    ap.add_argument("--distinct-keys", action="store_true")
    ap.add_argument("--meta", default='{"is_yolo": true, "is_ocr": false, "is_llm": false}')
    ap.add_argument("--confidence", help="the confidence field (low: many boxes, a long answer)")
    ap.add_argument("--max-detections", help="the max_detections field")
    ap.add_argument("--wait", type=float, default=600, help="seconds to wait for the work")
    a = ap.parse_args()
    if a.confidence:
        FIELDS["confidence"] = a.confidence
    if a.max_detections:
        FIELDS["max_detections"] = a.max_detections

    tmp = tempfile.mkdtemp(prefix="hoard")
    db = os.path.join(tmp, "keys.db")

    def newkey(name):
        r = subprocess.run([a.sightd, "keys", "create", "--name", name, "--db", db], capture_output=True, text=True,
                           check=True)
        return r.stdout.strip()

    keys = [newkey(f"k{i}") for i in range(a.clients if a.distinct_keys else 1)]
    last_key = newkey("last")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [a.sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", db]
    if a.max_inflight:
        args += ["--max-inflight", str(a.max_inflight)]
    log = open(os.path.join(tmp, "sightd.log"), "wb")
    print("log:", os.path.join(tmp, "sightd.log"), file=sys.stderr)
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        img = png_bytes(a.side, a.side * 3 // 4)
        idle_rss = rss_kb(proc.pid)
        t0 = time.time()
        socks = [open_stream(port, keys[i % len(keys)], a.files, img, a.meta) for i in range(a.clients)]
        want = a.clients * a.files
        # Until every file is settled, or none has been for 8 s (the rest wait
        # for clients that do not read: back-pressure).
        last, last_change, max_rss = -1, time.time(), 0
        while time.time() - t0 < a.wait:
            settled = metric(url, 'sight_files_total{outcome="done"}') + metric(url, 'sight_files_total{outcome="error"}')
            max_rss = max(max_rss, rss_kb(proc.pid))
            if settled != last:
                last, last_change = settled, time.time()
            if settled >= want or (settled > 0 and time.time() - last_change > 8):
                break
            time.sleep(0.2)
        work_s = time.time() - t0
        time.sleep(1.5)  # past the pipeline's idle trim
        rss = rss_kb(proc.pid)
        hwm = rss_kb(proc.pid, "VmHWM")
        inflight = metric(url, "sight_requests_in_flight")
        # One more client, which reads: how long until its answer, and what it is.
        t1 = time.time()
        b, body = body_of(1, img, a.meta)
        r = httpx.post(url + V1, content=body, timeout=600,
                       headers={"X-API-Key": last_key, "Content-Type": f"multipart/form-data; boundary={b}"})
        fifth_s = time.time() - t1
        code = r.json()["detail"]["code"] if r.status_code != 200 else None
        out = {"clients": a.clients, "files": a.files, "settled_files": settled, "work_s": round(work_s, 2),
               "idle_rss_mb": round(idle_rss / 1024, 1), "rss_mb": round(rss / 1024, 1),
               "peak_rss_mb": round(hwm / 1024, 1),
               "max_rss_while_held_mb": round(max(max_rss, rss) / 1024, 1), "in_flight_after_work": inflight,
               "next_client_status": r.status_code, "next_client_code": code,
               "next_client_s": round(fifth_s, 3)}
        print(json.dumps(out))
        for s in socks:
            s.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
