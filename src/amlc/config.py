"""Configuration: YAML files over one table of defaults, `key=value` overrides, unknown keys are errors.

DEFAULTS below is the schema: every key a config may set exists here with its default value and type.
A YAML file (configs/*.yaml) overrides some of them, then command-line overrides such as
`train.learning_rate=2e-4 sample.size=500` override the file. A key that is not in DEFAULTS is an error
(with the nearest known key suggested), so a typo never silently runs with the default. The resolved
config is saved beside every stage's output (`save_config`), so each output says how it was made.

A dict whose default is empty ({}) is open: its keys are free (per-entity thresholds, for instance).
Relative paths in a config are resolved against the project root (amlc.paths.ROOT), so a run does
not depend on the directory it was started from.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from amlc.errors import InputError
from amlc.paths import ROOT

DEFAULTS: dict[str, Any] = {
    "run": {
        "name": "default",
        "output_dir": "outputs/default",  # every stage writes below this folder
        "seed": 42,
    },
    "data": {
        "train_csv": "dataset/train.csv",
        "test_csv": "dataset/test.csv",
        "images_dir": "images",  # shared image cache: each image is fetched once for all stages
    },
    "postprocess": {
        # How "100-240V" and "[100.0, 240.0] volt" become one value: max | min | first | blank.
        "range_policy": "max",
    },
    # ---- fine-tuning recipe (train/run.py, amlc.train_recipe) ----
    "synthetic": {
        # > 0: the sample stage first renders this many labelled images (amlc.synthetic) into
        # <output_dir>/synthetic and samples from them instead of data.train_csv (smoke runs, demos).
        "n": 0,
        "seed": 0,
    },
    "sample": {
        # Rows of train.csv to fine-tune on (stratified by entity). More rows: better model, longer
        # training and download. `size` wins over `fraction`; both null: every row.
        "size": 20000,
        "fraction": None,
        # Share of the sample held out for the validate stage's F1 (never trained on).
        "val_fraction": 0.05,
    },
    "download": {
        # Requests in flight at once. Throughput is at most workers / latency (128 at 50 ms: 2,560
        # img/s) and at most CPUs / CPU per image (validating costs ~1.1 ms of decoding per 100 KB
        # JPEG, ~2 ms per image in all: ~500 img/s per core). On 2 cores at 50 ms the CPU binds and
        # 64, 128 and 256 measure alike. With more cores, or a far CDN, the in-flight count binds:
        # at 200 ms bench/bench_download.py measured 284-295 img/s with 64, 439-491 with 128, 490-646
        # with 256 (the organisers' Pool(64): 240-272). 128 doubles the organisers' 64 and keeps
        # well under `ulimit -n` (256 on macOS; each request holds a socket, each validation a
        # file); raise it to 256 for a far CDN on Linux. Politeness: 128 connections is ordinary load
        # for a big CDN, whose 429/503 (with Retry-After) slow us down by backoff; lower it for a
        # small server. Memory: each request holds one body, at most max_bytes (~100 KB typical).
        "workers": 128,
        # Seconds to connect, and of silence while reading, before an attempt counts as failed and is
        # retried; an attempt is also abandoned after 10x this in total. Too low fails slow links,
        # too high lets a stalled connection hold a worker.
        "timeout": 20.0,
        # Extra attempts after a timeout, connection error, cut body, 5xx, 408 or 429 (404/410 never
        # retry). Each costs time only for links that are failing.
        "retries": 4,
        # Backoff before retry k: about backoff * 2**(k-1) seconds (random 50-100% of it, so that
        # failed requests do not come back in lockstep), capped at backoff_max.
        "backoff": 0.5,
        "backoff_max": 30.0,
        # A 429/503's Retry-After is honoured up to this many seconds; a link told to wait longer
        # fails now (recorded) rather than stalling the run.
        "retry_after_max": 120.0,
        # Larger bodies are rejected unread (product photos are ~20 KB to ~2 MB): bounds memory, since
        # each worker holds one body while it is validated.
        "max_bytes": 20_000_000,
        # Images with more pixels are rejected from their header, before decoding (decompression
        # bombs); 40 M pixels is ~6300x6300, far above any product photo, ~40-120 MB to decode.
        "max_pixels": 40_000_000,
        # Threads validating images with Pillow (it releases the GIL while decoding); 0 = one per CPU
        # (at most 8). One thread decodes at most ~900 img/s (~1.1 ms each), so it caps a run whose
        # network and cores allow more; more threads than cores cannot help. Measured on 2 busy cores:
        # 1, 2 and 4 threads cost the same CPU per image (~2 ms) and ran within each other's noise.
        "validate_threads": 0,
    },
    "dataset": {
        # Turn training rows whose labelled number the OCR cannot find on the image into abstention
        # examples (answer ""), teaching the model to leave unreadable values blank. Costs one OCR pass
        # over the training images (~0.3-2 s each on CPU, cached); OCR misses also blank some good rows.
        "abstention": False,
        # At most this share of the training rows becomes abstentions (the surest ones first).
        "abstention_max_fraction": 0.3,
        # train/run.py stops after its download stage (exit 2, the failures counted by kind) when
        # fewer of the sample's images than this share are on disk, or none: a dead network or
        # wrong links, not the few dead links a real CDN has (~1%), which are dropped and counted.
        "min_image_fraction": 0.5,
        # Teacher labels (`python -m amlc.teacher`: a strong model's reading of the training images);
        # "" = none. With them, two curation rules (training rows only; dataset.json counts both):
        "teacher_labels": "",
        # Drop training rows whose catalogue label the teacher contradicts: cleaner targets, fewer rows.
        "teacher_keep_agreeing": False,
        # Teach the rows where the teacher answered nothing (value not printed) to answer nothing.
        "teacher_abstain": False,
        # Teacher answers less confident than this change nothing (0: all; a teacher without
        # log-probabilities has no confidence and then counts only at 0).
        "teacher_min_confidence": 0.0,
    },
    "train": {
        # Base model: a hub id or a downloaded folder. Qwen2-VL-2B-Instruct fits one 24 GB GPU with LoRA.
        "model": "Qwen/Qwen2-VL-2B-Instruct",
        "model_type": "qwen2_vl",  # ms-swift's names; needed for a local folder (else "Multiple types")
        "template": "qwen2_vl",
        "use_hf": True,  # download from Hugging Face (false: ModelScope, ms-swift's default hub)
        "offline": False,  # true: never contact a model hub (HF_HUB_OFFLINE=1): local folders only
        # Smoke runs and tests: build amlc.tiny's random ~10 M parameter Qwen2-VL at train.model first.
        "random_tiny_model": False,
        "require_gpu": True,  # fail fast with a clear message on a CPU box (the smoke config says false)
        # LoRA rank: capacity of the adapter. 8-16 is plenty for reading a value; higher trains slower.
        "lora_rank": 16,
        "lora_alpha": 32,  # scale = alpha / rank; keep alpha = 2 * rank when changing the rank
        "lora_dropout": 0.05,
        # all-linear: LoRA on every linear layer of the language model (best quality for little memory).
        "target_modules": ["all-linear"],
        # Frozen vision tower and projector: the pretrained ViT already reads text; tuning it costs
        # memory and risks forgetting, for little gain on product photos.
        "freeze_vit": True,
        "freeze_aligner": True,
        # 1e-4 is the usual LoRA rate; higher learns faster but can forget the base model's reading.
        "learning_rate": 1e-4,
        "num_train_epochs": 1.0,  # one pass over 20k rows is enough; more overfits the label noise
        "max_steps": -1,  # > 0 overrides epochs (smoke runs)
        "batch_size": 4,  # per GPU; raise with memory, lower with MAX_PIXELS
        "gradient_accumulation_steps": 4,  # effective batch = batch_size * this * GPUs
        "warmup_ratio": 0.05,
        "weight_decay": 0.1,
        "lr_scheduler_type": "cosine",
        # Image size cap in pixels (MAX_PIXELS): 313600 = 400 visual tokens. Larger reads small print
        # better but costs memory and time quadratically-ish; the reference team used 313600.
        "max_pixels": 313600,
        "max_length": 1024,  # tokens per row (image + prompt + answer); longer rows are skipped
        "torch_dtype": "auto",  # bf16 on a GPU that has it, else fp16; fp32 on CPU
        "gradient_checkpointing": None,  # null: on for GPU (saves memory), off on CPU (only costs time)
        "deepspeed": None,  # multi-GPU memory sharding: null | zero2 | zero3 (ms-swift's presets)
        # GPUs for one training run through ms-swift's launcher (torchrun); null: NPROC_PER_NODE or 1.
        "nproc_per_node": None,
        "dataloader_num_workers": 4,  # GPU only; 0 on CPU
        "logging_steps": 10,
        "save_steps": 500,
        "save_total_limit": 2,
        "extra_args": {},  # any other ms-swift SftArguments field, passed as is (open mapping)
    },
    "quantize": {
        # W4A16: 4-bit weights, 16-bit activations (GPTQ), vLLM's Marlin kernels; ~3x smaller weights.
        "scheme": "W4A16",
        # Weights sharing one scale; 128 is the standard trade-off (smaller: more accurate, bigger file).
        "group_size": 128,
        # Calibration rows taken from train.jsonl (our images and prompts). More: steadier, slower.
        "num_samples": 256,
        "dampening_frac": 0.01,
        # Left in 16-bit: the output head and the vision tower (small, and sensitive to quantisation).
        "ignore": ["lm_head", "re:.*visual.*"],
        "sequential_targets": ["Qwen2VLDecoderLayer"],  # calibrate one decoder layer at a time
        "torch_dtype": "auto",
    },
    "validate": {
        # Which model the validate stage scores: quantized | merged | adapter (base + LoRA checkpoint).
        "model": "quantized",
        # Rows of the validation split to score (null: all); a quick look on a big sample.
        "max_rows": None,
    },
    # ---- the ocr inference engine (amlc.engines.ocr) ----
    "ocr": {
        # The detector sees the image shrunk to this long side (px); recognition still reads its
        # crops from the image at max_side. Detection is most of the time, so this sets the speed:
        # measured on test_dev (bench/bench_ocr.py), 736 reads an image in a median 0.35 s on 2
        # cores (p90 0.75), 960 ~30% slower for about one more row in 100 read right;
        # 0 = rapidocr's own rule (the whole image, a short side enlarged to 736).
        "det_limit_side": 736,
        # Images whose long side is below this are enlarged to it before reading (0 = never): the
        # test set's catalogue thumbnails (a third under 800 px) read better enlarged (test_dev:
        # accuracy on printed rows 0.901 -> 0.917 with 736), at ~0.2 s more for an image under 600 px.
        "det_min_side": 736,
        # A second read of an image where the first found no mention for the asked entity: the
        # detector at this size, a smaller image (a catalogue thumbnail) enlarged to it; -1 = never.
        # 960 re-reads ~8% of test_dev's images and ~25% of images_dev's large photos (small print).
        "reread_det_limit_side": 960,
        # Images are first shrunk to this long side for everything (detection and recognition
        # crops): lower saves memory on huge images and loses small print.
        "max_side": 2000,
        # ... and enlarged to at least this short side (tiny thumbnails read better upscaled).
        "min_side": 30,
        # The 0/180 degree text classifier: needed for bottom-to-top vertical text (dimension
        # callouts) and upside-down text; costs ~5% of the time.
        "use_cls": True,
        # Text lines the recogniser reads with less confidence are dropped: higher drops misreads
        # and faint true text alike.
        "text_score": 0.5,
        # onnxruntime threads per model; 0 = onnxruntime's choice (all cores). 1 when running one
        # OCR process per core, or on a busy shared machine (as fast there, half the CPU).
        "threads": 0,
        # On-disk cache of the boxes read, keyed by image bytes and the settings above ("" = off):
        # rereading a dev set after a rule change then costs nothing.
        "cache_dir": "",
        # Abstention is the runner's: inference.printed_threshold on Result.printed (P(the image
        # prints the value)) and inference.thresholds on Result.confidence (P(the answer is right)),
        # both from the engine's fitted models (amlc.engines.ocr_model).
    },
    # ---- the vlm inference engine (amlc.engines.vlm) ----
    "vlm": {
        # Model folder: the merged or 4-bit model from train/run.py, or a base model with `adapters`.
        "model": "",
        "adapters": [],  # LoRA checkpoint folders applied on top of `model`
        # transformers: ms-swift's TransformersEngine, CPU or GPU. vllm: ms-swift's VllmEngine, GPU,
        # continuous batching, runs the W4A16 model natively (its own environment: requirements-gpu.txt).
        "backend": "transformers",
        "model_type": "qwen2_vl",
        "template": "qwen2_vl",
        # null: the MAX_PIXELS the model was trained with (its amlc.json), else train.max_pixels.
        "max_pixels": None,
        "max_new_tokens": 16,  # "1234.5 millilitre" is ~8 tokens; more only lets a confused model ramble
        "max_batch_size": 16,  # transformers backend: rows generated together
        "torch_dtype": "auto",
        "load_in_4bit": False,  # transformers backend: bitsandbytes NF4 (for a merged 16-bit model)
        "gpu_memory_utilization": 0.9,  # vllm
        "tensor_parallel_size": 1,  # vllm
        "max_model_len": 2048,  # vllm: prompt (~400 image tokens at 313600 px) + answer
    },
    # ---- the api inference engine (amlc.engines.api): any model behind an OpenAI-compatible server ----
    "api": {
        # The server's OpenAI-compatible root: vLLM/SGLang/`swift deploy` on a GPU box, or a hosted API.
        "base_url": "http://127.0.0.1:8000/v1",
        # The served model's name ("": the only model the server lists). It keys the response cache,
        # so give each set of weights its own name.
        "model": "",
        # NAME of the environment variable holding the API key ("": no key, a local server). The key
        # itself is never written to a config, shard file or log.
        "api_key_env": "",
        "api_key_header": "Authorization",  # sent as "Bearer <key>"; another name (api-key) gets the bare key
        "headers": {},  # extra HTTP headers (open mapping); no secrets here, they would be saved
        "extra_body": {},  # extra request fields (open mapping), e.g. {max_completion_tokens: 16}
        # Seconds for one request, start to end; a slower one is retried.
        "timeout": 60.0,
        # Seconds to wait at start-up for a server that is not answering yet (a SLURM job started
        # beside the one loading the model); 0: fail at once with "cannot reach".
        "wait_for_server": 0.0,
        # Requests in flight at once. A GPU server batches what is in flight: 32-64 keeps one vLLM
        # replica busy; for N data-parallel replicas behind one URL, ~32 x N over all shards.
        "max_in_flight": 32,
        # Client-side rate limits for hosted APIs (0 = none): requests a second, tokens a minute.
        "requests_per_second": 0.0,
        "tokens_per_minute": 0.0,
        # Extra attempts after a timeout, dropped connection, 5xx, 408 or 429; backoff as in `download`.
        "retries": 5,
        "backoff": 1.0,
        "backoff_max": 60.0,
        "retry_after_max": 300.0,  # a longer Retry-After fails the row rather than stall the run
        # This many rows failing every attempt in a row stop the run (the server is down); rerun to resume.
        "max_consecutive_failures": 64,
        "max_tokens": 16,  # "1234.5 millilitre" is ~8 tokens; more only lets a confused model ramble
        "logprobs": True,  # ask for token log-probabilities (the confidence); dropped if the server refuses
        # Images are resized as training resized them: null means train.max_pixels (the fine-tuned
        # model's). For a hosted model, more pixels read small print better and cost more tokens.
        "max_pixels": None,
        "image_quality": 95,  # JPEG quality of the resized image sent
        # true: send each image file as it is and let the server resize it. `python -m amlc.serve`
        # (swift deploy) resizes exactly as training did; vLLM does with --mm-processor-kwargs
        # '{"max_pixels": 313600}'. Saves the client decoding a photo (~30 ms of CPU for 2.5 MP,
        # bench/bench_api.py), for a larger upload. Not for a hosted model: it would see every pixel.
        "send_original": False,
        "image_workers": 0,  # threads decoding and resizing images; 0 = one per CPU, at most 8
        # US dollars per million prompt / completion tokens (0: unknown): the summary then prints the
        # money spent and what the whole input would cost.
        "price_input_per_million": 0.0,
        "price_output_per_million": 0.0,
        # Keep every answer on disk so a rerun (or another shard layout) asks nothing twice.
        "cache": True,
        "cache_dir": "",  # "": <inference.preds_dir>/api-cache
    },
    "inference": {
        # "ocr": rapidocr + rules, CPU and offline, weaker. "vlm": the fine-tuned Qwen2-VL, wants a GPU.
        # "api": any vision-language model behind an OpenAI-compatible server (the `api` section).
        "engine": "ocr",
        # Rows handed to the engine at once and appended (flush + fsync) at once. Larger batches keep a
        # GPU busy; a kill loses at most one batch; memory grows with it.
        "batch_size": 32,
        # Shards when neither --num-shards, AMLC_NUM_SHARDS nor a SLURM array says (see amlc.shards).
        "num_shards": 1,
        # Folder of the shard files; "" means <run.output_dir>/preds.
        "preds_dir": "",
        # Fetch the shard's missing images first. false: rows without an image on disk are left empty
        # (reason image_missing), for offline runs over a prepared image folder.
        "download": True,
        # Threads that check images (can Pillow identify them?) ahead of the engine, so the GPU never
        # waits on disk. More helps on network file systems.
        "prefetch_workers": 4,
        # Abstention, per entity: a prediction whose confidence is below the entity's threshold is left
        # "" (reason below_threshold). Open: {item_weight: 0.35, voltage: 0.5}; an entity not listed
        # never abstains, nor does an engine that gives no confidence. Blanks cost nothing a wrong
        # answer would not (see amlc.inference); tune on validation: inference/tune_thresholds.py.
        "thresholds": {},
        # A row whose engine says the image does not print the value (Result.printed under this) is
        # left "" (reason not_printed); 0 answers every row that has a candidate. The OCR engine's
        # P(printed) is fitted and this default chosen by cross-validation (bench/fit_ocr_model.py).
        "printed_threshold": 0.2,
    },
}


# What each numeric knob may be, checked when a config is loaded, so that a wrong value fails at once
# with its name instead of deep inside torch, ms-swift or the downloader minutes later. None (where
# the default allows it) always passes.
def _range(low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False, also: tuple[Any, ...] = ()) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        if v in also:
            return True
        if low is not None and (v <= low if open_low else v < low):
            return False
        return high is None or (v < high if open_high else v <= high)

    if low is not None and high is not None:
        text = f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    else:
        text = f"{'>' if open_low else '>='} {low}" if low is not None else f"<= {high}"
    return ok, text + "".join(f" or {a}" for a in also)


POSITIVE = _range(0, open_low=True)
COUNT = _range(1)  # a whole number of things, at least one
NONNEGATIVE = _range(0)
FRACTION = _range(0, 1)
LIMITS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "run.seed": _range(0, 2**32 - 1),
    "synthetic.n": NONNEGATIVE, "synthetic.seed": NONNEGATIVE,
    "sample.size": COUNT, "sample.fraction": _range(0, 1, open_low=True),
    "sample.val_fraction": _range(0, 1, open_high=True),
    "download.workers": COUNT, "download.timeout": POSITIVE, "download.retries": NONNEGATIVE,
    "download.backoff": NONNEGATIVE, "download.backoff_max": NONNEGATIVE,
    "download.retry_after_max": NONNEGATIVE, "download.max_bytes": COUNT, "download.max_pixels": COUNT,
    "download.validate_threads": NONNEGATIVE,
    "dataset.abstention_max_fraction": FRACTION,
    "train.lora_rank": COUNT, "train.lora_alpha": POSITIVE, "train.lora_dropout": _range(0, 1, open_high=True),
    "train.learning_rate": POSITIVE, "train.num_train_epochs": POSITIVE, "train.max_steps": _range(1, also=(-1,)),
    "train.batch_size": COUNT, "train.gradient_accumulation_steps": COUNT, "train.warmup_ratio": FRACTION,
    "train.weight_decay": NONNEGATIVE, "train.max_pixels": _range(28 * 28), "train.max_length": COUNT,
    "train.nproc_per_node": COUNT, "train.dataloader_num_workers": NONNEGATIVE, "train.logging_steps": COUNT,
    "train.save_steps": COUNT, "train.save_total_limit": COUNT,
    "quantize.group_size": COUNT, "quantize.num_samples": COUNT,
    "quantize.dampening_frac": _range(0, 1, open_high=True),
    "validate.max_rows": COUNT,
    "ocr.det_limit_side": NONNEGATIVE, "ocr.reread_det_limit_side": _range(-1), "ocr.max_side": COUNT,
    "ocr.min_side": COUNT, "ocr.text_score": FRACTION, "ocr.threads": NONNEGATIVE,
    "ocr.det_min_side": NONNEGATIVE,
    "vlm.max_pixels": _range(28 * 28), "vlm.max_new_tokens": COUNT, "vlm.max_batch_size": COUNT,
    "vlm.gpu_memory_utilization": _range(0, 1, open_low=True), "vlm.tensor_parallel_size": COUNT,
    "vlm.max_model_len": COUNT,
    "inference.batch_size": COUNT, "inference.num_shards": COUNT, "inference.prefetch_workers": NONNEGATIVE,
    "inference.printed_threshold": FRACTION,
}
DTYPES = ("auto", "bfloat16", "float16", "float32")
CHOICES: dict[str, tuple[Any, ...]] = {
    "train.torch_dtype": DTYPES, "quantize.torch_dtype": DTYPES, "vlm.torch_dtype": DTYPES,
    "train.deepspeed": (None, "zero2", "zero3"),
    "quantize.scheme": ("W4A16",),
    "validate.model": ("quantized", "merged", "adapter"),
    "vlm.backend": ("transformers", "vllm"),
}


def check_values(cfg: Mapping[str, Any]) -> None:
    """Every knob of LIMITS and CHOICES within its range; the first one that is not is an InputError."""
    from amlc.engines import ENGINES
    from amlc.units import RANGE_POLICIES

    for key, (ok, text) in LIMITS.items():
        value = get(cfg, key)
        if value is not None and not ok(value):
            raise InputError(f"config key {key!r} must be {text}, got {value!r}")
    for key, choices in {**CHOICES, "inference.engine": tuple(ENGINES),
                         "postprocess.range_policy": RANGE_POLICIES}.items():
        value = get(cfg, key)
        if value not in choices:
            raise InputError(f"config key {key!r} must be one of {', '.join(map(str, choices))}, "
                             f"got {value!r}")


def _suggest(key: str, known: Iterable[str], where: str = "") -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {where + close[0]!r}?)" if close else ""


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def merge(base: dict[str, Any], update: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Return `base` updated by `update`, rejecting keys and types that `base` does not have."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{where}{key}"
        if key not in out:
            raise InputError(f"unknown config key {name!r}{_suggest(str(key), out, where)}")
        default = out[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, Mapping):
                raise InputError(f"config key {name!r} is a section; give it a mapping, not {value!r}")
            out[key] = merge(default, value, f"{name}.")
        elif isinstance(default, dict) and isinstance(value, Mapping):
            # an open dict (per-entity thresholds...): a file or override adds and replaces keys,
            # it does not drop the ones set before
            out[key] = {**default, **copy.deepcopy(dict(value))}
        elif not _type_ok(default, value):
            raise InputError(f"config key {name!r} wants a {type(default).__name__} "
                             f"(default {default!r}), got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}; the value is read as YAML (1e-4, true, [1, 2])."""
    if "=" not in text:
        raise InputError(f"override {text!r} is not of the form key=value (e.g. train.epochs=2)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for part in parts[:-1]:
        cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value
    return node


def read_yaml(text: str, path: str | os.PathLike) -> Any:
    """YAML text read, or an InputError saying where it is wrong: file:line:column, and what."""
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        context = getattr(exc, "context", None)
        raise InputError(f"{where}: not valid YAML: {what}" + (f" ({context})" if context else "")) from None


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """DEFAULTS, then the YAML file at `path` (if any), then each `key=value` override."""
    cfg = copy.deepcopy(DEFAULTS if defaults is None else defaults)
    if path is not None:
        from amlc.tables import read_text

        path = Path(path)
        data = read_yaml(read_text(path, "config file"), path)
        if not isinstance(data, Mapping):
            raise InputError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
        cfg = merge(cfg, data)
    for text in overrides:
        cfg = merge(cfg, parse_override(text))
    if defaults is None:
        check_values(cfg)
    return cfg


def save_config(cfg: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomic), so an output always says how it was made."""
    from amlc.tables import write_text

    return write_text(path, yaml.safe_dump(dict(cfg), sort_keys=False, allow_unicode=True))


def resolve_path(value: str | os.PathLike) -> Path:
    """A config path: absolute as given, relative ones against the project root."""
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else ROOT / p


def get(cfg: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        cur = cur[part]
    return cur
