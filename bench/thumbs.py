#!/usr/bin/env python3
"""The file manager's thumbnails (GET /api/thumb) against vipsthumbnail (libvips), ImageMagick
and Pillow, in the same run.

    bench/thumbs.py [--runs N] [--folder N]

Pictures are made with Pillow (a gradient with noise, so that they compress as photographs
and generated images do, not as flat colour): a 1024×1024 PNG and a 2048×2048 JPEG (quality
92), and a folder of N (default 2,000) 512×512 PNGs.

1. One thumbnail, 256 px on the longer side, JPEG quality 82, on one core, cold (gpubox's
   cache emptied before each run): gpubox over HTTP (curl's time_total: the request, the
   decode, the scaling, the encoding and the answer; its thumbnail thread is one thread);
   `vipsthumbnail` and ImageMagick's `convert -thumbnail` as processes under `taskset -c 0`
   (their start-up counts, as a thumbnailer's would); Pillow inside one Python process
   (`Image.draft` for JPEG, then `thumbnail`; no start-up), under `taskset -c 0`.
2. The folder: every thumbnail asked for over 6 kept-alive connections at once (as a browser's
   six), cold (empty cache), then warm (cached); vipsthumbnail over the whole folder in one
   process (one core). Also gpubox's resident memory: the peak growth over its RSS before the cold pass.

Every figure is a median of the runs (min–max). Installs libvips-tools and imagemagick (apt)
when missing; builds gpubox in release mode when the binary is missing or older than the
sources. Prints Markdown tables.

Goals (issue 18): a thumbnail on one core within 1.5× vipsthumbnail's time and faster than
ImageMagick; the warm folder at least 10× faster than the cold one; memory growth under 64 MiB.
"""
import argparse
import base64
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from common import hwm_kib, rss_kib
from files import AUTH, GPUBOX, PASSWORD, ROOT, USER, free_port, newest_source, wait_http

PY = os.path.join(ROOT, ".cache", "e2e-venv", "bin", "python")


def setup():
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    missing = [p for p, exe in (("libvips-tools", "vipsthumbnail"), ("imagemagick", "convert")) if not shutil.which(exe)]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    if not os.path.exists(PY):
        subprocess.run(["python3", "-m", "venv", os.path.dirname(os.path.dirname(PY))], check=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "-r", os.path.join(ROOT, "tests", "e2e", "requirements.txt")], check=True)
    if not os.path.exists(GPUBOX) or os.path.getmtime(GPUBOX) < newest_source():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


MAKE = r"""
import sys, random
from PIL import Image
random.seed(1)
def picture(w, h):
    im = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    noise = Image.effect_noise((w, h), 40).convert("RGB")
    return Image.blend(im, noise, 0.35)
out, n = sys.argv[1], int(sys.argv[2])
picture(1024, 1024).save(f"{out}/one.png")
picture(2048, 2048).save(f"{out}/one.jpg", quality=92)
base = picture(512, 512)
import os
os.makedirs(f"{out}/folder", exist_ok=True)
for i in range(n):
    base.rotate(i % 360).save(f"{out}/folder/{i:05d}.png")
"""

PILLOW = r"""
import sys, time
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
t = time.perf_counter()
im = Image.open(src)
if im.format == "JPEG":
    im.draft("RGB", (256, 256))
im.thumbnail((256, 256))
im.convert("RGB").save(dst, quality=82)
print(time.perf_counter() - t)
"""


def med(xs):
    return f"{statistics.median(xs) * 1000:.0f} ms ({min(xs) * 1000:.0f}–{max(xs) * 1000:.0f})"


def curl_time(port, path):
    r = subprocess.run(
        ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", *AUTH,
         f"http://127.0.0.1:{port}/api/thumb?path={path}"],
        capture_output=True, text=True, check=True)
    code, t = r.stdout.split()
    if code != "200":
        sys.exit(f"gpubox answered {code} for {path}")
    return float(t)


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--folder", type=int, default=2000)
    args = ap.parse_args()
    setup()
    tmp = tempfile.mkdtemp(prefix="gpubox-bench-thumbs-")
    ws = os.path.join(tmp, "ws")
    os.makedirs(ws)
    subprocess.run([PY, "-c", MAKE, ws, str(args.folder)], check=True)
    port = free_port()
    conf = os.path.join(tmp, "gpubox.toml")
    with open(conf, "w") as f:
        f.write(f'workspace = "{ws}"\n[auth]\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
                f'[services.files]\napp = "files"\nport = {port}\n')
    control = os.path.join(tmp, "control.sock")
    g = subprocess.Popen([GPUBOX, "--control", control, "run", "--config", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, [g])
        cache = os.path.join(ws, ".gpubox", "thumbs")
        out = os.path.join(tmp, "out.jpg")
        one = {}
        for name in ("one.png", "one.jpg"):
            src = os.path.join(ws, name)
            times = {k: [] for k in ("gpubox", "vipsthumbnail", "ImageMagick", "Pillow")}
            for _ in range(args.runs):
                shutil.rmtree(cache, ignore_errors=True)
                times["gpubox"].append(curl_time(port, name))
                times["vipsthumbnail"].append(timed(["taskset", "-c", "0", "vipsthumbnail", src, "-s", "256", "-o", out + "[Q=82]"]))
                times["ImageMagick"].append(timed(["taskset", "-c", "0", "env", "MAGICK_THREAD_LIMIT=1", "convert", src, "-thumbnail", "256x256", "-quality", "82", out]))
                r = subprocess.run(["taskset", "-c", "0", PY, "-c", PILLOW, src, out], capture_output=True, text=True, check=True)
                times["Pillow"].append(float(r.stdout))
            one[name] = times

        names = sorted(os.listdir(os.path.join(ws, "folder")))
        shutil.rmtree(cache, ignore_errors=True)
        before = rss_kib(g.pid)
        hwm0 = hwm_kib(g.pid)

        def all_thumbs():
            # Six kept-alive connections, as a browser's: curl's start-up per request would
            # be what is measured otherwise.
            auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

            def client(part):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                for n in part:
                    c.request("GET", f"/api/thumb?path=folder/{n}", headers={"Authorization": auth})
                    r = c.getresponse()
                    body = r.read()
                    if r.status != 200 or not body:
                        sys.exit(f"gpubox answered {r.status} for {n}")
                c.close()

            t = time.perf_counter()
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(client, [names[i::6] for i in range(6)]))
            return time.perf_counter() - t

        cold = all_thumbs()
        peak = max(hwm_kib(g.pid), hwm0) - before
        warm = all_thumbs()
        vdir = os.path.join(tmp, "vips")
        os.makedirs(vdir)
        vips = timed(["taskset", "-c", "0", "sh", "-c",
                      f"cd {ws}/folder && vipsthumbnail *.png -s 256 -o {vdir}/%s.jpg[Q=82]"])
    finally:
        g.terminate()
        g.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n### Thumbnails (256 px, JPEG q82, one core; median of {args.runs})\n")
    print("| picture | gpubox (HTTP, cold) | vipsthumbnail | ImageMagick convert | Pillow (in-process) |")
    print("| --- | --- | --- | --- | --- |")
    for name, label in (("one.png", "1024×1024 PNG"), ("one.jpg", "2048×2048 JPEG")):
        t = one[name]
        print(f"| {label} | {med(t['gpubox'])} | {med(t['vipsthumbnail'])} | {med(t['ImageMagick'])} | {med(t['Pillow'])} |")
    print(f"\n### A folder of {len(names)} pictures (512×512 PNG)\n")
    print("| | time | per picture |")
    print("| --- | --- | --- |")
    print(f"| gpubox, cold (6 clients) | {cold:.1f} s | {cold / len(names) * 1000:.1f} ms |")
    print(f"| gpubox, warm (6 clients) | {warm:.2f} s | {warm / len(names) * 1000:.2f} ms |")
    print(f"| vipsthumbnail, one process | {vips:.1f} s | {vips / len(names) * 1000:.1f} ms |")
    print(f"\ngpubox's memory: RSS {before / 1024:.0f} MiB before, peak growth {peak / 1024:.0f} MiB while making them.")


if __name__ == "__main__":
    main()
