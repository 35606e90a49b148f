"""The organisers' `src/utils.py`, kept by name, on top of the amlc package.

`parse_string` and `common_mistake` are the organisers' rules (amlc.sanity); `download_images` keeps
their signature but uses the project downloader (validated, resumable, no black placeholders).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from amlc.sanity import common_mistake, parse_string  # noqa: E402,F401


def download_images(image_links, download_folder, allow_multiprocessing=True):
    from amlc.download import download_images as _download_images

    return _download_images(image_links, download_folder, allow_multiprocessing)
