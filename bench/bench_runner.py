"""How fast is the shard runner itself? Prints rows/s with an engine that costs nothing.

The runner's own work per row (Pillow check of the image ahead of the engine, building requests,
JSON lines, one fsync per batch) must stay far below an engine's cost, so that a GPU engine is never
kept waiting. This runs inference/run.py's code path (amlc.inference.run_shard) over synthetic JPEGs
of product-photo size with a no-op engine, for a few batch sizes, and prints the throughput; then
it times the merge of the result. Nothing is downloaded.

    PYTHONPATH=src python bench/bench_runner.py [--rows 20000] [--images 3000] [--size 640]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from PIL import Image

import amlc.engines
from amlc.config import load_config
from amlc.constants import ENTITIES
from amlc.engines import Request, Result
from amlc.inference import merge_to_csv, run_shard


class NoopEngine:
    name = "noop"

    def predict(self, requests: list[Request]) -> list[Result]:
        return [Result(index=r.index, raw="500 g", prediction="500.0 gram", confidence=0.9) for r in requests]


def build(cfg: dict) -> NoopEngine:
    return NoopEngine()


class LocalFiles:
    """Downloader stand-in: every image is already in the folder."""

    @staticmethod
    def local_path(link: str, out_dir) -> Path:
        return Path(out_dir) / link.rsplit("/", 1)[-1]

    @staticmethod
    def download(*args, **kwargs):
        raise AssertionError("the bench never downloads")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--size", type=int, default=640, help="image side in pixels")
    ap.add_argument("--batch-sizes", default="8,32,128")
    args = ap.parse_args()
    amlc.engines.ENGINES["noop"] = __name__ if __name__ != "__main__" else "__main__"
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        t0 = time.perf_counter()
        base = Image.effect_noise((args.size, args.size), 64).convert("RGB")
        for j in range(args.images):
            base.save(images / f"im{j}.jpg", quality=85)
        print(f"made {args.images} JPEGs of {args.size}x{args.size} "
              f"({(images / 'im0.jpg').stat().st_size // 1024} KiB each) in {time.perf_counter() - t0:.1f} s")
        rows = [{"index": i, "image_link": f"https://x.invalid/images/I/im{rng.randrange(args.images)}.jpg",
                 "group_id": 1, "entity_name": ENTITIES[i % len(ENTITIES)]} for i in range(args.rows)]
        csv = root / "test.csv"
        pd.DataFrame(rows).to_csv(csv, index=False)
        for bs in (int(x) for x in args.batch_sizes.split(",")):
            cfg = load_config(overrides=[f"inference.batch_size={bs}", "inference.engine=noop"])
            out = root / f"preds-{bs}"
            s = run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=out,
                          downloader=LocalFiles, progress=False, log=lambda m: None)
            print(f"batch_size {bs:4d}: {s.predicted_now:,} rows in {s.infer_seconds:.2f} s -> "
                  f"{s.images_per_second:,.0f} rows/s runner overhead "
                  f"({1000 * s.infer_seconds / s.predicted_now:.3f} ms/row)")
        t0 = time.perf_counter()
        s = run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=out,
                      downloader=LocalFiles, progress=False, log=lambda m: None)
        print(f"resume of a finished shard ({s.done_before:,} rows): {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        merge_to_csv(out, csv, root / "raw.csv")
        print(f"merge of {args.rows:,} rows into RAW.csv: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
