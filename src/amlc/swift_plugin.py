"""Make ms-swift's Qwen2-VL path work on a CPU box without torchvision (an `--external_plugins` file).

Two things break there, both only for video, which this project never uses:
1. transformers 5's Qwen2VLProcessor always builds a video processor, and that needs torchvision
   (`VIDEO_PROCESSOR_MAPPING has no attribute _extra_content`). `ImageOnlyQwen2VLProcessor` is the same
   processor without the video half; it is registered with AutoProcessor for Qwen2VLConfig, and a
   model folder saved with it (amlc.tiny) names it, so AutoProcessor finds it again.
2. `qwen_vl_utils` (whose `fetch_image` swift's qwen2_vl template calls) imports torchvision at module
   top, for its video reader. `import_qwen_vl_utils` imports it once with stand-in torchvision modules in
   sys.modules and removes them right after, so transformers still sees no torchvision
   (`importlib.util.find_spec("torchvision") is None`) and never takes its torchvision code paths.

`apply()` does both, and only when torchvision cannot be imported; with a working torchvision it does
nothing. The project calls it before every swift entry point (amlc.finetune, amlc.engines.vlm); the
`swift` command line can load this file with `--external_plugins path/to/swift_plugin.py` (amlc.serve
does), which also swaps in the vlm engine's fast log-probabilities (amlc.engines.vlm).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

_applied = False


def torchvision_usable() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401  (a CUDA-only build fails here on CPU boxes)
    except Exception:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def _processor_class():
    from transformers.processing_utils import ProcessorMixin
    from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        """Qwen2VLProcessor with no video processor (so no torchvision); images and text only."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = getattr(tokenizer, "image_token_id", None) or \
                tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = getattr(tokenizer, "video_token_id", None) or \
                tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    return ImageOnlyQwen2VLProcessor


_CLASS = None


def __getattr__(name):  # the class is built lazily: importing this module must not import transformers
    if name == "ImageOnlyQwen2VLProcessor":
        global _CLASS
        if _CLASS is None:
            _CLASS = _processor_class()
            _CLASS.__module__ = __name__
        return _CLASS
    raise AttributeError(name)


def register_processor() -> None:
    """Make AutoProcessor build ImageOnlyQwen2VLProcessor for every Qwen2-VL folder.

    AutoProcessor.register() silently ignores transformers' own config classes (Qwen2VLConfig), so the
    class is put where AutoProcessor looks: under the stock name in the qwen2_vl module (reached both
    for a folder whose processor_class is "Qwen2VLProcessor" and through the config-type mapping), and
    under its own name in the registry's extra entries (a folder saved by this class names it).
    Only done where torchvision is unusable, i.e. where the stock class cannot be built at all.
    """
    import transformers.models.qwen2_vl as qwen2_vl_module
    from transformers import PretrainedConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    cls = __getattr__("ImageOnlyQwen2VLProcessor")
    setattr(qwen2_vl_module, "Qwen2VLProcessor", cls)
    key = type("ImageOnlyQwen2VLConfigKey", (PretrainedConfig,), {"__module__": __name__})
    PROCESSOR_MAPPING.register(key, cls, exist_ok=True)


def import_qwen_vl_utils() -> None:
    """Import qwen_vl_utils with throw-away torchvision stand-ins (used by its video reader only)."""
    if "qwen_vl_utils" in sys.modules:
        return
    fakes = {}
    for name in ("torchvision", "torchvision.io", "torchvision.transforms",
                 "torchvision.transforms.functional"):
        mod = types.ModuleType(name)
        mod.__version__ = "0.0.0"
        fakes[name] = mod
    fakes["torchvision"].io = fakes["torchvision.io"]
    fakes["torchvision"].transforms = fakes["torchvision.transforms"]
    fakes["torchvision.transforms"].functional = fakes["torchvision.transforms.functional"]
    fakes["torchvision.transforms"].InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    saved = {n: sys.modules.get(n) for n in fakes}
    sys.modules.update(fakes)
    try:
        import qwen_vl_utils  # noqa: F401
        import qwen_vl_utils.vision_process  # noqa: F401
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def set_max_pixels(max_pixels: int) -> None:
    """The image size cap, in pixels, for ms-swift's Qwen2-VL template (it resizes with qwen_vl_utils).

    qwen_vl_utils reads IMAGE_MAX_TOKEN_NUM (one token per 28x28 pixels), which ms-swift derives from
    MAX_PIXELS once per process; both are set here, and on the module if it is already imported, so a
    process that trains and then predicts uses the value it is given each time.
    """
    max_pixels = int(max_pixels)
    tokens = max(4, max_pixels // (28 * 28))
    os.environ["MAX_PIXELS"] = str(max_pixels)
    os.environ["IMAGE_MAX_TOKEN_NUM"] = str(tokens)
    vp = sys.modules.get("qwen_vl_utils.vision_process")
    if vp is not None:
        vp.IMAGE_MAX_TOKEN_NUM = tokens
        if hasattr(vp, "MAX_PIXELS"):
            vp.MAX_PIXELS = max_pixels


def apply() -> bool:
    """Apply the CPU workarounds if torchvision is unusable; return whether they were applied."""
    global _applied
    if _applied:
        return True
    if torchvision_usable():
        return False
    register_processor()
    import_qwen_vl_utils()
    _applied = True
    return True


# Loaded by `swift ... --external_plugins amlc/swift_plugin.py`: apply on import, and give a served
# model (`swift deploy`, amlc.serve) the vlm engine's identical but much faster log-probabilities.
if __name__ not in ("amlc.swift_plugin",):
    apply()
    from amlc.engines.vlm import patch_transformers_engine

    patch_transformers_engine()
