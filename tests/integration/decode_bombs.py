"""Decompression bombs whose cost is not in their pixel count, written byte by byte (no imaging
library): progressive JPEGs that repeat scans, JPEGs with too many components, TIFFs with too
many samples per pixel or bits per sample whose strips all point at one tiny strip, TIFFs with
thousands of pages and GIFs with thousands of frames. Each is valid enough that a decoder
without a cost budget spends seconds (or gigabytes) on it.

Run as a script to write each bomb into a folder (for measuring a binary by hand):
    python3 tests/integration/decode_bombs.py /tmp/bombs"""
import struct
import sys
import zlib
from pathlib import Path


# ------------------------------------------------------------------ JPEG

class _Bits:
    """An entropy-coded segment: bits MSB first, 0xFF stuffed, padded with 1s."""

    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, nbits):
        for i in range(nbits - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def done(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def _seg(marker, body):
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


# AC table: the end-of-band-run symbols r<<4 (r = 0..14), each a 4-bit code 0..14.
_AC_SYMS = [r << 4 for r in range(15)]


def _eob_runs(blocks):
    """A scan of `blocks` all-zero blocks: end-of-band runs of up to 32767 blocks."""
    b = _Bits()
    while blocks:
        run = min(blocks, 32767)
        r = run.bit_length() - 1
        b.put(r, 4)  # the symbol r<<4 has code r
        b.put(run - (1 << r), r)
        blocks -= run
    return b.done()


def progressive_jpeg(width, height, components=1, scans=None, cmyk=False, icc=False):
    """A progressive JPEG of one flat colour whose scans are all valid: a DC scan, then per
    component and per AC coefficient a first scan at Al=13 and 13 refinement scans, each an
    end-of-band run over every block (a few dozen bytes that make the decoder walk every block).
    scans: how many scans in all (at most 1 + components*63*14; default all of them). With
    components > 4 (a band bomb) only the DC scans are written. cmyk: an Adobe marker that
    makes 4 components CMYK. icc: a junk ICC_PROFILE marker (libvips' path when converting)."""
    out = bytearray(b"\xff\xd8")
    if icc:
        out += _seg(0xE2, b"ICC_PROFILE\x00\x01\x01" + b"\x00" * 128)
    if cmyk:
        out += _seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    out += _seg(0xDB, b"\x00" + b"\x01" * 64)
    sof = struct.pack(">BHHB", 8, height, width, components)
    for c in range(components):
        sof += struct.pack(">BBB", c + 1, 0x11, 0)
    out += _seg(0xC2, sof)
    # DC table 0: only category 0 (code "0"); AC table 0: the EOB-run symbols.
    out += _seg(0xC4, b"\x00" + bytes([0, 1] + [0] * 14) + b"\x00")
    out += _seg(0xC4, b"\x10" + bytes([0, 0, 0, len(_AC_SYMS)] + [0] * 12) + bytes(_AC_SYMS))
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    written = 0
    limit = scans if scans is not None else 1 << 30
    # DC: interleaved, at most 4 components a scan; every block a zero difference.
    for first in range(0, components, 4):
        group = list(range(first, min(first + 4, components)))
        sos = bytes([len(group)]) + b"".join(bytes([c + 1, 0x00]) for c in group) + b"\x00\x00\x00"
        nbits = blocks * len(group)
        data = b"\x00" * (nbits // 8) + (bytes([(1 << (8 - nbits % 8)) - 1]) if nbits % 8 else b"")
        out += _seg(0xDA, sos) + data
        written += 1
    if components <= 4:
        body = _eob_runs(blocks)
        for c in range(components):
            for k in range(1, 64):
                for al in range(13, -1, -1):
                    if written >= limit:
                        break
                    ah = 0 if al == 13 else al + 1
                    out += _seg(0xDA, bytes([1, c + 1, 0x00, k, k, (ah << 4) | al])) + body
                    written += 1
    out += b"\xff\xd9"
    return bytes(out)


# ------------------------------------------------------------------ TIFF

def _ifd(tags, at, next_ifd):
    """A little-endian IFD placed at offset `at`: tags is [(tag, type, values)], values that do
    not fit in 4 bytes follow the IFD (kept at even offsets). Returns its bytes."""
    fmt = {3: "H", 4: "I"}
    tags = sorted(tags)
    head = struct.pack("<H", len(tags))
    extra = bytearray()
    extra_at = at + 2 + 12 * len(tags) + 4
    for tag, typ, vals in tags:
        raw = struct.pack("<" + fmt[typ] * len(vals), *vals)
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, typ, len(vals)) + raw.ljust(4, b"\x00")
        else:
            head += struct.pack("<HHII", tag, typ, len(vals), extra_at + len(extra))
            extra += raw
            if len(extra) % 2:
                extra += b"\x00"
    return head + struct.pack("<I", next_ifd) + bytes(extra)


def tiff(width, height, spp=1, bps=8, rows_per_strip=None, pages=1, sample_format=1):
    """A deflate TIFF whose strips (and pages) all point at one small strip of zeros: the file
    stays small whatever the image decodes to. spp samples of bps bits per pixel."""
    rows = rows_per_strip or height
    strip = zlib.compress(b"\x00" * (rows * width * spp * bps // 8), 9)
    nstrips = (height + rows - 1) // rows
    pad = b"\x00" * (len(strip) % 2)  # directories at even offsets
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(strip) + len(pad)) + strip + pad)
    strip_at = 8
    for p in range(pages):
        tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bps] * spp), (259, 3, [8]),
                (262, 3, [2 if spp >= 3 else 1]), (273, 4, [strip_at] * nstrips), (277, 3, [spp]),
                (278, 4, [rows]), (279, 4, [len(strip)] * nstrips), (284, 3, [1]),
                (339, 3, [sample_format] * spp)]
        if spp > 3 or (spp == 2):
            tags.append((338, 3, [0] * (spp - (3 if spp >= 3 else 1))))
        at = len(out)
        size = len(_ifd(tags, at, 0))  # the next pointer does not change the size
        out += _ifd(tags, at, at + size if p + 1 < pages else 0)
    return bytes(out)


def jpeg_strip_tiff(width, height, rows_per_strip=16, scans=99):
    """A JPEG-compressed grey TIFF whose strips all point at one progressive JPEG strip of
    `scans` scans (libtiff allows 100): every strip walks all its blocks that many times."""
    strip = progressive_jpeg(width, rows_per_strip, 1, scans=scans)
    strip += b"\x00" * (len(strip) % 2)
    nstrips = (height + rows_per_strip - 1) // rows_per_strip
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(strip)) + strip)
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [8]), (259, 3, [7]), (262, 3, [1]),
            (273, 4, [8] * nstrips), (277, 3, [1]), (278, 4, [rows_per_strip]),
            (279, 4, [len(strip)] * nstrips), (284, 3, [1])]
    out += _ifd(tags, len(out), 0)
    return bytes(out)


# ------------------------------------------------------------------ GIF

def many_frame_gif(frames, width=1, height=1):
    """A GIF of `frames` 1x1 frames on a width x height screen (a few bytes each)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    frame = (b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 1/100 s
             + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
             + b"\x02\x02\x44\x01\x00")  # LZW: clear, index 0, end
    out += frame * frames + b"\x3b"
    return bytes(out)


# ------------------------------------------------------------------ all of them

def bombs():
    """name -> bytes of each class (what the issue measured, scaled to stay small)."""
    return {
        "scans_direct.jpg": progressive_jpeg(7000, 7000, 1, scans=883),
        "scans_budget.jpg": progressive_jpeg(7000, 7000, 1, scans=400),
        "scans_icc.jpg": progressive_jpeg(7000, 7000, 3, scans=2001, icc=True),
        "scans_cmyk.jpg": progressive_jpeg(7000, 7000, 4, scans=2001, cmyk=True),
        "coefficients_cmyk.jpg": progressive_jpeg(7000, 7000, 4, scans=5, cmyk=True),
        "bands10.jpg": progressive_jpeg(7000, 7000, 10, icc=True),
        "samples256.tif": tiff(200000, 16, spp=256, rows_per_strip=1),
        "bits32.tif": tiff(4000, 4000, spp=3, bps=32, rows_per_strip=64, sample_format=3),
        "jpeg_strips.tif": jpeg_strip_tiff(7000, 7000),
        "pages.tif": tiff(16, 16, pages=20000),
        "frames.gif": many_frame_gif(200000),
    }


if __name__ == "__main__":
    d = Path(sys.argv[1])
    d.mkdir(parents=True, exist_ok=True)
    for name, data in bombs().items():
        (d / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
