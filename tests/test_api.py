"""The api engine against a real OpenAI-compatible server: ms-swift's `swift deploy` (through
`python -m amlc.serve`) serving a tiny Qwen2-VL rewired to answer "12 V" (tests/api_server.py), on
127.0.0.1 behind an API key, with a fault-injecting proxy in front of it for the failure cases.

Every voltage row must come back "12.0 volt" and every other row unparseable, all with confidence 0.8
from the server's token log-probabilities; the shard runner, merge, postprocessing and the sanity
checker run as the user runs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import api_server
from amlc import download
from amlc.config import load_config
from amlc.errors import InputError
from amlc.shards import read_shard, shard_path
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
ENV = {"AMLC_TEST_KEY": api_server.KEY, "HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1"}
ENTITIES = ["voltage", "item_weight", "wattage", "voltage", "width", "item_volume"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = api_server.start_server(tmp_path_factory.mktemp("api-server"))
    yield srv
    srv.stop()


@pytest.fixture
def proxy(server):
    p = api_server.FaultProxy(server.url)
    yield p
    p.close()


def dataset(root: Path, n: int, missing: tuple[int, ...] = ()):
    """An input CSV (test.csv layout) over drawn images of assorted sizes; rows in `missing` have no
    image on disk. Returns (csv, images dir, {index: entity})."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows, entities = [], {}
    for i in range(n):
        link = f"https://example.invalid/images/I/p{i}.jpg"
        if i not in missing:
            size = (900, 700) if i % 4 == 0 else (160 + 40 * i, 120 + 10 * i)  # some over max_pixels
            Image.new("RGB", size, (20 * i % 255, 120, 200)).save(download.local_path(link, images))
        index = 500 + 7 * i
        entities[index] = ENTITIES[i % len(ENTITIES)]
        rows.append({"index": index, "image_link": link, "group_id": 1000 + i, "entity_name": entities[index]})
    csv = root / "input.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv, images, entities


def api_args(url: str, **more) -> list[str]:
    args = {"api.base_url": url, "api.model": "tiny", "api.api_key_env": "AMLC_TEST_KEY",
            "api.max_pixels": api_server.MAX_PIXELS, **more}
    return [f"{k}={v}" for k, v in args.items()]


def check_rows(records, entities, missing=()):
    for r in records:
        entity = entities[r["index"]]
        if r["index"] in missing:
            assert (r["prediction"], r["reason"]) == ("", "image_missing"), r
            continue
        assert r["raw"] == api_server.ANSWER and r["engine"] == "api"
        assert r["confidence"] == pytest.approx(api_server.CONFIDENCE, abs=2e-3)  # from the logprobs
        if entity == "voltage":
            assert (r["prediction"], r["reason"]) == ("12.0 volt", ""), r
        else:
            assert (r["prediction"], r["candidate"], r["reason"]) == ("", "", "unparseable"), r


def test_shards_share_one_endpoint_then_merge_postprocess_sanity(tmp_path, server):
    """Two shards at once against one server, through the real CLIs to a submission the checker accepts."""
    csv, images, entities = dataset(tmp_path, 12, missing=(5,))
    preds = tmp_path / "preds"
    cmd = [sys.executable, "inference/run.py", "--engine", "api", "--input", str(csv), "--images", str(images),
           "--output_dir", str(preds), "--num-shards", "2", "--no-download", "--no-progress",
           "inference.batch_size=4", *api_args(server.url, **{"api.price_input_per_million": 2.5,
                                                               "api.price_output_per_million": 10.0})]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **ENV}
    procs = [subprocess.Popen([*cmd, "--shard", str(k)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    records = [r for k in range(2) for r in read_shard(shard_path(preds, k, 2)).records]
    assert sorted(r["index"] for r in records) == sorted(entities)
    check_rows(records, entities, missing=(500 + 7 * 5,))

    # The summary: requests, tokens, money spent and the projection over the whole input.
    reports = [json.loads((preds / f"shard-{k}-of-2.summary.json").read_text())["engine_report"] for k in range(2)]
    for rep, (out, _) in zip(reports, outs):
        assert rep["requests"] == rep["answered"] > 0 and rep["retried"] == {} and rep["failed_rows"] == {}
        assert rep["tokens_out"] == 5 * rep["answered"]  # "12 V" and <|im_end|>
        spent = rep["tokens_in"] * 2.5e-6 + rep["tokens_out"] * 10e-6
        assert rep["spent_usd"] == pytest.approx(spent)
        assert rep["projected_usd"] == pytest.approx(spent / rep["answered"] * 12)
        assert f"api: {rep['requests']} requests" in out and f"spent ${spent:,.4f}" in out
        assert "all 12 rows of the input would cost" in out
    assert sum(r["answered"] for r in reports) == 11

    # The key is in none of the files written nor in the output.
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".jpg":
            assert api_server.KEY not in path.read_text(errors="replace"), path
    assert all(api_server.KEY not in out + err for out, err in outs)
    saved = (preds / "shard-0-of-2.config.yaml").read_text()
    assert "api_key_env: AMLC_TEST_KEY" in saved

    raw, sub = tmp_path / "raw.csv", tmp_path / "submission.csv"
    r = run_cli("merge_csv.py", "--input_dir", preds, "--test_filename", csv, "--output_filename", raw)
    assert r.returncode == 0, r.stderr
    r = run_cli("postprocessing.py", "--test_filename", csv, "--input", raw, "--output_filename", sub)
    assert r.returncode == 0, r.stderr
    r = run_cli("src/sanity.py", "--test_filename", csv, "--output_filename", sub)
    assert r.returncode == 0, r.stdout + r.stderr
    got = pd.read_csv(sub, keep_default_na=False).set_index("index")["prediction"].to_dict()
    assert got == {i: "12.0 volt" if e == "voltage" and i != 535 else "" for i, e in entities.items()}


@pytest.mark.slow
def test_resume_after_kill_asks_each_row_about_once(tmp_path, proxy):
    csv, images, entities = dataset(tmp_path, 16)
    preds = tmp_path / "preds"
    cmd = [sys.executable, "inference/run.py", "--engine", "api", "--input", str(csv), "--images", str(images),
           "--output_dir", str(preds), "--no-download", "--no-progress", "inference.batch_size=2",
           *api_args(proxy.url, **{"api.max_in_flight": 1})]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **ENV}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shard = shard_path(preds, 0, 1)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (shard.exists() and shard.read_bytes().count(b"\n") >= 2):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(read_shard(shard).records)
    assert 2 <= done_before < 16
    r = run_cli(*cmd[1:], env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    records = read_shard(shard).records
    assert sorted(r["index"] for r in records) == sorted(entities)  # each row once
    check_rows(records, entities)
    # Rows written before the kill are not asked again; the batch in flight at most once more.
    asked = [d for _, d, what in proxy.posts() if what == "forwarded"]
    assert len(asked) <= 16 + 2
    assert f"done before {done_before}" in r.stdout


def test_faults_are_retried_and_counted(tmp_path, proxy, monkeypatch):
    """429 with Retry-After, 500, a dropped connection, a reply slower than the timeout: all retried."""
    from amlc.inference import run_shard

    csv, images, entities = dataset(tmp_path, 8)
    proxy.faults.extend(["429", "500", "drop", "slow"])
    monkeypatch.setenv("AMLC_TEST_KEY", api_server.KEY)
    cfg = load_config(None, api_args(proxy.url, **{"api.timeout": 2.0, "api.backoff": 0.05,
                                                   "api.max_in_flight": 4, "inference.download": False}))
    s = run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=tmp_path / "preds", engine="api",
                  progress=False, log=lambda m: None)
    check_rows(read_shard(shard_path(tmp_path / "preds", 0, 1)).records, entities)
    rep = s.engine_report
    assert rep["retried"] == {"http_429": 1, "http_500": 1, "connection": 1, "timeout": 1}
    assert rep["failed_rows"] == {} and rep["requests"] == 8 + 4
    posts = proxy.posts()
    when_429, digest = next((t, d) for t, d, what in posts if what == "429")
    again = min(t for t, d, what in posts if d == digest and t > when_429)
    assert again - when_429 >= 1.0  # Retry-After: 1 honoured (the backoff alone is ~0.05 s)
    assert "retried 4 (" in s.format()


def test_a_4xx_stops_the_run_at_once_without_the_key(tmp_path, proxy):
    csv, images, _ = dataset(tmp_path, 8)
    proxy.always = "401"  # and its message echoes the Authorization header, as some APIs do
    r = run_cli("inference/run.py", "--engine", "api", "--input", csv, "--images", images, "--output_dir",
                tmp_path / "preds", "--no-download", "--no-progress",
                *api_args(proxy.url, **{"api.max_in_flight": 4}), env=ENV)
    assert r.returncode == 2
    assert r.stderr.startswith("error: the API at ") and "HTTP 401" in r.stderr and "$AMLC_TEST_KEY" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert api_server.KEY not in r.stderr + r.stdout
    assert len(proxy.posts()) <= 4  # the requests already in flight, none retried, no more sent
    assert read_shard(shard_path(tmp_path / "preds", 0, 1)).records == []


def test_the_real_server_refuses_a_wrong_key(tmp_path, server, monkeypatch):
    from amlc.inference import run_shard

    csv, images, _ = dataset(tmp_path, 2)
    monkeypatch.setenv("AMLC_TEST_KEY", "sk-wrong-key-123")
    cfg = load_config(None, api_args(server.url, **{"inference.download": False}))
    with pytest.raises(InputError, match=r"HTTP 400: API key error") as err:
        run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=tmp_path / "p", engine="api",
                  progress=False, log=lambda m: None)
    assert "sk-wrong-key-123" not in str(err.value)


def test_a_server_without_logprobs_gives_no_confidence_and_says_why(tmp_path, proxy, monkeypatch):
    from amlc.inference import run_shard

    csv, images, entities = dataset(tmp_path, 4)
    proxy.always = "no-logprobs"
    monkeypatch.setenv("AMLC_TEST_KEY", api_server.KEY)
    cfg = load_config(None, api_args(proxy.url, **{"inference.download": False, "api.cache": False}))
    s = run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=tmp_path / "p", engine="api",
                  progress=False, log=lambda m: None)
    records = read_shard(shard_path(tmp_path / "p", 0, 1)).records
    assert [r["prediction"] for r in records] == ["12.0 volt" if entities[r["index"]] == "voltage" else ""
                                                  for r in records]
    assert all(r["confidence"] is None and "refused logprobs" in r["extra"]["no_confidence"] for r in records)
    assert "no confidences: the server refused logprobs" in s.engine_report["text"]
    whats = [what for _, _, what in proxy.posts()]
    assert 1 <= whats.count("no-logprobs") <= 4  # once for each request in flight, then never again
    assert whats.count("forwarded") == 4


def test_a_failing_server_stops_the_run_after_consecutive_failures(tmp_path, proxy, monkeypatch):
    from amlc.inference import run_shard

    csv, images, _ = dataset(tmp_path, 8)
    proxy.always = "500"
    monkeypatch.setenv("AMLC_TEST_KEY", api_server.KEY)
    cfg = load_config(None, api_args(proxy.url, **{"inference.download": False, "inference.batch_size": 1,
                                                   "api.retries": 1, "api.backoff": 0.01,
                                                   "api.max_consecutive_failures": 3}))
    with pytest.raises(InputError, match=r"failed 3 rows in a row after 1 retries each \(last: HTTP 500"):
        run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=tmp_path / "p", engine="api",
                  progress=False, log=lambda m: None)
    assert len(proxy.posts()) == 3 * 2  # 3 rows, 2 attempts each, then nothing more
    written = read_shard(shard_path(tmp_path / "p", 0, 1)).records
    assert [r["reason"].split(":")[0] for r in written] == ["error", "error"]  # the third stopped the run
    assert written[0]["reason"].startswith("error: api http_500: HTTP 500: internal error after 2 attempts")


def test_resized_here_or_by_the_server_the_model_sees_the_same_size(tmp_path, server, monkeypatch):
    """api.send_original: the server (swift deploy at the training max_pixels) resizes as the client would."""
    from amlc.inference import run_shard

    csv, images, entities = dataset(tmp_path, 6)
    monkeypatch.setenv("AMLC_TEST_KEY", api_server.KEY)
    reports = {}
    for original in (False, True):
        cfg = load_config(None, api_args(server.url, **{"inference.download": False,
                                                        "api.send_original": original}))
        out = tmp_path / f"preds-{original}"
        reports[original] = run_shard(cfg, 0, 1, input_csv=csv, images_dir=images, output_dir=out,
                                      engine="api", progress=False, log=lambda m: None).engine_report
        check_rows(read_shard(shard_path(out, 0, 1)).records, entities)
    assert reports[True]["answered"] == reports[False]["answered"] == 6
    assert reports[True]["tokens_in"] == reports[False]["tokens_in"]  # the same image tokens per row


# ---- teacher labels ----

@pytest.mark.slow
def test_teacher_labels_then_curation(tmp_path, server):
    """python -m amlc.teacher over a sample's training rows, then the dataset stage's teacher rules."""
    from amlc import swift_data
    from amlc.tables import read_csv

    images = tmp_path / "images"
    images.mkdir()
    labels = [("voltage", "12 V", "train"), ("voltage", "24 V", "train"), ("item_weight", "500 g", "train"),
              ("voltage", "12.0 volt", "train"), ("voltage", "230 V", "val"), ("wattage", "65 W", "train")]
    rows = []
    for i, (entity, value, split) in enumerate(labels):
        link = f"https://example.invalid/t{i}.jpg"
        Image.new("RGB", (200, 150 + i), (i * 40, 80, 90)).save(download.local_path(link, images))
        rows.append({"index": 10 + i, "image_link": link, "group_id": 1, "entity_name": entity,
                     "entity_value": value, "split": split})
    sample = tmp_path / "sample.csv"
    pd.DataFrame(rows).to_csv(sample, index=False)
    out = tmp_path / "teacher.csv"
    r = run_cli("-m", "amlc.teacher", "--sample", sample, "--output", out, "--images", images, "--no-download",
                "--no-progress", *api_args(server.url), env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    t = read_csv(out, required=["index", "teacher_answer", "agree"])
    assert t["index"].tolist() == [10, 11, 12, 13, 15]  # the training rows only
    assert t["teacher_answer"].fillna("").tolist() == ["12.0 volt", "12.0 volt", "", "12.0 volt", ""]
    assert t["agree"].tolist() == [True, False, False, True, False]
    assert t["teacher_confidence"].tolist() == pytest.approx([0.8] * 5, abs=2e-3)
    assert "agrees with the catalogue on 2, answers otherwise on 1" in r.stdout
    assert "api: 5 requests" in r.stdout

    sample_df = read_csv(sample, required=["index"])
    find = {row["image_link"]: download.local_path(row["image_link"], images) for row in rows}.get
    report = swift_data.build(sample_df, find, tmp_path / "ds", teacher=t, teacher_keep_agreeing=True,
                              progress=False)
    assert report.teacher == {"labelled": 5, "agree": 2, "teacher_disagrees": 3, "teacher_unprinted": 0}
    table = read_csv(tmp_path / "ds" / "dataset.csv", required=["index"])
    assert table.set_index("index")["reason"].fillna("").to_dict() == {
        10: "", 11: "teacher_disagrees", 12: "teacher_disagrees", 13: "", 14: "", 15: "teacher_disagrees"}
    assert "3 dropped as contradicted" in report.line()
