"""make bench, video part (BENCH_ONLY=video): frames analysed per second for a
720p H.264 clip, with the built-in model and with yolo26n (from SHARED/models
when present), the decode time per frame next to the model's, and the
tracker's cost per frame.

  video_bench.py SIGHTD SHARED_DIR OUT_DIR PHOTO [SECONDS]

The clip (made here with ffmpeg: a camera panning across PHOTO scaled up to
1280x720, 30 fps, SECONDS long, default 10) goes through `sightd detect --track`
with every frame analysed (--fps 0) and at the default 5 per second, one model
run at a time (--ort-concurrency 1). Each figure comes from the done line's
timing_ms: decode (demux, decode and the scale to the model's input), yolo (the
stage, all frames), track; per frame = over the frames analysed (decode: over
the frames decoded). Writes video_results.jsonl."""
import json
import subprocess
import sys
import time
from pathlib import Path

sightd, shared, out, photo = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 10
out.mkdir(parents=True, exist_ok=True)
clip = out / "pan720.mp4"
subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", photo, "-vf",
                "scale=1920:-2,crop=1280:720:x='t*40':y=0,format=yuv420p", "-t", str(seconds), "-r", "30",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(clip)], check=True, timeout=300)
models = [("built-in yolox-nano", [])]
y26 = shared / "models" / "yolo26n-w8a32.onnx"
if y26.exists():
    models.append(("yolo26n-w8a32", ["--model", str(y26)]))
else:
    print(f"video bench: {y26} not found (set SIGHT_SHARED); yolo26n skipped", file=sys.stderr)
rows = []
with open(out / "video_results.jsonl", "w") as f:
    for name, extra in models:
        for fps in ("0", "5"):
            t0 = time.monotonic()
            r = subprocess.run([sightd, "detect", str(clip), "--track", "--fps", fps, "--ort-concurrency", "1", *extra],
                               capture_output=True, text=True, timeout=900)
            wall = time.monotonic() - t0
            if r.returncode != 0:
                sys.exit(f"video bench: sightd detect failed ({name}):\n{r.stderr[-2000:]}")
            done = json.loads(r.stdout.splitlines()[-1])["result"]
            v, t = done["video"], done["timing_ms"]
            n = v["frames"]
            row = {"model": name, "fps_param": fps, "frames": n, "decoded": v["decoded_frames"],
                   "analysed_per_s": n / (t["total"] / 1000), "decode_ms_per_decoded": t["decode"] / v["decoded_frames"],
                   "decode_ms_per_analysed": t["decode"] / n, "yolo_ms": t["yolo"] / n, "track_ms": t["track"] / n,
                   "tracks": len(done.get("tracks", [])), "total_ms": t["total"], "wall_s": wall}
            f.write(json.dumps(row) + "\n")
            rows.append(row)
print(f"Video: {clip.name}, 1280x720 H.264 30 fps, {seconds} s (sightd detect --track, one model run at a time)")
print(f"{'model':22} {'--fps':>5} {'frames':>7} {'analysed/s':>11} {'decode ms/frame':>16} {'model ms/frame':>15} "
      f"{'track ms/frame':>15}")
for r in rows:
    print(f"{r['model']:22} {r['fps_param']:>5} {r['frames']:7d} {r['analysed_per_s']:11.1f} "
          f"{r['decode_ms_per_analysed']:10.2f} ({r['decode_ms_per_decoded']:.2f}/dec) {r['yolo_ms']:15.2f} "
          f"{r['track_ms']:15.3f}")
