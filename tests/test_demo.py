"""`make demo`'s job end to end (small): every stage runs, the submission is valid, one F1 everywhere."""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.slow
def test_demo_runs_every_stage_and_agrees_with_itself(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli("-m", "amlc.demo", "--n", "24", "--out", out, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("generate", "sample", "download", "tune", "infer", "merge", "post", "sanity", "evaluate"):
        assert f"] {stage}:" in proc.stdout
    for path in ("submission.csv", "raw.csv", "metrics.json", "report.html", "thresholds.yaml",
                 "preds/shard-0-of-2.jsonl", "preds/shard-1-of-2.jsonl", "images/manifest.csv"):
        assert (out / path).exists(), path

    # the images really went through the downloader, from the local server
    manifest = (out / "images" / "manifest.csv").read_text().splitlines()
    assert manifest[1].startswith("http://127.0.0.1:") and all(",ok," in line for line in manifest[1:])

    # the submission passes the organisers' rules
    check = cli("src/sanity.py", "--test_filename", out / "data" / "test.csv", "--output_filename",
                out / "submission.csv")
    assert check.returncode == 0, check.stdout

    # the F1 printed is the F1 of metrics.json and of the report
    metrics = json.loads((out / "metrics.json").read_text())
    printed = re.findall(r"^demo finished in \d+ s\. F1 (\d\.\d{4})$", proc.stdout, re.M)
    assert printed == [f"{metrics['f1']:.4f}"]
    html = (out / "report.html").read_text()
    shown = re.search(r'data-metric="f1" data-entity="ALL">([0-9.]+)<', html).group(1)
    assert shown == f"{metrics['f1']:.4f}"
    assert 0.0 < metrics["f1"] <= 1.0


def test_demo_rejects_bad_arguments(cli):
    proc = cli("-m", "amlc.demo", "--n", "3")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path, cli):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    proc = cli("-m", "amlc.demo", "--n", "8", "--out", mine)
    assert proc.returncode == 2 and "did not write" in proc.stderr and "Traceback" not in proc.stderr
    assert (mine / "chapter1.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    proc = cli("-m", "amlc.demo", "--n", "8", "--out", tmp_path / "file")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --out is a file")
