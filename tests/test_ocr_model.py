"""amlc.engines.ocr_model: the fitted pick, correct and printed models, and the file that ships them."""

from __future__ import annotations

import math
import random

import pytest

from amlc.engines.ocr import Box, OcrEngine, Page
from amlc.engines.ocr_model import (PICK_FEATURES, ROW_FEATURES, SHIPPED, Linear, Model, fit_logistic,
                                    fit_pick, load, row_features, shares)
from amlc.engines.ocr_rules import rank
from amlc.errors import InputError


def test_linear_model_json_round_trip_and_bad_files(tmp_path):
    m = Model({"dims": Linear({"orient": 1.5}, -0.2), "other": Linear({"keyword": 2.0})},
              Linear({"share": 3.0}, -1.0), Linear({"n_cands": 1.0}, 0.5), 0.3, {"fitted": "today"})
    again = Model.from_json(m.to_json())
    assert again.pick["dims"]({"orient": 1.0}) == pytest.approx(1.3)
    assert again.correct.prob({"share": 1.0}) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert again.printed_threshold == 0.3 and again.notes == {"fitted": "today"}
    with pytest.raises(InputError, match="not an OCR model"):
        Model.from_json('{"version": 99}')
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "none.json")


def test_shares_are_a_softmax():
    assert shares([]) == []
    p = shares([2.0, 0.0, 0.0])
    assert sum(p) == pytest.approx(1.0) and p[0] > p[1] == p[2]
    assert shares([1000.0, 0.0])[0] == pytest.approx(1.0)  # no overflow


def test_fit_pick_learns_which_evidence_chooses():
    """Rows of candidates where the keyworded one is right: the fitted weight on keyword is large
    and positive, and it picks the right candidate of rows it never saw."""
    rng = random.Random(0)

    def row():
        right = rng.randrange(3)
        cands = [{"keyword": 1.0 if i == right else 0.0, "size": rng.random()} for i in range(3)]
        return cands, [i == right for i in range(3)]

    train = [row() for _ in range(60)]
    w = fit_pick([c for c, _ in train], [y for _, y in train], ("keyword", "size"))
    assert w.weights["keyword"] > 1.0 > abs(w.weights["size"])
    test = [row() for _ in range(20)]
    assert all(max(range(3), key=lambda i: w(c[i])) == y.index(True) for c, y in test)
    # rows without a right candidate teach the choice nothing
    empty = fit_pick([[{"keyword": 1.0}]], [[False]], ("keyword",))
    assert empty.weights == {"keyword": 0.0}


def test_fit_logistic_is_on_the_raw_features():
    rng = random.Random(1)
    xs = [{"share": rng.random()} for _ in range(300)]
    ys = [x["share"] + rng.gauss(0, 0.1) > 0.5 for x in xs]
    m = fit_logistic(xs, ys, ("share",), c=10.0)
    assert m.prob({"share": 0.9}) > 0.8 and m.prob({"share": 0.1}) < 0.2


def box(text, cx, cy, h=24.0, vertical=False):
    w = 0.55 * h * len(text)
    if vertical:
        return Box.from_quad(text, 0.99, [(cx - h / 2, cy - w / 2), (cx + h / 2, cy - w / 2),
                                         (cx + h / 2, cy + w / 2), (cx - h / 2, cy + w / 2)])
    return Box.from_quad(text, 0.99, [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2),
                                     (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2)])


def test_row_features_say_when_another_dimension_takes_the_callout():
    """A drawing that prints a height (vertical) and a width (horizontal, below) but no depth: the
    depth's best candidate is a callout that the width, surer of it, takes."""
    boxes = [box("45 cm", 60, 300, vertical=True), box("80 cm", 400, 620)]
    segments = [(100.0, 100.0, 100.0, 500.0), (200.0, 590.0, 600.0, 590.0)]
    ranked = {e: rank(boxes, e, 800, 700, segments=segments) for e in ("width", "height", "depth")}
    f = row_features("depth", ranked["depth"], ranked)
    assert f["is_depth"] == 1.0 and f["n_values"] == 2.0
    assert f["claimed_box"] > 0 and f["claimed_value"] > 0
    w = row_features("width", ranked["width"], ranked)
    assert ranked["width"][0].prediction == "80.0 centimetre" and w["claimed_box"] == 0.0
    assert set(row_features("voltage", [], None)) == {"is_voltage", "n_cands"}
    assert set(f) <= set(ROW_FEATURES)


def test_the_shipped_model_is_complete_and_the_engine_uses_it():
    model = load(SHIPPED)
    assert set(model.pick) == {"dims", "other"}
    for w in model.pick.values():
        assert set(w.weights) == set(PICK_FEATURES)
    assert set(model.correct.weights) == set(model.printed.weights) == set(ROW_FEATURES)
    assert 0.0 <= model.printed_threshold < 1.0 and model.notes["cv"]["choice_accuracy"] > 0.8
    page = Page([box("Net Wt 500 g", 300, 100), box("Protein 20 g", 300, 200, h=14)], 600, 400, key="k")
    r = OcrEngine().decide(page, "item_weight")
    assert r.prediction == "500.0 gram" and 0 < r.confidence < 1 and 0 < r.printed < 1
    nothing = OcrEngine().decide(page, "voltage")
    assert nothing.prediction == "" and nothing.reason == "no mention" and nothing.printed is not None


def test_the_default_printed_threshold_is_the_fitted_one():
    """bench/fit_ocr_model.py chooses inference.printed_threshold by cross-validation and stores it
    in the model; the config's default must say the same (one figure, two places a reader looks)."""
    from amlc.config import DEFAULTS

    assert DEFAULTS["inference"]["printed_threshold"] == load(SHIPPED).printed_threshold
