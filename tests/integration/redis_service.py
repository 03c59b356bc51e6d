"""A real redis-server for the tests: on a free loopback port, in a temporary
folder, with no persistence; never the Debian package's own service."""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisService:
    def __init__(self, tmp: Path, password=None):
        self.dir = Path(tmp).resolve()  # redis-server runs in it, and reads --dir from there
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.password = password
        self.proc = None
        self.log = None
        self.start()

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "no", "--enable-debug-command", "local"]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited:\n" + (self.dir / "redis.log").read_text(errors="replace"))
            try:
                if self.command("PING") == "+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *args, timeout=2.0):
        """One command over RESP; returns the first line of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b""
            if self.password:
                out += self._encode("AUTH", self.password)
            out += self._encode(*args)
            s.sendall(out)
            data = b""
            want = 2 if self.password else 1
            while data.count(b"\r\n") < want:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            lines = data.decode(errors="replace").split("\r\n")
            return lines[1] if self.password else lines[0]

    @staticmethod
    def _encode(*args):
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(parts)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test paused it
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def restart(self):
        self.stop()
        self.start()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
