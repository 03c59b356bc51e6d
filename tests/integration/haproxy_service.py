"""A real HAProxy (Debian's haproxy) in front of sightd nodes, run from the
repository's deploy/haproxy.cfg: the tests use the file operators are given.

It listens on 127.0.0.1 only, runs in the foreground (-db) as a child of the
test and is stopped at the end."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "haproxy.cfg"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HAProxy:
    def __init__(self, tmp: Path, nodes):
        """nodes: three "127.0.0.1:PORT" strings, in the config's n1..n3 order."""
        exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.path.exists(exe):
            pytest.skip("haproxy not installed (scripts/bootstrap --test installs it)")
        assert len(nodes) == 3, "deploy/haproxy.cfg names three nodes"
        self.port = _free_port()
        self.stats_port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SIGHT_LB_BIND=f"127.0.0.1:{self.port}",
                   SIGHT_LB_STATS=f"127.0.0.1:{self.stats_port}",
                   SIGHT_NODE1=nodes[0], SIGHT_NODE2=nodes[1], SIGHT_NODE3=nodes[2])
        self.log_path = tmp / "haproxy.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([exe, "-db", "-f", str(CONFIG)], env=env, cwd=tmp,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited:\n" + self.log_path.read_text(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy did not listen")

    def node_states(self):
        """{'n1': 'UP'|'DOWN'|..., ...} from the stats page's CSV."""
        import httpx
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        lines = text.splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "sightd" and row.get("svname", "").startswith("n"):
                out[row["svname"]] = row["status"]
        return out

    def wait_states(self, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.node_states()
            if all(st.get(k, "").startswith(v) for k, v in want.items()):
                return st
            time.sleep(0.1)
        raise AssertionError(f"haproxy node states {self.node_states()} never matched {want}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
