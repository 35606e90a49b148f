"""How fast is the api engine, and what does its client cost? Prints rows/s and client CPU per row.

The client must never be what holds a GPU server back: at 100 rows/s its CPU per row has to stay well
under 10 ms per core, and the target is < 2 ms for the protocol. This drives the real engine
(amlc.engines.api, cache off) over product photos at 1, 8 and 32 requests in flight, against:

- `--server swift` (default): ms-swift's `swift deploy` on this machine (python -m amlc.serve), serving
  the tiny Qwen2-VL rewired to answer "12 V" (amlc.tiny.build_scripted) on CPU: rows/s are the tiny
  model's on this CPU, shared with the client; the client CPU per row is the figure that carries over.
- `--server canned`: a local server answering every request with a fixed chat completion after
  `--latency` seconds: the client alone, as against a GPU fleet that is never the bottleneck.

Both image modes are timed: resizing on the client as training did (decode + resize + JPEG), and
`api.send_original` (the file as it is; the server resizes). `--clients` compares the HTTP clients
themselves (aiohttp, as the engine uses, and the official openai package) on one chat completion with a
100 KB image, against the canned server. Client CPU is this process's CPU time (all threads) per row.
Images: the development photos (../shared/amlc2024/images_dev) when present, else drawn 1600 px JPEGs.

    PYTHONPATH=src python bench/bench_api.py [--server swift|canned] [--rows 64] [--repeats 3]
    PYTHONPATH=src python bench/bench_api.py --clients
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amlc.paths import SHARED_DATA

LEVELS = (1, 8, 32)
CANNED = r'''
import asyncio, json, sys
from aiohttp import web
lp = {"content": [{"token": t, "logprob": -0.05} for t in ["1", "2", " V", "<|im_end|>"]]}
body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "canned",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "12 V"}, "finish_reason": "stop",
                 "logprobs": lp}], "usage": {"prompt_tokens": 480, "completion_tokens": 4}}).encode()
delay = float(sys.argv[2])
async def chat(request):
    await request.read()
    if delay:
        await asyncio.sleep(delay)
    return web.Response(body=body, content_type="application/json")
async def models(request):
    return web.json_response({"object": "list", "data": [{"id": "canned", "object": "model"}]})
app = web.Application(client_max_size=1 << 26)
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/v1/models", models)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def photos(tmp: Path, n: int = 64) -> tuple[list[Path], str]:
    real = sorted((SHARED_DATA / "images_dev").glob("*.jpg"))
    if real:
        return real, f"{len(real)} development photos (images_dev)"
    from PIL import Image, ImageDraw

    out = []
    for i in range(n):  # product-photo-like: 1600 px, smooth areas and print, ~200 KB
        im = Image.linear_gradient("L").resize((1600, 1600)).convert("RGB")
        d = ImageDraw.Draw(im)
        for k in range(20):
            d.text((80 + 37 * k, 60 * k + i), f"Net Wt {i * 7 + k} g  12V 65W", fill=(k * 12, 0, 90))
        out.append(tmp / f"p{i}.jpg")
        im.save(out[-1], quality=90)
    return out, f"{n} drawn 1600x1600 JPEGs"


def start_canned(port: int, latency: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CANNED, str(port), str(latency)])
    _wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
    return proc


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def start_swift(tmp: Path, port: int, max_pixels: int) -> subprocess.Popen:
    from amlc import tiny

    model = tiny.build_scripted(tmp / "scripted", "12 V", 0.8)
    proc = subprocess.Popen([sys.executable, "-m", "amlc.serve", "--model", str(model), "--name", "tiny",
                             "--port", str(port), "--max-pixels", str(max_pixels), "--max-batch-size", "32"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"),
                            start_new_session=True)
    _wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
    return proc


def run_engine(url: str, images: list[Path], rows: int, in_flight: int, original: bool,
               max_pixels: int, tmp: Path) -> tuple[float, float]:
    """(rows/s, client CPU ms per row) of one engine.predict over `rows` rows."""
    from amlc.config import load_config
    from amlc.engines import Request, load_engine

    cfg = load_config(None, [f"api.base_url={url}", "api.cache=false", f"api.max_in_flight={in_flight}",
                             f"api.send_original={str(original).lower()}", f"api.max_pixels={max_pixels}",
                             f"inference.preds_dir={tmp}"])
    engine = load_engine("api", cfg)
    entities = ["voltage", "item_weight", "wattage", "width"]
    reqs = [Request(index=i, entity_name=entities[i % 4], image_path=images[i % len(images)]) for i in range(rows)]
    engine.predict(reqs[:in_flight])  # connections open, threads warm
    cpu, wall = time.process_time(), time.perf_counter()
    results = engine.predict(reqs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.close()
    bad = [r for r in results if r.reason.startswith("error")]
    if bad:
        raise SystemExit(f"{len(bad)} rows failed, e.g. {bad[0].reason}")
    return rows / wall, 1000 * cpu / rows


def bench_servers(args) -> None:
    from amlc.engines import api

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        images, what = photos(tmp)
        # What the client does per row before any request: decode, resize and encode the image.
        fetch = api.fetch_image()
        sample = images[:32]
        cpu = time.process_time()
        for p in sample:
            api.image_payload(p.read_bytes(), args.max_pixels, 95, fetch)
        prep = 1000 * (time.process_time() - cpu) / len(sample)
        cpu = time.process_time()
        for p in sample:
            api.image_payload(p.read_bytes(), args.max_pixels, 95, fetch, original=True)
        orig = 1000 * (time.process_time() - cpu) / len(sample)
        port = 18000 + os.getpid() % 1000
        if args.server == "swift":
            proc = start_swift(tmp, port, args.max_pixels)
            server = "swift deploy (python -m amlc.serve), tiny scripted Qwen2-VL, transformers backend, CPU"
        else:
            proc = start_canned(port, args.latency)
            server = f"canned chat completions after {args.latency * 1000:g} ms"
        try:
            url = f"http://127.0.0.1:{port}/v1"
            print(f"server: {server}; images: {what}; max_pixels {args.max_pixels}; {args.rows} rows a run, "
                  f"median of {args.repeats} runs; {load()} (shared machine: preliminary)")
            print(f"image preparation alone, one thread: resize here {prep:.1f} ms CPU/row, send original "
                  f"{orig:.2f} ms CPU/row")
            print(f"{'in flight':>9}  {'image':<9} {'rows/s':>8}  {'client CPU ms/row':>17}")
            for level in args.levels:
                for original in (False, True):
                    runs = [run_engine(url, images, args.rows, level, original, args.max_pixels, tmp)
                            for _ in range(args.repeats)]
                    rate = statistics.median(r[0] for r in runs)
                    cpu_row = statistics.median(r[1] for r in runs)
                    print(f"{level:>9}  {'original' if original else 'resized':<9} {rate:>8.1f}  {cpu_row:>17.2f}",
                          flush=True)
        finally:
            if args.server == "swift":
                os.killpg(proc.pid, 15)
            else:
                proc.terminate()
            proc.wait()
        print(f"after: {load()}")


CLIENT = r'''
import asyncio, base64, json, os, sys, time
kind, port, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
url = "data:image/jpeg;base64," + base64.b64encode(os.urandom(75000)).decode()
text = "What is the voltage of the product shown? Answer with a number and a unit."
def body():
    return {"model": "canned", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}],
        "temperature": 0, "max_tokens": 16, "logprobs": True}
async def with_aiohttp():
    import aiohttp
    sem = asyncio.Semaphore(k)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=k)) as s:
        async def one():
            async with sem, s.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body()) as r:
                return json.loads(await r.text())["choices"][0]["message"]["content"]
        await asyncio.gather(*[one() for _ in range(n)])
async def with_openai():
    from openai import AsyncOpenAI
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    sem = asyncio.Semaphore(k)
    async def one():
        async with sem:
            r = await client.chat.completions.create(**body())
            return r.choices[0].message.content
    await asyncio.gather(*[one() for _ in range(n)])
    await client.close()
import aiohttp, openai  # imports outside the clock
run = with_aiohttp if kind == "aiohttp" else with_openai
asyncio.run(run())  # warm: connections, lazy imports
cpu, wall = time.process_time(), time.perf_counter()
asyncio.run(run())
print(json.dumps({"rate": n / (time.perf_counter() - wall), "cpu_ms": 1000 * (time.process_time() - cpu) / n}))
'''


def bench_clients(args) -> None:
    port = 18000 + os.getpid() % 1000
    proc = start_canned(port, args.latency)
    try:
        print(f"HTTP clients, one chat completion with a 100 KB image, {args.client_rows} requests, 32 in flight, "
              f"server answering after {args.latency * 1000:g} ms; median of {args.repeats}; {load()} "
              f"(shared machine: preliminary)")
        for kind in ("aiohttp", "openai"):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, "-c", CLIENT, kind, str(port), str(args.client_rows), "32"],
                                     capture_output=True, text=True, check=True)
                runs.append(json.loads(out.stdout))
            print(f"  {kind:<8} {statistics.median(r['rate'] for r in runs):7.0f} requests/s, "
                  f"{statistics.median(r['cpu_ms'] for r in runs):5.2f} ms client CPU per request", flush=True)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=["swift", "canned"], default="swift")
    p.add_argument("--rows", type=int, default=64, help="rows per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=list(LEVELS))
    p.add_argument("--max-pixels", type=int, default=313600, help="the training setting of the real model")
    p.add_argument("--latency", type=float, default=0.05, help="canned server: seconds before each answer")
    p.add_argument("--clients", action="store_true", help="compare aiohttp and the openai client instead")
    p.add_argument("--client-rows", type=int, default=2000)
    args = p.parse_args()
    bench_clients(args) if args.clients else bench_servers(args)


if __name__ == "__main__":
    main()
