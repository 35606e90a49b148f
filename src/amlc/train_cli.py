"""Command line of train/run.py: parse, load the config, run the chosen stages of amlc.train_recipe."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from amlc.train_recipe import STAGE_HELP, STAGES


def parser() -> argparse.ArgumentParser:
    stages = "\n".join(f"  {i}. {name:<9} {STAGE_HELP[name]}" for i, name in enumerate(STAGES, 1))
    from amlc.errors import ArgumentParser

    p = ArgumentParser(
        prog="train/run.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Turn the competition CSV into a fine-tuned, merged and 4-bit quantised "
                    "Qwen2-VL-2B-Instruct plus a validation F1, in numbered stages, each restartable "
                    "on its own. Every stage writes below run.output_dir and saves the resolved config "
                    "there as config.yaml.\n\nstages:\n" + stages,
        epilog="examples:\n"
               "  python train/run.py --config configs/qwen2vl_2b.yaml            # every stage\n"
               "  python train/run.py --config configs/smoke.yaml                 # CPU, offline, tiny model\n"
               "  python train/run.py --config configs/qwen2vl_2b.yaml --stage train train.learning_rate=2e-4\n"
               "  python train/run.py --config configs/qwen2vl_2b.yaml --from merge --to validate\n"
               "  NPROC_PER_NODE=4 python train/run.py --config configs/qwen2vl_2b.yaml --stage train\n"
               "\nconfig keys (see configs/qwen2vl_2b.yaml for each one's trade-off): sample.*, download.*,\n"
               "dataset.*, train.*, quantize.*, validate.*, vlm.*, run.*, data.*; unknown keys are errors.")
    p.add_argument("--config", help="YAML config file (configs/qwen2vl_2b.yaml for a real run, "
                                    "configs/smoke.yaml for the CPU smoke run); omitted: the built-in defaults")
    p.add_argument("--stage", choices=STAGES, metavar="NAME",
                   help=f"run only this stage (one of: {', '.join(STAGES)})")
    p.add_argument("--from", dest="start", choices=STAGES, metavar="NAME",
                   help="first stage to run (default: sample)")
    p.add_argument("--to", dest="stop", choices=STAGES, metavar="NAME",
                   help="last stage to run (default: validate)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.learning_rate=2e-4 sample.size=500 (values read as YAML)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)  # overrides may come before or after the options
    from amlc.config import load_config
    from amlc.train_recipe import Recipe, select_stages

    stages = select_stages(args.stage, args.start, args.stop)
    cfg = load_config(args.config, args.overrides)
    times = Recipe(cfg, progress=not args.no_progress).run(stages)
    total = sum(times.values())
    print("stage times: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()) + f"; total {total:.1f}s")
    return 0
