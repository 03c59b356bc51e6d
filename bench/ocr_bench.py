"""make bench, OCR part: Sight's OCR (PP-OCRv4 on ONNX Runtime, through the
HTTP API of a running sightd) against Tesseract (Debian's tesseract-ocr CLI)
on the same images: character accuracy against the references written in
tests/integration/ocr_reference.py, and time per image, side by side.

usage: ocr_bench.py URL API_KEY OUT_DIR IMAGES_DIR   (REPEAT env: runs per image, default 5)

Sight's time is the whole HTTP request as the client sees it (warm server);
Tesseract's is one CLI run per image, as it has no server mode, so its time
includes starting the process and loading its model (measured separately on
a blank 1x1 image and shown as "start")."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from ocr_reference import DOCUMENTS, LABELS, REFERENCE, SCENE, char_accuracy, render_label  # noqa: E402

url, key, out, images = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
REPEAT = int(os.environ.get("REPEAT", "5"))
out.mkdir(parents=True, exist_ok=True)

cases = []  # (name, kind, path, reference text)
for n in SCENE + DOCUMENTS:
    if (images / n).exists():
        cases.append((n, "scene" if n in SCENE else "document", images / n, REFERENCE[n]))
for name, lines, args in LABELS:
    p = out / name
    try:
        render_label(p, args)
        cases.append((name, "label", p, "\n".join(lines)))
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"ocr bench: cannot render {name} ({e}); labels skipped", file=sys.stderr)
        break


def sight(path):
    data = path.read_bytes()
    times, text, stage = [], "", []
    with httpx.Client(timeout=300) as c:
        for i in range(REPEAT + 1):
            t = time.perf_counter()
            r = c.post(url, data={"api_key": key, "metadata": json.dumps({"is_ocr": True})},
                       files=[("files", (path.name, data))])
            dt = (time.perf_counter() - t) * 1000
            done = next(json.loads(l) for l in r.text.splitlines() if '"done"' in l or '"error"' in l)
            text = done["result"]["ocr"]["text"]
            if i:  # the first run warms caches
                times.append(dt)
                stage.append(done["result"]["timing_ms"]["ocr"])
    return text, statistics.median(times), statistics.median(stage)


def tesseract(path, psm):
    times, text = [], ""
    for _ in range(REPEAT):
        t = time.perf_counter()
        r = subprocess.run(["tesseract", str(path), "stdout", "-l", "eng", "--psm", str(psm)],
                           capture_output=True, text=True, timeout=300)
        times.append((time.perf_counter() - t) * 1000)
        text = r.stdout
    return text, statistics.median(times)


blank = out / "blank.png"
subprocess.run(["/usr/bin/python3", "-c", "import sys,zlib,struct\n"
                "c=lambda k,d: struct.pack('>I',len(d))+k+d+struct.pack('>I',zlib.crc32(k+d)&0xffffffff)\n"
                "sys.stdout.buffer.write(b'\\x89PNG\\r\\n\\x1a\\n'+c(b'IHDR',struct.pack('>IIBBBBB',1,1,8,2,0,0,0))"
                "+c(b'IDAT',zlib.compress(b'\\x00\\xff\\xff\\xff'))+c(b'IEND',b''))"],
               stdout=open(blank, "wb"), check=True)
_, start_ms = tesseract(blank, 3)

rows = []
for name, kind, path, ref in cases:
    s_text, s_ms, s_stage = sight(path)
    t3_text, t3_ms = tesseract(path, 3)
    t11_text, t11_ms = tesseract(path, 11)
    rows.append({"image": name, "kind": kind,
                 "sight_acc": char_accuracy(s_text, ref), "sight_ms": s_ms, "sight_stage_ms": s_stage,
                 "tess3_acc": char_accuracy(t3_text, ref), "tess3_ms": t3_ms,
                 "tess11_acc": char_accuracy(t11_text, ref), "tess11_ms": t11_ms,
                 "sight_text": s_text, "tess3_text": t3_text, "tess11_text": t11_text})
with open(out / "ocr_results.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")

print(f"\nOCR: character accuracy (1 - edit distance / reference length) and median time per image "
      f"({REPEAT} runs, {os.cpu_count()} cores)")
print("  Sight = PP-OCRv4 through the HTTP API (request time; OCR stage alone in brackets)")
print(f"  Tesseract {subprocess.run(['tesseract', '--version'], capture_output=True, text=True).stdout.split()[1]} CLI, "
      f"eng; psm 3 = automatic page layout (its default), psm 11 = sparse text; "
      f"process start + model load on a blank image: {start_ms:.0f} ms")
print(f"\n{'image':<26}{'kind':<10}{'Sight acc':>10}{'ms':>14}{'Tess3 acc':>11}{'ms':>7}{'Tess11 acc':>12}{'ms':>7}")
for r in rows:
    print(f"{r['image']:<26}{r['kind']:<10}{r['sight_acc']:>10.1%}{r['sight_ms']:>7.0f} ({r['sight_stage_ms']:>4.0f})"
          f"{r['tess3_acc']:>11.1%}{r['tess3_ms']:>7.0f}{r['tess11_acc']:>12.1%}{r['tess11_ms']:>7.0f}")
for kind in ("scene", "document", "label"):
    k = [r for r in rows if r["kind"] == kind]
    if not k:
        continue
    m = lambda key: statistics.mean(r[key] for r in k)  # noqa: E731
    print(f"{'mean ' + kind:<36}{m('sight_acc'):>10.1%}{m('sight_ms'):>7.0f} ({m('sight_stage_ms'):>4.0f})"
          f"{m('tess3_acc'):>11.1%}{m('tess3_ms'):>7.0f}{m('tess11_acc'):>12.1%}{m('tess11_ms'):>7.0f}")
print(f"\ntexts read: {out / 'ocr_results.jsonl'}")
