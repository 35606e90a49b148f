"""Raw predictions -> final submission: every row "" or a valid "x unit" for its entity.

Input RAW.csv (from merge_csv.py or any model): `index,prediction` (other columns are ignored).
Input T.csv: the test file, which gives each row's entity_name and the output order.
Output: `index,prediction` in T's index order; every row passes the sanity checker and uses a unit
its entity allows (amlc.units.normalize does the work; see its policies). A summary counts the rows
left unchanged, reformatted, converted, resolved from a range, and blanked, by reason.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from amlc.catalogue import Catalogue
from amlc.catalogue import load as load_catalogue
from amlc.errors import ArgumentParser, InputError, cli
from amlc.formats import StyleTable, restyle
from amlc.formats import load as load_styles
from amlc.tables import atomic_open, gc_paused, read_table
from amlc.units import RANGE_POLICIES, normalize_ex

if TYPE_CHECKING:
    import pandas as pd

BLANK_REASONS = ("no number", "no unit", "unit not allowed", "range blanked", "negative number",
                 "ambiguous number")


@dataclass
class Summary:
    rows: int = 0
    reasons: Counter = field(default_factory=Counter)
    filled_missing: int = 0
    restyled: int = 0
    filled_prior: int = 0

    @property
    def changed(self) -> int:
        return sum(n for r, n in self.reasons.items() if r not in ("unchanged", "empty"))

    @property
    def blanked(self) -> int:
        return sum(self.reasons[r] for r in BLANK_REASONS)

    def lines(self) -> list[str]:
        out = [f"rows: {self.rows}",
               f"  valid as given:           {self.reasons['unchanged']}",
               f"  empty as given:           {self.reasons['empty']}",
               f"  changed:                  {self.changed}",
               f"    reformatted:            {self.reasons['reformatted']}",
               f"    converted unit:         {self.reasons['converted']}",
               f"    range -> one value:     {self.reasons['range']}",
               f"    blanked:                {self.blanked}"]
        out += [f"      {r + ':':<22}{self.reasons[r]}" for r in BLANK_REASONS if self.reasons[r]]
        if self.restyled:
            out.append(f"  whole numbers restyled:   {self.restyled} (as the labels of their kind)")
        if self.filled_missing:
            out.append(f"  missing from input, written empty: {self.filled_missing}")
        if self.filled_prior:
            out.append(f"  blanks filled with the catalogue's most common value: {self.filled_prior}")
        return out


def postprocess_rows(indices: list[int], entities: list[str], raw: dict[int, str],
                     range_policy: str = "max", allow_missing: bool = False,
                     groups: list[str] | None = None, styles: StyleTable | None = None,
                     fill: Catalogue | None = None) -> tuple[list[str], Summary]:
    """The final prediction of each (index, entity), in that order, from raw predictions by index.

    With `styles` (amlc.formats) and each row's group id, whole numbers are then written the way
    the training labels of their kind are ("500 gram" or "500.0 gram"). With `fill` (amlc.catalogue),
    every row still blank gets its group's most common label: a bet that the hidden truth is never
    blank (a guess matches about one catalogue row in ten; a blank matches none then).
    """
    unknown = sorted(set(raw) - set(indices))
    if unknown:
        raise InputError(f"raw predictions have {len(unknown)} index(es) not in the test file, "
                         f"e.g. {unknown[:5]}")
    missing = [i for i in indices if i not in raw]
    if missing and not allow_missing:
        raise InputError(f"raw predictions lack {len(missing)} index(es) of the test file, e.g. "
                         f"{missing[:5]} (use --allow-missing to write them empty)")
    summary = Summary(rows=len(indices), filled_missing=len(missing))
    get = raw.get
    results = [normalize_ex(get(index, ""), entity, range_policy) for index, entity in zip(indices, entities)]
    summary.reasons.update(r.reason for r in results)
    out = [r.prediction for r in results]
    if styles is not None:
        styled = [restyle(p, e, g, styles) if p else p for p, e, g in zip(out, entities, groups)]  # type: ignore[arg-type]
        summary.restyled = sum(a != b for a, b in zip(out, styled))
        out = styled
    if fill is not None:
        filled = [p or fill.prior_value(e, g) for p, e, g in zip(out, entities, groups)]  # type: ignore[arg-type]
        summary.filled_prior = sum(a != b for a, b in zip(out, filled))
        out = filled
    return out, summary


def postprocess_frame(test: pd.DataFrame, raw: pd.DataFrame, range_policy: str = "max",
                      allow_missing: bool = False, styles: StyleTable | None = None,
                      ) -> tuple[pd.DataFrame, Summary]:
    """test: index + entity_name (+ group_id with `styles`); raw: index + prediction.
    Returns (index, prediction) in test order."""
    import pandas as pd

    if styles is not None and "group_id" not in test.columns:
        raise InputError("styles need each row's group_id, and the test file has no group_id column")
    out, summary = postprocess_rows(test["index"].tolist(), test["entity_name"].tolist(),
                                    dict(zip(raw["index"].tolist(), raw["prediction"].tolist())),
                                    range_policy, allow_missing,
                                    test["group_id"].tolist() if styles is not None else None, styles)
    return pd.DataFrame({"index": test["index"].to_numpy(), "prediction": out}), summary


def postprocess_files(test_filename: str | Path, input_filename: str | Path, output_filename: str | Path,
                      range_policy: str = "max", allow_missing: bool = False,
                      styles: str | Path | None = None, fill: str = "none") -> Summary:
    # The csv module, not pandas: this command must start and finish fast (a test.csv-sized file
    # in well under 2 s), and pandas alone takes most of a second to import.
    table = load_styles(styles) if styles else None
    prior = load_catalogue() if fill == "prior" else None
    by_group = table is not None or prior is not None
    with gc_paused():
        test = read_table(test_filename, ["index", "entity_name"] + (["group_id"] if by_group else []),
                          "test file", usecols=())
        raw = read_table(input_filename, ["index", "prediction"], "raw predictions file",
                         check_entities=False, usecols=())
        out, summary = postprocess_rows(test["index"], test["entity_name"],
                                        dict(zip(raw["index"], raw["prediction"])), range_policy,
                                        allow_missing, test["group_id"] if by_group else None, table,
                                        prior)
        with atomic_open(output_filename, newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["index", "prediction"])
            writer.writerows(zip(test["index"], out))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="postprocessing.py",
        description="Turn raw predictions into a valid submission: every value becomes \"\" or "
                    "\"<number> <unit>\" with a unit the row's entity allows (spellings, decimal "
                    "commas, ranges and exact unit conversions handled; see amlc.units).")
    parser.add_argument("--test_filename", required=True,
                        help="test CSV: gives each row's entity_name and the output order")
    parser.add_argument("--input", required=True, help="raw predictions CSV with index,prediction")
    parser.add_argument("--output_filename", required=True,
                        help="where to write the submission CSV (index,prediction)")
    parser.add_argument("--range-policy", default="max", choices=RANGE_POLICIES,
                        help="how a range such as 100-240V becomes one value (default: max, the "
                             "upper bound)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write test rows absent from --input as empty instead of failing")
    parser.add_argument("--styles", metavar="JSON",
                        help="write whole numbers as the training labels of the same group and unit "
                             "are written (\"500 gram\" or \"500.0 gram\"); the table comes from "
                             "`python -m amlc.formats`. Default: Python's float style (\"500.0\")")
    parser.add_argument("--fill", default="none", choices=("none", "prior"),
                        help="prior: write each row left blank as its product group's most common "
                             "training label (the entity's where the group has none; amlc.catalogue), "
                             "for a leaderboard whose truth is never "
                             "blank; none (default): leave blanks blank, the better bet when an "
                             "unprinted value's truth is blank")
    args = parser.parse_args(argv)
    summary = postprocess_files(args.test_filename, args.input, args.output_filename,
                                args.range_policy, args.allow_missing, args.styles, args.fill)
    print("\n".join(summary.lines()))
    print(f"wrote {args.output_filename}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
