"""GPU figures for the fine-tuning and vlm-engine issues, on random weights with Qwen2-VL-2B's real shapes.

No hub is needed: the model is built from Qwen2-VL-2B-Instruct's published config values (amlc.tiny,
2.21 B parameters, real vocabulary) with random weights, which cost exactly what the real ones cost.
It prints:

1. train: one LoRA SFT step through ms-swift (the project's train stage: rank 16, all-linear, frozen
   ViT, gradient checkpointing), bf16, MAX_PIXELS=313600 (400 visual tokens a row): median step time
   after warm-up, samples/s, and peak GPU memory (torch max allocated, and ms-swift's max reserved).
2. infer: the vlm engine (ms-swift TransformersEngine) images/s at batch 1 and larger batches, bf16 and
   bitsandbytes 4-bit (NF4), 16 new tokens per image, greedy. A random model never stops early, so
   every row generates the full 16 tokens (the real model stops after ~8: real throughput is higher).

    python bench/bench_gpu.py                       # both, ~5-10 minutes on one H100
    python bench/bench_gpu.py --what infer --batches 1 8 32 64
    python bench/bench_gpu.py --model-dir /data/random-2b   # reuse a folder built before

It needs a CUDA GPU (about 20 GB for the defaults) and says so otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MODELSCOPE_OFFLINE", "1")

MAX_PIXELS = 313600


def draw_images(folder: Path, n: int, size=(1200, 900)) -> list[Path]:
    """Product-photo-sized images (resized by ms-swift to <= MAX_PIXELS, i.e. 400 visual tokens)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = Image.new("RGB", size, (245, 245, 240))
        d = ImageDraw.Draw(img)
        d.rectangle((100 + i % 80, 100, 700, 600), fill=(40, 90 + i % 120, 170))
        d.text((120, 700), f"Net Wt {100 + i} g  ({(100 + i) / 28.35:.1f} oz)", fill=(0, 0, 0))
        p = folder / f"img{i}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def bench_train(model_dir: Path, work: Path, images: list[Path], *, batch: int, steps: int) -> None:
    import torch

    from amlc import finetune, swift_data
    from amlc.config import load_config
    from amlc.paths import CONFIGS_DIR

    rows = [swift_data.swift_row("item_weight", p, f"{100 + i}.0 gram") for i, p in enumerate(images)]
    train_jsonl = work / "train.jsonl"
    train_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(CONFIGS_DIR / "qwen2vl_2b.yaml", [
        f"train.model={model_dir}", "train.offline=true", f"train.batch_size={batch}",
        "train.gradient_accumulation_steps=1", f"train.max_steps={steps}", "train.logging_steps=1",
        f"train.save_steps={steps}", "train.warmup_ratio=0.0", f"train.max_pixels={MAX_PIXELS}",
        "train.torch_dtype=bfloat16"])
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = finetune.sft(cfg["train"], train_jsonl, None, work / "train", offline=True)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30
    # ms-swift logs the running mean step time (elapsed / steps) after every step: recover each step.
    logs = [json.loads(line) for line in Path(result["log"]).read_text().splitlines()]
    logs = [r for r in logs if "loss" in r and "train_speed(s/it)" in r]
    elapsed = [float(r["train_speed(s/it)"]) * (i + 1) for i, r in enumerate(logs)]
    step_times = [b - a for a, b in zip([0.0] + elapsed[:-1], elapsed)]
    warm = step_times[2:] or step_times
    med = statistics.median(warm)
    reserved = max((float(r.get("memory(GiB)", 0) or 0) for r in logs), default=0.0)
    print(f"\n[train] Qwen2-VL-2B shapes, random weights, bf16, LoRA r16 all-linear, frozen ViT, "
          f"gradient checkpointing, MAX_PIXELS={MAX_PIXELS}, batch {batch}")
    print(f"  steps {len(step_times)}; step times (s): {', '.join(f'{t:.3f}' for t in step_times)}")
    print(f"  one training step: {med:.3f} s median after warm-up ({batch / med:.2f} samples/s)")
    print(f"  peak GPU memory: {peak:.2f} GiB allocated, {reserved:.2f} GiB reserved (ms-swift log)")
    print(f"  whole sft call incl. model load: {wall:.1f} s")


def bench_infer(model_dir: Path, images: list[Path], *, batches: list[int], rows: int, new_tokens: int) -> None:
    import gc

    import torch

    from amlc.config import load_config
    from amlc.engines import Request
    from amlc.engines.vlm import VlmEngine

    reqs = [Request(index=i, entity_name="item_weight", image_path=images[i % len(images)]) for i in range(rows)]
    print(f"\n[infer] vlm engine (ms-swift TransformersEngine), Qwen2-VL-2B shapes, random weights, "
          f"MAX_PIXELS={MAX_PIXELS}, {new_tokens} new tokens, greedy, {rows} images per measurement")
    print(f"  {'weights':<10} {'batch':>5} {'seconds':>8} {'images/s':>9} {'peak GiB':>9}")
    for label, four_bit in (("bf16", False), ("4-bit nf4", True)):
        best, first = (0.0, 0), None
        engine = None
        for bs in batches:
            cfg = load_config(None, [f"vlm.model={model_dir}", f"vlm.max_batch_size={bs}",
                                     f"vlm.max_new_tokens={new_tokens}", f"vlm.max_pixels={MAX_PIXELS}",
                                     "vlm.torch_dtype=bfloat16", f"vlm.load_in_4bit={str(four_bit).lower()}",
                                     "train.offline=true"])
            if engine is None:
                engine = VlmEngine(cfg)
            engine.engine.max_batch_size = bs  # same loaded model, new batch size
            engine.predict(reqs[:bs])  # warm-up
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            for s in range(0, rows, bs):
                engine.predict(reqs[s:s + bs])
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            ips = rows / dt
            best = max(best, (ips, bs))
            first = first if first is not None else (ips, bs)
            print(f"  {label:<10} {bs:>5} {dt:>8.2f} {ips:>9.2f} {torch.cuda.max_memory_allocated() / 2**30:>9.2f}",
                  flush=True)
        print(f"  {label}: {first[0]:.2f} images/s at batch {first[1]}; best {best[0]:.2f} images/s "
              f"at batch {best[1]}")
        del engine
        gc.collect()
        torch.cuda.empty_cache()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="GPU training-step and inference figures (random Qwen2-VL-2B).")
    ap.add_argument("--what", choices=["train", "infer", "all"], default="all")
    ap.add_argument("--model-dir", type=Path, help="random 2B model folder to build or reuse (default: temp)")
    ap.add_argument("--train-batch", type=int, default=4, help="per-device batch of the training step")
    ap.add_argument("--train-steps", type=int, default=8, help="steps run (the first 2 are warm-up)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    ap.add_argument("--rows", type=int, default=64, help="images per inference measurement")
    ap.add_argument("--new-tokens", type=int, default=16)
    a = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("error: bench_gpu.py needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
              "bench/bench_vlm_cpu.py runs on CPU", file=sys.stderr)
        return 2
    from amlc import tiny

    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = a.model_dir or tmp / "random-qwen2vl-2b"
        t0 = time.perf_counter()
        tiny.build_qwen2vl_2b_random(model_dir, device="cuda")
        torch.cuda.empty_cache()
        print(f"random Qwen2-VL-2B model at {model_dir} ({time.perf_counter() - t0:.0f} s)")
        images = draw_images(tmp / "images", max(a.rows, a.train_batch * a.train_steps, 32))
        if a.what in ("train", "all"):
            bench_train(model_dir, tmp, images, batch=a.train_batch, steps=a.train_steps)
            torch.cuda.empty_cache()
        if a.what in ("infer", "all"):
            bench_infer(model_dir, images, batches=a.batches, rows=a.rows, new_tokens=a.new_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
