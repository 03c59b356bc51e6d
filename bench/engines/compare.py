"""Issue 26: libmicrohttpd 0.9.75 (as today) against libh2o-evloop 2.2.5, the
engines alone (mhd_min.c, h2o_min.c: no Sight code), measured the same way.

  compare.py MHD_BIN H2O_BIN [OUT_DIR]     (bench/engines/run builds both and calls this)

  1. smuggling vectors: tests/integration/test_smuggling.py's VECTORS,
     CL_VECTORS and MHD_VECTORS, each followed by its TAIL (GET /healthz) on
     a fresh connection; each outcome classified (CLASSES below).
  1b. for the vectors h2o does not refuse: what its handler is given
     (h2o_min PORT show), i.e. whether a check of Sight's could still see the fault.
  2. memory per idle connection: 10,000 connections holding half a head,
     VmRSS before and after (a fresh server per engine).
  3. throughput: wrk, keep-alive GETs and 1 KiB POSTs, 4 and 64 connections,
     DURATION s each, the engines alternated over ROUNDS rounds: medians.
  4. HTTP/2: does curl --http2-prior-knowledge get an HTTP/2 answer.
  5. lines: today's workaround lines in src/http/front/ (WORKAROUNDS).

Prints a Markdown report and writes it, with the raw figures (results.json),
to OUT_DIR (default /tmp/engines-out). Loopback only."""
import concurrent.futures
import json
import os
import re
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_smuggling import CL_VECTORS, MHD_VECTORS, TAIL, VECTORS  # noqa: E402

IDLE_CONNS = int(os.environ.get("ENGINES_IDLE_CONNS", "10000"))
DURATION = int(os.environ.get("ENGINES_DURATION", "5"))
ROUNDS = int(os.environ.get("ENGINES_ROUNDS", "3"))
VECTOR_WAIT_S = 3.0  # loopback: an answer comes in milliseconds; silence this long is "no answer"
ENGINES = ("mhd", "h2o")

CLASSES = {
    "refused": "refused cleanly: one 4xx/5xx answer, then closed",
    "twice": "header block twice (one answer, its status line again inside it)",
    "2xx": "a 2xx for the vector (TAIL not answered)",
    "smuggled": "TAIL answered too: the vector taken as a request, the GET after it answered (3 answers: one more request carved out of the vector)",
    "open": "no answer, or a refusal with the connection left open",
    "other": "anything else",
}


# ---------------------------------------------------------------- servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, str(self.port), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            raise RuntimeError(f"{binary} did not start: {line!r}")

    def rss_kib(self):
        for l in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
        raise KeyError("VmRSS")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- 1. vectors

def exchange(port, data):
    """data on a fresh connection: (bytes received, "eof" / "reset" / "open")."""
    s = socket.create_connection(("127.0.0.1", port), timeout=VECTOR_WAIT_S)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # answered and closed before it took everything
        out, how = b"", "open"
        deadline = time.monotonic() + VECTOR_WAIT_S
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not d:
                how = "eof"
                break
            out += d
        return out, how
    finally:
        s.close()


def split_answers(raw):
    """raw as HTTP/1.x responses (Content-Length or chunked framing):
    ([(status, head, body)], leftover bytes)."""
    out = []
    while raw.startswith(b"HTTP/1."):
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        hdr = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdr[k.strip().lower()] = v.strip()
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            break
        if b"chunked" in hdr.get(b"transfer-encoding", b"").lower():
            body = b""
            while True:
                size_line, sep, rest = rest.partition(b"\r\n")
                try:
                    n = int(size_line.split(b";")[0], 16)
                except ValueError:
                    n = -1
                if not sep or n < 0:
                    break
                if n == 0:
                    rest = rest.partition(b"\r\n")[2]
                    break
                body, rest = body + rest[:n], rest[n + 2:]
        elif b"content-length" in hdr:
            n = int(hdr[b"content-length"])
            body, rest = rest[:n], rest[n:]
        else:
            body, rest = rest, b""  # read to the end of the connection
        out.append((status, head, body))
        raw = rest
    return out, raw


def classify(raw, how):
    answers, rest = split_answers(raw)
    if not answers:
        return "open" if not raw or how == "open" else "other"
    first_line = raw.split(b"\r\n", 1)[0]
    if raw.count(first_line) > 1 and not any(200 <= st < 300 for st, _, _ in answers[1:]):
        return "twice"  # the same status line again, inside the answer, not as a second one
    if len(answers) > 1:
        return "smuggled" if any(200 <= st < 300 for st, _, _ in answers[1:]) else "other"
    st = answers[0][0]
    if 200 <= st < 300:
        return "2xx"
    if st >= 400 and how != "open" and not rest:
        return "refused"
    return "open" if how == "open" else "other"


def summary(raw, how):
    answers, _ = split_answers(raw)
    sts = "+".join(str(a[0]) for a in answers) or "-"
    return f"{sts} {how}"


def run_vectors(binaries):
    vectors = [(n, d, st, "VECTORS") for n, d, st in VECTORS] + \
              [(n, d, st, "CL_VECTORS") for n, d, st in CL_VECTORS] + \
              [(n, d, st, "MHD_VECTORS") for n, d, st in MHD_VECTORS]
    res = {}
    for eng in ENGINES:
        srv = Server(binaries[eng])
        try:
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                outs = list(pool.map(lambda v: exchange(srv.port, v[1] + TAIL), vectors))
        finally:
            srv.stop()
        res[eng] = {v[0]: {"class": classify(raw, how), "seen": summary(raw, how), "head": raw[:200].decode("latin-1")}
                    for v, (raw, how) in zip(vectors, outs)}
    return vectors, res


def h2o_seen(binary, vectors, names):
    """What h2o_min's handler was given for each vector in names (its "show" mode)."""
    srv = Server(binary, "show")
    try:
        out = {}
        for name, data, _, _ in vectors:
            if name in names:
                answers, _ = split_answers(exchange(srv.port, data + TAIL)[0])
                out[name] = answers[0][2].decode("latin-1").strip() if answers else "(no answer)"
        return out
    finally:
        srv.stop()


# ---------------------------------------------------------------- 2. idle connections

def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"the open-file hard limit {hard} is below {need}")


def idle_memory(binary, n):
    srv = Server(binary)
    socks = []
    try:
        for _ in range(20):  # start-up done, every thread has served
            exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)
        before = srv.rss_kib()
        t0 = time.monotonic()
        for _ in range(n):
            k = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            k.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
            socks.append(k)
        opened = time.monotonic() - t0
        time.sleep(1.0)
        after = srv.rss_kib()
        p = select.poll()
        for k in socks:
            p.register(k, select.POLLIN | select.POLLHUP | select.POLLERR)
        ended = len(p.poll(0))  # answered or closed: should be 0
        return {"conns": n, "rss_before_kib": before, "rss_after_kib": after, "opened_s": round(opened, 1),
                "ended": ended, "kib_per_conn": round((after - before) / n, 2)}
    finally:
        for k in socks:  # a reset, not a close: no TIME_WAIT left for the next runs
            k.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            k.close()
        srv.stop()


# ---------------------------------------------------------------- 3. throughput

def wrk(port, conns, post):
    cmd = ["wrk", "-t", "2", "-c", str(conns), "-d", f"{DURATION}s", f"http://127.0.0.1:{port}/x"]
    if post:
        cmd[1:1] = ["-s", str(HERE / "post1k.lua")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    err = re.search(r"Socket errors:(.*)", out)
    return rps, int(bad.group(1)) if bad else 0, err.group(1).strip() if err else ""


def throughput(binaries):
    cases = [("GET", 4), ("GET", 64), ("POST 1 KiB", 4), ("POST 1 KiB", 64)]
    srv = {e: Server(binaries[e]) for e in ENGINES}
    runs = {f"{c[0]} c{c[1]}": {e: [] for e in ENGINES} for c in cases}
    problems = []
    try:
        for r in range(ROUNDS):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            for what, conns in cases:
                for e in order:
                    rps, bad, err = wrk(srv[e].port, conns, what != "GET")
                    runs[f"{what} c{conns}"][e].append(rps)
                    if bad or err:
                        problems.append(f"{e} {what} c{conns} round {r + 1}: non-2xx {bad}, socket errors {err or 0}")
    finally:
        for s in srv.values():
            s.stop()
    return {k: {e: {"runs": v[e], "median": statistics.median(v[e])} for e in ENGINES} for k, v in runs.items()}, problems


# ---------------------------------------------------------------- 4. HTTP/2

def h2c(binary):
    srv = Server(binary)
    try:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "5", "--http2-prior-knowledge", "-w",
                            "%{http_version} %{http_code}", f"http://127.0.0.1:{srv.port}/"],
                           capture_output=True, text=True)
        return r.stdout.strip() or f"curl rc {r.returncode}"
    finally:
        srv.stop()


# ---------------------------------------------------------------- 5. lines

# Today's engine workarounds in src/http/front/: (file, kind, name). A
# definition's lines run from the comment block right above it to its
# closing brace at column 0 (or the line ending in ";" for a declaration).
WORKAROUNDS = {
    "head layout arithmetic (rc_layout_*, its glue)": [
        ("request_check.h", "typedef", "rc_layout"), ("request_check.h", "decl", "rc_layout_begin"),
        ("request_check.h", "decl", "rc_layout_field"), ("request_check.h", "decl", "rc_layout_end"),
        ("request_check.c", "func", "rc_layout_begin"), ("request_check.c", "func", "rc_layout_field"),
        ("request_check.c", "func", "rc_layout_end"), ("conn.c", "func", "head_off")],
    "raw refusals (rc_send_refusal, front_refuse_*)": [
        ("request_check.h", "decl", "rc_send_refusal"), ("request_check.c", "func", "rc_send_refusal"),
        ("request_check.c", "func", "now_ms"), ("conn.c", "func", "linger_on"),
        ("conn.c", "func", "front_refuse_raw"), ("conn.c", "func", "front_refuse_head"),
        ("front.h", "decl", "front_refuse_raw"), ("front.h", "decl", "front_refuse_head")],
    "lingering close (conn_wait.c)": [
        ("conn_wait.c", "struct", "lingerer"), ("conn_wait.c", "func", "linger_end"),
        ("conn_wait.c", "func", "is_lingerer"), ("conn_wait.c", "func", "linger_read"),
        ("conn_wait.c", "func", "linger_sweep"), ("conn_wait.c", "func", "cw_linger"),
        ("conn_wait.h", "decl", "cw_linger")],
    "Content-Length refusal from the log (engine.c cl_refusal)": [
        ("engine.c", "struct", "line_seen"), ("engine.c", "func", "cl_refusal"),
        ("engine.c", "func", "on_request_line"), ("engine.c", "func", "mhd_log"),
        ("request_check.h", "decl", "rc_content_length_ok"), ("request_check.c", "func", "rc_content_length_ok")],
}


def definition_lines(text, kind, name):
    """kind: func (a definition), decl (a prototype), struct (struct name { ... }
    or the thread-local line_seen), typedef (typedef struct { ... } name;)."""
    lines = text.split("\n")
    if kind == "typedef":
        end = next(i for i, l in enumerate(lines) if re.match(rf"^\}} {name};", l))
        start = max(i for i, l in enumerate(lines[:end]) if l.startswith("typedef struct {"))
        return span(lines, start, end)
    pat = {"func": rf"^[A-Za-z_].*\b{name}\(",
           "decl": rf"^[A-Za-z_].*\b{name}\(",
           "struct": r"^static _Thread_local struct \{" if name == "line_seen" else rf"^[a-z ]*struct {name} \{{"}[kind]
    for i, l in enumerate(lines):
        if not re.match(pat, l) or (kind == "func" and l.rstrip().endswith(";")):
            continue
        end = i
        if kind == "decl":
            while not lines[end].rstrip().endswith(";"):
                end += 1
        else:
            while not lines[end].startswith("}"):
                end += 1
        return span(lines, i, end)
    raise KeyError(f"{kind} {name} not found")


def span(lines, start, end):
    """How many lines start..end are, with the comment block right above them."""
    while start > 0 and lines[start - 1].startswith(("/*", " *", "//")):
        start -= 1
    return end - start + 1


def workaround_lines():
    front = ROOT / "src" / "http" / "front"
    texts = {}
    out = {}
    for group, items in WORKAROUNDS.items():
        n = 0
        for f, kind, name in items:
            texts.setdefault(f, (front / f).read_text())
            n += definition_lines(texts[f], kind, name)
        out[group] = n
    return out


# ---------------------------------------------------------------- report

def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binaries = {"mhd": sys.argv[1], "h2o": sys.argv[2]}
    out_dir = Path(sys.argv[3] if len(sys.argv) > 3 else "/tmp/engines-out")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing (Debian: apt-get install wrk)")
    raise_fd_limit(IDLE_CONNS + 1000)
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    results = {"cpus": os.cpu_count(), "cpu": cpu, "load_at_start": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    rep = [f"{results['date']}; {os.cpu_count()} CPUs ({cpu}); load average at start "
           + " ".join(f"{x:.2f}" for x in results["load_at_start"]) + "\n"]

    vectors, vres = run_vectors(binaries)
    results["vectors"] = vres
    rep.append(f"## Smuggling vectors ({len(vectors)}: test_smuggling.py VECTORS, CL_VECTORS, MHD_VECTORS; each + TAIL)\n")
    rep.append("| outcome | " + " | ".join(ENGINES) + " |\n| --- | --- | --- |")
    for c, text in CLASSES.items():
        rep.append(f"| {text} | " + " | ".join(str(sum(v["class"] == c for v in vres[e].values())) for e in ENGINES) + " |")
    rep.append("\nWhere they differ (answers seen: statuses, then how the connection ended; Sight: what "
               "test_smuggling.py expects of Sight today):\n")
    rep.append("| vector | list | Sight | mhd | h2o |\n| --- | --- | --- | --- | --- |")
    for name, _, st, lst in vectors:
        a, b = vres["mhd"][name], vres["h2o"][name]
        if a["class"] != b["class"]:
            rep.append(f"| {name} | {lst} | {st} | {a['class']} ({a['seen']}) | {b['class']} ({b['seen']}) |")

    passed = [n for n, _, _, _ in vectors if vres["h2o"][n]["class"] != "refused"]
    seen = h2o_seen(binaries["h2o"], vectors, passed)
    results["h2o_handler_saw"] = seen
    rep.append(f"\n## What h2o's handler is given for the {len(passed)} vectors h2o does not refuse\n")
    rep.append("h2o_min PORT show: version, method, authority (the Host), path, body length (-1: none), then the "
               "header list h2o hands over (Content-Length, Transfer-Encoding and Host are not in it).\n")
    rep.append("| vector | handler saw |\n| --- | --- |")
    for n in passed:
        rep.append(f"| {n} | " + seen[n].replace("\n", "; ").replace("|", "\\|") + " |")

    mem = {e: idle_memory(binaries[e], IDLE_CONNS) for e in ENGINES}
    results["idle"] = mem
    rep.append(f"\n## Memory per idle connection ({IDLE_CONNS} connections holding half a head)\n")
    rep.append("| engine | VmRSS before (KiB) | after (KiB) | KiB per connection | still open |\n| --- | --- | --- | --- | --- |")
    for e in ENGINES:
        m = mem[e]
        rep.append(f"| {e} | {m['rss_before_kib']} | {m['rss_after_kib']} | {m['kib_per_conn']} | "
                   f"{m['conns'] - m['ended']} of {m['conns']} |")

    tp, problems = throughput(binaries)
    results["throughput"] = tp
    results["throughput_problems"] = problems
    rep.append(f"\n## Throughput (wrk -t2, keep-alive, {DURATION} s per run, {ROUNDS} rounds alternated; median requests/s)\n")
    rep.append("| load | mhd | h2o | h2o / mhd | runs mhd | runs h2o |\n| --- | --- | --- | --- | --- | --- |")
    for k, v in tp.items():
        m, h = v["mhd"]["median"], v["h2o"]["median"]
        rep.append(f"| {k} | {m:.0f} | {h:.0f} | {h / m:.2f} | " + ", ".join(f"{x:.0f}" for x in v["mhd"]["runs"]) +
                   " | " + ", ".join(f"{x:.0f}" for x in v["h2o"]["runs"]) + " |")
    for p in problems:
        rep.append(f"- {p}")

    h2 = {e: h2c(binaries[e]) for e in ENGINES}
    results["h2c_prior_knowledge"] = h2
    rep.append("\n## HTTP/2 (curl --http2-prior-knowledge: HTTP version, status)\n")
    for e in ENGINES:
        rep.append(f"- {e}: {h2[e]}")

    lines = workaround_lines()
    results["workaround_lines"] = lines
    rep.append("\n## Workaround lines in src/http/front/ today (definitions with their comments)\n")
    for g, n in lines.items():
        rep.append(f"- {g}: {n}")
    rep.append(f"- total: {sum(lines.values())}")

    rep.append("\n## Every vector (answers seen: statuses, then how the connection ended)\n")
    rep.append("| vector | list | Sight | mhd | h2o |\n| --- | --- | --- | --- | --- |")
    for name, _, st, lst in vectors:
        a, b = vres["mhd"][name], vres["h2o"][name]
        rep.append(f"| {name} | {lst} | {st} | {a['class']} ({a['seen']}) | {b['class']} ({b['seen']}) |")

    text = "\n".join(rep) + "\n"
    (out_dir / "results.md").write_text(text)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
