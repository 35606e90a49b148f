"""Stratified sampling: exclusions, determinism, strata, link-disjoint splits, the CLI."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from amlc.errors import InputError
from amlc.sampling import sample
from amlc.units import normalize

GOOD = {"item_weight": "500.0 gram", "width": "10.0 centimetre", "depth": "2 inch", "height": "5.5 foot",
        "voltage": "[100.0, 240.0] volt", "wattage": "60.0 watt", "item_volume": "1.0 cup",
        "maximum_weight_recommendation": "15 kilogram"}
BAD = {"item_weight": "5 millilitre", "wattage": "3.0 horsepower", "width": "12"}


def make_train(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Skewed like train.csv: entity shares from 39% to 1%, group sizes from 1 to hundreds, some photos
    labelled for two entities, a few unusable labels and an empty link."""
    rng = random.Random(seed)
    entities = list(GOOD)
    weights = [39, 17, 17, 17, 3.6, 2.9, 2.9, 1.2]
    groups = [f"g{i}" for i in range(120)]
    gweights = [1 / (i + 1) ** 1.1 for i in range(120)]
    rows = []
    for i in range(n):
        ent = rng.choices(entities, weights)[0]
        value = GOOD[ent]
        if ent in BAD and rng.random() < 0.02:
            value = BAD[ent]
        rows.append({"image_link": f"https://m.media-amazon.com/images/I/p{i}.jpg",
                     "group_id": rng.choices(groups, gweights)[0], "entity_name": ent, "entity_value": value})
    for i in range(0, n, 25):  # the same photo, labelled again for another entity
        twin = dict(rows[i])
        twin["entity_name"] = "height" if twin["entity_name"] != "height" else "width"
        twin["entity_value"] = GOOD[twin["entity_name"]]
        rows.append(twin)
    rows.append({"image_link": "", "group_id": "g1", "entity_name": "width", "entity_value": "3 cm"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return make_train()


def test_columns_index_and_target(train):
    out = sample(train, size=1000, seed=1, log=None)
    assert list(out.columns) == ["index", *train.columns, "target", "split"]
    assert len(out) == 1000 and out["index"].is_unique and out["index"].is_monotonic_increasing
    orig = train.iloc[out["index"]]
    for col in train.columns:  # every original value carried unchanged, matched by index
        assert out[col].tolist() == orig[col].tolist()
    assert out["target"].tolist() == [normalize(v, e) for v, e in zip(out["entity_value"], out["entity_name"])]
    assert (out["target"] != "").all() and set(out["split"]) == {"train", "val"}
    with_index = train.assign(index=np.arange(len(train)) * 10 + 7)
    again = sample(with_index, size=1000, seed=1, log=None)
    assert again["index"].tolist() == (out["index"] * 10 + 7).tolist()  # an input index is kept


def test_unusable_rows_are_excluded_and_counted(train):
    lines = []
    out = sample(train, fraction=1.0, seed=0, log=lines.append)
    bad = train["entity_value"].isin(set(BAD.values())) & train.apply(
        lambda r: normalize(r["entity_value"], r["entity_name"]) == "", axis=1)
    assert bad.sum() > 10
    assert len(out) == len(train) - bad.sum() - 1  # and the row with no image link
    assert not out["image_link"].eq("").any()
    report = "\n".join(lines)
    assert f"dropped {bad.sum() + 1} rows" in report and "no image_link: 1" in report
    assert "label unusable (unit not allowed)" in report
    for ent in GOOD:  # per-entity counts before (input) and after (sample)
        assert ent in report


def test_deterministic_per_seed(train):
    a = sample(train, size=800, seed=7, log=None)
    b = sample(train, size=800, seed=7, log=None)
    c = sample(train, size=800, seed=8, log=None)
    pd.testing.assert_frame_equal(a, b)
    assert a["index"].tolist() != c["index"].tolist()


def test_size_fraction_and_bounds(train):
    usable = len(sample(train, fraction=1.0, log=None))
    assert len(sample(train, size=321, log=None)) == 321
    assert len(sample(train, fraction=0.1, log=None)) == round(0.1 * usable)
    assert len(sample(train, size=123, fraction=0.5, log=None)) == 123  # size wins
    assert len(sample(train, size=10**7, log=None)) == usable
    assert len(sample(train, log=None)) == usable  # neither: every usable row
    for kw in ({"size": 0}, {"size": -3}, {"size": 2.5}, {"fraction": 0.0}, {"fraction": 1.5},
               {"size": 10, "val_fraction": 1.0}, {"size": 10, "val_fraction": -0.1}):
        with pytest.raises(InputError):
            sample(train, log=None, **kw)
    with pytest.raises(InputError, match="lacks column"):
        sample(train.drop(columns=["group_id"]), size=10, log=None)


def test_strata_keep_their_shares(train):
    n = 1500
    usable = sample(train, fraction=1.0, val_fraction=0.0, log=None)
    out = sample(train, size=n, seed=3, log=None)
    expect = n / len(usable)
    # every (entity, group) pair big enough to expect a row keeps its share to within one row
    pairs_all = usable.groupby(["entity_name", "group_id"]).size()
    pairs_out = out.groupby(["entity_name", "group_id"]).size().reindex(pairs_all.index, fill_value=0)
    big = pairs_all * expect >= 1
    assert big.sum() > 40
    assert ((pairs_out[big] - pairs_all[big] * expect).abs() < 1).all()
    # and every entity, rare ones included, to within one row
    ent_all = usable["entity_name"].value_counts()
    ent_out = out["entity_name"].value_counts().reindex(ent_all.index, fill_value=0)
    assert ((ent_out - ent_all * expect).abs() < 1).all(), pd.concat([ent_out, ent_all * expect], axis=1)
    # compare: a plain random draw of the same size misses by more on some entity or pair
    rnd = usable.sample(n, random_state=3)
    rnd_pairs = rnd.groupby(["entity_name", "group_id"]).size().reindex(pairs_all.index, fill_value=0)
    assert ((rnd_pairs[big] - pairs_all[big] * expect).abs() >= 1).any()


def test_splits_never_share_a_link(train):
    out = sample(train, size=3000, val_fraction=0.2, seed=5, log=None)
    train_links = set(out.loc[out["split"] == "train", "image_link"])
    val_links = set(out.loc[out["split"] == "val", "image_link"])
    assert not train_links & val_links
    assert out["image_link"].duplicated().sum() > 20  # the twins were sampled: the test can fail
    links = len(train_links) + len(val_links)
    assert abs(len(val_links) - 0.2 * links) <= 1
    # the validation split is stratified by entity too
    first = out.drop_duplicates("image_link")
    share_all = first["entity_name"].value_counts(normalize=True)
    share_val = first[first["split"] == "val"]["entity_name"].value_counts(normalize=True)
    assert (share_val.reindex(share_all.index, fill_value=0) - share_all).abs().max() < 0.02


@pytest.mark.parametrize("rows", [1, 2, 3, 9])
def test_tiny_inputs(train, rows):
    small = train[train["image_link"] != ""].head(rows)
    for size in (1, rows, rows + 5):
        for vf in (0.0, 0.5):
            out = sample(small, size=size, val_fraction=vf, log=None)
            assert len(out) == min(size, rows)
            assert not (set(out.loc[out["split"] == "val", "image_link"])
                        & set(out.loc[out["split"] == "train", "image_link"]))
            if vf == 0.0:
                assert (out["split"] == "train").all()


def test_cli(train, tmp_path, cli):
    src = tmp_path / "train.csv"
    train.to_csv(src, index=False)
    dst = tmp_path / "sample.csv"
    proc = cli("-m", "amlc.sampling", "--input", src, "--output", dst, "--size", "500", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(dst, dtype=str, keep_default_na=False)
    want = sample(pd.read_csv(src, dtype=str, keep_default_na=False), size=500, seed=4, log=None)
    assert got["index"].tolist() == want["index"].astype(str).tolist()
    assert got["split"].tolist() == want["split"].tolist()
    assert "item_weight" in proc.stderr and "dropped" in proc.stderr and "none in both" in proc.stderr
    for args in (["--size", "5", "--fraction", "0.1"], ["--val-fraction", "2"], ["--size", "0"]):
        proc = cli("-m", "amlc.sampling", "--input", src, "--output", dst, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    bad = tmp_path / "bad.csv"
    train.drop(columns=["entity_value"]).to_csv(bad, index=False)
    proc = cli("-m", "amlc.sampling", "--input", bad, "--output", dst)
    assert proc.returncode == 2 and "entity_value" in proc.stderr


@pytest.mark.shared
def test_real_train_csv(shared):
    train = pd.read_csv(shared / "train.csv", dtype=str, keep_default_na=False)
    lines = []
    out = sample(train, size=20000, val_fraction=0.05, seed=42, log=lines.append)
    assert len(out) == 20000 and (out["target"] != "").all()
    assert not (set(out.loc[out["split"] == "val", "image_link"])
                & set(out.loc[out["split"] == "train", "image_link"]))
    assert "dropped 481 rows" in lines[0]
    cache: dict = {}
    ok = [cache.setdefault((v, e), normalize(v, e)) != "" for v, e in zip(train["entity_value"], train["entity_name"])]
    usable = train[ok]
    expect = 20000 / len(usable)
    ent_all = usable["entity_name"].value_counts()
    ent_out = out["entity_name"].value_counts().reindex(ent_all.index, fill_value=0)
    assert ((ent_out - ent_all * expect).abs() < 1).all()
    pairs_all = usable.groupby(["entity_name", "group_id"]).size()
    pairs_out = out.groupby(["entity_name", "group_id"]).size().reindex(pairs_all.index, fill_value=0)
    big = pairs_all * expect >= 1
    assert big.sum() > 500 and ((pairs_out[big] - pairs_all[big] * expect).abs() < 1).all()
