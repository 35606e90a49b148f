"""A real OpenAI-compatible server for the api engine's tests, and a fault-injecting proxy in front of it.

`start_server` builds the tiny Qwen2-VL rewired to answer "12 V" with probability 0.8 per token
(amlc.tiny.build_scripted) and serves it with `python -m amlc.serve` (ms-swift's `swift deploy`,
transformers backend, CPU) on 127.0.0.1, behind an API key. Every voltage row must then come back
"12.0 volt" with confidence 0.8, every other entity's unparseable ("V" is no unit of theirs).

`FaultProxy` forwards to it, except that the next requests to /chat/completions can be given a fault:
"429" (with Retry-After), "500", "drop" (the connection is closed without an answer), "slow" (the answer
comes after `slow_seconds`), "401", or "no-logprobs" (a 400 naming logprobs when they are asked for);
`always` applies one fault to every request. `log` records (time, body digest, what was done).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
ANSWER, CONFIDENCE = "12 V", 0.8
KEY = "sk-amlc-test-3f9c1b7e5d"  # the server's key; tests hand it to the client through an env var
MAX_PIXELS = 28 * 28 * 16  # 16 image tokens: the tiny model's, on both sides


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # amlc.serve and the swift deploy it started
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(work: Path, timeout: float = 600) -> Server:
    from amlc import tiny

    model = tiny.build_scripted(work / "scripted", ANSWER, CONFIDENCE)
    log = work / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "amlc.serve", "--model", str(model), "--name", "tiny", "--port", "0",
         "--max-pixels", str(MAX_PIXELS), "--max-batch-size", "16", "--", "--api_key", KEY],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("serving tiny at "):
                return Server(proc, line.split(" at ", 1)[1].strip(), log)
        if proc.poll() is not None:
            break
    server = Server(proc, "", log)
    server.stop()
    raise RuntimeError(f"swift deploy did not come up: {log.read_text()[-3000:]}")


class FaultProxy:
    def __init__(self, upstream: str, slow_seconds: float = 4.0, retry_after: float = 1.0):
        target = urlsplit(upstream)
        self.host, self.port, self.prefix = target.hostname, target.port, target.path.rstrip("/")
        self.slow_seconds, self.retry_after = slow_seconds, retry_after
        self.faults: deque[str] = deque()
        self.always = ""
        self.log: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                digest = hashlib.sha256(body).hexdigest()[:16]
                with proxy._lock:
                    fault = proxy.always or (proxy.faults.popleft() if proxy.faults else "")
                    if fault == "no-logprobs" and not json.loads(body).get("logprobs"):
                        fault = ""
                    proxy.log.append((time.monotonic(), digest, fault or "forwarded"))
                if fault == "429":
                    return self._reply(429, {"error": {"message": "rate limited"}},
                                       {"Retry-After": f"{proxy.retry_after:g}"})
                if fault == "500":
                    return self._reply(500, {"error": {"message": "internal error"}})
                if fault == "401":
                    return self._reply(401, {"error": {"message": f"Incorrect API key provided: "
                                                                  f"{self.headers.get('Authorization', '')}"}})
                if fault == "no-logprobs":
                    return self._reply(400, {"error": {"message": "logprobs is not supported by this model"}})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_seconds)
                self._forward(body)

            def _reply(self, status, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                             **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a slow reply past its timeout)
                    self.close_connection = True

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hung up on a dropped or slow reply: expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def posts(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.log)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
