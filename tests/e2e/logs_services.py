"""Services for the logs app's browser test (logs.test.mjs): each prints what the page must show.

    ticker  a line every 200 ms with ANSI colours; an ERROR line on stderr every 2 s
    other   JSON lines, 256-colour and truecolor, Python tracebacks, warnings, a heartbeat
    bar     a progress bar redrawn with \\r (run with tty = true): the service's live line
    many    waits for the file named by its argument, then prints 200000 numbered lines
    hist    prints 20000 numbered lines at once (more than a small ring holds) and ends
"""

import json
import os
import sys
import time
import traceback


def ticker():
    i = 0
    while True:
        i += 1
        print(f"\x1b[32mtick {i}\x1b[0m all good, \x1b[1mstep\x1b[0m {i} of the warm-up", flush=True)
        if i % 10 == 0:
            print(f"ERROR tick {i} failed: the upstream answered 503", file=sys.stderr, flush=True)
        time.sleep(0.2)


def other():
    print(json.dumps({"level": "info", "msg": "other started", "port": 8080, "workers": 4}), flush=True)
    print("\x1b[38;5;208morange (256 colours)\x1b[0m and \x1b[38;2;10;200;120mtruecolor\x1b[0m", flush=True)
    i = 0
    while True:
        i += 1
        print(f"other heartbeat {i}", flush=True)
        if i % 25 == 3:
            time.sleep(0.05)  # not interleaved with the heartbeat (two pipes), for the screenshot
            try:
                {}["missing"] / 2
            except KeyError:
                traceback.print_exc()
                sys.stderr.flush()
            time.sleep(0.05)
        if i % 7 == 0:
            print(f"WARNING: other is slow (heartbeat {i})", flush=True)
        if i % 10 == 5:
            request = {"level": "info", "msg": "request served", "path": "/api/generate", "status": 200, "ms": 40 + i % 17}
            print(json.dumps(request), flush=True)
        time.sleep(0.3)


def bar():
    n = 0
    while True:
        n += 1
        for p in range(101):
            full = p // 5
            sys.stdout.write(f"\rdownloading shard {n}: {p:3d}% |{'#' * full}{'.' * (20 - full)}|")
            sys.stdout.flush()
            time.sleep(0.1)
        sys.stdout.write("\n")


def many(go):
    while not os.path.exists(go):
        time.sleep(0.1)
    out = sys.stdout
    for i in range(1, 200001):
        out.write(f"many line {i:06d}\n")
    out.flush()


def hist():
    sys.stdout.write("".join(f"hist line {i:05d}\n" for i in range(1, 20001)))


if __name__ == "__main__":
    {"ticker": ticker, "other": other, "bar": bar, "many": lambda: many(sys.argv[2]), "hist": hist}[sys.argv[1]]()
