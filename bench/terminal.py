#!/usr/bin/env python3
"""The terminal app against ttyd, in the same run (alternating rounds, medians).

    bench/terminal.py [--runs N] [--keys N] [--megabytes N]

1. Keystroke-to-echo round trip: a key goes over the WebSocket, through the PTY (whose line
   discipline echoes it; the program is `cat`), and back. Median and p99 over --keys keystrokes.
2. Output throughput: `head -c N | tr` in bash, read by a client as fast as it can; and the
   server's peak resident memory during it.

Both behind a login: gpubox with HTTP Basic, ttyd with `-c user:pass` (its WebSocket token).
ttyd is not in Debian 12; it is built here from Debian's source package (unstable's
ttyd_1.7.7.orig.tar.xz, fetched with `apt-get source --download-only` from deb-src) against
Debian 12's libwebsockets, libuv and json-c, into .cache/ttyd. Prints a Markdown table; paste it
into docs/benchmarks.md with the date and the machine.
"""
import argparse
import base64
import glob
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

from common import hwm_kib
from wsclient import WebSocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")
TTYD = os.path.join(ROOT, ".cache", "ttyd", "ttyd")
USER, PASSWORD = "bench", "bench"


def sh(cmd, **kw):
    subprocess.run(cmd, shell=True, check=True, **kw)


def build_ttyd():
    if os.path.exists(TTYD):
        return
    print("building ttyd from Debian's source package…", file=sys.stderr)
    work = tempfile.mkdtemp(prefix="ttyd-src-")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sh("apt-get install -y -qq cmake build-essential libwebsockets-dev libjson-c-dev libuv1-dev zlib1g-dev", env=env)
    lists = os.path.join(work, "lists")
    os.makedirs(os.path.join(lists, "partial"))
    with open(os.path.join(work, "src.list"), "w") as f:
        f.write("deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main\n")
    apt = (f"-o Dir::Etc::sourcelist={work}/src.list -o Dir::Etc::sourceparts=/dev/null "
           f"-o Dir::State::Lists={lists} -o Dir::Cache={work}/cache")
    os.makedirs(f"{work}/cache/archives/partial")
    sh(f"apt-get {apt} update -qq", env=env)
    # The .dsc may be missing from the mirror; the upstream tarball is all the build needs.
    subprocess.run(f"apt-get {apt} source --download-only ttyd", shell=True, cwd=work, env=env)
    tarball = glob.glob(f"{work}/ttyd_*.orig.tar.*")
    if not tarball:
        sys.exit("could not fetch ttyd's source from Debian")
    sh(f"tar xf {tarball[0]}", cwd=work)
    src = glob.glob(f"{work}/ttyd-*/")[0]
    sh("cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && make -C build -j2 >/dev/null", cwd=src)
    os.makedirs(os.path.dirname(TTYD), exist_ok=True)
    shutil.copy(os.path.join(src, "build", "ttyd"), TTYD)
    shutil.rmtree(work, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


class GpuboxTab:
    name = "gpubox"

    def __init__(self, port):
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/api/sessions", body='{"cols": 120, "rows": 40}',
                  headers={"Authorization": auth, "Origin": f"http://127.0.0.1:{port}",
                           "Content-Type": "application/json"})
        r = c.getresponse()
        self.id = json.loads(r.read())["id"]
        c.close()
        self.ws = WebSocket("127.0.0.1", port, f"/api/sessions/{self.id}/ws", headers=[("Authorization", auth)])
        self.ws.recv()  # hello
        self.ws.recv()  # snapshot

    def send(self, keys):
        self.ws.send(keys)

    def output(self):
        while True:
            op, data = self.ws.recv()
            if op == 0x2:
                return data


class TtydTab:
    name = "ttyd"

    def __init__(self, port):
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.ws = WebSocket("127.0.0.1", port, "/ws", headers=[("Authorization", f"Basic {token}")], subprotocol="tty")
        self.ws.send(json.dumps({"AuthToken": token, "columns": 120, "rows": 40}), text=False)

    def send(self, keys):
        self.ws.send(b"0" + keys)

    def output(self):
        while True:
            _, data = self.ws.recv()
            if data[:1] == b"0":
                return data[1:]


def read_until(tab, needle, limit=None):
    seen = b""
    total = 0
    while needle not in seen:
        chunk = tab.output()
        total += len(chunk)
        seen = (seen + chunk)[-4096:]
    return total


def latency(tab, keys):
    times = []
    tab.send(b"\n")
    time.sleep(0.3)
    for i in range(keys):
        t = time.perf_counter()
        tab.send(b"k")
        read_until(tab, b"k")
        times.append((time.perf_counter() - t) * 1000)
        if i % 60 == 59:
            tab.send(b"\n")  # cat prints the line; the echo and the line come back
            read_until(tab, b"k" * 60 + b"\r\n")
    return times


def throughput(tab, megabytes, pid):
    before = hwm_kib(pid)
    t = time.perf_counter()
    tab.send(f"head -c {megabytes * 1000000} /dev/zero | tr '\\0' x; echo; echo END-$((40+2))\r".encode())
    total = read_until(tab, b"END-42")
    secs = time.perf_counter() - t
    return total / secs / 1e6, (hwm_kib(pid) - before) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--megabytes", type=int, default=200)
    args = ap.parse_args()
    build_ttyd()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="gpubox-bench-term-")
    g_cat, g_bash, t_cat, t_bash = (free_port() for _ in range(4))
    with open(f"{work}/gpubox.toml", "w") as f:
        f.write(f"""workspace = "{work}/ws"
[auth]
username = "{USER}"
password = "{PASSWORD}"
[logs]
stdout = false
[services.cat]
app = "terminal"
port = {g_cat}
shell = "/bin/cat"
[services.bash]
app = "terminal"
port = {g_bash}
shell = "/bin/bash"
""")
    procs = [subprocess.Popen([GPUBOX, "--control", f"{work}/c.sock", "run", "--config", f"{work}/gpubox.toml"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    cred = f"{USER}:{PASSWORD}"
    procs.append(subprocess.Popen([TTYD, "-p", str(t_cat), "-W", "-c", cred, "cat"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen([TTYD, "-p", str(t_bash), "-W", "-c", cred, "bash", "--norc"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for p in (g_cat, g_bash, t_cat, t_bash):
            wait_port(p)
        lat = {"gpubox": [], "ttyd": []}
        speed = {"gpubox": [], "ttyd": []}
        mem = {"gpubox": [], "ttyd": []}
        pids = {"gpubox": procs[0].pid, "ttyd": procs[2].pid}
        for r in range(args.runs):
            order = [("gpubox", g_cat, g_bash, GpuboxTab), ("ttyd", t_cat, t_bash, TtydTab)]
            if r % 2:
                order.reverse()
            for name, cat_port, bash_port, kind in order:
                tab = kind(cat_port)
                lat[name] += latency(tab, args.keys)
                tab.ws.close()
                tab = kind(bash_port)
                time.sleep(0.3)
                mbps, grown = throughput(tab, args.megabytes, pids[name])
                speed[name].append(mbps)
                mem[name].append(grown)
                tab.ws.close()

        def pct(v, p):
            v = sorted(v)
            return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

        print(f"\n{args.runs} rounds; {args.keys} keystrokes per round; {args.megabytes} MB of output per round\n")
        print("| measure | gpubox | ttyd 1.7.7 | gpubox vs ttyd | goal |")
        print("| --- | --- | --- | --- | --- |")
        g, t = statistics.median(lat["gpubox"]), statistics.median(lat["ttyd"])
        print(f"| keystroke to echo, median | {g:.3f} ms | {t:.3f} ms | {g / t:.2f}× | < 2 ms |")
        g99, t99 = pct(lat["gpubox"], 99), pct(lat["ttyd"], 99)
        print(f"| keystroke to echo, p99 | {g99:.3f} ms | {t99:.3f} ms | {g99 / t99:.2f}× | < 2 ms |")
        gs, ts = statistics.median(speed["gpubox"]), statistics.median(speed["ttyd"])
        span = lambda v: f"{statistics.median(v):.0f} MB/s ({min(v):.0f}–{max(v):.0f})"
        print(f"| output throughput, median (min–max) | {span(speed['gpubox'])} | {span(speed['ttyd'])} | {gs / ts:.2f}× | ≥ 1.0× |")
        print(f"| server's peak memory growth during it | {max(mem['gpubox']):.1f} MiB | {max(mem['ttyd']):.1f} MiB | | bounded |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
