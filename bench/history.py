#!/usr/bin/env python3
"""The GPU and machine history (issue 19): what a full 24 h costs gpubox in memory, how fast the
charts' API answers, and what sampling costs while nothing happens.

    bench/history.py [--runs N]

For 1 and 8 GPUs, a saved history of 24 h at 5 s (17,280 samples, every series filled) is
written to the state folder and gpubox (release build) is started on it; then:

1. resident memory after start with that history against the same gpubox with none (the ring's
   real cost, to compare with the size docs/alerts.md states: 0.7 MiB / 2.5 MiB);
2. GET /api/metrics for 15 min, 1 h, 6 h and 24 h: time (curl's time_total, median of N) and
   size of the answer;
3. gpubox's own CPU time over 60 s of sampling every 5 s with nothing else to do (GPUs through a
   stand-in nvidia-smi, which is what a machine without NVML pays: a process per sample).

No peer here keeps such a history (Vast's portal polls gauges; nvtop and nvidia-smi keep none;
Prometheus and node_exporter know no GPU without NVIDIA's exporter, which needs a driver), so the
figures stand alone. Prints Markdown tables.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from common import rss_kib
from files import AUTH, GPUBOX, PASSWORD, ROOT, USER, cpu_seconds, free_port, newest_source, wait_http

DAY = 24 * 3600
INTERVAL = 5


def build():
    if not os.path.exists(GPUBOX) or os.path.getmtime(GPUBOX) < newest_source():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def history(gpus, now):
    n = DAY // INTERVAL
    t = [now - DAY + i * INTERVAL for i in range(n)]
    series = {
        "cpu": [round(20 + 10 * ((i * 7) % 13) / 13, 2) for i in range(n)],
        "mem": [4e9 + (i % 100) * 1e6 for i in range(n)],
        "disk": [3e10 + i * 1000 for i in range(n)],
        "net_rx": [float(i % 5000) for i in range(n)],
        "net_tx": [float(i % 3000) for i in range(n)],
    }
    for g in range(gpus):
        series[f"gpu{g}_util"] = [float((i + g) % 100) for i in range(n)]
        series[f"gpu{g}_mem"] = [1e10 + (i % 50) * 1e8 for i in range(n)]
        series[f"gpu{g}_temp"] = [40.0 + (i % 30) for i in range(n)]
        series[f"gpu{g}_power"] = [100.0 + (i % 200) for i in range(n)]
    return {"version": 1, "columns": {"step": 0, "t": t, "series": series}}


def start(tmp, gpus, saved):
    state = os.path.join(tmp, "state")
    os.makedirs(state, exist_ok=True)
    if saved:
        with open(os.path.join(state, "metrics.json"), "w") as f:
            json.dump(history(gpus, int(time.time())), f)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    smi = os.path.join(bindir, "nvidia-smi")
    with open(smi, "w") as f:
        f.write("#!/bin/sh\n")
        for g in range(gpus):
            f.write(f"echo '{g}, NVIDIA H100 80GB HBM3, 37, 1234, 81559, 45, 70.12'\n")
    os.chmod(smi, 0o755)
    port = free_port()
    conf = os.path.join(tmp, "gpubox.toml")
    with open(conf, "w") as f:
        f.write(f'workspace = "{tmp}/ws"\nstate_dir = "{state}"\n[auth]\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
                f'[logs]\nstdout = false\n[services.logs]\napp = "logs"\nport = {port}\n')
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin"}
    p = subprocess.Popen([GPUBOX, "--control", os.path.join(tmp, "c.sock"), "run", "--config", conf],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, [p])
    time.sleep(2)
    return p, port


def curl(port, path):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", *AUTH,
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def stop(p):
    p.terminate()
    p.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build()
    print("| GPUs | RSS, no history | RSS, 24 h loaded | difference | stated ring size |")
    print("| --- | --- | --- | --- | --- |")
    answers = {}
    for gpus in (1, 8):
        rss = {}
        for saved in (False, True):
            runs = []
            for _ in range(args.runs):
                tmp = tempfile.mkdtemp(prefix="gpubox-history-")
                p, port = start(tmp, gpus, saved)
                runs.append(rss_kib(p.pid))
                if saved and gpus not in answers:
                    answers[gpus] = {}
                    for r in ("15m", "1h", "6h", "24h"):
                        times = []
                        for _ in range(args.runs * 4):
                            s, size = curl(port, f"/api/metrics?range={r}")
                            times.append(s)
                        answers[gpus][r] = (statistics.median(times) * 1000, size)
                stop(p)
                shutil.rmtree(tmp)
            rss[saved] = statistics.median(runs)
        series = 5 + 4 * gpus
        stated = DAY // INTERVAL * 4 * (1 + series) / 1048576
        print(f"| {gpus} | {rss[False] / 1024:.1f} MiB | {rss[True] / 1024:.1f} MiB | "
              f"{(rss[True] - rss[False]) / 1024:.1f} MiB | {stated:.1f} MiB |")
    print()
    print("| GET /api/metrics | 1 GPU: time | size | 8 GPUs: time | size |")
    print("| --- | --- | --- | --- | --- |")
    for r in ("15m", "1h", "6h", "24h"):
        a, b = answers[1][r], answers[8][r]
        print(f"| range={r} | {a[0]:.2f} ms | {a[1] / 1024:.0f} KiB | {b[0]:.2f} ms | {b[1] / 1024:.0f} KiB |")
    print()
    tmp = tempfile.mkdtemp(prefix="gpubox-history-")
    p, _ = start(tmp, 1, False)
    before = cpu_seconds(p.pid)
    time.sleep(60)
    used = cpu_seconds(p.pid) - before
    stop(p)
    shutil.rmtree(tmp)
    print(f"Sampling every 5 s for 60 s with nothing else to do (1 GPU through a stand-in nvidia-smi): "
          f"gpubox and its children used {used:.2f} s of CPU ({used / 60 * 100:.2f} % of a core).")


if __name__ == "__main__":
    main()
