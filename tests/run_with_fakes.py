"""Run inference/run.py as a real process with the test engine registered as "fake" and the
downloader double standing in for amlc.download (see infer_fakes.py). Usage: same as run.py."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import infer_fakes  # noqa: E402

import amlc.engines  # noqa: E402

amlc.engines.ENGINES["fake"] = "infer_fakes"
sys.modules["amlc.download"] = infer_fakes
sys.argv = [str(HERE.parent / "inference" / "run.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
