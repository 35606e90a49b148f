"""amlc.formats: the integer style learned from labels, and postprocessing.py --styles."""

from __future__ import annotations

import pandas as pd
import pytest

from amlc.errors import InputError
from amlc.formats import StyleTable, learn, load, restyle, whole_number

def test_whole_number():
    assert whole_number("500 gram") == ("500", True, "gram")
    assert whole_number("500.0 fluid ounce") == ("500", False, "fluid ounce")
    assert whole_number("0.5 gram") is None and whole_number("") is None
    assert whole_number("500.05 gram") is None


def test_most_specific_level_with_enough_labels_wins():
    rows = ([("item_weight", "1", "500 gram")] * 4 + [("item_weight", "1", "500.0 gram")]
            + [("item_weight", "2", "7.0 gram")] * 9 + [("item_weight", "3", "7.0 kilogram")] * 2)
    table = learn(*zip(*rows), min_count=3)
    assert table.integer_style("item_weight", "1", "gram") is True  # 4 of 5 in its group
    assert table.integer_style("item_weight", "2", "gram") is False
    # group 3 has 2 labels (< 3): falls back to (entity, unit) kilogram: 0 of 2 -> still < 3 -> None
    assert table.integer_style("item_weight", "3", "kilogram") is None
    assert table.integer_style("width", "1", "inch") is None
    assert restyle("12.0 gram", "item_weight", "1", table) == "12 gram"
    assert restyle("12 gram", "item_weight", "2", table) == "12.0 gram"
    assert restyle("12.5 gram", "item_weight", "1", table) == "12.5 gram"
    assert restyle("", "item_weight", "1", table) == ""
    assert restyle("12.0 inch", "width", "1", table) == "12.0 inch"


def test_json_round_trip():
    table = learn(["item_weight"] * 5, ["1"] * 5, ["5 gram"] * 5)
    again = StyleTable.from_json(table.to_json())
    assert again.integer_style("item_weight", "1", "gram") is True


@pytest.mark.shared
def test_learned_styles_beat_always_dot_zero_on_held_out_train_labels(shared):
    """Learned on 4/5 of train.csv, judged on the other fifth: the real labels' habit generalises."""
    train = pd.read_csv(shared / "train.csv", dtype=str, keep_default_na=False)
    held = train.index % 5 == 0
    table = learn(train["entity_name"][~held].tolist(), train["group_id"][~held].tolist(),
                  train["entity_value"][~held].tolist())
    rows = [(e, g, v) for e, g, v in zip(train["entity_name"][held], train["group_id"][held],
                                         train["entity_value"][held]) if whole_number(v)]
    as_dot_zero = [(e, g, f"{whole_number(v)[0]}.0 {whole_number(v)[2]}", v) for e, g, v in rows]
    always = sum(p == v for _, _, p, v in as_dot_zero) / len(rows)
    learned = sum(restyle(p, e, g, table) == v for e, g, p, v in as_dot_zero) / len(rows)
    print(f"\nwhole-number labels held out: {len(rows)}; right format always '.0': {always:.4f}, "
          f"learned: {learned:.4f}")
    assert learned > always + 0.01


def test_cli_and_postprocessing_styles(tmp_path, cli):
    (tmp_path / "train.csv").write_text("image_link,group_id,entity_name,entity_value\n"
                                        + "a,7,item_weight,3 gram\n" * 5 + "b,8,item_weight,4.0 gram\n" * 5)
    (tmp_path / "exclude.csv").write_text("index\n0\n")
    proc = cli("-m", "amlc.formats", "--train", tmp_path / "train.csv", "--output", tmp_path / "s.json",
               "--exclude", tmp_path / "exclude.csv", "--min-count", "3")
    assert proc.returncode == 0 and "of 9 rows" in proc.stdout, proc.stderr
    (tmp_path / "test.csv").write_text("index,image_link,group_id,entity_name\n0,a,7,item_weight\n"
                                       "1,b,8,item_weight\n2,c,9,item_weight\n")
    (tmp_path / "raw.csv").write_text("index,prediction\n0,12g\n1,12 gram\n2,12g\n")
    proc = cli("postprocessing.py", "--test_filename", tmp_path / "test.csv", "--input", tmp_path / "raw.csv",
               "--output_filename", tmp_path / "out.csv", "--styles", tmp_path / "s.json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.csv").read_text().splitlines()[1:] == ["0,12 gram", "1,12.0 gram", "2,12.0 gram"]
    assert "restyled:   2" in proc.stdout
    proc = cli("postprocessing.py", "--test_filename", tmp_path / "test.csv", "--input", tmp_path / "raw.csv",
               "--output_filename", tmp_path / "out.csv", "--styles", tmp_path / "test.csv")
    assert proc.returncode == 2 and "not a styles table" in proc.stderr


def test_evaluate_raw_with_styles_scores_what_post_writes(tmp_path, cli):
    (tmp_path / "train.csv").write_text("image_link,group_id,entity_name,entity_value\n"
                                        + "a,7,item_weight,3 gram\n" * 5)
    assert cli("-m", "amlc.formats", "--train", tmp_path / "train.csv", "--output", tmp_path / "s.json",
               "--min-count", "3").returncode == 0
    (tmp_path / "labels.csv").write_text("index,image_link,group_id,entity_name,entity_value\n"
                                         "0,a,7,item_weight,12 gram\n")
    (tmp_path / "raw.csv").write_text("index,prediction\n0,12g\n")
    plain = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--raw", tmp_path / "raw.csv")
    styled = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--raw", tmp_path / "raw.csv",
                 "--styles", tmp_path / "s.json")
    assert plain.stdout.splitlines()[-1] == "F1 0.0000", plain.stderr
    assert styled.stdout.splitlines()[-1] == "F1 1.0000", styled.stderr
    both = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--raw", tmp_path / "raw.csv",
               "--predictions", tmp_path / "raw.csv", "--styles", tmp_path / "s.json")
    assert both.returncode == 2 and "--styles applies to --raw alone" in both.stderr


@pytest.mark.parametrize("text", ["[1, 2]", '{"version": 2, "levels": [], "counts": []}', '"x"', "{}"])
def test_a_json_file_that_is_not_a_styles_table_is_a_clear_error(tmp_path, text):
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(InputError, match="not a styles table"):
        load(tmp_path / "s.json")
