"""A real PostgreSQL server for tests: initdb into a temp dir, listening on
127.0.0.1 at a free port (and a unix socket in the same dir), stopped at the end.

Tests run as root in CI, and PostgreSQL refuses to run as root, so the server
runs as the `postgres` user (Debian's postgresql package creates it) when we
are root, else as ourselves. Local and loopback connections are trusted, but
for PASSWORD_USER, who must give its password (scram-sha-256), so URLs with
passwords are tested too. fsync is off unless asked for: test data need not
survive a power cut.

    pg = PgService(); pg.start()
    url = pg.url(pg.createdb("t1"))            # postgresql://postgres@127.0.0.1:PORT/t1
    pg.stop(mode="immediate"); pg.start()       # an outage, same port and data
    pg.close()
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

PASSWORD_USER = "sight_pw"
PASSWORD = "p@ss:w/rd 1"  # characters a URL must escape


def pg_bin_dir():
    """The newest installed PostgreSQL's bin folder, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if dirs:
        return str(Path(dirs[-1]).parent)
    w = shutil.which("initdb")
    return str(Path(w).parent) if w else None


def skip_reason():
    """Why PostgreSQL tests cannot run here, or None."""
    if not pg_bin_dir():
        return "PostgreSQL server binaries not found (scripts/bootstrap --test installs postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the server as"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgService:
    def __init__(self, fsync=False):
        self.bin = pg_bin_dir()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sight-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-sync", "--auth=trust")
        conf = self.data / "postgresql.conf"
        extra = (f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                 f"unix_socket_directories = '{self.dir}'\nfsync = {'on' if fsync else 'off'}\n"
                 "max_connections = 200\nlog_min_messages = warning\n")
        self._append(conf, extra)
        hba = ("local all all trust\n"
               f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
               "host all all 127.0.0.1/32 trust\n")
        self._write(self.data / "pg_hba.conf", hba)
        self.running = False

    # Files in the data dir belong to the server's user: write them as it.
    def _append(self, path, text):
        self._sh(f"cat >> '{path}'", text)

    def _write(self, path, text):
        self._sh(f"cat > '{path}'", text)

    def _sh(self, cmd, stdin=None):
        argv = ["sh", "-c", cmd]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, cwd="/")

    def _run(self, tool, *args, check=True, timeout=60):
        argv = [f"{self.bin}/{tool}", *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self, mode="fast"):
        """mode: fast (clean), immediate (like a crash: no checkpoint)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
            self.running = False

    def pids(self):
        """The postmaster and its children (backends, checkpointer, ...)."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        kids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    # Field 4 of /proc/PID/stat, after the parenthesised name.
                    if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == main:
                        kids.append(int(d.name))
                except (OSError, ValueError, IndexError):
                    pass
        return [main, *kids]

    def freeze(self):
        """SIGSTOP every process of the server: it stops answering, but the
        kernel still accepts connections and acknowledges packets."""
        self._signal_all(signal.SIGSTOP)  # the postmaster first: it forks no new backend after

    def thaw(self):
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:  # a backend that ended since the listing
                pass

    def psql(self, sql, db="postgres"):
        r = self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir), "-p",
                      str(self.port), "-U", "postgres", "-d", db, "-c", sql)
        return r.stdout.strip()

    def createdb(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def create_password_user(self, db):
        """PASSWORD_USER with PASSWORD, owning db's public schema."""
        self.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PASSWORD_USER}') THEN "
                  f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'; END IF; END $$")
        self.psql(f"GRANT ALL ON SCHEMA public TO {PASSWORD_USER}; GRANT ALL ON DATABASE \"{db}\" TO {PASSWORD_USER}",
                  db=db)

    def url(self, db, user="postgres", password=None):
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(pred, timeout=30, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
