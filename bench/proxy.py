#!/usr/bin/env python3
"""gpubox's reverse proxy against nginx (upstream keepalive) and Caddy, in the same run.

    bench/proxy.py [--runs N] [--seconds S]

One backend (nginx, one worker, `return 200`, and a 2 GiB file with sendfile) stands behind
three proxies: gpubox (login on: every request carries a session cookie), nginx (proxy_pass
with an upstream keepalive pool) and Caddy (reverse_proxy). wrk drives each with 64
connections; the order rotates every round. Then a 2 GiB download: direct, through nginx and through
gpubox, with the CPU time the hypervisor took during each (steal, from /proc/stat).
Installs nginx-light, caddy and wrk (apt) when missing. Prints a Markdown table.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from common import cpu_times, rss_kib, steal_percent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")
PASSWORD = "bench-password-1"


def setup():
    missing = [p for p, exe in (("nginx-light", "nginx"), ("caddy", "caddy"), ("wrk", "wrk")) if not shutil.which(exe)]
    if missing:
        print(f"installing {' '.join(missing)}…", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx(d, name, body, workers):
    conf = os.path.join(d, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes {workers}; pid {d}/{name}.pid; error_log {d}/{name}.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {d}/{name}-body; proxy_temp_path {d}/{name}-proxy;
  fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s; {body} }}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.DEVNULL)


def wrk(url, seconds, headers=()):
    args = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url]
    for h in headers:
        args[1:1] = ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} bad responses:\n{out}")
    return rps, float(p99.group(1)) * scale


def curl_speed(url, headers=()):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}", url]
    for h in headers:
        args += ["-H", h]
    code, size, speed = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    if code != "200" or int(size) != 2 << 30:
        raise RuntimeError(f"{url}: HTTP {code}, {size} bytes")
    return float(speed)


def login(port):
    data = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "next": "/"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/.gpubox/login", data=data)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(req)
    except urllib.error.HTTPError as e:
        cookie = e.headers.get("Set-Cookie", "")
        return cookie.split(";")[0]
    raise RuntimeError("login did not redirect")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    a = ap.parse_args()
    setup()
    d = tempfile.mkdtemp(prefix="gpubox-proxy-bench-")
    os.chmod(d, 0o755)  # nginx's workers run as another user
    big = os.path.join(d, "big.bin")
    # Real blocks (not a sparse file), so both paths read the page cache alike.
    subprocess.run(["dd", "if=/dev/zero", f"of={big}", "bs=16M", "count=128", "status=none"], check=True)
    backend, p_nginx, p_caddy, p_gpubox = free_port(), free_port(), free_port(), free_port()
    procs = [
        nginx(d, "backend", f"""server {{ listen 127.0.0.1:{backend}; keepalive_requests 100000;
  location = /big.bin {{ root {d}; sendfile on; }}
  location / {{ return 200 "hello from the backend\\n"; }} }}""", 1),
        nginx(d, "proxy", f"""upstream b {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{ listen 127.0.0.1:{p_nginx}; keepalive_requests 100000;
  location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }} }}""", 2),
    ]
    caddyfile = os.path.join(d, "Caddyfile")
    with open(caddyfile, "w") as f:
        f.write(f"{{\n admin off\n auto_https off\n}}\n:{p_caddy} {{\n bind 127.0.0.1\n reverse_proxy 127.0.0.1:{backend}\n}}\n")
    procs.append(subprocess.Popen(["caddy", "run", "--config", caddyfile, "--adapter", "caddyfile"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    with open(os.path.join(d, "gpubox.toml"), "w") as f:
        f.write(f"""workspace = "{d}/ws"
[logs]
stdout = false
[auth]
username = "bench"
password = "{PASSWORD}"
[services.backend]
command = ["sleep", "infinity"]
ready = "tcp://127.0.0.1:{backend}"
port = {p_gpubox}
bind = "127.0.0.1"
upstream = "http://127.0.0.1:{backend}"
""")
    g = subprocess.Popen([GPUBOX, "--control", f"{d}/c.sock", "run", "--config", f"{d}/gpubox.toml"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(g)
    try:
        for p in (backend, p_nginx, p_caddy, p_gpubox):
            wait_port(p)
        time.sleep(1)
        cookie = login(p_gpubox)
        targets = {
            "gpubox": (f"http://127.0.0.1:{p_gpubox}/", [f"Cookie: {cookie}"]),
            "nginx": (f"http://127.0.0.1:{p_nginx}/", []),
            "caddy": (f"http://127.0.0.1:{p_caddy}/", []),
        }
        rps = {k: [] for k in targets}
        p99 = {k: [] for k in targets}
        peak = 0
        for i in range(a.runs):
            order = list(targets)[i % 3:] + list(targets)[:i % 3]
            for name in order:
                url, headers = targets[name]
                r, l = wrk(url, a.seconds, headers)
                rps[name].append(r)
                p99[name].append(l)
                if name == "gpubox":
                    peak = max(peak, rss_kib(g.pid))
            print(f"round {i + 1}/{a.runs} done", file=sys.stderr)
        speeds = {"direct": [], "nginx": [], "gpubox": []}
        steal = []
        # A first read of the file, so that no round pays for the page cache.
        curl_speed(f"http://127.0.0.1:{backend}/big.bin")
        for i in range(a.runs):
            trio = [("direct", f"http://127.0.0.1:{backend}/big.bin", []),
                    ("nginx", f"http://127.0.0.1:{p_nginx}/big.bin", []),
                    ("gpubox", f"http://127.0.0.1:{p_gpubox}/big.bin", [f"Cookie: {cookie}"])]
            for name, url, headers in trio[i % 3:] + trio[:i % 3]:
                before = cpu_times()
                speeds[name].append(curl_speed(url, headers))
                steal.append((i, name, steal_percent(before, cpu_times())))
        direct, proxied = speeds["direct"], speeds["gpubox"]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    med = statistics.median
    span = lambda xs, f: f"{f(med(xs))} ({f(min(xs))}–{f(max(xs))})"
    k = lambda v: f"{v / 1000:.1f}k"
    ms = lambda v: f"{v:.2f} ms"
    gbs = lambda v: f"{v / 1e9:.2f} GB/s"
    print(f"\n{a.runs} rounds of {a.seconds} s, wrk -t2 -c64, rotating order; median (min–max)\n")
    print("| measure | gpubox | nginx (keepalive) | Caddy | gpubox vs nginx | goal |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| requests/s, small responses, session cookie on gpubox | {span(rps['gpubox'], k)} | {span(rps['nginx'], k)} | "
          f"{span(rps['caddy'], k)} | {med(rps['gpubox']) / med(rps['nginx']):.2f}× | ≥ 1.0× |")
    print(f"| p99 latency | {span(p99['gpubox'], ms)} | {span(p99['nginx'], ms)} | {span(p99['caddy'], ms)} | "
          f"{med(p99['gpubox']) / med(p99['nginx']):.2f}× | ≤ nginx |")
    print(f"| gpubox resident memory under that load | {peak / 1024:.1f} MiB | | | | |")
    nx = speeds["nginx"]
    print(f"\n| 2 GiB download (curl) | direct from nginx | through nginx (proxy) | through gpubox | gpubox vs direct | gpubox vs nginx proxy | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| speed | {span(direct, gbs)} | {span(nx, gbs)} | {span(proxied, gbs)} | {med(proxied) / med(direct):.2f}× | "
          f"{med(proxied) / med(nx):.2f}× | ≥ 0.95× direct |")
    # Each round (measured back to back, the order rotating), and the CPU time the hypervisor
    # took meanwhile: a slow run with high steal is the host's doing, not gpubox's.
    print("\n| round | direct | nginx proxy | gpubox | gpubox vs direct | CPU steal (direct / nginx / gpubox) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for i in range(a.runs):
        st = {n: v for r, n, v in steal if r == i}
        print(f"| {i + 1} | {gbs(direct[i])} | {gbs(nx[i])} | {gbs(proxied[i])} | {proxied[i] / direct[i]:.2f}× | "
              f"{st['direct']:.1f} / {st['nginx']:.1f} / {st['gpubox']:.1f} % |")


if __name__ == "__main__":
    main()
