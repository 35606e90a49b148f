"""Downloader throughput and fault recovery against a local CDN, next to the organisers' way, one run.

    PYTHONPATH=src python bench/bench_download.py [--images 2000] [--latency 0.05] [--rounds 3]

A server process serves --images JPEGs of ~100 KB (64 distinct 700x700 photos with sensor noise, under
distinct names), answering every request after --latency seconds: bench/leancdn.py (a raw asyncio
server, ~0.1-0.2 ms of CPU per request) for the throughput runs, tests/imageserver.py (scripted
faults; 0.35-0.55 ms per request) for the fault run.

0. floors: the CPU one image costs whoever fetches it, measured in this process on these images:
   validating it (amlc.download.check_image) and creating + writing + renaming its file in the
   benchmark's folder (the file system's cost; both clients create one file per image).
1. clean: images/s of amlc.download (its defaults unless --workers / --validate-threads; validates every
   image, writes atomically, writes its manifest) and of the baseline built the organisers' way, a
   multiprocessing Pool(64) calling urllib.request.urlretrieve (no validation). Rounds alternate
   baseline/ours so that machine load hits both alike. Per round: client CPU ms per image (all its
   processes and threads), the server's CPU ms per request, and the 1-minute load average at its end.
   Then, per client, the two ceilings it cannot beat: requests in flight / latency, and
   CPUs x 1000 / (client + server CPU ms per image) when the client and the server share the CPUs.
2. the same once more with --connect-latency extra on the first request of every connection, as the
   TCP + TLS handshakes of a real https link cost (0.1 s = two more round trips at 50 ms). The
   baseline opens a connection per image; ours reuses them. Printed apart: it is not the target's setup.
3. faults: 10% of the links fail transiently (a mix of 500, 503, 429 + Retry-After: 1, connection
   reset, cut body; 1 or 2 failures, then the image). Reported: how many of these recoverable images
   end up on disk and valid, for ours and for the organisers' own helper (urlretrieve, 3 tries 3 s
   apart, then a black placeholder), and how many fake or corrupt files each leaves.

--diagnose adds, to scenario 1, amlc.download with validation switched off (a diagnostic, not a mode
of the product): the gap to the validating run is what validation costs. TMPDIR=/dev/shm writes the
images to memory, taking the disk's cost per file (large and variable on some virtual disks) out of
both clients' figures.

Speed depends on the machine and on what else runs on it: compare ours with the baseline of the same
run, and read the CPU ms per image, which load changes far less than images/s. On few cores both
clients are CPU-bound and the ratio of their rates is the inverse ratio of their CPU per image (server
included); ours spends the floors' validation on top of what the baseline spends.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from amlc.config import DEFAULTS  # noqa: E402
import amlc.download as amlc_download  # noqa: E402
from amlc.download import BadImage, check_image, download  # noqa: E402
import imageserver  # noqa: E402
import leancdn  # noqa: E402
from imageserver import make_jpeg  # noqa: E402

FAULTS = ["500,ok", "503,ok", "429:1,ok", "reset,ok", "trunc,ok", "500,503,ok", "reset,trunc,ok"]
CTX = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()


def _baseline_fetch(args: tuple[str, str]) -> bool:
    link, folder = args
    try:
        urllib.request.urlretrieve(link, os.path.join(folder, Path(link).name))
        return True
    except Exception:  # noqa: BLE001 - the baseline counts failures, nothing more
        return False


def _organiser_fetch(args: tuple[str, str]) -> None:
    """The organisers' download_image: 3 tries 3 s apart, then a black 100x100 placeholder."""
    from PIL import Image

    link, folder = args
    path = os.path.join(folder, Path(link).name)
    if os.path.exists(path):
        return
    for _ in range(3):
        try:
            urllib.request.urlretrieve(link, path)
            return
        except Exception:  # noqa: BLE001 - theirs is a bare except
            time.sleep(3)
    Image.new("RGB", (100, 100), color="black").save(path)


class Server:
    """The image server in its own process, so that its CPU is not charged to either client."""

    def __init__(self, images: dict[str, bytes], latency: float, connect_latency: float = 0.0,
                 lean: bool = True):
        here, there = CTX.Pipe()
        target = (leancdn if lean else imageserver).serve_in_process
        self.proc = CTX.Process(target=target, args=(latency, images, there, connect_latency), daemon=True)
        self.proc.start()
        self.base = f"http://127.0.0.1:{here.recv()}"

    def cpu(self) -> float:
        """The lean server's CPU seconds so far."""
        with urllib.request.urlopen(f"{self.base}/_cpu") as resp:
            return float(resp.read())

    def close(self) -> None:
        self.proc.kill()
        self.proc.join()


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


WORKERS = DEFAULTS["download"]["workers"]
VALIDATE_THREADS = DEFAULTS["download"]["validate_threads"]
BASELINE_POOL = 64


def run(who: str, links: list[str], folder: Path) -> tuple[float, float]:
    """Fetch `links` into `folder` with one client; return (seconds, client CPU seconds)."""
    folder.mkdir(parents=True)
    c0, t0 = cpu_now(), time.perf_counter()
    if who == "unvalidated":  # diagnostic: what validating costs ours, by leaving it out
        real = amlc_download.check_image
        amlc_download.check_image = lambda data, max_pixels=0: (0, 0)
        try:
            report = download(links, folder, progress=False, workers=WORKERS,
                              validate_threads=VALIDATE_THREADS)
        finally:
            amlc_download.check_image = real
        assert report.ok + report.failed == len(links), report.summary()
    elif who == "ours":
        report = download(links, folder, progress=False, workers=WORKERS, validate_threads=VALIDATE_THREADS)
        assert report.ok + report.failed == len(links), report.summary()
    else:
        fn = _baseline_fetch if who == "baseline" else _organiser_fetch
        with CTX.Pool(BASELINE_POOL) as pool:
            list(pool.imap(fn, [(link, str(folder)) for link in links]))
    return time.perf_counter() - t0, cpu_now() - c0


def audit(folder: Path, names: list[str]) -> dict[str, int]:
    """What is on disk for `names`: valid images, placeholders, corrupt files, missing."""
    out = {"valid": 0, "placeholder": 0, "corrupt": 0, "missing": 0}
    for name in names:
        p = folder / name
        if not p.exists():
            out["missing"] += 1
            continue
        try:
            check_image(p)
            out["valid"] += 1
        except BadImage as exc:
            out["placeholder" if str(exc).startswith("placeholder") else "corrupt"] += 1
    return out


LABEL = {"baseline": "baseline Pool(64)+urlretrieve", "ours": "amlc.download",
         "unvalidated": "amlc.download, NOT validating",
         "organisers": "organisers' helper"}


def floors(images: dict[str, bytes], work: Path, n: int = 300, files: int = 1000) -> None:
    """Print the CPU ms per image that validation and file creation cost, measured one at a time."""
    data = list(images.values())[:n]
    c0 = time.process_time()
    for d in data:
        check_image(d)
    validate = (time.process_time() - c0) / len(data) * 1000
    folder = work / "floor"
    folder.mkdir()
    data = list(images.values())[:files]
    c0 = time.process_time()
    for i, d in enumerate(data):
        tmp = folder / f".part{i}"
        with open(tmp, "wb") as fh:
            fh.write(d)
        os.replace(tmp, folder / f"f{i}.jpg")
    write = (time.process_time() - c0) / len(data) * 1000
    shutil.rmtree(folder)
    print(f"\n0. CPU floors per image (one thread, load average {os.getloadavg()[0]:.1f}): validate "
          f"{validate:.2f} ms (JPEG draft decode), create + write + rename its file {write:.2f} ms "
          f"(in {work.parent})")


def clean_rounds(title: str, server: Server, names: list[str], rounds: int, work: Path,
                 latency: float, connect_latency: float = 0.0, diagnose: bool = False) -> float:
    print(f"\n{title}\n{'':<38}{'images/s':>10}{'seconds':>9}{'CPU ms/img':>12}{'server ms':>11}"
          f"{'load':>6}{'valid on disk':>15}")
    links = [f"{server.base}/img/{n}" for n in names]
    clients = ("baseline", "ours") + (("unvalidated",) if diagnose else ())
    rates: dict[str, list[float]] = {who: [] for who in clients}
    cpu_ms: dict[str, list[float]] = {who: [] for who in clients}
    for rnd in range(rounds):
        for who in clients:
            folder = work / f"{who}-{rnd}"
            s0 = server.cpu()
            secs, cpu = run(who, links, folder)
            server_ms = (server.cpu() - s0) / len(links) * 1000
            valid = audit(folder, names)["valid"]
            rates[who].append(len(links) / secs)
            cpu_ms[who].append(cpu / len(links) * 1000 + server_ms)
            print(f"{LABEL[who] + f' (round {rnd + 1})':<38}{len(links) / secs:>10.0f}{secs:>9.2f}"
                  f"{cpu / len(links) * 1000:>12.2f}{server_ms:>11.2f}{os.getloadavg()[0]:>6.1f}"
                  f"{valid:>9}/{len(links)}", flush=True)
            shutil.rmtree(folder)
    ratio = max(rates["ours"]) / max(rates["baseline"])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(f"ours / baseline: {ratio:.2f}x best round vs best round, "
          f"{mean(rates['ours']) / mean(rates['baseline']):.2f}x mean vs mean")
    cpus = os.cpu_count() or 1
    # The baseline opens a connection per image (pays connect_latency every time); ours reuses them.
    for who, in_flight, wait in (("baseline", BASELINE_POOL, latency + connect_latency),
                                 ("ours", WORKERS, latency), ("unvalidated", WORKERS, latency)):
        if who not in clients:
            continue
        best = min(cpu_ms[who])
        print(f"  ceilings, {LABEL[who]}: {in_flight / wait:.0f} img/s from {in_flight} in flight, "
              f"{cpus * 1000 / best:.0f} img/s from {cpus} CPUs at {best:.2f} CPU ms/img "
              f"(client + server, best round)")
    return ratio


def main() -> None:
    global WORKERS, VALIDATE_THREADS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds the server waits per request")
    ap.add_argument("--connect-latency", type=float, default=0.1,
                    help="extra seconds on a connection's first request in scenario 2 (0: skip it)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating baseline/ours rounds (scenario 1)")
    ap.add_argument("--workers", type=int, default=WORKERS,
                    help=f"amlc.download requests in flight (default: its default, {WORKERS})")
    ap.add_argument("--validate-threads", type=int, default=VALIDATE_THREADS,
                    help="amlc.download validation threads (default: its default, "
                         f"{VALIDATE_THREADS or 'one per CPU'})")
    ap.add_argument("--skip-faults", action="store_true", help="throughput only (scenarios 0-2)")
    ap.add_argument("--diagnose", action="store_true",
                    help="scenario 1 also runs amlc.download with validation switched off (a diagnostic, "
                         "not a mode of the product): the difference is what validating costs")
    args = ap.parse_args()
    WORKERS, VALIDATE_THREADS = args.workers, args.validate_threads

    distinct = [make_jpeg(f"bench{i}", size=(700, 700), noise=0.1) for i in range(64)]
    images = {f"b{i:05d}.jpg": distinct[i % len(distinct)] for i in range(args.images)}
    names = list(images)
    mean_kb = sum(map(len, images.values())) / len(images) / 1024
    work = Path(tempfile.mkdtemp(prefix="amlc-bench-"))
    print(f"{len(images)} JPEGs of {mean_kb:.0f} KB on average; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start; amlc.download with {WORKERS} requests in flight and "
          f"{VALIDATE_THREADS or 'one per CPU'} validation threads, every image validated")
    try:
        floors(images, work)
        server = Server(images, args.latency)
        clean_rounds(f"1. clean, {args.latency * 1000:.0f} ms per request", server, names, args.rounds, work,
                     args.latency, diagnose=args.diagnose)
        server.close()
        if args.connect_latency:
            server = Server(images, args.latency, args.connect_latency)
            clean_rounds(f"2. clean, {args.latency * 1000:.0f} ms per request + "
                         f"{args.connect_latency * 1000:.0f} ms per new connection (handshakes)",
                         server, names, 1, work, args.latency, args.connect_latency)
            server.close()
        if args.skip_faults:
            return

        rng = random.Random(0)
        flaky = sorted(rng.sample(range(len(names)), len(names) // 10))
        scripts = {names[i]: rng.choice(FAULTS) for i in flaky}
        flaky_names = [names[i] for i in flaky]
        print(f"\n3. {len(flaky)} of {len(names)} links (10%) fail 1-2 times, then serve the image\n"
              f"{'':<38}{'recovered':>12}{'valid on disk':>15}{'fake/corrupt':>14}{'seconds':>9}")
        for who in ("ours", "organisers"):
            server = Server(images, args.latency, lean=False)  # fresh per client: scripts count per path
            links = [f"{server.base}/s/{scripts[n]}/{n}" if n in scripts else f"{server.base}/img/{n}"
                     for n in names]
            folder = work / f"faults-{who}"
            secs, _ = run(who, links, folder)
            a_flaky, a_all = audit(folder, flaky_names), audit(folder, names)
            print(f"{LABEL[who]:<38}{a_flaky['valid']:>7}/{len(flaky):<4} ({100 * a_flaky['valid'] / len(flaky):.0f}%)"
                  f"{a_all['valid']:>6}/{len(names):<5}{a_all['placeholder'] + a_all['corrupt']:>11}"
                  f"{secs:>9.1f}", flush=True)
            shutil.rmtree(folder)
            server.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
