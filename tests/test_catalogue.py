"""amlc.catalogue: what train.csv's labels say per (entity, group): units, magnitudes, usual value."""

from __future__ import annotations

import pytest

from amlc.catalogue import SHIPPED, Catalogue, learn, learn_file, load
from amlc.errors import InputError


def labels(*rows: tuple[str, str, str]) -> Catalogue:
    return learn([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_unit_share_follows_the_group_and_is_smoothed_by_the_entity():
    cat = labels(*[("width", "1", "10.0 inch")] * 40, *[("width", "2", "25.0 centimetre")] * 40,
                 ("width", "3", "5.0 inch"))
    assert cat.unit_share("width", "1", "inch") > 0.6 > cat.unit_share("width", "2", "inch")
    assert cat.unit_share("width", "2", "centimetre") > 0.6
    # one label barely moves a group away from its entity's mix; an unseen group is the entity's
    assert abs(cat.unit_share("width", "3", "inch") - cat.unit_share("width", "9", "inch")) < 0.05
    assert 0.4 < cat.unit_share("width", "9", "inch") < 0.6
    assert 0 < cat.unit_share("width", "1", "yard") < 0.02  # never seen: small, never zero


def test_magnitude_says_how_unusual_a_value_is_in_base_units():
    cat = labels(*[("item_weight", "7", f"{v} gram") for v in (90, 100, 110, 120, 95)],
                 ("item_weight", "7", "0.1 kilogram"))
    assert cat.magnitude_z("item_weight", "7", 100.0) < 0.5  # 100 g, or 0.1 kg: usual
    assert cat.magnitude_z("item_weight", "7", 100_000.0) > 5  # 100 kg of this: a misread
    assert cat.magnitude_z("item_weight", "8", 100.0) < 0.5  # unseen group: the entity's figures
    assert cat.magnitude_z("voltage", "7", 12.0) == 0.0  # nothing known: no evidence either way


def test_prior_value_is_the_groups_most_common_canonical_label():
    cat = labels(("voltage", "1", "12.0 volt"), ("voltage", "1", "12.0 volt"), ("voltage", "1", "5.0 volt"),
                 ("voltage", "2", "[100.0, 240.0] volt"), ("voltage", "2", "[100.0, 240.0] volt"))
    assert cat.prior_value("voltage", "1") == "12.0 volt"
    assert cat.prior_value("voltage", "2") == "240.0 volt"  # a range as postprocessing resolves it
    assert cat.prior_value("voltage", "3") in ("12.0 volt", "240.0 volt")  # the entity's
    assert cat.prior_value("wattage", "1") == ""


def test_json_round_trip_and_bad_files(tmp_path):
    cat = labels(("width", "1", "10.0 inch"), ("width", "1", "12.0 inch"), ("width", "1", "11 inch"))
    again = Catalogue.from_json(cat.to_json())
    assert again.units == cat.units and again.common == cat.common
    assert again.magnitude_z("width", "1", 280.0) == pytest.approx(cat.magnitude_z("width", "1", 280.0), abs=1e-3)
    with pytest.raises(InputError, match="not a catalogue table"):
        Catalogue.from_json("[1, 2]")
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "none.json")


def test_shipped_table_loads_and_knows_every_entity():
    cat = load(SHIPPED)
    for entity in ("width", "depth", "height", "item_weight", "maximum_weight_recommendation",
                   "voltage", "wattage", "item_volume"):
        assert sum(cat.units[entity].values()) > 1000 and cat.prior_value(entity, "none")


@pytest.mark.slow
def test_shipped_table_is_what_the_documented_command_learns(shared):
    """The table in the package is `python -m amlc.catalogue --train train.csv --exclude
    images_dev/labels.csv --output src/amlc/data/catalogue.json` (so the images_dev rows it is scored on never taught it)."""
    from amlc.tables import read_table

    dev = set(read_table(shared / "images_dev" / "labels.csv", ["index"], usecols=())["index"])
    fresh = learn_file(shared / "train.csv", dev)
    assert fresh.to_json() == SHIPPED.read_text(encoding="utf-8")


def test_cli_writes_a_table(cli, tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("image_link,group_id,entity_name,entity_value\n"
                     "a,1,width,10.0 inch\nb,1,width,12.0 inch\nc,2,voltage,12.0 volt\n")
    out = tmp_path / "cat.json"
    r = cli("-m", "amlc.catalogue", "--train", train, "--output", out)
    assert r.returncode == 0, r.stderr
    assert "learned 2 (entity, group) pairs" in r.stdout
    assert load(out).prior_value("voltage", "2") == "12.0 volt"
    bad = cli("-m", "amlc.catalogue", "--train", tmp_path / "missing.csv", "--output", out)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    unnamed = cli("-m", "amlc.catalogue", "--train", train)  # the shipped table is never a default
    assert unnamed.returncode == 2 and unnamed.stderr.count("\n") == 1 and "--output" in unnamed.stderr


def test_postprocessing_fills_blanks_with_the_groups_usual_value_when_asked(cli, tmp_path):
    test = tmp_path / "test.csv"
    test.write_text("index,image_link,group_id,entity_name\n1,a,1,voltage\n2,b,1,voltage\n"
                    "3,c,999999,item_weight\n")
    raw = tmp_path / "raw.csv"
    raw.write_text("index,prediction\n1,12 V\n2,\n3,nothing\n")
    out = tmp_path / "sub.csv"
    r = cli("postprocessing.py", "--test-filename", test, "--input", raw, "--output_filename", out,
            "--fill", "prior")
    assert r.returncode == 0, r.stderr
    cat = load(SHIPPED)
    rows = out.read_text().splitlines()
    assert rows[1:] == ["1,12.0 volt", f"2,{cat.prior_value('voltage', '1')}",
                        f"3,{cat.prior_value('item_weight', '999999')}"]
    assert "blanks filled with the catalogue's most common value: 2" in r.stdout
    assert cli("src/sanity.py", "--test_filename", test, "--output_filename", out).returncode == 0
    plain = cli("postprocessing.py", "--test_filename", test, "--input", raw, "--output_filename", out)
    assert plain.returncode == 0 and out.read_text().splitlines()[1:] == ["1,12.0 volt", "2,", "3,"]
