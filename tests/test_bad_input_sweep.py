"""Every command, fed the bad inputs a new user produces: exit 2, one `error: ...` line, never a traceback.

For each command-line tool (the top-level scripts and every `python -m amlc.*` module with a main),
each input file is swapped in turn for a missing, an empty, a non-UTF-8 and a wrong-columns file;
each output goes under a regular file (a place that cannot be written, even by root); a bad override
or flag value is given; and every flag is spelled the other way round (`--test-filename` for
`--test_filename`), which must change nothing. A CSV saved with Excel's byte order mark must be
accepted, as the organisers' pandas reader accepts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlc.constants import ENTITIES

TEST = "index,image_link,group_id,entity_name\n0,file:///none/a.jpg,1,width\n1,file:///none/b.jpg,1,voltage\n"
RAW = "index,prediction\n0,10 inch\n1,\n"
LABELS = ("index,image_link,group_id,entity_name,entity_value\n0,file:///none/a.jpg,1,width,10.0 inch\n"
          "1,file:///none/b.jpg,1,voltage,\n")
UNIT = {"width": "inch", "depth": "inch", "height": "inch", "voltage": "volt", "wattage": "watt",
        "item_volume": "litre", "item_weight": "gram", "maximum_weight_recommendation": "gram"}
TRAIN = "image_link,group_id,entity_name,entity_value\n" + "".join(
    f"file:///none/{i}.jpg,{i % 3},{ENTITIES[i % 8]},{i + 1}.0 {UNIT[ENTITIES[i % 8]]}\n" for i in range(48))

BAD_CSV = {
    "missing": None,
    "empty": b"",
    "not UTF-8": "index,prediction\n0,caf\xe9 5 volt\n".encode("latin-1"),
    "wrong columns": b"idx,pred\n0,10 inch\n",
}


def _shard_line(index: int, entity: str) -> str:
    return json.dumps({"index": index, "entity_name": entity, "prediction": "", "candidate": "",
                       "confidence": None, "raw": "", "reason": "no_answer", "engine": "ocr", "seconds": 0.0})


def _files(tmp: Path) -> dict[str, Path]:
    """Good inputs for every command; a test swaps one of them for a bad one."""
    f = {}
    for name, text in (("test", TEST), ("raw", RAW), ("labels", LABELS), ("train", TRAIN)):
        f[name] = tmp / f"{name}.csv"
        f[name].write_text(text)
    f["dataset"] = tmp / "dataset"
    f["dataset"].mkdir()
    (f["dataset"] / "test.csv").write_text(TEST)
    f["preds"] = tmp / "preds"
    f["preds"].mkdir()
    (f["preds"] / "shard-0-of-1.jsonl").write_text(_shard_line(0, "width") + "\n" + _shard_line(1, "voltage") + "\n")
    f["images"] = tmp / "images"
    f["images"].mkdir()
    f["styles"] = tmp / "styles.json"
    f["styles"].write_text(json.dumps({"version": 1, "min_count": 5,
                                       "levels": [["entity_name", "group_id", "unit"], ["entity_name", "group_id"],
                                                  ["entity_name", "unit"]], "counts": [{}, {}, {}]}))
    f["config"] = tmp / "config.yaml"
    f["config"].write_text("inference:\n  batch_size: 8\n")
    f["out"] = tmp / "out" / "result.csv"
    f["outdir"] = tmp / "out" / "folder"
    return f


# command -> (argv from the files, input roles that are CSV files, output roles, bad values)
# argv spells flags the other way round from the declaration where the command has both styles.
COMMANDS = {
    "postprocessing.py": (
        lambda f: ["postprocessing.py", "--test-filename", f["test"], "--input", f["raw"],
                   "--output-filename", f["out"], "--styles", f["styles"], "--range_policy", "max",
                   "--allow_missing"],
        ["test", "raw", "styles"], ["out"], []),
    "src/sanity.py": (
        lambda f: ["src/sanity.py", "--test-filename", f["test"], "--output-filename", f["raw"]],
        ["test", "raw"], [], []),
    "evaluate.py": (
        lambda f: ["evaluate.py", "--labels", f["labels"], "--predictions", f["raw"],
                   "--metrics", f["out"].with_suffix(".json"), "--report", f["out"].with_suffix(".html"),
                   "--images", f["images"]],
        ["labels", "raw"], ["out"], [["--images", f"{'{tmp}'}/typo"]]),
    "merge_csv.py": (
        lambda f: ["merge_csv.py", "--input-dir", f["preds"], "--test-filename", f["test"],
                   "--output-filename", f["out"], "--config", f["config"]],
        ["test", "config"], ["out"], [["inference.thresholds.width=0.6"], ["inference.nope=1"], ["--config", "{config}"],
                            ["--fill-missing", "--rethreshold", "inference.thresholds.width=-1"]]),
    "sample_code.py": (
        lambda f: ["sample_code.py", "--dataset", f["dataset"], "--output", f["out"]],
        ["dataset/test.csv"], ["out"], []),
    "inference/run.py": (
        lambda f: ["inference/run.py", "--input", f["test"], "--images", f["images"], "--output-dir",
                   f["outdir"], "--no-download", "--no-progress", "--config", f["config"]],
        ["test", "config"], ["outdir"], [["inference.batch_size=0"], ["--images", "{tmp}/typo"],
                                         ["train.learning_rate=-1"], ["--config", "{config}"],
                                         # a cache folder under a file: refused before anything is written
                                         ["--engine", "ocr", "ocr.cache_dir={tmp}/config.yaml/cache"]]),
    "inference/tune_thresholds.py": (
        lambda f: ["inference/tune_thresholds.py", "--input", f["labels"], "--preds-dir", f["preds"],
                   "--output", f["out"].with_suffix(".yaml")],
        ["labels"], ["out"], []),
    "train/run.py": (
        lambda f: ["train/run.py", "--stage", "sample", f"data.train_csv={f['train']}",
                   f"run.output_dir={f['outdir']}", "sample.size=16", "--no_progress", "--config", f["config"]],
        ["train", "config"], ["outdir"], [["train.learning_rate=-1"], ["train.torch_dtype=fp8"], ["--config", "{config}"],
                                ["sample.val_fraction=1"]]),
    "-m amlc.download": (
        lambda f: ["-m", "amlc.download", "--input", f["test"], "--out", f["outdir"], "--no-progress",
                   "--max_bytes", "1000000", "--config", f["config"]],
        ["test", "config"], ["outdir"], []),
    "-m amlc.sampling": (
        lambda f: ["-m", "amlc.sampling", "--input", f["train"], "--output", f["out"], "--size", "16",
                   "--val_fraction", "0.25", "--quiet"],
        ["train"], ["out"], [["--val_fraction", "1.5"]]),
    "-m amlc.formats": (
        lambda f: ["-m", "amlc.formats", "--train", f["train"], "--output", f["out"].with_suffix(".json"),
                   "--exclude", f["raw"], "--min_count", "5"],
        ["train", "raw"], ["out"], [["--min_count", "0"]]),
    "-m amlc.synthetic": (
        lambda f: ["-m", "amlc.synthetic", "--out", f["outdir"], "--n", "2", "--workers", "1",
                   "--test_fraction", "0.5"],
        [], ["outdir"], [["--test-fraction", "2"]]),
    "-m amlc.tiny": (lambda f: ["-m", "amlc.tiny", f["outdir"]], [], ["outdir"], []),
    # the library modules behind the top-level scripts run as commands too
    "-m amlc.postprocess": (
        lambda f: ["-m", "amlc.postprocess", "--test_filename", f["test"], "--input", f["raw"],
                   "--output_filename", f["out"]], [], ["out"], []),
    "-m amlc.sanity": (
        lambda f: ["-m", "amlc.sanity", "--test_filename", f["test"], "--output_filename", f["raw"]],
        ["test"], [], []),
    "-m amlc.evaluate": (
        lambda f: ["-m", "amlc.evaluate", "--labels", f["labels"], "--predictions", f["raw"],
                   "--metrics", f["out"].with_suffix(".json")], [], ["out"], []),
    "-m amlc.demo": (
        lambda f: ["-m", "amlc.demo", "--out", f["outdir"], "--n", "8"],
        [], ["outdir"], [["--shards", "0"]]),
}
BAD_CONFIG = b"inference:\n  batch_size: [8\n"  # given by "{config}" in a bad value: broken YAML


def _bad_file(path: Path, kind: str) -> None:
    if kind == "missing":
        path.unlink()
    else:
        path.write_bytes(BAD_CSV[kind])


def _cases():
    for name, (_, inputs, outputs, values) in COMMANDS.items():
        for role in inputs:
            for kind in BAD_CSV:
                if role == "config" and kind == "empty":
                    continue  # an empty YAML file is an empty config: the defaults, no error
                # every command meets every kind of bad file; one kind per file is in the quick
                # run (`make test-fast`), the rest are marked slow (test_cli_errors covers them too)
                yield pytest.param(name, "input", role, kind, id=f"{name} {role} {kind}",
                                   marks=() if kind == "not UTF-8" else pytest.mark.slow)
        for role in outputs:
            yield pytest.param(name, "output", role, "", id=f"{name} {role} unwritable")
        for i, extra in enumerate(values):
            yield pytest.param(name, "value", i, "", id=f"{name} {' '.join(extra)}")


def _assert_one_line_error(proc) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    # train/run.py logs each stage it starts ("== stage 1/7: ...") before the stage's error
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("== stage")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 600, proc.stderr


@pytest.mark.parametrize("name,what,which,kind", list(_cases()))
def test_bad_input_is_one_line_and_exit_2(tmp_path, cli, name, what, which, kind):
    argv_of, _, _, values = COMMANDS[name]
    f = _files(tmp_path)
    argv = [str(a) for a in argv_of(f)]
    if what == "input":
        _bad_file(tmp_path / which if "/" in which else f[which], kind)
    elif what == "output":
        blocker = tmp_path / "out"
        blocker.write_text("a file where a folder should be")  # so every path under it is unwritable
    else:
        if any("{config}" in v for v in values[which]):  # only that case's config is broken
            f["config"].write_bytes(BAD_CONFIG)
        argv += [v.format(tmp=tmp_path, config=f["config"]) for v in values[which]]
    proc = cli(*argv[:1], *argv[1:], timeout=300)
    _assert_one_line_error(proc)
    if what == "input" and kind != "missing":
        assert str(tmp_path) in proc.stderr  # the message names the file


ACCEPTS_BOM = ["postprocessing.py", "src/sanity.py", "evaluate.py", "merge_csv.py", "sample_code.py",
               "inference/run.py", "inference/tune_thresholds.py", "train/run.py", "-m amlc.download",
               "-m amlc.sampling", "-m amlc.formats"]


@pytest.mark.parametrize("name", ACCEPTS_BOM)
def test_excel_csv_with_a_byte_order_mark_is_accepted(tmp_path, cli, name):
    argv_of, inputs, _, _ = COMMANDS[name]
    f = _files(tmp_path)
    for role in inputs:
        path = tmp_path / role if "/" in role else f[role]
        path.write_bytes("\ufeff".encode() + path.read_bytes())
    proc = cli(*[str(a) for a in argv_of(f)], timeout=300)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
