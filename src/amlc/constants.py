"""The competition's facts: which units each entity may be answered in.

Transcribed from the organisers' starter kit (src/constants.py). A prediction whose unit is not in
ENTITY_UNIT_MAP[entity] is invalid; ALLOWED_UNITS is what their sanity checker accepts for any entity.
"""

ENTITY_UNIT_MAP: dict[str, frozenset[str]] = {
    "width": frozenset({"centimetre", "foot", "inch", "metre", "millimetre", "yard"}),
    "depth": frozenset({"centimetre", "foot", "inch", "metre", "millimetre", "yard"}),
    "height": frozenset({"centimetre", "foot", "inch", "metre", "millimetre", "yard"}),
    "item_weight": frozenset({"gram", "kilogram", "microgram", "milligram", "ounce", "pound", "ton"}),
    "maximum_weight_recommendation": frozenset(
        {"gram", "kilogram", "microgram", "milligram", "ounce", "pound", "ton"}
    ),
    "voltage": frozenset({"kilovolt", "millivolt", "volt"}),
    "wattage": frozenset({"kilowatt", "watt"}),
    "item_volume": frozenset(
        {
            "centilitre", "cubic foot", "cubic inch", "cup", "decilitre", "fluid ounce", "gallon",
            "imperial gallon", "litre", "microlitre", "millilitre", "pint", "quart",
        }
    ),
}

ENTITIES: tuple[str, ...] = tuple(ENTITY_UNIT_MAP)

ALLOWED_UNITS: frozenset[str] = frozenset().union(*ENTITY_UNIT_MAP.values())

# The organisers' own names, kept so that code written against the starter kit keeps working.
entity_unit_map = {k: set(v) for k, v in ENTITY_UNIT_MAP.items()}
allowed_units = set(ALLOWED_UNITS)
