"""Sample + images -> ms-swift JSONL for LoRA fine-tuning, with label curation.

`build(sample, image_path, out_dir, ...)` turns the stratified sample (amlc.sampling: train.csv's columns
+ index + split [+ target]) and the downloaded images into:

    out_dir/train.jsonl   rows of split "train", one JSON object a line, the format `swift sft` reads:
                          {"messages": [{"role": "user", "content": "<image>...prompt..."},
                                        {"role": "assistant", "content": "500.0 gram"}],
                           "images": ["/abs/path/to/image.jpg"]}
    out_dir/val.jsonl     the same for split "val" (always the true target, never an abstention)
    out_dir/dataset.csv   one line per sample row: index, split, entity_name, image_link, image_path,
                          entity_value (the label as given), target (what the model is taught to say;
                          "" for an abstention), status (value | abstain | dropped), reason
    out_dir/dataset.json  counts by split and status, the prompt version and the curation settings
    out_dir/ocr_text.jsonl  (abstention only) cache of OCR text per image: {"path": ..., "text": ...}

Label curation:
- The target is `amlc.units.normalize(entity_value, entity)`: the exact submission string ("500.0 gram"),
  so a correct answer needs no postprocessing. A label that normalises to "" (no number, a unit the
  entity does not allow) is dropped (reason `label_unusable`), as is a row without an image on disk
  (`image_missing`).
- Abstention examples (`abstention=True`, training rows only): when the label's number appears nowhere
  in the image's OCR text (`text_of(path)`), the value is not readable on the image, so the row is
  taught to answer "" instead. The best public solution gained most of its score from hand-made
  abstention examples; here they are found automatically. OCR misses some printed values (small or
  curved text), so this also blanks some readable rows: `abstention_max_fraction` caps the share of
  training rows turned into abstentions (the rows whose OCR found the fewest numbers go first).

- Teacher labels (`teacher`: the file `python -m amlc.teacher` writes, training rows only, rows it did
  not read left alone): `teacher_keep_agreeing` drops the rows whose label the teacher contradicts
  (reason `teacher_disagrees`: its answer is not the label by number and unit, blank answers
  included); `teacher_abstain` turns the rows where it answered nothing (it finds the value not
  printed) into abstention examples (`teacher_unprinted`), before the disagreement rule. Teacher answers
  less confident than `teacher_min_confidence` change nothing, and rows the teacher agrees with are
  never turned into OCR abstentions. dataset.json's `teacher` counts what each rule changed.

`text_of` is any `Callable[[Path], str]`; the default (`ocr_text_of`) is the OCR engine's reading (amlc.engines.ocr).
The prompt comes from amlc.prompts, the one place training and inference share.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from amlc import prompts
from amlc.errors import InputError
from amlc.tables import atomic_open, make_dirs, write_csv, write_text

SAMPLE_COLUMNS = ("index", "image_link", "entity_name", "entity_value", "split")
DATASET_COLUMNS = ("index", "split", "entity_name", "image_link", "image_path", "entity_value", "target",
                   "status", "reason")

TextOf = Callable[[Path], str]


@dataclass
class DatasetReport:
    train_rows: int = 0
    val_rows: int = 0
    abstentions: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    by_split_status: dict[str, dict[str, int]] = field(default_factory=dict)
    prompt_version: int = prompts.PROMPT_VERSION
    abstention: bool = False
    abstention_max_fraction: float = 1.0
    # what the teacher rules did: labelled, agree, teacher_disagrees (dropped), teacher_unprinted (abstain)
    teacher: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        line = (f"dataset: {self.train_rows} train rows ({self.abstentions} abstentions), "
                f"{self.val_rows} val rows; dropped: {dropped}")
        if self.teacher:
            t = self.teacher
            line += (f"; teacher: {t['labelled']} training rows labelled, {t['agree']} agree, "
                     f"{t['teacher_disagrees']} dropped as contradicted, {t['teacher_unprinted']} made "
                     f"abstentions as unprinted")
        return line


# ---- numbers on the image -------------------------------------------------------------------------

_NUMBER_TOKEN = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> set[float]:
    """Every number in OCR text: bare numbers and the values/bounds of number+unit mentions."""
    from amlc import units

    t = units.prepare_text(text)
    found: set[float] = set()
    for m in units.find_mentions(t, prepared=True):
        found.update((m.value, m.low, m.high))
    for tok in _NUMBER_TOKEN.findall(t):
        try:
            value = units.parse_number(tok)
        except ValueError:
            value = None
        if value is not None:
            found.add(value)
    return found


def value_in_text(target: str, text: str) -> bool:
    """Does the target's number ("500.0 gram" -> 500) appear in `text`?"""
    value = float(target.split()[0])
    return any(abs(v - value) <= 1e-6 * max(1.0, abs(value)) for v in numbers_in(text))


def ocr_text_of(settings: Mapping[str, Any] | None = None) -> TextOf:
    """The OCR engine's reading of an image (amlc.engines.ocr: same models, detector size and text
    fixes as the `ocr` inference engine, with its cache), lines joined; "" for an unreadable image."""
    from amlc.engines.ocr import ImageError, joined_text, read_boxes

    def text_of(path: Path) -> str:
        try:
            return joined_text(read_boxes(path, settings))
        except ImageError:
            return ""

    return text_of


class _OcrCache:
    """OCR text per image path, appended to a JSONL file as it is computed (a rerun reuses it)."""

    def __init__(self, path: Path, text_of: TextOf):
        self.path, self.text_of, self.texts = path, text_of, {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.texts[row["path"]] = row["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line from a kill: recomputed below

    def __call__(self, image: Path) -> str:
        key = str(image)
        if key not in self.texts:
            text = self.text_of(image)
            self.texts[key] = text
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"path": key, "text": text}, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return self.texts[key]


# ---- the dataset --------------------------------------------------------------------------------

def swift_row(entity: str, image: Path, answer: str | None) -> dict[str, Any]:
    return {"messages": prompts.messages(entity, answer), "images": [str(Path(image).resolve())]}


def _write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def build(sample: pd.DataFrame, image_path: Callable[[str], Path | None], out_dir: str | os.PathLike, *,
          abstention: bool = False, abstention_max_fraction: float = 1.0, text_of: TextOf | None = None,
          range_policy: str = "max", progress: bool = True, teacher: pd.DataFrame | None = None,
          teacher_keep_agreeing: bool = False, teacher_abstain: bool = False,
          teacher_min_confidence: float = 0.0) -> DatasetReport:
    """Write train.jsonl, val.jsonl, dataset.csv and dataset.json under `out_dir` (see module doc).

    `image_path(image_link)` gives the image on disk, or None when it is missing (failed download).
    """
    from amlc import units

    missing = [c for c in SAMPLE_COLUMNS if c not in sample.columns]
    if missing:
        raise InputError(f"sample lacks column(s) {', '.join(missing)} (has: {', '.join(sample.columns)})")
    bad_split = sorted(set(sample["split"]) - {"train", "val"})
    if bad_split:
        raise InputError(f"sample has unknown split value(s) {bad_split}; expected train / val")
    if not 0.0 <= abstention_max_fraction <= 1.0:
        raise InputError(f"dataset.abstention_max_fraction must be in [0, 1], got {abstention_max_fraction}")
    out_dir = make_dirs(out_dir)

    records: list[dict[str, Any]] = []
    for row in sample.itertuples(index=False):
        path = image_path(row.image_link)
        target = units.normalize(row.entity_value, row.entity_name, range_policy)
        rec = {"index": int(row.index), "split": row.split, "entity_name": row.entity_name,
               "image_link": row.image_link, "image_path": str(path) if path else "",
               "entity_value": row.entity_value, "target": target, "status": "value", "reason": ""}
        if path is None or not Path(path).exists():
            rec.update(status="dropped", reason="image_missing", target="")
        elif not target:
            rec.update(status="dropped", reason="label_unusable")
        records.append(rec)

    teacher_counts = (_apply_teacher(records, teacher, teacher_keep_agreeing, teacher_abstain,
                                     teacher_min_confidence) if teacher is not None else {})
    if abstention:
        _mark_abstentions(records, _OcrCache(out_dir / "ocr_text.jsonl", text_of or ocr_text_of()),
                          abstention_max_fraction, progress)

    frame = pd.DataFrame(records, columns=list(DATASET_COLUMNS))
    write_csv(frame, out_dir / "dataset.csv")
    used = [r for r in records if r["status"] != "dropped"]
    n_train = _write_jsonl((swift_row(r["entity_name"], Path(r["image_path"]), r["target"])
                            for r in used if r["split"] == "train"), out_dir / "train.jsonl")
    n_val = _write_jsonl((swift_row(r["entity_name"], Path(r["image_path"]), r["target"])
                          for r in used if r["split"] == "val"), out_dir / "val.jsonl")
    by: dict[str, Counter] = {}
    for r in records:
        by.setdefault(r["split"], Counter())[r["status"]] += 1
    report = DatasetReport(
        train_rows=n_train, val_rows=n_val,
        abstentions=sum(1 for r in used if r["status"] == "abstain"),
        dropped=dict(Counter(r["reason"] for r in records if r["status"] == "dropped")),
        by_split_status={k: dict(v) for k, v in by.items()},
        abstention=abstention, abstention_max_fraction=abstention_max_fraction, teacher=teacher_counts)
    write_text(out_dir / "dataset.json", json.dumps(asdict(report), indent=2) + "\n")
    if n_train == 0:
        raise InputError(f"no usable training rows (dropped: {report.dropped}); see {out_dir / 'dataset.csv'}")
    return report


def _mark_abstentions(records: list[dict[str, Any]], text_of: TextOf, max_fraction: float,
                      progress: bool) -> None:
    from tqdm import tqdm

    train = [r for r in records if r["split"] == "train" and r["status"] == "value" and not r.get("teacher_agrees")]
    candidates = []
    for r in tqdm(train, desc="OCR for abstention", unit="img", disable=not progress):
        text = text_of(Path(r["image_path"]))
        if not value_in_text(r["target"], text):
            candidates.append((len(numbers_in(text)), r))
    # Rows whose OCR found the fewest numbers are the surest "not printed" cases: blank those first.
    candidates.sort(key=lambda c: c[0])
    limit = int(max_fraction * len(train))
    for _, r in candidates[:limit]:
        r.update(status="abstain", reason="value_not_in_ocr", target="")


def _apply_teacher(records: list[dict[str, Any]], teacher: pd.DataFrame, keep_agreeing: bool, abstain: bool,
                   min_confidence: float) -> dict[str, int]:
    """The teacher rules (module docstring) over the training rows; returns what each changed."""
    from amlc.metric import cell_text, is_match

    missing = [c for c in ("index", "teacher_answer", "teacher_confidence", "teacher_reason") if c not in teacher]
    if missing:
        raise InputError(f"the teacher labels lack column(s) {', '.join(missing)}: make them with "
                         f"python -m amlc.teacher")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"dataset.teacher_min_confidence must be in [0, 1], got {min_confidence}")
    by_index = {int(r.index): r for r in teacher.itertuples(index=False)}
    counts = {"labelled": 0, "agree": 0, "teacher_disagrees": 0, "teacher_unprinted": 0}
    for r in records:
        t = by_index.get(r["index"])
        if r["split"] != "train" or r["status"] != "value" or t is None:
            continue
        reason = cell_text(t.teacher_reason)  # a blank CSV cell reads as NaN
        if reason.startswith(("error", "image_", "download_", "no_image")):
            continue  # the teacher never read this image: no opinion
        counts["labelled"] += 1
        answer = cell_text(t.teacher_answer)
        if answer and is_match(answer, r["target"], acceptable=True):
            counts["agree"] += 1
            r["teacher_agrees"] = True
            continue
        conf = pd.to_numeric(t.teacher_confidence, errors="coerce")
        if min_confidence > 0 and not conf >= min_confidence:  # NaN (no confidence) is not sure enough
            continue
        if abstain and reason == "model_blank":
            r.update(status="abstain", reason="teacher_unprinted", target="")
            counts["teacher_unprinted"] += 1
        elif keep_agreeing:
            r.update(status="dropped", reason="teacher_disagrees", target="")
            counts["teacher_disagrees"] += 1
    return counts
