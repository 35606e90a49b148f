"""The OCR engine on every labelled development set: accuracy, F1 under each hypothesis, speed.

    PYTHONPATH=src python bench/bench_ocr.py             # OCR for real (timed), then the figures
    PYTHONPATH=src python bench/bench_ocr.py --cached    # OCR from --cache-dir: figures in seconds
    PYTHONPATH=src python bench/bench_ocr.py --set ocr.det_limit_side=960    # another setting

Sets (bench/ocr_dev.py): images_dev (catalogue labels, exact text), dims_dev and test_dev (two
annotators' acceptable answers; "" where the image does not print the value). The engine's fitted
choices (amlc.engines.ocr_model) are cross-validated: each row is answered by models fitted on the
other folds (grouped by image, over all sets together), never by one that saw its image.

Per set and entity: the first-mention baseline's accuracy (rapidocr at its defaults, the first
"number unit" whose unit the entity allows: what most teams did); the ceiling (printed rows whose
truth is among the engine's candidates); accuracy on printed rows; F1 by number and unit, blank-aware
(an unprinted row left blank is a true negative) and never-blank (every blank is a miss, as if the
hidden truth always had a value); unprinted rows left blank; on images_dev the exact-text F1 the
leaderboard computes, with the post stage's whole-number styles (amlc.formats, learned from train.csv
without the scored rows). Then the answering policies side by side, and seconds per image (wall,
median and p90, and CPU) by the image's long side: the engine's whole work on an image (OCR, the
lines of a drawing, the rules and models of each of its rows, the second read), on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import ocr_dev
from amlc.config import load_config
from amlc.engines import load_engine
from amlc.errors import ArgumentParser, cli
from amlc.paths import OUTPUTS_DIR, SHARED_DATA
from amlc.units import DIMENSIONS

# What most competitors ran: rapidocr at its defaults on the full image.
BASELINE_SETTINGS = {"det_limit_side": 0, "det_min_side": 0, "max_side": 2000, "min_side": 30,
                     "use_cls": True, "text_score": 0.5}


def entity_table(rows, preds, styled=None) -> list[str]:
    head = (f"  {'entity':<30}{'rows':>5}{'base':>7}{'ceil':>7}{'acc':>7}{'F1 blank':>9}{'F1 never':>9}"
            f"{'unprinted blank':>16}" + (f"{'exact F1':>9}" if styled is not None else ""))
    lines = [head]
    groups = sorted({r.entity for r in rows}, key=lambda e: (e not in DIMENSIONS, e)) + ["ALL"]
    for e in groups:
        idx = [i for i, r in enumerate(rows) if e == "ALL" or r.entity == e]
        part = [rows[i] for i in idx]
        f = ocr_dev.figures(part, [preds[i] for i in idx])
        base = ocr_dev.figures(part, [r.baseline for r in part])
        acc = f.get("accuracy_printed", f["right"] / max(f["rows"], 1))
        base_acc = base.get("accuracy_printed", base["right"] / max(base["rows"], 1))
        unpr = f"{f['unprinted_blank']}/{f['unprinted_rows']}" if "unprinted_rows" in f else "-"
        line = (f"  {e:<30}{f['rows']:>5}{base_acc:>7.3f}{ocr_dev.ceiling(part):>7.3f}{acc:>7.3f}"
                f"{f['f1_blank_aware']:>9.4f}{f['f1_never_blank']:>9.4f}{unpr:>16}")
        if styled is not None:
            line += f"{ocr_dev.exact_f1(part, [styled[i] for i in idx]):>9.4f}"
        lines.append(line)
    return lines


def styled_predictions(rows, preds, data: Path) -> list[str] | None:
    """images_dev's predictions written in the catalogue's whole-number styles (amlc.formats),
    learned from train.csv without the rows scored (images_dev's index is the train.csv row)."""
    from amlc.formats import learn_file, restyle

    train = data / "train.csv"
    if not train.exists():
        return None
    table, _ = learn_file(train, {r.index for r in rows if r.set == "images_dev"})
    return [restyle(p, r.entity, r.group, table) if p else p for r, p in zip(rows, preds)]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and every flag's default."""


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0],
                       formatter_class=HelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default=str(SHARED_DATA), help="folder with images_dev/, dims_dev/, test_dev/")
    p.add_argument("--sets", default=",".join(ocr_dev.SETS), help="comma-separated sets to read")
    p.add_argument("--limit", type=int, default=None, help="only N images per set (a seeded subset)")
    p.add_argument("--config", default=None, help="YAML config whose `ocr` and `inference` sections to use")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="config override key=value, e.g. --set ocr.det_limit_side=960 (repeatable)")
    p.add_argument("--cache-dir", default=str(OUTPUTS_DIR / "ocr_cache"),
                   help="where OCR results are kept for --cached runs ('' = nowhere)")
    p.add_argument("--cached", action="store_true", help="reuse OCR results from --cache-dir (no timings)")
    p.add_argument("--no-baseline", action="store_true", help="skip the first-mention baseline's read")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by image")
    p.add_argument("--seed", type=int, default=0, help="the fold draw (and --limit's subset)")
    p.add_argument("--json", default=None, help="also write the figures here as JSON")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    engine = load_engine("ocr", cfg)
    cache = str(Path(args.cache_dir).resolve()) if args.cache_dir else ""
    engine.settings["cache_dir"] = cache
    data = Path(args.data)
    rows = ocr_dev.load_rows(data, [s.strip() for s in args.sets.split(",") if s.strip()], args.limit, args.seed)
    load0 = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    s = engine.settings
    print(f"ocr: det_limit_side {s['det_limit_side']}, det_min_side {s['det_min_side']}, "
          f"reread_det_limit_side {s['reread_det_limit_side']}, threads {s['threads']}; "
          f"{len(rows)} rows, {len({r.file for r in rows})} images")
    if not args.cached:
        engine.read(_blank_image(), use_cache=False)  # the models' one-off load is no per-image cost
    baseline = None if args.no_baseline else {**BASELINE_SETTINGS, "cache_dir": cache, "threads": s["threads"]}
    timings = ocr_dev.read(rows, engine, cached=args.cached, baseline=baseline)

    answers = ocr_dev.cross_validate(rows, args.folds, args.seed)
    threshold = float(cfg["inference"]["printed_threshold"])
    preds = [ocr_dev.decide(a, threshold) for a in answers]
    styled = styled_predictions(rows, preds, data)
    out: dict = {"settings": {k: s[k] for k in ("det_limit_side", "det_min_side", "reread_det_limit_side")},
                 "printed_threshold": threshold, "sets": {}}
    print(f"\nanswers cross-validated ({args.folds} folds grouped by image, all sets together), "
          f"inference.printed_threshold {threshold}")
    print("base: the first-mention baseline's accuracy; ceil: printed rows whose truth is among the "
          "candidates; acc: accuracy on printed rows")
    sizes = {r.file: r.size for r in rows}
    for name in ocr_dev.SETS:
        idx = [i for i, r in enumerate(rows) if r.set == name]
        if not idx:
            continue
        part = [rows[i] for i in idx]
        print(f"\n=== {name}: {len(part)} rows, {len({r.file for r in part})} images, "
              f"{sum(r.reread for r in part)} rows answered from a second read ===")
        sub_styled = [styled[i] for i in idx] if styled is not None and name == "images_dev" else None
        print("\n".join(entity_table(part, [preds[i] for i in idx], sub_styled)))
        figs = {"default": ocr_dev.figures(part, [preds[i] for i in idx]),
                "answer_all": ocr_dev.figures(part, [answers[i].prediction for i in idx])}
        if sub_styled is not None:
            figs["exact_f1_styled"] = ocr_dev.exact_f1(part, sub_styled)
        figs["ceiling"] = ocr_dev.ceiling(part)
        if part[0].printed is not None:
            print("\n".join(policy_table(part, [answers[i] for i in idx], threshold)))
        print("\n".join(ocr_dev.timing_line({f: t for f, t in timings.items() if f in {r.file for r in part}},
                                            sizes)))
        if name == "test_dev" and timings:
            project_test_run(data, [timings[f][0] for f in timings if f in {r.file for r in part}])
        out["sets"][name] = figs
    load1 = os.getloadavg()
    print(f"\nmachine load average {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end")
    if timings:
        out["seconds_per_image_median"] = statistics.median(t[0] for t in timings.values())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


def policy_table(rows, answers, printed_threshold: float, precision: float = 0.95) -> list[str]:
    """The README's three ways to submit, on hand-labelled rows, under both hypotheses about the
    hidden truth. A prior-filled guess on an unprinted row counts as a miss under "never blank"
    (its catalogue label is unknown here; such guesses hit 8-11% of catalogue rows)."""
    from amlc.catalogue import load as load_catalogue

    catalogue = load_catalogue()
    default = [ocr_dev.decide(a, printed_threshold) for a in answers]
    answer_all = [a.prediction for a in answers]
    filled = [p or catalogue.prior_value(r.entity, r.group) for r, p in zip(rows, answer_all)]
    sure = [ocr_dev.decide(a, 0.0, precision) for a in answers]
    lines = [f"  {'policy':<44}{'answered':>9}{'precision':>10}{'acc':>7}{'F1 blank':>9}{'F1 never':>9}"
             f"{'unprinted blank':>16}"]
    for name, preds in [(f"default (printed_threshold {printed_threshold})", default),
                        ("every row with a candidate (threshold 0)", answer_all),
                        ("never blank: answer all, --fill prior", filled),
                        (f"precision: confidence >= {precision}", sure)]:
        f = ocr_dev.figures(rows, preds)
        answered = sum(bool(p) for p in preds)
        prec = f["right"] / answered if answered else 0.0
        lines.append(f"  {name:<44}{answered / len(rows):>9.3f}{prec:>10.3f}{f['accuracy_printed']:>7.3f}"
                     f"{f['f1_blank_aware']:>9.4f}{f['f1_never_blank']:>9.4f}"
                     f"{f['unprinted_blank']:>11}/{f['unprinted_rows']:<4}")
    return lines


def project_test_run(data: Path, seconds: list[float]) -> None:
    """The OCR share of a whole leaderboard run: test.csv's distinct images at test_dev's mean
    wall seconds (test_dev is drawn from those images; one process, both cores)."""
    test = Path(data) / "test.csv"
    if not test.is_file() or not seconds:
        return
    from amlc.tables import read_table

    table = read_table(test, ["image_link"])
    images = len(set(table["image_link"]))
    mean = statistics.fmean(seconds)
    print(f"  a test.csv run ({len(table):,} rows, {images:,} images) at test_dev's mean {mean:.3f} s "
          f"per image: {images * mean / 3600:.1f} hours of OCR on this machine")


def _blank_image():
    from PIL import Image

    return Image.new("RGB", (64, 32), "white")


if __name__ == "__main__":
    sys.exit(cli(main))
