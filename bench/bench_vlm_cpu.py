"""images/s of the vlm engine by batch size, tiny random Qwen2-VL on CPU: the mechanics, not the real speed.

The model (amlc.tiny, ~10 M parameters) is built offline in a temporary folder; images are drawn with
Pillow. A random model never says "stop", so every row generates exactly --new-tokens tokens, which
keeps the work per row constant across batch sizes. What the numbers show is how ms-swift's
TransformersEngine batching scales on this CPU (template encoding, image preprocessing, generate), not
how fast Qwen2-VL-2B runs: for that see bench/bench_gpu.py.

    PYTHONPATH=src python bench/bench_vlm_cpu.py [--rows 32] [--batches 1 2 4 8 16] [--new-tokens 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MODELSCOPE_OFFLINE", "1")


def draw_images(folder: Path, n: int) -> list[Path]:
    from PIL import Image, ImageDraw

    paths = []
    for i in range(n):
        img = Image.new("RGB", (640, 480), (250, 250, 245))
        d = ImageDraw.Draw(img)
        d.rectangle((40 + i % 50, 40, 300, 200), fill=(30, 90 + i % 100, 160))
        d.text((60, 300), f"Net Wt {100 + i} g", fill=(0, 0, 0))
        p = folder / f"img{i}.png"
        img.save(p)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=32, help="images per measurement")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--max-pixels", type=int, default=50176, help="MAX_PIXELS (50176 = 64 visual tokens)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice, one per core). On a machine shared with "
                         "other busy processes 1 is steadier: spinning OpenMP threads stall each other")
    ap.add_argument("--repeat", type=int, default=3, help="passes per batch size; the fastest is reported "
                                                           "(a shared CPU is noisy)")
    a = ap.parse_args(argv)

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from amlc import tiny
    from amlc.config import load_config
    from amlc.engines import Request
    from amlc.engines.vlm import VlmEngine

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tiny.build_tiny(tmp / "tiny")
        images = draw_images(tmp, a.rows)
        reqs = [Request(index=i, entity_name="item_weight", image_path=p) for i, p in enumerate(images)]
        print(f"tiny random Qwen2-VL on CPU ({torch.get_num_threads()} threads), {a.rows} images of 640x480, "
              f"MAX_PIXELS={a.max_pixels}, {a.new_tokens} new tokens, greedy")
        print(f"{'batch':>5} {'seconds':>8} {'images/s':>9} {'tokens/s':>9}   (fastest of {a.repeat} passes)")
        engine = None
        for bs in a.batches:
            cfg = load_config(None, [f"vlm.model={model}", f"vlm.max_batch_size={bs}",
                                     f"vlm.max_new_tokens={a.new_tokens}", f"vlm.max_pixels={a.max_pixels}",
                                     "train.offline=true"])
            if engine is None:
                engine = VlmEngine(cfg)
            engine.engine.max_batch_size = bs  # the same loaded model, a new batch size
            engine.predict(reqs[:bs])  # warm-up
            dt = float("inf")
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                for s in range(0, len(reqs), bs):
                    engine.predict(reqs[s:s + bs])
                dt = min(dt, time.perf_counter() - t0)
            print(f"{bs:>5} {dt:>8.2f} {a.rows / dt:>9.2f} {a.rows * a.new_tokens / dt:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
