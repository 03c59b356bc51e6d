"""What the OCR test images say, written down by hand, and the score used by
the tests and by `make bench`: character accuracy = 1 - edit distance / length
of the reference, both with runs of whitespace made one space."""
import re
import subprocess
from pathlib import Path

REFERENCE = {
    # The sign, and the newspaper box at the bottom left.
    "opencv_scenetext01.jpg": "NOTICE\nDOUBLE\nPARKING\nPROHIBITED\nAT ALL TIMES\nThe Washington Post",
    # A road sign with two letters half worn off (WivenHoe, Park).
    "opencv_scenetext02.jpg": "Sports Centre\nWivenhoe Park\nConference Centre\nCar Parks",
    "opencv_scenetext05.jpg": "NO PARKING\nNO PARKING",
    "opencv_imageTextN.png": (
        "technical details are too complex to cover in the book itself.\n"
        "In teaching our courses, we have found it useful for the students to attempt a number of\n"
        "small implementation projects, which often build on one another, in order to get them used to\n"
        "working with real-world images and the challenges that these present. The students are then\n"
        "asked to choose an individual topic for each of their small-group, final projects. (Sometimes\n"
        "these projects even turn into conference papers!) The exercises at the end of each chapter\n"
        "contain numerous suggestions for smaller mid-term projects, as well as more open-ended\n"
        "problems whose solutions are still active research topics. Wherever possible, I encourage\n"
        "students to try their algorithms on their own personal photographs, since this better motivates\n"
        "them, often leads to creative variants on the problems, and better acquaints them with the\n"
        "variety and complexity of real-world imagery.\n"
        "In formulating and solving computer vision problems, I have often found it useful to draw\n"
        "inspiration from three high-level approaches:"),
    "skimage_page.png": (
        "Region-based segmentation\n"
        "Let us first determine markers of the coins and the\n"
        "background. These markers are pixels that we can label\n"
        "unambiguously as either object or background. Here,\n"
        "the markers are found at the two extreme parts of the\n"
        "histogram of grey values:\n"
        ">>> markers = np.zeros_like(coins)"),
}
# Scene text: signs photographed in the street. Documents: printed pages.
SCENE = ["opencv_scenetext01.jpg", "opencv_scenetext02.jpg", "opencv_scenetext05.jpg"]
DOCUMENTS = ["opencv_imageTextN.png", "skimage_page.png"]


def normalise(s):
    return re.sub(r"\s+", " ", s).strip()


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_accuracy(got, ref):
    got, ref = normalise(got), normalise(ref)
    return max(0.0, 1.0 - edit_distance(got, ref) / max(1, len(ref)))


def words_found(got, ref):
    """Share of the reference's words that appear in the text read."""
    have = set(normalise(got).split())
    want = normalise(ref).split()
    return sum(w in have for w in want) / max(1, len(want))


CONVERT = "/usr/bin/convert"  # ImageMagick (scripts/bootstrap --test installs it)
FONTS = Path("/usr/share/fonts/truetype/dejavu")

# Labels drawn with ImageMagick and DejaVu fonts, turned a few degrees, with
# noise: (file name, the lines on it, convert arguments; FONTS is replaced).
LABELS = [
    # A serial plate: two lines, bold mono serial, turned 4 degrees, grainy.
    ("plate.png", ["SERIAL NO.", "X7K4-2291-BQ58"],
     ["-size", "520x160", "xc:#d0d0cc", "-fill", "none", "-stroke", "#303030", "-strokewidth", "4",
      "-draw", "roundrectangle 8,8 511,151 14,14", "-stroke", "none", "-fill", "#111",
      "-font", "FONTS/DejaVuSans-Bold.ttf", "-pointsize", "40", "-gravity", "center", "-annotate", "+0-22", "SERIAL NO.",
      "-font", "FONTS/DejaVuSansMono-Bold.ttf", "-pointsize", "46", "-annotate", "+0+30", "X7K4-2291-BQ58",
      "-background", "#d0d0cc", "-rotate", "4", "-seed", "7", "-attenuate", "0.6", "+noise", "Gaussian"]),
    # A sticker: one line with a colon and a space, turned the other way.
    ("sticker.png", ["S/N: 20240917-A3F9"],
     ["-size", "600x120", "xc:white", "-fill", "#202020", "-font", "FONTS/DejaVuSans.ttf", "-pointsize", "38",
      "-gravity", "center", "-annotate", "0", "S/N: 20240917-A3F9", "-background", "white", "-rotate", "-3",
      "-seed", "3", "-attenuate", "0.5", "+noise", "Gaussian"]),
    # Light on dark, JPEG-compressed.
    ("badge.jpg", ["MODEL TX-4800"],
     ["-size", "480x110", "xc:#1a3a6a", "-fill", "white", "-font", "FONTS/DejaVuSans-Bold.ttf", "-pointsize", "48",
      "-gravity", "center", "-annotate", "0", "MODEL TX-4800", "-background", "#1a3a6a", "-rotate", "2",
      "-seed", "5", "-attenuate", "0.4", "+noise", "Gaussian", "-quality", "85"]),
    # A long thin strip (32 times wider than tall): the detector needs it placed in
    # a taller input, not stretched. Runs of spaces read as one.
    ("strip.png", ["PART 7731-0042-XK LOT 2291 MADE IN EU CHECK DIGIT 7"],
     ["-size", "1800x56", "xc:#f4f0e0", "-fill", "#222", "-font", "FONTS/DejaVuSans.ttf", "-pointsize", "26",
      "-gravity", "west", "-annotate", "+12+0", "PART 7731-0042-XK   LOT 2291   MADE IN EU   CHECK DIGIT 7",
      "-seed", "11", "-attenuate", "0.4", "+noise", "Gaussian"]),
]


def render_label(out, args):
    """Writes the label image to out (a Path) and returns its bytes."""
    subprocess.run([CONVERT, *[a.replace("FONTS", str(FONTS)) for a in args], str(out)], check=True, timeout=60)
    return out.read_bytes()
