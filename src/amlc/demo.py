"""The whole pipeline end to end on data the project makes itself: `make demo` (or `python -m amlc.demo`).

No dataset and no GPU needed. Each stage runs the project's real command, printed before it runs, so
the demo doubles as a walk-through of what to type on the real data:

  1. generate   labelled synthetic product images (amlc.synthetic), served on 127.0.0.1 so the real
                downloader fetches them as it would fetch Amazon's
  2. sample     stratified train/validation sample of the labelled pool (python -m amlc.sampling)
  3. download   the sample's images (python -m amlc.download)
  4. tune       the OCR engine on the sample's validation rows, then per-entity abstention thresholds
                that maximise F1 there (inference/run.py, inference/tune_thresholds.py)
  5. infer      the test rows in 2 shards at once, each fetching its own images (inference/run.py)
  6. merge      shards -> raw.csv (merge_csv.py)
  7. post       how the labels write whole numbers (python -m amlc.formats), then raw.csv ->
                submission.csv (postprocessing.py --styles)
  8. sanity     the organisers' checks (src/sanity.py)
  9. evaluate   F1 per entity before and after postprocessing, metrics.json, report.html (evaluate.py)

`--real` runs the same on ../shared/amlc2024/images_dev (394 real photos with labels), when present:
the labelled rows are split in two by the sample stage, thresholds are tuned on one half and the
other half is the test. Everything is written below --out (default outputs/demo or outputs/demo-real).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from amlc.errors import ArgumentParser, InputError, cli
from amlc.paths import OUTPUTS_DIR, ROOT, SHARED_DATA
from amlc.tables import make_dirs


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the downloader's manifest is the log
        pass


class _LocalCDN(ThreadingHTTPServer):
    # The downloader opens up to `download.workers` (128) connections at once; the stdlib's listen
    # backlog of 5 would drop most of them until the client's connect timeout.
    request_queue_size = 512
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is no error
            super().handle_error(request, client_address)


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve `folder` on 127.0.0.1 (a free port) in a daemon thread; returns (server, base URL)."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _LocalCDN(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Runner:
    """Runs the stages' commands from the project root, echoing each; stops at the first failure."""

    def __init__(self, out: Path):
        self.out = out
        self.step = 0
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "PYTHONUNBUFFERED": "1"}

    def title(self, name: str, what: str) -> None:
        self.step += 1
        print(f"\n=== [{self.step}/9] {name}: {what}", flush=True)

    def _argv(self, args: Sequence[str | os.PathLike]) -> list[str]:
        return [sys.executable, *map(str, args)]

    def _show(self, args: Sequence[str | os.PathLike]) -> None:
        shown = " ".join(_rel(a) for a in args)
        print(f"$ python {shown}", flush=True)

    def run(self, *args: str | os.PathLike) -> None:
        self._show(args)
        proc = subprocess.run(self._argv(args), cwd=ROOT, env=self.env)
        if proc.returncode:
            raise SystemExit(f"demo: stage {self.step} failed (exit {proc.returncode}); see above")

    def run_parallel(self, commands: Sequence[Sequence[str | os.PathLike]]) -> None:
        for args in commands:
            self._show(args)
        procs = [subprocess.Popen(self._argv(args), cwd=ROOT, env=self.env) for args in commands]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"demo: stage {self.step} failed (exit codes {codes}); see above")


def _rel(arg: str | os.PathLike) -> str:
    text = str(arg)
    try:
        return str(Path(text).relative_to(ROOT)) if os.path.isabs(text) else text
    except ValueError:
        return text


def _write_csv(df, path: Path) -> Path:
    from amlc.tables import write_csv

    return write_csv(df, path)


def prepare_synthetic(out: Path, base_url: str, n: int, seed: int) -> tuple[Path, Path, Path]:
    """(labelled pool in train layout, test.csv, labels.csv) from generated images."""
    from amlc.synthetic import generate

    data = out / "data"
    generate(data, n, seed, base_url=base_url, progress=True)
    return data / "train.csv", data / "test.csv", data / "labels.csv"


def prepare_real(out: Path, base_url: str, seed: int) -> tuple[Path, Path, Path]:
    """images_dev's labelled rows: half become the tuning pool, the other half the test set.

    The links are pointed at the local server (same file names, so the downloader's local names are
    the organisers' ones).
    """
    import hashlib

    from amlc.tables import read_csv

    src = SHARED_DATA / "images_dev"
    if not (src / "labels.csv").exists():
        raise InputError(f"--real needs the development photos in {src} (they are not part of the "
                         "project); run plain `make demo` instead")
    labels = read_csv(src / "labels.csv", ["index", "image_link", "entity_name", "entity_value"],
                      "images_dev labels")
    labels["image_link"] = [f"{base_url}/{Path(link).name}" for link in labels["image_link"]]
    data = out / "data"
    # Halves by image (a photo labelled twice stays on one side), every labelled row kept: the test
    # half must not be made easier by dropping rows whose label the units module rejects.
    half = [int(hashlib.sha256(f"{seed}:{Path(link).name}".encode()).hexdigest(), 16) % 2
            for link in labels["image_link"]]
    pool = labels[[h == 0 for h in half]]
    test = labels[[h == 1 for h in half]]
    cols = ["index", "image_link", "group_id", "entity_name"]
    _write_csv(pool[["image_link", "group_id", "entity_name", "entity_value"]], data / "train.csv")
    _write_csv(test[cols], data / "test.csv")
    _write_csv(test[cols + ["entity_value"]], data / "labels.csv")
    return data / "train.csv", data / "test.csv", data / "labels.csv"


MARKER = ".amlc-demo"  # in every folder the demo writes: the one kind of folder it may delete


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m amlc.demo", description=__doc__.splitlines()[0],
                            epilog="Stages: " + " -> ".join(
                                ["generate", "sample", "download", "tune", "infer", "merge",
                                 "post", "sanity", "evaluate"]))
    parser.add_argument("--real", action="store_true",
                        help="use ../shared/amlc2024/images_dev (real photos) instead of generated images")
    parser.add_argument("--out", help="output folder (default outputs/demo, or outputs/demo-real)")
    parser.add_argument("--n", type=int, default=320,
                        help="generated images (default 320: about 640 rows, half of them the test; "
                             "fewer make the tuned abstention thresholds noise)")
    parser.add_argument("--seed", type=int, default=0, help="seed for generation and sampling (default 0)")
    parser.add_argument("--shards", type=int, default=2, help="inference shards run at once (default 2)")
    parser.add_argument("--keep", action="store_true",
                        help="keep earlier results in --out (shards resume) instead of starting afresh")
    args = parser.parse_args(argv)
    if args.n < 8:
        raise InputError("--n must be at least 8 (one image of each kind)")
    if args.shards < 1:
        raise InputError("--shards must be at least 1")
    out = Path(args.out) if args.out else OUTPUTS_DIR / ("demo-real" if args.real else "demo")
    out = out if out.is_absolute() else Path.cwd() / out
    if out.exists() and not out.is_dir():
        raise InputError(f"--out is a file, not a folder: {out}")
    if out.exists() and not args.keep:
        # the demo starts afresh by deleting its folder: only ever one it made, or one under outputs/
        if any(out.iterdir()) and not (out / MARKER).exists() and OUTPUTS_DIR not in out.resolve().parents:
            raise InputError(f"--out {out} holds files the demo did not write, and the demo empties its "
                             f"folder first: give a new or empty folder (or --keep)")
        shutil.rmtree(out)
    make_dirs(out, "demo folder")
    (out / MARKER).write_text("written by python -m amlc.demo; the next run empties this folder\n")
    started = time.perf_counter()
    r = Runner(out)

    served = SHARED_DATA / "images_dev" if args.real else out / "data" / "images"
    server, base_url = serve(served)
    images = out / "images"
    try:
        if args.real:
            r.title("generate", f"no generation: images_dev's labelled photos, served at {base_url}, "
                                "split in halves by image (tuning pool / test)")
            pool, test, labels = prepare_real(out, base_url, args.seed)
        else:
            r.title("generate", f"{args.n} labelled product images, served at {base_url}")
            pool, test, labels = prepare_synthetic(out, base_url, args.n, args.seed)

        r.title("sample", "stratified train/validation split of the labelled pool")
        r.run("-m", "amlc.sampling", "--input", pool, "--output", out / "sample.csv", "--fraction", "1",
              "--val-fraction", "0.4", "--seed", args.seed)
        val = _validation_rows(out / "sample.csv", out / "val.csv",
                               None if args.real else out / "data" / "meta.csv")

        r.title("download", "the sample's images, validated, into the shared image folder")
        r.run("-m", "amlc.download", "--input", out / "sample.csv", "--out", images)

        r.title("tune", "OCR on the validation rows, then per-entity abstention thresholds")
        r.run("inference/run.py", "--engine", "ocr", "--input", val, "--images", images,
              "--output_dir", out / "tune", "--shard", "0", "--num-shards", "1", "--no-progress")
        r.run("inference/tune_thresholds.py", "--input", val, "--preds_dir", out / "tune",
              "--output", out / "thresholds.yaml")

        r.title("infer", f"the test rows in {args.shards} shards at once (each fetches its images)")
        r.run_parallel([["inference/run.py", "--config", out / "thresholds.yaml", "--engine", "ocr",
                         "--input", test, "--images", images, "--output_dir", out / "preds",
                         "--shard", str(k), "--num-shards", str(args.shards), "--no-progress"]
                        for k in range(args.shards)])

        r.title("merge", "shard files -> raw.csv in the test file's order")
        r.run("merge_csv.py", "--input_dir", out / "preds", "--test_filename", test,
              "--output_filename", out / "raw.csv")

        r.title("post", "how labels write whole numbers, then raw predictions -> a valid submission")
        if args.real:  # the full train.csv minus the rows scored here
            r.run("-m", "amlc.formats", "--train", SHARED_DATA / "train.csv", "--exclude", labels,
                  "--output", out / "styles.json")
        else:
            r.run("-m", "amlc.formats", "--train", pool, "--output", out / "styles.json")
        r.run("postprocessing.py", "--test_filename", test, "--input", out / "raw.csv",
              "--output_filename", out / "submission.csv", "--styles", out / "styles.json")

        r.title("sanity", "the organisers' acceptance rules")
        r.run("src/sanity.py", "--test_filename", test, "--output_filename", out / "submission.csv")

        r.title("evaluate", "F1 before and after postprocessing, the metrics file and the report")
        r.run("evaluate.py", "--labels", labels, "--raw", out / "raw.csv", "--predictions",
              out / "submission.csv", "--metrics", out / "metrics.json", "--report",
              out / "report.html", "--images", images)
    finally:
        server.shutdown()

    f1 = json.loads((out / "metrics.json").read_text())["f1"]
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. F1 {f1:.4f}")
    print(f"  submission: {_rel(out / 'submission.csv')}")
    print(f"  metrics:    {_rel(out / 'metrics.json')}")
    print(f"  report:     {_rel(out / 'report.html')}  (open it in a browser)")
    return 0


def _validation_rows(sample_csv: Path, out_csv: Path, meta_csv: Path | None = None) -> Path:
    """The tuning rows, in test.csv layout plus their label: every row of the sample's validation images.

    A training CSV holds only rows that have a value, as the organisers' does, but abstention is
    worth tuning only on rows where the answer may be "not on the image". The generator's meta.csv
    lists every question asked of each image, empty answers included, so for generated images the
    validation images' empty rows join the tuning set (an image stays on its side of the split).
    """
    from amlc.tables import read_csv

    s = read_csv(sample_csv, ["index", "image_link", "group_id", "entity_name", "target", "split"],
                 "sample file")
    val = s[s["split"] == "val"].assign(entity_value=lambda d: d["target"])
    cols = ["index", "image_link", "group_id", "entity_name", "entity_value"]
    if meta_csv is not None and meta_csv.exists():
        import pandas as pd

        meta = read_csv(meta_csv, ["image", "entity_name", "entity_value"], "generator meta file")
        per_image = val.drop_duplicates("image_link").assign(image=lambda d: d["image_link"].map(
            lambda link: Path(link).name))[["image", "image_link", "group_id"]]
        empty = meta[meta["entity_value"] == ""].merge(per_image, on="image")
        start = int(s["index"].max()) + 1
        empty = empty.assign(index=range(start, start + len(empty)))
        val = pd.concat([val[cols], empty[cols]], ignore_index=True)
    return _write_csv(val[cols], out_csv)


if __name__ == "__main__":
    sys.exit(cli(main))
