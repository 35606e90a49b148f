"""The organisers' `src/sanity.py`, kept by name: `python src/sanity.py --test_filename T --output_filename O`.

The checker itself is amlc.sanity (same acceptance rules; every failure listed; non-zero exit on failure).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from amlc.errors import cli  # noqa: E402
from amlc.sanity import check_files, main, parse_string  # noqa: E402,F401

sanity_check = check_files  # the organisers' name

if __name__ == "__main__":
    sys.exit(cli(main))
