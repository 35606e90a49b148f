"""Merge the shard files of an inference run into one CSV in the test file's order.

    python merge_csv.py --input_dir outputs/default/preds --test_filename dataset/test.csv \\
        --output_filename outputs/default/raw.csv

The output (RAW.csv) has the columns index, prediction, candidate, confidence, printed, reason, raw (schema in
amlc.inference); postprocessing.py turns it into the submission. Missing, duplicate and unknown
indices, and shard files of different splits in one folder, are errors (schema: amlc.shards).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence

# Runs from a plain checkout too (no install needed), like the other top-level scripts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))


def build_parser() -> argparse.ArgumentParser:
    from amlc.errors import ArgumentParser

    p = ArgumentParser(prog="merge_csv.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--config", metavar="YAML",
                   help="config for the defaults below and for --rethreshold (its inference.thresholds; "
                        "thresholds that differ from the run's are refused without --rethreshold)")
    p.add_argument("--input_dir", "--input-dir", dest="input_dir", metavar="DIR",
                   help="folder of shard-K-of-N.jsonl files (one split); default: inference.preds_dir, "
                        "else <run.output_dir>/preds")
    p.add_argument("--test_filename", "--test-filename", dest="test_filename", metavar="CSV",
                   help="the file that was sharded (its index order is the output's); default: data.test_csv")
    p.add_argument("--output_filename", "--output-filename", dest="output_filename", metavar="CSV",
                   help="the merged file; default: <run.output_dir>/raw.csv")
    p.add_argument("--fill_missing", "--fill-missing", dest="fill_missing", action="store_true",
                   help="leave test rows that no shard predicted empty (reason missing_from_shards) "
                        "instead of failing; a shard file missing entirely is allowed too")
    p.add_argument("--rethreshold", action="store_true",
                   help="recompute each prediction from the engine's answer, confidence and P(printed) "
                        "with the config's inference.thresholds and inference.printed_threshold (e.g. "
                        "thresholds tuned on validation after the run, or printed_threshold=0 to answer "
                        "every row with a candidate) instead of keeping the ones applied at inference "
                        "time; the run's own thresholds are dropped unless the config repeats them")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. inference.thresholds={voltage: 0.5} or "
                        "inference.printed_threshold=0 (both with --rethreshold)")
    return p


def _refuse_unapplied_thresholds(cfg, overrides, input_dir) -> None:
    """Thresholds asked for without --rethreshold would be silently ignored: say so instead.

    Asked for: an inference.thresholds override, or a --config whose thresholds differ from the ones
    the shards were run with (their saved shard-K-of-N.config.yaml).
    """
    from amlc.config import DEFAULTS
    from amlc.errors import InputError
    from amlc.inference import check_thresholds

    hint = ("thresholds are applied at merge time only with --rethreshold (every prediction is then "
            "recomputed from the engine's answer, confidence and P(printed)); add --rethreshold")
    for text in overrides:
        if text.split("=", 1)[0].strip().startswith(("inference.thresholds", "inference.printed_threshold")):
            raise InputError(f"the override {text!r} would be ignored: {hint}, or drop it")
    wanted = (check_thresholds(cfg["inference"]["thresholds"]), float(cfg["inference"]["printed_threshold"]))
    if not wanted[0] and wanted[1] == DEFAULTS["inference"]["printed_threshold"]:
        return  # the config asks for nothing beyond the defaults
    applied = _run_thresholds(input_dir, wanted[1])
    if not applied or any(a != wanted for a in applied):
        got = f"{applied[0][0]}, {applied[0][1]}" if applied and applied[0] else "unknown"
        raise InputError(f"the config's inference.thresholds and printed_threshold ({wanted[0]}, "
                         f"{wanted[1]}) are not the ones the shards were run with ({got}): {hint}")


def _run_thresholds(input_dir, printed_default: float) -> list:
    """(thresholds, printed_threshold) each shard was run with, from its saved config (None where
    the file holds no inference section)."""
    from pathlib import Path

    from amlc.config import read_yaml
    from amlc.inference import check_thresholds
    from amlc.tables import read_text

    saved = sorted(Path(input_dir).glob("shard-*-of-*.config.yaml")) if Path(input_dir).is_dir() else []
    applied = []
    for path in saved:
        data = read_yaml(read_text(path, "shard config"), path)
        section = data.get("inference") if isinstance(data, dict) else None
        applied.append((check_thresholds(section.get("thresholds") or {}),
                        float(section.get("printed_threshold", printed_default)))
                       if isinstance(section, dict) else None)
    return applied


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from amlc.config import load_config, resolve_path
    from amlc.inference import merge_to_csv, preds_dir

    cfg = load_config(args.config, args.overrides)
    input_dir = args.input_dir or preds_dir(cfg)
    test = args.test_filename or resolve_path(cfg["data"]["test_csv"])
    output = args.output_filename or resolve_path(cfg["run"]["output_dir"]) / "raw.csv"
    printed = float(cfg["inference"]["printed_threshold"])
    thresholds = cfg["inference"]["thresholds"] if args.rethreshold else None
    if not args.rethreshold:
        _refuse_unapplied_thresholds(cfg, args.overrides, input_dir)
    else:  # say what changes: the run's own thresholds are not kept
        runs = {repr(a) for a in _run_thresholds(input_dir, printed) if a is not None}
        was = "; the run's: " + " / ".join(sorted(runs)) if runs else ""
        print(f"rethreshold: inference.thresholds {dict(thresholds or {})}, printed_threshold {printed:g}"
              f" (thresholds, printed_threshold{was})")
    result, frame = merge_to_csv(input_dir, test, output, fill_missing=args.fill_missing,
                                 thresholds=thresholds,
                                 printed_threshold=printed)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    empty = frame["prediction"] == ""
    reasons = Counter(r.split(":", 1)[0] for r in frame.loc[empty, "reason"])
    detail = ", ".join(f"{k or 'unknown'} {v:,}" for k, v in reasons.most_common())
    print(f"merged {len(result.files)} shard file(s) of {result.num_shards} -> {output}: "
          f"{len(frame):,} rows, {int((~empty).sum()):,} non-empty, {int(empty.sum()):,} empty"
          + (f" ({detail})" if detail else "")
          + (f"; {result.filled:,} filled as missing" if result.filled else ""))
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
