"""Shards: a deterministic split of the input rows, append-only resumable shard files, and their merge.

Numbering. Shards are 0-based: `--shard K --num-shards N` takes K in 0..N-1, as TFRecord's
`00003-of-00008` does, so a SLURM array `--array=0-7` maps straight onto 8 shards. `--shard 8` with N=8
is an error that says so. K and N may come from the environment (see `resolve_shard`): AMLC_SHARD /
AMLC_NUM_SHARDS (any scheduler), else a SLURM job array (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN,
divided by SLURM_ARRAY_TASK_STEP, and SLURM_ARRAY_TASK_COUNT), so `--array=1-8` works as well as `0-7`.

Split. Shard K of N holds the contiguous block of input rows (file order, not index values) given by
`shard_bounds(n_rows, K, N)`: the first n_rows % N shards get one row more than the others, like
numpy.array_split. The same input file and N always give the same blocks, on any machine; N larger than
the row count gives empty shards, which still write an (empty) shard file so the merge sees all N.

Shard file `shard-K-of-N.jsonl` (K zero-padded to the width of N so names sort: `shard-03-of-16.jsonl`).
UTF-8, one JSON object per line, one line per input row of the shard, in the order rows were finished:

    index        int         the input row's `index`
    entity_name  str         the row's entity
    prediction   str         the answer after abstention: "" or "x unit" (postprocessing finalises it)
    candidate    str         the engine's answer before abstention, kept so thresholds can be re-tuned
                             and re-applied at merge time without running the engine again
    confidence   float|null  the engine's confidence in [0, 1]; null when the engine has none
    raw          str         what the engine read or generated (OCR text, model text)
    reason       str         why `prediction` is "" ("" when it is not): image_missing, no_image_link,
                             download_failed: ..., image_undecodable: ..., below_threshold, or the
                             engine's own reason
    engine       str         the engine that produced the row
    seconds      float       the engine's wall time for the row's batch divided by the rows it held
                             (0 for rows the engine never saw, such as missing images)
    extra        object      optional: the engine's own details (Result.extra), when it gave any

Crash safety. A batch's lines go out in one write, then flush + fsync, so a kill -9 can only tear the
last line. `ShardWriter` takes an exclusive lock on the file (two processes on one shard would
duplicate rows), reads what is there, cuts a torn tail off, and appends only rows not yet in the file,
so the file never holds a duplicate or a torn line after a resume. A damaged line in the middle (an
edit, a disk fault) is an error naming the line, never silently dropped.

Retries. A row left empty for want of its input or by a failure (`needs_retry`: reasons image_missing,
download_failed, image_undecodable, error: ..., and the engines' like them) is not done: a rerun
predicts it again. Its old line
is removed first by rewriting the file without it (`ShardWriter.drop`: a new file, locked and
fsynced, renamed over the old one), so the file keeps one line per row and every reader stays as is.

Merge. `merge_shards` reads every shard file of one split in a folder and returns the rows in the test
file's index order. Shard files of different N in one folder, missing shard files, an index in two
places, an index that is not in the test file and a test row without a prediction are errors that say
which shard to rerun; `fill_missing=True` leaves the missing rows empty (reason missing_from_shards).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from amlc.errors import InputError

SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)\.jsonl$")

FIELDS = ("index", "entity_name", "prediction", "candidate", "confidence", "raw", "reason", "engine",
          "seconds")
# Why an empty row may read differently next time: its image was absent, failed or broken, or the engine
# failed on it (the runner's reasons, then the engines' own: the vlm engine's "error: ...", the OCR
# engine's "missing image", "unreadable image" and "rules error"). Answers and the engines' real
# blanks (nothing found, no mention, below threshold...) are final.
RETRY_REASONS = ("image_missing", "download_failed", "image_undecodable", "error", "missing image",
                 "unreadable image", "rules error")


def needs_retry(record: Mapping[str, Any]) -> bool:
    """Should a rerun predict this shard-file row again? (see RETRY_REASONS)"""
    reason = record.get("reason") or ""
    return not record.get("prediction") and reason.split(":", 1)[0] in RETRY_REASONS


# ---- numbering and split -------------------------------------------------------------------------

def shard_bounds(n_rows: int, k: int, n: int) -> tuple[int, int]:
    """Row positions [start, stop) of shard k (0-based) of n over n_rows rows."""
    if n < 1:
        raise InputError(f"the number of shards must be at least 1, got {n}")
    if not 0 <= k < n:
        raise InputError(_range_message(k, n))
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    size, extra = divmod(n_rows, n)
    start = k * size + min(k, extra)
    return start, start + size + (1 if k < extra else 0)


def shard_of(position: int, n_rows: int, n: int) -> int:
    """The shard that holds row `position` (the inverse of shard_bounds)."""
    size, extra = divmod(n_rows, n)
    big = extra * (size + 1)  # rows held by the first `extra` shards, one row larger each
    if position < big:
        return position // (size + 1)
    return extra + (position - big) // size


def _size(n_rows: int, k: int, n: int) -> int:
    start, stop = shard_bounds(n_rows, k, n)
    return stop - start


def _range_message(k: int, n: int, source: str = "") -> str:
    hint = f" (did you mean --shard {k - 1}?)" if k == n else ""
    src = f" from {source}" if source else ""
    return (f"shard {k}{src} is out of range for {n} shard(s): shards are numbered from 0, "
            f"so K must be in 0..{n - 1}{hint}")


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_shard(shard: int | None, num_shards: int | None, default_num_shards: int = 1,
                  env: Mapping[str, str] | None = None) -> tuple[int, int, str]:
    """(K, N, where they came from): flags first, then AMLC_SHARD/AMLC_NUM_SHARDS, then a SLURM array.

    Without any of those, K = 0 and N = `default_num_shards` (the config's inference.num_shards).
    """
    env = os.environ if env is None else env
    k_src = n_src = ""
    if num_shards is not None:
        n, n_src = num_shards, "--num-shards"
    elif (n := _env_int(env, "AMLC_NUM_SHARDS")) is not None:
        n_src = "AMLC_NUM_SHARDS"
    elif (n := _env_int(env, "SLURM_ARRAY_TASK_COUNT")) is not None:
        n_src = "SLURM_ARRAY_TASK_COUNT"
    else:
        n, n_src = default_num_shards, "inference.num_shards"
    if shard is not None:
        k, k_src = shard, "--shard"
    elif (k := _env_int(env, "AMLC_SHARD")) is not None:
        k_src = "AMLC_SHARD"
    elif (task := _env_int(env, "SLURM_ARRAY_TASK_ID")) is not None:
        first = _env_int(env, "SLURM_ARRAY_TASK_MIN") or 0
        step = _env_int(env, "SLURM_ARRAY_TASK_STEP") or 1
        if (task - first) % step:
            raise InputError(f"SLURM_ARRAY_TASK_ID={task} is not on the array's grid (min {first}, "
                             f"step {step}); set AMLC_SHARD explicitly")
        k, k_src = (task - first) // step, "SLURM_ARRAY_TASK_ID"
    else:
        k, k_src = 0, "default"
    if n < 1:
        raise InputError(f"the number of shards ({n_src}) must be at least 1, got {n}")
    if not 0 <= k < n:
        raise InputError(_range_message(k, n, k_src))
    return k, n, f"shard from {k_src}, count from {n_src}"


def shard_filename(k: int, n: int) -> str:
    return f"shard-{k:0{len(str(n))}d}-of-{n}.jsonl"


def shard_path(directory: str | os.PathLike, k: int, n: int) -> Path:
    return Path(directory) / shard_filename(k, n)


def list_shard_files(directory: str | os.PathLike) -> dict[tuple[int, int], Path]:
    """{(K, N): path} for every shard file in `directory`."""
    out: dict[tuple[int, int], Path] = {}
    for p in sorted(Path(directory).iterdir()):
        m = SHARD_RE.match(p.name)
        if m and p.is_file():
            key = (int(m.group(1)), int(m.group(2)))
            if key in out:  # shard-3-of-8 and shard-03-of-8: one shard under two names
                raise InputError(f"shard {key[0]} of {key[1]} has two files: {out[key].name} and {p.name}")
            out[key] = p
    return out


# ---- reading ---------------------------------------------------------------------------------------

@dataclass
class ShardContents:
    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    good_end: int = 0  # byte offset after the last complete line
    torn_bytes: int = 0  # bytes after good_end (an unfinished line left by a kill)

    @property
    def indices(self) -> list[int]:
        return [r["index"] for r in self.records]


def _check_record(obj: Any, path: Path, lineno: int) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(f"line {lineno} of {path} is not a JSON object")
    idx = obj.get("index")
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise InputError(f"line {lineno} of {path} has no integer 'index' (got {idx!r})")
    if not isinstance(obj.get("prediction"), str):
        raise InputError(f"line {lineno} of {path} has no string 'prediction'")
    return obj


def read_shard_handle(fh: IO[bytes], path: Path, fields: Sequence[str] | None = None) -> ShardContents:
    """Parse an open shard file from its start; a torn (unterminated) last line is reported, not parsed.

    `fields`: keep only these keys of each record (saves memory when only indices are needed).
    """
    out = ShardContents(path=path)
    seen: dict[int, int] = {}
    fh.seek(0)
    offset = 0
    for lineno, line in enumerate(fh, start=1):
        if not line.endswith(b"\n"):
            out.torn_bytes = len(line)  # only the last line can lack its newline
            break
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"line {lineno} of {path} is not valid JSON ({exc}); the file was edited "
                             f"or damaged: delete that line (and any after it) and rerun to redo them")
        rec = _check_record(obj, path, lineno)
        if rec["index"] in seen:
            raise InputError(f"index {rec['index']} appears twice in {path} (lines {seen[rec['index']]} "
                             f"and {lineno}); delete one of them")
        seen[rec["index"]] = lineno
        out.records.append(rec if fields is None else {k: rec.get(k) for k in fields})
        offset += len(line)
    out.good_end = offset
    return out


def read_shard(path: str | os.PathLike, fields: Sequence[str] | None = None) -> ShardContents:
    path = Path(path)
    with open(path, "rb") as fh:
        return read_shard_handle(fh, path, fields)


def done_indices(path: str | os.PathLike) -> set[int]:
    """Indices already in a shard file (empty when the file does not exist); a torn tail is ignored."""
    path = Path(path)
    if not path.exists():
        return set()
    return set(read_shard(path, fields=("index",)).indices)


# ---- writing ---------------------------------------------------------------------------------------

def _lock(fh: IO[bytes], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one process per shard is then the user's care
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            fh.close()
            raise InputError(f"{path} is being written by another process (its lock is held); run "
                             f"each shard once at a time") from None
        # Some cluster file systems (Lustre without -o flock, old NFS) have no locks at all: go on.
        print(f"warning: cannot lock {path} ({exc.strerror}); make sure no other process runs this "
              f"shard", file=sys.stderr)


def _fsync_dir(folder: Path) -> None:
    # a rename is durable once its folder is synced; some systems cannot open a folder: skip there
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _clean(value: Any) -> Any:
    # NaN/inf are not JSON; a confidence the engine could not compute is "none".
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_record(record: Mapping[str, Any]) -> bytes:
    return (json.dumps({k: _clean(v) for k, v in record.items()}, ensure_ascii=False,
                       separators=(",", ":"), default=str) + "\n").encode("utf-8")


class ShardWriter:
    """Append-only, resumable writer of one shard file; see the module docstring.

    Opening it locks the file, reads the rows already there (`self.existing`, `self.done`) and cuts a
    torn tail off (`self.truncated_bytes` says how much). `append` writes a batch and fsyncs it.
    """

    def __init__(self, path: str | os.PathLike, fields: Sequence[str] | None = None):
        from amlc.tables import make_dirs, unwritable

        self.path = Path(path)
        make_dirs(self.path.parent, "shard folder")
        try:
            self._fh: IO[bytes] | None = open(self.path, "a+b")
        except OSError as exc:
            raise unwritable(self.path, exc, "shard file") from None
        _lock(self._fh, self.path)
        try:
            contents = read_shard_handle(self._fh, self.path, fields)
        except BaseException:
            self.close()
            raise
        self.existing = contents.records
        self.done: set[int] = set(contents.indices)
        self.truncated_bytes = contents.torn_bytes
        if contents.torn_bytes:
            self._fh.truncate(contents.good_end)
            self._sync()

    def _sync(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        if self._fh is None:
            raise ValueError(f"{self.path} is closed")
        lines = []
        batch: set[int] = set()
        for rec in records:
            idx = rec["index"]
            if idx in self.done or idx in batch:
                raise ValueError(f"index {idx} is already in {self.path}")  # a runner bug, not input
            batch.add(idx)
            lines.append(encode_record(rec))
        if lines:
            self._fh.write(b"".join(lines))
            self._sync()
            self.done |= batch
        return len(lines)

    def drop(self, indices: Iterable[int]) -> int:
        """Take the rows of `indices` out of the file (to be predicted again); returns how many.

        Atomic: the other lines go to a new file in the same folder, which is locked, fsynced and
        then renamed over this one, so a kill at any point leaves the old file or the new one whole,
        and the lock is held throughout.
        """
        assert self._fh is not None
        gone = set(indices) & self.done
        if not gone:
            return 0
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        new: IO[bytes] = open(tmp, "a+b")
        try:
            _lock(new, tmp)
            self._fh.seek(0)
            new.write(b"".join(line for line in self._fh if json.loads(line)["index"] not in gone))
            new.flush()
            os.fsync(new.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            new.close()
            tmp.unlink(missing_ok=True)
            raise
        self._fh.close()
        self._fh = new
        self.done -= gone
        self.existing = [r for r in self.existing if r["index"] not in gone]
        return len(gone)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor also releases the lock
            self._fh = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- merge -----------------------------------------------------------------------------------------

@dataclass
class MergeResult:
    records: list[dict[str, Any]]  # one per test row, in the test file's order
    num_shards: int
    files: list[Path]
    filled: int = 0  # test rows left empty because no shard had them (fill_missing)
    warnings: list[str] = field(default_factory=list)


def _first(items: Iterable[Any], k: int = 5) -> str:
    items = list(items)
    head = ", ".join(map(str, items[:k]))
    return head + (f", ... ({len(items)} in all)" if len(items) > k else "")


def merge_shards(directory: str | os.PathLike, order: Sequence[int], *,
                 fill_missing: bool = False) -> MergeResult:
    """The rows of every shard file in `directory`, one per index of `order` (the test file's indices)."""
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"shard folder not found: {directory}")
    if not directory.is_dir():
        raise InputError(f"shard folder is a file, not a folder: {directory}")
    files = list_shard_files(directory)
    if not files:
        raise InputError(f"no shard files (shard-K-of-N.jsonl) in {directory}")
    splits = sorted({n for _, n in files})
    if len(splits) > 1:
        counts = ", ".join(f"{sum(1 for _, m in files if m == n)} file(s) of N={n}" for n in splits)
        raise InputError(f"{directory} mixes shard files of different splits ({counts}); a folder must "
                         f"hold the shards of one run: move the others away")
    n = splits[0]
    bad = sorted(k for k, _ in files if k >= n)
    if bad:
        raise InputError(f"{directory} has shard numbers out of range for N={n}: {_first(bad)} "
                         f"(shards are numbered 0..{n - 1})")
    result = MergeResult(records=[], num_shards=n, files=[files[key] for key in sorted(files)])
    absent = [k for k in range(n) if (k, n) not in files]
    if absent and not fill_missing:
        raise InputError(f"{len(absent)} of {n} shard files are missing in {directory}: shard(s) "
                         f"{_first(absent)}; run `python inference/run.py --shard K --num-shards {n}` "
                         f"for each, or pass --fill_missing to leave their rows empty")
    if absent:
        result.warnings.append(f"shard file(s) {_first(absent)} of {n} missing; their rows are left empty")

    where: dict[int, Path] = {}
    by_index: dict[int, dict[str, Any]] = {}
    for key in sorted(files):
        path = files[key]
        contents = read_shard(path)
        if contents.torn_bytes:
            result.warnings.append(f"{path.name} ends with an unfinished line ({contents.torn_bytes} "
                                   f"bytes, from a killed run); ignored")
        for rec in contents.records:
            idx = rec["index"]
            if idx in where:
                raise InputError(f"index {idx} is in both {where[idx].name} and {path.name}; "
                                 f"a row must be predicted once")
            where[idx] = path
            by_index[idx] = rec

    wanted = set(order)
    if len(wanted) != len(order):
        raise InputError("the test file repeats an index")  # read_csv rejects this first
    unknown = sorted(i for i in by_index if i not in wanted)
    if unknown:
        files_with = sorted({where[i].name for i in unknown})
        raise InputError(f"{len(unknown)} index(es) in the shard files are not in the test file: "
                         f"{_first(unknown)} (in {_first(files_with, 3)}); were the shards made from "
                         f"another input?")
    missing_pos = [pos for pos, i in enumerate(order) if i not in by_index]
    if missing_pos and not fill_missing:
        per_shard: dict[int, int] = {}
        for pos in missing_pos:
            k = shard_of(pos, len(order), n)
            per_shard[k] = per_shard.get(k, 0) + 1
        sizes = {k: _size(len(order), k, n) for k in per_shard}
        detail = "; ".join(f"shard {k}: {cnt} of {sizes[k]} rows missing"
                           for k, cnt in sorted(per_shard.items()))
        raise InputError(f"{len(missing_pos)} test row(s) have no prediction (indices "
                         f"{_first(order[p] for p in missing_pos)}). By position in the test file: "
                         f"{detail}. Rerun `python inference/run.py --shard K --num-shards {n}` for "
                         f"those shards (it resumes), or pass --fill_missing to leave them empty")
    for i in order:
        rec = by_index.get(i)
        if rec is None:
            rec = {"index": i, "prediction": "", "candidate": "", "confidence": None, "raw": "",
                   "reason": "missing_from_shards", "engine": "", "seconds": 0.0}
            result.filled += 1
        result.records.append(rec)
    return result
