"""Starts sightd and stops it with SIGTERM, many times, under the conditions
that made libmicrohttpd 0.9.75 abort in MHD_quiesce_daemon ("Failed to
remove listen FD from epoll set", exit -6): idle keep-alive connections,
others sending requests on every HTTP thread, and an upload in flight at
SIGTERM. Returns the exit codes; every one must be 0.

    [CYCLES_ONE_CPU=1] python3 tests/integration/shutdown_cycles.py [CYCLES] [SIGHTD]
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

V1 = "/api/v1/inference/predict/stream"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(sock):
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"}\n"):
        d = sock.recv(4096)
        if not d:
            raise ConnectionError("closed")
        got += d
    return got


def _wait_up(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                if _get(s).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False


def one_cycle(sightd, db, key, workdir, threads=8, one_cpu=False):
    """One start, load and SIGTERM; returns (exit code, log tail). one_cpu:
    every thread of the server on one CPU, so that a thread is often
    preempted between two steps (what a loaded machine does at random)."""
    port = _free_port()
    log = open(workdir / "sightd.log", "wb")
    pin = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if one_cpu else []
    proc = subprocess.Popen([*pin, sightd, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--model", "none",
                             "--http-threads", str(threads), "--shutdown-timeout", "1", "--log-level", "info"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    stop = threading.Event()
    socks = []
    try:
        if not _wait_up(port, proc, time.monotonic() + 20):
            proc.kill()
            proc.wait()
            return -999, (workdir / "sightd.log").read_text(errors="replace")[-2000:]
        # Idle keep-alive connections, one request answered on each.
        for _ in range(8):
            k = socket.create_connection(("127.0.0.1", port), timeout=5)
            _get(k)
            socks.append(k)

        def busy():
            # Pipelined requests on kept-alive connections until SIGTERM ends
            # them: every HTTP thread is in and out of its event loop.
            batch = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 16
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as k:
                    while not stop.is_set():
                        k.sendall(batch)
                        got = 0
                        while got < 16:
                            d = k.recv(65536)
                            if not d:
                                return
                            got += d.count(b"HTTP/1.1 ")
            except OSError:
                pass

        def upload():
            # A prediction upload in flight at SIGTERM: headers, then the body slowly.
            body = b"x" * 4_000_000  # about 2 s at this pace: still arriving at SIGTERM
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as k:
                    k.sendall((f"POST {V1} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                               f"Content-Type: multipart/form-data; boundary=b\r\n"
                               f"Content-Length: {len(body)}\r\n\r\n").encode())
                    for i in range(0, len(body), 4096):
                        if stop.is_set():
                            break
                        k.sendall(body[i:i + 4096])
                        time.sleep(0.002)
            except OSError:
                pass

        workers = [threading.Thread(target=busy) for _ in range(2 * threads)] + [threading.Thread(target=upload)]
        for t in workers:
            t.start()
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        # New connections during the drain, as a client retrying (or a test's
        # teardown) would: each an event on the HTTP threads' epoll sets while
        # the listening socket is being given up. This is what made
        # MHD_quiesce_daemon's removal race with the workers' own.
        def poke():
            while proc.poll() is None and not stop.is_set():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    time.sleep(0.005)
        poker = threading.Thread(target=poke)
        poker.start()
        workers.append(poker)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        stop.set()
        for t in workers:
            t.join(10)
        return rc, (workdir / "sightd.log").read_text(errors="replace")[-2000:]
    finally:
        stop.set()
        for k in socks:
            k.close()
        log.close()


def run(cycles, sightd, one_cpu=False):
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        db = str(work / "keys.db")
        r = subprocess.run([sightd, "keys", "create", "--name", "cycles", "--db", db], capture_output=True,
                           text=True, check=True)
        key = r.stdout.strip()
        codes = []
        for i in range(cycles):
            rc, tail = one_cycle(sightd, db, key, work, one_cpu=one_cpu)
            codes.append(rc)
            if rc != 0:
                print(f"cycle {i}: exit {rc}\n{tail}", file=sys.stderr)
            # The drain waited for the upload: it was in flight at SIGTERM.
            DRAINED.append("request(s) still running" in tail)
        return codes


DRAINED = []  # per cycle: the upload was still running when the drain ended


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    binary = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SIGHTD", "build/sightd"))
    t0 = time.monotonic()
    got = run(n, binary, one_cpu=os.environ.get("CYCLES_ONE_CPU") == "1")
    bad = [c for c in got if c != 0]
    print(f"{n} cycles in {time.monotonic() - t0:.0f} s: {n - len(bad)} exit 0, {len(bad)} other: {sorted(set(bad))}; "
          f"an upload in flight at SIGTERM in {sum(DRAINED)}")
    sys.exit(1 if bad else 0)
