"""The organisers' acceptance rules for a submission, with every failure listed.

A prediction is accepted exactly when the organisers' `parse_string` accepts it: empty (or what pandas
reads as missing: "", "NA", "nan", "null"...) is valid; otherwise, once stripped, it must match
`^-?\\d+(\\.\\d+)?\\s+[a-zA-Z\\s]+$`, its first word must parse as a float, and its unit (the rest),
after their two fixes ("ter" -> "tre", "feet" -> "foot"), must be one of the allowed units of ANY
entity. The file must be a .csv with `index` and `prediction` columns, and its indices must be
exactly the test file's.

Where we differ, on purpose: the organisers printed "Error: ..." at the first bad row and exited 0,
and only printed missing/extra indices. We list every bad row with its file line, treat missing,
extra and repeated indices as failures, and exit 1 on any failure (2 when a file cannot be read).
We also warn, without failing, about a valid unit that the row's entity does not allow (the
organisers accept "5.0 volt" as a width; it can never score).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from amlc.constants import ALLOWED_UNITS, ENTITY_UNIT_MAP
from amlc.errors import ArgumentParser, InputError, cli
from amlc.tables import as_int, gc_paused, line_of, read_table

_PATTERN = re.compile(r"^-?\d+(\.\d+)?\s+[a-zA-Z\s]+$")


def common_mistake(unit: str) -> str:
    """The organisers' two spelling fixes, in their order."""
    if unit in ALLOWED_UNITS:
        return unit
    if unit.replace("ter", "tre") in ALLOWED_UNITS:
        return unit.replace("ter", "tre")
    if unit.replace("feet", "foot") in ALLOWED_UNITS:
        return unit.replace("feet", "foot")
    return unit


def parse_string(s: object) -> tuple[float | None, str | None]:
    """The organisers' parser: (number, unit), (None, None) for empty; ValueError when invalid."""
    s_stripped = "" if s is None or str(s) == "nan" else str(s).strip()
    if s_stripped == "":
        return None, None
    if not _PATTERN.match(s_stripped):
        raise ValueError(f"Invalid format in {s}")
    parts = s_stripped.split(maxsplit=1)
    number = float(parts[0])
    unit = common_mistake(parts[1])
    if unit not in ALLOWED_UNITS:
        raise ValueError(f"Invalid unit [{unit}] found in {s}. Allowed units: {sorted(ALLOWED_UNITS)}")
    return number, unit


def check_value(s: object) -> str | None:
    """None when the organisers accept `s`, else why not."""
    try:
        parse_string(s)
    except ValueError as exc:
        return str(exc).split(". Allowed units")[0]
    return None


@dataclass
class SanityReport:
    rows: int = 0
    bad_rows: list[tuple[int, int, str, str]] = field(default_factory=list)  # (line, index, value, why)
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    bad_index_lines: list[int] = field(default_factory=list)
    entity_warnings: list[tuple[int, int, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.bad_rows or self.missing or self.extra or self.repeated or self.bad_index_lines)


def _require_csv_name(path: str | os.PathLike, what: str) -> None:
    if not str(path).lower().endswith(".csv"):
        raise InputError(f"{what} must be a .csv file (the organisers' rule): {path}")


def check_files(test_filename: str | os.PathLike, output_filename: str | os.PathLike) -> SanityReport:
    _require_csv_name(test_filename, "test file")
    _require_csv_name(output_filename, "output file")
    # read without pandas (fast start); missing-value markers ("NA", "null", ...) are read as
    # empty exactly as the organisers' pandas-based checker read them
    with gc_paused():
        # the test file's own columns too: a submission given as the test file is an error, not
        # a list of "extra" indices
        test = read_table(test_filename, ["index", "entity_name"], "test file", usecols=())
        out = read_table(output_filename, ["index", "prediction"], "output file", index_column=False,
                         check_entities=False, usecols=())
        return check_rows(test["index"], test["entity_name"], out["index"], out["prediction"])


def check_rows(test_index: list[int], test_entities: list[str | None], out_index: list,
               predictions: list[str]) -> SanityReport:
    """Every check on the rows of a test file and of a submission (index cells as read)."""
    report = SanityReport(rows=len(out_index))
    ints = [as_int(v) for v in out_index]
    report.bad_index_lines = [line_of(pos) for pos, v in enumerate(ints) if v is None]
    seen: set[int] = set()
    repeated: set[int] = set()
    for v in ints:
        if v is not None:
            (repeated if v in seen else seen).add(v)
    report.repeated = sorted(repeated)
    test_idx = set(test_index)
    report.missing = sorted(test_idx - seen)
    report.extra = sorted(seen - test_idx)
    entity_of = dict(zip(test_index, test_entities))
    for pos, (index, value) in enumerate(zip(ints, predictions)):
        why = check_value(value)
        if why:
            report.bad_rows.append((line_of(pos), -1 if index is None else index, value, why))
            continue
        entity = entity_of.get(index)
        if entity and value.strip():
            unit = common_mistake(value.strip().split(maxsplit=1)[1])
            if unit not in ENTITY_UNIT_MAP[entity]:
                report.entity_warnings.append((line_of(pos), index, value, entity))
    return report


def _show(items: Sequence[object], limit: int = 20) -> str:
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def print_report(report: SanityReport, output_filename: str | os.PathLike, limit: int = 50) -> None:
    for line, index, value, why in report.bad_rows[:limit]:
        print(f"{output_filename}:{line}: index {index}: {value!r}: {why}")
    if len(report.bad_rows) > limit:
        print(f"... and {len(report.bad_rows) - limit} more invalid rows")
    if report.bad_index_lines:
        print(f"non-integer index on line(s): {_show(report.bad_index_lines)}")
    if report.missing:
        print(f"missing index (in the test file, not in the output): {_show(report.missing)}")
    if report.extra:
        print(f"extra index (in the output, not in the test file): {_show(report.extra)}")
    if report.repeated:
        print(f"repeated index: {_show(report.repeated)}")
    for line, index, value, entity in report.entity_warnings[:10]:
        print(f"warning: {output_filename}:{line}: index {index}: {value!r} is not a unit of "
              f"{entity} (accepted by the organisers' checker, but it cannot score)")
    if len(report.entity_warnings) > 10:
        print(f"warning: ... and {len(report.entity_warnings) - 10} more rows with a unit their "
              "entity does not allow")
    if report.ok:
        print(f"Parsing successful for file: {output_filename} ({report.rows} rows)")
    else:
        print(f"FAILED: {output_filename}: {len(report.bad_rows)} invalid rows, "
              f"{len(report.missing)} missing, {len(report.extra)} extra, "
              f"{len(report.repeated)} repeated, {len(report.bad_index_lines)} bad index")


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="sanity.py",
        description="Check a submission CSV the way the organisers' checker does, listing every "
                    "failure. Exit 0: valid; 1: invalid rows or indices; 2: a file cannot be read.")
    parser.add_argument("--test_filename", required=True,
                        help="the test CSV (index, image_link, group_id, entity_name)")
    parser.add_argument("--output_filename", required=True,
                        help="the submission CSV to check (index, prediction)")
    args = parser.parse_args(argv)
    report = check_files(args.test_filename, args.output_filename)
    print_report(report, args.output_filename)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(cli(main))
