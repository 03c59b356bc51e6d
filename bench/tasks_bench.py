"""make bench, YOLO tasks part: what masks and keypoints cost per image next to
the model run, on bus.jpg, for the shared segmentation and pose models.

  tasks_bench.py SIGHTD SHARED_DIR OUT_DIR [RUNS]

Runs `sightd detect` once per model on the image repeated RUNS times (one model
load) and reads each result's speed_ms: inference (the Run alone), masks or
keypoints (the task's own post-processing), postprocess (all decoding,
NMS and JSON included). Prints a table of medians; writes tasks_results.jsonl."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

sightd, shared, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
image = shared / "testdata" / "images" / "bus.jpg"
models = [("yolo11n-seg-int8.onnx", "masks", []), ("yolo11n-seg-int8.onnx", "masks", ["--mask-format", "rle"]),
          ("yolov8n-seg-320-int8.onnx", "masks", []), ("yolo11n-pose-w8a32.onnx", "keypoints", [])]
out.mkdir(parents=True, exist_ok=True)
rows = []
with open(out / "tasks_results.jsonl", "w") as f:
    for name, part, extra in models:
        model = shared / "models" / name
        if not model.exists():
            print(f"tasks bench: {model} not found (set SIGHT_SHARED); skipped", file=sys.stderr)
            continue
        # One caller at a time, so the Run is not sharing the cores with another image's Run.
        r = subprocess.run([sightd, "detect", *[str(image)] * runs, "--model", str(model), "--ort-concurrency", "1",
                            *extra], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            sys.exit(f"tasks bench: sightd detect failed for {name}:\n{r.stderr[-2000:]}")
        speeds = [json.loads(line)["result"]["yolo"]["speed_ms"] for line in r.stdout.splitlines() if line.strip()]
        med = {k: statistics.median(s[k] for s in speeds) for k in ("inference", part, "postprocess")}
        row = {"model": name, "format": "rle" if extra else ("polygon" if part == "masks" else "-"), "runs": len(speeds),
               "inference_ms": med["inference"], "task_ms": med[part], "postprocess_ms": med["postprocess"],
               "task_share": med[part] / med["inference"], "part": part}
        f.write(json.dumps(row) + "\n")
        rows.append(row)
print(f"YOLO tasks on {image.name} ({runs} runs each, medians, ms):")
print(f"{'model':28} {'output':9} {'model run':>10} {'post-processing (task)':>24} {'share':>7}")
for r in rows:
    print(f"{r['model']:28} {r['format']:9} {r['inference_ms']:10.1f} {r['postprocess_ms']:12.2f} "
          f"({r['part']} {r['task_ms']:.2f}) {100 * r['task_share']:6.1f}%")
