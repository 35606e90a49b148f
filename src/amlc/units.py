"""Free text -> a canonical prediction ("500.0 gram") for an entity, or "" when none can be made.

Pure functions, no I/O. Used on model output, OCR text and training labels alike, so that a correct
value comes out string-equal to the ground truth.

Policies (each decided once, here):
- Output format: "<number> <unit>", the number as Python prints a float ("500.0", "0.709", "1400.0"),
  never in scientific notation ("1e+17" becomes "100000000000000000.0"), never negative. The unit is
  the competition's full name ("gram", "fluid ounce").
- Text that is already canonical for the entity is returned unchanged, byte for byte: a model that
  learned "1400 milligram" from a label keeps it. Canonical (`is_canonical`) is exactly how the
  catalogue writes its labels: the number as Python prints it, or a whole number without ".0"; one
  space; an allowed unit of that entity. Text that is canonical but for its spacing or zeros
  (" 5  centimetre", "05 centimetre", "5\tcentimetre", "1.50 gram") is rewritten canonically, keeping
  its whole-number style ("5 centimetre"); anything else could never equal a label.
- Spellings: every common spelling, abbreviation and symbol of each unit, any case ("500g", "500 GMS",
  "12V", "5 fl. oz", '37"', "6'", "cu ft", "cm³").
- Numbers: "1,5" and "1.5" are 1.5; "1,500" and "1.234,5" use thousands separators; "1 1/2" and "3/4"
  are fractions when the denominator is 2, 3, 4, 8, 16, 32 or 64; "2.5e3" is 2500. A space separates
  thousands when that is the only reading: "1 000 g", "10 000 mg", "1 250,5 g" (a group after the
  first starts with 0, or a decimal part follows). "2 500 g" may be 2500 g or two of 500 g, "1 500 mg"
  1500 mg or one capsule of 500 mg: such a mention is ambiguous and never the answer (blank, reason
  "ambiguous number", when no other mention answers). A negative number ("-5 volt") is never an answer either (reason "negative
  number"): no product carries one, and a minus is a misread dash more often than a sign.
- Pack counts: in "2 x 500 g" or "12 x 1.5 oz" the unitless first members count packs, the quantity
  is the member with the unit (`pack_count`, shared with the OCR engine's rules); dimensions are
  the exception, "10 x 20 x 30 cm" reads each member in cm.
- Ranges ("100-240V", "10 kilogram to 15 kilogram", "[100.0, 240.0] volt", "110/220V") resolve by
  `range_policy`: "max" (default: the upper bound, e.g. the top of a charger's input range), "min",
  "first" (the bound written first) or "blank".
- Several mentions ("Net Wt. 500 g (17.6 oz)"): the first whose unit the entity allows (directly or by
  conversion) wins; choosing well among mentions is the engines' job, not this module's.
- A unit the entity does not allow is converted only when the conversion is exact and the meaning
  sure: cc/cm³ -> millilitre, m³ -> litre, mm³ -> microlitre, tonne -> ton, carat -> gram,
  milliwatt -> watt, µm -> millimetre, dm -> centimetre, km -> metre, and "ounce" for item_volume
  means fluid ounce. Everything else is blank: fluid ounces of a weight (density unknown),
  horsepower (not exact), kWh (energy, not power), square units, a number without a unit.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple
from decimal import Decimal
from functools import lru_cache

from amlc.constants import ENTITY_UNIT_MAP

RANGE_POLICIES = ("max", "min", "first", "blank")

# The organisers' sanity pattern: a valid prediction looks like this (and its unit is allowed).
SANITY_RE = re.compile(r"^-?\d+(\.\d+)?\s+[a-zA-Z\s]+$")
# What we pass through untouched (with `is_canonical`'s check of the unit): no sign, no leading zero,
# no trailing zero after the point but ".0", one space, lower-case words. With at most 15 significant
# digits such a number is exactly how Python prints its float (longer ones are checked the slow way).
_CANONICAL_RE = re.compile(r"^(?:0|[1-9]\d*)(?:\.(?:0|\d*[1-9]))? [a-z]+(?: [a-z]+)*$", re.ASCII)
# Canonical but for spacing and zeros: rewritten canonically, keeping the whole-number style.
_NEAR_CANONICAL_RE = re.compile(r"^0*([0-9]+(?:\.[0-9]+)?)\s+([a-z]+(?:\s+[a-z]+)*)$")
# The entities whose "a x b x c" tuples are sizes (each member a value); elsewhere a unitless member
# of a tuple is a pack count.
DIMENSIONS = ("width", "height", "depth")

# canonical unit -> spellings (lower case; a space matches any run of spaces, or none).
# Units outside the competition's list are here too, so that "5 kWh" is read as kilowatt hour (and
# blanked) rather than as 5 kilowatt followed by junk.
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    # weight
    "gram": ("g", "gm", "gms", "gr", "grs", "grm", "grms", "gram", "grams", "gramme", "grammes"),
    "kilogram": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes",
                 "kilo gram", "kilo grams"),
    "milligram": ("mg", "mgs", "milligram", "milligrams", "milligramme", "milligrammes"),
    "microgram": ("mcg", "μg", "ug", "microgram", "micrograms"),
    "ounce": ("oz", "ozs", "oz.", "ounce", "ounces"),
    # "Ibs": OCR reads the l of "lbs" as a capital I more often than not
    "pound": ("lb", "lbs", "lb.", "lbs.", "pound", "pounds", "ibs", "ibs."),
    "ton": ("ton", "tons", "tonne", "tonnes", "metric ton", "metric tons"),
    "carat": ("carat", "carats"),
    # voltage
    "volt": ("v", "volt", "volts", "vac", "vdc", "v ac", "v dc"),
    "kilovolt": ("kv", "kilovolt", "kilovolts"),
    "millivolt": ("mv", "millivolt", "millivolts"),
    # wattage
    "watt": ("w", "watt", "watts"),
    "kilowatt": ("kw", "kilowatt", "kilowatts"),
    "milliwatt": ("mw", "milliwatt", "milliwatts"),
    "kilowatt hour": ("kwh", "kw h", "kilowatt hour", "kilowatt hours"),
    "watt hour": ("wh", "watt hour", "watt hours"),
    "horsepower": ("hp", "horsepower"),
    # length
    "millimetre": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "centimetre": ("cm", "cms", "cm.", "centimeter", "centimeters", "centimetre", "centimetres"),
    "metre": ("m", "mtr", "mtrs", "meter", "meters", "metre", "metres"),
    "inch": ("in", "in.", "inch", "inches", "inchs", '"', "''"),
    "foot": ("ft", "ft.", "feet", "foot", "'"),
    "yard": ("yd", "yds", "yard", "yards"),
    "micrometre": ("μm", "um", "micron", "microns", "micrometer", "micrometers", "micrometre",
                   "micrometres"),
    "decimetre": ("dm", "decimeter", "decimeters", "decimetre", "decimetres"),
    "kilometre": ("km", "kilometer", "kilometers", "kilometre", "kilometres"),
    "area": ("m2", "cm2", "mm2", "ft2", "in2", "sq ft", "sq. ft", "sq. ft.", "sq in", "sq. in",
             "sq m", "sqm", "sqft", "square feet", "square foot", "square meter", "square meters",
             "square metre", "square metres", "square inch", "square inches"),
    # volume
    "millilitre": ("ml", "mls", "ml.", "milliliter", "milliliters", "millilitre", "millilitres"),
    "litre": ("l", "lt", "lts", "ltr", "ltrs", "liter", "liters", "litre", "litres"),
    "centilitre": ("cl", "centiliter", "centiliters", "centilitre", "centilitres"),
    "decilitre": ("dl", "deciliter", "deciliters", "decilitre", "decilitres"),
    "microlitre": ("μl", "ul", "microliter", "microliters", "microlitre", "microlitres"),
    "fluid ounce": ("fl oz", "fl. oz", "fl.oz", "fl. oz.", "fl.oz.", "fl oz.", "floz", "fl ounce",
                    "fl ounces", "fluid oz", "fluid ounce", "fluid ounces", "oz fl", "oz. fl."),
    "gallon": ("gal", "gals", "gallon", "gallons", "us gal", "us gallon", "us gallons"),
    "imperial gallon": ("imperial gallon", "imperial gallons", "imp gal", "imp. gal", "uk gal",
                        "uk gallon", "uk gallons"),
    "quart": ("qt", "qts", "quart", "quarts"),
    "pint": ("pt", "pts", "pint", "pints"),
    "cup": ("cup", "cups"),
    "cubic foot": ("cu ft", "cu. ft", "cu. ft.", "cu.ft", "cu.ft.", "cuft", "ft3", "cubic foot",
                   "cubic feet", "cubic ft"),
    "cubic inch": ("cu in", "cu. in", "cu. in.", "cu.in", "in3", "cubic inch", "cubic inches",
                   "cubic in"),
    "cubic centimetre": ("cc", "ccm", "cm3", "cubic centimeter", "cubic centimeters",
                         "cubic centimetre", "cubic centimetres"),
    "cubic metre": ("m3", "cubic meter", "cubic meters", "cubic metre", "cubic metres"),
    "cubic millimetre": ("mm3",),
}

# Exact conversions of units no entity allows, into one it does.
CONVERSIONS: dict[str, tuple[str, float]] = {
    "carat": ("gram", 0.2),
    "milliwatt": ("watt", 0.001),
    "micrometre": ("millimetre", 0.001),
    "decimetre": ("centimetre", 10.0),
    "kilometre": ("metre", 1000.0),
    "cubic centimetre": ("millilitre", 1.0),
    "cubic metre": ("litre", 1000.0),
    "cubic millimetre": ("microlitre", 1.0),
}

# What a unit means for one entity in particular: "16 oz" of a drink is 16 fluid ounces.
ENTITY_READINGS: dict[tuple[str, str], str] = {
    ("item_volume", "ounce"): "fluid ounce",
}

_FRACTION_DENOMINATORS = {2, 3, 4, 8, 16, 32, 64}
_VULGAR = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅛": "1/8", "⅜": "3/8",
           "⅝": "5/8", "⅞": "7/8"}
_VULGAR_RE = re.compile("(\\d?)([" + "".join(_VULGAR) + "])")
_CHAR_MAP = str.maketrans({"″": '"', "“": '"', "”": '"', "„": '"', "′": "'", "’": "'", "‘": "'",
                           "×": "x", "–": "-", "—": "-", "−": "-", "‐": "-", "～": "~", "⁄": "/",
                           "µ": "μ"})


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for unit, spellings in UNIT_SPELLINGS.items():
        for spelling in spellings:
            key = spelling.replace(" ", "")
            assert lookup.get(key, unit) == unit, f"spelling {spelling!r} is ambiguous"
            lookup[key] = unit
    return lookup


_SPELLING_TO_UNIT = _build_lookup()
# After a number: a quote symbol touching it ('37"'; "90's" is a decade, not 90 feet), or up to three
# words ("fl. oz.", "cu ft", "metric ton"). The longest run of words that spells a unit wins, so
# "5 kWh" reads as kilowatt hour, never as 5 kW followed by junk; a word is a whole run of letters, so
# "12VA" is no volt.
_UNIT_RE = re.compile(r"(?P<quote>''|\"|'(?!s\b))|\s*(?P<w1>[a-zμ]+[23]?\.?)"
                      r"(?:\s*(?P<w2>[a-zμ]+[23]?\.?))?(?:\s*(?P<w3>[a-zμ]+[23]?\.?))?")
_NOT_INCHES_RE = re.compile(r"\s*(?:\d|one\b)")  # "2 in 1" is a product type, not two inches


def _unit_after(text: str, pos: int) -> tuple[str, int, bool] | None:
    """(unit, end, is_quote) of the unit spelled right after position `pos`, if any."""
    m = _UNIT_RE.match(text, pos)
    if not m:
        return None
    quote, w1, w2, w3 = m.group("quote", "w1", "w2", "w3")
    if quote:
        return _SPELLING_TO_UNIT[quote], m.end(), True
    if w2 is None:  # the common case, one word: nothing to join
        runs: tuple[tuple[str, int], ...] = ((w1, m.end("w1")),)
    elif w3 is None:
        runs = ((w1 + w2, m.end("w2")), (w1, m.end("w1")))
    else:
        runs = ((w1 + w2 + w3, m.end("w3")), (w1 + w2, m.end("w2")), (w1, m.end("w1")))
    for key, end in runs:
        for candidate, cut in ((key, 0), (key[:-1], 1)) if key[-1] == "." else ((key, 0),):
            unit = _SPELLING_TO_UNIT.get(candidate)
            if unit is None:
                continue
            if candidate == "in" and _NOT_INCHES_RE.match(text, end - cut):
                return None
            return unit, end - cut, False
    return None


# A number: digits with optional separators and exponent, not glued to a preceding letter or digit
# ("B12" and "X500" are model names; "2x500g" and "wt.500g" are fine).
_NUMBER_RE = re.compile(
    r"(?<![0-9a-wyz])(?<![0-9][.,])(?:\d+(?:[.,]\d+)*(?:e[+-]?\d+)?|\.\d+)"
)
# Digits in groups of three after single spaces ("1 000", "12 500,5"): maybe one number with space
# thousands separators (see `_numbers` for when it is).
_SPACED_RE = re.compile(r"(?<![0-9a-wyz.,])(?<![0-9] )([1-9]\d{0,2})((?: \d{3})+)(?![0-9])"
                        r"(?:[.,](\d+))?(?![0-9.,])")
_SPACED_HINT_RE = re.compile(r"\d \d{3}")
_FRACTION_RE = re.compile(r"(?<![0-9a-wyz./])(?:(\d+)(?:\s+|-))?(\d+)\s*/\s*(\d+)(?![0-9.,/])")
_BRACKET_RANGE_RE = re.compile(r"\[\s*([0-9.e+-]+)\s*,\s*([0-9.e+-]+)\s*\]")
_RANGE_GAP_RE = re.compile(r"^\s*(?:-|~|to|/)\s*$")
_TUPLE_GAP_RE = re.compile(r"^\s*[x*]\s*$")


class Mention(NamedTuple):
    """One quantity found in text. `unit` is a key of UNIT_SPELLINGS (maybe not a competition unit).

    For a range, `low`/`high` are its bounds in the order written and `value` is decided by the range
    policy at normalisation time; otherwise value == low == high. `group` numbers the members of a
    "10 x 20 x 30 cm" tuple (None outside one), `position` is the member's place in it. Spans index
    the text as `prepare_text` returns it.
    """

    value: float
    unit: str
    start: int
    end: int
    text: str
    low: float
    high: float
    is_range: bool = False
    group: int | None = None
    position: int = 0
    unit_shared: bool = False  # the unit was written once for the whole tuple, after the last member
    ambiguous: bool = False  # "2 500 g": 500 g after a count, or 2500 g with a space separator


class Normalized(NamedTuple):
    prediction: str
    reason: str  # unchanged | reformatted | converted | range | empty | no number | no unit |
    #              unit not allowed | range blanked | negative number | ambiguous number


def prepare_text(text: str) -> str:
    """Lower case, NFKC, one spelling for quotes, dashes and the micro sign, "[a, b]" as "a - b"."""
    if not text.isascii():
        # "1½" must become "1 1/2" before NFKC turns "½" into "1⁄2" and glues it to the "1"
        text = _VULGAR_RE.sub(lambda m: (m.group(1) + " " if m.group(1) else "") + _VULGAR[m.group(2)], text)
        text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    text = text.lower().replace("`", "'")
    if "[" in text:
        text = _BRACKET_RANGE_RE.sub(r"\1 - \2", text)
    return text


def parse_number(text: str) -> float | None:
    """A number as printed on a product: decimal comma or point, thousands separators, exponent."""
    t = text.strip()
    if not t:
        return None
    if "e" in t:
        try:
            value = float(t.replace(",", "."))
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    seps = [c for c in t if c in ".,"]
    if not seps:
        return float(t)
    if "." in seps and "," in seps:
        decimal_sep = t[max(t.rfind("."), t.rfind(","))]
        thousands = "," if decimal_sep == "." else "."
        whole, _, frac = t.rpartition(decimal_sep)
        if decimal_sep in whole or not _thousands_ok(whole.split(thousands)):
            return None
        return float(whole.replace(thousands, "") + "." + frac)
    sep = seps[0]
    parts = t.split(sep)
    if len(parts) == 2:
        head, tail = parts
        if sep == "," and len(tail) == 3 and head and head != "0" and not head.startswith("0"):
            return float(head + tail)  # 1,500 g
        return float((head or "0") + "." + tail)  # 1,5 kg / 1.5 kg / .5 oz
    if _thousands_ok(parts):
        return float("".join(parts))  # 1,234,567 / 1.234.567
    return None


def _thousands_ok(groups: list[str]) -> bool:
    return bool(groups[0]) and len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


def format_number(value: float) -> str:
    """Python's float formatting ("500.0", "0.709"), positional even where repr would use an exponent."""
    value = abs(float(value))
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def format_value(value: float, unit: str) -> str:
    return f"{format_number(value)} {unit}"


def _clean(value: float) -> float:
    """Drop float noise from a conversion (0.3 * 0.2 = 0.06000000000000001 -> 0.06)."""
    return float(f"{value:.12g}")


def _numbers(text: str) -> list[tuple[int, int, float, str, bool]]:
    """Every number in prepared text as (start, end, value, text, ambiguous), fractions included.

    Digits grouped by single spaces ("1 000", "2 500") are one number when no other reading makes
    sense: a later group starts with 0 ("1 000", "10 050": nobody writes a quantity "050"), or a
    decimal part follows ("1 250,5 g"). Otherwise ("2 500 g", and "1 500 mg", which OCR also gives
    for "1 capsule: 500 mg") the groups stay separate numbers and those after the first are marked
    ambiguous.
    """
    found: list[tuple[int, int, float, str, bool]] = []
    taken: list[tuple[int, int]] = []
    doubtful: list[tuple[int, int]] = []
    for m in _FRACTION_RE.finditer(text) if "/" in text else ():
        whole, num, den = m.group(1), int(m.group(2)), int(m.group(3))
        if den in _FRACTION_DENOMINATORS and 0 < num < den:
            value = (int(whole) if whole else 0) + num / den
            found.append((m.start(), m.end(), value, m.group(0), False))
            taken.append((m.start(), m.end()))
    for m in _SPACED_RE.finditer(text) if _SPACED_HINT_RE.search(text) else ():
        if taken and any(a <= m.start() < b for a, b in taken):
            continue
        head, tail, decimals = m.groups()
        if decimals or " 0" in tail:
            value = float(head + tail.replace(" ", "") + ("." + decimals if decimals else ""))
            found.append((m.start(), m.end(), value, m.group(0), False))
            taken.append((m.start(), m.end()))
        else:
            doubtful.append((m.start() + len(head), m.end()))
    for m in _NUMBER_RE.finditer(text):
        if taken and any(a <= m.start() < b for a, b in taken):
            continue
        value = parse_number(m.group(0))
        if value is not None:
            ambiguous = bool(doubtful) and any(a <= m.start() < b for a, b in doubtful)
            found.append((m.start(), m.end(), value, m.group(0), ambiguous))
    found.sort()
    return found


@dataclass
class _Quantity:
    start: int
    end: int
    value: float
    unit: str | None
    quote: bool
    ambiguous: bool = False


def _quantities(text: str) -> list[_Quantity]:
    out = []
    for start, end, value, _, ambiguous in _numbers(text):
        unit = _unit_after(text, end)
        if unit:
            out.append(_Quantity(start, unit[1], value, unit[0], unit[2], ambiguous))
        else:
            out.append(_Quantity(start, end, value, None, False, ambiguous))
    return out


def find_mentions(text: str, *, prepared: bool = False) -> list[Mention]:
    """Every number+unit mention in `text`, in reading order (see Mention)."""
    t = text if prepared else prepare_text(text)
    qs = _quantities(t)
    mentions: list[Mention] = []
    i = 0
    group_id = 0
    while i < len(qs):
        q = qs[i]
        nxt = qs[i + 1] if i + 1 < len(qs) else None
        gap = t[q.end:nxt.start] if nxt else ""
        # 5'6" -> 66 inches
        if (nxt and q.unit == "foot" and q.quote and nxt.unit == "inch" and gap.strip() == ""
                and nxt.value < 12):
            value = q.value * 12 + nxt.value
            mentions.append(Mention(value, "inch", q.start, nxt.end, t[q.start:nxt.end], value, value))
            i += 2
            continue
        # 100-240V, 10 kg to 15 kg, 110/220V
        if (nxt and nxt.unit and (q.unit is None or q.unit == nxt.unit) and _RANGE_GAP_RE.match(gap)
                and not (q.unit is None and gap.strip() == "/" and nxt.value < q.value)):
            mentions.append(Mention(max(q.value, nxt.value), nxt.unit, q.start, nxt.end,
                                    t[q.start:nxt.end], q.value, nxt.value, is_range=True,
                                    ambiguous=q.ambiguous or nxt.ambiguous))
            i += 2
            continue
        # 10 x 20 x 30 cm (the unit may be written once, at the end, or after every member)
        j = i
        while j + 1 < len(qs) and _TUPLE_GAP_RE.match(t[qs[j].end:qs[j + 1].start]):
            j += 1
        if j > i:
            members = qs[i:j + 1]
            last_unit = members[-1].unit
            for pos, member in enumerate(members):
                unit = member.unit or last_unit
                if unit:
                    mentions.append(Mention(member.value, unit, member.start, member.end,
                                            t[member.start:member.end], member.value, member.value,
                                            group=group_id, position=pos,
                                            unit_shared=member.unit is None,
                                            ambiguous=member.ambiguous))
            group_id += 1
            i = j + 1
            continue
        if q.unit:
            mentions.append(Mention(q.value, q.unit, q.start, q.end, t[q.start:q.end], q.value, q.value,
                                    ambiguous=q.ambiguous))
        i += 1
    return mentions


_LEADING_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def _single_quantity(t: str) -> Mention | None:
    """The common case, "500 g" and nothing else, without the general scan (same reading)."""
    m = _LEADING_NUMBER_RE.match(t)
    if not m:
        return None
    unit = _unit_after(t, m.end())
    if unit is None or unit[1] != len(t) or unit[2]:
        return None
    value = float(m.group())
    return Mention(value, unit[0], 0, len(t), t, value, value)


def resolve_unit(unit: str, entity: str) -> tuple[str, float] | None:
    """(allowed unit, factor) that `unit` becomes for `entity`, or None when it cannot."""
    allowed = ENTITY_UNIT_MAP[entity]
    if unit in allowed:
        return unit, 1.0
    reading = ENTITY_READINGS.get((entity, unit))
    if reading in allowed:
        return reading, 1.0
    target = CONVERSIONS.get(unit)
    if target and target[0] in allowed:
        return target
    return None


def pack_count(m: Mention, entity: str) -> bool:
    """Is `m` a tuple's unitless member counting packs ("2" in "2 x 500 g"), not a quantity?"""
    return m.unit_shared and entity not in DIMENSIONS


def _canonical_number(number: str) -> str:
    """How the catalogue writes this number: Python's float text, a whole number kept without ".0"."""
    text = format_number(float(number))
    return text[:-2] if "." not in number else text


def is_canonical(text: str, entity: str) -> bool:
    """Written exactly as a label of `entity` would be (see the module docstring), byte for byte."""
    if not _CANONICAL_RE.match(text):
        return False
    number, unit = text.split(" ", 1)
    return unit in ENTITY_UNIT_MAP[entity] and (len(number) <= 15 or _canonical_number(number) == number)


def _negative(t: str, m: Mention) -> bool:
    """A minus sign right before the mention's number, not a hyphen inside a word ("XR-5")."""
    return m.start > 0 and t[m.start - 1] == "-" and (m.start == 1 or not t[m.start - 2].isalnum())


def range_value(m: Mention, policy: str) -> float | None:
    if not m.is_range:
        return m.value
    if policy == "max":
        return max(m.low, m.high)
    if policy == "min":
        return min(m.low, m.high)
    if policy == "first":
        return m.low
    if policy == "blank":
        return None
    raise ValueError(f"unknown range policy {policy!r}; choose one of {', '.join(RANGE_POLICIES)}")


@lru_cache(maxsize=200_000)
def normalize_ex(text: str, entity: str, range_policy: str = "max") -> Normalized:
    """Like `normalize`, with the reason for what was done (for postprocessing summaries)."""
    if entity not in ENTITY_UNIT_MAP:
        raise ValueError(f"unknown entity {entity!r}")
    if range_policy not in RANGE_POLICIES:
        raise ValueError(f"unknown range policy {range_policy!r}; choose one of {', '.join(RANGE_POLICIES)}")
    stripped = text.strip()
    if not stripped:
        return Normalized("", "empty")
    if is_canonical(stripped, entity):
        return Normalized(stripped, "unchanged")
    near = _NEAR_CANONICAL_RE.match(stripped)
    if near and " ".join(near.group(2).split()) in ENTITY_UNIT_MAP[entity]:
        return Normalized(f"{_canonical_number(near.group(1))} {' '.join(near.group(2).split())}",
                          "reformatted")
    t = prepare_text(stripped)
    simple = _single_quantity(t)
    mentions = [simple] if simple else find_mentions(t, prepared=True)
    if not mentions:
        return Normalized("", "no unit" if _numbers(t) else "no number")
    skipped = ""
    for m in mentions:
        resolved = resolve_unit(m.unit, entity)
        if resolved is None or pack_count(m, entity):
            continue
        if m.ambiguous or _negative(t, m):
            skipped = skipped or ("ambiguous number" if m.ambiguous else "negative number")
            continue
        unit, factor = resolved
        value = range_value(m, range_policy)
        if value is None:
            return Normalized("", "range blanked")
        out = format_value(_clean(value * factor) if factor != 1.0 else value, unit)
        if m.is_range:
            reason = "range"
        elif unit != m.unit:
            reason = "converted"
        else:
            reason = "reformatted"
        return Normalized(out, reason)
    return Normalized("", skipped or "unit not allowed")


def normalize(text: object, entity: str, range_policy: str = "max") -> str:
    """Free text -> "" or a canonical, sanity-valid "x unit" whose unit `entity` allows."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return normalize_ex(str(text), entity, range_policy).prediction


# Each unit's size in its entity's base unit (grams, volts, watts, millilitres, millimetres), to compare
# values across units: a twin printed in two units, a magnitude against the catalogue's.
BASE_FACTOR: dict[str, float] = {
    "gram": 1.0, "kilogram": 1e3, "milligram": 1e-3, "microgram": 1e-6, "ounce": 28.3495,
    "pound": 453.592, "ton": 1e6,
    "volt": 1.0, "kilovolt": 1e3, "millivolt": 1e-3,
    "watt": 1.0, "kilowatt": 1e3,
    "millilitre": 1.0, "litre": 1e3, "centilitre": 10.0, "decilitre": 100.0, "microlitre": 1e-3,
    "fluid ounce": 29.5735, "gallon": 3785.41, "imperial gallon": 4546.09, "pint": 473.176,
    "quart": 946.353, "cup": 240.0, "cubic foot": 28316.8, "cubic inch": 16.3871,
    "millimetre": 1.0, "centimetre": 10.0, "metre": 1e3, "inch": 25.4, "foot": 304.8, "yard": 914.4,
}


def value_unit(prediction: str) -> tuple[float, str] | None:
    """(number, unit) of a canonical prediction ("500.0 gram"), None for "" or anything else."""
    number, _, unit = prediction.partition(" ")
    if not unit or unit not in BASE_FACTOR:
        return None
    try:
        return float(number), unit
    except ValueError:
        return None
