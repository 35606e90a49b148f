"""amlc.config: YAML over defaults, key=value overrides, unknown keys and wrong types are errors."""

from __future__ import annotations

import pytest
import yaml

from amlc.config import load_config, save_config
from amlc.errors import InputError

DEFAULTS = {"train": {"lr": 1e-4, "epochs": 1, "name": "x", "flag": False},
            "inference": {"thresholds": {}}}


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 2.0e-4\n  epochs: 3\n")
    cfg = load_config(f, ["train.epochs=5", "inference.thresholds.width=0.5"], defaults=DEFAULTS)
    assert cfg["train"] == {"lr": 2e-4, "epochs": 5, "name": "x", "flag": False}
    assert cfg["inference"]["thresholds"] == {"width": 0.5}


@pytest.mark.parametrize("override,message", [
    ("train.lrr=1", "did you mean 'train.lr'"),
    ("nope.x=1", "unknown config key 'nope'"),
    ("train.epochs=two", "wants a int"),
    ("train.flag=3", "wants a bool"),
    ("train=3", "is a section"),
    ("train.epochs", "key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(InputError, match=message):
        load_config(None, [override], defaults=DEFAULTS)


def test_open_dict_overrides_merge_keys(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("inference:\n  thresholds:\n    width: 0.5\n    voltage: 0.2\n")
    cfg = load_config(f, ["inference.thresholds.voltage=0.7"], defaults=DEFAULTS)
    assert cfg["inference"]["thresholds"] == {"width": 0.5, "voltage": 0.7}


def test_int_is_accepted_for_a_float():
    assert load_config(None, ["train.lr=1"], defaults=DEFAULTS)["train"]["lr"] == 1


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "none.yaml", defaults=DEFAULTS)
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml", defaults=DEFAULTS)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(InputError, match="mapping"):
        load_config(tmp_path / "list.yaml", defaults=DEFAULTS)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.epochs=7"], defaults=DEFAULTS)
    save_config(cfg, tmp_path / "resolved.yaml")
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text()) == cfg


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os
    import stat

    from amlc.tables import write_text

    path = write_text(tmp_path / "x.txt", "hello")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_text() == "hello" and not list(tmp_path.glob(".x.txt.*"))


def test_yaml_errors_say_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rate: 1e-4\n   lora_rank: 8\n")
    with pytest.raises(InputError) as exc:
        load_config(bad, defaults=DEFAULTS)
    assert str(exc.value).startswith(f"{bad}:3:13: not valid YAML: mapping values are not allowed here")
    bad.write_bytes(b"train:\n  name: caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_config(bad, defaults=DEFAULTS)


@pytest.mark.parametrize("override,message", [
    ("train.learning_rate=-1", "'train.learning_rate' must be > 0, got -1"),
    ("train.learning_rate=0", "must be > 0"),
    ("train.max_steps=0", "'train.max_steps' must be >= 1 or -1"),
    ("train.batch_size=0", "'train.batch_size' must be >= 1"),
    ("train.lora_dropout=1", r"must be in \[0, 1\)"),
    ("sample.fraction=0", r"must be in \(0, 1\]"),
    ("sample.val_fraction=1", r"must be in \[0, 1\)"),
    ("download.workers=0", "'download.workers' must be >= 1"),
    ("download.timeout=0", "must be > 0"),
    ("run.seed=-1", "'run.seed' must be in"),
    ("ocr.text_score=1.5", r"must be in \[0, 1\]"),
    ("vlm.gpu_memory_utilization=0", r"must be in \(0, 1\]"),
    ("inference.batch_size=0", "'inference.batch_size' must be >= 1"),
    ("train.torch_dtype=fp8", "'train.torch_dtype' must be one of auto, bfloat16, float16, float32"),
    ("postprocess.range_policy=middle", "must be one of max, min, first, blank"),
    ("inference.engine=tesseract", "'inference.engine' must be one of ocr, vlm"),
    ("validate.model=best", "must be one of quantized, merged, adapter"),
])
def test_values_are_checked_when_the_config_is_loaded(override, message):
    # the real defaults: a wrong value fails here, not in torch or ms-swift minutes later
    with pytest.raises(InputError, match=message):
        load_config(None, [override])


def test_the_shipped_configs_and_edge_values_pass():
    from amlc.paths import CONFIGS_DIR

    for name in ("qwen2vl_2b.yaml", "smoke.yaml"):
        load_config(CONFIGS_DIR / name)
    load_config(None, ["train.max_steps=-1", "sample.size=null", "ocr.reread_det_limit_side=-1",
                       "sample.val_fraction=0", "train.warmup_ratio=1"])
