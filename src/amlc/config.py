"""Configuration: YAML files over one table of defaults, `key=value` overrides, unknown keys are errors.

DEFAULTS below is the schema: every key a config may set exists here with its default value and type.
A YAML file (configs/*.yaml) overrides some of them, then command-line overrides such as
`train.learning_rate=2e-4 sample.size=500` override the file. A key that is not in DEFAULTS is an error
(with the nearest known key suggested), so a typo never silently runs with the default. The resolved
config is saved beside every stage's output (`save_config`), so each output says how it was made.

A dict whose default is empty ({}) is open: its keys are free (per-entity thresholds, for instance).
Relative paths in a config are resolved against the project root (amlc.paths.ROOT), so a run does
not depend on the directory it was started from.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from amlc.errors import InputError
from amlc.paths import ROOT

DEFAULTS: dict[str, Any] = {
    "run": {
        "name": "default",
        "output_dir": "outputs/default",  # every stage writes below this folder
        "seed": 42,
    },
    "data": {
        "train_csv": "dataset/train.csv",
        "test_csv": "dataset/test.csv",
        "images_dir": "images",  # shared image cache: each image is fetched once for all stages
    },
    "postprocess": {
        # How "100-240V" and "[100.0, 240.0] volt" become one value: max | min | first | blank.
        "range_policy": "max",
    },
    "ocr": {
        # The detector sees the image shrunk to this long side (px); recognition still reads its
        # crops from the image at max_side. Smaller is faster (detection is most of the time on a
        # 2560 px photo) and loses tiny print; 0 = rapidocr's own rule (the whole image, at least
        # 736 px on its short side). bench/bench_ocr.py --sweep measures F1 against s/photo.
        "det_limit_side": 960,
        # Images are first shrunk to this long side for everything (detection and recognition
        # crops): lower saves memory on huge images and loses small print.
        "max_side": 2000,
        # ... and enlarged to at least this short side (tiny thumbnails read better upscaled).
        "min_side": 30,
        # The 0/180 degree text classifier: needed for upside-down and bottom-to-top vertical text
        # (dimension callouts), costs ~5-10% of the time.
        "use_cls": True,
        # Text lines the recogniser reads with less confidence are dropped: higher drops misreads
        # and faint true text alike.
        "text_score": 0.5,
        # onnxruntime threads per model; 0 = onnxruntime's choice (all cores). Set 1 when running
        # one OCR process per core.
        "threads": 0,
        # On-disk cache of the boxes read, keyed by image bytes and the settings above ("" = off):
        # rereading a dev set after a rule change then costs nothing.
        "cache_dir": "",
        # Abstention: a prediction whose confidence (0..1, the rules' logistic score) is under the
        # entity's threshold is left empty. A blank costs the same as a wrong answer when the truth
        # is non-empty and wins when the truth is empty, so a threshold pays only where the truth
        # is often empty AND low-confidence answers are mostly wrong. Product photos' truths are
        # (almost) never empty, so 0 there; for dimensions 0.1 blanks an answer whose only
        # candidates contradict the drawing (a vertical callout asked as width or depth). Fitting
        # finer thresholds on the 89 hand-labelled drawings did not carry from one half to the
        # other (bench/bench_ocr.py --tune): refit them on a larger validation set.
        "threshold": 0.0,  # for entities missing below
        "thresholds": {
            "item_weight": 0.0, "maximum_weight_recommendation": 0.0, "voltage": 0.0,
            "wattage": 0.0, "item_volume": 0.0, "width": 0.1, "height": 0.1, "depth": 0.1,
        },
    },
}


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def merge(base: dict[str, Any], update: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Return `base` updated by `update`, rejecting keys and types that `base` does not have."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{where}{key}"
        if key not in out:
            raise InputError(f"unknown config key {name!r}{_suggest(str(key), out)}")
        default = out[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, Mapping):
                raise InputError(f"config key {name!r} is a section; give it a mapping, not {value!r}")
            out[key] = merge(default, value, f"{name}.")
        elif not _type_ok(default, value):
            raise InputError(f"config key {name!r} wants a {type(default).__name__} "
                             f"(default {default!r}), got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}; the value is read as YAML (1e-4, true, [1, 2])."""
    if "=" not in text:
        raise InputError(f"override {text!r} is not of the form key=value (e.g. train.epochs=2)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for part in parts[:-1]:
        cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value
    return node


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """DEFAULTS, then the YAML file at `path` (if any), then each `key=value` override."""
    cfg = copy.deepcopy(DEFAULTS if defaults is None else defaults)
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise InputError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, Mapping):
            raise InputError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
        cfg = merge(cfg, data)
    for text in overrides:
        cfg = merge(cfg, parse_override(text))
    return cfg


def save_config(cfg: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomic), so an output always says how it was made."""
    from amlc.tables import write_text

    return write_text(path, yaml.safe_dump(dict(cfg), sort_keys=False, allow_unicode=True))


def resolve_path(value: str | os.PathLike) -> Path:
    """A config path: absolute as given, relative ones against the project root."""
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else ROOT / p


def get(cfg: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        cur = cur[part]
    return cur
