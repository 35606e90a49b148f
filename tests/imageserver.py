"""A local image CDN for the downloader's tests and benchmark: real HTTP on 127.0.0.1, scripted faults.

Plain images live at /img/<name>: any name is served, as a small JPEG generated from the name (so two
names give two different images), unless `add_image(name, data)` registered bytes for it.

Faults are chosen by the URL path: /s/<script>/<name> answers the k-th request for that path with the
k-th comma-separated step of <script>, the last step repeating. Steps:

    ok           the image (200)                 slow:MS     wait MS milliseconds, then the image
    500 503 ...  that status, a short text body  429:S       429 with Retry-After: S seconds
    404 410      not found / gone                reset       close the connection with a TCP reset
    trunc        Content-Length of the image, half the body, then close (a cut transfer)
    truncfile    a truncated JPEG with a matching Content-Length (a broken file, not a cut transfer)
    html         200 text/html error page        garbage     200 image/jpeg random bytes
    huge         a PNG of 12000x12000 pixels (a decompression bomb, ~20 KB on the wire)
    big          the image padded to BIG_BYTES with JPEG comments, no Content-Length (read to learn)
    bigcl        the same with its Content-Length (a client can refuse it unread)
    redirect     302 to /img/<name>              redirect-file  302 to file:///etc/passwd
    stall:MS     wait MS milliseconds before answering (meant to exceed the client's timeout)
    placeholder  the organisers' black 100x100 placeholder JPEG

`latency` (seconds) delays every answer, like a far-away CDN; `connect_latency` delays the first answer
on each new connection on top of that, like the TCP and TLS handshakes a real https link costs. `counts[path]` is how many requests
each path got and `times[path]` when (time.monotonic()), so a test can prove a file was not fetched
twice or that a retry waited; GET /_stats returns the counts as JSON when the server runs in another
process (`serve_in_process`, or `python tests/imageserver.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

BIG_BYTES = 3_000_000


def make_jpeg(seed: int | str, size: tuple[int, int] = (320, 240), noise: float = 0.0,
              quality: int = 85) -> bytes:
    """A deterministic product-like JPEG: coloured boxes on white, optionally with sensor noise.

    `noise` (0..1) blends in Gaussian noise, which is what makes a JPEG large (0.1 at 700x700 is
    ~100 KB, the size of a typical competition image).
    """
    from PIL import Image, ImageDraw

    rnd = random.Random(int(hashlib.sha1(str(seed).encode()).hexdigest()[:12], 16))
    im = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(im)
    for _ in range(10):
        x0, y0 = rnd.randrange(size[0]), rnd.randrange(size[1])
        x1, y1 = x0 + rnd.randrange(10, size[0] // 2), y0 + rnd.randrange(10, size[1] // 2)
        draw.rectangle([x0, y0, x1, y1], fill=tuple(rnd.randrange(256) for _ in range(3)))
    draw.text((5, 5), f"{rnd.randrange(1000)} g", fill=(0, 0, 0))
    if noise:
        im = Image.blend(im, Image.effect_noise(size, 64).convert("RGB"), noise)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _bomb_png(side: int = 12000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: 144 M pixels in ~20 KB (zlib of zero rows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = (b"\x00" + b"\x00" * ((side + 7) // 8)) * side  # filter byte 0 + a row of zero bits
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def _placeholder() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (100, 100), color="black").save(buf, "JPEG")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client really reuses connections
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        owner = self.server.owner
        path = urlsplit(self.path).path
        if path == "/_stats":
            return self._send(200, json.dumps(owner.snapshot()).encode(), "application/json")
        k = owner._count(path)
        delay = owner.latency
        if not getattr(self, "_warm", False):  # one handler object serves one connection
            self._warm = True
            delay += owner.connect_latency
        if delay:
            time.sleep(delay)
        parts = path.lstrip("/").split("/", 2)
        if len(parts) == 2 and parts[0] == "img":
            return self._step("ok", parts[1])
        if len(parts) == 3 and parts[0] == "s":
            steps = parts[1].split(",")
            return self._step(steps[min(k, len(steps)) - 1], parts[2])
        return self._send(404, b"no such path\n", "text/plain")

    def _step(self, step: str, name: str):
        owner = self.server.owner
        kind, _, arg = step.partition(":")
        if kind == "ok":
            return self._send(200, owner.image(name), "image/jpeg")
        if kind == "slow":
            time.sleep(int(arg) / 1000)
            return self._send(200, owner.image(name), "image/jpeg")
        if kind == "stall":
            time.sleep(int(arg) / 1000)
            return self._send(200, owner.image(name), "image/jpeg")
        if kind == "429":
            return self._send(429, b"slow down\n", "text/plain", {"Retry-After": arg or "1"})
        if kind.isdigit():
            return self._send(int(kind), f"error {kind}\n".encode(), "text/plain")
        if kind == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return None
        if kind == "trunc":
            data = owner.image(name)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        if kind == "truncfile":
            data = owner.image(name)
            return self._send(200, data[: len(data) * 2 // 3], "image/jpeg")
        if kind == "html":
            return self._send(200, b"<html><body><h1>Service unavailable</h1></body></html>",
                              "text/html")
        if kind == "garbage":
            return self._send(200, random.Random(name).randbytes(5000), "image/jpeg")
        if kind == "huge":
            return self._send(200, owner.bomb(), "image/png")
        if kind == "placeholder":
            return self._send(200, _placeholder(), "image/jpeg")
        if kind in ("big", "bigcl"):
            data = owner.image(name)
            pad = BIG_BYTES - len(data)
            # A JPEG comment segment holds at most 65533 bytes: pad with as many as it takes.
            segs = []
            while pad > 0:
                n = min(pad, 65533)
                segs.append(b"\xff\xfe" + struct.pack(">H", n + 2) + b"x" * n)
                pad -= n + 4
            body = data[:2] + b"".join(segs) + data[2:]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            if kind == "bigcl":
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i:i + 65536])
            return None
        if kind == "redirect":
            return self._send(302, b"", "text/plain", {"Location": f"/img/{name}"})
        if kind == "redirect-file":
            return self._send(302, b"", "text/plain", {"Location": "file:///etc/passwd"})
        return self._send(400, f"unknown step {step!r}\n".encode(), "text/plain")

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a 64-process client must not hit a full accept queue (1 s SYN retry)
    owner: "ImageServer"

    def handle_error(self, request, client_address):
        # Clients that time out or hang up mid-answer are part of the tests, not server errors.
        self.owner.errors += 1


class ImageServer:
    def __init__(self, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0,
                 connect_latency: float = 0.0):
        self.latency = latency
        self.connect_latency = connect_latency
        self.images: dict[str, bytes] = {}
        self.counts: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.errors = 0
        self._lock = threading.Lock()
        self._bomb: bytes | None = None
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add_image(self, name: str, data: bytes) -> str:
        self.images[name] = data
        return self.url(f"img/{name}")

    def image(self, name: str) -> bytes:
        name = unquote(name)
        data = self.images.get(name)
        if data is None:
            data = self.images.setdefault(name, make_jpeg(name))
        return data

    def bomb(self) -> bytes:
        if self._bomb is None:
            self._bomb = _bomb_png()
        return self._bomb

    def _count(self, path: str) -> int:
        with self._lock:
            self.counts[path] += 1
            self.times.setdefault(path, []).append(time.monotonic())
            return self.counts[path]

    def requests_for(self, url: str) -> int:
        return self.counts[urlsplit(url).path]

    def times_for(self, url: str) -> list[float]:
        return list(self.times.get(urlsplit(url).path, []))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def start(self) -> "ImageServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ImageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_in_process(latency: float, images: dict[str, bytes], ready, connect_latency: float = 0.0) -> None:
    """Run a server until killed (target of a multiprocessing.Process); sends the port to `ready`."""
    srv = ImageServer(latency=latency, connect_latency=connect_latency)
    srv.images.update(images)
    ready.send(srv.port)
    srv._httpd.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    # `python tests/imageserver.py [LATENCY_S]`: serve until Ctrl-C; prints the port first.
    srv = ImageServer(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(srv.port, flush=True)
    try:
        srv._httpd.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        os._exit(0)
