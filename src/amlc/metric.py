"""F1 exactly as the competition scores it. Pure functions, no I/O.

For each row, with OUT the prediction and GT the truth (both stripped):
  TP: OUT != "" and GT != "" and OUT == GT
  FP: OUT != "" and GT != "" and OUT != GT,  or  OUT != "" and GT == ""
  FN: OUT == "" and GT != ""
  TN: OUT == "" and GT == ""  (counts for nothing)
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R), 0 where undefined.
So a wrong answer costs the same as a blank when the truth is non-empty (FP vs FN, both lower F1),
but when the truth is empty a blank is free and any answer is a false positive.

Equality is exact string equality, as on the leaderboard: "10 inch" and "10.0 inch" differ. For the
hand-labelled dimension set (dims_dev) a truth may list several acceptable answers separated by "|",
and a prediction matches one when its number (as a float) and unit are equal (`acceptable=True`).
A prediction the organisers' parser rejects (amlc.sanity: "1400 mg", "[1.0, 2.0] volt") never
matches, even a truth written the same way: the leaderboard reads a submission through that parser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd

from amlc.sanity import check_value


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def rows(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "rows": self.rows, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


def cell_text(x: object) -> str:
    """A CSV cell as scored: missing (None, NaN) is "", text is stripped."""
    if x is None or (isinstance(x, float) and x != x):
        return ""
    return str(x).strip()


def value_pair(s: str) -> tuple[float, str] | None:
    """"x unit" as (x, unit) with the unit's spaces folded, or None when it is not of that shape."""
    parts = s.split(maxsplit=1)
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), " ".join(parts[1].split())
    except ValueError:
        return None


def is_match(prediction: object, truth: object, acceptable: bool = False) -> bool:
    """Does a non-empty prediction equal the (non-empty) truth?"""
    out, gt = cell_text(prediction), cell_text(truth)
    if not out or not gt:
        return False
    if not acceptable:
        return out == gt
    pair = value_pair(out)
    return pair is not None and any(pair == value_pair(a.strip()) for a in gt.split("|"))


def outcome(prediction: object, truth: object, acceptable: bool = False) -> str:
    """"tp", "fp", "fn" or "tn" for one row."""
    out, gt = cell_text(prediction), cell_text(truth)
    if out and gt:
        return "tp" if is_match(out, gt, acceptable) and check_value(out) is None else "fp"
    if out:
        return "fp"
    return "fn" if gt else "tn"


def score(predictions: Iterable[object], truths: Iterable[object], acceptable: bool = False) -> Counts:
    c = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for p, t in zip(predictions, truths, strict=True):
        c[outcome(p, t, acceptable)] += 1
    return Counts(**c)


def f1_score(predictions: Iterable[object], truths: Iterable[object], acceptable: bool = False) -> float:
    return score(predictions, truths, acceptable).f1


def per_entity(df: pd.DataFrame, prediction: str = "prediction", truth: str = "truth",
               acceptable: bool = False) -> pd.DataFrame:
    """One row per entity_name plus "ALL": tp, fp, fn, tn, rows, precision, recall, f1."""
    rows = []
    for entity, part in sorted(df.groupby("entity_name"), key=lambda kv: kv[0]):
        rows.append({"entity_name": entity,
                     **score(part[prediction], part[truth], acceptable).as_dict()})
    rows.append({"entity_name": "ALL", **score(df[prediction], df[truth], acceptable).as_dict()})
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The per-entity table as fixed-width text (what evaluate.py prints)."""
    head = f"{'entity':<31} {'rows':>6} {'tp':>6} {'fp':>6} {'fn':>6} {'prec':>7} {'recall':>7} {'f1':>7}"
    lines = [head, "-" * len(head)]
    for r in table.itertuples(index=False):
        if r.entity_name == "ALL":
            lines.append("-" * len(head))
        lines.append(f"{r.entity_name:<31} {r.rows:>6} {r.tp:>6} {r.fp:>6} {r.fn:>6} "
                     f"{r.precision:>7.4f} {r.recall:>7.4f} {r.f1:>7.4f}")
    return "\n".join(lines)
