"""Concurrent, validated, resumable image download with a manifest (stage 2; inference uses it too).

    python -m amlc.download --input CSV --out DIR [--workers N] [--strict] [--verify]

Reads the CSV's image_link column, fetches every distinct link once into DIR and writes DIR/manifest.csv.
Library: `download(links, out_dir, ...) -> DownloadReport`; the organisers' `download_images(image_links,
download_folder)` keeps its signature (but writes no placeholders).

Files. An image goes to `local_path(link, DIR)`: the link's file name, as the organisers did
(.../I/61I9XdN6OFL.jpg -> DIR/61I9XdN6OFL.jpg), when that name is made only of letters, digits and
`._+-`. Any other name (odd characters, `..`, a query string, a leading dot, too long) is sanitised and
gets `~` plus a hash of the whole link (`a_b~3f2c9e01d4b7a655.jpg`): no link can write outside DIR, and
since a clean name never contains `~`, no two links collide after sanitising. Every file under a final
name is complete and a decodable image: bytes go to a hidden `.amlc-*.part` file first, are validated,
then renamed into place, so a crash or kill -9 never leaves a partial file under a final name.

Manifest (CSV; one row per distinct link, first-seen order):
    image_link  the link (whitespace stripped)
    path        the image file when there is one (status ok or skipped), else ""
    status      ok (fetched and valid) | skipped (already present and valid; not fetched) |
                failed (could not be fetched, or not a valid image) |
                refused (never fetched: empty link, not http/https, or its file name is taken by
                another link of this run)
    bytes       size of the image file (0 when none)
    attempts    HTTP requests made for the link in this run
    error       "" or why, as "kind: detail" (HTTP 404, timeout, not an image, too large, ...)
    mtime_ns    the image file's modification time in ns when it was written or checked (0 when none);
                with `bytes` it lets a rerun trust the file without decoding it again
Downstream stages read a link without an ok/skipped row as "no image": predict empty.

Behaviour. Up to `workers` requests in flight over one pooled keep-alive client (asyncio + aiohttp,
whose C HTTP parser keeps the client's CPU per image low; Pillow decodes in a small thread pool, off the
event loop). HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment are honoured (~/.netrc is not
read). Timeouts, connection errors, cut bodies, 5xx, 408 and 429 are retried with exponential backoff
and jitter, honouring Retry-After; other 4xx (404, 410, ...) are final. A retry waits on a
timer, not in a worker slot, so backoff never idles the pool. Bodies over `max_bytes` and images over
`max_pixels` (decompression bombs) are rejected before they are decoded. Re-running is cheap: a file
already present is skipped without being decoded again when the manifest being replaced recorded it
ok or skipped with the same path, size and modification time (what make and rsync trust); any other
present file is validated (in parallel), and `verify=True` (`--verify`) validates them all. Only
missing or broken files are fetched. An organiser-style black 100x100 placeholder found on disk counts
as missing. Ctrl-C (or SIGTERM for the CLI) stops the run, writes the manifest of what was done, and
exits 130.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import os
import random
import re
import secrets
import signal
import socket
import stat
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from amlc.config import DEFAULTS, load_config
from amlc.errors import ArgumentParser, InputError, cli

if TYPE_CHECKING:  # imported where used: a rerun with every image in place needs none of them
    import asyncio

    import pandas as pd

MANIFEST_COLUMNS = ["image_link", "path", "status", "bytes", "attempts", "error", "mtime_ns"]
STATUSES = ("ok", "skipped", "failed", "refused")

_CLEAN = re.compile(r"[A-Za-z0-9._+-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_NAME = 150
# Names a link must never take: our own manifest, and devices Windows will not let a file be called.
_RESERVED = {"manifest.csv", "con", "prn", "aux", "nul",
             *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_RETRY_STATUS = {408, 425, 429}
_TMP = re.compile(r"^\.amlc-(\d+)-([0-9a-f]{8})-[0-9a-f]+\.part$")
_HOSTKEY = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


class DownloadIncomplete(RuntimeError):
    """Raised by `download(..., strict=True)` when a link failed or was refused (the manifest is written)."""

    def __init__(self, report: "DownloadReport"):
        super().__init__(f"{report.failed} failed and {report.refused} refused of {report.total} links")
        self.report = report


# ---------------------------------------------------------------------------------------------- names

def local_path(link: str, out_dir: str | os.PathLike) -> Path:
    """Where `link`'s image is stored below `out_dir` (see the module docstring for the naming rule)."""
    return Path(out_dir) / _file_name(str(link).strip())


def _file_name(link: str) -> str:
    try:
        parts = urlsplit(link)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: still give it a deterministic safe name
        parts = urlsplit("")
    raw = parts.path.rsplit("/", 1)[-1]
    if (raw and _CLEAN.fullmatch(raw) and not raw.startswith(".") and len(raw) <= _MAX_NAME
            and not parts.query and not parts.fragment
            and raw.lower() not in _RESERVED and raw.split(".")[0].lower() not in _RESERVED):
        return raw
    clean = _UNSAFE.sub("_", raw)
    stem, dot, ext = clean.rpartition(".")
    if not dot or not ext.isalnum() or len(ext) > 5:
        stem, ext = clean, ""
    stem = stem.lstrip(".")[:100] or "image"
    digest = hashlib.sha1(link.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{stem}~{digest}" + (f".{ext}" if ext else "")


def _refusal(link: str) -> str:
    """Why a link is never fetched, or "" when it may be."""
    if not link:
        return "empty link"
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return f"malformed link: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme not allowed: {parts.scheme or 'none'!r} (only http and https are fetched)"
    if not parts.hostname:
        return "malformed link: no host"
    return ""


# ------------------------------------------------------------------------------------------ validation

class BadImage(Exception):
    """The bytes are not an image we accept; the message says why."""


def check_image(source: bytes | str | os.PathLike, max_pixels: int = DEFAULTS["download"]["max_pixels"]
                ) -> tuple[int, int]:
    """Validate an image (bytes or a file) and return its (width, height); raise BadImage otherwise.

    Pillow's verify() checks the structure (PNG CRCs, ...); load() then decodes the pixel data, which is
    what catches a truncated JPEG. JPEGs are decoded in draft mode (1/8 scale, luma only): libjpeg still
    entropy-decodes the whole stream, so truncation is caught at a fraction of the cost of a full decode.
    The pixel count is checked from the header before anything is decoded (decompression bombs).
    """
    from PIL import Image, ImageFile

    def opener():
        return Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning, EXIF warnings: we decide below
            im = opener()
            try:
                width, height = im.size
                if width * height > max_pixels:
                    raise BadImage(f"too many pixels: {width}x{height} exceeds max_pixels {max_pixels}")
                if type(im).verify is not ImageFile.ImageFile.verify:  # PNG: chunk CRCs; a no-op
                    im.verify()                                        # for JPEG/WebP/GIF, so skipped
                    im.close()
                    im = opener()
                if im.format == "JPEG":
                    im.draft("L", (1, 1))
                im.load()
                if (width, height) == (100, 100) and _all_black(im):
                    raise BadImage("placeholder: the organisers' black 100x100 stand-in, not an image")
            finally:
                im.close()
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImage(f"too many pixels: {exc}") from None
    except Image.UnidentifiedImageError:
        head = source[:24] if isinstance(source, (bytes, bytearray)) else b""
        raise BadImage("not an image: unknown format" + (f" (starts {bytes(head)!r})" if head else "")) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad data; all mean "not an image"
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadImage(f"not an image: {text}") from None
    return width, height


def _all_black(im) -> bool:
    lo_hi = im.convert("L").getextrema()
    return lo_hi[1] <= 2


def _store(data: bytes, dest: Path, max_pixels: int) -> None:
    """Validate, then write atomically: a hidden temporary file in the same folder, renamed into place."""
    check_image(data, max_pixels)
    tmp = dest.parent / f".amlc-{os.getpid()}-{_HOSTKEY}-{secrets.token_hex(6)}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _existing_ok(dest: Path, max_pixels: int) -> tuple[bool, str, os.stat_result | None]:
    try:
        st = dest.stat()  # before decoding: a file changed meanwhile is checked again next run
        check_image(dest, max_pixels)
        return True, "", st
    except BadImage as exc:
        return False, str(exc), None
    except OSError as exc:
        return False, f"unreadable: {exc}", None


def _recorded(manifest: Path) -> dict[str, tuple[str, int, int]]:
    """link -> (path, bytes, mtime_ns) of the images a previous run's manifest recorded as valid.

    A missing, unreadable or older manifest (no mtime_ns column) gives nothing to trust: those files
    are validated, and the manifest written now records their times."""
    from amlc.tables import read_table

    try:
        m = read_table(manifest, required=["image_link", "path", "status", "bytes", "mtime_ns"],
                       what="previous manifest", index_column=False, check_entities=False)
    except (InputError, OSError):
        return {}
    out = {}
    for link, path, status, size, mtime in zip(m["image_link"], m["path"], m["status"], m["bytes"],
                                               m["mtime_ns"]):
        if status in ("ok", "skipped") and size.isdigit() and mtime.isdigit() and int(mtime):
            out[link] = (path, int(size), int(mtime))
    return out


def _trust_recorded(task: _Task, record: tuple[str, int, int] | None) -> bool:
    """Mark the task skipped, unread, when task.dest is the very file a previous run recorded valid."""
    if record is None or record[0] != str(task.dest):
        return False
    try:
        st = task.dest.stat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != record[1:]:
        return False
    task.status, task.bytes, task.mtime_ns = "skipped", st.st_size, st.st_mtime_ns
    return True


def _clean_stale_parts(out_dir: Path, names: Iterable[str]) -> int:
    """Remove temporary files left by a killed run: ours from dead processes, anyone's after a day."""
    removed = 0
    now = time.time()
    for name in names:
        m = _TMP.match(name)
        if not m:
            continue
        pid, host = int(m.group(1)), m.group(2)
        path = out_dir / name
        try:
            dead = host == _HOSTKEY and pid != os.getpid() and not _pid_alive(pid)
            if dead or now - path.stat().st_mtime > 86400:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# ------------------------------------------------------------------------------------------- fetching

@dataclass
class _Task:
    link: str
    dest: Path
    present: bool
    attempts: int = 0
    status: str = ""
    bytes: int = 0
    error: str = ""
    note: str = ""
    stored: int = 0  # bytes of the image this run wrote to dest (set in the validating thread)
    mtime_ns: int = 0  # dest's modification time once it holds a valid image


@dataclass
class _Opts:
    workers: int
    timeout: float
    retries: int
    backoff: float
    backoff_max: float
    retry_after_max: float
    max_bytes: int
    max_pixels: int
    validate_threads: int


class _Final(Exception):
    """This attempt's failure will not change on retry."""


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _fetch_once(session, task: _Task, opts: _Opts, proxy: str | None = None) -> bytes:
    import asyncio

    import aiohttp

    try:
        async with session.get(task.link, proxy=proxy) as resp:
            status = resp.status
            if status != 200:
                reason = f"HTTP {status}" + (f" {resp.reason}" if resp.reason else "")
                if status >= 500 or status in _RETRY_STATUS:
                    raise _Retry(reason, _retry_after(resp.headers.get("Retry-After")))
                raise _Final(reason)
            if resp.content_length is not None and resp.content_length > opts.max_bytes:
                raise _Final(f"too large: {resp.content_length} bytes exceeds max_bytes {opts.max_bytes}")
            buf = bytearray()
            async for chunk in resp.content.iter_chunked(1 << 18):
                buf += chunk
                if len(buf) > opts.max_bytes:
                    raise _Final(f"too large: body exceeds max_bytes {opts.max_bytes}")
            return bytes(buf)
    except (_Final, _Retry):
        raise
    except (aiohttp.RedirectClientError, aiohttp.NonHttpUrlClientError) as exc:
        raise _Final(f"bad redirect: {exc}") from None
    except aiohttp.TooManyRedirects:
        raise _Final("bad redirect: too many redirects") from None
    except (aiohttp.InvalidURL, aiohttp.ClientSSLError) as exc:
        raise _Final(f"{type(exc).__name__}: {exc}") from None
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        raise _Retry(f"timeout: no answer within {opts.timeout:g} s") from None
    except aiohttp.ClientPayloadError as exc:
        raise _Retry(f"cut transfer: {str(exc).split(':', 1)[0]}") from None
    except aiohttp.ServerDisconnectedError:
        raise _Retry("connection error: server disconnected") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise _Retry(f"connection error: {exc or type(exc).__name__}") from None


def _backoff(attempt: int, opts: _Opts) -> float:
    return min(opts.backoff_max, opts.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def _stop_on_sigterm(loop: asyncio.AbstractEventLoop, stop: threading.Event) -> Callable[[], None]:
    """While the loop runs, a SIGTERM that the caller maps to KeyboardInterrupt (the CLIs install
    signal.default_int_handler) sets `stop` instead of raising wherever the main thread happens to be:
    raised inside the event loop's or the executor's bookkeeping it hung a run now and then, where a
    stop goes through the same clean path as Ctrl-C (which asyncio.run turns into a cancellation).
    Returns the function that puts the caller's handler back."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.default_int_handler):
        return lambda: None
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # a loop without signal support
        return lambda: None

    def restore() -> None:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    return restore


def _store_for(task: _Task, data: bytes, max_pixels: int) -> None:
    _store(data, task.dest, max_pixels)
    task.mtime_ns = task.dest.stat().st_mtime_ns
    task.stored = len(data)  # before the loop hears of it: a stop may cancel the worker meanwhile


async def _fetch_all(tasks: list[_Task], opts: _Opts, bar, stop: threading.Event) -> None:
    """Run every task to a final status (or until cancelled / `stop` is set)."""
    import asyncio
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    import aiohttp

    if not tasks:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Task] = asyncio.Queue()
    for task in tasks:
        queue.put_nowait(task)
    remaining = len(tasks)
    all_done = asyncio.Event()
    counts: Counter[str] = Counter()

    def finish(task: _Task, status: str, error: str = "") -> None:
        nonlocal remaining
        task.status, task.error = status, error
        remaining -= 1
        counts[status] += 1
        bar.update(1)
        if remaining % 50 == 0 or remaining == 0:
            bar.set_postfix({k: counts[k] for k in ("ok", "skipped", "failed") if counts[k]}, refresh=False)
        if remaining == 0:
            all_done.set()

    pool = ThreadPoolExecutor(max_workers=opts.validate_threads, thread_name_prefix="amlc-validate")
    timeout = aiohttp.ClientTimeout(total=10 * opts.timeout, sock_connect=opts.timeout,
                                    sock_read=opts.timeout)
    connector = aiohttp.TCPConnector(limit=opts.workers, ttl_dns_cache=300)
    headers = {"User-Agent": "amlc-downloader/0.1", "Accept-Encoding": "identity"}
    # Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), read once. aiohttp's own
    # trust_env=True re-reads them, and looks for ~/.netrc in a thread, on every request: measured,
    # 0.3 ms of CPU per image (the fetch side's 0.77 -> 0.44 ms), a tenth of the whole client's.
    proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")}
    proxy_of: dict[tuple[str, str], str | None] = {}

    def proxy_for(link: str) -> str | None:
        if not proxies:
            return None
        parts = urlsplit(link)
        key = (parts.scheme.lower(), parts.netloc)
        if key not in proxy_of:
            bypass = urllib.request.proxy_bypass(parts.hostname or "")
            proxy_of[key] = None if bypass else proxies.get(key[0])
        return proxy_of[key]

    async def worker(session) -> None:
        while True:
            task = await queue.get()
            if task.present:  # a file is there already: keep it if it is a valid image
                task.present = False
                ok, why, st = await loop.run_in_executor(pool, _existing_ok, task.dest, opts.max_pixels)
                if ok:
                    task.bytes, task.mtime_ns = st.st_size, st.st_mtime_ns
                    finish(task, "skipped")
                    continue
                task.note = f" (replaced an invalid file: {why})"
            if stop.is_set():
                return
            task.attempts += 1
            try:
                data = await _fetch_once(session, task, opts, proxy_for(task.link))
                await loop.run_in_executor(pool, _store_for, task, data, opts.max_pixels)
            except _Retry as exc:
                if task.attempts > opts.retries:
                    finish(task, "failed", f"{exc} (gave up after {task.attempts} attempts){task.note}")
                    continue
                delay = _backoff(task.attempts, opts)
                if exc.retry_after is not None:
                    if exc.retry_after > opts.retry_after_max:
                        finish(task, "failed", f"{exc}: Retry-After {exc.retry_after:g} s exceeds "
                                               f"retry_after_max {opts.retry_after_max:g} s{task.note}")
                        continue
                    delay = max(delay, exc.retry_after)
                task.error = str(exc)
                loop.call_later(delay, queue.put_nowait, task)
            except (_Final, BadImage) as exc:
                finish(task, "failed", f"{exc}{task.note}")
            except OSError as exc:  # the disk, not the network: out of space, permissions
                finish(task, "failed", f"write error: {exc}{task.note}")
            except Exception as exc:  # noqa: BLE001 - one odd link must not stop a worker (and the run)
                finish(task, "failed", f"unexpected error: {type(exc).__name__}: {exc}{task.note}")
            else:
                task.bytes = len(data)
                finish(task, "ok")

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(min(opts.workers, len(tasks)))]
        restore_sigterm = _stop_on_sigterm(loop, stop)
        try:
            while not all_done.is_set() and not stop.is_set():
                try:
                    await asyncio.wait_for(all_done.wait(), timeout=0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            pool.shutdown(wait=True)  # a validation in flight finishes its atomic write, or not at all
            restore_sigterm()


def _run_loop(tasks: list[_Task], opts: _Opts, bar) -> None:
    """Run `_fetch_all`, in this thread unless an event loop already runs here (Jupyter): then in one."""
    import asyncio

    stop = threading.Event()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_fetch_all(tasks, opts, bar, stop))
        if stop.is_set():  # stopped by SIGTERM (_stop_on_sigterm): the caller sees an interrupt
            raise KeyboardInterrupt from None
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_fetch_all(tasks, opts, bar, stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="amlc-download", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        thread.join()
        raise
    if errors:
        raise errors[0]


# ------------------------------------------------------------------------------------------ the stage

@dataclass
class DownloadReport:
    """What a download did: the manifest (one row per distinct link) and its counts."""

    rows: list[dict[str, Any]]  # the manifest's rows, keyed by MANIFEST_COLUMNS
    manifest_path: Path | None
    elapsed_s: float
    duplicates: int = 0  # input links that repeated an earlier one (fetched once)
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        found = Counter(r["status"] for r in self.rows)
        self.counts = {s: found[s] for s in STATUSES}

    ok = property(lambda self: self.counts["ok"])
    skipped = property(lambda self: self.counts["skipped"])
    failed = property(lambda self: self.counts["failed"])
    refused = property(lambda self: self.counts["refused"])
    total = property(lambda self: len(self.rows))

    @functools.cached_property
    def manifest(self) -> pd.DataFrame:
        """The manifest as a DataFrame. pandas is imported here, on first use, so that the CLI (a rerun
        over images already in place, above all) never pays the ~0.3-1 s it takes to import."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=MANIFEST_COLUMNS).astype(
            {"bytes": "int64", "attempts": "int64", "mtime_ns": "int64"})

    @property
    def available(self) -> dict[str, Path]:
        """link -> image file, for every link whose image is on disk and valid."""
        return {r["image_link"]: Path(r["path"]) for r in self.rows if r["status"] in ("ok", "skipped")}

    def why(self) -> str:
        """The failed and refused links counted by kind of error ("HTTP 404 x3, timeout x1"), or ""."""
        kinds = Counter(r["error"].split(":", 1)[0].split(" (", 1)[0] for r in self.rows
                        if r["status"] in ("failed", "refused"))
        return ", ".join(f"{k} x{n}" for k, n in kinds.most_common())

    def summary(self) -> str:
        c = self.counts
        rate = c["ok"] / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = [f"download: {c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed, "
                 f"{c['refused']} refused of {self.total} links"
                 + (f" ({self.duplicates} duplicates fetched once)" if self.duplicates else "")
                 + f" in {self.elapsed_s:.1f} s ({rate:.0f} img/s fetched)"
                 + (" -- INTERRUPTED" if self.interrupted else "")]
        why = self.why()
        if why:
            lines.append(f"  why: {why}")
        if self.manifest_path is not None:
            lines.append(f"  manifest: {self.manifest_path}")
        return "\n".join(lines)


def download(
    links: Iterable[Any],
    out_dir: str | os.PathLike,
    *,
    workers: int = DEFAULTS["download"]["workers"],
    timeout: float = DEFAULTS["download"]["timeout"],
    retries: int = DEFAULTS["download"]["retries"],
    progress: bool = True,
    manifest_path: str | os.PathLike | None = None,
    strict: bool = False,
    backoff: float = DEFAULTS["download"]["backoff"],
    backoff_max: float = DEFAULTS["download"]["backoff_max"],
    retry_after_max: float = DEFAULTS["download"]["retry_after_max"],
    max_bytes: int = DEFAULTS["download"]["max_bytes"],
    max_pixels: int = DEFAULTS["download"]["max_pixels"],
    validate_threads: int = DEFAULTS["download"]["validate_threads"],
    verify: bool = False,
    summary: bool | None = None,
) -> DownloadReport:
    """Fetch every distinct link into `out_dir`; write the manifest (default `out_dir/manifest.csv`).

    The keyword names match the config's `download` section, so `download(links, d, **cfg["download"])`
    works. Processes sharing one `out_dir` (inference shards) should each pass their own `manifest_path`.
    `progress`: show a progress bar; `summary`: print the summary (stderr; default: as `progress`).
    `verify`: validate every file already present, even those the manifest being replaced recorded
    valid with the same size and modification time (by default trusted unread). `strict`: raise
    DownloadIncomplete (after writing the manifest) when any link failed or was refused. Ctrl-C
    writes the manifest of what was done (unfinished links: failed, "interrupted") and re-raises
    KeyboardInterrupt.
    """
    from tqdm import tqdm

    started = time.monotonic()
    if workers < 1 or retries < 0 or timeout <= 0 or max_bytes < 1 or max_pixels < 1:
        raise InputError("download needs workers >= 1, retries >= 0, timeout > 0, max_bytes and "
                         f"max_pixels >= 1 (got workers={workers}, retries={retries}, timeout={timeout})")
    out_dir = Path(out_dir).expanduser().resolve()
    present_names, fold = _prepare_dir(out_dir)
    opts = _Opts(workers=workers, timeout=float(timeout), retries=retries, backoff=float(backoff),
                 backoff_max=float(backoff_max), retry_after_max=float(retry_after_max),
                 max_bytes=int(max_bytes), max_pixels=int(max_pixels),
                 validate_threads=validate_threads or min(8, os.cpu_count() or 1))

    mpath = Path(manifest_path) if manifest_path is not None else out_dir / "manifest.csv"
    recorded = {} if verify else _recorded(mpath)
    rows: dict[str, _Task] = {}
    owner: dict[str, str] = {}  # file name (case-folded on case-insensitive disks) -> link owning it
    duplicates = 0
    todo: list[_Task] = []
    for raw in links:
        link = raw.strip() if isinstance(raw, str) else ""
        if link in rows:
            duplicates += 1
            continue
        name = _file_name(link)
        task = _Task(link=link, dest=out_dir / name, present=name in present_names)
        rows[link] = task
        why = _refusal(link)
        key = name.casefold() if fold else name
        if not why and key in owner:
            why = f"name taken: file {name} already belongs to {owner[key]}"
        if why:
            task.status, task.error = "refused", why
            continue
        owner[key] = link
        todo.append(task)
    trusted = sum(_trust_recorded(t, recorded.get(t.link)) for t in todo if t.present)
    # Present files first: validating them is quick and the bar then shows the real fetch rate.
    fetch = sorted((t for t in todo if not t.status), key=lambda t: not t.present)

    interrupted = False
    bar = tqdm(total=len(todo), initial=trusted, unit="img", desc="download", disable=not progress,
               dynamic_ncols=True, smoothing=0.05, file=sys.stderr)
    try:
        if fetch:  # a rerun with every image in place starts no event loop and imports no aiohttp
            _run_loop(fetch, opts, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()

    for task in todo:
        if not task.status and task.stored:  # written as the run stopped, before it was counted
            task.status, task.bytes, task.error = "ok", task.stored, ""
        if not task.status:
            task.status = "failed"
            task.error = "interrupted: the run stopped before this link finished" + (
                f" (last error: {task.error})" if task.error else "")
    manifest = [{"image_link": t.link, "path": str(t.dest) if t.status in ("ok", "skipped") else "",
                 "status": t.status, "bytes": t.bytes if t.status in ("ok", "skipped") else 0,
                 "attempts": t.attempts, "error": t.error,
                 "mtime_ns": t.mtime_ns if t.status in ("ok", "skipped") else 0} for t in rows.values()]
    from amlc.tables import atomic_open

    with atomic_open(mpath, newline="") as fh:  # the csv module writes what pandas' to_csv would
        writer = csv.DictWriter(fh, MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest)
    report = DownloadReport(rows=manifest, manifest_path=mpath, elapsed_s=time.monotonic() - started,
                            duplicates=duplicates, interrupted=interrupted)
    if progress if summary is None else summary:
        print(report.summary(), file=sys.stderr, flush=True)
    if interrupted:
        raise KeyboardInterrupt
    if strict and (report.failed or report.refused):
        raise DownloadIncomplete(report)
    return report


def _prepare_dir(out_dir: Path) -> tuple[set[str], bool]:
    """Create `out_dir`, prove it is writable, clear stale temporaries; return the names present and
    whether the disk folds case (then Foo.jpg and foo.jpg are one file and must not both be fetched)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".amlc-probe-{os.getpid()}-{secrets.token_hex(4)}-Aa"
        probe.write_bytes(b"")
        try:
            fold = (out_dir / probe.name.replace("-Aa", "-aA")).exists()
        finally:
            probe.unlink(missing_ok=True)
        names = [e.name for e in os.scandir(out_dir)]
    except OSError as exc:
        raise InputError(f"cannot write to the download folder {out_dir}: {exc.strerror or exc}") from None
    _clean_stale_parts(out_dir, names)
    return {n for n in names if not n.startswith(".")}, fold


def download_images(image_links, download_folder, allow_multiprocessing=True) -> DownloadReport:
    """The organisers' helper, same signature: fetch `image_links` into `download_folder`.

    Unlike theirs, a failed link leaves no black placeholder image: it is recorded in
    download_folder/manifest.csv and simply has no file.
    """
    workers = DEFAULTS["download"]["workers"] if allow_multiprocessing else 1
    return download(list(image_links), download_folder, workers=workers)


# ------------------------------------------------------------------------------------------------ CLI

def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS["download"]
    p = ArgumentParser(
        prog="python -m amlc.download",
        description="Fetch the images of a CSV's image_link column into a folder, validated and "
                    "resumable, and write a manifest (image_link, path, status, bytes, attempts, error, "
                    "mtime_ns). "
                    "Exit 0 when the run finished (dead links are normal and listed in the manifest), "
                    "2 on bad input or an unwritable folder, 1 with --strict when a link failed, "
                    "130 when interrupted.")
    p.add_argument("--input", required=True, help="CSV file with an image_link column (train, test, sample)")
    p.add_argument("--out", required=True, help="folder for the images; created if missing; files already "
                                                "there and valid are kept, not fetched again")
    p.add_argument("--manifest", help="where to write the manifest CSV (default: OUT/manifest.csv)")
    p.add_argument("--config", help="YAML config whose download section gives the defaults below")
    p.add_argument("--workers", type=int, help=f"requests in flight at once (default {d['workers']})")
    p.add_argument("--timeout", type=float,
                   help=f"seconds to connect, and of silence while reading, before an attempt is "
                        f"retried (default {d['timeout']:g})")
    p.add_argument("--retries", type=int,
                   help=f"extra attempts after a timeout, connection error, 5xx or 429 (default {d['retries']})")
    p.add_argument("--max-bytes", type=int, help=f"reject bodies larger than this (default {d['max_bytes']})")
    p.add_argument("--max-pixels", type=int,
                   help=f"reject images with more pixels than this (default {d['max_pixels']})")
    p.add_argument("--strict", action="store_true", help="exit 1 if any link failed or was refused")
    p.add_argument("--verify", action="store_true",
                   help="decode every image already in OUT again; by default a file the manifest "
                        "recorded valid, with the same size and modification time, is trusted unread")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (the summary at the end is still printed)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config)["download"] if args.config else dict(DEFAULTS["download"])
    for key in ("workers", "timeout", "retries", "max_bytes", "max_pixels"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    from amlc.tables import read_table

    links = read_table(args.input, required=["image_link"], what="input CSV", check_entities=False,
                       usecols=["image_link"])["image_link"]
    # SIGTERM (a batch scheduler, `kill`) stops as cleanly as Ctrl-C: manifest written, no partial file.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        download(links, args.out, progress=not args.no_progress, summary=True,
                 manifest_path=args.manifest, strict=args.strict, verify=args.verify, **cfg)
    except DownloadIncomplete:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
