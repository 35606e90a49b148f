"""amlc.shards: split, numbering, append-only resumable shard files, merge checks."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amlc.errors import InputError
from amlc.shards import (
    ShardWriter,
    done_indices,
    list_shard_files,
    merge_shards,
    needs_retry,
    read_shard,
    resolve_shard,
    shard_bounds,
    shard_filename,
    shard_of,
    shard_path,
)


# ---- split -----------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(n_rows=st.integers(0, 5000), n=st.integers(1, 300))
def test_shards_cover_every_row_exactly_once(n_rows, n):
    bounds = [shard_bounds(n_rows, k, n) for k in range(n)]
    covered = [pos for start, stop in bounds for pos in range(start, stop)]
    assert covered == list(range(n_rows))  # each once, in order: contiguous and disjoint
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger shards come first
    for pos in range(0, n_rows, max(1, n_rows // 50)):
        k = shard_of(pos, n_rows, n)
        assert bounds[k][0] <= pos < bounds[k][1]


def test_more_shards_than_rows_gives_empty_shards():
    assert [shard_bounds(3, k, 5) for k in range(5)] == [(0, 1), (1, 2), (2, 3), (3, 3), (3, 3)]


@pytest.mark.parametrize("k,n", [(8, 8), (-1, 4), (0, 0)])
def test_out_of_range_shard_is_an_error(k, n):
    with pytest.raises(InputError, match="at least 1|numbered from 0"):
        shard_bounds(10, k, n)


def test_shard_equal_to_n_suggests_the_zero_based_one():
    with pytest.raises(InputError, match=r"0\.\.7 \(did you mean --shard 7\?\)"):
        resolve_shard(8, 8)


def test_resolve_shard_precedence():
    env = {"AMLC_SHARD": "2", "AMLC_NUM_SHARDS": "5", "SLURM_ARRAY_TASK_ID": "1",
           "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard(3, 6, env=env)[:2] == (3, 6)
    assert resolve_shard(None, None, env=env)[:2] == (2, 5)
    slurm = {k: v for k, v in env.items() if k.startswith("SLURM")}
    assert resolve_shard(None, None, env=slurm)[:2] == (1, 4)
    assert resolve_shard(None, None, default_num_shards=3, env={})[:2] == (0, 3)


def test_slurm_array_starting_at_one_or_with_a_step():
    env = {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert resolve_shard(None, None, env=env)[:2] == (7, 8)
    env = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
           "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard(None, None, env=env)[:2] == (3, 4)
    with pytest.raises(InputError, match="not an integer"):
        resolve_shard(None, None, env={"AMLC_SHARD": "three"})
    with pytest.raises(InputError, match="from AMLC_SHARD"):
        resolve_shard(None, 2, env={"AMLC_SHARD": "2"})


def test_file_names_sort_and_parse(tmp_path):
    assert shard_filename(3, 8) == "shard-3-of-8.jsonl"
    assert shard_filename(3, 16) == "shard-03-of-16.jsonl"
    names = [shard_filename(k, 12) for k in range(12)]
    assert sorted(names) == names
    for name in names + ["notes.jsonl", "shard-1-of-12.jsonl.tmp"]:
        (tmp_path / name).write_text("")
    assert sorted(list_shard_files(tmp_path)) == [(k, 12) for k in range(12)]
    (tmp_path / "shard-1-of-12.jsonl").write_text("")  # shard 1 under a second, unpadded name
    with pytest.raises(InputError, match="two files"):
        list_shard_files(tmp_path)


# ---- writer and reader ----------------------------------------------------------------------------

def rec(i, prediction="1.0 gram", **kw):
    return {"index": i, "entity_name": "item_weight", "prediction": prediction, "candidate": prediction,
            "confidence": 0.5, "raw": "r", "reason": "", "engine": "fake", "seconds": 0.1, **kw}


def test_append_then_resume(tmp_path):
    path = shard_path(tmp_path / "preds", 0, 1)
    with ShardWriter(path) as w:
        assert w.done == set() and w.existing == []
        w.append([rec(1), rec(2)])
        w.append([rec(3, raw="line\nbreak \u2028 ünï")])
        with pytest.raises(ValueError, match="already"):
            w.append([rec(2)])
    assert done_indices(path) == {1, 2, 3}
    assert read_shard(path).records[2]["raw"] == "line\nbreak \u2028 ünï"
    with ShardWriter(path) as w:
        assert w.done == {1, 2, 3} and w.truncated_bytes == 0
        w.append([rec(4)])
    assert path.read_bytes().count(b"\n") == 4


def test_torn_tail_is_cut_on_resume_and_ignored_by_readers(tmp_path):
    path = tmp_path / "shard-0-of-1.jsonl"
    good = b"".join(json.dumps(rec(i)).encode() + b"\n" for i in range(3))
    torn = json.dumps(rec(3)).encode()[:17]
    path.write_bytes(good + torn)
    assert done_indices(path) == {0, 1, 2}
    assert read_shard(path).torn_bytes == len(torn)
    with ShardWriter(path) as w:
        assert w.truncated_bytes == len(torn) and w.done == {0, 1, 2}
        w.append([rec(3)])
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(x)["index"] for x in lines[:-1]] == [0, 1, 2, 3]


def test_damaged_middle_line_and_duplicates_are_errors(tmp_path):
    path = tmp_path / "shard-0-of-1.jsonl"
    path.write_bytes(json.dumps(rec(0)).encode() + b"\n{oops\n" + json.dumps(rec(1)).encode() + b"\n")
    with pytest.raises(InputError, match="line 2 .* not valid JSON"):
        ShardWriter(path)
    path.write_text(json.dumps(rec(0)) + "\n" + json.dumps(rec(0)) + "\n")
    with pytest.raises(InputError, match="index 0 appears twice .*lines 1 and 2"):
        read_shard(path)
    path.write_text(json.dumps({"index": "7", "prediction": ""}) + "\n")
    with pytest.raises(InputError, match="no integer 'index'"):
        read_shard(path)


def test_retried_rows_are_dropped_and_rewritten_without_a_duplicate(tmp_path):
    path = shard_path(tmp_path, 0, 1)
    rows = [rec(0), rec(1, prediction="", reason="image_missing"), rec(2, prediction="", reason="nothing_found"),
            rec(3, prediction="", reason="error: CUDA out of memory"), rec(4, prediction="", reason="no_image_link"),
            rec(5, prediction="", reason="download_failed: HTTP 503"), rec(6, prediction="", reason="below_threshold")]
    with ShardWriter(path) as w:
        w.append(rows)
    kept = [line for line in path.read_bytes().splitlines(keepends=True) if json.loads(line)["index"] in (0, 2, 4, 6)]
    assert [r["index"] for r in rows if needs_retry(r)] == [1, 3, 5]
    assert needs_retry(rec(9, prediction="", reason="unreadable image"))  # the OCR engine's word for it
    assert not needs_retry(rec(9, prediction="", reason="no mention"))
    with ShardWriter(path, fields=("index", "prediction", "reason")) as w:
        assert w.drop([r["index"] for r in w.existing if needs_retry(r)]) == 3
        assert w.done == {0, 2, 4, 6} and [r["index"] for r in w.existing] == [0, 2, 4, 6]
        assert path.read_bytes() == b"".join(kept)  # the other lines byte for byte
        with pytest.raises(InputError, match="another process"):
            ShardWriter(path)  # the rewritten file is locked too
        w.append([rec(1), rec(3), rec(5)])
    assert sorted(read_shard(path).indices) == list(range(7))
    merged = merge_shards(tmp_path, list(range(7)))
    assert [r["prediction"] for r in merged.records][1] == "1.0 gram"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _hold_lock(path, ready, release):
    with ShardWriter(path):
        ready.set()
        release.wait(10)


def test_a_second_writer_on_the_same_shard_is_refused(tmp_path):
    path = tmp_path / "shard-0-of-1.jsonl"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(path, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(InputError, match="another process"):
            ShardWriter(path)
    finally:
        release.set()
        proc.join(30)
    with ShardWriter(path) as w:  # free again once the holder is gone
        w.append([rec(0)])


# ---- merge -----------------------------------------------------------------------------------------

def write_split(folder, order, n, skip=()):
    for k in range(n):
        start, stop = shard_bounds(len(order), k, n)
        with ShardWriter(shard_path(folder, k, n)) as w:
            w.append([rec(i, prediction=f"{i}.0 gram") for i in order[start:stop] if i not in skip])


def test_merge_returns_test_order(tmp_path):
    order = [5, 3, 9, 1, 0, 7, 2]
    write_split(tmp_path, order, 3)
    result = merge_shards(tmp_path, order)
    assert [r["index"] for r in result.records] == order
    assert [r["prediction"] for r in result.records] == [f"{i}.0 gram" for i in order]
    assert result.num_shards == 3 and len(result.files) == 3 and result.filled == 0


def test_merge_more_shards_than_rows(tmp_path):
    write_split(tmp_path, [4, 2], 5)
    assert [r["index"] for r in merge_shards(tmp_path, [4, 2]).records] == [4, 2]


def test_merge_errors_say_what_to_do(tmp_path):
    order = list(range(20))
    write_split(tmp_path / "a", order, 4, skip={6, 7})
    with pytest.raises(InputError, match=r"2 test row\(s\) have no prediction .*shard 1: 2 of 5 rows "
                                         r"missing.*--shard K --num-shards 4"):
        merge_shards(tmp_path / "a", order)
    filled = merge_shards(tmp_path / "a", order, fill_missing=True)
    assert filled.filled == 2 and filled.records[6]["reason"] == "missing_from_shards"

    with pytest.raises(InputError, match=r"not in the test file: 19"):
        merge_shards(tmp_path / "a", order[:19] + [99], fill_missing=True)

    write_split(tmp_path / "b", order, 4)
    shard_path(tmp_path / "b", 2, 4).unlink()
    with pytest.raises(InputError, match=r"1 of 4 shard files are missing.*shard\(s\) 2"):
        merge_shards(tmp_path / "b", order)
    assert merge_shards(tmp_path / "b", order, fill_missing=True).filled == 5

    write_split(tmp_path / "c", order, 4)
    write_split(tmp_path / "c", order, 2)
    with pytest.raises(InputError, match="mixes shard files of different splits"):
        merge_shards(tmp_path / "c", order)

    write_split(tmp_path / "d", order, 2)
    with ShardWriter(shard_path(tmp_path / "d", 1, 2)) as w:
        w.append([rec(3)])  # index 3 belongs to shard 0 and is already there
    with pytest.raises(InputError, match="index 3 is in both shard-0-of-2.jsonl and shard-1-of-2.jsonl"):
        merge_shards(tmp_path / "d", order)

    with pytest.raises(InputError, match="no shard files"):
        merge_shards(tmp_path, order)
    with pytest.raises(InputError, match="not found"):
        merge_shards(tmp_path / "nope", order)


def test_merge_warns_about_a_torn_tail(tmp_path):
    order = list(range(6))
    write_split(tmp_path, order, 2, skip={5})
    with open(shard_path(tmp_path, 1, 2), "ab") as fh:
        fh.write(json.dumps(rec(5)).encode()[:10])
    result = merge_shards(tmp_path, order, fill_missing=True)
    assert result.filled == 1 and "unfinished line" in result.warnings[0]


def test_a_file_system_without_locks_only_warns(tmp_path, monkeypatch, capsys):
    fcntl = pytest.importorskip("fcntl")
    import errno

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with ShardWriter(tmp_path / "shard-0-of-1.jsonl") as w:
        w.append([rec(0)])
    assert "cannot lock" in capsys.readouterr().err
    assert done_indices(tmp_path / "shard-0-of-1.jsonl") == {0}
