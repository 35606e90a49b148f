"""The OCR engine's fitted choices: which candidate answers, how likely it is right, whether it is printed.

Three small linear models over the evidence amlc.engines.ocr_rules gathers (keywords, print size,
callout geometry, the catalogue's unit mix and magnitudes...), fitted on the hand-labelled development
sets by `python bench/fit_ocr_model.py` (it needs ../shared/amlc2024, prints every figure by
cross-validation grouped by image, and writes ocr_model.json beside this file):

- pick: a conditional logit over a row's candidates, one weight vector for dimensions and one for
  the other entities. The candidate with the highest score w.x answers; softmax(w.x) over the row is
  its `share` of the choice.
- correct: a logistic regression over the row's evidence (ROW_FEATURES): P(the answer is right). This
  is Result.confidence; thresholds on it trade answers for precision.
- printed: the same over the hand-labelled rows: P(the image prints the asked value at all). This is
  Result.printed; the runner blanks rows under `inference.printed_threshold`.

Scoring is plain Python (no scikit-learn at run time); fitting (`fit_pick`, `fit_logistic`) imports
scipy and scikit-learn only when called.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from amlc.errors import InputError
from amlc.units import BASE_FACTOR, DIMENSIONS

SHIPPED = Path(__file__).with_name("ocr_model.json")
VERSION = 1

# The candidate evidence the pick model weighs (ocr_rules.features computes each; why each one is
# there is said where it is computed).
PICK_FEATURES = ("keyword", "rival", "context", "size", "first", "range", "implausible", "orient",
                 "extent", "cat_mag", "has_twin", "twin_cat")
# What a reader of product labels expects each piece of evidence to weigh (the engine's former
# hand-set weights): the pick model is pulled towards these where the development sets are silent.
# A keyword next to a value is the strongest sign (it is how a person finds the value), a rival's as
# strong against; a nutrient's or per-piece row and an implausible value rule a value out; for a
# drawing the callout's direction is what the annotation rules themselves use.
PICK_PRIOR = {"keyword": 2.0, "rival": -2.0, "context": -2.0, "size": 0.6, "first": 0.6,
              "implausible": -4.0, "orient": 2.0, "extent": 0.4}
ENTITY_FEATURES = ("is_width", "is_height", "is_depth", "is_item_weight", "is_item_volume",
                   "is_maximum_weight_recommendation", "is_voltage", "is_wattage")
# The row evidence the correct and printed models weigh (`row_features`).
ROW_FEATURES = ("share", "share_second", "keyword", "orient", "cat_mag", "n_cands",
                "claimed_box", "claimed_value", "n_values") + ENTITY_FEATURES


def kind(entity: str) -> str:
    return "dims" if entity in DIMENSIONS else "other"


@dataclass
class Linear:
    """w.x + bias over named features (a missing feature counts 0)."""

    weights: dict[str, float] = field(default_factory=dict)
    bias: float = 0.0

    def __call__(self, x: Mapping[str, float]) -> float:
        return self.bias + sum(w * x.get(k, 0.0) for k, w in self.weights.items())

    def prob(self, x: Mapping[str, float]) -> float:
        return _sigmoid(self(x))

    def to_json(self) -> dict[str, Any]:
        return {"bias": round(self.bias, 6), "weights": {k: round(v, 6) for k, v in self.weights.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Linear:
        return cls({str(k): float(v) for k, v in d["weights"].items()}, float(d["bias"]))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass
class Model:
    pick: dict[str, Linear]  # kind -> candidate scorer
    correct: Linear
    printed: Linear
    printed_threshold: float = 0.0  # the cross-validated default for inference.printed_threshold
    notes: dict[str, Any] = field(default_factory=dict)  # what it was fitted on, and its CV figures

    def pick_score(self, f: Mapping[str, float], entity: str) -> float:
        return self.pick[kind(entity)](f)

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "pick": {k: v.to_json() for k, v in self.pick.items()},
                           "correct": self.correct.to_json(), "printed": self.printed.to_json(),
                           "printed_threshold": self.printed_threshold, "notes": self.notes},
                          indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "OCR model file") -> Model:
        try:
            d = json.loads(text)
            if d.get("version") == VERSION:
                return cls({k: Linear.from_json(v) for k, v in d["pick"].items()},
                           Linear.from_json(d["correct"]), Linear.from_json(d["printed"]),
                           float(d["printed_threshold"]), dict(d.get("notes", {})))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        raise InputError(f"{where} is not an OCR model written by bench/fit_ocr_model.py")


@lru_cache(maxsize=4)
def load(path: str | Path = SHIPPED) -> Model:
    from amlc.tables import read_text

    return Model.from_json(read_text(path, "OCR model file"), f"OCR model file {path}")


def shares(scores: Sequence[float]) -> list[float]:
    """softmax: each candidate's share of the row's choice."""
    if not scores:
        return []
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    total = sum(e)
    return [x / total for x in e]


def rescored(cands: Sequence[Any], model: Model, entity: str) -> list[Any]:
    """Copies of ocr_rules candidates scored by `model`'s pick weights, best first, with shares."""
    out = [replace(c, score=model.pick_score(c.features, entity)) for c in cands]
    for c, p in zip(out, shares([c.score for c in out])):
        c.share = p
    return sorted(out, key=lambda c: (-c.score, c.order))


def judge(entity: str, ranked: Sequence[Any], others: Mapping[str, Sequence[Any]] | None,
          model: Model) -> tuple[float, float]:
    """(P(the best candidate is right), P(the value is printed)) for a row (see row_features)."""
    f = row_features(entity, ranked, others)
    return (model.correct.prob(f) if ranked else 0.0), model.printed.prob(f)


def row_features(entity: str, ranked: Sequence[Any],
                 others: Mapping[str, Sequence[Any]] | None = None) -> dict[str, float]:
    """The evidence about a row as a whole, from its ranked candidates (ocr_rules.rank) and, for a
    dimension, the other dimensions' rankings of the same drawing: how clearly the best won (its
    `share`, the runner-up's), the best's keyword, callout and magnitude evidence, whether a surer
    answer to another dimension takes the best's callout (`claimed_box`) or value (`claimed_value`),
    and how many distinct lengths the drawing prints (`n_values`)."""
    f = {f"is_{entity}": 1.0, "n_cands": math.log1p(len(ranked))}
    if not ranked:
        return f
    best = ranked[0]
    f.update(share=best.share, share_second=ranked[1].share if len(ranked) > 1 else 0.0,
             keyword=best.features.get("keyword", 0.0), orient=best.features.get("orient", 0.0),
             cat_mag=best.features.get("cat_mag", 0.0))
    if entity in DIMENSIONS:
        f["claimed_box"] = f["claimed_value"] = 0.0
        for other, theirs in (others or {}).items():
            if other == entity or not theirs or theirs[0].share <= best.share:
                continue
            if set(theirs[0].boxes) & set(best.boxes):
                f["claimed_box"] = max(f["claimed_box"], theirs[0].share)
            if _same_length(theirs[0], best):
                f["claimed_value"] = max(f["claimed_value"], theirs[0].share)
        values: list[Any] = []
        for c in ranked:
            if not any(_same_length(c, v) for v in values):
                values.append(c)
        f["n_values"] = float(len(values))
    return f


def _same_length(a: Any, b: Any) -> bool:
    """One length, maybe in two units (3% for rounding: "4.33 inch" is "11 cm")."""
    va, vb = a.value * BASE_FACTOR[a.unit], b.value * BASE_FACTOR[b.unit]
    return abs(va - vb) <= 0.03 * max(va, vb)


# ---------------------------------------------------------------------------------------- fitting


def fit_pick(rows: Sequence[Sequence[Mapping[str, float]]], labels: Sequence[Sequence[bool]],
             names: Sequence[str] = PICK_FEATURES, l2: float = 30.0,
             prior: Mapping[str, float] | None = None) -> Linear:
    """A conditional logit: maximise sum over rows of log softmax(w.x)[right candidate], with an L2
    penalty (over standardised features) pulling w towards `prior` (zero when None): what a reader
    of labels expects where the data has too few rows to say. Rows without a right candidate teach
    nothing here."""
    import numpy as np
    from scipy.optimize import minimize

    xs, ys, owner = [], [], []
    for r, (cands, labs) in enumerate(zip(rows, labels)):
        if not any(labs):
            continue
        for f, y in zip(cands, labs):
            xs.append([f.get(k, 0.0) for k in names])
            ys.append(1.0 if y else 0.0)
            owner.append(r)
    w0 = np.asarray([float((prior or {}).get(k, 0.0)) for k in names])
    if not xs:
        return Linear(dict(zip(names, w0.tolist())))
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys)
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    z0 = w0 * sd  # the prior on the standardised features
    _, inv = np.unique(np.asarray(owner), return_inverse=True)
    n = int(inv.max()) + 1
    right = np.bincount(inv, y, n)  # right candidates per row (twins: more than one)

    def loss(w):
        s = z @ w
        m = np.full(n, -np.inf)
        np.maximum.at(m, inv, s)
        e = np.exp(s - m[inv])
        den = np.bincount(inv, e, n)
        ll = (s * y).sum() - ((np.log(den) + m) * right).sum()
        p = e / den[inv]
        grad = z.T @ (y - p * right[inv])
        d = w - z0
        return -ll + l2 * d @ d, -grad + 2 * l2 * d

    w = minimize(loss, z0.copy(), jac=True, method="L-BFGS-B").x
    return Linear({k: float(v) for k, v in zip(names, w / sd)}, 0.0)


def fit_logistic(xs: Sequence[Mapping[str, float]], ys: Sequence[bool], names: Sequence[str] = ROW_FEATURES,
                 c: float = 0.3) -> Linear:
    """L2 logistic regression over standardised features, returned on the raw features."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray([[f.get(k, 0.0) for k in names] for f in xs], dtype=float)
    y = np.asarray([1 if v else 0 for v in ys])
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    m = LogisticRegression(C=c, max_iter=5000).fit((x - mu) / sd, y)
    w = m.coef_[0] / sd
    return Linear({k: float(v) for k, v in zip(names, w)}, float(m.intercept_[0] - (w * mu).sum()))
