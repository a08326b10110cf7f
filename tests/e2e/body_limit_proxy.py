"""A reverse proxy as some stand in front of gpubox: it refuses request bodies over a limit, as
Cloudflare does (100 MB on its Free and Pro plans: 413), and with --buffer it holds each response
back until it is whole, as buffering proxies do (an event stream then never arrives).

body_limit_proxy.py TARGET_PORT LIMIT_BYTES [--buffer]

Prints the port it listens on (127.0.0.1), then forwards each connection's requests to
127.0.0.1:TARGET_PORT one by one, bodies streamed. `GET /.proxy-stats` is answered by the proxy
itself: {"largest": the largest body passed on, "refused": how many it refused}.
"""
import json
import socket
import sys
import threading

target, limit = int(sys.argv[1]), int(sys.argv[2])
buffer = "--buffer" in sys.argv[3:]


class Held:
    """A client socket that keeps what is sent until flushed (--buffer)."""

    def __init__(self, conn):
        self.conn, self.parts = conn, []

    def sendall(self, data):
        self.parts.append(data)

    def flush(self):
        self.conn.sendall(b"".join(self.parts))
        self.parts = []
stats = {"largest": 0, "refused": 0}
lock = threading.Lock()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line)


def answer(conn, status, body, extra=b""):
    conn.sendall(
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


def relay_response(up, conn):
    """Copies one response from the upstream's reader to the client; False when the connection ends."""
    head = read_head(up)
    if head is None:
        return False
    conn.sendall(b"".join(head) + b"\r\n")
    fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in head[1:] if b":" in l}
    status = int(head[0].split()[1])
    if status in (204, 304) or 100 <= status < 200:
        return True
    if b"content-length" in fields:
        left = int(fields[b"content-length"])
        while left:
            chunk = up.read(min(left, 1 << 20))
            if not chunk:
                return False
            conn.sendall(chunk)
            left -= len(chunk)
        return fields.get(b"connection", b"").lower() != b"close"
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size_line = up.readline()
            conn.sendall(size_line)
            size = int(size_line.split(b";")[0], 16)
            data = up.read(size + 2)
            conn.sendall(data)
            if size == 0:
                return True
    while True:  # to the end of the connection
        chunk = up.read(1 << 20)
        if not chunk:
            return False
        conn.sendall(chunk)


def serve(conn):
    f = conn.makefile("rb")
    up_sock = socket.create_connection(("127.0.0.1", target))
    up = up_sock.makefile("rb")
    try:
        while True:
            head = read_head(f)
            if not head:
                return
            if head[0].startswith(b"GET /.proxy-stats "):
                with lock:
                    answer(conn, b"200 OK", json.dumps(stats).encode())
                continue
            fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in head[1:] if b":" in l}
            if b"transfer-encoding" in fields:
                answer(conn, b"411 Length Required", b'{"error":"chunked bodies are not passed"}', b"Connection: close\r\n")
                return
            length = int(fields.get(b"content-length", b"0"))
            if length > limit:
                with lock:
                    stats["refused"] += 1
                answer(conn, b"413 Payload Too Large", b'{"error":"body over the limit"}', b"Connection: close\r\n")
                return
            with lock:
                stats["largest"] = max(stats["largest"], length)
            up_sock.sendall(b"".join(head) + b"\r\n")
            left = length
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    return
                up_sock.sendall(chunk)
                left -= len(chunk)
            out = Held(conn) if buffer else conn
            more = relay_response(up, out)
            if buffer:
                out.flush()
            if not more:
                return
    except (OSError, ValueError):
        pass
    finally:
        conn.close()
        up_sock.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
