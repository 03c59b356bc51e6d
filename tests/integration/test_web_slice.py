"""The playground in Chromium with the "slice" tick: a 1920x1080 mosaic of
photos (mosaic.py) detected in tiles, the tile grid drawn. Screenshot in the
test's tmp folder."""
import subprocess

import mosaic
from client_toolchains import node_bin  # noqa: F401 (fixture)
from test_web import playwright_dir  # noqa: F401 (fixture)


def test_playground_slices_and_draws_the_grid(server, playwright_dir, node_bin, tmp_path):  # noqa: F811
    img, _ = mosaic.build(width=1920, height=1080, cols=4, rows=3)
    image = tmp_path / "mosaic.png"
    image.write_bytes(mosaic.png(img))
    out = tmp_path / "screenshots"
    r = subprocess.run([node_bin, str(playwright_dir / "e2e_slice.mjs"), server.url, server.key, str(image), str(out)],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f"e2e_slice.mjs failed:\n{r.stdout}\n{r.stderr}\nlog:\n{server.log_text()[-2000:]}"
    assert (out / "playground-slice.png").stat().st_size > 10000
