#!/usr/bin/env python3
"""The file manager (7010) against nginx, Caddy, dufs and miniserve, in the same run.

    bench/files.py [--runs N] [--no-memory]

Every server is bound to 127.0.0.1 on a free port and serves the same folder (under /tmp):

1. Download a 2 GiB file (real blocks of zeros, page cache warm) with curl to /dev/null.
   gpubox: `GET /api/file?path=big.bin` with HTTP Basic auth; the peers serve it statically
   (nginx with sendfile, Caddy `file_server`, dufs, miniserve), without a login.
2. Upload 2 GiB (curl reading the same warm file). gpubox: tus 1.0 (`POST /api/tus`, then one
   `PATCH` with the whole body); nginx: `PUT` (`dav_methods PUT`); dufs: `PUT`
   (`--allow-upload`); miniserve: multipart `POST` (`-u`); Caddy has no upload. Timed twice:
   until the server answered, and until it answered *and* the file is on disk (`sync -f` on the
   filesystem after the answer, for every contender; gpubox already fsyncs before it answers).
   The raw disk: `dd if=/dev/zero bs=1M count=2048 conv=fdatasync` to the same folder, then the
   same `sync -f`, and the same with bs=16K (on the 6.18 kernel of the machine these figures come
   from, 1 MiB writes cost several times the CPU of 16 KiB ones to copy into the page cache; the
   goal is held to the faster of the two). `sync` runs before each upload, so no earlier write is
   flushed on its time. Also each server's CPU time (user + system, nginx's workers included)
   until it answered.
3. List a folder of 100,000 empty files: gpubox `GET /api/list?path=big` (JSON), nginx
   `autoindex_format json` (and HTML, for reference), Caddy `browse` (JSON, `Accept:
   application/json`), dufs `?json`, miniserve (HTML). curl's time_total: from the request to the
   last byte, so the server's work before its first byte counts.
4. Memory (unless --no-memory): gpubox's resident memory (VmRSS, sampled every 10 ms) during a
   10 GiB ZIP download of a folder of five 2 GiB files (real blocks, written with dd) and during
   a 10 GiB tus upload (curl reading `head -c 10G /dev/zero`); the peak growth over the RSS just
   before each. The big files are deleted afterwards (at most about 13 GB on disk at once).

The contenders' order rotates every round; every figure is a median (min–max). Installs
nginx-light and caddy (apt) and dufs and miniserve (`cargo install --locked`, into
bench/.cache/cargo) when missing; builds gpubox in release mode when the binary is missing or
older than the sources. Prints Markdown tables.

Goals (the file manager's issue): download ≥ 1.0× nginx; upload ≥ 0.9× the raw disk and ≥ 2×
miniserve; listing ≤ 0.5× nginx's time; memory growth < 32 MiB during the 10 GiB transfers.
"""
import argparse
import base64
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from common import hwm_kib, rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUBOX = os.path.join(ROOT, "target", "release", "gpubox")
CARGO_ROOT = os.path.join(ROOT, "bench", ".cache", "cargo")
DUFS = os.path.join(CARGO_ROOT, "bin", "dufs")
MINISERVE = os.path.join(CARGO_ROOT, "bin", "miniserve")
USER, PASSWORD = "bench", "bench-password-1"
AUTH = ["-u", f"{USER}:{PASSWORD}"]
GIB = 1 << 30
BIG = 2 * GIB
ENTRIES = 100_000
CADDY_LIMIT = 10_000
NAMES = ["gpubox", "nginx", "caddy", "dufs", "miniserve"]
# curl: no `Expect: 100-continue` pause before a body, for every contender alike.
CURL = ["curl", "-s", "-S", "-H", "Expect:"]


def newest_source():
    newest = 0.0
    for top in ("src", "web", "build.rs", "Cargo.toml", "Cargo.lock"):
        path = os.path.join(ROOT, top)
        if os.path.isfile(path):
            newest = max(newest, os.path.getmtime(path))
        for d, dirs, files in os.walk(path):
            dirs[:] = [x for x in dirs if x not in ("node_modules", "dist")]
            for f in files:
                newest = max(newest, os.path.getmtime(os.path.join(d, f)))
    return newest


def setup():
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    missing = [p for p, exe in (("nginx-light", "nginx"), ("caddy", "caddy")) if not shutil.which(exe)]
    if missing:
        print(f"installing {' '.join(missing)}…", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    crates = [c for c, exe in (("dufs", DUFS), ("miniserve", MINISERVE)) if not os.path.exists(exe)]
    if crates:
        print(f"building {' '.join(crates)} from crates.io (a few minutes each)…", file=sys.stderr)
        subprocess.run(["cargo", "install", "--locked", "--quiet", *crates, "--root", CARGO_ROOT], check=True)
    if not os.path.exists(GPUBOX) or os.path.getmtime(GPUBOX) < newest_source():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, procs, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if any(p.poll() is not None for p in procs):
                sys.exit(f"a server exited before it listened on {port}")
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def cpu_seconds(pid):
    """User + system CPU time of a process and its children (nginx's workers), in seconds."""
    def own(p):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    ticks = own(pid)
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        ticks += own(p)
            except (OSError, ValueError, IndexError):
                pass
    return ticks / os.sysconf("SC_CLK_TCK")


def sync_fs(path):
    subprocess.run(["sync", "-f", path], check=True)


class Sampler:
    """Samples a process's VmRSS every 10 ms between start() and stop(); stop() returns the peak
    growth over the RSS at start(), in MiB."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.base = rss_kib(self.pid)
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def stop(self):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))
        return (self.peak - self.base) / 1024


def curl(args, what):
    """Runs curl with `-w`; returns its fields. Fails loudly on an HTTP error (miniserve answers an
    upload with 303)."""
    out = subprocess.run(CURL + args + ["-w", "%{http_code} %{size_download} %{time_starttransfer} %{time_total}"],
                         capture_output=True, text=True)
    fields = out.stdout.split()[-4:]
    if out.returncode != 0 or len(fields) < 4 or fields[0][0] not in "23":
        raise RuntimeError(f"{what}: curl exit {out.returncode}, {out.stdout[-300:]} {out.stderr[-300:]}")
    return int(fields[0]), int(fields[1]), float(fields[2]), float(fields[3])


def tus_create(port, name, folder, length):
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in (("filename", name), ("path", folder)))
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/tus", method="POST", headers={
        "Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Tus-Resumable": "1.0.0", "Upload-Length": str(length), "Upload-Metadata": meta})
    with urllib.request.urlopen(req) as r:
        if r.status != 201:
            raise RuntimeError(f"tus POST: {r.status}")
        return f"http://127.0.0.1:{port}{r.headers['Location']}"


TUS_PATCH = ["-X", "PATCH", "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
             "-H", "Content-Type: application/offset+octet-stream"]


def start_servers(work, srv, procs):
    """Starts every server into `procs` (so that the caller stops them, whatever happens)."""
    ports = {n: free_port() for n in NAMES}
    os.makedirs(f"{work}/logs")
    with open(f"{work}/gpubox.toml", "w") as f:
        f.write(f"""workspace = "{srv}"
[logs]
dir = "{work}/logs"
stdout = false
[auth]
username = "{USER}"
password = "{PASSWORD}"
[services.files]
app = "files"
port = {ports['gpubox']}
bind = "127.0.0.1"
""")
    procs["gpubox"] = subprocess.Popen([GPUBOX, "--control", f"{work}/c.sock", "run", "--config", f"{work}/gpubox.toml"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # nginx: workers as root (they write uploads into the folder); the PUT body's temporary file
    # is on the same filesystem, so it is renamed into place, not copied.
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"""user root; daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  client_body_temp_path {work}/nginx-body; proxy_temp_path {work}/p; fastcgi_temp_path {work}/f;
  uwsgi_temp_path {work}/u; scgi_temp_path {work}/s;
  server {{ listen 127.0.0.1:{ports['nginx']}; root {srv}; client_max_body_size 0;
    location / {{ autoindex on; autoindex_format json; dav_methods PUT; create_full_put_path on; }}
    location /html/ {{ alias {srv}/; autoindex on; }} }} }}
""")
    procs["nginx"] = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work], stderr=subprocess.DEVNULL)
    with open(f"{work}/Caddyfile", "w") as f:
        f.write(f"{{\n admin off\n auto_https off\n}}\nhttp://127.0.0.1:{ports['caddy']} {{\n bind 127.0.0.1\n"
                f" root * {srv}\n file_server browse\n}}\n")
    caddy_env = {**os.environ, "XDG_DATA_HOME": f"{work}/caddy", "XDG_CONFIG_HOME": f"{work}/caddy"}
    procs["caddy"] = subprocess.Popen(["caddy", "run", "--config", f"{work}/Caddyfile", "--adapter", "caddyfile"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=caddy_env)
    procs["dufs"] = subprocess.Popen([DUFS, "-b", "127.0.0.1", "-p", str(ports["dufs"]), "--allow-upload", srv],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs["miniserve"] = subprocess.Popen([MINISERVE, "-i", "127.0.0.1", "-p", str(ports["miniserve"]), "-u", "--", srv],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for n in NAMES:
        wait_http(ports[n], list(procs.values()))
    time.sleep(1)
    return ports


def download_args(name, port, path):
    if name == "gpubox":
        return AUTH + [f"http://127.0.0.1:{port}/api/file?path={path}"]
    return [f"http://127.0.0.1:{port}/{path}"]


def list_args(name, port):
    return {
        "gpubox": AUTH + [f"http://127.0.0.1:{port}/api/list?path=big"],
        "nginx": [f"http://127.0.0.1:{port}/big/"],
        "nginx-html": [f"http://127.0.0.1:{port}/html/big/"],
        "caddy": ["-H", "Accept: application/json", f"http://127.0.0.1:{port}/big/"],
        "dufs": [f"http://127.0.0.1:{port}/big/?json"],
        "miniserve": [f"http://127.0.0.1:{port}/big/"],
    }[name]


def upload(name, port, src, srv, tag, pid):
    """Uploads `src` (BIG bytes); returns (seconds until answered, seconds until on disk, the
    server's CPU seconds until it answered; dd's own for the disk)."""
    dest = f"{srv}/up/{tag}.bin"
    os.sync()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN) if name.startswith("dd") else cpu_seconds(pid)
    t = time.perf_counter()
    if name in ("dd", "dd16k"):
        bs = 1 << 20 if name == "dd" else 16 << 10
        subprocess.run(["dd", "if=/dev/zero", f"of={dest}", f"bs={bs}", f"count={BIG // bs}", "conv=fdatasync",
                        "status=none"], check=True)
    elif name == "gpubox":
        url = tus_create(port, f"{tag}.bin", "up", BIG)
        curl(AUTH + TUS_PATCH + ["-T", src, "-o", "/dev/null", url], "gpubox tus")
    elif name == "gpubox-put":
        curl(AUTH + ["-T", src, "-o", "/dev/null", f"http://127.0.0.1:{port}/api/file?path=up/{tag}.bin"], "gpubox PUT")
    elif name in ("nginx", "dufs"):
        curl(["-T", src, "-o", "/dev/null", f"http://127.0.0.1:{port}/up/{tag}.bin"], f"{name} PUT")
    elif name == "miniserve":
        curl(["-F", f"file=@{src};filename={tag}.bin", "-o", "/dev/null",
              f"http://127.0.0.1:{port}/upload?path=/up"], "miniserve POST")
    answered = time.perf_counter() - t
    if name.startswith("dd"):
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r.ru_utime + r.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    else:
        cpu = cpu_seconds(pid) - cpu0
    sync_fs(srv)
    on_disk = time.perf_counter() - t
    got = os.path.getsize(dest) if os.path.exists(dest) else -1
    if got != BIG:
        raise RuntimeError(f"{name}: {dest} has {got} bytes, not {BIG}")
    os.remove(dest)
    os.sync()
    return answered, on_disk, cpu


def gpubox_put_works(port, work):
    """PUT /api/file is the editor's whole-body save: does it take a body over 2 MiB?"""
    probe = f"{work}/probe.bin"
    with open(probe, "wb") as f:
        f.write(b"\0" * (3 << 20))
    out = subprocess.run(CURL + AUTH + ["-T", probe, "-o", "/dev/null", "-w", "%{http_code}",
                                        f"http://127.0.0.1:{port}/api/file?path=up/probe.bin"],
                         capture_output=True, text=True).stdout
    os.remove(probe)
    return out.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true", help="skip the 10 GiB memory checks")
    args = ap.parse_args()
    setup()

    work = tempfile.mkdtemp(prefix="gpubox-bench-files-")
    procs = {}
    med = statistics.median
    try:
        srv = f"{work}/srv"
        os.makedirs(f"{srv}/up")
        os.makedirs(f"{srv}/big")
        os.chmod(work, 0o755)
        big = f"{srv}/big.bin"
        print("preparing: a 2 GiB file and a folder of 100,000 files…", file=sys.stderr)
        # Real blocks (not a sparse file), so every server reads the page cache alike.
        subprocess.run(["dd", "if=/dev/zero", f"of={big}", "bs=16M", f"count={BIG >> 24}", "status=none"], check=True)
        for i in range(ENTRIES):
            os.close(os.open(f"{srv}/big/image_{i:06d}.png", os.O_CREAT | os.O_WRONLY, 0o644))
        os.sync()
        ports = start_servers(work, srv, procs)
        gpid = procs["gpubox"].pid
        sampler = Sampler(gpid)
        # Warm up: every server reads the file and lists the folder once; the listings are checked.
        for n in NAMES:
            curl(download_args(n, ports[n], "big.bin") + ["-o", "/dev/null"], f"{n} download")
        for n in NAMES + ["nginx-html"]:
            body = subprocess.run(CURL + list_args(n, ports["nginx" if n == "nginx-html" else n]),
                                  capture_output=True, text=True).stdout
            # Caddy 2.6 lists at most 10,000 entries of a folder (a fixed limit, file_limit came later).
            if body.count("image_0") < (CADDY_LIMIT if n == "caddy" else ENTRIES):
                sys.exit(f"{n}: the listing of big/ does not name all {ENTRIES} files")

        down = {n: [] for n in NAMES}
        down_growth = []
        for r in range(args.runs):
            for n in NAMES[r % 5:] + NAMES[:r % 5]:
                if n == "gpubox":
                    sampler.start()
                _, size, _, total = curl(download_args(n, ports[n], "big.bin") + ["-o", "/dev/null"], f"{n} download")
                if n == "gpubox":
                    down_growth.append(sampler.stop())
                if size != BIG:
                    sys.exit(f"{n}: downloaded {size} bytes")
                down[n].append(size / total)
            print(f"download round {r + 1}/{args.runs} done", file=sys.stderr)

        listing = {n: [] for n in NAMES + ["nginx-html"]}
        first = {n: [] for n in listing}
        for r in range(args.runs):
            names = list(listing)
            for n in names[r % 6:] + names[:r % 6]:
                _, _, ttfb, total = curl(list_args(n, ports["nginx" if n == "nginx-html" else n]) + ["-o", "/dev/null"],
                                         f"{n} listing")
                listing[n].append(total)
                first[n].append(ttfb)
            print(f"listing round {r + 1}/{args.runs} done", file=sys.stderr)

        put_status = gpubox_put_works(ports["gpubox"], work)
        if os.path.exists(f"{srv}/up/probe.bin"):
            os.remove(f"{srv}/up/probe.bin")
        up_names = ["dd", "dd16k", "gpubox", "nginx", "dufs", "miniserve"] + (["gpubox-put"] if put_status == "200" else [])
        answered = {n: [] for n in up_names}
        on_disk = {n: [] for n in up_names}
        cpu = {n: [] for n in up_names}
        up_growth = []
        for r in range(args.runs):
            k = r % len(up_names)
            for n in up_names[k:] + up_names[:k]:
                if n == "gpubox":
                    sampler.start()
                server = n.split("-")[0]
                a, d, c = upload(n, ports.get(server), big, srv, f"{n}-{r}", procs[server].pid if server in procs else None)
                if n == "gpubox":
                    up_growth.append(sampler.stop())
                answered[n].append(BIG / a)
                on_disk[n].append(BIG / d)
                cpu[n].append(c)
            print(f"upload round {r + 1}/{args.runs} done", file=sys.stderr)

        mem = {}
        if not args.no_memory:
            print("memory: a 10 GiB ZIP download, then a 10 GiB upload…", file=sys.stderr)
            os.makedirs(f"{srv}/mem")
            for i in range(5):
                subprocess.run(["dd", "if=/dev/zero", f"of={srv}/mem/part-{i}.bin", "bs=16M", f"count={BIG >> 24}",
                                "status=none"], check=True)
            os.sync()
            hwm0 = hwm_kib(gpid)
            sampler.start()
            _, size, _, total = curl(AUTH + ["-o", "/dev/null",
                                             f"http://127.0.0.1:{ports['gpubox']}/api/archive?paths=mem&format=zip"],
                                     "zip download")
            mem["zip"] = (sampler.stop(), size / total, size, (hwm_kib(gpid) - hwm0) / 1024)
            if size < 5 * BIG:
                sys.exit(f"the ZIP has {size} bytes")
            shutil.rmtree(f"{srv}/mem")
            os.sync()
            ten = 5 * BIG
            url = tus_create(ports["gpubox"], "ten.bin", "up", ten)
            hwm0 = hwm_kib(gpid)
            sampler.start()
            t = time.perf_counter()
            feed = subprocess.Popen(["head", "-c", str(ten), "/dev/zero"], stdout=subprocess.PIPE)
            # A known length, not chunked: tus needs every byte counted against Upload-Length.
            out = subprocess.run(CURL + AUTH + TUS_PATCH + ["-H", f"Content-Length: {ten}", "-H", "Transfer-Encoding:",
                                                            "-T", "-", "-o", "/dev/null", "-w", "%{http_code}", url],
                                 stdin=feed.stdout, capture_output=True, text=True)
            feed.wait()
            secs = time.perf_counter() - t
            grown = sampler.stop()
            if out.stdout.strip() != "204" or os.path.getsize(f"{srv}/up/ten.bin") != ten:
                sys.exit(f"the 10 GiB upload failed: {out.stdout} {out.stderr}")
            mem["upload"] = (grown, ten / secs, ten, (hwm_kib(gpid) - hwm0) / 1024)
            os.remove(f"{srv}/up/ten.bin")
            os.sync()
        idle = rss_kib(gpid) / 1024
        hwm = hwm_kib(gpid) / 1024
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    gbs = lambda v: f"{v / 1e9:.2f} GB/s"
    secs = lambda v: f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"
    span = lambda xs, f: f"{f(med(xs))} ({f(min(xs))}–{f(max(xs))})"
    print(f"\n{args.runs} rounds, order rotating each round; median (min–max); loopback, 127.0.0.1\n")
    print("| measure | gpubox | nginx | Caddy | dufs | miniserve | gpubox vs nginx | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("| download 2 GiB (curl to /dev/null) | " + " | ".join(span(down[n], gbs) for n in NAMES) +
          f" | {med(down['gpubox']) / med(down['nginx']):.2f}× | ≥ 1.0× |")
    print("| list 100,000 entries (request to last byte) | " + " | ".join(span(listing[n], secs) for n in NAMES) +
          f" | {med(listing['gpubox']) / med(listing['nginx']):.2f}× the time | ≤ 0.5× |")
    print("| … time to first byte | " + " | ".join(secs(med(first[n])) for n in NAMES) + " | | |")
    print(f"\nnginx's HTML autoindex of the same folder: {span(listing['nginx-html'], secs)} "
          f"(first byte {secs(med(first['nginx-html']))}); the table's nginx is autoindex_format json.")
    print(f"Caddy 2.6 (Debian 12) lists only the first {CADDY_LIMIT:,} entries of a folder; its figure is for those.")
    print("Formats: gpubox JSON (name, kind, size, modified), nginx JSON, Caddy JSON, dufs JSON (?json), "
          "miniserve HTML.\n")

    # The raw disk: the faster of dd's two write sizes (see the module's docstring).
    dd = max(med(on_disk["dd"]), med(on_disk["dd16k"]))
    cols = ["gpubox", "dd", "dd16k", "nginx", "dufs", "miniserve"]
    print("| upload 2 GiB | gpubox (tus PATCH) | raw disk: dd bs=1M | raw disk: dd bs=16K | nginx PUT | dufs PUT "
          "| miniserve multipart | Caddy | gpubox vs disk (the faster dd) | gpubox vs miniserve | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("| until answered and on disk (`sync -f`) | " + " | ".join(span(on_disk[n], gbs) for n in cols) +
          f" | n/a | {med(on_disk['gpubox']) / dd:.2f}× | {med(on_disk['gpubox']) / med(on_disk['miniserve']):.2f}× "
          "| ≥ 0.9× disk, ≥ 2× miniserve |")
    print("| until answered (gpubox: after its fsync; dd: after fdatasync) | " +
          " | ".join(span(answered[n], gbs) for n in cols) +
          f" | n/a | | {med(answered['gpubox']) / med(answered['miniserve']):.2f}× | |")
    print("| CPU seconds of the server until it answered (dd: its own) | " +
          " | ".join(span(cpu[n], lambda v: f"{v:.1f} s") for n in cols) + " | n/a | | | |")
    if "gpubox-put" in on_disk:
        print(f"| gpubox PUT /api/file, answered and on disk | {span(on_disk['gpubox-put'], gbs)} | | | | | | "
              f"{med(on_disk['gpubox-put']) / dd:.2f}× | | |")
    else:
        print(f"\ngpubox PUT /api/file (the editor's whole-body save) answered {put_status} to a 3 MiB body: "
              "not measured.")

    print("\n| gpubox's memory | peak VmRSS growth | VmHWM growth | throughput | goal |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| during the 2 GiB downloads (max of {args.runs}) | {max(down_growth):.1f} MiB | | | |")
    print(f"| during the 2 GiB tus uploads (max of {args.runs}) | {max(up_growth):.1f} MiB | | | |")
    for key, label in (("zip", "10 GiB ZIP download (5 × 2 GiB, dd-written)"), ("upload", "10 GiB tus upload")):
        if key in mem:
            g, speed, size, h = mem[key]
            print(f"| {label} | {g:.1f} MiB | {h:.1f} MiB | {gbs(speed)} | < 32 MiB |")
    print(f"| at the end: VmRSS {idle:.1f} MiB, VmHWM {hwm:.1f} MiB | | | | |")


if __name__ == "__main__":
    main()
