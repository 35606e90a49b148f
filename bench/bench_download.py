"""Downloader throughput, reruns and fault recovery against a local CDN, next to the organisers' way.

    PYTHONPATH=src python bench/bench_download.py [--images 2000] [--latency 0.05]
        [--connect-latency 0.1] [--rounds 5] [--workers 64] [--tls-images 300]

A server process serves --images JPEGs of ~100 KB (64 distinct 700x700 photos with sensor noise, under
distinct names) the way a real CDN answers: every request waits --latency seconds (50 ms), and the
first one on each new connection --connect-latency more (100 ms: the TCP and TLS 1.3 handshakes, two
round trips, which loopback would otherwise make free). A real image CDN is also HTTPS, which costs
CPU no delay models: scenario 2 serves HTTPS for real. bench/leancdn.py (a raw asyncio server, ~0.1-0.2
ms of CPU per plain request) serves the throughput runs, tests/imageserver.py (scripted faults) the
fault run. --connect-latency 0 gives the loopback figures of earlier versions.

0. floors: the CPU one image costs whoever fetches it, measured in this process on these images:
   validating it (amlc.download.check_image) and creating + writing + renaming its file in the
   benchmark's folder (the file system's cost; both clients create one file per image); and creating
   one default SSL context (Python's ssl loading the CA store), which urllib does for every https
   connection and so the organisers' way for every image.
1. CDN, plain HTTP: images/s of amlc.download (validates every image, writes atomically, writes its
   manifest) and of the baseline built the organisers' way (their src/utils.py: a multiprocessing
   Pool(64) calling urllib.request.urlretrieve, a new connection per image, no validation), both with
   64 requests in flight (--workers; amlc.download's own default is 128). --rounds rounds alternate
   baseline/ours so that machine load hits both alike; printed: the median images/s of each over the
   rounds and the ratio of the medians. Per round: client CPU ms per image (all its processes and
   threads), the server's CPU ms per request, the connections the client opened (ours reuses them;
   the baseline opens one per image), and the 1-minute load average at its end. Then, per client, the
   two ceilings it cannot beat: requests in flight / (latency per image), and CPUs x 1000 / (client +
   server CPU ms per image) when the client and the server share the CPUs.
2. CDN, HTTPS: the same over real TLS 1.3 (a throwaway self-signed ECDSA certificate, trusted through
   SSL_CERT_FILE as a copy of the system's CA bundle plus it, so that loading the CA store costs what
   it costs on this machine), on the first --tls-images images: the baseline's CPU per image is far
   larger there, so fewer images keep the run short. Needs the `cryptography` package (ms-swift
   brings it); skipped without it, or with --tls-images 0.
3. rerun: amlc.download again over scenario 1's last folder, every image present and recorded ok in
   its manifest: the median seconds of --rounds download() calls (reading the old manifest, checking
   every file's size and time, writing the new one), the whole `python -m amlc.download` command once
   (interpreter start and imports included), and one download(verify=True), which decodes every image.
4. faults (plain HTTP, same delays): 10% of the links fail transiently (a mix of 500, 503, 429 +
   Retry-After: 1, connection reset, cut body; 1 or 2 failures, then the image). Reported: how many
   of these recoverable images end up on disk and valid, for ours and for the organisers' own helper
   (urlretrieve, 3 tries 3 s apart, then a black placeholder), and how many fake or corrupt files
   each leaves.

--diagnose adds, to scenario 1, amlc.download with validation switched off (a diagnostic, not a mode
of the product): the gap to the validating run is what validation costs. TMPDIR=/dev/shm writes the
images to memory, taking the disk's cost per file (large and variable on some virtual disks) out of
both clients' figures.

Speed depends on the machine and on what else runs on it: compare ours with the baseline of the same
run, and read the CPU ms per image, which load changes far less than images/s. On few cores both
clients are CPU-bound and the ratio of their rates is the inverse ratio of their CPU per image (server
included); ours spends the floors' validation on top of what the baseline spends, the baseline over
HTTPS an SSL context and a TLS handshake per image.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
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
                 lean: bool = True, tls: tuple[str, str] | None = None):
        here, there = CTX.Pipe()
        if lean:
            target, args = leancdn.serve_in_process, (latency, images, there, connect_latency, tls)
        else:
            target, args = imageserver.serve_in_process, (latency, images, there, connect_latency)
        self.proc = CTX.Process(target=target, args=args, daemon=True)
        self.proc.start()
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{here.recv()}"

    def stats(self) -> tuple[float, int]:
        """The lean server's CPU seconds so far and the connections it accepted, this query's excluded."""
        with urllib.request.urlopen(f"{self.base}/_stats") as resp:
            got = json.loads(resp.read())
        return got["cpu"], got["connections"] - 1

    def close(self) -> None:
        self.proc.kill()
        self.proc.join()


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def make_tls(work: Path) -> tuple[tuple[str, str], str] | None:
    """A self-signed ECDSA certificate for 127.0.0.1 and a CA bundle (the system's, else certifi's,
    plus it) that the clients trust through SSL_CERT_FILE; None without the cryptography package."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    import datetime
    import ipaddress
    import ssl

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amlc bench CDN")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (work / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (work / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    system = ssl.get_default_verify_paths().cafile
    if not system:
        try:
            import certifi

            system = certifi.where()
        except ImportError:
            system = None
    bundle = (Path(system).read_bytes() + b"\n" if system else b"") + (work / "cert.pem").read_bytes()
    (work / "ca.pem").write_bytes(bundle)
    return (str(work / "cert.pem"), str(work / "key.pem")), str(work / "ca.pem")


BASELINE_POOL = 64  # the organisers' multiprocessing.Pool(64)
WORKERS = BASELINE_POOL  # amlc.download's requests in flight here: the baseline's, for a fair race
VALIDATE_THREADS = DEFAULTS["download"]["validate_threads"]


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
    import ssl

    c0 = time.process_time()
    for _ in range(5):
        context = ssl.create_default_context()
    tls = (time.process_time() - c0) / 5 * 1000
    print(f"\n0. CPU floors per image (one thread, load average {os.getloadavg()[0]:.1f}): validate "
          f"{validate:.2f} ms (JPEG draft decode), create + write + rename its file {write:.2f} ms "
          f"(in {work.parent}); a default SSL context {tls:.1f} ms ({len(context.get_ca_certs())} CA "
          f"certificates loaded; urllib makes one per https connection)")


def cdn_rounds(title: str, server: Server, names: list[str], rounds: int, work: Path, latency: float,
               connect_latency: float, diagnose: bool = False) -> Path:
    """Scenarios 1 and 2; returns the last round's folder of ours (kept for the rerun scenario)."""
    print(f"\n{title}: {len(names)} images, {latency * 1000:.0f} ms per request + "
          f"{connect_latency * 1000:.0f} ms per new connection (TCP + TLS round trips), {BASELINE_POOL} "
          f"requests in flight for the baseline, {WORKERS} for ours, {rounds} rounds\n"
          f"{'':<38}{'images/s':>10}{'seconds':>9}{'CPU ms/img':>12}"
          f"{'server ms':>11}{'conns':>7}{'load':>6}{'valid on disk':>15}")
    links = [f"{server.base}/img/{n}" for n in names]
    clients = ("baseline", "ours") + (("unvalidated",) if diagnose else ())
    rates: dict[str, list[float]] = {who: [] for who in clients}
    cpu_ms: dict[str, list[float]] = {who: [] for who in clients}
    last = work
    for rnd in range(rounds):
        for who in clients:
            folder = work / f"{who}-{rnd}-{server.base.split(':')[0]}"
            s0, c0 = server.stats()
            secs, cpu = run(who, links, folder)
            s1, c1 = server.stats()
            server_ms = (s1 - s0) / len(links) * 1000
            valid = audit(folder, names)["valid"]
            rates[who].append(len(links) / secs)
            cpu_ms[who].append(cpu / len(links) * 1000 + server_ms)
            print(f"{LABEL[who] + f' (round {rnd + 1})':<38}{len(links) / secs:>10.0f}{secs:>9.2f}"
                  f"{cpu / len(links) * 1000:>12.2f}{server_ms:>11.2f}{c1 - c0 - 1:>7}"
                  f"{os.getloadavg()[0]:>6.1f}{valid:>9}/{len(links)}", flush=True)
            if who == "ours" and rnd == rounds - 1:
                last = folder
            else:
                shutil.rmtree(folder)
    median = {who: statistics.median(rates[who]) for who in clients}
    per_round = sorted(o / b for o, b in zip(rates["ours"], rates["baseline"]))
    ratio = median["ours"] / median["baseline"]
    print(f"median of {rounds} rounds: amlc.download {median['ours']:.0f} images/s, baseline "
          f"{median['baseline']:.0f} images/s: {ratio:.2f}x (target >= 2x: "
          f"{'met' if ratio >= 2 else 'MISSED'}); per round {per_round[0]:.2f}-{per_round[-1]:.2f}x")
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
    return last


def rerun_rounds(server: Server, names: list[str], folder: Path, rounds: int) -> None:
    """Scenario 3: download() over a folder where every image is present and in the manifest."""
    links = [f"{server.base}/img/{n}" for n in names]
    csv = folder.parent / "rerun-links.csv"
    csv.write_text("image_link\n" + "\n".join(links) + "\n")
    command = [sys.executable, "-m", "amlc.download", "--input", str(csv), "--out", str(folder),
               "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    calls, commands = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        report = download(links, folder, progress=False, workers=WORKERS)
        calls.append(time.perf_counter() - t0)
        assert report.skipped == len(links), report.summary()
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        commands.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    download(links, folder, progress=False, workers=WORKERS, verify=True)
    verify = time.perf_counter() - t0
    call, whole = statistics.median(calls), statistics.median(commands)
    print(f"\n3. rerun over {len(links)} images already present and recorded ok, median of {rounds} (load "
          f"average {os.getloadavg()[0]:.1f}; target < 0.5 s): download() {call:.3f} s "
          f"({'met' if call < 0.5 else 'MISSED'}), the whole `python -m amlc.download` command "
          f"(interpreter start and imports included) {whole:.2f} s ({'met' if whole < 0.5 else 'MISSED'}); "
          f"download(verify=True), which decodes every image again: {verify:.2f} s")


def main() -> None:
    global WORKERS, VALIDATE_THREADS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.05,
                    help="seconds the server waits before every answer (default 0.05)")
    ap.add_argument("--connect-latency", type=float, default=0.1,
                    help="extra seconds before the first answer on each new connection: the TCP + TLS "
                         "1.3 handshakes of a real https CDN (default 0.1; 0: loopback, connections free)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="alternating baseline/ours rounds, and reruns, whose median is printed (default 5)")
    ap.add_argument("--workers", type=int, default=WORKERS,
                    help=f"amlc.download requests in flight (default {WORKERS}, the baseline's pool; "
                         f"its own default is {DEFAULTS['download']['workers']})")
    ap.add_argument("--validate-threads", type=int, default=VALIDATE_THREADS,
                    help="amlc.download validation threads (default: its default, "
                         f"{VALIDATE_THREADS or 'one per CPU'})")
    ap.add_argument("--tls-images", type=int, default=300,
                    help="images fetched over HTTPS in scenario 2 (default 300; 0 skips it)")
    ap.add_argument("--skip-faults", action="store_true", help="throughput and reruns only (scenarios 0-3)")
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
          f"{os.getloadavg()[0]:.1f} at start; server: {args.latency * 1000:.0f} ms per request, "
          f"{args.connect_latency * 1000:.0f} ms more per new connection; amlc.download with {WORKERS} "
          f"requests in flight and {VALIDATE_THREADS or 'one per CPU'} validation threads, every image "
          f"validated")
    try:
        tls = make_tls(work) if args.tls_images > 0 else None
        if tls:  # before any client makes its SSL context (aiohttp makes its default one on import)
            os.environ["SSL_CERT_FILE"] = tls[1]
        floors(images, work)
        server = Server(images, args.latency, args.connect_latency)
        last = cdn_rounds("1. CDN, plain HTTP", server, names, args.rounds, work, args.latency,
                          args.connect_latency, diagnose=args.diagnose)
        if tls:
            with_tls = Server(images, args.latency, args.connect_latency, tls=tls[0])
            folder = cdn_rounds("2. CDN, HTTPS (TLS 1.3)", with_tls, names[:args.tls_images], args.rounds,
                                work, args.latency, args.connect_latency)
            shutil.rmtree(folder)
            with_tls.close()
        else:
            print("\n2. CDN, HTTPS: skipped (" + ("--tls-images 0" if args.tls_images <= 0 else
                                                 "the cryptography package is not installed") + ")")
        rerun_rounds(server, names, last, args.rounds)
        server.close()
        if args.skip_faults:
            return

        rng = random.Random(0)
        flaky = sorted(rng.sample(range(len(names)), len(names) // 10))
        scripts = {names[i]: rng.choice(FAULTS) for i in flaky}
        flaky_names = [names[i] for i in flaky]
        print(f"\n4. {len(flaky)} of {len(names)} links (10%) fail 1-2 times, then serve the image "
              f"(plain HTTP, same delays)\n"
              f"{'':<38}{'recovered':>12}{'valid on disk':>15}{'fake/corrupt':>14}{'seconds':>9}")
        for who in ("ours", "organisers"):
            # fresh per client: scripts count per path
            server = Server(images, args.latency, args.connect_latency, lean=False)
            links = [f"{server.base}/s/{scripts[n]}/{n}" if n in scripts else f"{server.base}/img/{n}"
                     for n in names]
            folder = work / f"faults-{who}"
            secs, _ = run(who, links, folder)
            a_flaky, a_all = audit(folder, flaky_names), audit(folder, names)
            share = 100 * a_flaky["valid"] / len(flaky)
            print(f"{LABEL[who]:<38}{a_flaky['valid']:>7}/{len(flaky):<4} ({share:.0f}%)"
                  f"{a_all['valid']:>6}/{len(names):<5}{a_all['placeholder'] + a_all['corrupt']:>11}"
                  f"{secs:>9.1f}", flush=True)
            shutil.rmtree(folder)
            server.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
