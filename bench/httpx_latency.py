"""Median latency of small v1 uploads from Python httpx, the spec's Python client
(it writes the head and the body separately and does not set TCP_NODELAY).
Usage: httpx_latency.py URL KEY IMAGE N -> one JSON line {"p50_ms": ..., "requests": N}."""
import json
import statistics
import sys
import time

import httpx

url, key, image, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(image, "rb").read()
meta = json.dumps({"is_yolo": False, "is_llm": False})
lat = []
with httpx.Client(timeout=30) as c:
    for i in range(n + 2):
        t = time.perf_counter()
        r = c.post(url, headers={"X-API-Key": key}, files=[("files", ("a.jpg", data))], data={"metadata": [meta]})
        r.raise_for_status()
        if i >= 2:  # the first two warm the connection and the server
            lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"p50_ms": statistics.median(lat), "requests": n}))
