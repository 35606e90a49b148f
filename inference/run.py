"""Predict one shard of the test set with an engine, resumably: `python inference/run.py --shard K --num-shards N`.

Shards are 0-based (K in 0..N-1) contiguous blocks of the input rows; the shard file
<preds_dir>/shard-K-of-N.jsonl grows batch by batch and a rerun after any kill resumes where it
stopped. Schemas: amlc.shards (shard file) and amlc.inference (side files, abstention).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# Runs from a plain checkout too (no install needed), like the other top-level scripts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

EPILOG = """\
shard numbering: 0-based. `--shard 3 --num-shards 8` is the 4th of 8 contiguous blocks of rows;
K and N default to AMLC_SHARD / AMLC_NUM_SHARDS, else a SLURM job array, else 0 and
inference.num_shards. A SLURM array job, one GPU per shard:

    #!/bin/bash
    #SBATCH --array=0-7          # 8 shards (1-8 works too: K = ID - SLURM_ARRAY_TASK_MIN)
    #SBATCH --gres=gpu:1
    python inference/run.py --engine vlm      # K and N from the array
    # same as: --shard $SLURM_ARRAY_TASK_ID --num-shards $SLURM_ARRAY_TASK_COUNT

other schedulers: export AMLC_SHARD=$((SGE_TASK_ID - 1)) AMLC_NUM_SHARDS=8 (or pass the flags).
one machine with 4 GPUs:
    for k in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$k python inference/run.py --engine vlm \\
        --shard $k --num-shards 4 --no-progress > shard-$k.log 2>&1 & done; wait
shards sharing one model server (vLLM data parallel, `python -m amlc.serve`, a hosted API; README):
    python inference/run.py --engine api api.base_url=http://gpu-node:8000/v1 api.model=amlc
Requeued or killed jobs just run again: rows already in the shard file are skipped. Then:

    python merge_csv.py --input_dir outputs/default/preds --test_filename dataset/test.csv \\
        --output_filename outputs/default/raw.csv

overrides: any config key as key=value after the flags, e.g. inference.batch_size=64
inference.thresholds.voltage=0.5 inference.prefetch_workers=8.
"""


def build_parser() -> argparse.ArgumentParser:
    from amlc.engines import ENGINES
    from amlc.errors import ArgumentParser

    p = ArgumentParser(
        prog="inference/run.py", description=__doc__.splitlines()[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="YAML", help="config file over the defaults (configs/*.yaml)")
    p.add_argument("--shard", type=int, metavar="K",
                   help="which shard to run, 0-based (0..N-1); default: $AMLC_SHARD, a SLURM array "
                        "task, else 0")
    p.add_argument("--num-shards", "--num_shards", dest="num_shards", type=int, metavar="N",
                   help="how many shards the input is cut into; default: $AMLC_NUM_SHARDS, "
                        "$SLURM_ARRAY_TASK_COUNT, else inference.num_shards (1)")
    p.add_argument("--engine", choices=sorted(ENGINES),
                   help="ocr (CPU, offline), vlm (fine-tuned Qwen2-VL, GPU) or api (any vision-language model "
                        "behind an OpenAI-compatible server: the api.* settings); default: inference.engine")
    p.add_argument("--input", metavar="CSV",
                   help="rows to predict, in test.csv layout (index,image_link,group_id,entity_name"
                        "[,entity_value]); default: data.test_csv")
    p.add_argument("--images", metavar="DIR",
                   help="image folder shared by all stages; missing images are fetched into it; "
                        "default: data.images_dir")
    p.add_argument("--output_dir", "--output-dir", dest="output_dir", metavar="DIR",
                   help="where shard-K-of-N.jsonl and its side files go; default: inference.preds_dir, "
                        "else <run.output_dir>/preds")
    p.add_argument("--no-download", action="store_true",
                   help="do not fetch missing images: their rows get an empty prediction "
                        "(reason image_missing) and are tried again by the next run; the --images "
                        "folder must exist; same as inference.download=false")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (the summary still prints)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. inference.batch_size=64")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from amlc.config import load_config
    from amlc.inference import run_shard
    from amlc.shards import resolve_shard

    overrides = list(args.overrides) + (["inference.download=false"] if args.no_download else [])
    cfg = load_config(args.config, overrides)
    k, n, _ = resolve_shard(args.shard, args.num_shards, cfg["inference"]["num_shards"])
    summary = run_shard(cfg, k, n, input_csv=args.input, images_dir=args.images,
                        output_dir=args.output_dir, engine=args.engine, progress=not args.no_progress)
    print(summary.format())
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
