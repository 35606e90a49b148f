"""Fit the OCR engine's models (amlc.engines.ocr_model) on the development sets and write the file the
package ships (src/amlc/engines/ocr_model.json). Every figure printed is cross-validated, grouped by
image over all sets together: a model is never scored on an image it was fitted on.

    PYTHONPATH=src python bench/fit_ocr_model.py            # reads ../shared/amlc2024 (cached OCR)

Steps: read every labelled row the engine's way (the config's `ocr` section; OCR results are cached
under --cache-dir, so a second run costs seconds); choose inference.printed_threshold by
cross-validation (the one with the best blank-aware F1 on the hand-labelled rows, ties to the lower);
show what each pick feature is worth (choice accuracy without it); fit on every row; write the file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import ocr_dev
from amlc.config import load_config
from amlc.engines import load_engine
from amlc.engines.ocr_model import PICK_FEATURES, SHIPPED
from amlc.errors import ArgumentParser, cli
from amlc.paths import OUTPUTS_DIR, SHARED_DATA
from amlc.tables import write_text

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def policy_table(rows, runs, thresholds=THRESHOLDS) -> list[dict]:
    """For each printed threshold, the hand-labelled rows' figures, averaged over the CV runs."""
    hand = [i for i, r in enumerate(rows) if r.printed is not None]
    out = []
    for t in thresholds:
        figs = [ocr_dev.figures([rows[i] for i in hand], [ocr_dev.decide(answers[i], t) for i in hand])
                for answers in runs]
        out.append({"printed_threshold": t, **{k: statistics.mean(f[k] for f in figs) for k in figs[0]}})
    return out


def choice_accuracy(rows, runs) -> float:
    """Rows whose truth is among the candidates where the pick chose it (averaged over runs)."""
    have = [i for i, r in enumerate(rows) if any(ocr_dev.matches(c.prediction, r.truths) for c in r.ranked)]
    return statistics.mean(sum(ocr_dev.matches(a[i].prediction, rows[i].truths) for i in have) / len(have)
                           for a in runs)


def precision_threshold(rows, runs, target: float = 0.95) -> tuple[float, float, float]:
    """The lowest confidence threshold at which the answers left are right >= target of the time
    (every set, CV): (threshold, precision, share of the rows answered)."""
    for t in [x / 100 for x in range(0, 100)]:
        kept = [(r, a) for answers in runs for r, a in zip(rows, answers) if a.prediction and a.confidence >= t]
        if kept:
            precision = sum(ocr_dev.matches(a.prediction, r.truths) for r, a in kept) / len(kept)
            if precision >= target:
                return t, precision, len(kept) / (len(rows) * len(runs))
    return 1.0, 0.0, 0.0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and every flag's default."""


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0],
                       formatter_class=HelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA), help="folder with images_dev/, dims_dev/, test_dev/")
    p.add_argument("--config", default=None, help="YAML config whose `ocr` section reads the images")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="config override key=value, e.g. --set ocr.det_limit_side=960 (repeatable)")
    p.add_argument("--cache-dir", default=str(OUTPUTS_DIR / "ocr_cache"),
                   help="where OCR results are kept between runs ('' = nowhere)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (grouped by image)")
    p.add_argument("--seeds", type=int, default=3, help="cross-validation repeats with other fold draws")
    p.add_argument("--ablation", action="store_true", help="also score the pick without each feature")
    p.add_argument("--output", default=str(SHIPPED), help="where to write the model (the shipped file is the one the engine reads)")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    engine = load_engine("ocr", cfg)
    engine.settings["cache_dir"] = str(Path(args.cache_dir).resolve()) if args.cache_dir else ""
    rows = ocr_dev.load_rows(Path(args.data))
    print(f"{len(rows)} rows, {len({r.file for r in rows})} images "
          f"({', '.join(f'{s} {sum(r.set == s for r in rows)}' for s in ocr_dev.SETS)})")
    ocr_dev.read(rows, engine, cached=True)

    runs = [ocr_dev.cross_validate(rows, args.folds, seed) for seed in range(args.seeds)]
    print(f"\nchoice accuracy (the truth among the candidates, and chosen), CV over {args.seeds} fold "
          f"draws: {choice_accuracy(rows, runs):.4f}")
    if args.ablation:
        print("without one pick feature (CV, seed 0): choice accuracy")
        base = choice_accuracy(rows, runs[:1])
        for name in PICK_FEATURES:
            keep = [f for f in PICK_FEATURES if f != name]
            acc = choice_accuracy(rows, [ocr_dev.cross_validate(rows, args.folds, 0, pick_features=keep)])
            print(f"  {name:12} {acc:.4f} ({acc - base:+.4f})")

    table = policy_table(rows, runs)
    print("\nprinted threshold on the hand-labelled rows (dims_dev + test_dev), CV:")
    print(f"  {'threshold':>9} {'acc printed':>11} {'unprinted blank':>15} {'F1 blank-aware':>14} "
          f"{'F1 never-blank':>14}")
    for t in table:
        print(f"  {t['printed_threshold']:>9.1f} {t['accuracy_printed']:>11.4f} "
              f"{t['unprinted_blank']:>9.1f}/{t['unprinted_rows']:<5} {t['f1_blank_aware']:>14.4f} "
              f"{t['f1_never_blank']:>14.4f}")
    best = max(table, key=lambda t: (round(t["f1_blank_aware"], 4), -t["printed_threshold"]))
    chosen = best["printed_threshold"]
    print(f"chosen printed threshold: {chosen} (best blank-aware F1)")
    pt, prec, share = precision_threshold(rows, runs)
    print(f"precision >= 0.95: confidence threshold {pt:.2f} (precision {prec:.4f}, "
          f"{share:.1%} of the rows answered), CV")

    model = ocr_dev.fit(rows, printed_threshold=chosen)
    model.notes = {
        "fitted": datetime.date.today().isoformat(),
        "command": "PYTHONPATH=src python bench/fit_ocr_model.py " + " ".join(argv or sys.argv[1:]),
        "rows": {s: sum(r.set == s for r in rows) for s in ocr_dev.SETS},
        "ocr": {k: engine.settings[k] for k in ("det_limit_side", "det_min_side", "reread_det_limit_side")},
        "cv": {"folds": args.folds, "seeds": args.seeds, "choice_accuracy": round(choice_accuracy(rows, runs), 4),
               "printed_threshold": {str(t["printed_threshold"]): {k: round(v, 4) for k, v in t.items()}
                                     for t in table},
               "precision_095": {"confidence_threshold": pt, "precision": round(prec, 4),
                                 "answered": round(share, 4)}},
    }
    write_text(args.output, model.to_json())
    print(f"\nwrote {args.output}")
    print(json.dumps({k: {f: round(w, 3) for f, w in v.weights.items()} for k, v in model.pick.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
