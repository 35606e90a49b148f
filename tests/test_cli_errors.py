"""Bad input gets one clear line on stderr and exit 2, never a traceback, from every last-mile CLI."""

from __future__ import annotations

import pytest

from amlc.paths import OUTPUTS_DIR, ROOT

GOOD_TEST = "index,image_link,group_id,entity_name\n0,http://x/a.jpg,1,width\n1,http://x/b.jpg,1,voltage\n"
GOOD_PRED = "index,prediction\n0,10 inch\n1,\n"
GOOD_LABELS = "index,image_link,group_id,entity_name,entity_value\n0,http://x/a.jpg,1,width,10.0 inch\n1,http://x/b.jpg,1,voltage,\n"

BAD_FILES = {
    "missing file": None,
    "empty file": b"",
    "non-utf8": "index,prediction\n0,10 inch\n1,caf\xe9 5 volt\n".encode("latin-1"),
    "header only, wrong columns": b"idx,pred\n0,10 inch\n",
    "unknown entity": b"index,image_link,group_id,entity_name\n0,a.jpg,1,colour\n",
    "NaN index": b"index,image_link,group_id,entity_name\n,a.jpg,1,width\n",
    "NaN entity": b"index,image_link,group_id,entity_name\n0,a.jpg,1,\n",
    "not csv at all": b"\x00\x01\x02\xff\xfe",
}


def _commands(tmp, bad):
    test, pred, labels = tmp / "test.csv", tmp / "pred.csv", tmp / "labels.csv"
    test.write_text(GOOD_TEST)
    pred.write_text(GOOD_PRED)
    labels.write_text(GOOD_LABELS)
    return {
        "postprocessing (test)": ["postprocessing.py", "--test_filename", bad, "--input", pred,
                                  "--output_filename", tmp / "o.csv"],
        "postprocessing (input)": ["postprocessing.py", "--test_filename", test, "--input", bad,
                                   "--output_filename", tmp / "o.csv"],
        "sanity (test)": ["src/sanity.py", "--test_filename", bad, "--output_filename", pred],
        "evaluate (labels)": ["evaluate.py", "--labels", bad, "--predictions", pred],
        "evaluate (predictions)": ["evaluate.py", "--labels", labels, "--predictions", bad],
    }


# predictions files carry no entity_name column, so entity errors only apply to test/labels files
ENTITY_KINDS = ("unknown entity", "NaN entity")
CASES = [(command, kind) for command in ("postprocessing (test)", "postprocessing (input)", "sanity (test)",
                                         "evaluate (labels)", "evaluate (predictions)")
         for kind in BAD_FILES
         if not (kind in ENTITY_KINDS and command in ("postprocessing (input)", "evaluate (predictions)"))]


@pytest.mark.parametrize("command,kind", CASES)
def test_bad_input_is_a_clear_error(tmp_path, cli, kind, command):
    bad = tmp_path / "bad.csv"
    content = BAD_FILES[kind]
    if content is not None:
        bad.write_bytes(content)
    proc = cli(*_commands(tmp_path, bad)[command])
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 400, lines


def test_unknown_flag_is_a_usage_error(cli):
    for args, said in ((["--nope"], "required"),
                       (["--test_filename", "t", "--input", "r", "--output_filename", "o", "--nope"], "--nope"),
                       (["--test_filename", "t", "--input", "r", "--output_filename", "o", "--fill", "priors"],
                        "invalid choice: 'priors'")):
        proc = cli("postprocessing.py", *args)
        lines = proc.stderr.strip().splitlines()  # one line, as every other error; --help for the rest
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
        assert said in lines[0] and "postprocessing.py --help" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", ["postprocessing.py", "evaluate.py", "src/sanity.py",
                                    "sample_code.py"])
def test_help_explains_every_flag(cli, script):
    proc = cli(script, "--help")
    assert proc.returncode == 0
    lines = [line.strip() for line in proc.stdout.split("options:")[1].splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("-") and not line.startswith("-h"):
            flag_only = "  " not in line  # argparse puts long flags' help on the next line
            assert not flag_only or not lines[i + 1].startswith("-"), (script, line)


def _postprocess(cli, tmp_path, entities: list[tuple[int, str]], raw: str):
    """postprocessing.py over a test file of (index, entity) rows and raw predictions; -> tmp/o.csv."""
    (tmp_path / "t.csv").write_text("index,image_link,group_id,entity_name\n" +
                                    "".join(f"{i},x{i},1,{e}\n" for i, e in entities))
    (tmp_path / "r.csv").write_text("index,prediction\n" + raw)
    return cli("postprocessing.py", "--test_filename", tmp_path / "t.csv", "--input", tmp_path / "r.csv",
               "--output_filename", tmp_path / "o.csv")


def test_postprocessing_keeps_test_order_and_checks_indices(tmp_path, cli):
    proc = _postprocess(cli, tmp_path, [(5, "width"), (2, "voltage"), (9, "item_volume")],
                        "9,16 oz\n2,100-240V\n5,37\"\n")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.csv").read_text().splitlines() == [
        "index,prediction", "5,37.0 inch", "2,240.0 volt", "9,16.0 fluid ounce"]
    assert "converted unit:         1" in proc.stdout and "range -> one value:     1" in proc.stdout
    (tmp_path / "r2.csv").write_text("index,prediction\n9,16 oz\n")
    proc = cli("postprocessing.py", "--test_filename", tmp_path / "t.csv", "--input", tmp_path / "r2.csv",
               "--output_filename", tmp_path / "o2.csv")
    assert proc.returncode == 2 and "lack 2" in proc.stderr and not (tmp_path / "o2.csv").exists()
    proc = cli("postprocessing.py", "--test_filename", tmp_path / "t.csv", "--input", tmp_path / "r2.csv",
               "--output_filename", tmp_path / "o2.csv", "--allow-missing")
    assert proc.returncode == 0 and "written empty: 2" in proc.stdout


def test_sample_code_writes_a_valid_file(tmp_path, cli):
    (tmp_path / "test.csv").write_text(GOOD_TEST)
    proc = cli("sample_code.py", "--dataset", tmp_path, "--output", tmp_path / "out" / "test_out.csv")
    assert proc.returncode == 0, proc.stderr
    check = cli("src/sanity.py", "--test_filename", tmp_path / "test.csv", "--output_filename",
                tmp_path / "out" / "test_out.csv")
    assert check.returncode == 0, check.stdout


def test_sample_code_never_writes_into_the_dataset_folder(tmp_path, cli):
    # run from another folder, as a user might: the output goes under the project's outputs/
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "test.csv").write_text(GOOD_TEST)
    default = OUTPUTS_DIR / "test_out.csv"
    existed = default.exists()
    proc = cli(ROOT / "sample_code.py", "--dataset", tmp_path / "ds", cwd=tmp_path)
    try:
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["test.csv"]
        assert f"wrote {default}" in proc.stdout and default.exists()
    finally:
        if not existed:
            default.unlink(missing_ok=True)


def test_postprocessing_names_what_it_blanked(tmp_path, cli):
    proc = _postprocess(cli, tmp_path, [(0, "voltage"), (1, "item_weight"), (2, "item_weight"), (3, "width")],
                        "0,-5 volt\n1,2 500 g\n2,2 x 500 g\n3, 5  centimetre\n")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.csv").read_text().splitlines()[1:] == ["0,", "1,", "2,500.0 gram", "3,5 centimetre"]
    assert "negative number:      1" in proc.stdout and "ambiguous number:     1" in proc.stdout
    assert "reformatted:            2" in proc.stdout


def test_every_flag_has_both_spellings():
    from amlc.errors import ArgumentParser

    p = ArgumentParser(prog="x")
    p.add_argument("--test_filename")
    p.add_argument("--range-policy", default="max")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--val-fraction", type=float)
    args = p.parse_args(["--test-filename", "t.csv", "--range_policy=min", "--val_fraction", "0.5"])
    assert (args.test_filename, args.range_policy, args.val_fraction) == ("t.csv", "min", 0.5)
    assert p.parse_args(["--test_filename", "u.csv"]).test_filename == "u.csv"
    shown = p.format_help()
    assert "--test_filename" in shown and "--test-filename" not in shown  # help: the declared name
    assert "--range-policy" in shown and "--range_policy" not in shown


@pytest.mark.parametrize("argv", [
    ["postprocessing.py", "--test-filename", "t.csv", "--input", "r.csv", "--output-filename", "o.csv",
     "--range_policy", "max", "--allow_missing"],
    ["src/sanity.py", "--test-filename", "t.csv", "--output-filename", "o.csv"],
    ["evaluate.py", "--labels", "l.csv", "--predictions", "p.csv", "--allow_missing"],
    ["merge_csv.py", "--input-dir", "d", "--test-filename", "t.csv", "--output-filename", "o.csv",
     "--fill_missing"],
    ["inference/tune_thresholds.py", "--input", "l.csv", "--preds-dir", "d"],
    ["-m", "amlc.sampling", "--input", "t.csv", "--output", "o.csv", "--val_fraction", "0.1"],
])
def test_the_other_spelling_is_no_usage_error(cli, tmp_path, argv):
    # every flag reaches the command, which then finds that the files do not exist
    script = argv[:2] if argv[0] == "-m" else [ROOT / argv[0]]
    proc = cli(*script, *argv[len(script):], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "not found" in proc.stderr, proc.stderr
