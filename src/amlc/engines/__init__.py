"""Inference engines behind one interface: a batch of (image, entity) requests -> raw text + prediction.

An engine is chosen by name (`inference.engine` in the config or `--engine`): `ocr` (rapidocr + rules,
CPU, offline), `vlm` (the fine-tuned Qwen2-VL through ms-swift) or `api` (any vision-language model
behind an OpenAI-compatible server). Each engine module is imported only
when chosen, so a CPU box never imports torch or vLLM to run the OCR engine, and `--help` stays fast.

Contract every engine keeps:
- `predict(requests)` returns one Result per Request, in the same order, and never raises for one bad
  row: an unreadable image gives prediction "" with `reason` set.
- `Result.prediction` is "" or a valid submission value for the request's entity (amlc.units output);
  `Result.raw` is what the engine actually read or generated (OCR text, model text), for error analysis.
- `Result.confidence` is in [0, 1] (or None when the engine has no notion of it); the runner blanks
  predictions under the per-entity threshold (see amlc.inference).
- `Result.printed`, when the engine can tell, is P(the image prints the asked value at all) in [0, 1];
  the runner blanks predictions under `inference.printed_threshold`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    index: int
    entity_name: str
    image_path: Path | None  # None: the image could not be downloaded
    group_id: str = ""


@dataclass
class Result:
    index: int
    raw: str
    prediction: str
    confidence: float | None = None
    reason: str = ""  # why the prediction is empty (missing image, nothing found...), "" otherwise
    extra: dict[str, Any] = field(default_factory=dict)
    printed: float | None = None  # P(the image prints the asked value); None: the engine cannot say


class Engine(Protocol):
    name: str

    def predict(self, requests: list[Request]) -> list[Result]: ...


ENGINES = {
    "ocr": "amlc.engines.ocr",
    "vlm": "amlc.engines.vlm",
    "api": "amlc.engines.api",
}


def check_config(name: str, cfg: dict[str, Any]) -> None:
    """The engine's settings checked before anything is written (a module may define check_config),
    so a bad value never reaches the saved config: an API key pasted where its variable's name goes."""
    from amlc.errors import InputError

    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    module = importlib.import_module(ENGINES[name])
    if hasattr(module, "check_config"):
        module.check_config(cfg)


def load_engine(name: str, cfg: dict[str, Any]) -> Engine:
    """Import the engine's module only now and build it from the resolved config."""
    from amlc.errors import InputError

    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    module = importlib.import_module(ENGINES[name])
    return module.build(cfg)
