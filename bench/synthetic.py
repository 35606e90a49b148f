"""Benchmark the synthetic image generator: render speed, and how often rapidocr reads the answers.

    PYTHONPATH=src python bench/synthetic.py --n 300 --ocr 80

Prints images/s for each worker count, then, over the first --ocr images, the share of answer rows
whose number rapidocr reads (any number in the OCR text equal to the truth's number) and the share whose
printed answer text ("500 g", "37in") appears verbatim (spaces and case ignored), overall and by kind.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from amlc.synthetic import generate

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def ocr_reads(out: Path, limit: int) -> None:
    from rapidocr import RapidOCR

    engine = RapidOCR()
    meta = pd.read_csv(out / "meta.csv", dtype=str, keep_default_na=False)
    images = list(dict.fromkeys(meta["image"]))[:limit]
    hits: dict[str, list[tuple[bool, bool]]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for name in images:
        result = engine(str(out / "images" / name))
        text = " ".join(result.txts or ())
        numbers = {float(x) for x in NUMBER.findall(text)}
        squashed = re.sub(r"\s+", "", text).lower()
        for row in meta[(meta["image"] == name) & (meta["entity_value"] != "")].itertuples():
            value = float(row.entity_value.split(" ", 1)[0])
            exact = re.sub(r"\s+", "", row.answer_text).lower() in squashed
            hits[row.kind].append((value in numbers, exact))
    dt = time.perf_counter() - t0
    every = [h for rows in hits.values() for h in rows]
    print(f"rapidocr over {len(images)} images ({dt / len(images):.2f} s/image), {len(every)} answer rows:")
    print(f"  answer number read: {sum(a for a, _ in every) / len(every):.1%}   "
          f"answer text read verbatim: {sum(b for _, b in every) / len(every):.1%}")
    for kind, rows in sorted(hits.items()):
        print(f"  {kind:<11} rows {len(rows):>3}  number {sum(a for a, _ in rows) / len(rows):6.1%}  "
              f"text {sum(b for _, b in rows) / len(rows):6.1%}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="images to render per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    ap.add_argument("--ocr", type=int, default=80, help="images to read with rapidocr (0: skip)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            out = Path(tmp) / f"w{w}"
            t0 = time.perf_counter()
            generate(out, args.n, args.seed, workers=w)
            dt = time.perf_counter() - t0
            print(f"generate n={args.n} workers={w}: {dt:.1f} s, {args.n / dt:.1f} images/s")
        labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
        meta = pd.read_csv(out / "meta.csv", dtype=str, keep_default_na=False)
        print(f"rows: {len(meta)} ({len(meta) / args.n:.2f} per image); test rows {len(labels)}, "
              f"empty truth {(labels.entity_value == '').mean():.1%} of test rows, "
              f"{(meta.entity_value == '').mean():.1%} of all rows")
        print("rows by entity:", dict(meta.entity_name.value_counts()))
        if args.ocr:
            ocr_reads(out, args.ocr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
