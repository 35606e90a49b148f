"""The OCR engine's extractor: text boxes -> the one "number unit" mention that answers an entity.

Pure functions over `Box` lists (amlc.engines.ocr), no OCR and no I/O, so every rule is unit-tested on
hand-built boxes. Numbers and units are read by amlc.units only (find_mentions, resolve_unit,
range_value, format_value): this module decides WHICH mention, never how to parse one. What it does to
the text first is undo the recogniser's usual confusions ("8OKG", "0.43 0Z", and on drawings that
measure in inches elsewhere '31.4°' for 31.4"), and part a dimension's letter from its value ("H35cm").

1. Candidates: every mention in each box's text, in each run of neighbouring boxes on one line joined
   by spaces ("185" "cm" read as two boxes), and in a bare number joined to the box under it (or along
   its column, for vertical text), whose unit the entity allows (directly or by an exact conversion,
   units.resolve_unit). Ranges resolve by the range policy, except "10 - 0.43 oz" (a count, then the
   quantity). A tuple's unitless members ("2 x 60g") are pack counts except for dimensions.
2. Features per candidate (roughly in [-1, 1], 0 = no evidence), see `features`:
   keyword   an entity keyword next to the mention: before it in its own box (1.0), after it (0.7),
             in the box to its left on the same line (0.8; the nearest one further left, a table
             row's name, 0.5), in the box above (a column header, the line before, 0.6), right or
             below (0.4). Keywords are per entity (KEYWORDS), in the languages seen on packs.
   rival     the same for a competing entity's keywords ("Max load 150 kg" is no item_weight,
             "Width 40 cm" no height), counted only when stronger than the own keyword
   context   a nutrient's amount or a per-piece figure ("Protein 20 g", "12.3 g / ea"): the
             product's quantity never is. "Per 100 g" is NOT penalised: catalogue labels often
             take exactly that reference quantity.
   size      log of the box's text height over the page's median (clipped): headline text
   first     1 / (1 + rank in reading order): the competitors' baseline rule, still a prior
             (0 for dimensions: a drawing has no reading order)
   range     the mention is a range ("100-240V")
   implausible  outside what products carry (0.01 g .. 50 t, 1 mm .. 100 m ...)
   orient    dimensions only: does the callout fit the asked dimension? Vertical text is a height;
             else the direction of the line the label sits along (callout_direction over the
             image's straight segments: vertical -> height, horizontal -> width, slanted -> depth);
             else its place among the other callouts. A "W x D x H" tuple assigns by its letters.
   extent    dimensions only: the largest vertical value for height (the whole, not a part), the
             largest other one for width, the smallest for depth
   What the catalogue knows (amlc.catalogue, learned from train.csv), for the row's product group:
   cat_mag   how far the value lies from the group's usual magnitude (0 usual .. 5 far)
   has_twin, twin_cat  one quantity printed in two units side by side ("4.3 OZ (123 g)", "37in /
             94cm") is one answer, both sharing the better evidence; twin_cat is the log of how much
             more often the group's labels use this unit than its twin's
   Evidence that did not earn its place by cross-validation (choice accuracy no better without it:
   a repeated value, the recogniser's score, a drawing naming other dimensions, the order of twins,
   the group's unit share outside twins, the place on the page, vertical text beyond `orient`,
   membership of a tuple) is not gathered; bench/fit_ocr_model.py --ablation shows each one's worth.
3. Score: amlc.engines.ocr_model's pick model (a conditional logit fitted on the development sets)
   weighs the features; the highest score answers. Its weights, and the row models that say how
   likely the answer is right and whether the value is printed at all, are fitted and
   cross-validated by bench/fit_ocr_model.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING

from amlc.catalogue import Catalogue
from amlc.catalogue import load as load_catalogue
from amlc.engines.ocr_model import Model, rescored
from amlc.engines.ocr_model import load as load_model
from amlc.units import (BASE_FACTOR, DIMENSIONS, Mention, find_mentions, format_value, pack_count,
                        prepare_text, range_value, resolve_unit)

if TYPE_CHECKING:
    from amlc.engines.ocr import Box


# Words that name an entity next to its value (prepared text: lower case, NFKC). Matched as whole words.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "item_weight": ("net wt", "netwt", "net weight", "net wt.", "nett wt", "nett weight", "net", "nett",
                    "weight", "wt", "n.w", "nw", "peso", "peso neto", "poids", "poids net",
                    "gewicht", "netto", "nettogewicht", "contenu", "net content", "net contents",
                    "net quantity", "net qty", "item weight", "product weight", "weighs"),
    "maximum_weight_recommendation": ("max", "max.", "maximum", "max load", "load", "capacity",
                                      "load capacity", "weight capacity", "bearing", "load bearing",
                                      "up to", "supports", "support", "holds", "hold", "max weight",
                                      "recommended", "limit", "tragkraft", "belastbarkeit",
                                      "charge max", "carga"),
    "voltage": ("voltage", "volt", "input", "output", "rated voltage", "rated", "ac", "dc", "battery",
                "spannung", "tension", "power supply"),
    "wattage": ("power", "wattage", "rated power", "output", "max power", "input", "motor",
                "leistung", "puissance", "potencia", "rated"),
    "item_volume": ("volume", "vol", "net vol", "capacity", "contents", "content", "net content",
                    "net contents", "net", "contenance", "inhalt", "contenido", "e", "℮", "net qty"),
    "height": ("h", "height", "high", "tall", "hauteur", "höhe", "altura", "ht"),
    "width": ("w", "width", "wide", "breite", "largeur", "ancho", "diameter", "dia", "dia.", "ø",
              "⌀"),
    "depth": ("d", "depth", "deep", "thickness", "thick", "tiefe", "profondeur", "diameter", "dia",
              "dia.", "ø", "⌀"),
}
# Entities whose keywords, next to a value, say it answers something else.
RIVALS: dict[str, tuple[str, ...]] = {
    "item_weight": ("maximum_weight_recommendation",),
    "maximum_weight_recommendation": ("item_weight",),
    "height": ("width", "depth", "length"),
    "width": ("height",),
    "depth": ("height",),
    "voltage": (),
    "wattage": (),
    "item_volume": (),
}
EXTRA_KEYWORDS: dict[str, tuple[str, ...]] = {
    "length": ("l", "length", "long", "len", "länge", "longueur"),
}
# A nutrient's amount is never the product's quantity ("Protein 20 g", "Total Fat 3 g"). "Per 100 g"
# and "serving size" are NOT here: catalogue labels often take exactly that reference quantity.
NUTRIENTS = ("protein", "proteins", "fat", "fats", "carb", "carbs", "carbohydrate", "carbohydrates",
             "sugar", "sugars", "fibre", "fiber", "sodium", "salt", "calories", "kcal", "kj",
             "energy", "saturated", "cholesterol", "dietary", "vitamin", "calcium", "iron",
             "potassium", "magnesium", "zinc", "trans", "polyunsaturated", "monounsaturated",
             "glucides", "lipides", "proteines", "eiweiß", "fett", "zucker", "extract", "omega")

# Plausible values, in one base unit per entity: a product weighs 10 mg to 50 t, runs on 1 mV..100 kV,
# draws 0.1 W..200 kW, holds 0.1 ml..100 m3, measures 1 mm..100 m. Outside: a misread or a code.
_PLAUSIBLE = {
    "item_weight": (0.01, 5e7), "maximum_weight_recommendation": (0.1, 5e7),
    "voltage": (0.001, 1e5), "wattage": (0.1, 2e5), "item_volume": (0.1, 1e8),
    "width": (1.0, 1e5), "height": (1.0, 1e5), "depth": (1.0, 1e5),
}


@dataclass
class Candidate:
    prediction: str  # format_value(value, unit): what the engine answers if this one wins
    value: float
    unit: str
    text: str  # the mention as read
    boxes: tuple[int, ...]  # indices of the boxes it was read from
    mention: Mention
    start: int  # the mention's span in the (prepared) source text
    end: int
    source: str  # the prepared text the span indexes
    order: int = 0  # rank in reading order among the entity's candidates
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # the pick model's score
    share: float = 0.0  # softmax of the scores over the row: this candidate's share of the choice


@dataclass
class Pick:
    prediction: str
    share: float  # the winner's share of the choice (Candidate.share); 0.0 when nothing was found
    text: str
    candidates: int
    ranked: list[Candidate] = field(default_factory=list)


# ----------------------------------------------------------------------------------- candidates


def _line_runs(boxes: Sequence[Box]) -> list[list[int]]:
    """Runs of box indices that read as one phrase: same line, left to right, small gaps."""
    from amlc.engines.ocr import reading_order

    index = {id(b): i for i, b in enumerate(boxes)}
    runs = []
    for line in reading_order(list(boxes)):
        run = [index[id(line[0])]]
        for prev, b in zip(line, line[1:]):
            gap = b.bbox[0] - prev.bbox[2]
            size = max(prev.text_height, b.text_height, 1.0)
            if gap <= 1.5 * size:
                run.append(index[id(b)])
            else:
                if len(run) > 1:
                    runs.append(run)
                run = [index[id(b)]]
        if len(run) > 1:
            runs.append(run)
    return runs


_INCH_RE = re.compile(r'\d\s*(?:"|\'\'|in\b|inch)')
_DEGREE_RE = re.compile(r"(\d)\s*(?:°|\*(?!\s*\d))")  # '31.4°' or '31.4*', not "422*345"
_GLUED_LETTER_RE = re.compile(r"(?<![a-z0-9])([hwdl])(?=\d)")


# The recogniser's usual confusions around quantities: the letter O for a zero inside a number
# ("8OKG", "1O0g"), a zero for the O of "oz" ("0.43 0Z", "4.0Z" for "4 OZ"), an I for the l of
# "ml" ("200 mI"), the estimated sign read as an e glued to the unit ("100g℮" -> "100ge").
_O_IN_NUMBER_RE = re.compile(r"(?<=\d)o(?=\d|\s?(?:kg|g|mg|ml|cm|mm|w|v|gsm)\b)")
_ZERO_OZ_RE = re.compile(r"(?<=\d)(\s?)0z\b")
_DOT_ZERO_OZ_RE = re.compile(r"(?<=\d)\.0z\b")
_MI_RE = re.compile(r"(?<=\d)(\s?)mi\b")
_GE_RE = re.compile(r"(?<=\d)(\s?)ge(?![a-z])")
# A label's name glued to its value ("NET WT3.5 LBS", "NETWT4.3OZ"): units rightly refuses a
# number glued to letters ("B12", "X500"), so the name is parted from it
_GLUED_NAME_RE = re.compile(r"(?<![a-z])(net\s?wt|wt|nw|gw|weight)([.:]?)(?=\d)")
# "26.8ln": the i of "in" read as an l (no product prints a natural log after a number)
_LN_RE = re.compile(r"(?<=\d)(\s?)ln\b")
# Spec tables put the unit in the row's name: "Product voltage (V): 110", "Weight (kg): 2.5"; the
# number then carries the unit (not when it has one, nor when it starts a "30 x 20" size)
_UNIT_IN_NAME_RE = re.compile(r"\((?P<unit>[a-zμ. ]{1,8})\)\s*[:：=]?\s*(?P<number>\d[\d.,]*)"
                              r"(?![\d.,]*\s*(?:[a-zμ\"'°]|[x*×]\s*\d))")


def _fix_ocr(t: str) -> str:
    if "o" in t:
        t = _O_IN_NUMBER_RE.sub("0", t)
    if "0z" in t:
        t = _ZERO_OZ_RE.sub(r"\1oz", _DOT_ZERO_OZ_RE.sub(" oz", t))
    if "mi" in t:
        t = _MI_RE.sub(r"\1ml", t)
    if "ge" in t:
        t = _GE_RE.sub(r"\1g", t)
    if "w" in t:
        t = _GLUED_NAME_RE.sub(r"\1\2 ", t)
    if "ln" in t:
        t = _LN_RE.sub(r"\1in", t)
    if "(" in t:
        t = _UNIT_IN_NAME_RE.sub(r": \g<number> \g<unit>", t)
    return t


# Paper and fabric weights are printed per square metre ("160GSM", "400 gsm paper"); the catalogue's
# item_weight labels take that number in grams (all 5 such rows of images_dev), so for item_weight
# a "gsm" after a number, or alone under one, reads as "g".
_GSM_RE = re.compile(r"(?:(?<=\d)|^)(\s?)gsm\b")


_BARE_NUMBER_RE = re.compile(r"^\s*\d[\d.,]*\s*$")


def _stacked_pairs(boxes: Sequence[Box], texts: Sequence[str]) -> list[tuple[int, int]]:
    """(i, j): box i holds a bare number and box j, next in its reading direction, what may be its
    unit: just below it ("0.423" over "OUNCES"), or for vertical text the box before or after it
    along the same column ("35.5" and "cm" read as two boxes up a height arrow)."""
    out = []
    for i, (b, t) in enumerate(zip(boxes, texts)):
        if not _BARE_NUMBER_RE.match(t):
            continue
        size = max(b.text_height, 1.0)
        best = None
        for j, o in enumerate(boxes):
            if j == i or o.vertical != b.vertical:
                continue
            overlap = min(b.bbox[2], o.bbox[2]) - max(b.bbox[0], o.bbox[0])
            if overlap <= 0:
                continue
            if b.vertical:  # either end of the column: bottom-to-top or top-to-bottom text
                gap = max(o.bbox[1] - b.bbox[3], b.bbox[1] - o.bbox[3])
            else:
                gap = o.bbox[1] - b.bbox[3]
            if -0.3 * size <= gap <= 1.0 * size and (best is None or gap < best[0]):
                best = (gap, j)
        if best is not None:
            out.append((i, best[1]))
    return out


def candidates(boxes: Sequence[Box], entity: str, range_policy: str = "max") -> list[Candidate]:
    """Every mention whose unit `entity` allows, from single boxes and from joined neighbours."""
    out: list[Candidate] = []
    seen: set[tuple[tuple[int, ...], int, int]] = set()

    def add(text: str, owners: list[tuple[int, int, int]]) -> None:
        # owners: (box index, start, end) of each box's part of `text`
        for m in find_mentions(text, prepared=True):
            if pack_count(m, entity):
                continue  # "2 x 60g": the 2 is a pack count, not 2 g (a size tuple shares its unit)
            resolved = resolve_unit(m.unit, entity)
            if resolved is None:
                continue
            if m.is_range and m.low >= 10 * m.high and m.high > 0:
                # "10 - 0.43 oz": a count before a quantity, not a range (which never spans x10
                # downwards); the quantity is the number with the unit
                value: float | None = m.high
            else:
                value = range_value(m, range_policy)
            if value is None:
                continue
            unit, factor = resolved
            value = float(f"{value * factor:.12g}") if factor != 1.0 else value
            if value <= 0 or not math.isfinite(value):
                continue
            ids = tuple(i for i, a, b in owners if a < m.end and m.start < b)
            if len(owners) > 1 and len(ids) < 2:
                continue  # inside one box: already read from that box alone
            # the span, made local to the first owner when the text is one box
            key = (ids, m.start, m.end) if len(ids) > 1 else (ids, m.start, m.end)
            if key in seen:
                continue
            seen.add(key)
            out.append(Candidate(format_value(value, unit), value, unit, m.text, ids, m,
                                 m.start, m.end, text))

    texts = [_fix_ocr(prepare_text(b.text)) for b in boxes]
    if entity == "item_weight" and any("gsm" in t for t in texts):
        texts = [_GSM_RE.sub(r"\1g", t) for t in texts]
    if entity in DIMENSIONS and any(_INCH_RE.search(t) for t in texts):
        # the recogniser often reads the inch mark as a degree sign or an asterisk ("31.4°",
        # "31.4*"); on a drawing that measures in inches elsewhere, such a mark after a number is an inch
        texts = [_DEGREE_RE.sub(r'\1"', t) for t in texts]
    if entity in DIMENSIONS:
        # "H35cm", "D10.5cm": a dimension's letter glued to its value; apart, units reads the value
        # (it rightly refuses "B12" or "X500" as quantities) and the letter counts as a keyword
        texts = [_GLUED_LETTER_RE.sub(r"\1 ", t) for t in texts]
    for i, t in enumerate(texts):
        add(t, [(i, 0, len(t))])
    for run in _line_runs(boxes):
        parts, owners, pos = [], [], 0
        for i in run:
            t = texts[i]
            owners.append((i, pos, pos + len(t)))
            parts.append(t)
            pos += len(t) + 1
        add(" ".join(parts), owners)
    for i, j in _stacked_pairs(boxes, texts):
        a, b = texts[i], texts[j]
        add(a + " " + b, [(i, 0, len(a)), (j, len(a) + 1, len(a) + 1 + len(b))])
    # reading order: boxes come in reading order, mentions within a box left to right
    out.sort(key=lambda c: (min(c.boxes), c.start))
    for k, c in enumerate(out):
        c.order = k
    return out


# ------------------------------------------------------------------------------------- keywords

_KW_RE_CACHE: dict[tuple[str, ...], re.Pattern] = {}


def _kw_re(words: tuple[str, ...]) -> re.Pattern:
    pat = _KW_RE_CACHE.get(words)
    if pat is None:
        alts = sorted({re.escape(w) for w in words}, key=len, reverse=True)
        # whole words: not glued to another letter ("h" in "h35cm" and "35cm(h)" yes, in "inch" no)
        pat = re.compile(r"(?<![a-zà-ÿ])(?:" + "|".join(alts) + r")(?![a-zà-ÿ])")
        _KW_RE_CACHE[words] = pat
    return pat


def _words_for(name: str) -> tuple[str, ...]:
    return KEYWORDS.get(name) or EXTRA_KEYWORDS.get(name, ())


def _near_in_text(source: str, start: int, end: int, words: tuple[str, ...],
                  before: int = 28, after: int = 16) -> float:
    """Keyword strength inside the candidate's own text: just before (1.0) or after (0.7) the value."""
    pat = _kw_re(words)
    best = 0.0
    lo = max(0, start - before)
    for m in pat.finditer(source, lo, start):
        between = source[m.end():start]
        if re.search(r"\d", between):  # another number in between: the word belongs to it
            continue
        best = max(best, 1.0)
    for m in pat.finditer(source, end, min(len(source), end + after)):
        between = source[end:m.start()]
        if re.search(r"\d", between):
            continue
        best = max(best, 0.7)
    return best


def _neighbours(boxes: Sequence[Box], ids: tuple[int, ...]) -> list[tuple[int, float]]:
    """(box index, weight) of the boxes around a candidate.

    Left on the same line: 0.8 when close (a label and its value), 0.5 for the nearest one further
    away (a table row's name); above: 0.6 (a column header, the line before); right or below: 0.4.
    """
    own = [boxes[i] for i in ids]
    x0 = min(b.bbox[0] for b in own)
    y0 = min(b.bbox[1] for b in own)
    x1 = max(b.bbox[2] for b in own)
    y1 = max(b.bbox[3] for b in own)
    size = max(max(b.text_height for b in own), 1.0)
    cy = (y0 + y1) / 2
    cx = (x0 + x1) / 2
    out = []
    far_left: tuple[float, int] | None = None
    for j, b in enumerate(boxes):
        if j in ids:
            continue
        bx0, by0, bx1, by1 = b.bbox
        same_line = by0 - size * 0.3 <= cy <= by1 + size * 0.3 and not b.vertical
        h_overlap = min(x1, bx1) - max(x0, bx0)
        if same_line and -0.5 * size <= x0 - bx1 <= 4 * size and bx0 < x0:
            out.append((j, 0.8))
        elif same_line and x0 - bx1 > 4 * size:
            if far_left is None or x0 - bx1 < far_left[0]:
                far_left = (x0 - bx1, j)
        elif same_line and 0 <= bx0 - x1 <= 2 * size:
            out.append((j, 0.4))
        elif 0 <= y0 - by1 <= 2.5 * size and (h_overlap > 0 or abs((bx0 + bx1) / 2 - cx) < 3 * size):
            out.append((j, 0.6))
        elif 0 <= by0 - y1 <= 1.5 * size and h_overlap > 0:
            out.append((j, 0.4))
    if far_left is not None and not any(w == 0.8 for _, w in out):
        out.append((far_left[1], 0.5))
    return out


def keyword_strength(c: Candidate, boxes: Sequence[Box], words: tuple[str, ...],
                     neighbours: list[tuple[int, float]] | None = None) -> float:
    """How strongly `words` label candidate `c`: 0 (not near) .. 1 (just before it in its own box)."""
    if not words:
        return 0.0
    best = _near_in_text(c.source, c.start, c.end, words)
    if best >= 1.0:
        return best
    pat = _kw_re(words)
    # a value whose own text names it ("Length: 90 cm", "Length: 90cm / 35.4 in") is not named by
    # the boxes to its left
    named = bool(_OWN_NAME_RE.search(c.source, 0, c.start))
    for j, w in neighbours if neighbours is not None else _neighbours(boxes, c.boxes):
        if named and w in (0.8, 0.5):
            continue
        if w > best and pat.search(prepare_text(boxes[j].text)):
            best = w
    return best


_OWN_NAME_RE = re.compile(r"[a-zà-ÿ]{2,}\s*[:=]")


# -------------------------------------------------------------------------------- dimension geometry

_TUPLE_LETTERS_RE = re.compile(r"(?<![a-z])([lwhd])(?:\s*[x*×]\s*([lwhd]))(?:\s*[x*×]\s*([lwhd]))?(?![a-z])")
_LETTER_TO_ENTITY = {"w": "width", "h": "height", "d": "depth", "l": "length"}


def _tuple_orient(c: Candidate, boxes: Sequence[Box], entity: str) -> float | None:
    """For a member of "a x b x c": +1/-1 when letters beside the tuple say which it is, else None."""
    m = c.mention
    if m.group is None:
        return None
    texts = [c.source] + [prepare_text(boxes[j].text) for j, _ in _neighbours(boxes, c.boxes)]
    for t in texts:
        lm = _TUPLE_LETTERS_RE.search(t)
        if lm:
            letters = [g for g in lm.groups() if g]
            if m.position < len(letters):
                return 1.0 if _LETTER_TO_ENTITY[letters[m.position]] == entity else -1.0
    return None


def callout_direction(box: Box, segments: Sequence[tuple[float, float, float, float]]) -> str:
    """"vertical", "horizontal", "slanted" or "" (none): the direction of the line the label sits on.

    A dimension label sits beside (or on) its arrow or extension line, near the line's middle: the
    nearest segment that runs past the label and is longer than the label along its direction. The
    segment's gap to the label's box is measured across the segment, in units of the text's height.
    """
    cx, cy = box.centre
    th = max(box.text_height, 4.0)
    best: tuple[float, float, float] | None = None  # (gap, -length, angle)
    for x1, y1, x2, y2 in segments:
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy)
        if length < 2 * th:
            continue
        ux, uy = dx / length, dy / length
        t = ((cx - x1) * ux + (cy - y1) * uy) / length
        if not 0.1 <= t <= 0.9:
            continue  # a label sits along its arrow, not where a line (a product's edge) starts
        along = abs(ux) * box.width + abs(uy) * box.height
        if length < 0.6 * along:
            continue  # much shorter than the text: a stroke of a letter
        dist = abs((cx - x1) * -uy + (cy - y1) * ux)
        half = abs(uy) * box.width / 2 + abs(ux) * box.height / 2
        gap = (dist - half) / th
        if gap > 1.5 or gap < -0.3:
            continue  # too far, or running through the text (an underline, a strike)
        angle = abs(math.degrees(math.atan2(dy, dx))) % 180
        key = (max(gap, 0.0), -length, angle)
        if best is None or key < best:
            best = key
    if best is None:
        return ""
    angle = best[2]
    if 72 <= angle <= 108:
        return "vertical"
    if angle <= 12 or angle >= 168:
        return "horizontal"
    return "slanted"


# The evidence each callout direction gives for each dimension, -1..1. Vertical text is the
# strongest sign of a height; an arrow's direction is nearly as strong; a slanted arrow is the
# receding edge of a 3-D view, mostly depth, sometimes the width of an isometric view.
_ORIENT = {
    "height": {"vertical_text": 1.0, "vertical": 0.9, "horizontal": -0.7, "slanted": -0.7},
    "width": {"vertical_text": -1.0, "vertical": -0.9, "horizontal": 0.7, "slanted": 0.1},
    "depth": {"vertical_text": -1.0, "vertical": -0.9, "horizontal": -0.3, "slanted": 0.6},
}


def orientation(c: Candidate, boxes: Sequence[Box], entity: str, others: Sequence[Candidate],
                width: float, height: float,
                segments: Sequence[tuple[float, float, float, float]] = ()) -> float:
    """How well the callout's geometry fits the asked dimension, -1..1 (0: no evidence).

    Product drawings put the height beside a vertical arrow (often with vertical text, at the left or
    right of the item), the width along the bottom or top edge (horizontal) and the depth along the
    slanted, receding edge. The text's own direction counts first, then the direction of the line the
    label sits on (callout_direction), else its place among the other callouts.
    """
    b = boxes[c.boxes[0]]
    if b.vertical:
        return _ORIENT[entity]["vertical_text"]
    direction = callout_direction(b, segments) if segments else ""
    if not direction and 12.0 <= abs(b.angle) <= 78.0:
        direction = "slanted"  # the text itself is slanted along its edge
    if direction:
        return _ORIENT[entity][direction]
    # no line found: where the callout sits among all the callouts (the item lies between them)
    xs = [boxes[o.boxes[0]].centre[0] for o in others] or [width / 2]
    ys = [boxes[o.boxes[0]].centre[1] for o in others] or [height / 2]
    lo_x, hi_x = min(xs + [width * 0.25]), max(xs + [width * 0.75])
    lo_y, hi_y = min(ys + [height * 0.25]), max(ys + [height * 0.75])
    rx = (b.centre[0] - lo_x) / max(hi_x - lo_x, 1.0)
    ry = (b.centre[1] - lo_y) / max(hi_y - lo_y, 1.0)
    at_side = min(rx, 1 - rx) < 0.2 and 0.15 < ry < 0.85  # left or right of the others, mid-height
    at_edge = min(ry, 1 - ry) < 0.25  # above or below the others
    if entity == "height":
        return 0.4 if at_side and not at_edge else (-0.3 if at_edge else 0.0)
    if entity == "width":
        return 0.3 if at_edge and not at_side else (-0.3 if at_side else 0.0)
    return -0.2 if at_side else 0.0


# ------------------------------------------------------------------------------------------ score


def _context(c: Candidate, boxes: Sequence[Box], neighbours: list[tuple[int, float]]) -> float:
    """1 when the value is a nutrient's amount or a per-piece figure ("Protein 20 g", "12.3 g / ea")."""
    after = c.source[c.end:c.end + 8]
    if re.match(r"\s*\)?\s*(?:/\s*(?:ea|pc|pcs|piece|unit|bag|pod|sachet|stick)\b|each\b|per\b)",
                after):
        return 1.0
    if _near_in_text(c.source, c.start, c.end, NUTRIENTS, before=40, after=0):
        return 1.0
    pat = _kw_re(NUTRIENTS)
    for j, w in neighbours:
        # only the row's own name, to its left (a nutrition table), not the lines around it
        if w in (0.8, 0.5) and pat.search(prepare_text(boxes[j].text)):
            return 0.8 if w == 0.8 else 0.5
    return 0.0


def _extent_rank(c: Candidate, entity: str, cands: Sequence[Candidate], boxes: Sequence[Box],
                 segments: Sequence[tuple[float, float, float, float]]) -> float:
    """1 when the value is the largest of its kind on the drawing (height: among vertical callouts,
    the overall height beats a part's; width: among the others, the front of most furniture is
    wider than deep), or for depth the smallest; 0 otherwise or when only one value is there."""
    def vertical(o: Candidate) -> bool:
        b = boxes[o.boxes[0]]
        return b.vertical or (bool(segments) and callout_direction(b, segments) == "vertical")

    mine = vertical(c)
    if entity == "height" and not mine:
        return 0.0
    if entity != "height" and mine:
        return 0.0
    values = {o.value * BASE_FACTOR.get(o.unit, 1.0) for o in cands if vertical(o) == mine}
    if len(values) < 2:
        return 0.0
    here = c.value * BASE_FACTOR.get(c.unit, 1.0)
    target = min(values) if entity == "depth" else max(values)
    return 1.0 if abs(here - target) <= 0.03 * target else 0.0


def features(c: Candidate, boxes: Sequence[Box], entity: str, cands: Sequence[Candidate],
             width: float, height: float, median_size: float,
             segments: Sequence[tuple[float, float, float, float]] = (), group: object = "",
             catalogue: Catalogue | None = None) -> dict[str, float]:
    neighbours = _neighbours(boxes, c.boxes)
    f: dict[str, float] = {}
    f["keyword"] = keyword_strength(c, boxes, KEYWORDS[entity], neighbours)
    rival = 0.0
    for r in RIVALS.get(entity, ()):
        rival = max(rival, keyword_strength(c, boxes, _words_for(r), neighbours))
    # a word that belongs to both ("diameter" for width and depth, "net" ...) is no rival
    f["rival"] = rival if rival > f["keyword"] else 0.0
    f["context"] = _context(c, boxes, neighbours) if entity in (
        "item_weight", "item_volume", "maximum_weight_recommendation") else 0.0
    size = max(boxes[i].text_height for i in c.boxes)
    f["size"] = max(-1.0, min(1.0, math.log(max(size, 1.0) / max(median_size, 1.0))))
    # reading order says something on a pack (the net quantity comes early), nothing on a drawing
    f["first"] = 0.0 if entity in DIMENSIONS else 1.0 / (1 + c.order)
    lo, hi = _PLAUSIBLE[entity]
    base = c.value * BASE_FACTOR.get(c.unit, 1.0)
    f["implausible"] = 1.0 if not lo <= base <= hi else 0.0
    f["range"] = 1.0 if c.mention.is_range else 0.0
    cat = catalogue if catalogue is not None else load_catalogue()
    # a magnitude far from what the group's labels usually say is a misread or another quantity
    f["cat_mag"] = min(cat.magnitude_z(entity, group, base), 5.0)
    if entity in DIMENSIONS:
        f["extent"] = _extent_rank(c, entity, cands, boxes, segments)
        t = _tuple_orient(c, boxes, entity)
        if t is not None:
            # "W x D x H: 40 x 30 x 20 cm": the letters name each member; they are the keywords
            f["keyword"], f["rival"], f["orient"] = max(t, 0.0), max(-t, 0.0), 0.0
        else:
            f["orient"] = orientation(c, boxes, entity, cands, width, height, segments)
    else:
        f["orient"] = 0.0
        f["extent"] = 0.0
    return f


def _share_between_twins(cands: Sequence[Candidate], boxes: Sequence[Box], entity: str,
                         group: object, catalogue: Catalogue) -> None:
    """One quantity printed in two units side by side ("4.3 OZ (123 g)", "37in / 94cm") is one
    answer: both get the better evidence of the two. Which of the two the catalogue writes is the
    pick model's to weigh by twin_cat: how much more often the group's labels use this unit than its
    twin's (the order of printing says nothing: on images_dev the labels took the first printed of
    such a pair 17 times in 38)."""
    def base(c: Candidate) -> float:
        return c.value * BASE_FACTOR.get(c.unit, 1.0)

    def near(a: Candidate, b: Candidate) -> bool:
        if set(a.boxes) & set(b.boxes):
            return True
        ba, bb = boxes[a.boxes[0]], boxes[b.boxes[0]]
        size = max(ba.text_height, bb.text_height, 1.0)
        return math.hypot(ba.centre[0] - bb.centre[0], ba.centre[1] - bb.centre[1]) < 4 * size

    shared: dict[int, dict[str, float]] = {}
    for a in cands:
        for b in cands:
            if a is b or a.unit == b.unit:
                continue
            va, vb = base(a), base(b)
            if abs(va - vb) <= 0.03 * max(va, vb) and near(a, b):
                f = shared.setdefault(id(a), dict(a.features))
                for k in ("keyword", "orient", "size", "extent"):
                    f[k] = max(f.get(k, 0.0), b.features.get(k, 0.0))
                for k in ("rival", "context"):
                    f[k] = min(f.get(k, 0.0), b.features.get(k, 0.0))
                f["first"] = max(f["first"], b.features["first"])
                f["has_twin"] = 1.0
                ratio = catalogue.unit_share(entity, group, a.unit) / catalogue.unit_share(entity, group, b.unit)
                f["twin_cat"] = max(-3.0, min(3.0, math.log(ratio)))
    for a in cands:
        if id(a) in shared:
            a.features = shared[id(a)]


def rank(boxes: Sequence[Box], entity: str, width: float, height: float,
         range_policy: str = "max", segments: Sequence[tuple[float, float, float, float]] = (),
         group: object = "", model: Model | None = None,
         catalogue: Catalogue | None = None) -> list[Candidate]:
    """The entity's candidates, best first, each with its features, score and share of the choice."""
    cands = candidates(boxes, entity, range_policy)
    if not cands:
        return []
    model = model if model is not None else load_model()
    catalogue = catalogue if catalogue is not None else load_catalogue()
    median_size = median(b.text_height for b in boxes) if boxes else 1.0
    for c in cands:
        c.features = features(c, boxes, entity, cands, width, height, median_size, segments, group, catalogue)
    _share_between_twins(cands, boxes, entity, group, catalogue)
    return rescored(cands, model, entity)


def choose(boxes: Sequence[Box], entity: str, width: float, height: float,
           range_policy: str = "max", segments: Sequence[tuple[float, float, float, float]] = (),
           group: object = "", model: Model | None = None) -> Pick:
    """The best candidate for `entity` (prediction "" when none), with its share of the choice.

    `segments`: straight lines found in the image (amlc.engines.ocr.find_segments), used to read the
    direction of dimension callouts; without them position alone is used. `group`: the row's
    group_id, for what the catalogue knows about it.
    """
    ranked = rank(boxes, entity, width, height, range_policy, segments, group, model)
    if not ranked:
        return Pick("", 0.0, "", 0, [])
    best = ranked[0]
    return Pick(best.prediction, best.share, best.text, len(ranked), ranked)


def first_mention(boxes: Sequence[Box], entity: str, range_policy: str = "max") -> str:
    """The baseline most teams used: the first mention in the OCR text whose unit the entity allows."""
    from amlc.engines.ocr import joined_text
    from amlc.units import normalize

    return normalize(joined_text(list(boxes)), entity, range_policy)
