"""What the training catalogue says about each entity, per product group, learned from train.csv.

The engines read a value off an image; the catalogue (train.csv, 263,859 labels) knows how its labels
are written for each product group: which unit they use (a printed "37 in / 94 cm" is labelled in
the group's usual unit), what magnitude is usual (a 3 g lamp is a misread), and the most common value
(a guess for a row whose image prints nothing, `postprocessing.py --fill prior`).

    python -m amlc.catalogue --train dataset/train.csv [--exclude L.csv] [--output FILE]

writes the table (JSON) that ships with the package (amlc/data/catalogue.json, read by `load()`).
Keys are "entity" and "entity|group_id"; a group's figures are blended with its entity's in
proportion to how many labels the group has (`SMOOTHING`), so a group seen twice barely moves them.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from amlc.errors import ArgumentParser, InputError, cli
from amlc.units import BASE_FACTOR, normalize, value_unit

SHIPPED = Path(__file__).with_name("data") / "catalogue.json"
# Pseudo-labels of the entity's own figures mixed into a group's: a group needs ~this many labels
# before its own unit mix or magnitude counts as much as the entity's.
SMOOTHING = 20.0
VERSION = 1


@dataclass
class Catalogue:
    # key -> unit -> labels in that unit
    units: dict[str, dict[str, int]] = field(default_factory=dict)
    # key -> (median, spread) of log10 of the value in the entity's base unit (grams, mm, ml, V, W)
    magnitude: dict[str, tuple[float, float]] = field(default_factory=dict)
    # key -> (most common canonical label, its count, labels in all)
    common: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def unit_share(self, entity: str, group: object, unit: str) -> float:
        """The share of the (entity, group)'s labels written in `unit`, smoothed by the entity's."""
        ent = self.units.get(entity, {})
        ent_n = sum(ent.values())
        prior = (ent.get(unit, 0) + 0.5) / (ent_n + 0.5 * max(len(ent), 1))
        grp = self.units.get(f"{entity}|{group}", {})
        n = sum(grp.values())
        return (grp.get(unit, 0) + SMOOTHING * prior) / (n + SMOOTHING)

    def magnitude_z(self, entity: str, group: object, base_value: float) -> float:
        """How unusual a value (in the entity's base unit) is for the group: |log10 distance| from
        the labels' median over their spread (the group's when it has labels, else the entity's)."""
        if base_value <= 0:
            return 10.0
        stats = self.magnitude.get(f"{entity}|{group}") or self.magnitude.get(entity)
        if stats is None:
            return 0.0
        mid, spread = stats
        return abs(math.log10(base_value) - mid) / max(spread, 0.15)

    def prior_value(self, entity: str, group: object) -> str:
        """The group's most common label (else the entity's): a guess for an unreadable row."""
        hit = self.common.get(f"{entity}|{group}") or self.common.get(entity)
        return hit[0] if hit else ""

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "units": self.units,
                           "magnitude": {k: [round(a, 4), round(b, 4)] for k, (a, b) in self.magnitude.items()},
                           "common": self.common}, sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "catalogue file") -> Catalogue:
        try:
            d = json.loads(text)
            if d.get("version") == VERSION:
                return cls({k: dict(v) for k, v in d["units"].items()},
                           {k: (float(a), float(b)) for k, (a, b) in d["magnitude"].items()},
                           {k: (str(v), int(c), int(n)) for k, (v, c, n) in d["common"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        raise InputError(f"{where} is not a catalogue table written by `python -m amlc.catalogue`")


def learn(entities: Sequence[str], groups: Sequence[object], values: Sequence[str]) -> Catalogue:
    """The table from labels (train.csv's entity_name, group_id, entity_value columns)."""
    units: dict[str, Counter] = defaultdict(Counter)
    logs: dict[str, list[float]] = defaultdict(list)
    texts: dict[str, Counter] = defaultdict(Counter)
    for entity, group, value in zip(entities, groups, values):
        canonical = normalize(value, entity)  # ranges as the postprocessing stage resolves them
        parsed = value_unit(canonical)
        if parsed is None:
            continue
        number, unit = parsed
        for key in (entity, f"{entity}|{group}"):
            units[key][unit] += 1
            texts[key][canonical] += 1
            if number > 0:
                logs[key].append(math.log10(number * BASE_FACTOR[unit]))
    magnitude = {}
    for key, xs in logs.items():
        if len(xs) >= 3:
            q = statistics.quantiles(xs, n=4)
            magnitude[key] = (statistics.median(xs), (q[2] - q[0]) / 1.35)  # IQR -> sigma
    common = {}
    for key, counter in texts.items():
        text, count = counter.most_common(1)[0]
        common[key] = (text, count, sum(counter.values()))
    return Catalogue({k: dict(v) for k, v in units.items()}, magnitude, common)


def learn_file(train: str | Path, exclude: Collection[int] = ()) -> Catalogue:
    """The table from a training CSV, leaving out the rows (0-based row numbers) in `exclude`."""
    from amlc.tables import read_table

    data = read_table(train, ["entity_name", "group_id", "entity_value"], "training file", usecols=())
    keep = [i for i in range(len(data)) if i not in exclude]
    return learn([data["entity_name"][i] for i in keep], [data["group_id"][i] for i in keep],
                 [data["entity_value"][i] for i in keep])


@lru_cache(maxsize=4)
def load(path: str | Path = SHIPPED) -> Catalogue:
    path = Path(path)
    if not path.exists():
        raise InputError(f"catalogue file not found: {path} (make one with `python -m amlc.catalogue`)")
    return Catalogue.from_json(path.read_text(encoding="utf-8"), f"catalogue file {path}")


def main(argv: Sequence[str] | None = None) -> int:
    from amlc.tables import read_table, write_text

    parser = ArgumentParser(prog="python -m amlc.catalogue", description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training CSV (entity_name, group_id, entity_value)")
    parser.add_argument("--output", required=True,
                        help="where to write the table; src/amlc/data/catalogue.json is the copy the package "
                             "ships and the OCR engine and --fill prior read (named, never overwritten by default)")
    parser.add_argument("--exclude", help="a CSV whose `index` column lists training rows to leave out "
                                          "(rows you will score, e.g. images_dev's labels)")
    args = parser.parse_args(argv)
    skip: set[int] = set()
    if args.exclude:
        skip = set(read_table(args.exclude, ["index"], "exclude file", usecols=(), check_entities=False)["index"])
    table = learn_file(args.train, skip)
    write_text(args.output, table.to_json())
    groups = sum("|" in k for k in table.units)
    print(f"learned {groups} (entity, group) pairs from {args.train} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
