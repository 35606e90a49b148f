"""Raw predictions -> a valid submission. See `python postprocessing.py --help` and amlc.postprocess."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from amlc.errors import cli  # noqa: E402
from amlc.postprocess import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
