"""Tune the per-entity abstention thresholds on a labelled inference run; write them as a config.

    python inference/run.py --input outputs/default/val.csv --output_dir outputs/default/val_preds
    python inference/tune_thresholds.py --input outputs/default/val.csv \\
        --preds_dir outputs/default/val_preds --output configs/thresholds.yaml

The output is a config fragment (`inference: {thresholds: {...}}`): pass it with --config, or copy
the block into your config. Thresholds maximise the overall F1 on those rows (amlc.inference explains
why a blank can beat an answer); apply them to a finished test run without re-inferring with
`merge_csv.py --config configs/thresholds.yaml --rethreshold ...`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# Runs from a plain checkout too (no install needed), like the other top-level scripts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def build_parser() -> argparse.ArgumentParser:
    from amlc.errors import ArgumentParser

    p = ArgumentParser(prog="inference/tune_thresholds.py", description=__doc__.splitlines()[0],
                                epilog="\n".join(__doc__.splitlines()[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="CSV",
                   help="the labelled rows that were inferred (test.csv layout plus entity_value)")
    p.add_argument("--preds_dir", "--preds-dir", dest="preds_dir", required=True, metavar="DIR",
                   help="the shard files of the inference run over --input (all shards finished)")
    p.add_argument("--output", metavar="YAML", help="write the thresholds here as a config fragment")
    p.add_argument("--acceptable", action="store_true",
                   help="truths list acceptable answers separated by | and match by number and unit "
                        "(the hand-labelled dims_dev set), as in amlc.metric")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from amlc.config import save_config
    from amlc.inference import tune_from_preds

    thresholds, report = tune_from_preds(args.input, args.preds_dir, acceptable=args.acceptable)
    print(f"{'entity':32s} {'rows':>7s} {'threshold':>10s} {'F1 before':>10s} {'F1 after':>9s}")
    for r in report:
        th = "" if r["threshold"] is None else f"{r['threshold']:.4f}"
        print(f"{r['entity']:32s} {r['rows']:7d} {th:>10s} {r['f1_before']:10.4f} {r['f1_after']:9.4f}")
    if args.output:
        save_config({"inference": {"thresholds": thresholds}},
                    args.output)
        print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
