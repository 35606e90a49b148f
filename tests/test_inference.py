"""amlc.inference and the two CLIs (inference/run.py, merge_csv.py) with a deterministic test engine.

The engine (tests/infer_fakes.py) reads its answer off each image's first pixel, so every expected
prediction is known; the downloader double copies files from a local folder. The kill test runs the
real CLI in a subprocess and kills it with SIGKILL mid-run.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import infer_fakes
from amlc.config import load_config
from amlc.constants import ENTITIES
from amlc.errors import InputError
from amlc.inference import (
    RAW_COLUMNS,
    check_thresholds,
    merge_to_csv,
    run_shard,
    tune_from_preds,
    tune_thresholds,
)
from amlc.shards import needs_retry, read_shard, shard_bounds, shard_path
from amlc.tables import read_csv

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = ROOT / "tests" / "run_with_fakes.py"
LINK = "https://example.invalid/images/I/{}.png"


def pixel(j: int) -> tuple[int, int, int]:
    """The colour of image j: red = value, green = confidence * 255, blue 255 = nothing found."""
    return (j * 7) % 250 + 1, (j * 37) % 256, 255 if j % 11 == 5 else 0


def make_dataset(root: Path, n_rows: int = 40, with_truth: bool = False):
    """An input CSV over images in root/images (rows share images: 3 rows per 2 images).

    Special rows: 3 has no image link, 4's image is absent (downloadable from root/remote),
    7's image is absent everywhere, 8's image is not an image.
    """
    images, remote = root / "images", root / "remote"
    rows, expected = [], {}
    for pos in range(n_rows):
        index = 1000 + 3 * pos  # not 0..n-1 and not the row position
        j = (pos * 2) // 3
        entity = ENTITIES[pos % len(ENTITIES)]
        name = f"img{j}"
        link = LINK.format(name)
        if pos == 3:
            link = ""
        elif pos == 4:
            name = link = None
            name, link = "remote4", LINK.format("remote4")
            infer_fakes.make_image(remote / f"{name}.png", *pixel(j))
        elif pos == 7:
            link = LINK.format("gone7")
        elif pos == 8:
            link = LINK.format("broken8")
            images.mkdir(parents=True, exist_ok=True)
            (images / "broken8.png").write_bytes(b"<html>404</html>")
        elif not (images / f"{name}.png").exists():
            infer_fakes.make_image(images / f"{name}.png", *pixel(j))
        r, g, b = pixel(j)
        expected[index] = {"entity": entity, "link": link, "value": f"{r}.0 {infer_fakes.unit_for(entity)}",
                           "confidence": g / 255, "found": b != 255}
        row = {"index": index, "image_link": link, "group_id": 500 + pos, "entity_name": entity}
        if with_truth:
            row["entity_value"] = expected[index]["value"] if pos % 3 else ""
        rows.append(row)
    csv = root / "input.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv, images, remote, expected


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    import amlc.engines

    monkeypatch.setitem(amlc.engines.ENGINES, "fake", "infer_fakes")
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(tmp_path / "engine.log"))
    monkeypatch.delenv("FAKE_ENGINE_CRASH_AFTER", raising=False)
    infer_fakes.CALLS.clear()
    return tmp_path / "engine.log"


def config(**inference):
    cfg = load_config()
    cfg["inference"].update({"engine": "fake", "batch_size": 4, **inference})
    return cfg


def expected_row(exp, thresholds):
    """What the runner must write for one row, from the dataset's design."""
    if not exp["link"]:
        return "", "no_image_link"
    if "remote4" in exp["link"] and not exp.get("downloads"):
        return "", "image_missing"
    if "gone7" in exp["link"]:
        return "", "download_failed" if exp.get("downloads") else "image_missing"
    if "broken8" in exp["link"]:
        return "", "image_undecodable"
    if not exp["found"]:
        return "", "nothing_found"
    if exp["confidence"] < thresholds.get(exp["entity"], 0.0):
        return "", "below_threshold"
    return exp["value"], ""


def test_all_shards_then_merge(tmp_path, fake_engine, monkeypatch):
    csv, images, remote, expected = make_dataset(tmp_path)
    monkeypatch.setenv("FAKE_DL_SOURCE", str(remote))
    thresholds = {"item_weight": 0.5, "voltage": 0.3}
    preds = tmp_path / "preds"
    summaries = [run_shard(config(thresholds=thresholds), k, 3, input_csv=csv, images_dir=images,
                           output_dir=preds, downloader=infer_fakes, progress=False, log=lambda m: None)
                 for k in range(3)]
    assert sum(s.rows for s in summaries) == 40 and all(s.done_before == 0 for s in summaries)
    assert [s.first_row for s in summaries] == [0, 14, 27]
    # Only absent images were asked for, per shard, with the manifest beside the shard file.
    asked = sorted(link for call in infer_fakes.CALLS for link in call["links"])
    assert asked == sorted([LINK.format("remote4"), LINK.format("gone7")])
    assert infer_fakes.CALLS[0]["manifest_path"] == preds / "shard-0-of-3.download.csv"
    assert (images / "remote4.png").exists()

    result, frame = merge_to_csv(preds, csv, tmp_path / "raw.csv")
    assert list(frame.columns) == list(RAW_COLUMNS)
    back = read_csv(tmp_path / "raw.csv", required=["index", "prediction"])
    assert back["index"].tolist() == list(expected)  # the input's order
    for exp in expected.values():
        exp["downloads"] = True
    for _, row in back.iterrows():
        want_pred, want_reason = expected_row(expected[row["index"]], thresholds)
        assert (row["prediction"], row["reason"].split(":")[0]) == (want_pred, want_reason), row.to_dict()
        if want_reason == "below_threshold":
            assert row["candidate"] == expected[row["index"]]["value"]
    assert "HTTP 404" in back.set_index("index").loc[1000 + 3 * 7, "reason"]
    r, g, b = pixel(0)
    assert back["raw"].iloc[0] == f'pixel "{r}",\n{g}, {b}'  # quotes, commas, newlines survive

    # The summaries add up to what was written; the side files are there.
    non_empty = int((back["prediction"] != "").sum())
    assert sum(s.non_empty for s in summaries) == non_empty > 10
    assert sum(sum(s.empty_by_reason.values()) for s in summaries) == 40 - non_empty
    saved = yaml.safe_load((preds / "shard-1-of-3.config.yaml").read_text())
    assert saved["inference"]["thresholds"] == thresholds and saved["inference"]["engine"] == "fake"
    assert saved["data"]["test_csv"] == str(csv) and saved["inference"]["num_shards"] == 3
    first = read_shard(shard_path(preds, 0, 3)).records[0]
    assert first["extra"] == {"pixel": list(pixel(0))} and first["seconds"] > 0
    assert json.loads((preds / "shard-2-of-3.summary.json").read_text())["rows"] == 13
    engine_saw = fake_engine.read_text().split()
    assert len(engine_saw) == len(set(engine_saw)) == 40 - 3  # all but no-link, gone, broken

    # Thresholds tuned later are applied at merge time from the stored candidates.
    _, loose = merge_to_csv(preds, csv, tmp_path / "raw2.csv", thresholds={})
    assert "below_threshold" not in set(loose["reason"])
    assert (loose["prediction"] != "").sum() > non_empty


def test_resume_after_a_crash_predicts_each_row_once(tmp_path, fake_engine, monkeypatch):
    csv, images, _, expected = make_dataset(tmp_path, n_rows=30)
    preds = tmp_path / "preds"
    kw = dict(input_csv=csv, images_dir=images, output_dir=preds, downloader=infer_fakes,
              progress=False, log=lambda m: None)
    cfg = config(batch_size=3, download=False)
    monkeypatch.setenv("FAKE_ENGINE_CRASH_AFTER", "3")
    with pytest.raises(RuntimeError, match="crashed"):
        run_shard(cfg, 0, 1, **kw)
    written = read_shard(shard_path(preds, 0, 1)).indices
    assert written == list(expected)[:9]  # three whole batches, nothing of the fourth
    monkeypatch.delenv("FAKE_ENGINE_CRASH_AFTER")
    summary = run_shard(cfg, 0, 1, **kw)
    # rows 4, 7 and 8 of the first batches ended without a usable image: tried again
    assert (summary.done_before, summary.predicted_now, summary.rows) == (6, 24, 30)
    assert sorted(read_shard(shard_path(preds, 0, 1)).indices) == sorted(expected)
    saw = [int(x) for x in fake_engine.read_text().split()]
    assert len(saw) == len(set(saw))  # the engine never saw a row twice

    # A finished shard reruns without loading the engine at all: only its three image-less rows are
    # tried again, and they still have no image.
    import types

    import amlc.engines

    never = types.ModuleType("never_built_engine")

    def refuse(cfg):
        raise AssertionError("the engine was built")

    never.build = refuse
    monkeypatch.setitem(sys.modules, "never_built_engine", never)
    monkeypatch.setitem(amlc.engines.ENGINES, "fake", "never_built_engine")
    again = run_shard(cfg, 0, 1, **kw)
    assert (again.done_before, again.predicted_now) == (27, 3)
    assert again.non_empty == summary.non_empty


def test_rows_without_their_image_are_retried_by_a_rerun(tmp_path, fake_engine, monkeypatch):
    csv, images, remote, expected = make_dataset(tmp_path, n_rows=12)
    preds = tmp_path / "preds"
    kw = dict(input_csv=csv, images_dir=images, output_dir=preds, downloader=infer_fakes,
              progress=False, log=lambda m: None)
    first = run_shard(config(download=False), 0, 1, **kw)
    assert first.empty_by_reason == {"image_missing": 2, "no_image_link": 1, "image_undecodable": 1}
    # the missing images arrive (the right folder, the network back): a rerun predicts those rows,
    # and only those; rows the engine answered or blanked itself, and the link-less one, are done
    (images / "remote4.png").write_bytes((remote / "remote4.png").read_bytes())
    infer_fakes.make_image(images / "broken8.png", 9, 200)
    fake_engine.write_text("")
    again = run_shard(config(download=False), 0, 1, **kw)
    assert (again.done_before, again.predicted_now) == (9, 3)
    assert sorted(int(x) for x in fake_engine.read_text().split()) == [1000 + 3 * 4, 1000 + 3 * 8]
    assert again.empty_by_reason.get("image_missing") == 1  # gone7 is still gone
    contents = read_shard(shard_path(preds, 0, 1))  # raises on a repeated index
    assert sorted(contents.indices) == sorted(expected) and not contents.torn_bytes
    by_index = {r["index"]: r for r in contents.records}
    assert by_index[1000 + 3 * 4]["prediction"] == expected[1000 + 3 * 4]["value"]
    assert by_index[1000 + 3 * 8]["prediction"] == "9.0 " + infer_fakes.unit_for(expected[1000 + 3 * 8]["entity"])
    # the merge reads the rewritten file as any other
    result, frame = merge_to_csv(preds, csv, tmp_path / "raw.csv")
    assert frame["index"].tolist() == list(expected) and result.filled == 0
    assert frame.set_index("index").loc[1000 + 3 * 4, "prediction"] == expected[1000 + 3 * 4]["value"]
    assert not list(preds.glob(".*.tmp"))


def test_a_missing_image_folder_is_an_error_when_not_downloading(tmp_path, fake_engine):
    csv, images, _, _ = make_dataset(tmp_path, n_rows=6)
    with pytest.raises(InputError, match="image folder not found: .*typo"):
        run_shard(config(download=False), 0, 1, input_csv=csv, images_dir=tmp_path / "typo",
                  output_dir=tmp_path / "p", downloader=infer_fakes, progress=False, log=lambda m: None)
    assert not (tmp_path / "p").exists()


def test_refuses_to_mix_inputs_or_engines(tmp_path, fake_engine):
    csv, images, _, _ = make_dataset(tmp_path, n_rows=12)
    preds = tmp_path / "preds"
    kw = dict(input_csv=csv, images_dir=images, output_dir=preds, downloader=infer_fakes,
              progress=False, log=lambda m: None)
    run_shard(config(download=False), 0, 2, **kw)
    other = tmp_path / "other.csv"
    pd.read_csv(csv).iloc[::-1].to_csv(other, index=False)  # same rows, other order: other shards
    with pytest.raises(InputError, match="not in shard 0 of 2"):
        run_shard(config(download=False), 0, 2, **{**kw, "input_csv": other})
    shard = shard_path(preds, 0, 2)
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:-1]) + "\n" + lines[-1].replace('"engine":"fake"', '"engine":"ocr"') + "\n")
    with pytest.raises(InputError, match="written by engine ocr"):
        run_shard(config(download=False), 0, 2, **kw)


def test_missing_images_without_download(tmp_path, fake_engine):
    csv, images, _, expected = make_dataset(tmp_path, n_rows=10)
    s = run_shard(config(download=False), 0, 1, input_csv=csv, images_dir=images,
                  output_dir=tmp_path / "p", downloader=infer_fakes, progress=False, log=lambda m: None)
    assert infer_fakes.CALLS == []
    assert s.empty_by_reason["image_missing"] == 2  # remote4 and gone7, never fetched
    assert s.empty_by_reason["no_image_link"] == 1 and s.empty_by_reason["image_undecodable"] == 1


@pytest.fixture
def image_server(tmp_path):
    """A local HTTP server over tmp_path/served (the downloader's real network path, offline)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_runner_fetches_with_the_project_downloader(tmp_path, fake_engine, image_server):
    from amlc import download
    served, base = image_server
    rows, want = [], {}
    for pos in range(12):
        entity = ENTITIES[pos % len(ENTITIES)]
        r, g, _ = pixel(pos)
        if pos != 5:  # image 5 is not on the server: HTTP 404
            infer_fakes.make_image(served / f"p{pos}.png", r, g, size=64)
        rows.append({"index": pos, "image_link": f"{base}/p{pos}.png", "group_id": 1, "entity_name": entity})
        want[pos] = "" if pos == 5 else f"{r}.0 {infer_fakes.unit_for(entity)}"
    csv = tmp_path / "input.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    images, preds = tmp_path / "images", tmp_path / "preds"
    s = run_shard(config(), 0, 1, input_csv=csv, images_dir=images, output_dir=preds, progress=False,
                  log=lambda m: None)  # downloader=None: the real amlc.download
    assert (s.predicted_now, s.non_empty) == (12, 11)
    for row in rows:
        assert download.local_path(row["image_link"], images).exists() == (row["index"] != 5)
    got = {r["index"]: r for r in read_shard(shard_path(preds, 0, 1)).records}
    assert {i: r["prediction"] for i, r in got.items()} == want
    assert got[5]["reason"].startswith("download_failed")
    manifest = pd.read_csv(preds / "shard-0-of-1.download.csv", keep_default_na=False)
    assert len(manifest) == 12 and (manifest["status"] == "ok").sum() == 11


def test_an_empty_shard_still_writes_its_file(tmp_path, fake_engine):
    csv, images, _, _ = make_dataset(tmp_path, n_rows=3)
    s = run_shard(config(), 4, 6, input_csv=csv, images_dir=images, output_dir=tmp_path / "p",
                  downloader=infer_fakes, progress=False, log=lambda m: None)
    assert s.rows == 0 and "no rows" in s.format()
    assert shard_path(tmp_path / "p", 4, 6).read_bytes() == b""


def test_threshold_config_is_checked():
    assert check_thresholds({"voltage": 1, "width": 0.25}) == {"voltage": 1.0, "width": 0.25}
    with pytest.raises(InputError, match="unknown entity 'colour'"):
        check_thresholds({"colour": 0.5})
    for bad in (-0.1, "high", True, float("nan")):
        with pytest.raises(InputError, match=">= 0"):
            check_thresholds({"voltage": bad})


def f1(truths, preds):
    """The competition's F1, written out independently of the code under test."""
    tp = sum(1 for t, p in zip(truths, preds) if p and p == t)
    fp = sum(1 for t, p in zip(truths, preds) if p and p != t)
    fn = sum(1 for t, p in zip(truths, preds) if not p and t)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_tune_thresholds_finds_the_separating_confidence():
    rng = random.Random(0)
    entities, truths, cands, confs = [], [], [], []
    for i in range(300):  # item_weight: the unsure answers are made up (the truth is empty)
        right = i % 3 != 0
        entities.append("item_weight")
        truths.append("5.0 gram" if right else "")
        cands.append("5.0 gram" if right else "9.0 gram")
        confs.append(round(rng.uniform(0.6, 0.95) if right else rng.uniform(0.05, 0.5), 2))
    for i in range(60):  # height: unsure answers are wrong but the truth is there: a blank (FN) costs
        right = i % 2 == 0  # what the wrong answer (FP) costs, so abstaining gains nothing -> 0
        entities.append("height")
        truths.append("2.0 metre")
        cands.append("2.0 metre" if right else "7.0 metre")
        confs.append(rng.uniform(0.6, 0.95) if right else rng.uniform(0.05, 0.5))
    for i in range(40):  # voltage: always answered, never right, truth mostly empty -> blank it all
        entities.append("voltage")
        truths.append("" if i % 4 else "12.0 volt")
        cands.append("230.0 volt")
        confs.append(rng.uniform(0.2, 1.0))
    for i in range(30):  # width: no confidence at all -> cannot abstain, stays at 0
        entities.append("width")
        truths.append("3.0 inch")
        cands.append("3.0 inch" if i % 2 else "4.0 inch")
        confs.append(None)
    got = tune_thresholds(entities, truths, cands, confs)
    right_confs = [c for e, t, p, c in zip(entities, truths, cands, confs)
                   if e == "item_weight" and p == t]
    assert got["item_weight"] == min(right_confs)
    # every made-up voltage is blanked (the rest tie: blank or wrong cost the same when truth exists)
    assert got["voltage"] > max(c for e, t, c in zip(entities, truths, confs) if e == "voltage" and not t)
    assert got["width"] == 0.0 and got["height"] == 0.0
    def apply(th):
        return ["" if c is not None and c < th[e] else p for e, p, c in zip(entities, cands, confs)]

    assert f1(truths, apply(got)) > f1(truths, cands)


row_strategy = st.tuples(
    st.sampled_from(["width", "voltage", "item_weight"]),
    st.sampled_from(["", "1.0 inch", "2.0 inch"]),  # truth
    st.sampled_from(["", "1.0 inch", "2.0 inch"]),  # candidate
    st.one_of(st.none(), st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=18))
def test_tuned_thresholds_reach_the_best_f1_of_any_combination(rows):
    entities, truths, cands, confs = map(list, zip(*rows))
    got = tune_thresholds(entities, truths, cands, confs)

    def f1_with(th):
        return f1(truths, ["" if c is not None and c < th.get(e, 0) else p
                           for e, p, c in zip(entities, cands, confs)])

    names = sorted(set(entities))
    options = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.5]
    best = max(f1_with(dict(zip(names, combo))) for combo in itertools.product(options, repeat=len(names)))
    assert f1_with(got) == pytest.approx(best, abs=1e-12)


def test_tune_from_a_validation_run(tmp_path, fake_engine):
    csv, images, _, expected = make_dataset(tmp_path, n_rows=60, with_truth=True)
    run_shard(config(download=False), 0, 1, input_csv=csv, images_dir=images, output_dir=tmp_path / "p",
              downloader=infer_fakes, progress=False, log=lambda m: None)
    thresholds, report = tune_from_preds(csv, tmp_path / "p")
    assert set(thresholds) == set(ENTITIES)
    total = report[-1]
    assert total["entity"] == "all" and total["rows"] == 60
    assert total["f1_after"] > total["f1_before"]  # a third of the truths are empty: blanks pay
    truth = pd.read_csv(csv, keep_default_na=False)
    assert total["f1_before"] == f1(truth["entity_value"].tolist(),
                                    [expected_row(expected[i], {})[0] for i in truth["index"]])


# ---- the CLIs, as real processes ------------------------------------------------------------------

def cli_env(tmp_path, **extra):
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}",
           "FAKE_ENGINE_LOG": str(tmp_path / "engine.log"), **extra}
    for key in list(env):
        if key.startswith(("SLURM_", "AMLC_SHARD", "AMLC_NUM_SHARDS", "FAKE_ENGINE_CRASH")):
            del env[key]
    env.update(extra)
    return env


def run_cli(args, env, script=WRAPPER, **kw):
    return subprocess.run([sys.executable, str(script), *map(str, args)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **kw)


def test_cli_shards_from_a_slurm_array_then_merge(tmp_path):
    csv, images, remote, expected = make_dataset(tmp_path, n_rows=25, with_truth=True)
    common = ["--engine", "fake", "--input", csv, "--images", images, "--output_dir", tmp_path / "preds",
              "--no-progress", "inference.batch_size=4"]
    for task in (1, 2, 3):  # #SBATCH --array=1-3
        env = cli_env(tmp_path, FAKE_DL_SOURCE=str(remote), SLURM_ARRAY_TASK_ID=str(task),
                      SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_COUNT="3")
        proc = run_cli(common, env)
        assert proc.returncode == 0, proc.stderr
        assert f"shard {task - 1} of 3 (0-based)" in proc.stdout and "images/s" in proc.stdout
    raw = tmp_path / "raw.csv"
    proc = run_cli(["--input_dir", tmp_path / "preds", "--test_filename", csv, "--output_filename", raw],
                   cli_env(tmp_path), script=ROOT / "merge_csv.py")
    assert proc.returncode == 0, proc.stderr
    assert "merged 3 shard file(s) of 3" in proc.stdout and "25 rows" in proc.stdout
    out = read_csv(raw, required=["index", "prediction"])
    assert out["index"].tolist() == list(expected)
    assert out.loc[out["index"] == 1000 + 3 * 4, "prediction"].item() == expected[1012]["value"]

    # RAW.csv is what the last mile takes: postprocessing, then the organisers' sanity rules.
    sub = tmp_path / "submission.csv"
    proc = run_cli(["--test_filename", csv, "--input", raw, "--output_filename", sub], cli_env(tmp_path),
                   script=ROOT / "postprocessing.py")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["--test_filename", csv, "--output_filename", sub], cli_env(tmp_path),
                   script=ROOT / "src" / "sanity.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = read_csv(sub, required=["index", "prediction"])
    assert final["index"].tolist() == list(expected)
    assert (final["prediction"] != "").sum() == (out["prediction"] != "").sum()

    # Thresholds chosen after the run, applied at merge time.
    proc = run_cli(["--input_dir", tmp_path / "preds", "--test_filename", csv, "--output_filename", raw,
                    "--rethreshold", "inference.thresholds={item_weight: 2}"],
                   cli_env(tmp_path), script=ROOT / "merge_csv.py")
    assert proc.returncode == 0, proc.stderr
    # it says what it applies and what the run had (the run's own thresholds are not kept)
    assert "rethreshold: inference.thresholds {'item_weight': 2}, printed_threshold 0.2" in proc.stdout
    assert "the run's: ({}, 0.2)" in proc.stdout, proc.stdout
    again = read_csv(raw, required=["index", "prediction"]).set_index("index")
    weights = [i for i, e in expected.items() if e["entity"] == "item_weight"]
    assert (again.loc[weights, "prediction"] == "").all()
    assert set(again.loc[weights, "reason"]) <= {"below_threshold", "nothing_found", "no_image_link",
                                                  "image_missing", "image_undecodable", "download_failed: HTTP 404"}
    assert (again.loc[weights, "reason"] == "below_threshold").sum() >= 2
    others = [i for i in expected if i not in weights]
    assert again.loc[others, "prediction"].tolist() == out.set_index("index").loc[others, "prediction"].tolist()

    # ... and never silently ignored without --rethreshold: an override, or a config whose
    # thresholds are not the run's, is refused with the flag to add
    before = raw.read_bytes()
    thresholds_yaml = tmp_path / "th.yaml"
    thresholds_yaml.write_text("inference:\n  thresholds: {item_weight: 0.6}\n")
    printed_yaml = tmp_path / "printed.yaml"
    printed_yaml.write_text("inference:\n  printed_threshold: 0.6\n")
    for extra in (["inference.thresholds.item_weight=0.6"], ["--config", thresholds_yaml],
                  ["inference.printed_threshold=0"], ["--config", printed_yaml]):
        proc = run_cli(["--input_dir", tmp_path / "preds", "--test_filename", csv, "--output_filename", raw,
                        *extra], cli_env(tmp_path), script=ROOT / "merge_csv.py")
        assert proc.returncode == 2 and "--rethreshold" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and raw.read_bytes() == before
    # the thresholds the shards were run with (none here) are no change: accepted
    (tmp_path / "same.yaml").write_text("inference:\n  thresholds: {}\n")
    proc = run_cli(["--input_dir", tmp_path / "preds", "--test_filename", csv, "--output_filename", raw,
                    "--config", tmp_path / "same.yaml"], cli_env(tmp_path), script=ROOT / "merge_csv.py")
    assert proc.returncode == 0, proc.stderr


def test_cli_tune_thresholds(tmp_path):
    csv, images, remote, _ = make_dataset(tmp_path, n_rows=45, with_truth=True)
    env = cli_env(tmp_path, FAKE_DL_SOURCE=str(remote))
    proc = run_cli(["--engine", "fake", "--input", csv, "--images", images, "--output_dir",
                    tmp_path / "val", "--no-progress"], env)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "thresholds.yaml"
    proc = run_cli(["--input", csv, "--preds_dir", tmp_path / "val", "--output", out], env,
                   script=ROOT / "inference" / "tune_thresholds.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2].startswith("all")
    tuned = load_config(out)["inference"]["thresholds"]
    assert set(tuned) == set(ENTITIES) and all(t >= 0 for t in tuned.values())


def test_cli_errors_are_one_line(tmp_path):
    csv, images, _, _ = make_dataset(tmp_path, n_rows=5)
    proc = run_cli(["--engine", "fake", "--input", csv, "--shard", "2", "--num-shards", "2"], cli_env(tmp_path))
    assert proc.returncode == 2 and "numbered from 0" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(["--engine", "fake", "--input", tmp_path / "none.csv"], cli_env(tmp_path))
    assert proc.returncode == 2 and "input CSV not found" in proc.stderr
    proc = run_cli(["--engine", "fake", "--input", csv, "inference.thresholds={colour: 1}"], cli_env(tmp_path))
    assert proc.returncode == 2 and "unknown entity 'colour'" in proc.stderr
    (tmp_path / "preds").mkdir()
    proc = run_cli(["--input_dir", tmp_path / "preds", "--test_filename", csv, "--output_filename",
                    tmp_path / "raw.csv"], cli_env(tmp_path), script=ROOT / "merge_csv.py")
    assert proc.returncode == 2 and "no shard files" in proc.stderr
    assert not (tmp_path / "raw.csv").exists()


@pytest.mark.slow
def test_kill_9_and_resume_leave_no_duplicate_gap_or_torn_line(tmp_path):
    n_rows = 240
    csv, images, remote, expected = make_dataset(tmp_path, n_rows=n_rows)
    preds = tmp_path / "preds"
    args = ["--engine", "fake", "--input", csv, "--images", images, "--output_dir", preds,
            "--num-shards", "2", "--no-progress", "inference.batch_size=3"]
    env = cli_env(tmp_path, FAKE_DL_SOURCE=str(remote), FAKE_ENGINE_DELAY="0.05")
    shard0 = shard_path(preds, 0, 2)
    start, stop = shard_bounds(n_rows, 0, 2)
    mine = list(expected)[start:stop]

    # Shard 1 runs beside shard 0, as on another GPU, undisturbed.
    other = subprocess.Popen([sys.executable, str(WRAPPER), *map(str, args), "--shard", "1"], env=env,
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    for kill_at in (15, 45, 80):  # rows in the file when the kill comes
        proc = subprocess.Popen([sys.executable, str(WRAPPER), *map(str, args), "--shard", "0"], env=env,
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if shard0.exists() and shard0.read_bytes().count(b"\n") >= kill_at:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        contents = read_shard(shard0)  # raises on a duplicate or a damaged line
        assert len(contents.records) >= max(seen, kill_at)
        # the first rows of the shard, none missing (rows retried after a failed image come later)
        assert sorted(contents.indices, key=mine.index) == mine[:len(contents.records)]
        seen = len(contents.records)
        retried = sum(needs_retry(r) for r in contents.records)
    assert seen < len(mine) and retried == 2  # gone7 (never downloadable) and broken8, every run

    final = run_cli([*args, "--shard", "0"], env)
    assert final.returncode == 0, final.stderr
    assert f"done before {seen - retried:,}" in final.stdout
    data = shard0.read_bytes()
    assert data.endswith(b"\n")
    assert sorted((json.loads(line)["index"] for line in data.splitlines()), key=mine.index) == mine
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err

    raw = tmp_path / "raw.csv"
    proc = run_cli(["--input_dir", preds, "--test_filename", csv, "--output_filename", raw],
                   cli_env(tmp_path), script=ROOT / "merge_csv.py")
    assert proc.returncode == 0, proc.stderr
    merged = read_csv(raw, required=["index", "prediction"])
    assert merged["index"].tolist() == list(expected)
    for _, row in merged.iterrows():
        exp = {**expected[row["index"]], "downloads": True}
        assert row["prediction"] == expected_row(exp, {})[0]


def test_rows_an_engine_finds_unprinted_are_blank_and_a_merge_can_decide_again(tmp_path):
    """Result.printed under inference.printed_threshold blanks an answer (reason not_printed), the
    shard keeps the answer and P(printed), raw.csv has the column, and merge --rethreshold with
    another printed threshold decides again from them."""
    from amlc.engines import Result
    from amlc.inference import _record, blank_reason
    from amlc.shards import ShardWriter

    assert blank_reason("5.0 volt", 0.9, 0.2, "voltage", {}, 0.3) == "not_printed"
    assert blank_reason("5.0 volt", 0.9, 0.2, "voltage", {}, 0.0) == ""
    assert blank_reason("5.0 volt", 0.9, None, "voltage", {}, 0.9) == ""  # an engine that cannot tell
    assert blank_reason("5.0 volt", 0.2, 0.9, "voltage", {"voltage": 0.5}, 0.3) == "below_threshold"
    assert blank_reason("", 0.0, 0.0, "voltage", {}, 0.3) == ""  # nothing to blank
    results = [Result(1, "12V", "12.0 volt", 0.9, printed=0.9), Result(2, "5V?", "5.0 volt", 0.8, printed=0.1),
               Result(3, "", "", 0.0, "no mention", printed=0.05)]
    records = [_record(r.index, "voltage", r, "", "ocr", 0.1, {}, 0.3) for r in results]
    assert [(x["prediction"], x["reason"], x["printed"]) for x in records] == [
        ("12.0 volt", "", 0.9), ("", "not_printed", 0.1), ("", "no mention", 0.05)]
    preds = tmp_path / "preds"
    preds.mkdir()
    with ShardWriter(preds / "shard-0-of-1.jsonl") as w:
        w.append(records)
    test = tmp_path / "test.csv"
    test.write_text("index,image_link,group_id,entity_name\n1,a,1,voltage\n2,b,1,voltage\n3,c,1,voltage\n")
    _, kept = merge_to_csv(preds, test, tmp_path / "raw.csv")
    assert list(kept.columns) == list(RAW_COLUMNS) and "printed" in RAW_COLUMNS
    assert kept["prediction"].tolist() == ["12.0 volt", "", ""] and kept["printed"].tolist() == [0.9, 0.1, 0.05]
    _, again = merge_to_csv(preds, test, tmp_path / "raw2.csv", thresholds={}, printed_threshold=0.0)
    assert again["prediction"].tolist() == ["12.0 volt", "5.0 volt", ""]
    assert again["reason"].tolist() == ["", "", "no mention"]
