"""Prints make bench's table from results.jsonl and the two ratios the targets name."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ort = [r for r in rows if r["kind"] == "ort"]
http = [r for r in rows if r["kind"] == "http"]
run1 = statistics.median(r["run_ms_p50"] for r in ort if r["callers"] == 1)
best_rate = max(statistics.median(r["runs_per_s"] for r in ort if r["callers"] == c) for c in {r["callers"] for r in ort})
print("\nbare ONNX Runtime Run (same model, same settings as the server):")
for r in ort:
    print(f"  pass {r['pass']} callers {r['callers']}: p50 {r['run_ms_p50']:.1f} ms  p95 {r['run_ms_p95']:.1f} ms  {r['runs_per_s']:.2f} runs/s")
# "run p50" is the server's own measure of the model run inside each request;
# at concurrency above the number of model slots, latency includes queueing.
print(f"\n{'image':<9}{'conc':>5}{'img/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'run p50':>9}")
for r in http:
    print(f"{r['image']:<9}{r['concurrency']:>5}{r['images_per_s']:>8.2f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
          f"{r['inference_p50_ms']:>9.1f}")
for img in ("640x480", "12mp"):
    c1 = next(r for r in http if r["image"] == img and r["concurrency"] == 1)
    c8 = next(r for r in http if r["image"] == img and r["concurrency"] == 8)
    print(f"\n{img}: overhead at concurrency 1 = (p50 latency - bare Run p50) / bare Run p50 = "
          f"({c1['p50_ms']:.1f} - {run1:.1f}) / {run1:.1f} = {(c1['p50_ms'] - run1) / run1:.1%}   (target < 10%)")
    print(f"{img}: throughput at concurrency 8 / best back-to-back Run rate = {c8['images_per_s']:.2f} / {best_rate:.2f} = "
          f"{c8['images_per_s'] / best_rate:.1%}   (target >= 90%)")
