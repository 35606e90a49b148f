"""The OCR engine on the labelled development sets: what bench_ocr.py scores and fit_ocr_model.py fits.

Sets (../shared/amlc2024, or AMLC_SHARED_DATA):
  images_dev  401 training rows (394 large product photos), the catalogue's label: exact-match scoring
  dims_dev    89 test rows (dimension drawings), two annotators' acceptable answers ("|"), "" = the
              image does not print the value
  test_dev    148 test rows (145 test images, 67% dimensions), labelled the same way

Each row is read the way the engine reads it (amlc.engines.ocr: the config's `ocr` section, a second
read where the first found no mention), its candidates and their evidence kept, so that models can
be fitted on some images and scored on others (`cross_validate`: folds grouped by image, over all
sets together) without reading anything twice.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlc.engines.ocr import OcrEngine, Page, read_page
from amlc.engines.ocr_model import (PICK_PRIOR, ROW_FEATURES, Linear, Model, fit_logistic, fit_pick,
                                    judge, rescored, row_features)
from amlc.errors import InputError
from amlc.metric import value_pair
from amlc.units import DIMENSIONS

SETS = ("images_dev", "dims_dev", "test_dev")
HAND_LABELLED = ("dims_dev", "test_dev")
# Weights that score nothing: candidates are gathered with it, then scored by each fold's model.
ZERO = Model({"dims": Linear(), "other": Linear()}, Linear(), Linear(), 0.0)


@dataclass
class Row:
    set: str
    index: int
    file: str
    entity: str
    group: str
    truths: list[str]  # acceptable answers; [] when the image does not print the value
    label: str  # images_dev: the catalogue's exact text; "" for the hand-labelled sets
    printed: bool | None  # hand-labelled sets: does the image print the value? images_dev: None
    size: int = 0  # the image's long side in pixels
    ranked: list = field(default_factory=list)  # candidates with their evidence (unscored)
    others: dict = field(default_factory=dict)  # dimensions: the other dimensions' candidates
    reread: bool = False
    seconds: float = 0.0  # the rules' time for this row (its image's OCR time is in `timings`)
    baseline: str = ""  # the first-mention baseline on the image's rapidocr-default read


def load_rows(data: Path, sets: Sequence[str] = SETS, limit: int | None = None, seed: int = 0) -> list[Row]:
    import csv

    rows: list[Row] = []
    for name in sets:
        path = data / name / "labels.csv"
        if name not in SETS:
            raise InputError(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        if not path.exists():
            raise InputError(f"{path} not found (the development data lives in ../shared/amlc2024)")
        with open(path, encoding="utf-8", newline="") as fh:
            part = []
            for r in csv.DictReader(fh):
                file = str(data / name / r["image_link"].rsplit("/", 1)[1])
                if name == "images_dev":
                    truths, label, printed = [r["entity_value"]], r["entity_value"], None
                else:
                    truths = [a for a in r["acceptable"].split("|") if a]
                    label, printed = "", bool(truths)
                part.append(Row(name, int(r["index"]), file, r["entity_name"], r["group_id"], truths,
                                label, printed))
        if limit:  # a seeded subset of the images, every row of each
            files = sorted({r.file for r in part})
            keep = set(random.Random(seed).sample(files, min(limit, len(files))))
            part = [r for r in part if r.file in keep]
        rows += part
    return rows


def matches(prediction: str, truths: Sequence[str]) -> bool:
    """The number (as a float) and unit equal one acceptable answer."""
    pair = value_pair(prediction) if prediction else None
    return pair is not None and any(pair == value_pair(t) for t in truths)


def bucket(long_side: int) -> str:
    return "<600" if long_side < 600 else ("600-1200" if long_side <= 1200 else ">1200")


def read(rows: list[Row], engine: OcrEngine, cached: bool, progress: bool = True,
         baseline: dict | None = None) -> dict[str, tuple[float, float]]:
    """Read every image the engine's way and gather each row's candidates (in place). Returns
    file -> (wall, CPU seconds) of the engine's whole work on the image when it was not cached:
    the OCR, the straight lines of a drawing, the rules for each of its rows and the second read.
    `baseline`: rapidocr's default settings, for the first-mention baseline (also timed apart)."""
    from tqdm import tqdm

    from amlc.engines.ocr_rules import first_mention

    by_file: dict[str, list[Row]] = {}
    for r in rows:
        by_file.setdefault(r.file, []).append(r)
    timings: dict[str, tuple[float, float]] = {}
    model, engine.model = engine.model, ZERO
    try:
        for file, part in tqdm(sorted(by_file.items()), desc="images", unit="img", mininterval=5,
                               disable=not progress, file=sys.stderr):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                page = engine.read(file, use_cache=cached, with_segments=any(r.entity in DIMENSIONS for r in part))
            except Exception as exc:  # a broken file in a dev set: scored as read-nothing
                print(f"  {Path(file).name}: {exc}", file=sys.stderr)
                page = None
            fresh = page is not None and not page.cached
            for r in part:
                r.size = max(page.width, page.height) if page else 0
                if page is not None:
                    _gather(r, page, engine, file, cached)
            if fresh:
                timings[file] = (time.perf_counter() - t0, time.process_time() - c0)
            if baseline is not None and page is not None:  # untimed: from the cache when there
                base = read_page(file, baseline)
                for r in part:
                    r.baseline = first_mention(base.boxes, r.entity)
    finally:
        engine.model = model
    return timings


def _gather(r: Row, page: Page, engine: OcrEngine, file: str, cached: bool) -> None:
    t0 = time.perf_counter()
    ranked = engine.ranked(page, r.entity, r.group) if page.boxes else []
    if not ranked:  # the engine's second read (OcrEngine.answer)
        again = engine.second_read(page, file, r.entity, use_cache=cached)
        if again is not None:
            page = again
            ranked = engine.ranked(page, r.entity, r.group) if page.boxes else []
            r.reread = True
    r.ranked = ranked
    if r.entity in DIMENSIONS and ranked:
        r.others = {e: engine.ranked(page, e, r.group) for e in DIMENSIONS if e != r.entity}
    r.seconds = time.perf_counter() - t0


# ------------------------------------------------------------------------------------ models


@dataclass
class Answer:
    prediction: str
    confidence: float
    printed: float
    features: dict[str, float]


def answer(r: Row, model: Model) -> Answer:
    """What the engine answers for a row under `model` (the same functions as OcrEngine.decide)."""
    ranked = rescored(r.ranked, model, r.entity)
    others = {e: rescored(c, model, e) for e, c in r.others.items()}
    confidence, printed = judge(r.entity, ranked, others, model)
    return Answer(ranked[0].prediction if ranked else "", confidence, printed,
                  row_features(r.entity, ranked, others))


def fit(rows: Sequence[Row], l2: float = 30.0, c: float = 0.3, pick_features: Sequence[str] | None = None,
        printed_threshold: float = 0.0, prior: dict | None = PICK_PRIOR) -> Model:
    """All three models from labelled rows: pick per kind, then correct (all rows with a candidate)
    and printed (hand-labelled rows) on the row evidence the fitted pick gives."""
    from amlc.engines.ocr_model import PICK_FEATURES

    names = tuple(pick_features or PICK_FEATURES)
    pick = {}
    for kind in ("dims", "other"):
        part = [r for r in rows if (r.entity in DIMENSIONS) == (kind == "dims")]
        pick[kind] = fit_pick([[c.features for c in r.ranked] for r in part],
                              [[matches(c.prediction, r.truths) for c in r.ranked] for r in part], names, l2,
                              prior)
    model = Model(pick, Linear(), Linear(), printed_threshold)
    answers = [answer(r, model) for r in rows]
    with_cands = [(r, a) for r, a in zip(rows, answers) if r.ranked]
    model.correct = _logistic([a.features for _, a in with_cands],
                              [matches(a.prediction, r.truths) for r, a in with_cands], c)
    hand = [(r, a) for r, a in zip(rows, answers) if r.printed is not None]
    model.printed = _logistic([a.features for _, a in hand], [bool(r.printed) for r, _ in hand], c)
    return model


def _logistic(xs: list[dict], ys: list[bool], c: float) -> Linear:
    if not ys or all(ys) or not any(ys):  # one class only: its rate, no evidence
        rate = (sum(ys) + 0.5) / (len(ys) + 1.0)
        return Linear({}, math.log(rate / (1 - rate)))
    return fit_logistic(xs, ys, ROW_FEATURES, c)


def folds(rows: Sequence[Row], k: int = 5, seed: int = 0) -> list[int]:
    """Each row's fold, grouped by image (all questions about one image in one fold)."""
    files = sorted({r.file for r in rows})
    random.Random(seed).shuffle(files)
    fold_of = {f: i % k for i, f in enumerate(files)}
    return [fold_of[r.file] for r in rows]


def cross_validate(rows: Sequence[Row], k: int = 5, seed: int = 0, **fit_kw: Any) -> list[Answer]:
    """Every row answered by models fitted on the other folds (never on its own image)."""
    fold = folds(rows, k, seed)
    out: list[Answer | None] = [None] * len(rows)
    for f in range(k):
        train = [r for r, g in zip(rows, fold) if g != f]
        model = fit(train, **fit_kw)
        for i, (r, g) in enumerate(zip(rows, fold)):
            if g == f:
                out[i] = answer(r, model)
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------- figures


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def decide(a: Answer, printed_threshold: float = 0.0, precision_threshold: float = 0.0) -> str:
    """The runner's abstention (amlc.inference.blank_reason) on an answer."""
    if not a.prediction or a.printed < printed_threshold or a.confidence < precision_threshold:
        return ""
    return a.prediction


def figures(rows: Sequence[Row], preds: Sequence[str]) -> dict[str, Any]:
    """Scores of predictions on rows of one kind: number-and-unit F1 (as if every truth is a value),
    and on hand-labelled rows accuracy on printed rows, blank-aware and never-blank F1."""
    n = len(rows)
    right = [matches(p, r.truths) for r, p in zip(rows, preds)]
    answered = [bool(p) for p in preds]
    printed = [r.printed is not False for r in rows]
    tp = sum(right)
    fp = sum(a and not ok for a, ok in zip(answered, right))
    out: dict[str, Any] = {"rows": n, "right": tp}
    # blank-aware: an empty truth answered blank is a true negative
    fn_blank = sum(not a and p for a, p in zip(answered, printed))
    out["f1_blank_aware"] = f1(tp, fp, fn_blank)
    out["f1_never_blank"] = f1(tp, fp, sum(not a for a in answered))
    if any(r.printed is not None for r in rows):
        n_printed = sum(printed)
        out["printed_rows"] = n_printed
        out["accuracy_printed"] = (sum(ok for ok, p in zip(right, printed) if p) / n_printed) if n_printed else 0.0
        out["unprinted_blank"] = sum(not a for a, p in zip(answered, printed) if not p)
        out["unprinted_rows"] = n - n_printed
    return out


def exact_f1(rows: Sequence[Row], preds: Sequence[str]) -> float:
    """The leaderboard's rule against the catalogue's label (images_dev): exact text."""
    tp = sum(bool(p) and p == r.label for r, p in zip(rows, preds))
    fp = sum(bool(p) and p != r.label for r, p in zip(rows, preds))
    fn = sum(not p for p in preds)
    return f1(tp, fp, fn)


def ceiling(rows: Sequence[Row]) -> float:
    """Share of the printed rows whose truth is among the engine's candidates."""
    printed = [r for r in rows if r.printed is not False]
    return sum(any(matches(c.prediction, r.truths) for c in r.ranked) for r in printed) / max(len(printed), 1)


def timing_line(timings: dict[str, tuple[float, float]], sizes: dict[str, int]) -> list[str]:
    if not timings:
        return ["seconds per image: none timed (every image came from the cache; run without --cached)"]
    lines = ["seconds per image (wall: median, p90; CPU: median):"]
    by = {"all": list(timings)}
    for f in timings:
        by.setdefault(bucket(sizes[f]), []).append(f)
    for name in ("all", "<600", "600-1200", ">1200"):
        files = by.get(name, [])
        if not files:
            continue
        wall = sorted(timings[f][0] for f in files)
        cpu = sorted(timings[f][1] for f in files)
        p90 = wall[min(len(wall) - 1, math.ceil(0.9 * len(wall)) - 1)]
        lines.append(f"  {name:>9}: {len(files):4} images, median {statistics.median(wall):.3f} s, "
                     f"p90 {p90:.3f} s wall; median {statistics.median(cpu):.3f} CPU-s")
    return lines


def copy_rows(rows: Sequence[Row]) -> list[Row]:
    return copy.deepcopy(list(rows))
