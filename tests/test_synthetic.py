"""The synthetic product-image generator: determinism, the competition's CSV layouts, valid truths,
decodable images, the CLI, and (slow) that an OCR engine reads the answers off the images."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from amlc.constants import ENTITIES, ENTITY_UNIT_MAP
from amlc.metric import is_match
from amlc.synthetic import KINDS, generate, render
from amlc.tables import read_csv

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "amlc.synthetic", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "set"
    generate(out, 48, seed=7)
    return out


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 10, seed=3)
    generate(b, 10, seed=3, workers=2)  # worker processes must not change a byte
    generate(c, 10, seed=4)
    names = _tree(a)
    assert names == _tree(b) and len(names) == 10 + 4
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors
    assert (a / "labels.csv").read_bytes() != (c / "labels.csv").read_bytes()
    imgs_a = sorted((a / "images").iterdir())
    imgs_c = sorted((c / "images").iterdir())
    assert all(x.read_bytes() != y.read_bytes() for x, y in zip(imgs_a, imgs_c))


def test_csv_layouts_match_the_competition(data):
    train = read_csv(data / "train.csv", required=["image_link", "group_id", "entity_name", "entity_value"])
    test = read_csv(data / "test.csv", required=["index", "image_link", "group_id", "entity_name"])
    labels = read_csv(data / "labels.csv", required=["index", "image_link", "group_id", "entity_name",
                                                      "entity_value"])
    assert list(train.columns) == ["image_link", "group_id", "entity_name", "entity_value"]
    assert list(test.columns) == ["index", "image_link", "group_id", "entity_name"]
    assert list(labels.columns) == ["index", "image_link", "group_id", "entity_name", "entity_value"]
    assert test["index"].tolist() == list(range(len(test)))
    pd.testing.assert_frame_equal(labels.drop(columns="entity_value"), test)
    assert (train["entity_value"] != "").all(), "like the organisers' train.csv, every train row has a value"
    # train and test never share an image
    assert not set(train["image_link"]) & set(test["image_link"])
    # several rows share one image (a drawing answers width, height and depth)
    assert test["image_link"].duplicated().any()
    # links end with the file's name and the file is there
    for link in pd.concat([train["image_link"], test["image_link"]]).unique():
        assert link.startswith("https://") and (data / "images" / link.rsplit("/", 1)[1]).is_file()


def test_all_eight_entities_in_train_and_test_and_some_empty_truths(data):
    train = read_csv(data / "train.csv")
    labels = read_csv(data / "labels.csv")
    assert set(train["entity_name"]) == set(ENTITIES)
    assert set(labels["entity_name"]) == set(ENTITIES)
    empty = (labels["entity_value"] == "").mean()
    assert 0.05 <= empty <= 0.3, empty
    meta = pd.read_csv(data / "meta.csv", dtype=str, keep_default_na=False)
    assert set(meta["kind"]) == set(KINDS)


def test_truths_are_valid_competition_values(data):
    meta = pd.read_csv(data / "meta.csv", dtype=str, keep_default_na=False)
    filled = meta[meta["entity_value"] != ""]
    assert len(filled) > 40
    for row in filled.itertuples():
        number, unit = row.entity_value.split(" ", 1)
        assert unit in ENTITY_UNIT_MAP[row.entity_name], row
        assert number == repr(float(number)), row  # "500.0", never "500" or "5e2"
        assert float(number) > 0
        # the printed answer carries the same number
        printed = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", row.answer_text)]
        assert float(number) in printed, row


def test_truths_survive_the_units_normaliser(data):
    from amlc import units

    meta = pd.read_csv(data / "meta.csv", dtype=str, keep_default_na=False)
    for row in meta[meta["entity_value"] != ""].itertuples():
        assert units.normalize(row.entity_value, row.entity_name) == row.entity_value, row
        # the text printed on the image reads back to the truth's number and unit ("34 inch" stays
        # "34 inch" in normalize, which the sanity pattern accepts, so compare as number + unit)
        read = units.normalize(row.answer_text, row.entity_name)
        assert read and is_match(read, row.entity_value, acceptable=True), (row, read)


def test_images_decode_and_are_big_enough(data):
    files = sorted((data / "images").iterdir())
    assert len(files) == 48
    for f in files:
        with Image.open(f) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert min(im.size) >= 640
            im.load()


def test_render_is_pure_and_every_kind_draws():
    for kind in KINDS:
        img1, k1, ans1, q1 = render(11, 5, kind)
        img2, k2, ans2, q2 = render(11, 5, kind)
        assert k1 == k2 == kind and ans1 == ans2 and q1 == q2
        assert img1.tobytes() == img2.tobytes()
        assert img1.getextrema() != ((255, 255), (255, 255), (255, 255))  # something was drawn


def test_base_url_makes_links_fetchable(tmp_path):
    generate(tmp_path, 3, seed=1, base_url="http://127.0.0.1:8765/")
    links = read_csv(tmp_path / "test.csv")["image_link"].tolist() + \
        read_csv(tmp_path / "train.csv")["image_link"].tolist()
    assert links and all(re.fullmatch(r"http://127\.0\.0\.1:8765/syn1_\d{5}\.jpg", x) for x in links)


def test_cli_help_run_and_bad_input(tmp_path):
    h = _run("--help")
    assert h.returncode == 0 and "--base-url" in h.stdout and "--seed" in h.stdout
    r = _run("--out", str(tmp_path / "o"), "--n", "4", "--seed", "2")
    assert r.returncode == 0, r.stderr
    assert "images/s" in r.stdout
    assert len(list((tmp_path / "o" / "images").glob("*.jpg"))) == 4
    bad = _run("--out", str(tmp_path / "b"), "--n", "0")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_rapidocr_reads_the_answer_number_on_most_images(tmp_path):
    rapidocr = pytest.importorskip("rapidocr")
    generate(tmp_path, 16, seed=5)  # two of each kind
    engine = rapidocr.RapidOCR()
    meta = pd.read_csv(tmp_path / "meta.csv", dtype=str, keep_default_na=False)
    found = []
    for name, rows in meta[meta["entity_value"] != ""].groupby("image"):
        text = " ".join(engine(str(tmp_path / "images" / name)).txts or ())
        numbers = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)}
        found += [float(v.split(" ")[0]) in numbers for v in rows["entity_value"]]
    assert len(found) >= 16
    assert sum(found) / len(found) >= 0.8, f"rapidocr read {sum(found)}/{len(found)} answers"
