"""The shard runner: one shard of the input through any engine, resumable, plus abstention and merge.

`run_shard(cfg, K, N)` reads the input CSV (test.csv layout: index, image_link, entity_name, optional
group_id and entity_value), takes shard K of N (amlc.shards), fetches the shard's images that are not on
disk yet with the project downloader, then feeds the rows not yet in the shard file to the engine in
batches of `inference.batch_size`, appending each finished batch to `<preds_dir>/shard-K-of-N.jsonl`
(schema in amlc.shards). A rerun after any kill skips the rows already written. A row whose image is
missing, failed to download or cannot be identified by Pillow never reaches the engine: it gets an
empty prediction and the reason. Beside the shard file it writes:

    shard-K-of-N.config.yaml    the resolved config of the latest run of this shard
    shard-K-of-N.summary.json   rows, done before, predicted now, non-empty, empty rows by reason,
                                engine seconds, images/s (whole shard, after the latest run)
    shard-K-of-N.download.csv   the downloader's manifest for the images this shard fetched

Abstention. The competition scores F1 = 2TP / (2TP + FP + FN) over all rows, where a non-empty answer
is a TP when it equals the truth and an FP otherwise (wrong value, or truth empty), and an empty answer
is an FN when the truth is non-empty and a TN when it is empty. So when the truth is non-empty, a wrong
answer (FP) and a blank (FN) cost exactly the same, and when the truth is empty a blank wins. Leaving
an unsure answer blank therefore only loses when that answer would have been right: a per-entity
confidence threshold (`inference.thresholds`) under which the prediction is left "" trades those
losses against the FPs it removes. `tune_thresholds` picks the thresholds that maximise F1 on
validation rows; the shard files keep the engine's answer before abstention (`candidate`), so tuned
thresholds can be applied at merge time (`merge_csv.py --rethreshold`) without running the engine again.

RAW.csv (`merge_to_csv`, written by merge_csv.py): one row per test row in the test file's order,
columns RAW_COLUMNS: index, prediction (after abstention; what postprocessing.py finalises), candidate,
confidence (empty when none), reason, raw.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from amlc.config import resolve_path, save_config
from amlc.constants import ENTITY_UNIT_MAP
from amlc.engines import Request, Result, check_config, load_engine
from amlc.errors import InputError
from amlc.shards import ShardWriter, needs_retry, shard_bounds, shard_path

RAW_COLUMNS = ("index", "prediction", "candidate", "confidence", "printed", "reason", "raw")
INPUT_COLUMNS = ("index", "image_link", "entity_name")


# ---- abstention ------------------------------------------------------------------------------------

def check_thresholds(thresholds: Mapping[str, Any]) -> dict[str, float]:
    """inference.thresholds validated: known entity names, numbers >= 0."""
    out: dict[str, float] = {}
    for entity, value in (thresholds or {}).items():
        if entity not in ENTITY_UNIT_MAP:
            raise InputError(f"inference.thresholds has an unknown entity {entity!r} (known: "
                             f"{', '.join(sorted(ENTITY_UNIT_MAP))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InputError(f"inference.thresholds.{entity} must be a number >= 0, got {value!r}")
        out[entity] = float(value)
    return out


def _conf(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def abstain(candidate: str, confidence: float | None, entity: str,
            thresholds: Mapping[str, float]) -> bool:
    """True when a non-empty answer falls under its entity's threshold (no confidence: never)."""
    return bool(candidate) and confidence is not None and confidence < thresholds.get(entity, 0.0)


def blank_reason(candidate: str, confidence: float | None, printed: float | None, entity: str,
                 thresholds: Mapping[str, float], printed_threshold: float) -> str:
    """Why a non-empty answer is left blank: "not_printed" (the engine thinks the image does not
    print the value: P(printed) under inference.printed_threshold), "below_threshold" (confidence
    under the entity's threshold), or "" to answer."""
    if candidate and printed is not None and printed < printed_threshold:
        return "not_printed"
    return "below_threshold" if abstain(candidate, confidence, entity, thresholds) else ""


def tune_thresholds(entities: Sequence[str], truths: Sequence[str], candidates: Sequence[str],
                    confidences: Sequence[float | None], *, acceptable: bool = False,
                    rounds: int = 10) -> dict[str, float]:
    """Per-entity thresholds maximising the overall F1 of validation rows (exact coordinate ascent).

    Each row has two possible outcomes under amlc.metric: answered (tp or fp) and blank (fn or tn).
    A threshold t blanks the answered rows of its entity whose confidence is below t, so for one
    entity, with the others fixed, every distinct confidence is a candidate and the sweep over them
    is exact (counts add up; no grid). F1 is taken over all rows together, as the competition does,
    so entities interact through it: sweeps repeat, entity by entity, until none improves F1. Only
    strict improvements are kept, so ties keep the lower threshold (abstain less). A threshold above
    every confidence of an entity blanks it entirely; rows without a confidence are never blanked.
    """
    from amlc.metric import Counts, outcome

    n = len(truths)
    if not n == len(entities) == len(candidates) == len(confidences):
        raise ValueError("entities, truths, candidates and confidences must have one value per row")
    conf = [_conf(c) for c in confidences]
    answered = [outcome(c, t, acceptable) for c, t in zip(candidates, truths)]
    blank = [outcome("", t, acceptable) for t in truths]
    rows_of: dict[str, list[int]] = {}
    for i, e in enumerate(entities):
        if candidates[i] and conf[i] is not None:  # the rows a threshold can blank
            rows_of.setdefault(e, []).append(i)
    thresholds = {e: 0.0 for e in sorted(set(entities))}

    def f1(counts: Counter) -> float:
        return Counts(**{k: counts[k] for k in ("tp", "fp", "fn", "tn")}).f1

    current = Counter(blank[i] if abstain(candidates[i], conf[i], entities[i], thresholds) else answered[i]
                      for i in range(n))
    best = f1(current)
    for _ in range(rounds):
        improved = False
        for e, rows in sorted(rows_of.items()):
            rows = sorted(rows, key=lambda i: conf[i])
            # Counts with every switchable row of e answered, whatever e's threshold is now.
            base = current.copy()
            for i in rows:
                if conf[i] < thresholds[e]:
                    base[blank[i]] -= 1
                    base[answered[i]] += 1
            counts = base.copy()
            choice, choice_f1 = thresholds[e], best
            for j, i in enumerate(rows):
                # threshold conf[i] blanks rows[:j]; only distinct confidences are new thresholds
                if j and conf[i] != conf[rows[j - 1]]:
                    score = f1(counts)
                    if score > choice_f1 or (score == choice_f1 and conf[i] < choice):
                        choice, choice_f1 = conf[i], score
                counts[answered[i]] -= 1
                counts[blank[i]] += 1
            above = conf[rows[-1]] + 1e-6  # every row of e blanked
            score_all, score_none = f1(counts), f1(base)
            for t, score in ((above, score_all), (0.0, score_none)):
                if score > choice_f1 or (score == choice_f1 and t < choice):
                    choice, choice_f1 = t, score
            if choice_f1 > best:
                improved = True
            if choice != thresholds[e]:
                counts = base.copy()
                for i in rows:
                    if conf[i] < choice:
                        counts[answered[i]] -= 1
                        counts[blank[i]] += 1
                current, best, thresholds[e] = counts, f1(counts), choice
        if not improved:
            break
    return thresholds


# ---- inputs ----------------------------------------------------------------------------------------

def preds_dir(cfg: Mapping[str, Any]) -> Path:
    value = cfg["inference"]["preds_dir"]
    return resolve_path(value) if value else resolve_path(cfg["run"]["output_dir"]) / "preds"


def check_image(path: Path) -> str:
    """"" when Pillow can identify and verify the file, else the reason it cannot."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()  # headers and, for PNG, checksums; cheap next to a full decode
    except Exception as exc:  # noqa: BLE001 - any failure means the engine cannot use it
        return f"image_undecodable: {type(exc).__name__}: {exc}"[:300]
    return ""


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0] if reason else ""


@dataclass
class ShardSummary:
    shard: int
    num_shards: int
    input_csv: str
    first_row: int  # position in the input file (0-based, header excluded)
    rows: int
    done_before: int
    predicted_now: int
    non_empty: int
    empty_by_reason: dict[str, int] = field(default_factory=dict)
    engine: str = ""
    download_seconds: float = 0.0  # fetching the shard's missing images
    load_seconds: float = 0.0  # building the engine (model load)
    infer_seconds: float = 0.0  # the batch loop: image checks, engine, writes
    engine_seconds: float = 0.0  # inside engine.predict only
    images_per_second: float = 0.0  # predicted_now / infer_seconds
    truncated_bytes: int = 0
    shard_file: str = ""
    engine_report: dict[str, Any] = field(default_factory=dict)  # the engine's own counts (report())

    def format(self) -> str:
        empty = sum(self.empty_by_reason.values())
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(self.empty_by_reason.items(),
                                                              key=lambda kv: -kv[1]))
        where = (f"rows {self.first_row:,}..{self.first_row + self.rows - 1:,}" if self.rows
                 else "no rows (more shards than rows)")
        lines = [
            f"shard {self.shard} of {self.num_shards} (0-based): {where} of {self.input_csv} "
            f"({self.rows:,} rows)",
            f"  done before {self.done_before:,}, predicted now {self.predicted_now:,} in "
            f"{self.infer_seconds:.1f} s ({self.images_per_second:.2f} images/s, engine {self.engine}; "
            f"download {self.download_seconds:.1f} s, engine load {self.load_seconds:.1f} s)",
            f"  non-empty {self.non_empty:,}, empty {empty:,}" + (f" ({reasons})" if reasons else ""),
            f"  -> {self.shard_file}",
        ]
        if self.engine_report.get("text"):
            lines.insert(-1, f"  {self.engine_report['text']}")
        if self.truncated_bytes:
            lines.insert(1, f"  cut an unfinished last line ({self.truncated_bytes} bytes) left by a kill")
        return "\n".join(lines)


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any], where: str = "") -> list[str]:
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            keys += _config_changes(a, b, f"{where}{key}.")
        elif a != b:
            keys.append(f"{where}{key}")
    return keys


def _save_config_beside(cfg: Mapping[str, Any], path: Path, log: Callable[[str], None],
                        rows_written: int) -> None:
    import yaml

    if path.exists() and rows_written:  # a config that answered no row yet is simply replaced
        try:
            old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            old = {}
        changed = _config_changes(old, cfg) if isinstance(old, Mapping) else ["(unreadable)"]
        if changed:
            log(f"warning: this shard was started with another config (changed: {', '.join(changed[:8])}"
                f"{', ...' if len(changed) > 8 else ''}); the {rows_written:,} row(s) already written keep "
                f"the old one")
    save_config(cfg, path)


def _downloader_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    # The downloader's knobs are the config's `download` section, keyword for keyword.
    section = cfg.get("download")
    return dict(section) if isinstance(section, Mapping) else {}


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _prefetched(batches: Iterator[Sequence[Any]], prepare: Callable[[Any], Any], workers: int,
                ahead: int = 2) -> Iterator[list[Any]]:
    """Each batch mapped through `prepare` in a thread pool, `ahead` batches in advance."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.map(prepare, batch))  # map submits every item now
            if len(pending) > ahead:
                yield list(pending.popleft())
        while pending:
            yield list(pending.popleft())


def _record(index: int, entity: str, res: Result | None, reason: str, engine: str, seconds: float,
            thresholds: Mapping[str, float], printed_threshold: float = 0.0) -> dict[str, Any]:
    """One shard-file line (schema in amlc.shards); `res` is None for rows the engine never saw."""
    if res is None:
        return {"index": index, "entity_name": entity, "prediction": "", "candidate": "",
                "confidence": None, "printed": None, "raw": "", "reason": reason, "engine": engine,
                "seconds": 0.0}
    candidate = res.prediction or ""
    confidence = _conf(res.confidence)
    printed = _conf(res.printed)
    if not candidate:
        reason = res.reason or "no_answer"
    else:
        reason = blank_reason(candidate, confidence, printed, entity, thresholds, printed_threshold)
    record = {"index": index, "entity_name": entity, "prediction": "" if reason else candidate,
              "candidate": candidate, "confidence": confidence, "printed": printed, "raw": res.raw or "",
              "reason": reason, "engine": engine, "seconds": round(seconds, 6)}
    if res.extra:
        record["extra"] = res.extra
    return record


# ---- the runner ------------------------------------------------------------------------------------

def run_shard(cfg: dict[str, Any], shard: int, num_shards: int, *,
              input_csv: str | Path | None = None, images_dir: str | Path | None = None,
              output_dir: str | Path | None = None, engine: str | None = None,
              downloader: ModuleType | Any | None = None, progress: bool = True,
              log: Callable[[str], None] | None = None) -> ShardSummary:
    """Run shard `shard` (0-based) of `num_shards`; see the module docstring.

    `downloader`: an object with `download(...)` and `local_path(link, out_dir)` as in amlc.download
    (the default); tests pass a double.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = copy.deepcopy(cfg)
    inf = cfg["inference"]
    if engine is not None:
        inf["engine"] = engine
    engine_name = inf["engine"]
    batch_size = inf["batch_size"]
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"inference.batch_size must be a positive integer, got {batch_size!r}")
    thresholds = check_thresholds(inf["thresholds"])
    printed_threshold = float(inf["printed_threshold"])
    input_csv = Path(input_csv) if input_csv is not None else resolve_path(cfg["data"]["test_csv"])
    images_dir = Path(images_dir) if images_dir is not None else resolve_path(cfg["data"]["images_dir"])
    out_dir = Path(output_dir) if output_dir is not None else preds_dir(cfg)
    if not inf["download"] and not images_dir.is_dir():  # a typo would leave every row image_missing
        raise InputError(f"image folder not found: {images_dir} (downloads are off, so the images must "
                         f"be there already)")
    # The saved config says what this run really used, flags included.
    cfg["data"]["test_csv"], cfg["data"]["images_dir"] = str(input_csv), str(images_dir)
    inf["preds_dir"], inf["num_shards"] = str(out_dir), num_shards

    from amlc.tables import read_csv

    table = read_csv(input_csv, required=INPUT_COLUMNS, what="input CSV")
    start, stop = shard_bounds(len(table), shard, num_shards)
    part = table.iloc[start:stop]
    path = shard_path(out_dir, shard, num_shards)
    stem = path.name[: -len(".jsonl")]

    with ShardWriter(path, fields=("index", "prediction", "reason", "engine")) as writer:
        if writer.truncated_bytes:
            log(f"{path.name}: cut an unfinished last line ({writer.truncated_bytes} bytes) left by a kill")
        ours = set(part["index"].tolist())
        stray = sorted(i for i in writer.done if i not in ours)
        if stray:
            raise InputError(f"{path} holds {len(stray)} index(es) that are not in shard {shard} of "
                             f"{num_shards} of {input_csv} (first: {stray[:5]}); it was made from "
                             f"another input or split: use another --output_dir or delete it")
        engines_before = sorted({r["engine"] for r in writer.existing if r.get("engine")} - {engine_name})
        if engines_before:
            raise InputError(f"{path} was written by engine {', '.join(engines_before)}, not "
                             f"{engine_name}; use another --output_dir to keep the two apart")
        retry = writer.drop([r["index"] for r in writer.existing if needs_retry(r)])
        if retry:
            log(f"{path.name}: {retry:,} row(s) left empty by a missing or broken image or an error "
                f"are tried again")
        todo = part[~part["index"].isin(writer.done)]
        if len(todo):
            check_config(engine_name, cfg)  # a bad engine setting never reaches the saved config
        _save_config_beside(cfg, out_dir / f"{stem}.config.yaml", log, len(writer.done))
        done_before = len(part) - len(todo)
        counts: Counter = Counter(_reason_kind(r["reason"] or "") if not r["prediction"] else ""
                                  for r in writer.existing)

        engine_seconds = download_seconds = load_seconds = infer_seconds = 0.0
        engine_report: dict[str, Any] = {}
        if len(todo):
            if downloader is None:
                downloader = importlib.import_module("amlc.download")
            links = todo["image_link"].tolist()
            paths = {link: Path(downloader.local_path(link, images_dir)) for link in set(links) if link}
            failures: dict[str, str] = {}
            missing = sorted(link for link, p in paths.items() if not p.exists())
            t0 = time.perf_counter()
            if missing and inf["download"]:
                log(f"fetching {len(missing):,} image(s) of shard {shard} into {images_dir}")
                report = downloader.download(missing, images_dir, progress=progress,
                                             manifest_path=out_dir / f"{stem}.download.csv",
                                             strict=False, **_downloader_kwargs(cfg))
                manifest = report.manifest
                for link, status, error in zip(manifest["image_link"], manifest["status"],
                                               manifest["error"]):
                    if status in ("failed", "refused"):
                        failures[link] = f"download_{status}: {error}"[:300]

            download_seconds = time.perf_counter() - t0

            def prepare(row: tuple) -> tuple[tuple, Request | None, str]:
                index, link, entity, group = row
                if not link:
                    return row, None, "no_image_link"
                p = paths[link]
                if not p.exists():
                    return row, None, failures.get(link, "image_missing")
                bad = check_image(p)
                if bad:
                    return row, None, bad
                return row, Request(index=index, entity_name=entity, image_path=p, group_id=group), ""

            groups = (todo["group_id"].astype(str).tolist() if "group_id" in todo.columns
                      else [""] * len(todo))
            rows = list(zip((int(i) for i in todo["index"]), links, todo["entity_name"].tolist(), groups))
            model = None  # built at the first row with an image: a rerun of image-less rows needs none
            infer_started = time.perf_counter()
            from tqdm import tqdm

            bar = tqdm(total=len(part), initial=done_before, unit="img", desc=f"shard {shard}/{num_shards}",
                       disable=not progress, mininterval=0.5 if sys.stderr.isatty() else 30.0,
                       dynamic_ncols=True)
            try:
                for prepared in _prefetched(_batches(rows, batch_size), prepare, inf["prefetch_workers"]):
                    requests = [req for _, req, _ in prepared if req is not None]
                    if requests and model is None:
                        t0 = time.perf_counter()
                        model = load_engine(engine_name, cfg)
                        load_seconds = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    results = model.predict(requests) if requests else []
                    dt = time.perf_counter() - t0
                    engine_seconds += dt
                    if len(results) != len(requests) or any(
                            res.index != req.index for res, req in zip(results, requests)):
                        raise RuntimeError(f"engine {engine_name} broke its contract: it must return one "
                                           f"Result per Request, in order")
                    by_index: dict[int, Result] = {res.index: res for res in results}
                    per_row = dt / len(requests) if requests else 0.0
                    records = [_record(row[0], row[2], by_index.get(row[0]) if req else None, reason,
                                       engine_name, per_row if req else 0.0, thresholds,
                                       printed_threshold)
                               for row, req, reason in prepared]
                    writer.append(records)
                    counts.update(_reason_kind(r["reason"]) if not r["prediction"] else "" for r in records)
                    bar.update(len(records))
            finally:
                bar.close()
                infer_seconds = time.perf_counter() - infer_started - load_seconds
                # An engine may count what it did (the api engine: requests, tokens, money) and hold
                # connections to close.
                if hasattr(model, "report"):
                    engine_report = model.report(total_rows=len(table))
                if hasattr(model, "close"):
                    model.close()
        predicted_now = len(writer.done) - done_before

    summary = ShardSummary(
        shard=shard, num_shards=num_shards, input_csv=str(input_csv), first_row=start, rows=len(part),
        done_before=done_before, predicted_now=predicted_now, non_empty=counts.get("", 0),
        empty_by_reason={k: v for k, v in counts.items() if k}, engine=engine_name,
        download_seconds=round(download_seconds, 3), load_seconds=round(load_seconds, 3),
        infer_seconds=round(infer_seconds, 3), engine_seconds=round(engine_seconds, 3),
        images_per_second=round(predicted_now / infer_seconds, 3) if infer_seconds > 0 else 0.0,
        truncated_bytes=writer.truncated_bytes, shard_file=str(path), engine_report=engine_report)
    from amlc.tables import write_text

    write_text(out_dir / f"{stem}.summary.json", json.dumps(asdict(summary), indent=2) + "\n")
    return summary


# ---- merge -----------------------------------------------------------------------------------------

def rethreshold(record: dict[str, Any], entity: str, thresholds: Mapping[str, float],
                printed_threshold: float = 0.0) -> dict[str, Any]:
    """The record with `prediction`/`reason` recomputed from `candidate`, `confidence` and `printed`."""
    candidate = record.get("candidate") or ""
    if not candidate:
        return record  # nothing to threshold; keep the original reason
    reason = blank_reason(candidate, _conf(record.get("confidence")), _conf(record.get("printed")),
                          entity, thresholds, printed_threshold)
    return {**record, "prediction": "" if reason else candidate, "reason": reason}


def merge_to_csv(input_dir: str | Path, test_csv: str | Path, output: str | Path, *,
                 fill_missing: bool = False, thresholds: Mapping[str, Any] | None = None,
                 printed_threshold: float = 0.0):
    """Merge the shard files of `input_dir` into RAW.csv in `test_csv`'s order (see the docstring).

    `thresholds`: re-apply these per-entity thresholds, and `printed_threshold`, to the engine's
    answers (None: keep the predictions as the runner wrote them). Returns (MergeResult, the
    written DataFrame).
    """
    import pandas as pd

    from amlc.shards import merge_shards
    from amlc.tables import read_csv, write_csv

    test = read_csv(test_csv, required=["index"], what="test file")
    order = [int(i) for i in test["index"]]
    result = merge_shards(input_dir, order, fill_missing=fill_missing)
    thresholds = check_thresholds(thresholds) if thresholds is not None else None
    entities = test["entity_name"].tolist() if "entity_name" in test.columns else [None] * len(order)
    for pos, (rec, entity) in enumerate(zip(result.records, entities)):
        written = rec.get("entity_name")
        if entity is not None and written and written != entity:
            raise InputError(f"index {rec['index']} is {written!r} in the shard files but {entity!r} in "
                             f"{test_csv}; were the shards made from another input?")
        if thresholds is not None:
            result.records[pos] = rethreshold(rec, entity or written or "", thresholds, printed_threshold)
    frame = pd.DataFrame([{c: r.get(c, "") for c in RAW_COLUMNS} for r in result.records],
                         columns=list(RAW_COLUMNS))
    for col in ("confidence", "printed"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("prediction", "candidate", "reason", "raw"):
        frame[col] = frame[col].fillna("").astype(str)
    write_csv(frame, output)
    return result, frame


# ---- tuning from a validation run -----------------------------------------------------------------

def tune_from_preds(input_csv: str | Path, preds: str | Path, *, acceptable: bool = False,
                    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Thresholds tuned on a finished inference run over labelled rows (an `entity_value` column).

    Returns (thresholds, one report row per entity and one for "all": rows, threshold, F1 without
    thresholds and with them).
    """
    from amlc.metric import f1_score
    from amlc.shards import merge_shards
    from amlc.tables import read_csv

    table = read_csv(input_csv, required=["index", "entity_name", "entity_value"], what="validation CSV")
    merged = merge_shards(preds, [int(i) for i in table["index"]])
    entities = table["entity_name"].tolist()
    truths = table["entity_value"].tolist()
    candidates = [r.get("candidate") or "" for r in merged.records]
    confidences = [_conf(r.get("confidence")) for r in merged.records]
    thresholds = tune_thresholds(entities, truths, candidates, confidences, acceptable=acceptable)

    def preds_with(th: Mapping[str, float]) -> list[str]:
        return ["" if abstain(c, p, e, th) else c for c, p, e in zip(candidates, confidences, entities)]

    before, after = preds_with({}), preds_with(thresholds)
    report = []
    for entity in [*sorted(set(entities)), "all"]:
        rows = [i for i, e in enumerate(entities) if entity in ("all", e)]
        report.append({"entity": entity, "rows": len(rows), "threshold": thresholds.get(entity),
                       "f1_before": f1_score([before[i] for i in rows], [truths[i] for i in rows], acceptable),
                       "f1_after": f1_score([after[i] for i in rows], [truths[i] for i in rows], acceptable)})
    return thresholds, report
