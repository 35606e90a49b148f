"""The organisers' `src/constants.py`, kept by name; the facts live in amlc.constants."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from amlc.constants import allowed_units, entity_unit_map  # noqa: E402,F401
