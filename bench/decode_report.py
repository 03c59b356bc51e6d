"""Table of scripts/bench-decode's timings: median wall and CPU ms per image and side, and
AFTER/BEFORE ratios of both."""
import os
import statistics
import sys
from collections import defaultdict

wall, cpu, size = defaultdict(list), defaultdict(list), {}
for line in open(sys.argv[1]):
    side, path, w, c, dims = line.split()
    k = (side, os.path.basename(path))
    wall[k].append(float(w))
    cpu[k].append(float(c))
    size[k] = dims
names = list(dict.fromkeys(k[1] for k in wall))
med = lambda d, k: statistics.median(d[k]) if k in d else None
fmt = lambda v: f"{v:.2f}" if v is not None else "-"
ratio = lambda a, b: f"{a / b:.3f}" if a is not None and b else "-"
print(f"{'image':<13}{'wall before':>12}{'after':>9}{'ratio':>7}{'cpu before':>12}{'after':>9}{'ratio':>7}"
      f"  decoded at (before / after)   n")
for n in names:
    b, a = ("before", n), ("after", n)
    print(f"{n:<13}{fmt(med(wall, b)):>12}{fmt(med(wall, a)):>9}{ratio(med(wall, a), med(wall, b)):>7}"
          f"{fmt(med(cpu, b)):>12}{fmt(med(cpu, a)):>9}{ratio(med(cpu, a), med(cpu, b)):>7}"
          f"  {size.get(b, '-')} / {size[a]}   {len(wall[a])}")
