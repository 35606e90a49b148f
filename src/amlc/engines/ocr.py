"""The `ocr` engine: rapidocr reads the text boxes, rules (amlc.engines.ocr_rules) pick the value.

The CPU default: no GPU, no hub, no network (the PP-OCR detector, classifier and recogniser ship inside
the rapidocr wheel). rapidocr is imported lazily, the first time an image is read, and one engine
keeps one RapidOCR object for all its images.

Public API
----------
`read_boxes(image, settings=None) -> list[Box]`: every text line rapidocr reads in an image (a path or
a PIL image), in reading order, with its geometry. Stable: the fine-tuning dataset stage uses it to find
images without a readable value. Results are cached per image (in memory, and on disk when
`settings.cache_dir` is set), keyed by the image's bytes and the OCR settings.
`read_page(image, settings=None, use_cache=True) -> Page`: the same with the image size, the OCR time,
rapidocr's own text and, on first use, `Page.segments`: the straight lines of the image
(`find_segments`: dimension arrows), which the rules read for dimension questions only.
`settings` is an `ocr` config section or a plain dict of its reading keys (DEFAULT_SETTINGS).

`Box` fields (pixels of the image as given, origin top-left, y down):
    text      the text read
    score     the recogniser's confidence, 0..1
    quad      4 (x, y) corners as the detector returns them (top-left, top-right, bottom-right,
              bottom-left for horizontal text)
    bbox      (x0, y0, x1, y1), the axis-aligned bounds of quad
    width, height   of bbox
    centre    (cx, cy) of bbox
    angle     the direction of the quad's first edge in degrees, (-90, 90]: ~0 for horizontal text,
              ~ +/-90 for a vertical box, in between for slanted text
    vertical  the text runs vertically (a tall box holding several characters; rapidocr turns such a
              crop by 90 degrees before reading it)
    text_height  the size of the characters: the quad's extent across the reading direction

`build(cfg) -> OcrEngine`, whose `predict(list[Request]) -> list[Result]` follows amlc.engines' contract:
Result.raw is the text read (boxes joined in reading order: " " within a line, " | " between lines),
Result.prediction is "" or amlc.units.format_value(value, unit) for the entity, Result.confidence in
[0, 1] is the rules' score of the chosen mention (a logistic of the weighted features, see
amlc.engines.ocr_rules), Result.reason says why a prediction is empty ("missing image", "unreadable
image", "no text", "no mention", "rules error") and Result.extra holds "candidates" (how many
mentions the entity allows), "mention" (the chosen text), "seconds" (OCR time; 0.0 when the boxes
came from a cache) and "reread" (True when the answer comes from the second, fuller read that
`ocr.reread_det_limit_side` asks for when the first read finds no mention; see `OcrEngine.answer`).

Abstention is the runner's (amlc.inference: `inference.thresholds` on Result.confidence), so that the
engine's answer before abstention is kept for threshold tuning. The competition counts a wrong answer
and a blank alike when the truth is not empty, but a blank is free when the truth is empty: a threshold
pays only where the truth is often empty AND low-confidence answers are mostly wrong. For this engine
0.1 on width/height/depth blanks answers whose only candidates contradict the drawing; product photos'
truths are almost never empty, so no threshold there (SUGGESTED_THRESHOLDS). `bench/bench_ocr.py
--tune` fits thresholds (amlc.inference.tune_thresholds) on one half of a dev set, scores the other.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlc.config import DEFAULTS
from amlc.engines import Request, Result
from amlc.engines.ocr_model import load as load_model
from amlc.engines.ocr_model import judge
from amlc.errors import InputError
from amlc.units import DIMENSIONS

# What read_boxes does when no settings are given: the `ocr` section of the config defaults, where
# each knob's trade-off is commented.
DEFAULT_SETTINGS: dict[str, Any] = dict(DEFAULTS["ocr"])
# Keys that change what is read (the cache key); threads and cache_dir only change how fast.
_READ_KEYS = ("det_limit_side", "det_min_side", "max_side", "min_side", "use_cls", "text_score")


class ImageError(Exception):
    """The image is missing or cannot be decoded."""


@dataclass(frozen=True)
class Box:
    text: str
    score: float
    quad: tuple[tuple[float, float], ...]
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    width: float = 0.0
    height: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    vertical: bool = False
    text_height: float = 0.0

    @classmethod
    def from_quad(cls, text: str, score: float, quad: Any) -> Box:
        q = tuple((float(x), float(y)) for x, y in quad)
        xs, ys = [p[0] for p in q], [p[1] for p in q]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        w, h = x1 - x0, y1 - y0
        (ax, ay), (bx, by), _, (dx, dy) = q
        edge = math.hypot(bx - ax, by - ay)  # along the first edge
        side = math.hypot(dx - ax, dy - ay)  # across it
        angle = math.degrees(math.atan2(by - ay, bx - ax)) if edge else 0.0
        if angle <= -90:
            angle += 180
        elif angle > 90:
            angle -= 180
        # rapidocr reads a crop turned by 90 degrees when it is at least 1.5 times taller than wide;
        # a lone tall glyph ("1", "I") is no vertical text
        letters = sum(ch.isalnum() for ch in text)
        vertical = h >= 1.5 * w and letters >= 2
        if vertical:
            text_height = w if abs(abs(angle) - 90) < 30 else min(edge, side)
        else:
            text_height = min(edge, side) if edge and side else h
        return cls(text, float(score), q, (x0, y0, x1, y1), w, h, ((x0 + x1) / 2, (y0 + y1) / 2),
                   angle, vertical, text_height)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 5),
                "quad": [[round(x, 2), round(y, 2)] for x, y in self.quad]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Box:
        return cls.from_quad(d["text"], d["score"], d["quad"])


@dataclass
class Page:
    """One image read: its boxes in reading order, its size, and how the read went."""

    boxes: list[Box]
    width: int
    height: int
    seconds: float = 0.0  # OCR time of this read (0.0 when it came from a cache)
    cached: bool = False
    key: str = ""
    ocr_text: str = ""  # the box texts joined by " " in rapidocr's own order (what most teams used)
    source: Any = field(default=None, repr=False)  # the path or PIL image, for `segments`
    _segments: list | None = field(default=None, repr=False)

    @property
    def segments(self) -> list[tuple[float, float, float, float]]:
        """Straight lines of the image (find_segments), found on first use: only dimension
        questions need them. Empty when the image can no longer be read."""
        if self._segments is None:
            try:
                self._segments = find_segments(load_image(self.source)[0]) if self.source is not None else []
            except ImageError:
                self._segments = []
            if isinstance(self.source, (str, Path)):
                with _MEMORY_LOCK:  # the other questions about this image reuse them
                    kept = _MEMORY.get(self.key)
                    if kept is not None and kept.source == self.source:
                        kept._segments = self._segments
        return self._segments


def reading_order(boxes: list[Box]) -> list[list[Box]]:
    """Boxes grouped into lines (top to bottom), each line left to right.

    A box joins a line when its vertical centre lies within the line's span (the boxes of one printed
    line overlap vertically even when the photo is slightly tilted).
    """
    lines: list[list[Box]] = []
    spans: list[list[float]] = []
    for b in sorted(boxes, key=lambda b: (b.centre[1], b.centre[0])):
        for line, span in zip(lines, spans):
            if span[0] <= b.centre[1] <= span[1] and not b.vertical and not line[0].vertical:
                line.append(b)
                break
        else:
            lines.append([b])
            half = max(b.text_height, 1.0) * 0.5
            spans.append([b.centre[1] - half, b.centre[1] + half])
    return [sorted(line, key=lambda b: b.centre[0]) for line in lines]


def joined_text(boxes: list[Box]) -> str:
    """The text of the boxes in reading order: " " within a line, " | " between lines."""
    return " | ".join(" ".join(b.text for b in line) for line in reading_order(boxes))


# --------------------------------------------------------------------------------------- reading


def settings_of(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reading settings from an `ocr` config section (or a plain dict of them), defaults filled in."""
    out = dict(DEFAULT_SETTINGS)
    if cfg:
        out.update({k: cfg[k] for k in DEFAULT_SETTINGS if k in cfg})
    return out


def _rapidocr_params(s: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.text_score": float(s["text_score"]),
        "Global.use_cls": bool(s["use_cls"]),
        "Global.max_side_len": int(s["max_side"]),
        "Global.min_side_len": int(s["min_side"]),
    }
    if int(s["det_limit_side"]) > 0:
        # the detector sees the image shrunk to this long side; the recogniser still reads its
        # crops from the image at max_side, so small print keeps its pixels
        params["Det.limit_type"] = "max"
        params["Det.limit_side_len"] = int(s["det_limit_side"])
    if int(s["threads"]) > 0:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(s["threads"])
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    return params


_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _rapidocr(s: Mapping[str, Any]) -> Any:
    """One RapidOCR object per distinct setting, shared by every caller in the process."""
    params = _rapidocr_params(s)
    key = json.dumps(params, sort_keys=True)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            import logging

            from rapidocr import RapidOCR

            _ENGINES[key] = RapidOCR(params=params)
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return _ENGINES[key]


def load_image(image: Any) -> tuple[Any, bytes | None]:
    """(RGB PIL image, the file's bytes or None). Raises ImageError for a missing or corrupt image."""
    from PIL import Image, ImageOps

    data = None
    if isinstance(image, Image.Image):
        img = image
    else:
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"missing image: {path}")
        data = path.read_bytes()
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception as exc:  # PIL raises many kinds for corrupt files
            raise ImageError(f"unreadable image {path.name}: {exc}") from None
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:
        pass
    try:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent product cut-outs: on white, as shown in a shop
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, rgba).convert("RGB")
        elif img.mode != "RGB":
            img = img.convert("RGB")
    except Exception as exc:
        raise ImageError(f"unreadable image: {exc}") from None
    if img.width < 2 or img.height < 2:
        raise ImageError(f"unreadable image: {img.width}x{img.height} pixels")
    return img, data


_MEMORY: OrderedDict[str, Page] = OrderedDict()
_MEMORY_SIZE = 512
_MEMORY_LOCK = threading.Lock()


def _read_settings(s: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change what is read; a knob at its "off" value is left out, so that
    caches made before the knob existed stay valid."""
    return {k: s[k] for k in _READ_KEYS if not (k == "det_min_side" and not int(s[k]))}


def _cache_key(data: bytes, s: Mapping[str, Any]) -> str:
    h = hashlib.sha1(data)
    h.update(json.dumps(_read_settings(s), sort_keys=True).encode())
    return h.hexdigest()


def read_page(image: Any, settings: Mapping[str, Any] | None = None, *,
              use_cache: bool = True, with_segments: bool = False) -> Page:
    """OCR one image (path or PIL image) -> Page. Raises ImageError for a missing/corrupt image.

    `use_cache=False` always runs the OCR (timings) but still stores the result.
    `with_segments`: find the image's straight lines now, while it is decoded (else on first use).
    """
    from PIL import Image

    s = settings_of(settings)
    if isinstance(image, Image.Image):
        img, data = load_image(image)
        data = img.tobytes() + f"{img.size}".encode()  # a PIL image: key on its pixels
    else:
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"missing image: {path}")
        img, data = None, path.read_bytes()
    key = _cache_key(data, s)
    disk = Path(s["cache_dir"]) / key[:2] / f"{key}.json" if s["cache_dir"] else None
    if use_cache:
        with _MEMORY_LOCK:
            page = _MEMORY.get(key)
            if page is not None:
                _MEMORY.move_to_end(key)
                return Page(page.boxes, page.width, page.height, 0.0, True, key, page.ocr_text,
                            image, page._segments if page.source is not None else None)
        if disk is not None and disk.exists():
            try:
                d = json.loads(disk.read_text(encoding="utf-8"))
                raw = [Box.from_json(b) for b in d["boxes"]]
                page = Page(_in_reading_order(raw), d["width"], d["height"], 0.0, True, key,
                            " ".join(b.text for b in raw), image)
                _remember(key, page)
                return page
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache file is read again
    t0 = time.perf_counter()
    if img is None:
        img, _ = load_image(image)
    shown, scale = enlarged(img, int(s.get("det_min_side", 0)))
    limit = int(s["det_limit_side"])
    if scale != 1.0 and 0 < limit < max(shown.size):
        # an enlarged image is detected at its new size, not shrunk back to det_limit_side
        engine = _rapidocr({**s, "det_limit_side": max(shown.size)})
    else:
        engine = _rapidocr(s)
    out = engine(shown)
    boxes = []
    if getattr(out, "boxes", None) is not None and getattr(out, "txts", None) is not None:
        for quad, text, score in zip(out.boxes, out.txts, out.scores):
            if text and text.strip():
                if scale != 1.0:  # back to the pixels of the image as given
                    quad = [(x / scale, y / scale) for x, y in quad]
                boxes.append(Box.from_quad(text.strip(), score, quad))
    segments = find_segments(img) if with_segments else None
    seconds = time.perf_counter() - t0
    page = Page(_in_reading_order(boxes), img.width, img.height, seconds, False, key,
                " ".join(b.text for b in boxes), image, segments)
    _remember(key, page)
    if disk is not None:
        from amlc.tables import write_text

        try:
            disk.parent.mkdir(parents=True, exist_ok=True)
            write_text(disk, json.dumps({"width": img.width, "height": img.height,
                                         "seconds": round(seconds, 4),
                                         "settings": _read_settings(s),
                                         "boxes": [b.to_json() for b in boxes]}))
        except OSError as exc:  # a cache that fills up mid-run costs speed, never the row
            _warn_once(f"warning: OCR cache not written ({type(exc).__name__}: {exc}); reading on")
    return page


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr)


def check_config(cfg: Mapping[str, Any]) -> None:
    """Before the runner writes anything (amlc.engines.check_config): the cache folder."""
    check_cache_dir(str(settings_of(cfg.get("ocr"))["cache_dir"] or ""))


def check_cache_dir(cache_dir: str) -> None:
    """InputError unless `cache_dir` (when set) is a folder this process can write: found at
    engine build, not as every row turning into "unreadable image"."""
    if not cache_dir:
        return
    path = Path(cache_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"ocr.cache_dir {cache_dir} is not a writable folder "
                         f"({exc.strerror or exc}); set ocr.cache_dir= to another or to '' for none")


def enlarged(img: Any, min_side: int) -> tuple[Any, float]:
    """(image, scale): `img` enlarged so that its long side is at least `min_side` px (0: never).

    rapidocr's detector only ever shrinks under `det_limit_side`; small catalogue thumbnails
    (300-600 px) read better enlarged, as its own default rule does for a short side below 736.
    """
    long_side = max(img.width, img.height)
    if min_side <= 0 or long_side >= min_side:
        return img, 1.0
    from PIL import Image

    scale = min_side / long_side
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC), scale


def find_segments(img: Any, work_side: int = 1000) -> list[tuple[float, float, float, float]]:
    """Straight line segments (x1, y1, x2, y2) in image pixels: the arrows and extension lines of
    dimension drawings (and product edges). Canny edges + probabilistic Hough on a copy shrunk to
    `work_side`, then collinear pieces merged (Hough breaks a slightly slanted, anti-aliased line
    into several); segments shorter than 6% of the long side are dropped (text strokes, texture).
    """
    import cv2
    import numpy as np

    scale = min(1.0, work_side / max(img.width, img.height))
    gray = img.convert("L")
    if scale < 1.0:
        gray = gray.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    a = np.asarray(gray)
    edges = cv2.Canny(a, 50, 150)
    long_side = max(a.shape)
    min_len = max(15, int(0.06 * long_side))
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=30, minLineLength=min_len // 2,
                            maxLineGap=5)
    if lines is None:
        return []
    arr = np.asarray(lines, dtype=np.float64).reshape(-1, 4)  # OpenCV 4 gives (N, 1, 4)
    # the 300 longest pieces: a busy photo gives thousands (texture, text), arrows are among the
    # longest, and the pure-Python merge below is quadratic
    arr = arr[np.argsort(-np.hypot(arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]))[:300]]
    # generous gap: a dimension line is often interrupted by its own label, and joining two
    # collinear pieces never changes a direction, which is all the rules read from a segment
    merged = _merge_collinear([tuple(r) for r in arr], gap=0.2 * long_side)
    return [(x1 / scale, y1 / scale, x2 / scale, y2 / scale)
            for x1, y1, x2, y2 in merged if math.hypot(x2 - x1, y2 - y1) >= min_len][:400]


def _merge_collinear(segs: list[tuple[float, ...]], gap: float, angle_tol: float = 3.0,
                     offset_tol: float = 3.0) -> list[tuple[float, float, float, float]]:
    """Join segments that lie on one line (angle within angle_tol degrees, both ends within
    offset_tol px of it) and overlap or leave less than `gap` px between them; longest first."""
    out: list[list[float]] = []  # x1, y1, x2, y2 of each merged line
    for x1, y1, x2, y2 in sorted(segs, key=lambda s: -math.hypot(s[2] - s[0], s[3] - s[1])):
        for m in out:
            dx, dy = m[2] - m[0], m[3] - m[1]
            length = math.hypot(dx, dy)
            ux, uy = dx / length, dy / length
            ang = abs(math.degrees(math.atan2(y2 - y1, x2 - x1)) - math.degrees(math.atan2(dy, dx)))
            ang = min(ang % 180, 180 - ang % 180)
            if ang > angle_tol:
                continue
            if max(abs((x - m[0]) * -uy + (y - m[1]) * ux) for x, y in ((x1, y1), (x2, y2))) > offset_tol:
                continue
            t1 = (x1 - m[0]) * ux + (y1 - m[1]) * uy
            t2 = (x2 - m[0]) * ux + (y2 - m[1]) * uy
            lo, hi = min(t1, t2), max(t1, t2)
            if lo > length + gap or hi < -gap:
                continue
            lo, hi = min(lo, 0.0), max(hi, length)
            m[:] = [m[0] + ux * lo, m[1] + uy * lo, m[0] + ux * hi, m[1] + uy * hi]
            break
        else:
            out.append([x1, y1, x2, y2])
    return [(m[0], m[1], m[2], m[3]) for m in out]


def _in_reading_order(boxes: list[Box]) -> list[Box]:
    return [b for line in reading_order(boxes) for b in line]


def _remember(key: str, page: Page) -> None:
    if isinstance(page.source, (str, Path)):
        page = Page(page.boxes, page.width, page.height, page.seconds, page.cached, page.key,
                    page.ocr_text, page.source, page._segments)
    else:  # never hold a caller's PIL image in the cache
        page = Page(page.boxes, page.width, page.height, page.seconds, page.cached, page.key,
                    page.ocr_text, None, None)
    with _MEMORY_LOCK:
        _MEMORY[key] = page
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_SIZE:
            _MEMORY.popitem(last=False)


def read_boxes(image: Any, settings: Mapping[str, Any] | None = None) -> list[Box]:
    """Every text line rapidocr reads in `image` (path or PIL image), in reading order (see Box).

    Raises ImageError when the image is missing or cannot be decoded.
    """
    return read_page(image, settings).boxes


# ---------------------------------------------------------------------------------------- engine


@dataclass
class OcrEngine:
    cfg: dict[str, Any] = field(default_factory=dict)
    name: str = "ocr"

    def __post_init__(self) -> None:
        self.settings = settings_of(self.cfg.get("ocr"))
        check_cache_dir(str(self.settings["cache_dir"] or ""))
        self.range_policy = str(self.cfg.get("postprocess", {}).get("range_policy", "max"))
        self.model = load_model()
        self._ranked: dict[tuple, list] = {}

    def read(self, image: Any, use_cache: bool = True, with_segments: bool = False) -> Page:
        return read_page(image, self.settings, use_cache=use_cache, with_segments=with_segments)

    def predict_one(self, req: Request) -> Result:
        if req.image_path is None:
            return Result(req.index, "", "", 0.0, "missing image")
        try:
            page = self.read(req.image_path, with_segments=req.entity_name in DIMENSIONS)
        except ImageError as exc:
            return Result(req.index, "", "", 0.0,
                          "missing image" if str(exc).startswith("missing") else "unreadable image")
        except Exception as exc:  # the OCR itself failed on a strange image: one row, not the run
            return Result(req.index, "", "", 0.0, "unreadable image",
                          extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
        return self.answer(page, req.entity_name, req.index, req.image_path, group=req.group_id)

    def answer(self, page: Page, entity: str, index: int = 0, image: Any = None,
               use_cache: bool = True, group: object = "") -> Result:
        """`decide`, then, when it found no mention, the same question on `second_read` if there is
        one (extra["reread"]). `use_cache=False` always runs that second OCR (timings)."""
        first = self.decide(page, entity, index, group)
        if first.reason not in ("no mention", "no text"):
            return first
        again = self.second_read(page, image, entity, use_cache)
        if again is None:
            return first
        second = self.decide(again, entity, index, group)
        second.extra["seconds"] = round(page.seconds + again.seconds, 4)
        second.extra["reread"] = True
        return second

    def second_read(self, page: Page, image: Any, entity: str, use_cache: bool = True) -> Page | None:
        """The fuller read `reread_det_limit_side` asks for (the detector at that size, a smaller
        image enlarged to it), or None: off, nothing to read, or it would read the same again."""
        side = int(self.settings.get("reread_det_limit_side", -1))
        if side < 0 or image is None:
            return None
        det = int(self.settings["det_limit_side"])
        if max(page.width, page.height) >= side and (side == det or 0 < side < det):
            return None  # neither enlarged nor detected larger
        try:
            return read_page(image, {**self.settings, "det_limit_side": side, "det_min_side": side},
                             use_cache=use_cache, with_segments=entity in DIMENSIONS)
        except Exception:  # the first read worked; a failing second one changes nothing
            return None

    def ranked(self, page: Page, entity: str, group: object = "") -> list:
        """ocr_rules.rank for one question about a page; a drawing's three dimensions are asked
        about together, so each ranking is kept for the page's other questions."""
        from amlc.engines.ocr_rules import rank

        key = (page.key or id(page), entity, str(group))
        hit = self._ranked.get(key)
        if hit is None:
            hit = rank(page.boxes, entity, page.width, page.height, self.range_policy,
                       segments=page.segments if entity in DIMENSIONS else (), group=group,
                       model=self.model)
            self._ranked[key] = hit
            while len(self._ranked) > 64:
                self._ranked.pop(next(iter(self._ranked)))
        return hit

    def decide(self, page: Page, entity: str, index: int = 0, group: object = "") -> Result:
        """The answer for `entity` from a page already read: the pick model's best candidate, with
        P(it is right) as the confidence and P(the value is printed) (amlc.engines.ocr_model)."""
        raw = joined_text(page.boxes)
        extra: dict[str, Any] = {"seconds": round(page.seconds, 4)}
        if not page.boxes:
            return Result(index, raw, "", 0.0, "no text", extra, printed=0.0)
        try:
            ranked = self.ranked(page, entity, group)
            # a drawing's other dimensions: does a surer answer to one of them take this callout?
            others = {e: self.ranked(page, e, group) for e in DIMENSIONS if e != entity} if (
                entity in DIMENSIONS and ranked) else {}
            confidence, printed = judge(entity, ranked, others, self.model)
        except Exception as exc:  # a rule tripping on odd text costs one row, never the run
            extra["error"] = f"{type(exc).__name__}: {exc}"[:200]
            return Result(index, raw, "", 0.0, "rules error", extra)
        extra["candidates"] = len(ranked)
        if not ranked:
            return Result(index, raw, "", 0.0, "no mention", extra, printed=round(printed, 4))
        extra["mention"] = ranked[0].text
        return Result(index, raw, ranked[0].prediction, round(confidence, 4), "", extra,
                      printed=round(printed, 4))

    def predict(self, requests: list[Request]) -> list[Result]:
        return [self.predict_one(r) for r in requests]


def build(cfg: Mapping[str, Any] | None = None) -> OcrEngine:
    return OcrEngine(dict(cfg or {}))


__all__ = ["Box", "Page", "ImageError", "OcrEngine", "build", "read_boxes",
           "read_page", "find_segments", "reading_order", "joined_text", "settings_of"]
