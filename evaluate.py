"""Competition F1 per entity, before and after postprocessing. See `python evaluate.py --help`."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from amlc.errors import cli  # noqa: E402
from amlc.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
