"""amlc.sanity agrees with the organisers' acceptance rules, and lists every failure."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amlc.constants import ALLOWED_UNITS
from amlc.sanity import check_value


def organisers_accept(s) -> bool:
    """The rules as the organisers' starter kit states them, written out independently."""
    text = "" if s is None or str(s) == "nan" else str(s).strip()
    if text == "":
        return True
    if not re.match(r"^-?\d+(\.\d+)?\s+[a-zA-Z\s]+$", text):
        return False
    number, unit = text.split(maxsplit=1)
    float(number)
    for fixed in (unit, unit.replace("ter", "tre"), unit.replace("feet", "foot")):
        if fixed in ALLOWED_UNITS:
            return True
    return False


EDGE = ["", " ", "nan", "10 inch", "10.5 inch", "-3 volt", "10 inches", "10 centimeter",
        "10 centimetre", "10 feet", "10 foot", "10 Inch", "10 fluid ounce", "10 fluid  ounce",
        "10  inch", " 10 inch ", "10inch", "1e3 gram", "10. inch", ".5 inch", "10,5 inch",
        "10 inch\n", "10 cubic feet", "10 milliliter", "10 lbs", "6.75 pound", "[1, 2] volt",
        "10 kilogram to 20 kilogram", "١٠ gram", "10 gram ", "10\tgram", "10 millimeter"]


@pytest.mark.parametrize("value", EDGE)
def test_edge_cases_agree(value):
    assert (check_value(value) is None) == organisers_accept(value)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=30),
                 st.builds(lambda n, u: f"{n} {u}", st.floats(allow_nan=False).map(str),
                           st.sampled_from(sorted(ALLOWED_UNITS) + ["feet", "meter", "lbs", "foo"]))))
def test_arbitrary_values_agree(value):
    assert (check_value(value) is None) == organisers_accept(value)


def test_sample_files(shared, cli):
    ok = cli("src/sanity.py", "--test_filename", shared / "sample_test.csv", "--output_filename",
             shared / "sample_test_out.csv")
    assert ok.returncode == 0 and "Parsing successful" in ok.stdout
    bad = cli("src/sanity.py", "--test_filename", shared / "sample_test.csv", "--output_filename",
              shared / "sample_test_out_fail.csv")
    assert bad.returncode == 1
    assert "6.75 lbs" in bad.stdout and ":16:" in bad.stdout and "index 14" in bad.stdout


def test_every_failure_is_listed(tmp_path, cli):
    test = pd.DataFrame({"index": [0, 1, 2, 3, 4], "image_link": ["a.jpg"] * 5, "group_id": [1] * 5,
                         "entity_name": ["width", "width", "item_weight", "voltage", "wattage"]})
    test.to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "out.csv").write_text("index,prediction\n0,10 inch\n1,10 lbs\n2,abc\n9,5 volt\n"
                                      "3,5.0 gram\n3,5 volt\n")
    proc = cli("src/sanity.py", "--test_filename", tmp_path / "test.csv", "--output_filename",
               tmp_path / "out.csv")
    assert proc.returncode == 1
    out = proc.stdout
    assert ":3: index 1: '10 lbs'" in out and ":4: index 2: 'abc'" in out
    assert "missing index" in out and "4" in out.split("missing index")[1].splitlines()[0]
    assert "extra index" in out and "9" in out.split("extra index")[1].splitlines()[0]
    assert "repeated index: 3" in out
    assert "warning" in out and "'5.0 gram' is not a unit of voltage" in out


def test_non_csv_name_is_refused(tmp_path, cli):
    (tmp_path / "out.txt").write_text("index,prediction\n")
    (tmp_path / "t.csv").write_text("index\n0\n")
    proc = cli("src/sanity.py", "--test_filename", tmp_path / "t.csv", "--output_filename",
               tmp_path / "out.txt")
    assert proc.returncode == 2 and ".csv" in proc.stderr and "Traceback" not in proc.stderr


def test_the_test_file_is_checked_too(tmp_path, cli):
    # a submission given as the test file: an error naming what a test file needs, not "87 extra"
    (tmp_path / "out.csv").write_text("index,prediction\n0,10 inch\n")
    proc = cli("src/sanity.py", "--test_filename", tmp_path / "out.csv", "--output_filename",
               tmp_path / "out.csv")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: test file lacks column(s) entity_name (it has: index, "
                                   f"prediction): {tmp_path / 'out.csv'}")
