-- wrk script: keep-alive POSTs with a 1 KiB body (bench/engines/compare.py).
wrk.method = "POST"
wrk.body = string.rep("a", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
