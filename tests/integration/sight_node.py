"""One sightd node of a test cluster: a real process on a free loopback port
over a key store that other nodes share (a SQLite file or a PostgreSQL URL)."""
import signal
import subprocess
import time

import httpx

from conftest import SIGHTD, START_S, free_port


class Node:
    def __init__(self, tmp, db, *args, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"sightd-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [SIGHTD, "serve", "--listen", f"127.0.0.1:{self.port}", "--db", db, "--log-level", "debug",
             "--workers", "2", *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp, env=env)
        deadline = time.time() + START_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sightd exited early:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("sightd did not start")

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def metric(self, name):
        """A sample's value from /metrics, by its full name with labels; 0 if absent."""
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self):
        """SIGTERM, then the exit code (0 for a clean drain)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc
