"""Makes the benchmark JPEGs: 640x480, 12 megapixels (4000x3000) and the
320x320 frame a camera NVR sends to the DeepStack route.

From a real photo when one is given (decoded with djpeg, resized with nearest
neighbour, encoded with cjpeg at quality 90), so the JPEG sizes and decode
costs are those of camera pictures; from a synthetic pattern otherwise."""
import subprocess
import sys
from pathlib import Path


def read_ppm(data):
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    assert parts[0] == b"P6", "expected a colour PPM"
    w, h = int(parts[1]), int(parts[2])
    return w, h, data[pos + 1:pos + 1 + w * h * 3]


def resize(w, h, px, nw, nh):
    xs = [(x * w // nw) * 3 for x in range(nw)]
    rows = []
    for y in range(nh):
        row = px[(y * h // nh) * w * 3:][:w * 3]
        rows.append(b"".join(row[i:i + 3] for i in xs))
    return b"".join(rows)


def synthetic(w, h):
    return b"".join(bytes(v for x in range(w) for v in ((x * 7 + y) % 256, (x * y) % 256, (x ^ y) % 256))
                    for y in range(h))


def main(out_dir, photo=None):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if photo and Path(photo).exists():
        w, h, px = read_ppm(subprocess.run(["djpeg", "-ppm", photo], check=True, capture_output=True).stdout)
    else:
        w, h, px = 320, 240, synthetic(320, 240)
    for name, (nw, nh) in {"640x480.jpg": (640, 480), "12mp.jpg": (4000, 3000), "320x320.jpg": (320, 320)}.items():
        target = out / name
        if target.exists():
            continue
        ppm = b"P6\n%d %d\n255\n" % (nw, nh) + resize(w, h, px, nw, nh)
        jpg = subprocess.run(["cjpeg", "-quality", "90"], input=ppm, check=True, capture_output=True).stdout
        target.write_bytes(jpg)


if __name__ == "__main__":
    main(*sys.argv[1:])
