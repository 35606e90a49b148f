"""The `ocr` engine: the extractor on hand-built boxes, rapidocr on drawn labels, the dev sets (shared)."""

from __future__ import annotations

import math
import random

import pytest

from amlc.engines import Request, load_engine
from amlc.engines.ocr import Box, joined_text, reading_order
from amlc.engines.ocr_rules import callout_direction, candidates, choose

# ------------------------------------------------------------------------ hand-built boxes


def box(text: str, cx: float, cy: float, h: float = 20.0, w: float | None = None,
        angle: float = 0.0, score: float = 0.99, vertical: bool = False) -> Box:
    """A text box as rapidocr returns it: centred on (cx, cy), `h` px tall text, turned by `angle`."""
    w = w if w is not None else 0.55 * h * len(text)
    if vertical:  # text running bottom-to-top: a tall, narrow box
        quad = [(cx - h / 2, cy - w / 2), (cx + h / 2, cy - w / 2), (cx + h / 2, cy + w / 2),
                (cx - h / 2, cy + w / 2)]
        return Box.from_quad(text, score, quad)
    a = math.radians(angle)
    ux, uy = math.cos(a), math.sin(a)
    vx, vy = -uy, ux
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    quad = [(cx + x * ux + y * vx, cy + x * uy + y * vy) for x, y in corners]
    return Box.from_quad(text, score, quad)


def pick(boxes, entity, size=(1000, 800), **kw) -> str:
    return choose(boxes, entity, *size, **kw).prediction


def test_box_geometry():
    b = box("Net Wt 500 g", 200, 100, h=20)
    assert not b.vertical and abs(b.angle) < 1 and b.text_height == pytest.approx(20)
    assert b.centre == pytest.approx((200, 100))
    v = box("45 cm", 50, 300, h=20, vertical=True)
    assert v.vertical and v.text_height == pytest.approx(20)
    s = box("30 cm", 200, 500, angle=30)
    assert s.angle == pytest.approx(30, abs=0.5) and not s.vertical
    one = Box.from_quad("1", 0.9, [(0, 0), (10, 0), (10, 30), (0, 30)])
    assert not one.vertical  # a lone tall glyph is no vertical text


def test_reading_order_groups_lines():
    boxes = [box("500 g", 400, 103), box("Net Wt", 200, 100), box("Organic", 200, 40)]
    lines = reading_order(boxes)
    assert [[b.text for b in line] for line in lines] == [["Organic"], ["Net Wt", "500 g"]]
    assert joined_text(boxes) == "Organic | Net Wt 500 g"


def test_keyword_beats_first_mention():
    boxes = [box("Max load 150 kg", 300, 60), box("Serving size 30 g", 300, 200, h=12),
             box("Net weight 12 kg", 300, 600)]
    assert pick(boxes, "item_weight") == "12.0 kilogram"
    assert pick(boxes, "maximum_weight_recommendation") == "150.0 kilogram"


def test_nutrition_values_are_not_the_net_quantity():
    boxes = [box("Protein 20g", 200, 100, h=14), box("Fat 3.5 g", 200, 130, h=14),
             box("500g", 600, 500, h=60)]
    assert pick(boxes, "item_weight") == "500.0 gram"


def test_abstains_without_an_allowed_unit():
    boxes = [box("12V 2A", 200, 100), box("Model X500", 200, 200)]
    p = choose(boxes, "item_weight", 1000, 800)
    assert p.prediction == "" and p.candidates == 0 and p.share == 0.0
    assert pick(boxes, "wattage") == ""
    assert pick(boxes, "voltage") == "12.0 volt"


def test_usual_ocr_confusions_are_read_through():
    assert pick([box("LOAD CAPACITY 8OKG", 300, 100)], "maximum_weight_recommendation") == "80.0 kilogram"
    assert pick([box("NET WT 0.43 0Z", 300, 100)], "item_weight") == "0.43 ounce"
    assert pick([box("2oz", 300, 100)], "item_weight") == "2.0 ounce"
    assert pick([box("5 Ibs", 300, 100)], "item_weight") == "5.0 pound"  # amlc.units reads "Ibs"
    assert pick([box("JHONPAK 4.0Z", 300, 100)], "item_weight") == "4.0 ounce"
    assert pick([box("Net 200 mI", 300, 100)], "item_volume") == "200.0 millilitre"
    assert pick([box("NET WT:100ge(3.5oz)", 300, 100)], "item_weight") == "100.0 gram"
    # a label's name glued to its value: the value is read and the name still counts
    assert pick([box("Flavour 50g sachet", 300, 60), box("NET WT3.5 LBS", 300, 100)],
                "item_weight") == "3.5 pound"
    assert pick([box("10-0.43OZ(12.3g)/EA|NETWT4.30Z(123g)", 300, 100)], "item_weight") == "123.0 gram"
    assert pick([box("26.8ln", 300, 500, vertical=True), box("44.1ln 15.7ln", 300, 900)],
                "height") == "26.8 inch"  # the i of "in" read as an l


def test_a_spec_tables_unit_in_the_rows_name_goes_with_its_number():
    boxes = [box("Product power (W): 1300W", 300, 100), box("Product voltage (V): 110", 300, 140),
             box("Inner box: 422*422*345 mm", 300, 180)]
    assert pick(boxes, "voltage") == "110.0 volt"
    assert pick(boxes, "wattage") == "1300.0 watt"
    assert pick([box("Weight (kg): 2.5", 300, 100)], "item_weight") == "2.5 kilogram"
    from amlc.engines.ocr_rules import _fix_ocr

    assert _fix_ocr("size (cm): 30 x 20") == "size (cm): 30 x 20"  # a size tuple is left whole
    assert _fix_ocr("net wt (g): 250g") == "net wt (g): 250g"  # the number has its unit


def test_grams_per_square_metre_are_item_weight_grams():
    assert pick([box("160GSM JACQUARD", 300, 100)], "item_weight") == "160.0 gram"
    assert pick([box("22OGSM FABRIC", 300, 100)], "item_weight") == "220.0 gram"
    stacked = [box("180", 300, 100, h=40), box("GSM", 300, 145, h=30)]
    assert pick(stacked, "item_weight") == "180.0 gram"
    assert pick([box("160GSM", 300, 100)], "maximum_weight_recommendation") == ""
    assert pick([box("GSM NETWORK", 300, 100)], "item_weight") == ""  # no number, no weight


def test_pack_count_is_no_quantity():
    assert pick([box("Ayurvedic Product 2X60g", 300, 100)], "item_weight") == "60.0 gram"


def test_range_follows_the_policy():
    boxes = [box("Input: 100-240V 50/60Hz", 300, 100)]
    assert pick(boxes, "voltage") == "240.0 volt"
    assert pick(boxes, "voltage", range_policy="min") == "100.0 volt"
    assert pick(boxes, "voltage", range_policy="blank") == ""
    # a count before a quantity is no range
    assert pick([box("10 - 0.43 oz", 300, 100)], "item_weight") == "0.43 ounce"


def test_number_and_unit_split_across_boxes():
    boxes = [box("185", 300, 100, w=60), box("cm", 356, 100, w=40)]
    cands = candidates(boxes, "height")
    assert [c.prediction for c in cands] == ["185.0 centimetre"] and cands[0].boxes == (0, 1)
    far = [box("185", 100, 100, w=60), box("cm", 800, 100, w=40)]
    assert candidates(far, "height") == []
    stacked = [box("WEIGHT", 300, 100, h=30), box("0.423", 300, 140, h=30), box("OUNCES", 300, 180, h=30)]
    assert pick(stacked, "item_weight") == "0.423 ounce"
    column = [box("cm", 60, 250, w=40, vertical=True), box("35.5", 60, 310, w=60, vertical=True)]
    assert [c.prediction for c in candidates(column, "height")] == ["35.5 centimetre"]


DRAWING = dict(size=(800, 600))


def drawing_boxes():
    return [box("45 cm", 60, 300, vertical=True),  # vertical text at the left: the height
            box("80 cm", 420, 560),  # horizontal, below the item: the width
            box("30 cm", 140, 500, angle=-35)]  # slanted, the receding edge: the depth


def test_vertical_callout_is_height_horizontal_width_slanted_depth():
    boxes = drawing_boxes()
    assert pick(boxes, "height", **DRAWING) == "45.0 centimetre"
    assert pick(boxes, "width", **DRAWING) == "80.0 centimetre"
    assert pick(boxes, "depth", **DRAWING) == "30.0 centimetre"


def test_label_beside_a_vertical_arrow_is_height():
    # all text horizontal: only the lines the labels sit on tell the directions
    boxes = [box("45 cm", 50, 300), box("80 cm", 420, 575)]
    segments = [(100.0, 100.0, 100.0, 500.0), (200.0, 550.0, 640.0, 550.0)]
    assert callout_direction(boxes[0], segments) == "vertical"
    assert callout_direction(boxes[1], segments) == "horizontal"
    assert pick(boxes, "height", segments=segments, **DRAWING) == "45.0 centimetre"
    assert pick(boxes, "width", segments=segments, **DRAWING) == "80.0 centimetre"
    # a line that only starts beside the label (a product edge) is not its arrow
    assert callout_direction(boxes[0], [(100.0, 295.0, 100.0, 700.0)]) == ""


def test_explicit_letters_win_over_geometry():
    boxes = [box("H35cm", 600, 300), box("D10.5cm", 300, 560)]
    assert pick(boxes, "height", **DRAWING) == "35.0 centimetre"
    assert pick(boxes, "depth", **DRAWING) == "10.5 centimetre"


def test_tuple_assigns_by_its_letters():
    boxes = [box("Size W x D x H: 40 x 30 x 20 cm", 400, 100)]
    assert pick(boxes, "width") == "40.0 centimetre"
    assert pick(boxes, "depth") == "30.0 centimetre"
    assert pick(boxes, "height") == "20.0 centimetre"
    other = [box("Dimensions (L x W x H): 60 x 45 x 90 cm", 400, 100)]
    assert pick(other, "width") == "45.0 centimetre"
    assert pick(other, "height") == "90.0 centimetre"


def test_degree_sign_read_for_an_inch_mark_on_an_inch_drawing():  # and an asterisk
    boxes = [box('31.4°', 30, 300), box('38.1"', 400, 560)]
    assert "31.4 inch" in [c.prediction for c in candidates(boxes, "height")]
    assert candidates([box("180°", 30, 300)], "height") == []  # an angle, when nothing says inches
    boxes = [box('31.4*', 30, 300), box('38.1"', 400, 560), box("422*345 mm", 400, 600)]
    found = [c.prediction for c in candidates(boxes, "height")]
    assert "31.4 inch" in found and "422.0 inch" not in found  # a mark after a number, not a times


def test_a_value_named_in_its_own_box_is_not_named_by_its_neighbour():
    table = [box('Width: 10.50cm/4.13"', 400, 80), box('Length: 90cm/35.43"', 700, 80)]
    assert pick(table, "width") in ("10.5 centimetre", "4.13 inch")
    ranked = choose(table, "width", 1000, 200).ranked
    length = [c for c in ranked if c.prediction == "90.0 centimetre"][0]
    assert length.features["keyword"] == 0.0  # "Width:" to its left names the other value


def test_one_value_in_two_units():
    # one answer: both twins share the better evidence, and the group's habit (the catalogue's unit
    # mix, twin_cat) says which the labels write: grams over ounces for a weight, whichever comes first
    ranked = choose([box("37in / 94cm", 60, 300, vertical=True)], "height", 800, 600).ranked
    assert {c.prediction for c in ranked} == {"37.0 inch", "94.0 centimetre"}
    assert ranked[0].features["orient"] == ranked[1].features["orient"] == 1.0
    assert ranked[0].features["has_twin"] == ranked[1].features["has_twin"] == 1.0
    assert pick([box("NET WT 4.3 OZ (123 g)", 300, 300)], "item_weight") == "123.0 gram"
    assert pick([box("NET WT 123 g (4.3 OZ)", 300, 300)], "item_weight") == "123.0 gram"


def decide(boxes, entity, size=(1000, 800)):
    """The engine's answer (pick, P(right), P(printed)) for boxes read off an image of that size."""
    from amlc.engines.ocr import OcrEngine, Page

    return OcrEngine().decide(Page(list(boxes), *size, key=str(id(boxes))), entity)


def test_confidence_is_a_probability_and_keywords_raise_it():
    plain = decide([box("500 g", 300, 300), box("250 g", 300, 500)], "item_weight")
    named = decide([box("Net Wt 500 g", 300, 300), box("250 g", 300, 500)], "item_weight")
    assert plain.prediction == named.prediction == "500.0 gram"
    assert 0 < plain.confidence < named.confidence < 1


# ---------------------------------------------------------------------- rapidocr on drawn labels

FONT = None


def font(size: int):
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), size)


def label_image(lines: list[tuple[str, int]], size=(900, 600), seed=0):
    """A white card with each (text, px size) line drawn in black, centred, top to bottom."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    y = 60
    for text, px in lines:
        f = font(px)
        w = d.textlength(text, font=f)
        d.text(((size[0] - w) / 2, y), text, fill="black", font=f)
        y += int(px * 1.8)
    return img


def drawing_image():
    """A dimension drawing: a box, a vertical arrow with vertical text, a horizontal one below."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (900, 700), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((250, 150, 650, 500), outline="black", width=4)
    d.line((180, 150, 180, 500), fill="black", width=3)  # height arrow
    d.line((250, 560, 650, 560), fill="black", width=3)  # width arrow
    t = Image.new("RGB", (220, 50), "white")
    ImageDraw.Draw(t).text((5, 5), "35.5 cm", fill="black", font=font(36))
    img.paste(t.rotate(90, expand=True), (110, 215))  # vertical text, bottom to top
    d.text((390, 575), "80 cm", fill="black", font=font(36))
    return img


@pytest.fixture(scope="module")
def engine():
    return load_engine("ocr", {})


@pytest.mark.slow
def test_reads_drawn_labels_exactly(engine, tmp_path):
    from amlc.engines.ocr import read_boxes

    img = label_image([("ORGANIC OATS", 64), ("Protein 12g per serving", 28),
                       ("Net Wt 500 g (17.6 oz)", 40), ("Made in Italy", 28)])
    texts = [b.text for b in read_boxes(img)]
    assert "ORGANIC OATS" in texts and "Net Wt 500 g (17.6 oz)" in " ".join(texts)
    path = tmp_path / "label.jpg"
    img.save(path, quality=95)
    cases = [("item_weight", "500.0 gram")]
    img2 = label_image([("DESK FAN", 64), ("Rated voltage: 220-240V~", 36), ("Power: 45W", 36),
                        ("Max load 5 kg", 28)])
    path2 = tmp_path / "fan.png"
    img2.save(path2)
    cases2 = [("voltage", "240.0 volt"), ("wattage", "45.0 watt"),
              ("maximum_weight_recommendation", "5.0 kilogram"), ("item_volume", "")]
    reqs = [Request(i, e, path) for i, (e, _) in enumerate(cases)]
    reqs += [Request(10 + i, e, path2) for i, (e, _) in enumerate(cases2)]
    out = engine.predict(reqs)
    assert [r.index for r in out] == [r.index for r in reqs]
    assert [r.prediction for r in out] == [v for _, v in cases + cases2]
    assert "Net Wt 500 g" in out[0].raw and out[0].confidence > 0.5
    assert out[-1].reason == "no mention"


@pytest.mark.slow
def test_reads_a_drawing(engine, tmp_path):
    from amlc.engines.ocr import read_page

    path = tmp_path / "drawing.png"
    drawing_image().save(path)
    page = read_page(path)
    assert any(b.vertical and "35.5" in b.text for b in page.boxes)
    out = engine.predict([Request(0, "height", path), Request(1, "width", path),
                          Request(2, "depth", path)])
    assert out[0].prediction == "35.5 centimetre"
    assert out[1].prediction == "80.0 centimetre"
    assert out[2].confidence < out[1].confidence


def test_read_boxes_caches_in_memory_and_on_disk(tmp_path):
    from amlc.engines import ocr

    path = tmp_path / "card.png"
    label_image([("Net Wt 250 g", 40)], size=(500, 160)).save(path)
    settings = {"cache_dir": str(tmp_path / "cache")}
    first = ocr.read_page(path, settings)
    assert not first.cached and first.seconds > 0 and "250" in " ".join(b.text for b in first.boxes)
    again = ocr.read_page(path, settings)
    assert again.cached and again.seconds == 0.0 and again.boxes == first.boxes
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    ocr._MEMORY.clear()  # as in a new process: from the disk
    disk = ocr.read_page(path, settings)
    assert disk.cached and [b.text for b in disk.boxes] == [b.text for b in first.boxes]
    assert ocr.read_boxes(path, settings) == disk.boxes
    other = ocr.read_page(path, {**settings, "det_limit_side": 640})  # other settings, other key
    assert not other.cached and other.key != first.key
    timed = ocr.read_page(path, settings, use_cache=False)
    assert not timed.cached and timed.seconds > 0


def test_an_unwritable_cache_is_refused_at_build_and_a_failing_write_keeps_the_row(
        tmp_path, monkeypatch, capsys):
    """Found by a new user: an unwritable ocr.cache_dir turned every row into "unreadable image"."""
    from amlc.engines import ocr
    from amlc.errors import InputError

    (tmp_path / "a_file").write_text("")
    with pytest.raises(InputError, match="ocr.cache_dir .* not a writable folder"):
        load_engine("ocr", {"ocr": {"cache_dir": str(tmp_path / "a_file" / "cache")}})
    path = tmp_path / "card.png"
    label_image([("Net Wt 250 g", 40)], size=(500, 160)).save(path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("amlc.tables.write_text", disk_full)
    ocr._MEMORY.clear()  # read, not remembered from another test
    engine = load_engine("ocr", {"ocr": {"cache_dir": str(tmp_path / "cache")}})
    out = engine.predict([Request(0, "item_weight", path)])[0]
    assert out.prediction == "250.0 gram"
    assert "OCR cache not written" in capsys.readouterr().err
    ocr._WARNED.clear()


@pytest.mark.slow
def test_reread_finds_small_print_the_shrunk_detector_missed(tmp_path):
    """ocr.reread_det_limit_side: a second, fuller read only where the first found no mention."""
    path = tmp_path / "pack.png"
    label_image([("ORGANIC GREEN TEA", 90), ("Net Wt 22 g", 16)], size=(2000, 1400)).save(path)
    # a detector too small for the 16 px line, and no second read (the default has one)
    small = {"ocr": {"det_limit_side": 320, "reread_det_limit_side": -1}}
    once = load_engine("ocr", small).predict([Request(0, "item_weight", path)])[0]
    assert once.prediction == "" and once.reason == "no mention" and "reread" not in once.extra
    twice = load_engine("ocr", {"ocr": {**small["ocr"], "reread_det_limit_side": 0}})
    out = twice.predict([Request(0, "item_weight", path), Request(1, "voltage", path)])
    assert out[0].prediction == "22.0 gram" and out[0].extra["reread"] is True
    assert out[0].extra["seconds"] >= 0.0
    assert out[1].prediction == "" and out[1].reason == "no mention"  # read again, still nothing


def test_bad_images_never_raise(engine, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(random.Random(0).randrange(256) for _ in range(500)))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (300, 200), "white").save(blank)
    out = engine.predict([Request(0, "item_weight", None), Request(1, "item_weight", corrupt),
                          Request(2, "width", empty), Request(3, "voltage", tmp_path / "none.jpg"),
                          Request(4, "voltage", blank)])
    assert [r.prediction for r in out] == [""] * 5
    assert [r.reason for r in out] == ["missing image", "unreadable image", "unreadable image",
                                       "missing image", "no text"]


def test_engine_answers_and_the_runner_abstains(engine, tmp_path):
    """The engine never blanks by itself: it answers with P(right) and P(printed), and
    amlc.inference abstains under the thresholds."""
    from amlc.inference import blank_reason

    path = tmp_path / "plain.png"
    label_image([("500 g", 48)], size=(500, 200)).save(path)
    r = engine.predict([Request(0, "item_weight", path)])[0]
    assert r.prediction == "500.0 gram" and r.reason == "" and 0 < r.confidence < 0.99
    assert 0 < r.printed < 1
    assert blank_reason(r.prediction, r.confidence, r.printed, "item_weight", {}, 0.0) == ""
    assert blank_reason(r.prediction, r.confidence, r.printed, "item_weight", {"item_weight": 0.99},
                        0.0) == "below_threshold"
    assert blank_reason(r.prediction, r.confidence, r.printed, "item_weight", {}, 0.999) == "not_printed"


# ------------------------------------------------------------------------------- the dev sets


def _dev_f1(shared, name: str, n_images: int, acceptable: bool) -> tuple[float, float, int]:
    import pandas as pd

    from amlc.engines.ocr import read_page
    from amlc.engines.ocr_rules import first_mention
    from amlc.metric import f1_score

    labels = pd.read_csv(shared / name / "labels.csv", dtype=str, keep_default_na=False)
    truth = labels["acceptable"] if acceptable else labels["entity_value"]
    files = sorted(set(labels.image_link.str.rsplit("/", n=1).str[1]))
    chosen = set(random.Random(7).sample(files, min(n_images, len(files))))
    eng = load_engine("ocr", {})
    ours, base, truths = [], [], []
    for r, t in zip(labels.itertuples(), truth):
        f = r.image_link.rsplit("/", 1)[1]
        if f not in chosen:
            continue
        page = read_page(shared / name / f, eng.settings)
        ours.append(eng.decide(page, r.entity_name, group=r.group_id).prediction)
        base.append(first_mention(page.boxes, r.entity_name))
        truths.append(t)
    return f1_score(ours, truths, acceptable), f1_score(base, truths, acceptable), len(truths)


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("name,n_images,acceptable", [("dims_dev", 20, True), ("images_dev", 25, False)])
def test_dev_set_subset(shared, name, n_images, acceptable):
    """A small seeded subset, OCR'd from scratch: F1 printed (bench/bench_ocr.py has the full figures)."""
    ours, base, rows = _dev_f1(shared, name, n_images, acceptable)
    print(f"\n{name}: {rows} rows from {n_images} images: ours F1 {ours:.3f}, "
          f"first-mention baseline {base:.3f}")
    assert rows > 0 and ours >= base - 0.05


# ------------------------------------------------------------------ the synthetic generator's images


@pytest.mark.slow
def test_synthetic_images(tmp_path):
    """The lead's generator (amlc.synthetic): the engine reads its answers, beats the baseline."""
    import pandas as pd

    from amlc.engines.ocr import read_page
    from amlc.engines.ocr_rules import first_mention
    from amlc.metric import f1_score
    from amlc.synthetic import generate

    paths = generate(tmp_path, 14, seed=5)
    meta = pd.read_csv(paths["meta"], dtype=str, keep_default_na=False)
    eng = load_engine("ocr", {})
    ours, base = [], []
    for r in meta.itertuples():
        page = read_page(paths["images"] / r.image, eng.settings)
        ours.append(eng.decide(page, r.entity_name).prediction)
        base.append(first_mention(page.boxes, r.entity_name))
    f1, f1_base = f1_score(ours, meta.entity_value), f1_score(base, meta.entity_value)
    print(f"\nsynthetic: {len(meta)} rows, ours F1 {f1:.3f}, first-mention baseline {f1_base:.3f}")
    assert f1 >= 0.7 and f1 >= f1_base


def test_small_images_are_enlarged_for_reading_and_boxes_keep_their_pixels(tmp_path):
    """ocr.det_min_side: an image under it is read enlarged; its boxes come back in its own pixels."""
    from amlc.engines import ocr

    small = label_image([("Net Wt 250 g", 16), ("12V 3A", 16)], size=(300, 140))
    plain = ocr.read_page(small, {"det_min_side": 0})
    big = ocr.read_page(small, {"det_min_side": 960})
    assert big.key != plain.key and (big.width, big.height) == (300, 140)
    assert [b.text for b in big.boxes] == [b.text for b in plain.boxes] == ["Net Wt 250 g", "12V 3A"]
    for a, b in zip(plain.boxes, big.boxes):  # the same place, within a few pixels
        assert b.centre == pytest.approx(a.centre, abs=3) and b.text_height == pytest.approx(a.text_height, rel=0.3)
    assert ocr.enlarged(small, 960)[0].size == (960, 448)
    large = label_image([("Net Wt 250 g", 40)], size=(1200, 300))
    assert ocr.enlarged(large, 960) == (large, 1.0)  # never shrunk, never enlarged above it
    # the key leaves the knob out when it is off, so caches made before it existed stay valid
    assert "det_min_side" not in ocr._read_settings(ocr.settings_of({"det_min_side": 0}))
