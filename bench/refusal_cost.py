"""A hostile input's cost: the server's CPU (utime+stime, /proc/PID/stat) and peak memory (VmHWM) for N
requests whose Content-Length libmicrohttpd refuses itself, each on a fresh connection, against N plain
GET /healthz, for two binaries in one run. Usage: refusal_cost.py BEFORE_SIGHTD AFTER_SIGHTD"""
import os, socket, subprocess, sys, tempfile, time
N = 2000
def stat(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    hwm = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0].split()[1]
    return cpu, int(hwm)
def send(port, data):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(data); s.settimeout(5)
    while True:
        try:
            if not s.recv(65536): break
        except OSError: break
    s.close()
CL = b"POST /api/v1/inference/predict/stream HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab"
OK = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
for name, exe in [("before", sys.argv[1]), ("after", sys.argv[2])]:
    d = tempfile.mkdtemp(); port = 18300 + (name == "after")
    p = subprocess.Popen([exe, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", d, "--create-first-key", "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    for label, data in [("healthz", OK), ("cl+2", CL)]:
        c0, _ = stat(p.pid); t = time.time()
        for _ in range(N): send(port, data)
        c1, hwm = stat(p.pid)
        print(f"{name:6} {label:8} server CPU {(c1 - c0) / N * 1e6:6.0f} us/request, wall {(time.time() - t) / N * 1e3:.2f} ms, VmHWM {hwm / 1024:.0f} MiB")
    p.terminate(); p.wait()
