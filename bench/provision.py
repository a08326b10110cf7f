#!/usr/bin/env python3
"""gpubox's downloader against four curl processes in parallel, in the same run (alternating).

    bench/provision.py [--runs N] [--gib N]

nginx (sendfile, from a tmpfs) serves four files of --gib GiB each on loopback. One side runs four
`curl -o` at once; the other runs `gpubox provision` with a manifest of the same four URLs
(parallel = 4, with the .part files, the free-space check and the final rename). Both write to the
same disk, into fresh folders; the page cache is dropped between runs. Also gpubox's peak
resident memory during its run.

Goal (issue 7): total throughput ≥ 0.9× the four curls; memory flat. Installs nginx-light (apt)
when missing. Prints a Markdown table.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def drop_caches():
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass


def peak_rss_of(proc, out):
    """Samples the process's resident memory until it exits; the peak goes to out[0] (KiB)."""
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.05)
    out[0] = peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gib", type=float, default=1.0)
    args = ap.parse_args()
    if not shutil.which("nginx"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    srv = tempfile.mkdtemp(prefix="gpubox-bench-srv-", dir="/dev/shm")
    out = tempfile.mkdtemp(prefix="gpubox-bench-dl-", dir=os.path.join(ROOT, "target"))
    size = int(args.gib * (1 << 30))
    for i in range(4):
        with open(f"{srv}/f{i}.bin", "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    os.chmod(srv, 0o755)
    port = free_port()
    conf = f"{srv}/nginx.conf"
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {srv}/nginx.pid; error_log {srv}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; client_body_temp_path {srv}/b; proxy_temp_path {srv}/p;
  fastcgi_temp_path {srv}/f; uwsgi_temp_path {srv}/u; scgi_temp_path {srv}/s;
  server {{ listen 127.0.0.1:{port}; root {srv}; }} }}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", srv], stderr=subprocess.DEVNULL)
    urls = [f"http://127.0.0.1:{port}/f{i}.bin" for i in range(4)]
    try:
        wait_port(port)
        speeds = {"gpubox": [], "curl": []}
        peaks = []
        for r in range(args.runs):
            order = ["gpubox", "curl"] if r % 2 == 0 else ["curl", "gpubox"]
            for side in order:
                dest = f"{out}/{side}-{r}"
                os.makedirs(dest)
                drop_caches()
                t = time.perf_counter()
                if side == "curl":
                    procs = [subprocess.Popen(["curl", "-sf", "-o", f"{dest}/f{i}.bin", u]) for i, u in enumerate(urls)]
                    if any(p.wait() != 0 for p in procs):
                        sys.exit("curl failed")
                    subprocess.run(["sync", "-f", dest])
                else:
                    manifest = f"{dest}.toml"
                    with open(manifest, "w") as f:
                        for i, u in enumerate(urls):
                            f.write(f'[models.checkpoints.f{i}]\nsource = "url"\nurl = "{u}"\nfilename = "f{i}.bin"\n')
                    p = subprocess.Popen([GPUBOX, "provision", manifest, "--models-dir", dest, "--extensions-dir",
                                          f"{dest}/ext", "--state-dir", f"{dest}/state", "--parallel", "4"],
                                         stdout=subprocess.DEVNULL)
                    peak = [0]
                    sampler = threading.Thread(target=peak_rss_of, args=(p, peak))
                    sampler.start()
                    if p.wait() != 0:
                        sys.exit("gpubox provision failed")
                    sampler.join()
                    peaks.append(peak[0] / 1024)
                    subprocess.run(["sync", "-f", dest])
                secs = time.perf_counter() - t
                speeds[side].append(4 * size / secs / 1e9)
                shutil.rmtree(dest)
        g, c = statistics.median(speeds["gpubox"]), statistics.median(speeds["curl"])
        span = lambda v: f"{statistics.median(v):.2f} GB/s ({min(v):.2f}–{max(v):.2f})"
        print(f"\n4 files of {args.gib:g} GiB from nginx on loopback, {args.runs} runs each, alternating\n")
        print("| measure | gpubox provision | 4 × curl | gpubox vs curl | goal |")
        print("| --- | --- | --- | --- | --- |")
        print(f"| total throughput (to disk, synced) | {span(speeds['gpubox'])} | {span(speeds['curl'])} | {g / c:.2f}× | ≥ 0.9× |")
        print(f"| gpubox's peak resident memory | {max(peaks):.1f} MiB | | | flat |")
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(srv, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
