"""Synthetic labelled product images: the demo's data set and the fixture for every test that needs images.

`generate(out_dir, n, seed)` renders n product images of eight kinds, deterministic by seed (same seed,
same Pillow: byte-identical images and CSVs), and writes them in the competition's layout:

    out_dir/images/<name>.jpg   the images (JPEG, quality and chroma subsampling set explicitly)
    out_dir/train.csv           image_link, group_id, entity_name, entity_value   (train layout; like the
                                organisers' train.csv it holds only rows with a value)
    out_dir/test.csv            index, image_link, group_id, entity_name          (test layout)
    out_dir/labels.csv          index, image_link, group_id, entity_name, entity_value  (test rows with
                                their truth; "" where the entity is not on the image)
    out_dir/meta.csv            image, kind, split, entity_name, entity_value, answer_text  (every row; the
                                text on the image that carries the answer, for checks and error analysis)

image_link is `{base_url}/{name}` when base_url is given (serve out_dir/images there and the real
downloader fetches it), else an https URL on the reserved .invalid domain whose base name is the file
name, so a downloader that finds the file already in its cache never tries the network.

Truths are in the competition's format ("500.0 gram": Python float repr, a space, a unit allowed for
the entity) and are what a careful reader reads off the image, by these rules (the way the real data
labels such images):
- packaging (item_weight): the net weight in the unit printed first: "Net Wt. 500 g (17.6 oz)" ->
  "500.0 gram"; serving sizes, protein grams, pack counts, dates are distractors.
- bottle (item_volume): the volume printed first: "750 mL" over "(25.4 fl oz)" -> "750.0 millilitre";
  "% vol" and similar are distractors.
- spec table: each entity's value is in the row named for it (Net weight, Max load, Rated power, Rated
  voltage, Capacity); other rows (model, frequency, cable length...) are distractors.
- battery (voltage): the nominal voltage ("18V MAX" -> "18.0 volt"); its "72Wh" is energy, not power,
  so a wattage row on a battery has no answer.
- charger: voltage is the OUTPUT voltage ("Output: 20V DC 3.25A" -> "20.0 volt"); the input range
  "100-240V~ 50/60Hz" is a distractor. wattage is the rated "65W".
- appliance power badge (wattage): "2000W" or "2.2kW"; a voltage row only when one voltage is printed
  ("230V~ 50Hz"), none when only a range is, and an empty one when none is.
- max load (maximum_weight_recommendation): the "Max load" value in the unit printed first; an "Item
  weight" line beside it answers item_weight.
- dimension drawing: the horizontal arrow is the width, the vertical arrow the height, the oblique
  (receding) arrow the depth; W/H/D letters, when printed, agree. The value is the unit printed first
  ("37in / 94cm" -> "37.0 inch"). A flat drawing (no oblique arrow) has no depth, and a TV's diagonal
  arrow ("32\" diagonal") answers nothing.
A row asked about an entity that is not on the image has an empty truth, so abstention is exercised.

CLI: `python -m amlc.synthetic --out DIR --n N --seed S [--base-url URL]` (see --help).
Pillow only (numpy for noise); fonts are matplotlib's bundled DejaVu/STIX files when matplotlib is
installed, else Pillow's built-in scalable font.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from amlc.units import format_value

KINDS: tuple[str, ...] = ("dimensions", "packaging", "spec_table", "bottle", "battery", "charger",
                          "power", "max_load")
# Dimensions dominate the real data (width/height/depth are half of train.csv); the rest share the
# remainder so that every entity is well represented even in a 100-image demo.
KIND_WEIGHTS: tuple[float, ...] = (0.24, 0.15, 0.15, 0.10, 0.08, 0.10, 0.09, 0.09)
# Product categories as the competition's group_id (a few fixed ids per kind, like the real data).
GROUP_IDS: dict[str, tuple[int, ...]] = {
    "dimensions": (178958, 478357, 276611), "packaging": (748919, 459516, 731432),
    "spec_table": (211213, 641642), "bottle": (916768, 524117), "battery": (271537, 965518),
    "charger": (752266, 318770), "power": (186035, 983323), "max_load": (469317, 801829),
}
# Probability that an image gets one extra row for an entity it does not show (truth "").
P_ABSENT_ROW = 0.2
DEFAULT_BASE_URL = "https://synthetic.amlc.invalid/images"
TEST_FRACTION = 0.5

FONT_FILES = {
    "sans": "DejaVuSans.ttf", "sans-bold": "DejaVuSans-Bold.ttf", "sans-italic": "DejaVuSans-Oblique.ttf",
    "serif": "DejaVuSerif.ttf", "serif-bold": "DejaVuSerif-Bold.ttf", "serif-italic": "DejaVuSerif-Italic.ttf",
    "mono": "DejaVuSansMono.ttf", "mono-bold": "DejaVuSansMono-Bold.ttf", "stix-bold": "STIXGeneralBol.ttf",
}
# (heading, body) font pairs; one per image.
FAMILIES = (("sans-bold", "sans"), ("serif-bold", "serif"), ("mono-bold", "mono"), ("sans-bold", "serif"),
            ("stix-bold", "sans"), ("serif-bold", "sans"), ("sans-bold", "sans-italic"))

BRANDS = ("Nutrivo", "Golden Harvest", "Alpen Farm", "Kiran Foods", "Verdana Co.", "Blue Lotus", "Oakridge",
          "Sunmeadow", "Pure Valley", "Northwind", "Tata Fresh", "Maple & Co", "Zenith", "Aurora")
FOODS = ("Roasted Almonds", "Basmati Rice", "Whey Protein", "Dark Chocolate", "Green Tea", "Rolled Oats",
         "Peanut Butter", "Trail Mix", "Coffee Beans", "Chia Seeds", "Masala Chai", "Cashew Nuts")
LIQUIDS = ("Olive Oil", "Red Wine", "Shampoo", "Mineral Water", "Dish Soap", "Body Lotion", "Apple Juice",
           "Hand Wash", "Coconut Oil", "Mouthwash")


def truth_value(value: float, unit: str) -> str:
    """The competition's value format: Python float repr, one space, the full unit name."""
    return format_value(value, unit)


def _num(v: float) -> str:
    """A number as printed on a product: no trailing .0, no exponent."""
    return f"{v:g}"


# --------------------------------------------------------------------------------------------- fonts

@lru_cache(maxsize=1)
def _font_dir() -> Path | None:
    # Locate matplotlib's bundled fonts without importing matplotlib (slow, and optional).
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return None
    d = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    return d if (d / FONT_FILES["sans"]).exists() else None


@lru_cache(maxsize=1024)
def _font(style: str, size: int) -> ImageFont.FreeTypeFont:
    d = _font_dir()
    if d is not None and (d / FONT_FILES[style]).exists():
        return ImageFont.truetype(str(d / FONT_FILES[style]), size)
    return ImageFont.load_default(size=size)


# ------------------------------------------------------------------------------------------- drawing

def _lum(c: Sequence[int]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _ink(bg: Sequence[int]) -> tuple[int, int, int]:
    return (25, 25, 30) if _lum(bg) > 140 else (250, 250, 245)


def _shade(c: Sequence[int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c[:3])  # type: ignore[return-value]


class _Painter:
    """One image being drawn: a transparent product layer, its random source and its fonts."""

    def __init__(self, rng: random.Random, width: int, height: int):
        self.rng = rng
        self.W, self.H = width, height
        self.s = min(width, height)
        self.layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        self.d = ImageDraw.Draw(self.layer)
        self.head, self.body = rng.choice(FAMILIES)
        self.squeeze = 0.8 if rng.random() < 0.2 else 1.0  # a condensed face, made by squeezing

    def color(self, light: bool | None = None) -> tuple[int, int, int]:
        r = self.rng
        if light is None:
            light = r.random() < 0.5
        lo, hi = (170, 250) if light else (20, 150)
        return (r.randint(lo, hi), r.randint(lo, hi), r.randint(lo, hi))

    def measure(self, text: str, size: float, style: str | None = None) -> tuple[int, int]:
        font = _font(style or self.body, max(8, int(size)))
        x0, y0, x1, y1 = font.getbbox(text)
        return int((x1 - x0) * self.squeeze), y1 - y0

    def fit(self, text: str, size: float, max_w: float, style: str | None = None) -> int:
        size = int(size)
        while size > 12 and self.measure(text, size, style)[0] > max_w:
            size = int(size * 0.93)
        return size

    def text(self, xy: tuple[float, float], text: str, size: float, fill, anchor: str = "lt",
             style: str | None = None, max_w: float | None = None) -> tuple[int, int, int, int]:
        """Draw text with its bounding box anchored at xy (anchor: l/m/r then t/m/b); return the box."""
        style = style or self.body
        size = self.fit(text, size, max_w, style) if max_w else max(8, int(size))
        font = _font(style, size)
        bx0, by0, bx1, by1 = font.getbbox(text)
        w, h = int((bx1 - bx0) * self.squeeze), by1 - by0
        x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]]
        y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]]
        x, y = int(round(x)), int(round(y))
        if self.squeeze == 1.0:
            self.d.text((x - bx0, y - by0), text, font=font, fill=fill)
        else:
            tile = Image.new("RGBA", (bx1 - bx0 + 2, h + 2), (0, 0, 0, 0))
            ImageDraw.Draw(tile).text((-bx0 + 1, -by0 + 1), text, font=font, fill=fill)
            tile = tile.resize((max(1, w), tile.height), Image.Resampling.LANCZOS)
            self.layer.alpha_composite(tile, (max(0, x), max(0, y - 1)))
        return x, y, x + w, y + h

    def block(self, xy: tuple[float, float], lines: Sequence[str], size: float, fill, anchor: str = "lt",
              style: str | None = None) -> None:
        """Lines stacked and aligned (anchor as in `text`, applied to the whole block)."""
        style = style or self.body
        sizes = [self.measure(t, size, style) for t in lines]
        lead = size * 0.25
        total = sum(h for _, h in sizes) + lead * (len(lines) - 1)
        y = xy[1] - {"t": 0, "m": total / 2, "b": total}[anchor[1]]
        for t, (_, h) in zip(lines, sizes):
            self.text((xy[0], y), t, size, fill, anchor[0] + "t", style)
            y += h + lead

    def arrow(self, p0, p1, fill, width: int, head: float) -> None:
        """A double-headed dimension arrow from p0 to p1."""
        (x0, y0), (x1, y1) = p0, p1
        L = math.hypot(x1 - x0, y1 - y0) or 1.0
        ux, uy = (x1 - x0) / L, (y1 - y0) / L
        nx, ny = -uy, ux
        self.d.line([(x0 + ux * head * 0.8, y0 + uy * head * 0.8), (x1 - ux * head * 0.8, y1 - uy * head * 0.8)],
                    fill=fill, width=width)
        for (px, py), sgn in (((x0, y0), 1), ((x1, y1), -1)):
            bx, by = px + sgn * ux * head, py + sgn * uy * head
            self.d.polygon([(px, py), (bx + nx * head * 0.4, by + ny * head * 0.4),
                            (bx - nx * head * 0.4, by - ny * head * 0.4)], fill=fill)

    def badge(self, cx: float, cy: float, text: str, size: float, fill, round_: bool = False,
              max_w: float | None = None) -> tuple[int, int, int, int]:
        size = self.fit(text, size, max_w, self.head) if max_w else int(size)
        w, h = self.measure(text, size, self.head)
        pad = size * 0.5
        box = [cx - w / 2 - pad, cy - h / 2 - pad * 0.8, cx + w / 2 + pad, cy + h / 2 + pad * 0.8]
        if round_:
            r = max(w, h) / 2 + pad
            self.d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            self.d.rounded_rectangle(box, radius=size * 0.4, fill=fill)
        return self.text((cx, cy), text, size, _ink(fill), "mm", self.head)


@dataclass(frozen=True)
class _Answer:
    entity: str
    value: float | None  # None: the entity is not on the image (truth "")
    unit: str = ""
    text: str = ""  # the printed text that carries the answer

    @property
    def truth(self) -> str:
        return "" if self.value is None else truth_value(self.value, self.unit)


UNIT_TEXT = {
    "gram": ("g", "g", "gm"), "kilogram": ("kg", "kg", "KG"), "ounce": ("oz", "OZ"), "pound": ("lb", "lbs"),
    "millilitre": ("mL", "ml", "ML"), "litre": ("L", "L", "litre"), "fluid ounce": ("fl oz", "FL OZ", "fl. oz"),
    "volt": ("V",), "watt": ("W",), "kilowatt": ("kW",),
    "inch": ("in", "in", "inch", '"'), "centimetre": ("cm",), "millimetre": ("mm",),
}


def _printed(rng: random.Random, value: float, unit: str, space: bool | None = None) -> str:
    u = rng.choice(UNIT_TEXT[unit])
    if u == '"':
        return f'{_num(value)}"'
    if space is None:
        space = rng.random() < 0.6
    return f"{_num(value)}{' ' if space else ''}{u}"


# ------------------------------------------------------------------------------------------- kinds

def _weight(rng: random.Random, small: bool = True) -> tuple[float, str, float, str]:
    """(value, unit, converted value, converted unit) of a net weight."""
    unit = rng.choices(("gram", "kilogram", "ounce", "pound"), (0.55, 0.15, 0.22, 0.08))[0]
    if unit == "gram":
        v = float(rng.choice((25, 40, 50, 75, 100, 125, 150, 200, 227, 250, 300, 340, 400, 450, 500, 750, 900)))
        return v, unit, round(v / 28.3495, 1), "ounce"
    if unit == "kilogram":
        v = rng.choice((0.5, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 20.0))
        return v, unit, round(v * 2.20462, 1), "pound"
    if unit == "ounce":
        v = rng.choice((1.5, 2.0, 3.5, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 24.0, 32.0))
        return v, unit, float(round(v * 28.3495)), "gram"
    v = float(rng.choice((1, 2, 3, 5, 10, 25)))
    return v, unit, float(round(v * 453.592)), "gram"


def _packaging(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    x0, x1 = W * rng.uniform(0.1, 0.18), W * (1 - rng.uniform(0.1, 0.18))
    y0, y1 = H * rng.uniform(0.05, 0.1), H * (1 - rng.uniform(0.05, 0.1))
    fill = p.color()
    ink = _ink(fill)
    p.d.rounded_rectangle([x0, y0, x1, y1], radius=s * 0.03, fill=fill, outline=_shade(fill, 0.7),
                          width=max(2, s // 200))
    cx, bw = (x0 + x1) / 2, x1 - x0
    b = p.text((cx, y0 + s * 0.05), rng.choice(BRANDS), s * rng.uniform(0.07, 0.1), ink, "mt", p.head, bw * 0.9)
    b = p.text((cx, b[3] + s * 0.03), rng.choice(FOODS), s * rng.uniform(0.05, 0.065), ink, "mt", None, bw * 0.9)
    # an "illustration": a few overlapping ellipses
    icy = (b[3] + y1) / 2 - s * 0.06
    for _ in range(rng.randint(2, 4)):
        r = s * rng.uniform(0.06, 0.12)
        ox, oy = rng.uniform(-0.12, 0.12) * bw, rng.uniform(-0.04, 0.04) * s
        p.d.ellipse([cx + ox - r, icy + oy - r * 0.8, cx + ox + r, icy + oy + r * 0.8], fill=p.color())
    distractors = [f"Pack of {rng.randint(2, 6)}", f"Serving size {rng.choice((15, 20, 25, 30, 40))} g",
                   f"{rng.randint(10, 60)} Servings", f"Protein {rng.randint(5, 30)} g",
                   f"Since {rng.randint(1950, 2015)}", f"Best before {rng.randint(1, 12):02d}/{rng.randint(2025, 2029)}",
                   "100% Natural", f"{rng.randint(50, 400)} kcal"]
    for k, t in enumerate(rng.sample(distractors, rng.randint(1, 3))):
        side = (-1) ** k
        p.badge(cx + side * bw * 0.27, icy + s * (0.1 * (k // 2) - 0.02), t, s * 0.035, p.color(), max_w=bw * 0.4)
    v, unit, cv, cunit = _weight(rng)
    main = _printed(rng, v, unit)
    conv = _printed(rng, cv, cunit)
    line = rng.choice((f"Net Wt. {main} ({conv})", f"NET WT {main} ({conv})", f"Net Weight: {main}",
                       f"Net Wt {main} / {conv}", main))
    band_y = y1 - s * rng.uniform(0.1, 0.14)
    size = s * (0.09 if line == main else 0.052)
    if rng.random() < 0.5:
        band = (250, 250, 245) if _lum(fill) < 140 else (30, 30, 35)
        bw2, bh = p.measure(line, p.fit(line, size, bw * 0.85, p.head), p.head)
        p.d.rounded_rectangle([cx - bw2 / 2 - s * 0.03, band_y - bh / 2 - s * 0.02, cx + bw2 / 2 + s * 0.03,
                               band_y + bh / 2 + s * 0.02], radius=s * 0.02, fill=band)
        p.text((cx, band_y), line, size, _ink(band), "mm", p.head, bw * 0.85)
    else:
        p.text((cx, band_y), line, size, ink, "mm", p.head, bw * 0.85)
    return [_Answer("item_weight", v, unit, main)]


def _bottle(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    cx = W / 2 + rng.uniform(-0.05, 0.05) * W
    bw = W * rng.uniform(0.42, 0.52)
    top, bottom = H * 0.06, H * 0.95
    neck_w = bw * rng.uniform(0.25, 0.35)
    shoulder = top + (bottom - top) * rng.uniform(0.22, 0.3)
    glass = rng.choice(((40, 90, 50), (90, 50, 20), (170, 200, 215), (200, 60, 60), (60, 90, 160), (235, 235, 235)))
    p.d.rectangle([cx - neck_w / 2, top + s * 0.05, cx + neck_w / 2, shoulder], fill=glass)
    p.d.rectangle([cx - neck_w / 2 - 4, top, cx + neck_w / 2 + 4, top + s * 0.06], fill=p.color(light=False))
    p.d.ellipse([cx - bw / 2, shoulder - bw * 0.25, cx + bw / 2, shoulder + bw * 0.25], fill=glass)
    p.d.rounded_rectangle([cx - bw / 2, shoulder, cx + bw / 2, bottom], radius=s * 0.04, fill=glass)
    lab = (rng.randint(225, 252), rng.randint(220, 250), rng.randint(200, 245))
    lx0, lx1 = cx - bw * 0.46, cx + bw * 0.46
    ly0, ly1 = shoulder + (bottom - shoulder) * 0.12, bottom - (bottom - shoulder) * 0.08
    p.d.rectangle([lx0, ly0, lx1, ly1], fill=lab)
    ink, lw = _ink(lab), lx1 - lx0
    b = p.text((cx, ly0 + s * 0.03), rng.choice(BRANDS), s * 0.06, ink, "mt", p.head, lw * 0.9)
    b = p.text((cx, b[3] + s * 0.02), rng.choice(LIQUIDS), s * 0.042, ink, "mt", None, lw * 0.9)
    unit = rng.choices(("millilitre", "litre", "fluid ounce"), (0.5, 0.25, 0.25))[0]
    if unit == "millilitre":
        v = float(rng.choice((100, 150, 200, 250, 330, 355, 375, 400, 473, 500, 650, 700, 750, 946, 1000)))
        cv, cunit = round(v / 29.5735, 1), "fluid ounce"
    elif unit == "litre":
        v = rng.choice((0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0))
        cv, cunit = round(v * 33.814, 1), "fluid ounce"
    else:
        v = rng.choice((8.0, 12.0, 16.0, 16.9, 20.0, 25.4, 33.8))
        cv, cunit = float(round(v * 29.5735)), "millilitre"
    main = _printed(rng, v, unit)
    vy = ly1 - (ly1 - ly0) * rng.uniform(0.3, 0.42)
    b = p.text((cx, vy), main, s * rng.uniform(0.07, 0.09), ink, "mm", p.head, lw * 0.85)
    if rng.random() < 0.6:
        p.text((cx, b[3] + s * 0.015), f"({_printed(rng, cv, cunit)})", s * 0.04, ink, "mt", None, lw * 0.85)
    dis = rng.choice((f"{rng.choice((5, 11.5, 12.5, 13, 13.5, 14))}% vol", f"pH {rng.choice((5.5, 6, 7))}",
                      f"Since {rng.randint(1900, 2010)}", "Made in Italy", f"Lot {rng.randint(10, 99)}B",
                      f"{rng.randint(2, 4)}x concentrated"))
    p.text((cx, ly1 - s * 0.02), dis, s * 0.033, ink, "mb", None, lw * 0.9)
    return [_Answer("item_volume", v, unit, main)]


SPEC_PRODUCTS = {
    "Electric Kettle": ("wattage", "voltage", "item_volume", "item_weight"),
    "Blender": ("wattage", "voltage", "item_volume", "item_weight"),
    "Space Heater": ("wattage", "voltage", "item_weight"),
    "Office Chair": ("item_weight", "maximum_weight_recommendation"),
    "Camping Cot": ("item_weight", "maximum_weight_recommendation"),
    "Travel Backpack": ("item_volume", "item_weight", "maximum_weight_recommendation"),
}
SPEC_KEYS = {
    "wattage": ("Rated power", "Power", "Wattage"), "voltage": ("Rated voltage", "Voltage"),
    "item_volume": ("Capacity", "Volume"), "item_weight": ("Net weight", "Weight", "Item weight"),
    "maximum_weight_recommendation": ("Max load", "Load capacity", "Max. weight capacity"),
}
SPEC_EXTRAS = (("Model", lambda r: f"{r.choice('ABKTXZ')}{r.choice('CDHLMR')}-{r.randint(100, 9999)}"),
               ("Frequency", lambda r: r.choice(("50 Hz", "50/60 Hz", "60 Hz"))),
               ("Cable length", lambda r: f"{r.choice((0.75, 1, 1.2, 1.5))} m"),
               ("Material", lambda r: r.choice(("Stainless steel", "ABS plastic", "Aluminium", "Nylon"))),
               ("Colour", lambda r: r.choice(("Black", "White", "Grey", "Red"))),
               ("Warranty", lambda r: f"{r.randint(2, 5)} years"),
               ("Certification", lambda r: r.choice(("CE / RoHS", "UL", "BIS"))))


def _spec_value(rng: random.Random, entity: str) -> tuple[float, str, str]:
    if entity == "wattage":
        v = float(rng.choice((300, 350, 500, 600, 800, 1000, 1200, 1500, 1800, 2000, 2200, 2500)))
        return v, "watt", _printed(rng, v, "watt")
    if entity == "voltage":
        v = float(rng.choice((110, 120, 220, 230, 240)))
        return v, "volt", _printed(rng, v, "volt") + rng.choice(("", "~", " AC"))
    if entity == "item_volume":
        if rng.random() < 0.6:
            v = rng.choice((0.8, 1.0, 1.2, 1.5, 1.7, 2.0, 25.0, 30.0, 40.0))
            return v, "litre", _printed(rng, v, "litre")
        v = float(rng.choice((500, 600, 750, 1000, 1500)))
        return v, "millilitre", _printed(rng, v, "millilitre")
    if entity == "item_weight":
        if rng.random() < 0.7:
            v = rng.choice((0.9, 1.1, 1.25, 1.8, 2.4, 3.5, 4.2, 7.5, 12.0, 14.5, 18.0))
            return v, "kilogram", _printed(rng, v, "kilogram")
        v = rng.choice((2.5, 3.0, 5.5, 9.0, 12.0, 26.0, 32.0))
        return v, "pound", _printed(rng, v, "pound")
    v, unit, text = _max_load(rng)
    return v, unit, text


def _spec_table(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    product = rng.choice(sorted(SPEC_PRODUCTS))
    entities = list(SPEC_PRODUCTS[product])
    rows: list[tuple[str, str]] = []
    answers = []
    for e in entities:
        v, unit, text = _spec_value(rng, e)
        shown = text
        if e in ("item_weight", "maximum_weight_recommendation") and rng.random() < 0.4:
            other = round(v * 2.20462, 1) if unit == "kilogram" else round(v * 0.453592, 1)
            shown = f"{text} / {_printed(rng, other, 'pound' if unit == 'kilogram' else 'kilogram')}"
        rows.append((rng.choice(SPEC_KEYS[e]), shown))
        answers.append(_Answer(e, v, unit, text))
    for key, make in rng.sample(SPEC_EXTRAS, rng.randint(2, 4)):
        rows.append((key, make(rng)))
    rng.shuffle(rows)
    x0, x1 = W * 0.07, W * 0.93
    y = max(H * 0.05, (H - s * 0.11 - len(rows) * s * 0.095) / 2)  # centred when it fits
    head_fill = p.color(light=False)
    title = rng.choice(("Specifications", "Product Parameters", "Technical Data", "Specs"))
    p.d.rectangle([x0, y, x1, y + s * 0.11], fill=head_fill)
    p.text((W / 2, y + s * 0.055), f"{product} - {title}", s * 0.05, _ink(head_fill), "mm", p.head, (x1 - x0) * 0.92)
    y += s * 0.11
    rh = min(s * 0.095, (H * 0.92 - y) / len(rows))
    shade = (rng.randint(225, 245), rng.randint(225, 245), rng.randint(230, 250))
    size = rh * 0.5
    key_w = max(p.measure(k, size, p.head)[0] for k, _ in rows)
    split = x0 + min(key_w + s * 0.05, (x1 - x0) * 0.55)
    for k, (key, val) in enumerate(rows):
        fill = shade if k % 2 == 0 else (252, 252, 252)
        p.d.rectangle([x0, y, x1, y + rh], fill=fill, outline=(180, 180, 180))
        p.d.line([(split, y), (split, y + rh)], fill=(180, 180, 180), width=2)
        p.text((x0 + s * 0.02, y + rh / 2), key, size, (40, 40, 45), "lm", p.head, split - x0 - s * 0.04)
        p.text((split + s * 0.02, y + rh / 2), val, size, (20, 20, 25), "lm", None, x1 - split - s * 0.04)
        y += rh
    keep = [a for a in answers if rng.random() < 0.8] or [rng.choice(answers)]
    return keep


def _battery(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    v = rng.choice((3.7, 7.2, 10.8, 12.0, 14.4, 18.0, 20.0, 24.0, 36.0, 40.0, 48.0))
    ah = rng.choice((1.5, 2.0, 3.0, 4.0, 5.0, 6.0))
    wh = round(v * ah)
    x0, x1, y0, y1 = W * 0.12, W * 0.88, H * 0.2, H * 0.8
    body = rng.choice(((30, 30, 35), (20, 60, 110), (60, 60, 60), (15, 110, 120), (200, 60, 30)))
    p.d.rounded_rectangle([x0, y0 - s * 0.06, x1, y0 + s * 0.03], radius=s * 0.03, fill=_shade(body, 0.6))
    p.d.rounded_rectangle([x0, y0, x1, y1], radius=s * 0.04, fill=body)
    accent = rng.choice(((250, 200, 20), (240, 240, 240), (250, 120, 30), (90, 200, 90)))
    p.d.rectangle([x0, y1 - s * 0.08, x1, y1 - s * 0.04], fill=accent)
    main = _printed(rng, v, "volt", space=rng.random() < 0.3)
    shown = main + (" MAX" if rng.random() < 0.35 else "")
    cx = (x0 + x1) / 2
    b = p.text((cx, y0 + s * 0.06), shown, s * rng.uniform(0.13, 0.17), accent, "mt", p.head, (x1 - x0) * 0.8)
    b = p.text((cx, b[3] + s * 0.04), f"{_num(ah)}Ah   {wh}Wh", s * 0.055, (240, 240, 240), "mt", None,
               (x1 - x0) * 0.85)
    b = p.text((cx, b[3] + s * 0.03), rng.choice(("Li-ion", "Lithium-Ion", "Li-ion Battery Pack")), s * 0.04,
               (230, 230, 230), "mt", None, (x1 - x0) * 0.85)
    p.text((x0 + s * 0.03, y1 - s * 0.11), f"Model {rng.choice('BDM')}L{rng.randint(10, 99)}{int(ah * 10)}",
           s * 0.032, (220, 220, 220), "lb")
    return [_Answer("voltage", v, "volt", main)]


CHARGERS = ((5.0, 2.0, 10), (5.0, 3.0, 15), (9.0, 2.0, 18), (12.0, 2.0, 24), (12.0, 3.0, 36), (15.0, 3.0, 45),
            (19.0, 3.42, 65), (19.5, 3.33, 65), (20.0, 3.25, 65), (20.0, 4.5, 90), (20.0, 5.0, 100),
            (24.0, 2.5, 60), (24.0, 5.0, 120))


def _charger(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    v, amps, watts = rng.choice(CHARGERS)
    body = rng.choice(((245, 245, 245), (35, 35, 40), (215, 215, 220)))
    ink = _ink(body)
    x0, x1, y0, y1 = W * 0.1, W * 0.9, H * 0.12, H * 0.88
    p.d.rounded_rectangle([x0, y0, x1, y1], radius=s * 0.07, fill=body, outline=_shade(body, 0.8), width=3)
    cx, bw = (x0 + x1) / 2, x1 - x0
    wtext = _printed(rng, float(watts), "watt", space=False)
    b = p.text((cx, y0 + s * 0.06), wtext, s * 0.11, ink, "mt", p.head)
    b = p.text((cx, b[3] + s * 0.03), rng.choice(("USB-C Power Adapter", "AC Adapter", "Laptop Charger",
                                                  "Switching Power Supply")), s * 0.045, ink, "mt", None, bw * 0.85)
    vout = _printed(rng, v, "volt", space=False)
    lines = [f"Model: {rng.choice(('PA', 'AD', 'HK', 'ADP'))}-{watts}{rng.choice('ABCDE')}{rng.randint(1, 9)}",
             f"Input: 100-240V~ 50/60Hz {rng.choice((0.8, 1.0, 1.5, 1.7))}A",
             f"Output: {vout} {rng.choice(('DC ', '= ', ''))}{_num(amps)}A"]
    if rng.random() < 0.4:
        lines.insert(1, f"S/N {rng.randint(10 ** 7, 10 ** 8 - 1)}")
    y = b[3] + s * 0.06
    size = s * rng.uniform(0.04, 0.048)
    for t in lines:
        b = p.text((x0 + bw * 0.07, y), t, size, ink, "lt", None, bw * 0.86)
        y = b[3] + s * 0.03
    x = x0 + bw * 0.07
    for mark in rng.sample(("CE", "UL", "FC", "RoHS"), 3):
        w, h = p.measure(mark, s * 0.04, p.head)
        p.d.rectangle([x, y + s * 0.02, x + w + s * 0.03, y + s * 0.02 + h + s * 0.03], outline=ink, width=3)
        p.text((x + s * 0.015, y + s * 0.035), mark, s * 0.04, ink, "lt", p.head)
        x += w + s * 0.06
    answers = [_Answer("voltage", v, "volt", vout), _Answer("wattage", float(watts), "watt", wtext)]
    return [a for a in answers if rng.random() < 0.8] or [rng.choice(answers)]


def _power(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    body = p.color(light=rng.random() < 0.6)
    x0, x1, y0, y1 = W * 0.15, W * 0.7, H * 0.15, H * 0.85
    if rng.random() < 0.5:  # a heater: a panel with grille slots
        p.d.rounded_rectangle([x0, y0, x1, y1], radius=s * 0.05, fill=body)
        for k in range(8):
            yy = y0 + (y1 - y0) * (0.15 + 0.08 * k)
            p.d.rounded_rectangle([x0 + s * 0.06, yy, x1 - s * 0.06, yy + s * 0.02], radius=s * 0.01,
                                  fill=_shade(body, 0.7))
    else:  # a kettle: a trapezoid body, a lid and a handle
        p.d.polygon([(x0 + s * 0.08, y0 + s * 0.1), (x1 - s * 0.08, y0 + s * 0.1), (x1, y1), (x0, y1)], fill=body)
        p.d.ellipse([x0 + s * 0.1, y0 + s * 0.04, x1 - s * 0.1, y0 + s * 0.16], fill=_shade(body, 0.8))
        p.d.arc([x1 - s * 0.12, y0 + s * 0.15, x1 + s * 0.12, y1 - s * 0.15], 270, 90, fill=_shade(body, 0.6),
                width=max(6, s // 40))
    if rng.random() < 0.15:
        v, unit = rng.choice((1.5, 2.0, 2.2, 3.0)), "kilowatt"
    else:
        v, unit = float(rng.choice((600, 800, 1000, 1200, 1500, 1800, 2000, 2200, 2500, 3000))), "watt"
    main = _printed(rng, v, unit, space=False)
    badge = rng.choice(((220, 40, 40), (250, 170, 0), (20, 110, 200), (30, 30, 30)))
    bx, by = W * 0.72, H * rng.uniform(0.25, 0.4)
    p.badge(bx, by, main, s * 0.085, badge, round_=rng.random() < 0.5, max_w=W * 0.42)
    answers = [_Answer("wattage", v, unit, main)]
    vmode = rng.random()
    if vmode < 0.4:
        vv = float(rng.choice((120, 220, 230, 240)))
        vtext = _printed(rng, vv, "volt", space=False)
        p.text((W * 0.5, H * 0.93), f"{vtext}~ {rng.choice(('50Hz', '60Hz', '50/60Hz'))}", s * 0.05, (30, 30, 30),
               "mb", p.head, W * 0.9)
        answers.append(_Answer("voltage", vv, "volt", vtext))
    elif vmode < 0.7:
        p.text((W * 0.5, H * 0.93), "220-240V~ 50/60Hz", s * 0.05, (30, 30, 30), "mb", p.head, W * 0.9)
    elif rng.random() < P_ABSENT_ROW * 3:
        answers.append(_Answer("voltage", None))
    dis = rng.choice(("3 heat settings", f"{rng.randint(2, 5)} Speeds", f"Timer {rng.choice((8, 12, 24))}h",
                      f"Model HX-{rng.randint(100, 999)}", "Auto shut-off"))
    p.text((W * 0.72, by + s * 0.2), dis, s * 0.04, (40, 40, 40), "mt", None, W * 0.5)
    return answers


def _max_load(rng: random.Random) -> tuple[float, str, str]:
    if rng.random() < 0.55:
        v = float(rng.choice((15, 20, 25, 50, 80, 100, 120, 136, 150, 180, 200, 250, 300)))
        return v, "kilogram", _printed(rng, v, "kilogram")
    v = float(rng.choice((33, 44, 50, 100, 220, 250, 265, 300, 330, 400, 500)))
    return v, "pound", _printed(rng, v, "pound")


def _max_load_kind(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    frame = p.color(light=False)
    x0, x1, y0, y1 = W * 0.08, W * 0.5, H * 0.1, H * 0.9
    post = max(6, s // 60)
    for x in (x0, x1 - post):
        p.d.rectangle([x, y0, x + post, y1], fill=frame)
    tiers = rng.randint(3, 5)
    wood = p.color(light=True)
    for k in range(tiers):
        yy = y0 + (y1 - y0) * (k + 0.5) / tiers
        p.d.rectangle([x0 - s * 0.01, yy, x1 + s * 0.01, yy + s * 0.03], fill=wood, outline=_shade(wood, 0.7))
    v, unit, main = _max_load(rng)
    shown = rng.choice((f"Max load {main}", f"MAX {main}", f"Load capacity: {main}", f"Holds up to {main}"))
    cx = W * 0.76
    # a kettlebell icon above the claim
    ky = H * 0.22
    r = s * 0.08
    p.d.ellipse([cx - r, ky - r * 0.6, cx + r, ky + r * 1.2], fill=(40, 40, 45))
    p.d.arc([cx - r * 0.6, ky - r * 1.3, cx + r * 0.6, ky - r * 0.1], 180, 360, fill=(40, 40, 45), width=max(6, s // 60))
    p.text((cx, ky + r * 0.3), "MAX", s * 0.035, (240, 240, 240), "mm", p.head)
    b = p.text((cx, ky + r * 1.5), shown, s * 0.055, (20, 20, 25), "mt", p.head, W * 0.44)
    if rng.random() < 0.5:
        other = round(v * 2.20462) if unit == "kilogram" else round(v * 0.453592)
        b = p.text((cx, b[3] + s * 0.02), f"({_printed(rng, float(other), 'pound' if unit == 'kilogram' else 'kilogram')})",
                   s * 0.04, (60, 60, 60), "mt", None, W * 0.44)
    b = p.text((cx, b[3] + s * 0.06), f"{tiers} Tiers", s * 0.045, (60, 60, 60), "mt", None, W * 0.44)
    answers = [_Answer("maximum_weight_recommendation", v, unit, main)]
    if rng.random() < 0.45:
        wv = rng.choice((1.8, 2.5, 3.2, 4.5, 6.0, 8.5))
        wt = _printed(rng, wv, "kilogram")
        p.text((cx, b[3] + s * 0.06), f"Item weight: {wt}", s * 0.042, (50, 50, 55), "mt", None, W * 0.44)
        answers.append(_Answer("item_weight", wv, "kilogram", wt))
    return answers


def _dim_text(rng: random.Random, cm: float) -> tuple[float, str, str, str]:
    """A length as printed: (value, unit printed first, that printed value, the conversion after it)."""
    unit = rng.choices(("inch", "centimetre", "millimetre"), (0.45, 0.43, 0.12))[0]
    if unit == "inch":
        v = round(cm / 2.54 * 2) / 2 or 0.5
        other = float(round(v * 2.54))
        ounit = "centimetre"
    elif unit == "centimetre":
        v = float(round(cm)) if rng.random() < 0.8 else round(cm * 2) / 2
        other = round(v / 2.54, 1)
        ounit = "inch"
    else:
        v = float(round(cm * 10 / 5) * 5)
        other, ounit = None, ""
    main = _printed(rng, v, unit)
    conv = ""
    if other is not None and rng.random() < 0.6:
        sep = rng.choice(("/ ", "| ", "("))
        conv = f"{sep}{_printed(rng, other, ounit)}{')' if sep == '(' else ''}"
    return v, unit, main, conv


def _dimensions(p: _Painter) -> list[_Answer]:
    rng, W, H, s = p.rng, p.W, p.H, p.s
    flat = rng.random() < 0.35
    wcm, hcm = rng.uniform(15, 180), rng.uniform(10, 180)
    dcm = rng.uniform(8, 80)
    letters = rng.random() < 0.55
    parts: dict[str, tuple[str, str]] = {}
    answers = []
    for ent, cm, letter in (("width", wcm, "W"), ("height", hcm, "H"), ("depth", dcm, "D")):
        if flat and ent == "depth":
            continue
        v, unit, main, conv = _dim_text(rng, cm)
        first = main
        if letters:
            word = {"W": "Width", "H": "Height", "D": "Depth"}[letter]
            first = rng.choice((f"{letter}: {main}", f"{letter} {main}", f"{word}: {main}"))
        parts[ent] = (first, conv)
        answers.append(_Answer(ent, v, unit, main))
    ink = rng.choice(((20, 20, 25), (30, 60, 140), (150, 30, 30), (40, 40, 40)))
    size = s * rng.uniform(0.045, 0.058)
    # layout: height label on the left, width label below (3D) or above (flat), depth label right.
    # Side labels that leave under 40% of the width to the drawing break before their conversion,
    # then shrink (never below ~0.036 of the image, which stays readable).
    labels = {e: [f"{a} {b}" if b else a] for e, (a, b) in parts.items()}
    while True:
        lw = {e: max(p.measure(t, size)[0] for t in ls) for e, ls in labels.items()}
        lh = p.measure("Hg0", size)[1]
        left = lw["height"] + s * 0.12
        right = (lw["depth"] + s * 0.1) if "depth" in labels else s * 0.06
        if left + right <= W - 0.4 * s:
            break
        split = [e for e in ("height", "depth") if e in labels and len(labels[e]) == 1 and parts[e][1]]
        if split:
            e = max(split, key=lambda e: lw[e])
            labels[e] = [parts[e][0], parts[e][1]]
        elif size > s * 0.036:
            size *= 0.94
        else:
            break
    top = s * 0.08 + (lh * 2 + s * 0.06 if flat else 0)
    bottom = s * 0.06 + (0 if flat else lh + s * 0.1) + (s * 0.12 if flat else 0)
    avail_w = max(W - left - right, s * 0.3)
    avail_h = max(H - top - bottom, s * 0.3)
    if flat:
        scale = min(avail_w / wcm, avail_h / hcm)
        fw, fh, dx, dy = wcm * scale, hcm * scale, 0.0, 0.0
    else:
        dproj = 0.5  # oblique projection: depth drawn at half length, 35 degrees
        cos, sin = math.cos(math.radians(35)), math.sin(math.radians(35))
        scale = min(avail_w / (wcm + dcm * dproj * cos), avail_h / (hcm + dcm * dproj * sin))
        fw, fh = wcm * scale, hcm * scale
        dpx = max(dcm * scale * dproj, s * 0.1)  # a short depth arrow would carry an unreadable label
        dx, dy = dpx * cos, dpx * sin
    fw, fh = max(fw, s * 0.18), max(fh, s * 0.18)
    fw = min(fw, avail_w - dx)
    x0 = left + (avail_w - fw - dx) / 2
    y1 = top + dy + (avail_h - fh - dy) / 2 + fh
    y0 = y1 - fh
    x1 = x0 + fw
    face = p.color(light=True)
    edge = (60, 60, 60)
    if not flat:
        side, topc = _shade(face, 0.8), _shade(face, 0.92)
        p.d.polygon([(x1, y0), (x1 + dx, y0 - dy), (x1 + dx, y1 - dy), (x1, y1)], fill=side, outline=edge)
        p.d.polygon([(x0, y0), (x0 + dx, y0 - dy), (x1 + dx, y0 - dy), (x1, y0)], fill=topc, outline=edge)
    p.d.rectangle([x0, y0, x1, y1], fill=face, outline=edge, width=3)
    if flat:  # a screen / frame inset
        m = min(fw, fh) * 0.06
        p.d.rectangle([x0 + m, y0 + m, x1 - m, y1 - m], fill=_shade(face, 0.35))
        if rng.random() < 0.5:
            p.d.rectangle([(x0 + x1) / 2 - fw * 0.05, y1, (x0 + x1) / 2 + fw * 0.05, y1 + s * 0.05], fill=edge)
            p.d.rectangle([(x0 + x1) / 2 - fw * 0.2, y1 + s * 0.05, (x0 + x1) / 2 + fw * 0.2, y1 + s * 0.065],
                          fill=edge)
    else:  # door lines, handles
        for k in range(1, rng.randint(1, 3)):
            xx = x0 + fw * k / 3
            p.d.line([(xx, y0), (xx, y1)], fill=edge, width=2)
    lwid, head = max(3, s // 250), s * 0.025
    gap = s * 0.025
    # height: vertical arrow left of the front face, label to its left, vertically centred
    ax = x0 - s * 0.05
    p.d.line([(ax - gap / 2, y0), (x0 - 4, y0)], fill=ink, width=1)
    p.d.line([(ax - gap / 2, y1), (x0 - 4, y1)], fill=ink, width=1)
    p.arrow((ax, y0), (ax, y1), ink, lwid, head)
    p.block((ax - gap, (y0 + y1) / 2), labels["height"], size, ink, "rm")
    # width: horizontal arrow below (3D) or above (flat) the front face, label centred beyond it
    wl = labels["width"][0]
    wsize = p.fit(wl, size, W - s * 0.08)
    half = p.measure(wl, wsize)[0] / 2
    wx = min(max((x0 + x1) / 2, half + s * 0.04), W - half - s * 0.04)  # centred, but inside the image
    if flat:
        ay = y0 - s * 0.05
        p.arrow((x0, ay), (x1, ay), ink, lwid, head)
        p.text((wx, ay - gap), wl, wsize, ink, "mb")
    else:
        ay = y1 + s * 0.05
        p.arrow((x0, ay), (x1, ay), ink, lwid, head)
        p.text((wx, ay + gap), wl, wsize, ink, "mt")
    if "depth" in labels:
        off = s * 0.035
        q0, q1 = (x1 + off, y1 + off * 0.3), (x1 + dx + off, y1 - dy + off * 0.3)
        p.arrow(q0, q1, ink, lwid, head)
        p.block(((q0[0] + q1[0]) / 2 + gap, (q0[1] + q1[1]) / 2 + gap), labels["depth"], size, ink, "lt")
    elif rng.random() < 0.5:  # a TV-style diagonal: a distractor that answers nothing
        m = min(fw, fh) * 0.1
        p.arrow((x0 + m, y1 - m), (x1 - m, y0 + m), (235, 235, 235), lwid, head)
        diag = round(math.hypot(wcm, hcm) / 2.54)
        dt = f'{diag}" diagonal'
        dsz = p.fit(dt, size * 0.9, fw * 0.8)
        tw, th = p.measure(dt, dsz)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        p.d.rectangle([cx - tw / 2 - 6, cy - th / 2 - 6, cx + tw / 2 + 6, cy + th / 2 + 6], fill=_shade(face, 0.35))
        p.text((cx, cy), dt, dsz, (245, 245, 245), "mm")
    if rng.random() < 0.4:
        p.text((W - s * 0.03, H - s * 0.03), rng.choice((f"Model {rng.randint(2018, 2025)}",
                                                           f"Weight: {rng.randint(2, 40)} kg", "Assembly required")),
               s * 0.032, (90, 90, 90), "rb")
    keep = [a for a in answers if rng.random() < 0.85] or answers[:1]
    if flat and rng.random() < 0.8:
        keep.append(_Answer("depth", None))
    return keep


DRAW = {"dimensions": _dimensions, "packaging": _packaging, "spec_table": _spec_table, "bottle": _bottle,
        "battery": _battery, "charger": _charger, "power": _power, "max_load": _max_load_kind}
# Entities a row may ask about that the kind never shows (truth ""); extra rows pick one of these.
ABSENT = {"dimensions": ("item_weight",), "packaging": ("item_volume", "maximum_weight_recommendation"),
          "spec_table": ("depth", "width"), "bottle": ("item_weight",), "battery": ("wattage", "item_weight"),
          "charger": ("item_weight", "height"), "power": ("item_weight",), "max_load": ("depth", "wattage")}


# ----------------------------------------------------------------------------------------- one image

def _background(rng: random.Random, nrng: np.random.Generator, W: int, H: int) -> Image.Image:
    r = rng.random()
    if r < 0.45:
        return Image.new("RGB", (W, H), (255, 255, 255))
    if r < 0.65:
        return Image.new("RGB", (W, H), tuple(rng.randint(228, 252) for _ in range(3)))
    if r < 0.85:
        a = np.array([rng.randint(215, 255) for _ in range(3)], dtype=np.float32)
        b = np.array([rng.randint(215, 255) for _ in range(3)], dtype=np.float32)
        t = np.linspace(0.0, 1.0, H if rng.random() < 0.5 else W, dtype=np.float32)[:, None]
        ramp = a + (b - a) * t
        arr = (np.broadcast_to(ramp[:, None, :], (H, W, 3)) if len(t) == H
               else np.broadcast_to(ramp[None, :, :], (H, W, 3)))
        return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8), "RGB")
    base = np.array([rng.randint(205, 245) for _ in range(3)], dtype=np.float32)
    coarse = nrng.normal(0.0, 10.0, size=(max(2, H // 48), max(2, W // 48), 1)).astype(np.float32)
    coarse_img = Image.fromarray(np.clip(coarse[:, :, 0] + 128, 0, 255).astype(np.uint8), "L")
    smooth = np.asarray(coarse_img.resize((W, H), Image.Resampling.BICUBIC), dtype=np.float32)[:, :, None] - 128
    return Image.fromarray(np.clip(base + smooth, 0, 255).astype(np.uint8), "RGB")


def render(seed: int, i: int, kind: str | None = None) -> tuple[Image.Image, str, list[_Answer], int]:
    """Image i of the data set with this seed: (image, kind, answers, JPEG quality). Pure."""
    rng = random.Random(seed * 1_000_003 + i)
    nrng = np.random.default_rng([seed, i])
    if kind is None:
        # the first images cycle through every kind, so even a small set shows all eight entities
        kind = KINDS[i] if i < len(KINDS) else rng.choices(KINDS, KIND_WEIGHTS)[0]
    size = rng.choice((800, 880, 960, 1000, 1080))
    aspect = rng.choice((1.0, 1.0, 1.0, 0.8, 1.25))
    if kind == "dimensions":  # side labels need the width
        aspect = max(aspect, 1.0)
    W, H = (size, int(size / aspect)) if aspect >= 1 else (int(size * aspect), size)
    p = _Painter(rng, W, H)
    answers = DRAW[kind](p)
    shown = {a.entity for a in answers}
    absent = [e for e in ABSENT[kind] if e not in shown]
    if absent and rng.random() < P_ABSENT_ROW:
        answers.append(_Answer(rng.choice(absent), None))
    layer = p.layer
    if rng.random() < 0.65:
        layer = layer.rotate(rng.uniform(-6.0, 6.0), resample=Image.Resampling.BILINEAR)
    img = _background(rng, nrng, W, H).convert("RGBA")
    if rng.random() < 0.3:  # a soft drop shadow under the product
        off = p.s // 60
        alpha = layer.getchannel("A").point(lambda a: 90 if a else 0).filter(ImageFilter.BoxBlur(off))
        shadow = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        shadow.putalpha(alpha)
        img.alpha_composite(shadow, (off, off))
    img.alpha_composite(layer)
    img = img.convert("RGB")
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    if rng.random() < 0.3:
        arr = np.asarray(img, dtype=np.int16) + nrng.normal(0, rng.uniform(2, 6), (H, W, 1)).astype(np.int16)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    quality = rng.randint(60, 95)
    return img, kind, answers, quality


def _write_jpeg(img: Image.Image, path: Path, quality: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, "JPEG", quality=quality, subsampling=2, optimize=False, progressive=False)
    os.replace(tmp, path)


def image_name(seed: int, i: int) -> str:
    return f"syn{seed}_{i:05d}.jpg"


def _render_one(job: tuple[int, int, str]) -> tuple[str, list[tuple[str, str, str]]]:
    seed, i, images_dir = job
    img, kind, answers, quality = render(seed, i)
    _write_jpeg(img, Path(images_dir) / image_name(seed, i), quality)
    return kind, [(a.entity, a.truth, a.text) for a in answers]


# -------------------------------------------------------------------------------------------- data set

def generate(out_dir: str | os.PathLike, n: int, seed: int = 0, *, base_url: str | None = None,
             test_fraction: float = TEST_FRACTION, workers: int = 1, progress: bool = False) -> dict[str, Path]:
    """Render n images into out_dir/images and write train.csv, test.csv, labels.csv and meta.csv.

    Images are split by kind between train and test (`test_fraction` of each kind's images go to
    test), so both halves show every kind once n is large enough. `workers` > 1 renders in processes;
    the output does not depend on it. Returns the paths written, by name.
    """
    import pandas as pd

    from amlc.errors import InputError
    from amlc.tables import make_dirs, write_csv

    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    if not 0.0 <= test_fraction <= 1.0:
        raise InputError(f"test fraction must be in [0, 1], got {test_fraction}")
    out = Path(out_dir)
    images = make_dirs(out / "images")
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    jobs = [(seed, i, str(images)) for i in range(n)]
    if workers > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(_progress(pool.map(_render_one, jobs, chunksize=8), n, progress))
    else:
        results = [_render_one(j) for j in _progress(jobs, n, progress)]
    seen: dict[str, int] = {}
    meta = []
    for i, (kind, rows) in enumerate(results):
        j = seen.get(kind, 0)
        seen[kind] = j + 1
        split = "test" if math.floor((j + 1) * test_fraction) > math.floor(j * test_fraction) else "train"
        name = image_name(seed, i)
        group = GROUP_IDS[kind][i % len(GROUP_IDS[kind])]
        for entity, truth, text in rows:
            meta.append({"image": name, "image_link": f"{base}/{name}", "group_id": group, "kind": kind,
                         "split": split, "entity_name": entity, "entity_value": truth, "answer_text": text})
    df = pd.DataFrame(meta)
    train = df[(df.split == "train") & (df.entity_value != "")][["image_link", "group_id", "entity_name",
                                                                  "entity_value"]]
    test = df[df.split == "test"].reset_index(drop=True)
    test.insert(0, "index", range(len(test)))
    paths = {
        "train": write_csv(train, out / "train.csv"),
        "test": write_csv(test[["index", "image_link", "group_id", "entity_name"]], out / "test.csv"),
        "labels": write_csv(test[["index", "image_link", "group_id", "entity_name", "entity_value"]],
                            out / "labels.csv"),
        "meta": write_csv(df[["image", "kind", "split", "entity_name", "entity_value", "answer_text"]],
                          out / "meta.csv"),
        "images": images,
    }
    return paths


def _progress(it, total: int, show: bool):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="render", unit="img")


def main(argv: Sequence[str] | None = None) -> int:
    from amlc.errors import ArgumentParser

    ap = ArgumentParser(
        prog="python -m amlc.synthetic",
        description="Render labelled synthetic product images (packaging, bottles, spec tables, battery and "
                    "charger labels, power badges, max-load claims, dimension drawings) for all eight "
                    "entities, and write train.csv / test.csv / labels.csv in the competition's layout.",
        epilog="Writes OUT/images/*.jpg, OUT/train.csv (image_link,group_id,entity_name,entity_value), "
               "OUT/test.csv (index,image_link,group_id,entity_name), OUT/labels.csv (test rows + "
               "entity_value; empty where the entity is not on the image) and OUT/meta.csv (every row "
               "with its image kind, split and the printed answer text). Labelling rules: see the "
               "module docstring (python -c 'import amlc.synthetic; help(amlc.synthetic)').")
    ap.add_argument("--out", required=True, help="output folder (images/ and the CSVs go here)")
    ap.add_argument("--n", type=int, required=True, help="number of images to render (each gives 1-4 rows)")
    ap.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical "
                                                         "images and CSVs (default 0)")
    ap.add_argument("--base-url", default=None,
                    help="image_link prefix, e.g. http://127.0.0.1:8000 when out/images is served there "
                         f"(default {DEFAULT_BASE_URL}, never fetched)")
    ap.add_argument("--test-fraction", type=float, default=TEST_FRACTION,
                    help=f"share of each kind's images that go to test.csv/labels.csv (default {TEST_FRACTION})")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                    help="render in this many processes; the output does not depend on it "
                         "(default: the CPU count, at most 4)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = generate(args.out, args.n, args.seed, base_url=args.base_url, test_fraction=args.test_fraction,
                     workers=args.workers, progress=sys.stderr.isatty())
    dt = time.perf_counter() - t0
    print(f"{args.n} images in {dt:.1f} s ({args.n / dt:.1f} images/s) -> {paths['images']}; "
          f"{paths['train']}, {paths['test']}, {paths['labels']}")
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
