"""Every train label through the units module and the real postprocessing.py CLI (needs ../shared)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from amlc.sanity import check_files
from amlc.units import is_canonical, normalize_ex

pytestmark = pytest.mark.shared


def test_all_train_labels(shared, tmp_path, cli):
    train = pd.read_csv(shared / "train.csv", dtype=str, keep_default_na=False)
    assert len(train) == 263_859
    test = pd.DataFrame({"index": range(len(train)), "image_link": train["image_link"],
                         "group_id": train["group_id"], "entity_name": train["entity_name"]})
    raw = pd.DataFrame({"index": range(len(train)), "prediction": train["entity_value"]})
    test.to_csv(tmp_path / "test.csv", index=False)
    raw.to_csv(tmp_path / "raw.csv", index=False)

    proc = cli("postprocessing.py", "--test_filename", tmp_path / "test.csv", "--input",
               tmp_path / "raw.csv", "--output_filename", tmp_path / "out.csv")
    assert proc.returncode == 0, proc.stderr
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["index"].astype(int).tolist() == list(range(len(train)))

    canonical = [is_canonical(v, e) for v, e in zip(train["entity_value"], train["entity_name"])]
    canon = pd.Series(canonical)
    # canonical labels come back byte-identical
    assert (out["prediction"][canon] == train["entity_value"][canon]).all()
    # and what we call canonical is exactly what the issue defines as such
    pattern = train["entity_value"].str.match(r"^-?\d+(\.\d+)?\s+[a-zA-Z\s]+$")
    assert not (canon & ~pattern).any()

    # every output passes the organisers' rules
    report = check_files(tmp_path / "test.csv", tmp_path / "out.csv")
    assert report.ok, report.bad_rows[:5]

    reasons = Counter(normalize_ex(v, e).reason for v, e in zip(train["entity_value"], train["entity_name"]))
    print("\ntrain labels through amlc.units, by outcome:")
    for reason, n in reasons.most_common():
        print(f"  {reason:<18}{n:>8}")
    print(proc.stdout)
    assert reasons["unchanged"] == int(canon.sum())
    # the labels' known oddities are handled, not silently kept: ranges become one value,
    # "ounce" of a volume becomes fluid ounce, units no entity allows are blanked
    assert reasons["range"] > 3000 and reasons["converted"] > 250 and reasons["unit not allowed"] + reasons["no unit"] > 0
