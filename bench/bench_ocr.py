"""OCR engine figures: F1 and seconds per photo of the first-mention baseline and of the `ocr` engine.

On ../shared/amlc2024/images_dev (real product photos; exact-match F1, the competition's rule, plus
number-and-unit F1 to show what formatting like "500 gram" vs "500.0 gram" costs) and dims_dev
(hand-labelled dimension drawings; its `acceptable` answers, matched by number and unit), in one run:

    PYTHONPATH=src python bench/bench_ocr.py                 # everything, OCR run for real (timed)
    PYTHONPATH=src python bench/bench_ocr.py --limit 20      # a quick check on 20 images per set
    PYTHONPATH=src python bench/bench_ocr.py --cached        # reuse the boxes on disk: rules only,
                                                             # no timings
    PYTHONPATH=src python bench/bench_ocr.py --sweep 0,736,960,1280 --limit 60  # F1 vs s/photo

Baseline: what most teams did. rapidocr at its defaults on the full image (RapidOCR()(path)), its
texts joined by spaces, then the first "number unit" mention whose unit the entity allows
(amlc.units.normalize). Ours: amlc.engines.ocr with the config's `ocr` section, scored as it answers
and after the runner's abstention under `inference.thresholds` (when the config sets none, the
engine's SUGGESTED_THRESHOLDS), and on images_dev also with the post stage's whole-number styles
(amlc.formats) learned from train.csv minus the rows scored. With `--set ocr.reread_det_limit_side=N`
the engine reads again, with the detector at N, the photos where the first read found no mention:
the F1 and s/photo of the first read alone are printed beside those with the re-reads.

Timings are wall-clock seconds per image from real, uncached OCR runs in this process (image decode
included; the models' one-off load excluded), on this machine, and the CPU-seconds the process used
for them; the load average is printed because the machine may be shared: on a loaded machine the wall
time measures the contention, and `--set ocr.threads=1` (no thread spinning) makes the CPU-seconds a
fair estimate of an idle single core's wall time. Every OCR result is also stored under --cache-dir (outputs/, ignored by git),
so a later --cached run re-scores rule changes in seconds. F1 is also printed for two halves of each
set, split by image with a fixed seed, so that a rule tuned on one half can be checked on the other.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from amlc.config import load_config
from amlc.engines import load_engine
from amlc.engines.ocr import SUGGESTED_THRESHOLDS
from amlc.engines.ocr_rules import DIMENSIONS
from amlc.errors import InputError, cli
from amlc.formats import learn_file, restyle
from amlc.metric import format_table, per_entity, score
from amlc.paths import OUTPUTS_DIR, SHARED_DATA
from amlc.units import normalize

SETS = {"images_dev": False, "dims_dev": True}  # name -> acceptable-answers scoring
BASELINE_SETTINGS = {"det_limit_side": 0, "max_side": 2000, "min_side": 30, "use_cls": True,
                     "text_score": 0.5}


def load_set(data: Path, name: str, limit: int | None, seed: int) -> pd.DataFrame:
    labels = data / name / "labels.csv"
    if not labels.exists():
        raise InputError(f"{labels} not found (the development data lives in ../shared/amlc2024)")
    df = pd.read_csv(labels, dtype=str, keep_default_na=False)
    df["file"] = [str(data / name / link.rsplit("/", 1)[1]) for link in df["image_link"]]
    df["truth"] = df["acceptable"] if SETS[name] else df["entity_value"]
    files = sorted(set(df["file"]))
    random.Random(seed).shuffle(files)
    half_a = set(files[: len(files) // 2])
    df["half"] = ["A" if f in half_a else "B" for f in df["file"]]
    if limit:  # a random subset across both halves
        keep = set(random.Random(seed + 1).sample(files, min(limit, len(files))))
        df = df[df["file"].isin(keep)].reset_index(drop=True)
    return df


def read_all(files: Sequence[str], settings: dict, cached: bool, what: str,
             progress: bool = True, segments_for: frozenset = frozenset()) -> tuple[dict, dict]:
    """file -> Page, and file -> (wall seconds, CPU seconds of this process) of each uncached read."""
    from amlc.engines.ocr import read_page

    pages, seconds = {}, {}
    for f in tqdm(files, desc=what, unit="img", leave=False, mininterval=5, disable=not progress):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            # the lines of a drawing are found while timing when a dimension is asked about it,
            # as the engine does
            page = read_page(f, settings, use_cache=cached, with_segments=f in segments_for)
        except Exception as exc:  # a broken file in a dev set: scored as read-nothing
            print(f"  {what}: {Path(f).name}: {exc}", file=sys.stderr)
            page = None
        if page is not None and not page.cached:
            seconds[f] = (time.perf_counter() - t0, time.process_time() - c0)
        pages[f] = page
    return pages, seconds


def read_interleaved(files: Sequence[str], settings: Sequence[dict], cached: bool, what: str,
                     segments_for: Sequence[frozenset]) -> list[tuple[dict, dict]]:
    """read_all for several settings at once, one image at a time through each of them."""
    out: list[tuple[dict, dict]] = [({}, {}) for _ in settings]
    for f in tqdm(files, desc=what, unit="img", leave=False, mininterval=5):
        for k, st in enumerate(settings):
            pages, secs = read_all([f], st, cached, "", progress=False,
                                   segments_for=segments_for[k])
            out[k][0].update(pages)
            out[k][1].update(secs)
    return out


def warm_up(settings: dict) -> None:
    """Load the models once before timing (their one-off start is not a per-photo cost)."""
    from PIL import Image

    from amlc.engines.ocr import read_page

    read_page(Image.new("RGB", (64, 32), "white"), settings, use_cache=False)


def f1_line(df: pd.DataFrame, col: str, acceptable: bool) -> str:
    parts = []
    for half in ("A", "B"):
        part = df[df["half"] == half]
        parts.append(f"{half} {score(part[col], part['truth'], acceptable).f1:.4f}")
    total = score(df[col], df["truth"], acceptable).f1
    return f"F1 {total:.4f}  (halves: {' / '.join(parts)}, {len(df)} rows)"


def seconds_line(timed: dict[str, tuple[float, float]]) -> str:
    seconds = list(timed.values())
    if not seconds:
        return "timing: none (every image came from the cache; run without --cached)"
    wall = sorted(w for w, _ in seconds)
    cpu = sum(c for _, c in seconds) / len(seconds)
    return (f"s/photo: mean {sum(wall) / len(wall):.3f} wall (median {wall[len(wall) // 2]:.3f}, "
            f"max {wall[-1]:.3f}), {cpu:.3f} CPU-seconds of this process, over {len(wall)} "
            f"uncached images")


def print_scored(df: pd.DataFrame, col: str, acceptable: bool,
                 timed: dict[str, tuple[float, float]], what: str) -> dict:
    """Print a column's F1 (and, on exact-match sets, by number and unit) and its timing."""
    print(f"{what}: {f1_line(df, col, acceptable)}")
    if not acceptable:
        print(f"  scored by number and unit instead: {f1_line(df, col, True)}")
    print(f"  {seconds_line(timed)}")
    return {"f1": score(df[col], df["truth"], acceptable).f1, "seconds": list(timed.values())}


def with_thresholds(df: pd.DataFrame, thresholds: dict) -> pd.Series:
    """ours after the runner's abstention (amlc.inference.abstain) under `thresholds`."""
    from amlc.inference import abstain

    return pd.Series(["" if abstain(c, p, e, thresholds) else c
                      for c, p, e in zip(df["ours"], df["conf"], df["entity_name"])], index=df.index)


def tune_halves(df: pd.DataFrame, acceptable: bool) -> dict:
    """amlc.inference.tune_thresholds fitted on one half, scored on the other (and on all)."""
    from amlc.inference import tune_thresholds

    out = {}
    for fit, check in (("A", "B"), ("B", "A"), ("all", "all")):
        fit_df = df if fit == "all" else df[df["half"] == fit]
        check_df = df if check == "all" else df[df["half"] == check]
        th = tune_thresholds(fit_df["entity_name"].tolist(), fit_df["truth"].tolist(),
                             fit_df["ours"].tolist(), fit_df["conf"].tolist(), acceptable=acceptable)
        out[fit] = {"thresholds": {k: v for k, v in th.items() if v}, "scored_on": check,
                    "f1_before": score(check_df["ours"], check_df["truth"], acceptable).f1,
                    "f1_after": score(with_thresholds(check_df, th), check_df["truth"], acceptable).f1}
    return out


def run_set(name: str, args, cfg: dict) -> dict:
    acceptable = SETS[name]
    df = load_set(Path(args.data), name, args.limit, args.seed)
    files = sorted(set(df["file"]))
    cache_dir = str(Path(args.cache_dir).resolve()) if args.cache_dir else ""
    base_settings = {**BASELINE_SETTINGS, "cache_dir": cache_dir, "threads": cfg["ocr"]["threads"]}
    engine = load_engine("ocr", cfg)
    engine.settings["cache_dir"] = cache_dir
    print(f"\n=== {name}: {len(files)} images, {len(df)} rows "
          f"({'acceptable answers, number and unit' if acceptable else 'exact match'}) ===")
    result: dict = {"images": len(files), "rows": len(df)}
    settings = [engine.settings] if args.no_baseline else [base_settings, engine.settings]
    if not args.cached:
        for st in settings:
            warm_up(st)
    # baseline and ours image by image, so that both see the same machine load
    dims = frozenset(df.loc[df["entity_name"].isin(DIMENSIONS), "file"])
    segs = [frozenset()] * (len(settings) - 1) + [dims]  # the baseline never looks for lines
    read = read_interleaved(files, settings, args.cached, f"{name} OCR", segs)
    pages, secs = read[-1]
    if not args.no_baseline:
        base_pages, base_secs = read[0]
        df["baseline"] = [normalize(base_pages[f].ocr_text, e) if base_pages[f] else ""
                          for f, e in zip(df["file"], df["entity_name"])]
        result["baseline"] = print_scored(df, "baseline", acceptable, base_secs,
                                          "baseline (rapidocr defaults, full size, first allowed mention)")
    # the engine's answer: the rules on the first read, and a second, fuller read where they found
    # no mention when ocr.reread_det_limit_side asks for it (timed, and added to its photo's time)
    reread = int(engine.settings["reread_det_limit_side"]) >= 0
    results, first, extra = [], [], {}
    for f, e in zip(df["file"], df["entity_name"]):
        if pages[f] is None:
            results.append(None)
            first.append("")
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        r = engine.answer(pages[f], e, image=f, use_cache=args.cached)
        if r.extra.get("reread"):  # only where the first read found no mention: its answer was ""
            w, c = extra.get(f, (0.0, 0.0))
            extra[f] = (w + time.perf_counter() - t0, c + time.process_time() - c0)
        first.append("" if r.extra.get("reread") else r.prediction)
        results.append(r)
    first_secs = secs
    secs = {f: (w + extra.get(f, (0, 0))[0], c + extra.get(f, (0, 0))[1]) for f, (w, c) in secs.items()}
    df["ours"] = [r.prediction if r else "" for r in results]
    df["conf"] = [float(r.confidence or 0.0) if r else 0.0 for r in results]
    df["reason"] = [r.reason if r else "unreadable image" for r in results]
    df["raw"] = [r.raw if r else "" for r in results]
    s = engine.settings
    if reread:
        df["ours_first"] = first
        print(f"ours, first read only (det_limit_side {s['det_limit_side']}): "
              f"{f1_line(df, 'ours_first', acceptable)}")
        print(f"  {seconds_line(first_secs)}")
        print(f"  re-read at det_limit_side {s['reread_det_limit_side']} where it found no "
              f"mention: {len(extra)} of {len(files)} images")
        result["ours_first"] = {"f1": score(df["ours_first"], df["truth"], acceptable).f1,
                                "rereads": len(extra)}
    result["ours"] = print_scored(df, "ours", acceptable, secs,
                                  f"ours (det_limit_side {s['det_limit_side']}"
                                  f"{', re-read ' + str(s['reread_det_limit_side']) if reread else ''}"
                                  f", cls {s['use_cls']}, no abstention)")
    thresholds = dict(cfg["inference"]["thresholds"]) or dict(SUGGESTED_THRESHOLDS)
    df["ours_abstaining"] = with_thresholds(df, thresholds)
    print(f"ours + abstention (inference.thresholds {thresholds}): "
          f"{f1_line(df, 'ours_abstaining', acceptable)}")
    result["ours_abstaining"] = {"f1": score(df["ours_abstaining"], df["truth"], acceptable).f1,
                                 "thresholds": thresholds}
    train_csv = Path(args.data) / "train.csv"
    if not acceptable and "group_id" in df.columns and train_csv.exists():
        # The post stage's whole-number styles (amlc.formats), learned from train.csv without the
        # rows scored here (images_dev's index is the train.csv row number).
        table, _ = learn_file(train_csv, {int(i) for i in df["index"]})
        df["ours_styled"] = [restyle(p, e, g, table) if p else p for p, e, g
                             in zip(df["ours_abstaining"], df["entity_name"], df["group_id"])]
        print(f"ours + abstention + whole-number styles learned from train.csv: "
              f"{f1_line(df, 'ours_styled', acceptable)}")
        result["ours_styled"] = {"f1": score(df["ours_styled"], df["truth"], acceptable).f1}
    print(format_table(per_entity(df.rename(columns={"ours_abstaining": "prediction"}),
                                  "prediction", "truth", acceptable)))
    if args.tune:
        t = tune_halves(df, acceptable)
        for fit, v in t.items():
            print(f"  thresholds fitted on {fit}: {v['thresholds'] or 'none'} -> F1 on "
                  f"{v['scored_on']} {v['f1_before']:.4f} -> {v['f1_after']:.4f}")
        result["tune"] = t
    if args.sweep:
        result["sweep"] = []
        print("detector size sweep (uncached OCR, ours' rules):")
        for side in [int(x) for x in args.sweep.split(",")]:
            eng = load_engine("ocr", load_config(args.config, [*args.overrides,
                                                               f"ocr.det_limit_side={side}"]))
            eng.settings["cache_dir"] = cache_dir
            warm_up(eng.settings)
            pg, sc = read_all(files, eng.settings, False, f"{name} det {side}",
                              segments_for=frozenset(df.loc[df["entity_name"].isin(DIMENSIONS), "file"]))
            pred = [eng.decide(pg[f], e).prediction if pg[f] else ""
                    for f, e in zip(df["file"], df["entity_name"])]
            f1 = score(pred, df["truth"], acceptable).f1
            mean = sum(w for w, _ in sc.values()) / max(len(sc), 1)
            cpu = sum(c for _, c in sc.values()) / max(len(sc), 1)
            print(f"  det_limit_side {side:>5}: F1 {f1:.4f}  s/photo {mean:.3f} wall, {cpu:.3f} CPU"
                  f"  (load {os.getloadavg()[0]:.1f})")
            result["sweep"].append({"det_limit_side": side, "f1": f1, "seconds_mean": mean,
                                    "cpu_mean": cpu})
    out_dir = OUTPUTS_DIR / "bench_ocr"
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["index", "entity_name", "truth", "ours", "conf", "ours_abstaining", "reason", "half",
            "file", "raw"]
    if "baseline" in df:
        cols.insert(4, "baseline")
    df[cols].to_csv(out_dir / f"{name}_predictions.csv", index=False)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA), help="folder with images_dev/ and dims_dev/")
    p.add_argument("--sets", default="images_dev,dims_dev", help="comma-separated dev sets to run")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N images per set (a seeded random subset) for a quick check")
    p.add_argument("--seed", type=int, default=0, help="seed of the image shuffle (halves, --limit)")
    p.add_argument("--config", default=None, help="YAML config whose `ocr` section to use")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="config override key=value, e.g. --set ocr.det_limit_side=1280 (repeatable)")
    p.add_argument("--cache-dir", default=str(OUTPUTS_DIR / "ocr_cache"),
                   help="where OCR boxes are stored for --cached runs ('' = nowhere)")
    p.add_argument("--cached", action="store_true",
                   help="reuse boxes from --cache-dir (fast rule iteration; no timings)")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    p.add_argument("--tune", action="store_true",
                   help="fit per-entity abstention thresholds (amlc.inference.tune_thresholds) on "
                        "each half, score them on the other")
    p.add_argument("--sweep", default="",
                   help="comma-separated detector sizes (ocr.det_limit_side) to time and score")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    load0 = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f} at start")
    results = {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in SETS:
            raise InputError(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        results[name] = run_set(name, args, cfg)
    load1 = os.getloadavg()
    print(f"\nmachine load average {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
