"""Test images in every format the server loads, made by the tests from one photo with Debian's
ImageMagick (`convert`) and libheif's `heif-enc` (package libheif-examples), plus the ICC
profiles and EXIF blocks they need, written here byte by byte."""
import shutil
import struct
import subprocess
from pathlib import Path

FORMATS = ["jpeg", "png", "webp", "heif", "avif", "gif", "tiff", "bmp"]
SUFFIX = {"jpeg": "jpg", "png": "png", "webp": "webp", "heif": "heic", "avif": "avif", "gif": "gif",
          "tiff": "tif", "bmp": "bmp"}


def png_size(data: bytes):
    """(width, height) from a PNG's IHDR."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def tools_missing():
    return [t for t in ("convert", "heif-enc") if not shutil.which(t)]


def _run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def exif_app1(orientation):
    """A JPEG APP1 segment holding a big-endian EXIF block with only the orientation tag."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
        struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_exif(jpeg, orientation):
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + exif_app1(orientation) + jpeg[2:]


def _s15(v):
    return struct.pack(">i", round(v * 65536))


def _tag_xyz(x, y, z):
    return b"XYZ \x00\x00\x00\x00" + _s15(x) + _s15(y) + _s15(z)


def icc_profile(name, primaries_d50):
    """An ICC v2 matrix/TRC display profile: the given primaries (XYZ, adapted to D50), the sRGB
    tone curve (parametric), a description. What Display P3 and sRGB profiles are."""
    desc_ascii = name.encode() + b"\x00"
    desc = b"desc\x00\x00\x00\x00" + struct.pack(">I", len(desc_ascii)) + desc_ascii + \
        b"\x00" * 4 + b"\x00" * 4 + b"\x00\x00" + b"\x00" + b"\x00" * 67
    trc = b"para\x00\x00\x00\x00" + struct.pack(">HH", 3, 0) + b"".join(
        _s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    cprt = b"text\x00\x00\x00\x00" + b"No copyright, test data\x00"
    (r, g, b) = primaries_d50
    tags = [(b"desc", desc), (b"wtpt", _tag_xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _tag_xyz(*r)),
            (b"gXYZ", _tag_xyz(*g)), (b"bXYZ", _tag_xyz(*b)), (b"rTRC", trc), (b"gTRC", trc),
            (b"bTRC", trc), (b"cprt", cprt)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\x00"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    size = 128 + len(body)
    header = struct.pack(">I", size) + b"\x00" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + \
        struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\x00" * 4 + b"\x00" * 4 + b"\x00" * 8 + \
        b"\x00" * 8 + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\x00" * 4 + \
        b"\x00" * 16 + b"\x00" * 28
    assert len(header) == 128
    return header + body


# Primaries adapted to D50 (Bradford), as in Apple's Display P3 and the usual sRGB profiles.
P3_D50 = ((0.51512, 0.24120, -0.00105), (0.29198, 0.69225, 0.04189), (0.15710, 0.06657, 0.78407))
SRGB_D50 = ((0.43607, 0.22249, 0.01392), (0.38515, 0.71687, 0.09708), (0.14307, 0.06061, 0.71410))


def make_images(out: Path, photo: Path):
    """Writes the photo in every format, upright, and returns {format: path}; plus 'heif_exif6' and
    'avif_exif6' (pixels stored turned, EXIF orientation 6: upright is the photo again), and
    'jpeg_p3' (the photo converted to Display P3 pixels with the profile attached)."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / "photo.png"
    _run("convert", str(photo), str(png))
    paths = {"png": png}
    for fmt in ("jpeg", "webp", "gif", "tiff", "bmp"):
        p = out / f"photo.{SUFFIX[fmt]}"
        _run("convert", str(png), *(["-quality", "92"] if fmt in ("jpeg", "webp") else []), str(p))
        paths[fmt] = p
    paths["heif"] = out / "photo.heic"
    _run("heif-enc", "-q", "80", "-o", str(paths["heif"]), str(png))
    paths["avif"] = out / "photo.avif"
    _run("heif-enc", "-A", "-q", "80", "-o", str(paths["avif"]), str(png))

    # Stored turned 90 degrees counter-clockwise; orientation 6 turns it back clockwise.
    turned = out / "turned.jpg"
    _run("convert", str(png), "-rotate", "-90", "-quality", "95", str(turned))
    tagged = out / "turned_exif6.jpg"
    tagged.write_bytes(with_exif(turned.read_bytes(), 6))
    paths["jpeg_exif6"] = tagged
    for fmt, flags in (("heif", []), ("avif", ["-A"])):
        p = out / f"photo_exif6.{SUFFIX[fmt]}"
        _run("heif-enc", *flags, "-q", "80", "-o", str(p), str(tagged))
        paths[f"{fmt}_exif6"] = p

    srgb, p3 = out / "srgb.icc", out / "p3.icc"
    srgb.write_bytes(icc_profile("sRGB (test)", SRGB_D50))
    p3.write_bytes(icc_profile("Display P3 (test)", P3_D50))
    paths["jpeg_p3"] = out / "photo_p3.jpg"
    # Assign sRGB, then convert to P3: the pixels change, the picture does not.
    _run("convert", str(png), "-profile", str(srgb), "-profile", str(p3), "-quality", "95",
         str(paths["jpeg_p3"]))
    return paths


def hostile_variants(data: bytes, fmt: str):
    """Truncated and corrupted copies of a valid file: (name, bytes). Every one must fail."""
    n = len(data)
    out = [(f"{fmt}-cut{pct}", data[: n * pct // 100]) for pct in (5, 30, 60, 90)]
    # The magic and the start of the header kept, the rest garbage.
    keep = {"bmp": 16, "png": 33}.get(fmt, 24)
    garbage = bytes((i * 131 + 7) % 251 for i in range(n - keep))
    out.append((f"{fmt}-garbage", data[:keep] + garbage))
    return out
