"""Reading and writing the pipeline's CSV files, with errors a user can act on.

Every stage reads its inputs through `read_csv`, so a missing file, an empty file, bytes that are not
UTF-8, a missing column, a bad index or an unknown entity name all end as one clear `InputError`
(file, line, what was expected) instead of a pandas traceback. Writes are atomic: a temporary file in
the same folder, then a rename, so a crash never leaves a half-written CSV under the final name.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pandas as pd

from amlc.constants import ENTITY_UNIT_MAP
from amlc.errors import InputError

# Columns read as text whatever they hold: "10" must stay the string "10", not become 10.0.
TEXT_COLUMNS = ("image_link", "entity_name", "entity_value", "prediction", "acceptable", "raw",
                "split", "path", "status", "error")


def read_csv(
    path: str | os.PathLike,
    required: Iterable[str] = (),
    what: str = "CSV file",
    *,
    index_column: bool | None = None,
    check_entities: bool = True,
) -> pd.DataFrame:
    """Read a pipeline CSV; text columns come back as str with missing values as "".

    `required`: columns that must be present. `index_column`: validate an integer, unique `index`
    column (defaults to True when "index" is required). `check_entities`: an `entity_name` column, if
    present, may only hold the competition's entity names.
    """
    path = Path(path)
    required = list(required)
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a CSV file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{what} is empty (0 bytes): {path}")
    header = _peek_header(path, what)
    dtypes = {c: str for c in TEXT_COLUMNS if c in header}
    try:
        df = pd.read_csv(path, dtype=dtypes, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}): {path}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} has no header line: {path}") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{what} is not a valid CSV ({_first_line(exc)}): {path}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)} (it has: "
                         f"{', '.join(map(str, df.columns)) or 'none'}): {path}")
    for col in dtypes:
        df[col] = df[col].fillna("")
    if index_column if index_column is not None else "index" in required:
        df["index"] = _integer_index(df, path, what)
    if check_entities and "entity_name" in df.columns:
        check_entity_names(df["entity_name"], path, what)
    return df


def _peek_header(path: Path, what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), [])
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}): {path}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def line_of(position: int) -> int:
    """The file line of a data row (row 0 is on line 2, after the header)."""
    return position + 2


def _integer_index(df: pd.DataFrame, path: Path, what: str) -> pd.Series:
    idx = pd.to_numeric(df["index"], errors="coerce")
    bad = idx.isna() | (idx != idx.round())
    if bad.any():
        pos = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"{what} has a non-integer index {df['index'].iloc[pos]!r} on line "
                         f"{line_of(pos)} ({int(bad.sum())} such rows): {path}")
    idx = idx.astype("int64")
    dup = idx.duplicated()
    if dup.any():
        pos = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"{what} repeats index {idx.iloc[pos]} (line {line_of(pos)}; "
                         f"{int(dup.sum())} repeated rows): {path}")
    return idx


def check_entity_names(names: pd.Series, path: Path | str = "", what: str = "CSV file") -> None:
    known = set(ENTITY_UNIT_MAP)
    bad = ~names.isin(known)
    if bad.any():
        pos = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"{what} has an unknown entity_name {names.iloc[pos]!r} on line "
                         f"{line_of(pos)} ({int(bad.sum())} such rows; known: "
                         f"{', '.join(sorted(known))}): {path}")


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None) -> Iterator[TextIO]:
    """Open a text file for writing that appears under `path` only once it is complete.

    The data goes to a temporary file in the same folder and is renamed into place on success, so a
    crash or Ctrl-C never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    with atomic_open(path, newline="") as fh:
        df.to_csv(fh, index=False)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)
