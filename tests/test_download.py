"""The downloader against a real HTTP server on 127.0.0.1 with injected faults (tests/imageserver.py)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from amlc.download import (MANIFEST_COLUMNS, BadImage, DownloadIncomplete, check_image, download,
                           download_images, local_path)
from amlc.paths import ROOT
from imageserver import ImageServer, make_jpeg

# Timeouts leave room for a loaded CI machine; the stall step below outlasts them.
FAST = dict(timeout=2.0, retries=3, backoff=0.05, backoff_max=0.5, progress=False)


@pytest.fixture
def server():
    with ImageServer() as srv:
        yield srv


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name != "manifest.csv"}


def row(report, link: str) -> dict:
    m = report.manifest
    hit = m[m["image_link"] == link]
    assert len(hit) == 1, (link, m)
    return hit.iloc[0].to_dict()


# ------------------------------------------------------------------------------------------ file names

def test_local_path_keeps_organiser_names():
    out = Path("/data/images")
    for name in ("61I9XdN6OFL.jpg", "41Kn+YOyPjL.jpg", "410gyMVw-UL.jpg", "71gSRbyXmoL._SL1500_.jpg"):
        assert local_path(f"https://m.media-amazon.com/images/I/{name}", out) == out / name
    assert local_path(" https://m.media-amazon.com/images/I/61I9XdN6OFL.jpg\n", out).name == "61I9XdN6OFL.jpg"


def test_local_path_sanitises_and_never_collides():
    out = Path("/data/images")
    links = ["http://h/a b.jpg", "http://h/a_b.jpg", "http://h/a%20b.jpg", "http://h/a?b.jpg",
             "http://h/x.jpg?w=100", "http://h/x.jpg?w=200", "http://h/..", "http://h/.", "http://h/",
             "http://h/.hidden.jpg", "http://h/..%2F..%2Fetc%2Fpasswd", "http://h/img/%2e%2e",
             "http://h/a\\..\\b.jpg", "http://h/ü.jpg", "http://h/u.jpg", "http://h/" + "n" * 300 + ".jpg",
             "http://h/manifest.csv", "http://h/CON.jpg", "http://h/a~b.jpg", "file:///etc/passwd",
             "http://[::1/x.jpg"]
    paths = [local_path(link, out) for link in links]
    for link, p in zip(links, paths):
        assert p.parent == out, (link, p)
        assert p.name not in ("", ".", "..") and not p.name.startswith("."), (link, p)
        assert "/" not in p.name and "\\" not in p.name and len(p.name) < 200
        assert p == local_path(link, out)  # deterministic
    assert len(set(paths)) == len(links)  # distinct links, distinct files
    assert paths[1].name == "a_b.jpg" and paths[0].name.startswith("a_b~") and paths[0].suffix == ".jpg"


def test_local_path_matches_shared_dev_images(shared):
    labels = pd.read_csv(shared / "images_dev" / "labels.csv", dtype=str)
    missing = [link for link in labels["image_link"] if not local_path(link, shared / "images_dev").exists()]
    assert not missing, missing[:5]


# ------------------------------------------------------------------------------------------ validation

def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_check_image_accepts_formats_and_rejects_broken():
    im = Image.open(io.BytesIO(make_jpeg("x", size=(200, 150))))
    for fmt, kw in (("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}), ("GIF", {})):
        data = _encode(im, fmt, **kw)
        assert check_image(data) == (200, 150)
        with pytest.raises(BadImage, match="not an image"):  # any cut of the file is caught
            check_image(data[: len(data) * 3 // 4])
    with pytest.raises(BadImage, match="not an image"):
        check_image(b"<html><body>Service unavailable</body></html>")
    with pytest.raises(BadImage, match="too many pixels"):
        check_image(_encode(Image.new("L", (2000, 1000)), "PNG"), max_pixels=1_000_000)
    with pytest.raises(BadImage, match="placeholder"):
        check_image(_encode(Image.new("RGB", (100, 100), "black"), "JPEG"))
    assert check_image(_encode(Image.new("RGB", (100, 100), "white"), "JPEG")) == (100, 100)


# ------------------------------------------------------------------------------------ faults, one run

EXPECT = {
    # script -> (status, error starts with, requests the server must have seen)
    "ok": ("ok", "", 1),
    "slow:300": ("ok", "", 1),
    "500,503,ok": ("ok", "", 3),
    "429:1,ok": ("ok", "", 2),
    "reset,reset,reset,ok": ("ok", "", None),  # aiohttp may re-send once on a reused connection
    "trunc,ok": ("ok", "", 2),
    "stall:6000,ok": ("ok", "", 2),
    "redirect": ("ok", "", 1),
    "404": ("failed", "HTTP 404", 1),
    "410": ("failed", "HTTP 410", 1),
    "500": ("failed", "HTTP 500", 4),
    "429:600": ("failed", "HTTP 429", 1),
    "html": ("failed", "not an image", 1),
    "garbage": ("failed", "not an image", 1),
    "truncfile": ("failed", "not an image", 1),
    "trunc": ("failed", "cut transfer", 4),
    "huge": ("failed", "too many pixels", 1),
    "big": ("failed", "too large", 1),
    "bigcl": ("failed", "too large", 1),
    "redirect-file": ("failed", "bad redirect", 1),
    "placeholder": ("failed", "placeholder", 1),
}


def test_faults_are_retried_or_recorded(server, tmp_path):
    links = {script: server.url(f"s/{script}/f{i}.jpg") for i, script in enumerate(EXPECT)}
    out = tmp_path / "images"
    rep = download(list(links.values()), out, workers=8, max_bytes=1_000_000, retry_after_max=30, **FAST)
    assert list(rep.manifest.columns) == MANIFEST_COLUMNS
    for script, (status, error, requests) in EXPECT.items():
        r = row(rep, links[script])
        assert r["status"] == status, (script, r)
        assert r["error"].startswith(error), (script, r)
        if requests is not None:
            assert server.requests_for(links[script]) == requests, script
        if status == "ok":
            assert Path(r["path"]) == local_path(links[script], out)
            assert check_image(r["path"]) and r["bytes"] == os.path.getsize(r["path"])
        else:
            assert r["path"] == "" and r["bytes"] == 0
            assert not local_path(links[script], out).exists()  # no placeholder, no partial file
    # Retry-After was honoured: the second request came at least 1 s after the first
    t = server.times_for(links["429:1,ok"])
    assert t[1] - t[0] >= 0.95
    # a body over the cap with a Content-Length is refused from its headers; nothing else is on disk
    assert files_in(out) == {Path(row(rep, link)["path"]).name for link in links.values()
                             if row(rep, link)["status"] == "ok"}
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    assert rep.counts == {"ok": 8, "skipped": 0, "failed": 13, "refused": 0}


def test_backoff_grows_exponentially_with_jitter(server, tmp_path):
    link = server.url("s/500,500,500,ok/b.jpg")
    rep = download([link], tmp_path, timeout=2.0, retries=3, backoff=0.2, progress=False)
    assert row(rep, link)["status"] == "ok" and row(rep, link)["attempts"] == 4
    t = server.times_for(link)
    gaps = [b - a for a, b in zip(t, t[1:])]
    # retry k waits 50-100% of 0.2 * 2**(k-1) s: at least 0.1, 0.2, 0.4; the third beats the first
    assert gaps[0] >= 0.095 and gaps[1] >= 0.195 and gaps[2] >= 0.395, gaps
    assert gaps[0] < gaps[2], gaps


def test_retry_after_forms():
    from email.utils import formatdate

    from amlc.download import _retry_after

    assert _retry_after("7") == 7.0 and _retry_after(None) is None and _retry_after("soon") is None
    assert 25 <= _retry_after(formatdate(time.time() + 30, usegmt=True)) <= 31
    assert _retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_refused_links_are_never_fetched(server, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(make_jpeg("secret"))
    links = [f"file://{secret}", "ftp://127.0.0.1/x.jpg", "data:image/jpeg;base64,/9j/4AAQ",
             "javascript:alert(1)", "", None, float("nan"), "http:///nohost.jpg", "//127.0.0.1/x.jpg"]
    out = tmp_path / "images"
    rep = download(links, out, **FAST)
    assert (rep.manifest["status"] == "refused").all(), rep.manifest
    assert rep.manifest["attempts"].sum() == 0 and sum(server.counts.values()) == 0
    assert files_in(out) == set()
    assert rep.manifest["error"].str.contains("scheme not allowed").sum() == 5


def test_odd_links_stay_inside_the_folder(server, tmp_path):
    out = tmp_path / "deep" / "images"
    links = [server.url("img/../../escape.jpg"), server.url("img/..%2F..%2Fescape2.jpg"),
             server.url("img/a b.jpg"), server.url("img/ü+é.jpg"), server.url("img/x.jpg?v=1"),
             server.url("img/x.jpg?v=2"), server.url("img/.hidden.jpg"), server.url("img/%2e%2e"),
             server.url("img/manifest.csv")]
    rep = download(links, out, **FAST)
    ok = rep.manifest[rep.manifest["status"] == "ok"]
    assert len(ok) >= 7, rep.manifest  # ../../escape.jpg is normalised to /escape.jpg: a 404 here
    for p in ok["path"]:
        assert Path(p).parent == out and check_image(p)
    everything = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert all(str(p).startswith("deep") for p in everything), everything
    assert len(files_in(out)) == len(ok)
    assert pd.read_csv(out / "manifest.csv").shape[0] == len(links)  # the manifest was not overwritten


def test_duplicates_fetched_once_and_name_clashes_refused(server, tmp_path):
    a = server.url("img/same.jpg")
    b = server.url("s/ok/same.jpg")  # a different link whose file name is the same
    rep = download([a, a, " " + a, b, a], tmp_path, **FAST)
    assert rep.total == 2 and rep.duplicates == 3
    assert server.requests_for(a) == 1 and server.requests_for(b) == 0
    assert row(rep, a)["status"] == "ok"
    assert row(rep, b)["status"] == "refused" and row(rep, b)["error"].startswith("name taken")


# ------------------------------------------------------------------------------------ resume, re-runs

def test_rerun_skips_valid_files_and_repairs_broken_ones(server, tmp_path):
    links = [server.url(f"img/r{i}.jpg") for i in range(12)]
    first = download(links, tmp_path, **FAST)
    assert first.ok == 12
    # break three files the way real runs do: a cut file, an organiser placeholder, garbage
    (tmp_path / "r0.jpg").write_bytes((tmp_path / "r0.jpg").read_bytes()[:500])
    (tmp_path / "r1.jpg").write_bytes(_encode(Image.new("RGB", (100, 100), "black"), "JPEG"))
    (tmp_path / "r2.jpg").write_bytes(b"\x00" * 100)
    (tmp_path / "r3.jpg").unlink()
    second = download(links, tmp_path, **FAST)
    assert second.counts == {"ok": 4, "skipped": 8, "failed": 0, "refused": 0}
    assert {server.requests_for(link) for link in links[4:]} == {1}  # valid files were not fetched again
    assert [server.requests_for(link) for link in links[:4]] == [2, 2, 2, 2]
    assert all(check_image(tmp_path / f"r{i}.jpg") for i in range(12))
    skipped = second.manifest[second.manifest["status"] == "skipped"]
    assert (skipped["attempts"] == 0).all() and (skipped["bytes"] > 0).all()


def _count_file_decodes(monkeypatch) -> list[str]:
    """Record the name of every file check_image decodes from disk (fetched bytes are not counted)."""
    import amlc.download as dl

    decoded: list[str] = []
    real = dl.check_image

    def counting(source, *args, **kwargs):
        if not isinstance(source, (bytes, bytearray)):
            decoded.append(Path(source).name)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(dl, "check_image", counting)
    return decoded


def test_rerun_trusts_the_manifest_and_rechecks_changed_files(server, tmp_path, monkeypatch):
    """A rerun decodes no image the manifest recorded valid with the same size and mtime; a file
    changed since (content, size or only its time) is validated again; verify=True checks them all."""
    links = [server.url(f"img/m{i}.jpg") for i in range(8)]
    first = download(links, tmp_path, **FAST)
    assert first.ok == 8 and list(first.manifest.columns) == MANIFEST_COLUMNS
    for p, mtime in zip(first.manifest["path"], first.manifest["mtime_ns"]):
        assert mtime == os.stat(p).st_mtime_ns
    decoded = _count_file_decodes(monkeypatch)
    again = download(links, tmp_path, **FAST)
    assert decoded == [] and again.skipped == 8 and (again.manifest["attempts"] == 0).all()
    assert again.manifest["bytes"].tolist() == first.manifest["bytes"].tolist()

    m0, m1, m2 = (tmp_path / f"m{i}.jpg" for i in range(3))
    m0.write_bytes(b"\0" * m0.stat().st_size)  # same size, broken: only its mtime tells
    st = m1.stat()
    os.utime(m1, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, still valid
    m2.write_bytes(m2.read_bytes()[:300])  # cut
    third = download(links, tmp_path, **FAST)
    assert sorted(decoded) == ["m0.jpg", "m1.jpg", "m2.jpg"]
    assert third.counts == {"ok": 2, "skipped": 6, "failed": 0, "refused": 0}
    assert [server.requests_for(link) for link in links[:3]] == [2, 1, 2]
    assert row(third, links[1])["mtime_ns"] == m1.stat().st_mtime_ns  # the new time is recorded

    decoded.clear()
    assert download(links, tmp_path, **FAST).skipped == 8 and decoded == []
    assert download(links, tmp_path, verify=True, **FAST).skipped == 8
    assert sorted(decoded) == [f"m{i}.jpg" for i in range(8)]


def test_rerun_over_a_manifest_without_mtimes_validates_once(server, tmp_path, monkeypatch):
    """A manifest written before mtime_ns existed (or by hand) is not trusted: its files are decoded
    once, and the manifest written then records their times, so the next rerun trusts them."""
    links = [server.url(f"img/o{i}.jpg") for i in range(4)]
    download(links, tmp_path, **FAST)
    old = pd.read_csv(tmp_path / "manifest.csv", keep_default_na=False).drop(columns=["mtime_ns"])
    old.to_csv(tmp_path / "manifest.csv", index=False)
    decoded = _count_file_decodes(monkeypatch)
    assert download(links, tmp_path, **FAST).skipped == 4 and len(decoded) == 4
    decoded.clear()
    assert download(links, tmp_path, **FAST).skipped == 4 and decoded == []
    (tmp_path / "manifest.csv").write_text("not,a\nmanifest")  # unreadable: validate, never fail
    assert download(links, tmp_path, **FAST).skipped == 4 and len(decoded) == 4


def test_stale_temporary_files_are_cleaned(server, tmp_path):
    from amlc.download import _HOSTKEY

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".amlc-{dead}-{_HOSTKEY}-abcdef.part"
    mine = tmp_path / f".amlc-{os.getpid()}-{_HOSTKEY}-abcdef.part"  # a live process's: left alone
    stale.write_bytes(b"partial")
    mine.write_bytes(b"partial")
    download([server.url("img/t.jpg")], tmp_path, **FAST)
    assert not stale.exists() and mine.exists()


def test_works_inside_a_running_event_loop(server, tmp_path):
    """Jupyter runs an event loop in the calling thread: download() must still work there."""
    async def notebook_cell():
        return download([server.url("img/nb.jpg")], tmp_path, **FAST)

    assert asyncio.run(notebook_cell()).ok == 1


def test_organiser_signature_writes_no_placeholder(server, tmp_path):
    good, dead = server.url("img/g.jpg"), server.url("s/404/d.jpg")
    rep = download_images([good, dead], str(tmp_path / "imgs"), allow_multiprocessing=False)
    assert (tmp_path / "imgs" / "g.jpg").exists() and not (tmp_path / "imgs" / "d.jpg").exists()
    assert row(rep, dead)["status"] == "failed"
    manifest = pd.read_csv(tmp_path / "imgs" / "manifest.csv", keep_default_na=False)
    assert set(manifest["status"]) == {"ok", "failed"}


def test_strict_raises_after_writing_manifest(server, tmp_path):
    with pytest.raises(DownloadIncomplete) as info:
        download([server.url("img/s.jpg"), server.url("s/404/n.jpg")], tmp_path, strict=True, **FAST)
    assert info.value.report.failed == 1 and (tmp_path / "manifest.csv").exists()


# ------------------------------------------------------------------------------------------------ CLI

def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _csv(tmp_path: Path, links: list[str]) -> Path:
    path = tmp_path / "links.csv"
    pd.DataFrame({"image_link": links, "group_id": 1, "entity_name": "item_weight"}).to_csv(path, index=False)
    return path


def test_cli_exit_codes(server, tmp_path, cli):
    csv = _csv(tmp_path, [server.url("img/c1.jpg"), server.url("s/404/c2.jpg")])
    out = tmp_path / "out"
    proc = cli("-m", "amlc.download", "--input", csv, "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr  # a dead link is normal
    m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert m["status"].tolist() == ["ok", "failed"]
    proc = cli("-m", "amlc.download", "--input", csv, "--out", out, "--strict")
    assert proc.returncode == 1 and "1 skipped, 1 failed" in proc.stderr and "HTTP 404" in proc.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("link\nhttp://x/y.jpg\n")
    for args in (["--input", tmp_path / "nope.csv", "--out", out], ["--input", bad, "--out", out],
                 ["--input", csv, "--out", csv]):  # an existing file is not a folder
        proc = cli("-m", "amlc.download", *args)
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    proc = cli("-m", "amlc.download", "--help")
    assert proc.returncode == 0 and "--workers" in proc.stdout and "--strict" in proc.stdout


def test_cli_no_progress_keeps_the_summary(server, tmp_path, cli):
    csv = _csv(tmp_path, [server.url("img/n1.jpg"), server.url("s/404/n2.jpg")])
    proc = cli("-m", "amlc.download", "--input", csv, "--out", tmp_path / "out", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "download: 1 ok, 0 skipped, 1 failed, 0 refused of 2 links" in proc.stderr
    assert "why: HTTP 404 Not Found x1" in proc.stderr
    assert f"manifest: {tmp_path / 'out' / 'manifest.csv'}" in proc.stderr
    assert "%|" not in proc.stderr and "img/s]" not in proc.stderr  # no progress bar


def test_cli_verify_decodes_what_the_manifest_vouches_for(server, tmp_path, cli):
    """A file broken on disk behind the manifest's back (same size, same mtime) is trusted by a plain
    rerun and found and fetched again by --verify."""
    link = server.url("img/v1.jpg")
    csv, out = _csv(tmp_path, [link]), tmp_path / "out"
    assert cli("-m", "amlc.download", "--input", csv, "--out", out, "--no-progress").returncode == 0
    img = out / "v1.jpg"
    st = img.stat()
    img.write_bytes(b"\0" * st.st_size)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = cli("-m", "amlc.download", "--input", csv, "--out", out, "--no-progress")
    assert "0 ok, 1 skipped" in proc.stderr and server.requests_for(link) == 1
    proc = cli("-m", "amlc.download", "--input", csv, "--out", out, "--no-progress", "--verify")
    assert proc.returncode == 0 and "1 ok, 0 skipped" in proc.stderr, proc.stderr
    assert server.requests_for(link) == 2 and check_image(img)


def test_cli_reads_an_input_saved_by_excel(server, tmp_path, cli):
    """A UTF-8 CSV with a byte order mark (Excel's "CSV UTF-8") is read as pandas reads it."""
    csv = tmp_path / "excel.csv"
    csv.write_bytes(b"\xef\xbb\xbfimage_link,group_id\r\n" + server.url("img/x1.jpg").encode() + b",1\r\n")
    proc = cli("-m", "amlc.download", "--input", csv, "--out", tmp_path / "out", "--no-progress")
    assert proc.returncode == 0 and "1 ok" in proc.stderr, proc.stderr


def test_cli_rerun_over_present_images_stays_light(server, tmp_path, cli):
    """A rerun with every image in place and trusted imports neither pandas (~0.3-1 s) nor aiohttp and
    starts no event loop: the whole command costs the interpreter's start and a stat per file."""
    links = [server.url(f"img/l{i}.jpg") for i in range(5)]
    csv, out = _csv(tmp_path, links), tmp_path / "out"
    assert cli("-m", "amlc.download", "--input", csv, "--out", out, "--no-progress").returncode == 0
    probe = ("import sys; from amlc.download import main; "
             f"code = main(['--input', {str(csv)!r}, '--out', {str(out)!r}, '--no-progress']); "
             "print(code, *sorted(m for m in ('pandas', 'aiohttp', 'asyncio') if m in sys.modules))")
    proc = cli("-c", probe)
    assert proc.stdout.split() == ["0"], (proc.stdout, proc.stderr)
    assert "0 ok, 5 skipped" in proc.stderr
    assert pd.read_csv(out / "manifest.csv")["status"].tolist() == ["skipped"] * 5


def _wait_for_files(folder: Path, n: int, proc: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if folder.exists() and len(files_in(folder)) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("no progress")


@pytest.mark.slow
def test_cli_kill9_then_resume(tmp_path):
    """kill -9 mid-run, run again: nothing lost, nothing corrupt, no valid file fetched twice."""
    with ImageServer(latency=0.05) as srv:
        links = [srv.url(f"img/k{i:03d}.jpg") for i in range(160)] + [srv.url("s/500,ok/k-flaky.jpg")]
        csv = _csv(tmp_path, links)
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "amlc.download", "--input", str(csv), "--out", str(out),
               "--workers", "4", "--no-progress"]
        proc = subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)
        _wait_for_files(out, 30, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        survivors = files_in(out)
        assert 30 <= len(survivors) < len(links)
        for name in survivors:  # every file under a final name is a whole, valid image
            check_image(out / name)
        assert not (out / "manifest.csv").exists()

        done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
        assert len(m) == len(links) and set(m["status"]) <= {"ok", "skipped"}
        skipped = {Path(p).name for p in m.loc[m["status"] == "skipped", "path"]}
        assert skipped == survivors
        for link in links:
            name = local_path(link, out).name
            assert check_image(out / name)
            if name in survivors:
                assert srv.requests_for(link) == 1, name  # fetched before the kill, never again
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temp files


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_ctrl_c_stops_cleanly(tmp_path, sig):
    with ImageServer(latency=0.05) as srv:
        links = [srv.url(f"img/c{i:03d}.jpg") for i in range(200)]
        csv = _csv(tmp_path, links)
        out = tmp_path / "out"
        proc = subprocess.Popen([sys.executable, "-m", "amlc.download", "--input", str(csv), "--out",
                                 str(out), "--workers", "4"], env=_env(), stderr=subprocess.PIPE, text=True)
        _wait_for_files(out, 20, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "INTERRUPTED" in err and "Traceback" not in err
        assert "img/s" in err  # the progress bar showed a rate
        m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
        assert len(m) == len(links)
        ok = m[m["status"] == "ok"]
        rest = m[m["status"] != "ok"]
        assert len(ok) >= 20 and len(rest) > 0
        assert (rest["status"] == "failed").all() and rest["error"].str.startswith("interrupted").all()
        assert {Path(p).name for p in ok["path"]} == files_in(out)
        assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sigterm_mid_write_stops_cleanly_and_counts_the_written_image(server, tmp_path, monkeypatch):
    """SIGTERM (mapped to KeyboardInterrupt, as the CLIs do) while an image is being written: the
    run stops through its clean path, and the image that landed is "ok" in the manifest."""
    import os

    import amlc.download as dl

    real = dl._store

    def slow_store(data, dest, max_pixels):
        real(data, dest, max_pixels)
        if dest.name == "t002.jpg":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.6)  # the loop sees the stop and cancels the workers meanwhile

    monkeypatch.setattr(dl, "_store", slow_store)
    links = [server.url(f"img/t{i:03d}.jpg") for i in range(40)]
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            download(links, tmp_path, workers=1, **FAST)
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler  # handler put back
    finally:
        signal.signal(signal.SIGTERM, previous)
    m = pd.read_csv(tmp_path / "manifest.csv", keep_default_na=False)
    ok = m[m["status"] == "ok"]
    assert {Path(p).name for p in ok["path"]} == files_in(tmp_path) == {f"t{i:03d}.jpg" for i in range(3)}
    assert (m.loc[m["status"] != "ok", "error"].str.startswith("interrupted")).all()


def test_an_unexpected_error_is_recorded_not_fatal(server, tmp_path, monkeypatch):
    import amlc.download as dl

    real = dl._store

    def flaky_store(data, dest, max_pixels):
        if dest.name == "boom.jpg":
            raise RuntimeError("bug")
        return real(data, dest, max_pixels)

    monkeypatch.setattr(dl, "_store", flaky_store)
    links = [server.url("img/boom.jpg")] + [server.url(f"img/fine{i}.jpg") for i in range(5)]
    rep = download(links, tmp_path, workers=1, **FAST)  # one worker: it must survive the bug
    assert row(rep, links[0])["status"] == "failed"
    assert row(rep, links[0])["error"] == "unexpected error: RuntimeError: bug"
    assert rep.ok == 5


def test_proxy_from_environment(server, tmp_path, monkeypatch):
    """HTTP_PROXY / NO_PROXY are honoured (read once per run, not per request)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
                "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # The test server answers a proxy-form request (GET http://host/path) like a direct one: it stands
    # in for the proxy, and a host that resolves nowhere proves the request went through it.
    monkeypatch.setenv("HTTP_PROXY", server.url(""))
    far = "http://images.invalid/img/via-proxy.jpg"
    rep = download([far], tmp_path / "a", **FAST)
    assert row(rep, far)["status"] == "ok" and server.requests_for(far) == 1
    monkeypatch.setenv("NO_PROXY", "images.invalid")
    rep = download([far], tmp_path / "b", **{**FAST, "retries": 0})
    assert row(rep, far)["status"] == "failed" and server.requests_for(far) == 1
