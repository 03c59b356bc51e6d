"""The playground in Chromium with the segmentation and pose models: masks and
skeletons drawn on bus.jpg, keypoints listed. Screenshots in the test's tmp folder."""
import subprocess

import pytest

from conftest import SHARED, photo_path
from test_web import playwright_dir  # noqa: F401 (fixture)
from client_toolchains import node_bin  # noqa: F401 (fixture)

SEG = SHARED / "models" / "yolo11n-seg-int8.onnx"
POSE = SHARED / "models" / "yolo11n-pose-w8a32.onnx"


def test_playground_draws_masks_and_skeletons(start_server, playwright_dir, node_bin, tmp_path):  # noqa: F811
    for m in (SEG, POSE):
        if not m.exists():
            pytest.skip(f"{m} not found (set SIGHT_SHARED): the Ultralytics models are AGPL-3.0 and never committed")
    seg = start_server("--model", str(SEG))
    pose = start_server("--model", str(POSE))
    out = tmp_path / "screenshots"
    r = subprocess.run([node_bin, str(playwright_dir / "e2e_tasks.mjs"), seg.url, seg.key, pose.url, pose.key,
                        str(photo_path("bus.jpg")), str(out)], capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f"e2e_tasks.mjs failed:\n{r.stdout}\n{r.stderr}\nlog:\n{seg.log_text()[-2000:]}"
    for name in ("playground-masks.png", "playground-pose.png"):
        assert (out / name).stat().st_size > 10000
