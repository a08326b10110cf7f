#!/usr/bin/env python3
"""gpubox's benchmarks against supervisord, measured in the same run (A B A B, medians).

    bench/supervisor.py [--runs N] [--lines N]   (bench/run runs every benchmark)

1. Cold start: exec until three services (ready at once) are all running.
2. Idle resident memory of the supervisor with three services.
3. Log throughput: lines per second from one chatty child into the log file (+ gpubox's ring
   buffer and stdout mirror, drained by this script as `docker logs` would).

Installs supervisor (apt) if missing and builds gpubox in release mode. Prints a Markdown table;
paste it into docs/benchmarks.md with the date and the machine.
"""
import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import hwm_kib, rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")


def setup():
    if not shutil.which("supervisord"):
        print("installing supervisor…", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "supervisor"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def drain(pipe):
    """Reads a pipe to its end in big chunks, as `docker logs` collection does."""
    fd = pipe.fileno()

    def run():
        while os.read(fd, 1 << 20):
            pass

    threading.Thread(target=run, daemon=True).start()


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# --- gpubox -------------------------------------------------------------------------------------

def gpubox_config(d, services):
    lines = [f'workspace = "{d}/ws"']
    for name, cmd, extra in services:
        args = ", ".join(f'"{a}"' for a in cmd)
        lines.append(f"[services.{name}]\ncommand = [{args}]\n{extra}")
    path = os.path.join(d, "gpubox.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def gpubox_start(d, services):
    cfg = gpubox_config(d, services)
    t0 = time.perf_counter()
    p = subprocess.Popen([GPUBOX, "--control", f"{d}/c.sock", "run", "--config", cfg],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return p, t0


def gpubox_cold(d):
    services = [(f"s{i}", ["sleep", "1000"], "") for i in range(3)]
    p, t0 = gpubox_start(d, services)
    for raw in iter(p.stdout.readline, b""):
        if b"all 3 services ready" in raw:
            took = time.perf_counter() - t0
            break
    drain(p.stdout)
    time.sleep(2)
    mem = rss_kib(p.pid)
    stop(p)
    return took, mem


def gpubox_throughput(d, n, width):
    services = [("flood", flood_command(d, n, width), "oneshot = true")]
    log = os.path.join(d, "ws", "logs", "flood.log")
    p, t0 = gpubox_start(d, services)
    drain(p.stdout)
    took = wait_tail(log, f" {last_line(n, width)}\n".encode(), d)
    peak = hwm_kib(p.pid)
    stop(p)
    return n / took, peak


# --- supervisord --------------------------------------------------------------------------------

def supervisord_config(d, programs):
    text = f"""[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}
[unix_http_server]
file={d}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""
    for name, cmd, extra in programs:
        # supervisord splits command= like a shell and treats % as interpolation.
        command = shlex.join(cmd).replace("%", "%%")
        text += f"[program:{name}]\ncommand={command}\nstartsecs=0\nautorestart=false\n{extra}\n"
    path = os.path.join(d, "supervisord.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def supervisord_start(d, programs):
    cfg = supervisord_config(d, programs)
    t0 = time.perf_counter()
    p = subprocess.Popen(["supervisord", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p, t0


def supervisord_cold(d):
    programs = [(f"s{i}", ["sleep", "1000"], "") for i in range(3)]
    p, t0 = supervisord_start(d, programs)
    running = 0
    for raw in iter(p.stdout.readline, b""):
        if b"entered RUNNING state" in raw:
            running += 1
            if running == 3:
                took = time.perf_counter() - t0
                break
    drain(p.stdout)
    time.sleep(2)
    mem = rss_kib(p.pid)
    stop(p)
    return took, mem


def supervisord_throughput(d, n, width):
    log = os.path.join(d, "flood.log")
    programs = [("flood", flood_command(d, n, width), f"stdout_logfile={log}\nstdout_logfile_maxbytes=0")]
    p, t0 = supervisord_start(d, programs)
    drain(p.stdout)
    took = wait_tail(log, f"\n{last_line(n, width)}\n".encode(), d)
    peak = hwm_kib(p.pid)
    stop(p)
    return n / took, peak


# --- shared -------------------------------------------------------------------------------------


def flood_command(d, n, width):
    """The chatty child: notes when it starts (wall clock), then prints n lines at full speed:
    `seq` (short lines), or `yes` with `width`-character lines and a numbered last line."""
    start = f"date +%s.%N > {d}/started"
    if not width:
        return ["sh", "-c", f"{start}; exec seq 1 {n}"]
    return ["sh", "-c", f"{start}; yes {'x' * width} | head -n {n - 1}; echo {last_line(n, width)}"]


def last_line(n, width):
    return f"{n:0{width}d}" if width else str(n)


def wait_tail(path, tail, d, timeout=300):
    """Seconds from the child's start until the file ends with `tail` (checked every 2 ms).

    Timed from the child's own start, not from the supervisor's, so that start-up time (a
    separate row) counts against neither side."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - len(tail)))
                if f.read() == tail:
                    end = time.time()
                    with open(f"{d}/started") as s:
                        return end - float(s.read())
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{path} never ended with {tail!r}")


def fresh():
    return tempfile.mkdtemp(prefix="gpubox-bench-")


def summary(xs, fmt):
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--lines", type=int, default=3_000_000)
    a = ap.parse_args()
    setup()

    g_cold, s_cold, g_mem, s_mem = [], [], [], []
    tp = {w: {"g": [], "s": [], "gp": [], "sp": []} for w in (0, 100)}
    for i in range(a.runs):
        # A B A B: each run measures both, alternating which goes first.
        flip = (lambda xs: xs) if i % 2 == 0 else (lambda xs: list(reversed(xs)))
        for who, fn in flip([("g", gpubox_cold), ("s", supervisord_cold)]):
            took, mem = fn(fresh())
            (g_cold if who == "g" else s_cold).append(took)
            (g_mem if who == "g" else s_mem).append(mem)
        for width in tp:
            for who, fn in flip([("g", gpubox_throughput), ("s", supervisord_throughput)]):
                rate, peak = fn(fresh(), a.lines, width)
                tp[width][who].append(rate)
                tp[width][who + "p"].append(peak)
        print(f"run {i + 1}/{a.runs} done", file=sys.stderr)

    ms = lambda s: f"{s * 1000:.1f} ms"
    mib = lambda k: f"{k / 1024:.1f} MiB"
    mls = lambda r: f"{r / 1e6:.2f} M lines/s"
    ratio = lambda g, s: statistics.median(g) / statistics.median(s)
    print(f"\n{a.runs} runs each, A B A B; median (min–max). gpubox {GPUBOX}\n")
    print("| measure | gpubox | supervisord | gpubox vs supervisord | goal |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| cold start, 3 services ready | {summary(g_cold, ms)} | {summary(s_cold, ms)} | "
          f"{ratio(s_cold, g_cold):.1f}× faster | < 50 ms |")
    print(f"| idle resident memory, 3 services | {summary(g_mem, mib)} | {summary(s_mem, mib)} | "
          f"{ratio(s_mem, g_mem):.1f}× less | < 10 MiB |")
    for width, r in tp.items():
        what = "short lines (`seq`, 7 bytes)" if width == 0 else f"{width}-byte lines"
        print(f"| log throughput, {a.lines:,} {what} | {summary(r['g'], mls)} | {summary(r['s'], mls)} | "
              f"{ratio(r['g'], r['s']):.2f}× | ≥ 1.0× |")
        print(f"| peak resident memory during that flood | {summary(r['gp'], mib)} | {summary(r['sp'], mib)} | "
              f"{ratio(r['sp'], r['gp']):.1f}× less | bounded |")


if __name__ == "__main__":
    main()
