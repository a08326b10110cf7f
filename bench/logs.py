#!/usr/bin/env python3
"""The logs app's search over 1,000,000 lines, against GNU grep over the same lines on disk.

    bench/logs.py [--runs N] [--lines N]   (bench/run runs every benchmark)

gpubox runs one service that prints N lines (training-log-like, one in a thousand an ERROR) into
a ring buffer large enough to hold them all; then each query is asked N times over one kept-alive
connection with Basic auth, and timed at the client (the whole answer: search, JSON, transfer).
grep runs over the service's log file, which holds the same lines (page cache warm; grep prints
only a count, so it does less work than the API, which returns the matching lines; its output
goes to a pipe, since GNU grep stops at the first match when its output is /dev/null).

Goal (issue 6): a search over 1,000,000 lines answers in under 100 ms. Prints a Markdown table;
paste it into docs/benchmarks.md with the date and the machine.
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from common import rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")

FLOOD = r"""
import sys
w = sys.stdout.write
for i in range(1, N + 1):
    if i % 1000 == 0:
        w(f"{i:07d} ERROR worker-{i % 16}: CUDA error: out of memory while allocating {i % 977} MiB\n")
    else:
        w(f"{i:07d} INFO worker-{i % 16} step {i} loss={(i % 9973) / 9973:.5f} lr=0.0003 it/s={i % 50 + 1}.2\n")
sys.stdout.flush()
"""

QUERIES = [
    ("text, 1,000 matches (`ERROR`)", {"q": "error"}, "ERROR", []),
    ("regex, ~100 matches (`loss=0\\.1234\\d`)", {"q": r"loss=0\.1234\d", "regex": "1", "case": "1"}, r"loss=0\.1234[0-9]", ["-E"]),
    ("text, no match: every line scanned", {"q": "no-such-text"}, "no-such-text", []),
    ("case-sensitive text, 1,000 matches (`CUDA`)", {"q": "CUDA", "case": "1"}, "CUDA", []),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="gpubox-bench-logs-")
    port = free_port()
    script = os.path.join(work, "flood.py")
    with open(script, "w") as f:
        f.write(FLOOD.replace("N + 1", f"{args.lines} + 1"))
    config = os.path.join(work, "gpubox.toml")
    with open(config, "w") as f:
        f.write(f"""workspace = "{work}/ws"
[auth]
username = "bench"
password = "bench"
[logs]
ring_size = "1GiB"
max_file_size = "2GiB"
stdout = false
[services.logs]
app = "logs"
port = {port}
[services.flood]
command = ["python3", "{script}"]
# One write per line, as Forge runs (the ring's worst case: a million one-line reads).
env = {{ PYTHONUNBUFFERED = "1" }}
oneshot = true
""")
    g = subprocess.Popen([GPUBOX, "--control", f"{work}/c.sock", "run", "--config", config],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    auth = "Basic " + base64.b64encode(b"bench:bench").decode()
    conn = None
    try:
        deadline = time.time() + 300
        while True:
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/api/lines?service=flood&limit=1", headers={"Authorization": auth})
                r = conn.getresponse()
                body = json.loads(r.read())
                if body["lines"] and body["lines"][-1][4].startswith(f"{args.lines:07d} "):
                    break
            except (OSError, http.client.HTTPException, ValueError):
                conn = None
            if time.time() > deadline:
                sys.exit("the flood did not finish in time")
            time.sleep(0.2)
        log_file = os.path.join(work, "ws", "logs", "flood.log")
        rss = rss_kib(g.pid) / 1024

        rows = []
        for name, params, pattern, flags in QUERIES:
            q = dict(params, service="flood", limit="1000")
            path = "/api/lines?" + urllib.parse.urlencode(q)
            times, took, scanned, count = [], [], 0, 0
            for _ in range(args.runs):
                t = time.perf_counter()
                conn.request("GET", path, headers={"Authorization": auth})
                r = conn.getresponse()
                body = json.loads(r.read())
                times.append((time.perf_counter() - t) * 1000)
                took.append(body["took_ms"])
                scanned, count = body["scanned"], len(body["lines"])
            grep_times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                subprocess.run(["grep", "-c", *([] if "case" in params else ["-i"]), *flags,
                                pattern, log_file], stdout=subprocess.PIPE, check=False)
                grep_times.append((time.perf_counter() - t) * 1000)
            rows.append((name, count, scanned, statistics.median(times), percentile(times, 95),
                         statistics.median(took), statistics.median(grep_times)))

        print(f"\n{args.lines:,} lines in the ring; gpubox's resident memory with them: {rss:.0f} MiB; "
              f"{args.runs} runs per query (medians)\n")
        print("| query | lines returned | lines scanned | gpubox answer (median) | p95 | search alone | grep -c over the file | gpubox ÷ grep |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, count, scanned, med, p95, took, grep in rows:
            print(f"| {name} | {count:,} | {scanned:,} | {med:.1f} ms | {p95:.1f} ms | {took:.1f} ms | {grep:.1f} ms | {med / grep:.2f}× |")
    finally:
        g.terminate()
        try:
            g.wait(timeout=15)
        except subprocess.TimeoutExpired:
            g.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
