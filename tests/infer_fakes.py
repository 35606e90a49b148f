"""Test doubles for the shard runner: a deterministic engine and a local downloader.

The engine reads its answer off the image's first pixel, so the runner's mechanics (batching, resume,
abstention, merge) are tested without OCR or a model:
    red   -> the value ("<red>.0 <first allowed unit>")
    green -> the confidence (green / 255)
    blue  -> 255 means "nothing found" (empty answer, reason nothing_found)
FAKE_ENGINE_DELAY (seconds per batch) slows it down for the kill test; FAKE_ENGINE_LOG (a path) gets
one line per predicted index, so a test can see which rows the engine was asked for; FAKE_ENGINE_CRASH_AFTER
(a number of batches) makes it raise, like a run dying mid-way.

`run_with_fakes.py` (beside this file) runs inference/run.py with this engine registered as "fake"
and this module standing in for amlc.download.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from amlc.constants import ENTITY_UNIT_MAP
from amlc.engines import Request, Result


def unit_for(entity: str) -> str:
    return sorted(ENTITY_UNIT_MAP[entity])[0]


def make_image(path: Path, red: int, green: int, blue: int = 0, size: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (red, green, blue)).save(path)
    return path


class FakeEngine:
    name = "fake"

    def __init__(self) -> None:
        self.batches = 0
        self.delay = float(os.environ.get("FAKE_ENGINE_DELAY", "0") or 0)
        self.log = os.environ.get("FAKE_ENGINE_LOG", "")
        self.crash_after = int(os.environ.get("FAKE_ENGINE_CRASH_AFTER", "0") or 0)

    def predict(self, requests: list[Request]) -> list[Result]:
        if self.crash_after and self.batches >= self.crash_after:
            raise RuntimeError("fake engine crashed (FAKE_ENGINE_CRASH_AFTER)")
        self.batches += 1
        if self.delay:
            time.sleep(self.delay)
        out = []
        for req in requests:
            with Image.open(req.image_path) as im:
                r, g, b = im.convert("RGB").getpixel((0, 0))
            if b == 255:
                out.append(Result(index=req.index, raw=f"pixel \"{r}\",\n{g}, {b}", prediction="",
                                  confidence=None, reason="nothing_found"))
            else:
                out.append(Result(index=req.index, raw=f"pixel \"{r}\",\n{g}, {b}",
                                  prediction=f"{r}.0 {unit_for(req.entity_name)}", confidence=g / 255,
                                  extra={"pixel": (r, g, b)}))
        if self.log:
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.writelines(f"{req.index}\n" for req in requests)
        return out


def build(cfg: dict) -> FakeEngine:
    return FakeEngine()


# ---- downloader double: same signature as amlc.download ---------------------------------------------

CALLS: list[dict] = []


@dataclass
class Report:
    manifest: pd.DataFrame


def local_path(link: str, out_dir) -> Path:
    return Path(out_dir) / link.rsplit("/", 1)[-1]


def download(links, out_dir, *, progress=True, manifest_path=None, strict=False, **knobs) -> Report:
    """Copies each link's file name from FAKE_DL_SOURCE; absent there -> failed (HTTP 404)."""
    CALLS.append({"links": list(links), "out_dir": Path(out_dir), "manifest_path": manifest_path,
                  "knobs": knobs})
    retries = knobs.get("retries", 0)
    source = Path(os.environ.get("FAKE_DL_SOURCE", "/nonexistent"))
    rows = []
    for link in links:
        dest = local_path(link, out_dir)
        src = source / dest.name
        if dest.exists():
            rows.append((link, str(dest), "skipped", dest.stat().st_size, 0, ""))
        elif src.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            rows.append((link, str(dest), "ok", dest.stat().st_size, 1, ""))
        else:
            rows.append((link, "", "failed", 0, retries, "HTTP 404"))
    manifest = pd.DataFrame(rows, columns=["image_link", "path", "status", "bytes", "attempts", "error"])
    if manifest_path is not None:
        manifest.to_csv(manifest_path, index=False)
    return Report(manifest=manifest)
