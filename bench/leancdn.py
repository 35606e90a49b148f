"""A lean image CDN for the download benchmark: a raw asyncio HTTP/1.1 server, bytes from memory.

A real image CDN is HTTPS: a new connection costs the TCP and TLS 1.3 handshakes (two round trips)
before its first request is even sent, which a keep-alive client pays once per connection and a
client opening a connection per image pays per image. `connect_latency` models their round trips: the
first answer on each accepted connection waits that much longer than `latency` (what every answer
waits). `tls=(certfile, keyfile)` serves HTTPS for real, so that both ends also spend the CPU that TLS
costs (handshakes, encryption), which no delay models.

The benchmark's clients and its server share the machine's cores. tests/imageserver.py (a
ThreadingHTTPServer: a thread per connection, the stdlib's Python request parser) is built for
scripted faults, not for speed; under a client opening a connection per image it spends more CPU per
request than some clients do. This server answers GET /img/<name> from a dict after `latency`
seconds (a timer, not a sleeping thread), keeps connections alive unless asked to close, and costs
~0.1-0.2 ms of CPU per 100 KB answer, about half of it the kernel's (measured beside the threaded
server's 0.35-0.55 ms), so that the benchmark measures the clients.
GET /_stats answers JSON: its own CPU seconds so far (user + system), for the per-request figure,
and how many connections it has accepted (so the benchmark shows whether a client reuses them).

Not a general server: no pipelining beyond answering requests in order, GET only, no chunked bodies.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
from urllib.parse import unquote


def _head(code: int, reason: str, length: int, ctype: bytes, close: bool) -> bytes:
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
            % (code, reason.encode(), ctype, length, b"Connection: close\r\n" if close else b""))


class _Conn(asyncio.Protocol):
    accepted = 0  # connections so far (one server per process)

    def __init__(self, images: dict[str, bytes], latency: float, connect_latency: float):
        self.images, self.latency, self.connect_latency = images, latency, connect_latency
        self.buf = b""
        self.first = True
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        _Conn.accepted += 1
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            line, _, rest = head.partition(b"\r\n")
            parts = line.split(b" ")
            close = b"connection: close" in rest.lower() or (len(parts) > 2 and parts[2] == b"HTTP/1.0")
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            delay = self.latency + (self.connect_latency if self.first else 0.0)
            self.first = False
            answer = self._answer(path, close)
            if delay:
                asyncio.get_running_loop().call_later(delay, self._write, answer, close)
            else:
                self._write(answer, close)

    def _answer(self, path: str, close: bool) -> list[bytes]:
        path = path.split("?", 1)[0]
        if path.startswith("/img/"):
            data = self.images.get(unquote(path[5:]))
            if data is not None:
                return [_head(200, "OK", len(data), b"image/jpeg", close), data]
        elif path == "/_stats":
            t = os.times()
            body = json.dumps({"cpu": t.user + t.system, "connections": _Conn.accepted}).encode()
            return [_head(200, "OK", len(body), b"application/json", close), body]
        return [_head(404, "Not Found", 13, b"text/plain", close), b"no such path\n"]

    def _write(self, answer: list[bytes], close: bool) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        t.writelines(answer)
        if close:
            t.close()

    def connection_lost(self, exc) -> None:
        self.transport = None


def serve_in_process(latency: float, images: dict[str, bytes], ready, connect_latency: float = 0.0,
                     tls: tuple[str, str] | None = None) -> None:
    """Serve until killed (target of a multiprocessing.Process); sends the port to `ready`."""
    async def main() -> None:
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Conn(images, latency, connect_latency), "127.0.0.1", 0,
                                          backlog=4096, ssl=context)
        ready.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())
