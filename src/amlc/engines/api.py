"""The `api` engine: any vision-language model behind an OpenAI-compatible chat-completions server.

vLLM (`vllm serve`, data-parallel over many GPUs), ms-swift (`swift deploy`, or `python -m amlc.serve`),
SGLang, LMDeploy and hosted models all speak one protocol, so one engine drives any of them and many
shards can share one fleet of GPUs behind one URL. Settings: the `api` section of amlc.config.DEFAULTS.

Each row is one POST to {api.base_url}/chat/completions:
- the user turn is the image, then amlc.prompts.prompt(entity): the training prompt, in the training
  order (ms-swift puts the <image> placeholder first);
- the image is decoded and resized exactly as training resized it (ms-swift's RGB conversion, then
  qwen_vl_utils.fetch_image at `api.max_pixels`, else train.max_pixels) and sent as a JPEG data URL, so
  a served fine-tuned model sees what it learned from (its server's own resize is then a no-op); with
  `api.send_original` the file goes as it is, for a server that resizes as training did (amlc.serve);
- temperature 0, `api.max_tokens`, and `logprobs` while `api.logprobs` (a server that refuses them
  with a 400 naming logprobs is asked again without, for the rest of the run).

Result: as the vlm engine's (vlm.model_result): raw is the model's text, prediction its
amlc.units.normalize, confidence vlm.confidence_of (the same rule) over the returned token
log-probabilities, or None with `extra.no_confidence` saying why.

Transport: aiohttp on one event loop in a background thread, keep-alive connections kept across
batches, at most `api.max_in_flight` requests in flight, client-side token buckets for
`api.requests_per_second` and `api.tokens_per_minute`. A timeout, a dropped connection, a 5xx, 408 or
429 is retried up to `api.retries` times with exponential backoff and jitter, Retry-After honoured up to
`api.retry_after_max`; a row still failing gets reason `error: api ...`, and `api.max_consecutive_failures`
such rows in a row stop the run (the server is down; a rerun resumes). Any other 4xx (bad key, unknown
model, request too large) stops the run at once with one line: retrying cannot fix it.

Cache: every answer is kept under `api.cache_dir` (default <preds_dir>/api-cache), one small file per
sha256 of (model, prompt version, image bytes, entity and the request settings), so a rerun into
another folder, or after a crash, asks nothing twice. Safe for many shard processes at once (atomic
renames, no index), on network file systems too.

The API key is read from the environment variable named by `api.api_key_env`: only that name is in the
saved config, and every message the engine emits is scrubbed of the key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlc.engines import Request, Result
from amlc.errors import InputError

RETRY_STATUS = {408, 425, 429}  # besides every 5xx
USER_AGENT = "amlc-api-engine"


class _RowFailed(Exception):
    """A row that failed every attempt; `kind` is the last failure's (timeout, connection, http_503...)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class _Retryable(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


class _NoLogprobs(Exception):
    """The server refused `logprobs` (HTTP 400 naming it)."""


@dataclass
class Settings:
    base_url: str
    model: str
    api_key_env: str
    api_key_header: str
    headers: dict[str, str]
    extra_body: dict[str, Any]
    timeout: float
    wait_for_server: float
    max_in_flight: int
    requests_per_second: float
    tokens_per_minute: float
    retries: int
    backoff: float
    backoff_max: float
    retry_after_max: float
    max_consecutive_failures: int
    max_tokens: int
    logprobs: bool
    max_pixels: int
    image_quality: int
    send_original: bool
    image_workers: int
    price_input_per_million: float
    price_output_per_million: float
    cache: bool
    cache_dir: str

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Settings:
        a = dict(cfg["api"])
        if not str(a["base_url"]).startswith(("http://", "https://")):
            raise InputError(f"api.base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                             f"got {a['base_url']!r}")
        a["base_url"] = str(a["base_url"]).rstrip("/")
        for key in ("max_in_flight", "max_tokens", "image_quality"):
            if not isinstance(a[key], int) or a[key] < 1:
                raise InputError(f"api.{key} must be a positive integer, got {a[key]!r}")
        for key in ("timeout", "wait_for_server", "requests_per_second", "tokens_per_minute", "retries", "backoff", "backoff_max",
                    "retry_after_max", "max_consecutive_failures", "image_workers",
                    "price_input_per_million", "price_output_per_million"):
            if a[key] is None or a[key] < 0:
                raise InputError(f"api.{key} must be >= 0, got {a[key]!r}")
        if a["timeout"] <= 0:
            raise InputError(f"api.timeout must be > 0 seconds, got {a['timeout']!r}")
        if a["api_key_env"] and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(a["api_key_env"])):
            # not echoed: it may be the key itself, pasted where its variable's name belongs
            raise InputError("api.api_key_env must be the NAME of an environment variable holding the key "
                             "(letters, digits and _), not the key itself")
        secret_headers = {"authorization", "api-key", "x-api-key", "proxy-authorization"}
        for name in a["headers"]:
            if str(name).lower() in secret_headers:
                raise InputError(f"api.headers.{name} would save a secret in the config: put the key in an "
                                 f"environment variable and name it in api.api_key_env (and the header in "
                                 f"api.api_key_header)")
        a["headers"] = {str(k): str(v) for k, v in a["headers"].items()}
        a["max_pixels"] = int(a["max_pixels"] or cfg.get("train", {}).get("max_pixels") or 313600)
        a["image_workers"] = int(a["image_workers"]) or min(8, os.cpu_count() or 1)
        if not a["cache_dir"]:
            from amlc.inference import preds_dir

            a["cache_dir"] = str(preds_dir(cfg) / "api-cache")
        return cls(**a)


# ---- pieces ----------------------------------------------------------------------------------------

def fetch_image():
    """qwen_vl_utils.fetch_image, the function ms-swift's qwen2_vl template resizes training images with."""
    from amlc import swift_plugin

    if not swift_plugin.torchvision_usable():
        swift_plugin.import_qwen_vl_utils()
    from qwen_vl_utils import fetch_image as fetch

    return fetch


def image_payload(data: bytes, max_pixels: int, quality: int, fetch=None,
                  original: bool = False) -> tuple[bytes, int, int]:
    """(JPEG data URL, width, height) of an image's bytes, resized as training resized it; with
    `original`, the bytes as they are and the size training would have resized them to."""
    from PIL import Image

    fetch = fetch or fetch_image()
    if original:
        from qwen_vl_utils.vision_process import smart_resize

        with Image.open(io.BytesIO(data)) as im:  # the header only
            mime, (w, h) = im.get_format_mimetype() or "image/jpeg", im.size
        h, w = smart_resize(h, w, factor=28, max_pixels=max_pixels)
        return f"data:{mime};base64,".encode() + base64.b64encode(data), w, h
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB") if im.mode != "RGB" else im  # ms-swift's load_image, before fetch_image
        im.load()
        im = fetch({"image": im, "max_pixels": max_pixels})
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return b"data:image/jpeg;base64," + base64.b64encode(buf.getvalue()), im.width, im.height


IMAGE_SLOT = "@amlc-image@"


def encode_body(body: dict[str, Any], image_url: bytes) -> bytes:
    """The request body as JSON bytes, the image's data URL spliced into IMAGE_SLOT: base64 needs no
    JSON escaping, and json.dumps of a 250 KB string costs ~1 ms of the client's 2 ms budget."""
    head, tail = json.dumps(body).encode().split(IMAGE_SLOT.encode())
    return b"".join((head, image_url, tail))


class Bucket:
    """A token bucket: `rate` units a second, at most `burst` banked; rate 0 means no limit."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = float(rate), max(1.0, float(burst))
        self.level, self.stamp = self.burst, time.monotonic()
        self._lock: asyncio.Lock | None = None

    async def take(self, n: float) -> None:
        if self.rate <= 0:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:  # first come, first served
            need = min(n, self.burst)  # a request larger than the bucket waits for a full one
            while True:
                now = time.monotonic()
                self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= need:
                    self.level -= n
                    return
                await asyncio.sleep((need - self.level) / self.rate)

    def spend(self, n: float) -> None:
        """Units used beyond what was taken (a reply's real token count): later takes wait for them."""
        if self.rate > 0:
            self.level -= n


class ResponseCache:
    """Answers on disk, one JSON file per key (atomic rename: safe for concurrent shard processes)."""

    def __init__(self, directory: str | os.PathLike | None):
        self.dir = Path(directory) if directory else None

    def _path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.dir is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.dir is not None:
            from amlc.tables import write_text

            write_text(self._path(key), json.dumps(value, ensure_ascii=False))


@dataclass
class Stats:
    requests: int = 0  # HTTP requests sent, retries included
    answered: int = 0  # rows the server answered in this run
    cached: int = 0  # rows answered from the cache
    retried: Counter = field(default_factory=Counter)  # failed attempts that were retried, by kind
    failed: Counter = field(default_factory=Counter)  # rows given up after every attempt, by kind
    tokens_in: int = 0
    tokens_out: int = 0
    no_logprobs: str = ""  # why confidences are None, when they are


# ---- the engine ------------------------------------------------------------------------------------

class ApiEngine:
    name = "api"

    def __init__(self, cfg: dict[str, Any]):
        self.s = Settings.from_config(cfg)
        self.range_policy = cfg.get("postprocess", {}).get("range_policy", "max")
        self.key = ""
        if self.s.api_key_env:
            self.key = os.environ.get(self.s.api_key_env, "")
            if not self.key:
                raise InputError(f"environment variable {self.s.api_key_env} (named by api.api_key_env) is "
                                 f"not set or empty: export the API key in it")
        self.stats = Stats()
        self.logprobs = bool(self.s.logprobs)
        self.cache = ResponseCache(self.s.cache_dir if self.s.cache else None)
        self._fetch = fetch_image()
        self._pool = ThreadPoolExecutor(max_workers=self.s.image_workers, thread_name_prefix="amlc-api-image")
        self._consecutive_failures = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amlc-api", daemon=True)
        self._thread.start()
        try:
            self._run(self._open())
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._pool.shutdown(wait=False)
            raise

    # ---- plumbing ----

    def _run(self, coro):
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def scrub(self, text: str) -> str:
        """A message without the API key in it (a server may echo what it was sent)."""
        return text.replace(self.key, "***") if self.key else text

    def _headers(self) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT, **self.s.headers}
        if self.key:
            name = self.s.api_key_header
            h[name] = f"Bearer {self.key}" if name.lower() == "authorization" else self.key
        return h

    async def _open(self) -> None:
        import aiohttp

        # aiohttp, not the openai client (httpx inside): 0.66 against 3.8 ms of client CPU per request
        # with a 100 KB image, for a budget of 2 ms a row (bench/bench_api.py --clients).
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.s.max_in_flight, keepalive_timeout=60),
            headers=self._headers(), timeout=aiohttp.ClientTimeout(total=self.s.timeout))
        self._in_flight = asyncio.Semaphore(self.s.max_in_flight)
        self._requests = Bucket(self.s.requests_per_second, self.s.requests_per_second)
        self._tokens = Bucket(self.s.tokens_per_minute / 60.0, self.s.tokens_per_minute / 6.0)
        self.model = self.s.model or ""
        try:
            await self._check_model()
        except BaseException:
            await self._session.close()
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._session.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._pool.shutdown(wait=False)

    def _fatal(self, status: int, text: str) -> InputError:
        message = self.scrub(_server_message(text))
        where = f"the API at {self.s.base_url}"
        if status in (401, 403):
            hint = (f"check the key in ${self.s.api_key_env} (api.api_key_env)" if self.s.api_key_env else
                    "it wants a key: export it in an environment variable and name that in api.api_key_env")
        elif status == 404:
            hint = f"check api.base_url (it should end in /v1) and api.model ({self.model!r})"
        elif status == 413:
            hint = "the request is too large: lower api.max_pixels"
        else:
            hint = "retrying cannot fix this; the rows done so far are saved"
        return InputError(f"{where} answered HTTP {status}: {message} ({hint})")

    async def _check_model(self) -> None:
        """Fail at start-up, not on row 1, when the server is down or does not serve the model."""
        import aiohttp

        url = f"{self.s.base_url}/models"
        deadline = time.monotonic() + self.s.wait_for_server
        while True:
            try:
                async with self._session.get(url) as resp:
                    text, status = await resp.text(), resp.status
                if status < 500 or time.monotonic() > deadline:
                    break
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    waited = f" after waiting {self.s.wait_for_server:g} s" if self.s.wait_for_server else ""
                    raise InputError(f"cannot reach the API at {self.s.base_url}{waited} ({type(exc).__name__}: "
                                     f"{self.scrub(str(exc)) or 'no answer'}): start the server, fix api.base_url, "
                                     f"or give a starting server time with api.wait_for_server") from None
            await asyncio.sleep(min(5.0, max(0.2, deadline - time.monotonic())))  # loading a model: minutes
        if status in (401, 403):
            raise self._fatal(status, text)
        if status != 200:
            if not self.model:
                raise InputError(f"api.model is empty and {url} answered HTTP {status}: name the model")
            return  # not every provider lists its models; the first request will tell
        try:
            served = [m["id"] for m in json.loads(text)["data"]]
        except (ValueError, KeyError, TypeError):
            served = []
        if not self.model:
            if len(served) != 1:
                raise InputError(f"api.model is empty and {self.s.base_url} serves {len(served)} models "
                                 f"({', '.join(served[:10])}): name one in api.model")
            self.model = served[0]
        elif served and self.model not in served:
            raise InputError(f"{self.s.base_url} does not serve model {self.model!r}; it serves: "
                             f"{', '.join(served[:20])} (set api.model)")

    # ---- one row ----

    def cache_key(self, entity: str, image_sha: str) -> str:
        from amlc import prompts

        parts = [self.model, prompts.PROMPT_VERSION, entity, image_sha, self.s.max_pixels, self.s.max_tokens,
                 self.s.image_quality, self.s.send_original, self.logprobs, sorted(self.s.extra_body.items())]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    def _prepare(self, req: Request) -> tuple[str, dict[str, Any] | None, tuple[str, int, int] | None]:
        """In a worker thread: (cache key, cached answer or None, payload when not cached)."""
        data = Path(req.image_path).read_bytes()
        key = self.cache_key(req.entity_name, hashlib.sha256(data).hexdigest())
        hit = self.cache.get(key)
        if hit is not None:
            return key, hit, None
        return key, None, image_payload(data, self.s.max_pixels, self.s.image_quality, self._fetch,
                                        self.s.send_original)

    def body(self, entity: str) -> dict[str, Any]:
        """The request, the image's place held by IMAGE_SLOT (encode_body fills it)."""
        from amlc import prompts

        body = {"model": self.model,
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": IMAGE_SLOT}},
                    {"type": "text", "text": prompts.prompt(entity)}]}],
                "temperature": 0, "max_tokens": self.s.max_tokens, **self.s.extra_body}
        if self.logprobs:
            body["logprobs"] = True
        return body

    async def _post(self, body: dict[str, Any], image_url: bytes) -> dict[str, Any]:
        """One attempt. Returns the parsed reply; raises _Retryable, _NoLogprobs or InputError."""
        import aiohttp

        self.stats.requests += 1
        try:
            async with self._session.post(f"{self.s.base_url}/chat/completions", data=encode_body(body, image_url),
                                          headers={"Content-Type": "application/json"}) as resp:
                status, text = resp.status, await resp.text()
                retry_after = resp.headers.get("Retry-After")
        except asyncio.TimeoutError:
            raise _Retryable("timeout", f"no answer within {self.s.timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retryable("connection", f"{type(exc).__name__}: {exc}") from None
        if status == 200:
            try:
                reply = json.loads(text)
                reply["choices"][0]["message"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise _Retryable("bad_reply", f"not a chat completion: {text[:120]!r}") from None
            return reply
        if status >= 500 or status in RETRY_STATUS:
            from amlc.download import _retry_after

            raise _Retryable(f"http_{status}", f"HTTP {status}: {_server_message(text)}", _retry_after(retry_after))
        if status == 400 and body.get("logprobs") and "logprob" in text.lower():
            raise _NoLogprobs(_server_message(text))
        raise self._fatal(status, text)

    async def _ask(self, body: dict[str, Any], image_url: bytes, est_tokens: int) -> dict[str, Any]:
        """The reply to `body`, retrying what can be retried; raises _RowFailed when nothing worked."""
        from amlc.download import _backoff

        attempt = 0
        while True:
            await self._requests.take(1)
            await self._tokens.take(est_tokens)
            try:
                async with self._in_flight:
                    return await self._post(body, image_url)
            except _NoLogprobs as exc:
                if self.logprobs:
                    self.logprobs = False
                    self.stats.no_logprobs = f"the server refused logprobs ({self.scrub(str(exc))[:120]})"
                body = {k: v for k, v in body.items() if k != "logprobs"}
                continue  # asked again without; not a failure
            except _Retryable as exc:
                attempt += 1
                if attempt > self.s.retries:
                    raise _RowFailed(exc.kind, f"{exc} after {attempt} attempts") from None
                self.stats.retried[exc.kind] += 1
                delay = _backoff(attempt, self.s)
                if exc.retry_after is not None:
                    if exc.retry_after > self.s.retry_after_max:
                        raise _RowFailed(exc.kind, f"{exc}: Retry-After {exc.retry_after:g} s exceeds "
                                                   f"api.retry_after_max {self.s.retry_after_max:g} s") from None
                    delay = max(delay, exc.retry_after)
                await asyncio.sleep(delay)

    async def _one(self, req: Request) -> Result:
        from amlc.engines.vlm import model_result

        if req.image_path is None or not Path(req.image_path).exists():
            return Result(index=req.index, raw="", prediction="", reason="image_missing")
        loop = asyncio.get_running_loop()
        try:
            key, answer, payload = await loop.run_in_executor(self._pool, self._prepare, req)
        except Exception as exc:  # noqa: BLE001 - the contract: never raise for one row
            return Result(index=req.index, raw="", prediction="", reason=f"error: image: {type(exc).__name__}: {exc}"[:300])
        if answer is not None:
            self.stats.cached += 1
        else:
            url, width, height = payload
            est = width * height // (28 * 28) + 150 + self.s.max_tokens  # image + prompt + answer tokens
            try:
                reply = await self._ask(self.body(req.entity_name), url, est)
            except _RowFailed as exc:
                self.stats.failed[exc.kind] += 1
                self._consecutive_failures += 1
                if self._consecutive_failures >= max(1, self.s.max_consecutive_failures):
                    raise InputError(f"the API at {self.s.base_url} failed {self._consecutive_failures} rows in "
                                     f"a row after {self.s.retries} retries each (last: "
                                     f"{self.scrub(str(exc))}); the rows done so far are saved: rerun to resume"
                                     ) from None
                return Result(index=req.index, raw="", prediction="", reason=f"error: api {exc.kind}: "
                              f"{self.scrub(str(exc))}"[:300])
            self._consecutive_failures = 0
            answer = _answer_of(reply)
            usage = answer["usage"]
            self.stats.answered += 1
            self.stats.tokens_in += usage[0]
            self.stats.tokens_out += usage[1]
            self._tokens.spend(usage[0] + usage[1] - est)
            await loop.run_in_executor(self._pool, self.cache.put, key, answer)
        extra = {"finish_reason": answer["finish_reason"]}
        result = model_result(req, answer["text"], answer["logprobs"], self.range_policy, extra)
        if result.confidence is None:
            extra["no_confidence"] = self.stats.no_logprobs or (
                "logprobs off (api.logprobs)" if not self.s.logprobs else "the server sent no logprobs")
        return result

    async def _predict(self, requests: list[Request]) -> list[Result]:
        tasks = [asyncio.ensure_future(self._one(r)) for r in requests]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # a fatal error (or an interrupt) ends the rows still in flight
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()
        return [t.result() for t in tasks]

    def predict(self, requests: list[Request]) -> list[Result]:
        return self._run(self._predict(requests)) if requests else []

    # ---- the summary ----

    def report(self, total_rows: int | None = None) -> dict[str, Any]:
        """Requests, failures by kind, tokens and money, for the shard summary (amlc.inference)."""
        st, price_in, price_out = self.stats, self.s.price_input_per_million, self.s.price_output_per_million
        spent = st.tokens_in * price_in / 1e6 + st.tokens_out * price_out / 1e6 if price_in or price_out else None
        per_row = spent / st.answered if spent is not None and st.answered else None
        out = {"requests": st.requests, "answered": st.answered, "cached": st.cached,
               "retried": dict(st.retried), "failed_rows": dict(st.failed), "tokens_in": st.tokens_in,
               "tokens_out": st.tokens_out, "spent_usd": spent, "usd_per_1000_rows": per_row and per_row * 1000,
               "projected_usd": per_row * total_rows if per_row is not None and total_rows else None,
               "projected_rows": total_rows, "no_logprobs": st.no_logprobs}
        out["text"] = format_report(out)
        return out


def format_report(r: dict[str, Any]) -> str:
    def kinds(c: dict[str, int]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))

    retried = sum(r["retried"].values())
    failed = sum(r["failed_rows"].values())
    text = (f"api: {r['requests']:,} requests, {r['answered']:,} rows answered, {r['cached']:,} from the cache; "
            f"retried {retried:,}" + (f" ({kinds(r['retried'])})" if retried else "") +
            f"; rows failed {failed:,}" + (f" ({kinds(r['failed_rows'])})" if failed else "") +
            f"; tokens in {r['tokens_in']:,}, out {r['tokens_out']:,}")
    if r["spent_usd"] is None:
        text += "; cost: set api.price_input_per_million and api.price_output_per_million to see it"
    else:
        text += f"; spent ${r['spent_usd']:,.4f}"
        if r["projected_usd"] is not None:
            text += (f"; all {r['projected_rows']:,} rows of the input would cost ~${r['projected_usd']:,.2f} "
                     f"(${r['usd_per_1000_rows']:,.4f} per 1,000 rows)")
    if r["no_logprobs"]:
        text += f"; no confidences: {r['no_logprobs']}"
    return text


def _server_message(text: str) -> str:
    """The error message of an OpenAI-style error body ({"error": {"message": ...}}), else its start."""
    try:
        obj = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err
        else:
            msg = err
        return " ".join(str(msg).split())[:300]
    return str(obj)[:200]


def _answer_of(reply: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a reply (and cached): text, token log-probabilities, finish reason, token usage."""
    choice = reply["choices"][0]
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict) and logprobs.get("content"):
        logprobs = {"content": [{"token": t.get("token"), "logprob": t.get("logprob")} for t in logprobs["content"]]}
    else:
        logprobs = None
    usage = reply.get("usage") or {}
    return {"text": choice["message"].get("content") or "", "logprobs": logprobs,
            "finish_reason": choice.get("finish_reason"),
            "usage": [int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)]}


def check_config(cfg: dict[str, Any]) -> None:
    Settings.from_config(cfg)


def build(cfg: dict[str, Any]) -> ApiEngine:
    return ApiEngine(cfg)
