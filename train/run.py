"""Fine-tune Qwen2-VL on the competition data, in stages: see `python train/run.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amlc.errors import cli  # noqa: E402
from amlc.train_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
