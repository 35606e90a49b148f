"""How the catalogue writes a whole number, "500 gram" or "500.0 gram", learned from the training labels.

Scoring is exact text, and the labels are not uniform: a quarter of the integer-valued weight labels
in train.csv are written without ".0" ("1400 milligram"), the rest with it, and which one a row gets
follows its product group and unit more than chance (measured on train.csv, held-out rows: always
".0" is right for 74.5% of integer-valued weight labels, the majority of the row's (entity, group,
unit) for 81%). An engine reads the number, not the catalogue's habit, so this step restyles a
predicted whole number the way most labels of its kind are written.

The table: for each level, from the most specific, (entity, group_id, unit), (entity, group_id),
(entity, unit), the count of integer-valued labels and how many of them had no ".0". A prediction
takes the style of the most specific key seen at least `min_count` times; a key never seen keeps the
prediction as it is. Only whole numbers change; "0.5 gram" is never touched.

    python -m amlc.formats --train dataset/train.csv --output outputs/styles.json [--exclude L.csv]
    python postprocessing.py ... --styles outputs/styles.json

`--exclude` drops the training rows whose index (row number) is in that CSV's `index` column: learn
without the rows you are about to score (images_dev's labels are train.csv rows 0-999).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amlc.errors import ArgumentParser, InputError, cli

LEVELS: tuple[tuple[str, ...], ...] = (("entity_name", "group_id", "unit"), ("entity_name", "group_id"),
                                       ("entity_name", "unit"))
_WHOLE = re.compile(r"^(\d+)(\.0)? ([a-z ]+)$")


def whole_number(value: str) -> tuple[str, bool, str] | None:
    """("500", written without ".0"?, "gram") for a whole-number value, None otherwise."""
    m = _WHOLE.match(value)
    if not m:
        return None
    return m.group(1), m.group(2) is None, m.group(3)


def _key(parts: Iterable[object]) -> str:
    return "|".join(map(str, parts))


@dataclass
class StyleTable:
    min_count: int = 5
    # per level: key -> [labels written without ".0", integer-valued labels]
    counts: list[dict[str, list[int]]] = field(default_factory=lambda: [{} for _ in LEVELS])

    def integer_style(self, entity: str, group_id: object, unit: str) -> bool | None:
        """True: write "500 gram"; False: "500.0 gram"; None: nothing learned for this kind of row."""
        row = {"entity_name": entity, "group_id": group_id, "unit": unit}
        for level, table in zip(LEVELS, self.counts):
            hit = table.get(_key(row[c] for c in level))
            if hit and hit[1] >= self.min_count:
                return hit[0] * 2 > hit[1]
        return None

    def to_json(self) -> str:
        return json.dumps({"version": 1, "min_count": self.min_count, "levels": LEVELS,
                           "counts": self.counts}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "styles file") -> StyleTable:
        try:
            data = json.loads(text)
            if data.get("version") == 1 and [tuple(lv) for lv in data["levels"]] == list(LEVELS):
                return cls(int(data["min_count"]), [dict(t) for t in data["counts"]])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        raise InputError(f"{where} is not a styles table written by `python -m amlc.formats`")


def learn(entities: Sequence[str], group_ids: Sequence[object], values: Sequence[str],
          min_count: int = 5) -> StyleTable:
    table = StyleTable(min_count)
    for entity, group, value in zip(entities, group_ids, values):
        whole = whole_number(value)
        if whole is None:
            continue
        _, no_decimal, unit = whole
        row = {"entity_name": entity, "group_id": group, "unit": unit}
        for level, counts in zip(LEVELS, table.counts):
            c = counts.setdefault(_key(row[k] for k in level), [0, 0])
            c[0] += no_decimal
            c[1] += 1
    return table


def learn_file(train: str | Path, exclude: Collection[int] = (), min_count: int = 5) -> tuple[StyleTable, int]:
    """The table learned from a training CSV, leaving out the rows (0-based row numbers) in `exclude`;
    also returns how many rows it learned from."""
    from amlc.tables import read_table

    data = read_table(train, ["entity_name", "group_id", "entity_value"], "training file", usecols=())
    keep = [i for i in range(len(data)) if i not in exclude]
    table = learn([data["entity_name"][i] for i in keep], [data["group_id"][i] for i in keep],
                  [data["entity_value"][i] for i in keep], min_count)
    return table, len(keep)


def restyle(prediction: str, entity: str, group_id: object, table: StyleTable) -> str:
    """A whole-number prediction written the way the labels of its kind are; anything else as is."""
    whole = whole_number(prediction)
    if whole is None:
        return prediction
    number, _, unit = whole
    style = table.integer_style(entity, group_id, unit)
    if style is None:
        return prediction
    return f"{number} {unit}" if style else f"{number}.0 {unit}"


def load(path: str | Path) -> StyleTable:
    from amlc.tables import read_text

    path = Path(path)
    if not path.exists():
        raise InputError(f"styles file not found: {path} (make one with `python -m amlc.formats`)")
    return StyleTable.from_json(read_text(path, "styles file"), f"styles file {path}")


def main(argv: Sequence[str] | None = None) -> int:
    from amlc.tables import read_table, write_text

    parser = ArgumentParser(prog="python -m amlc.formats", description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training CSV (entity_name, group_id, entity_value)")
    parser.add_argument("--output", required=True, help="where to write the styles table (JSON)")
    parser.add_argument("--exclude", help="a CSV whose `index` column lists training rows to leave out "
                                          "(the rows you will score)")
    parser.add_argument("--min-count", type=int, default=5,
                        help="labels a key needs before its style is trusted (default 5)")
    args = parser.parse_args(argv)
    if args.min_count < 1:
        raise InputError("--min-count must be at least 1")
    skip = set()
    if args.exclude:
        skip = set(read_table(args.exclude, ["index"], "exclude file", usecols=(), check_entities=False)["index"])
    table, rows = learn_file(args.train, skip, args.min_count)
    write_text(args.output, table.to_json())
    n = sum(c[1] for c in table.counts[-1].values())
    print(f"learned from {n} whole-number labels of {rows} rows -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
