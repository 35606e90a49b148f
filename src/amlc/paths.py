"""Where things live, decided in one place.

ROOT is the project checkout (this file is ROOT/src/amlc/paths.py). Raw competition data goes in
ROOT/dataset and is never edited; everything a run makes goes below ROOT/outputs; configs in
ROOT/configs. SHARED_DATA is the optional development data set beside a developer's checkout
(../shared/amlc2024): only tests and benchmarks look there, and they skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASET_DIR = ROOT / "dataset"
OUTPUTS_DIR = ROOT / "outputs"
CONFIGS_DIR = ROOT / "configs"
SHARED_DATA = Path(os.environ.get("AMLC_SHARED_DATA", ROOT.parent / "shared" / "amlc2024"))
