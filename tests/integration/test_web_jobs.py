"""The playground's Jobs view in Chromium: a job made from pasted URLs (a
loopback image server), its progress followed live to completed, the job in
the key's list, and another cancelled. Screenshot in the test's tmp folder."""
import subprocess

from client_toolchains import node_bin  # noqa: F401 (fixture)
from test_jobs import images  # noqa: F401 (fixture)
from test_web import playwright_dir  # noqa: F401 (fixture)


def test_playground_runs_follows_and_cancels_jobs(start_server, images, playwright_dir, node_bin, tmp_path):  # noqa: F811
    # One worker: a node runs 2 x --workers items at once, so the job's slow
    # items go in waves and its progress is seen part way (6 at once end together).
    s = start_server("--url-allow", "127.0.0.2/32", "--workers", "1")
    out = tmp_path / "screenshots"
    r = subprocess.run([node_bin, str(playwright_dir / "e2e_jobs.mjs"), s.url, s.key, images, str(out)],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f"e2e_jobs.mjs failed:\n{r.stdout}\n{r.stderr}\nlog:\n{s.log_text()[-2000:]}"
    assert (out / "playground-jobs.png").stat().st_size > 10000
