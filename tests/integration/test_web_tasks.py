"""The playground in Chromium with a segmentation and a pose model: masks and skeletons drawn
on a photo, keypoints listed. The models are built here with Ultralytics' output layouts
(test_tasks.seg_model, pose_model: masks and figures at fixed places, whatever the photo), so
a fresh clone runs this; the drawing is what is checked, not the models. Screenshots in the
test's tmp folder."""
import subprocess

from conftest import photo_path
from test_tasks import pose_model, seg_model
from test_web import playwright_dir  # noqa: F401 (fixture)
from client_toolchains import node_bin  # noqa: F401 (fixture)


def test_playground_draws_masks_and_skeletons(start_server, playwright_dir, node_bin, tmp_path):  # noqa: F811
    seg = start_server("--model", str(seg_model(tmp_path / "seg.onnx")))
    pose = start_server("--model", str(pose_model(tmp_path / "pose.onnx")))
    out = tmp_path / "screenshots"
    r = subprocess.run([node_bin, str(playwright_dir / "e2e_tasks.mjs"), seg.url, seg.key, pose.url, pose.key,
                        str(photo_path("opencv_messi5.jpg")), str(out)], capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f"e2e_tasks.mjs failed:\n{r.stdout}\n{r.stderr}\nlog:\n{seg.log_text()[-2000:]}"
    for name in ("playground-masks.png", "playground-pose.png"):
        assert (out / name).stat().st_size > 10000
