"""The competition's F1 on hand-computed cases, empty truths included."""

from __future__ import annotations

import json

import pytest

from amlc.metric import outcome, per_entity, score

import pandas as pd


def test_outcomes():
    assert outcome("10.0 inch", "10.0 inch") == "tp"
    assert outcome("10.0 inch", "10 inch") == "fp"  # exact string match, as on the leaderboard
    assert outcome("10.0 inch", "") == "fp"  # answering where the truth is empty
    assert outcome("", "10.0 inch") == "fn"
    assert outcome("", "") == "tn"
    assert outcome(" 10.0 inch ", "10.0 inch") == "tp"  # both are stripped
    assert outcome(float("nan"), "") == "tn"


def test_what_the_parser_rejects_never_matches():
    # the leaderboard reads a submission through the organisers' parser: these cannot be a TP
    assert outcome("[100.0, 240.0] volt", "[100.0, 240.0] volt") == "fp"
    assert outcome("1080.0 horsepower", "1080.0 horsepower") == "fp"
    assert outcome("10 kilogram to 15 kilogram", "10 kilogram to 15 kilogram") == "fp"
    assert outcome("37 inches", "37.0 inch|94.0 centimetre", acceptable=True) == "fp"
    assert outcome("37 inch", "37.0 inch|94.0 centimetre", acceptable=True) == "tp"


def test_hand_computed_f1():
    preds = ["1.0 gram", "2.0 gram", "", "", "5.0 volt", "6.0 watt"]
    truth = ["1.0 gram", "3.0 gram", "4.0 gram", "", "", "6.0 watt"]
    c = score(preds, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 2, 1, 1)
    # P = 2/4, R = 2/3, F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7
    assert c.precision == pytest.approx(0.5)
    assert c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(4 / 7)


def test_all_blank_scores_zero_and_empty_truths_reward_abstention():
    assert score(["", ""], ["1.0 gram", ""]).f1 == 0.0
    # an answer on an empty-truth row only hurts
    base = score(["1.0 gram", ""], ["1.0 gram", ""]).f1
    worse = score(["1.0 gram", "2.0 gram"], ["1.0 gram", ""]).f1
    assert base == 1.0 and worse == pytest.approx(2 / 3)


def test_acceptable_answers():
    truth = "37.0 inch|94.0 centimetre"
    assert outcome("37 inch", truth, acceptable=True) == "tp"
    assert outcome("94.0 centimetre", truth, acceptable=True) == "tp"
    assert outcome("94.0 inch", truth, acceptable=True) == "fp"
    assert outcome("5 inch", "", acceptable=True) == "fp"


def test_per_entity_table():
    df = pd.DataFrame({"entity_name": ["width", "width", "voltage"],
                       "prediction": ["1.0 inch", "", "5.0 volt"],
                       "truth": ["1.0 inch", "2.0 inch", "5.0 volt"]})
    t = per_entity(df).set_index("entity_name")
    assert t.loc["width", "f1"] == pytest.approx(2 / 3)
    assert t.loc["voltage", "f1"] == 1.0
    assert t.loc["ALL", "tp"] == 2 and t.loc["ALL", "fn"] == 1


def test_evaluate_cli_before_and_after(tmp_path, cli):
    (tmp_path / "labels.csv").write_text(
        "index,entity_name,entity_value\n0,item_weight,500.0 gram\n1,voltage,240.0 volt\n"
        "2,width,\n3,width,10.0 centimetre\n")
    (tmp_path / "raw.csv").write_text("index,prediction\n0,500g\n1,100-240V\n2,5 cm\n3,\n")
    proc = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--raw", tmp_path / "raw.csv",
               "--metrics", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    # raw: nothing matches exactly -> tp 0; after: 2 tp, 1 fp (row 2), 1 fn (row 3): P=2/3 R=2/3
    assert m["raw_f1"] == 0.0
    assert m["value_f1"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert proc.stdout.strip().splitlines()[-1] == "F1 0.6667"
    assert "raw F1 0.0000" in proc.stdout


def test_value_f1_counts_formatting_as_a_match(tmp_path, cli):
    (tmp_path / "labels.csv").write_text("index,entity_name,entity_value\n0,item_weight,500 gram\n")
    (tmp_path / "p.csv").write_text("index,prediction\n0,500.0 gram\n")
    proc = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--predictions", tmp_path / "p.csv",
               "--metrics", tmp_path / "m.json")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["f1"] == 0.0 and m["value_f1"] == 1.0
    assert "F1 1.0000)" in proc.stdout and proc.stdout.strip().splitlines()[-1] == "F1 0.0000"


def test_evaluate_says_what_the_leaderboard_would_reject(tmp_path, cli):
    (tmp_path / "labels.csv").write_text(
        "index,entity_name,entity_value\n0,item_weight,1400 milligram\n1,item_weight,1.7 kilogram\n"
        "2,voltage,\"[100.0, 240.0] volt\"\n3,width,5.0 centimetre\n")
    (tmp_path / "p.csv").write_text('index,prediction\n0,1400 mg\n1,60 ounce/1.7 kilogram\n'
                                    '2,"[100.0, 240.0] volt"\n3,5.0 centimetre\n')
    proc = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--predictions", tmp_path / "p.csv",
               "--metrics", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stderr
    warning = proc.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: 3 prediction(s)"), warning
    assert "line 2, '1400 mg'" in warning[0] and "scored as wrong answers" in warning[0]
    m = json.loads((tmp_path / "m.json").read_text())
    # the bracketed range equals its truth as text, but the parser rejects it: 1 tp, 3 fp
    assert m["rejected"] == 3 and m["f1"] == pytest.approx(2 * 0.25 * 1 / 1.25)


def test_evaluate_images_must_exist(tmp_path, cli):
    (tmp_path / "labels.csv").write_text("index,entity_name,entity_value\n0,width,5.0 centimetre\n")
    (tmp_path / "p.csv").write_text("index,prediction\n0,5.0 centimetre\n")
    proc = cli("evaluate.py", "--labels", tmp_path / "labels.csv", "--predictions", tmp_path / "p.csv",
               "--report", tmp_path / "r.html", "--images", tmp_path / "typo")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: image folder not found: {tmp_path / 'typo'}"
    assert not (tmp_path / "r.html").exists()


def test_make_evaluate_wants_labels_and_passes_images():
    import subprocess

    from amlc.paths import ROOT

    # -n: print the commands, run nothing (not even the .venv setup)
    proc = subprocess.run(["make", "-n", "evaluate"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "set LABELS=path/to/labels.csv" in proc.stderr
    proc = subprocess.run(["make", "-n", "evaluate", "LABELS=l.csv", "IMAGES=some/images"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--labels l.csv" in proc.stdout and "--images some/images" in proc.stdout
