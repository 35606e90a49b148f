"""LoRA SFT, LoRA merge and 4-bit GPTQ export of Qwen2-VL, through ms-swift and llmcompressor.

torch, swift and llmcompressor are imported inside the functions, so importing this module is cheap.

sft(train_cfg, train_jsonl, val_jsonl, out_dir)  -> out_dir/
    sft_args.json       the exact ms-swift SftArguments used (also what `swift sft sft_args.json` reads)
    v<N>-<time>/        ms-swift's run folder: args.json, logging.jsonl (loss per logging step),
                        checkpoint-<step>/ (adapter_model.safetensors, adapter_config.json, args.json)
    result.json         {"checkpoint": abs path of the last checkpoint, "global_step", "train_loss",
                         "losses": [{"step", "loss"}...], "train_runtime_s", "log": logging.jsonl path}
  One process: `sft_main(SftArguments(...))` in this process. Several GPUs: NPROC_PER_NODE>1 (or
  train.nproc_per_node) hands sft_args.json to ms-swift's own launcher (`swift sft`, which runs torchrun;
  DeepSpeed through train.deepspeed), and the checkpoint is read back from the run folder.

merge(checkpoint, out_dir)  -> out_dir/: a plain Hugging Face model folder (config.json, safetensors,
    tokenizer and processor files, swift's args.json) with the LoRA folded into the base weights
    (`swift export --merge_lora`), plus amlc.json (see write_model_card).

quantize(model_dir, calib_jsonl, out_dir, quant_cfg)  -> out_dir/: the W4A16 GPTQ model in
    compressed-tensors format (config.json carries `quantization_config`), tokenizer/processor files,
    llmcompressor's recipe.yaml, swift's args.json and amlc.json. Calibration runs the model on our own
    training rows (image + prompt + answer), encoded by the same ms-swift template as training.

Why llmcompressor and not auto-gptq: auto-gptq's last release (0.7.1, 2024) cannot be imported with
transformers 5 and refuses to quantise without CUDA; gptqmodel needs a newer torch than ms-swift accepts.
llmcompressor 0.14 runs GPTQ on CPU or GPU with the installed stack, and its compressed-tensors output
is vLLM's native W4A16 format (Marlin kernels) and also loads in transformers (the TransformersEngine).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from amlc.errors import InputError

MODEL_CARD = "amlc.json"


# ---- environment ------------------------------------------------------------------------------

def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def prepare_swift(max_pixels: int, *, offline: bool = False) -> None:
    """Everything ms-swift needs before a model is loaded in this process.

    Images are resized by qwen_vl_utils from the MAX_PIXELS environment variable (ms-swift ignores the
    processor's own max_pixels); the value is set here, and also on qwen_vl_utils if it is already
    imported (it reads the variable once), so training, calibration and inference see the same pixels.
    """
    from amlc import swift_plugin

    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["MODELSCOPE_OFFLINE"] = "1"
    swift_plugin.set_max_pixels(max_pixels)
    swift_plugin.apply()


def model_ref(value: str) -> str:
    """A model given in a config: a folder (relative ones against the project root) or a hub id."""
    from amlc.config import resolve_path

    value = str(value)
    local = resolve_path(value)
    if local.exists() or value.startswith((".", "/", "~")) or value.count("/") != 1:
        return str(local)
    return value


def check_model_source(model: str, *, use_hf: bool, offline: bool = False) -> None:
    """A clear message for a model that cannot be had, before ms-swift spends a minute retrying and
    ends in a chained hub traceback: a hub id that is neither in the hub's local cache nor reachable
    (offline, no network, no such model) is an InputError with the download command to run."""
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise InputError(f"model folder {model} has no config.json: it is not a Hugging Face model folder")
        return
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise InputError(f"model folder not found: {model} (set train.model to a downloaded model folder "
                         f"or a hub id such as Qwen/Qwen2-VL-2B-Instruct)")
    hub = "Hugging Face" if use_hf else "ModelScope"
    offline = offline or os.environ.get("HF_HUB_OFFLINE" if use_hf else "MODELSCOPE_OFFLINE") == "1"
    if _in_hub_cache(model, use_hf):
        return
    why = "offline: train.offline or HF_HUB_OFFLINE/MODELSCOPE_OFFLINE" if offline else _hub_unreachable(model, use_hf)
    if why:
        name = model.split("/")[-1]
        fetch = (f"huggingface-cli download {model} --local-dir models/{name}" if use_hf
                 else f"modelscope download --model {model} --local_dir models/{name}")
        raise InputError(f"model {model!r} is not on disk and the {hub} hub cannot give it ({why}): "
                         f"download it first, where the hub is reachable (`{fetch}`), then set "
                         f"train.model=models/{name} (and train.offline=true to never touch a hub)")


def _in_hub_cache(model: str, use_hf: bool) -> bool:
    """Is a snapshot of `model` in the hub library's local cache (what ms-swift would load offline)?"""
    try:
        if use_hf:
            from huggingface_hub import snapshot_download
        else:
            from modelscope.hub.snapshot_download import snapshot_download
        snapshot_download(model, local_files_only=True)
    except Exception:  # noqa: BLE001 - each hub library has its own "not cached" error
        return False
    return True


def _hub_unreachable(model: str, use_hf: bool) -> str:
    """"" when the hub answers about `model`; else why it cannot give it (no network, no such model)."""
    try:
        if use_hf:
            from huggingface_hub import HfApi

            HfApi().model_info(model, timeout=15)
        else:
            from modelscope.hub.api import HubApi

            HubApi().get_model(model)
    except Exception as exc:  # noqa: BLE001 - requests, httpx and the hubs' own errors all land here
        kind = type(exc).__name__
        if "NotFound" in kind:
            return f"it has no model {model!r}: check train.model"
        if isinstance(exc, (OSError, ConnectionError)) or any(w in kind for w in ("Connect", "Timeout", "Network")):
            return f"{kind}: {' '.join(str(exc).split())[:120]}"
        # any other answer (a token needed, a rate limit...) came from a reachable hub: ms-swift says more
    return ""


def require_gpu(what: str) -> None:
    if not cuda_available():
        raise InputError(f"{what} needs a CUDA GPU and none is visible (torch.cuda.is_available() is False). "
                         f"Run on a GPU machine, or try the whole pipeline on CPU with "
                         f"`python train/run.py --config configs/smoke.yaml`")


def write_model_card(model_dir: Path, **info: Any) -> None:
    """amlc.json beside a model: how it was made and the MAX_PIXELS it was trained with (the vlm engine
    reads it, so inference resizes images exactly as training did)."""
    from amlc import prompts
    from amlc.tables import write_text

    card = {"prompt_version": prompts.PROMPT_VERSION, **info}
    write_text(Path(model_dir) / MODEL_CARD, json.dumps(card, indent=2) + "\n")


def read_model_card(model_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(model_dir) / MODEL_CARD
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


# ---- sft ------------------------------------------------------------------------------------

def dtype_name(name: str, on_gpu: bool) -> str:
    """The torch dtype to use for a config's `torch_dtype` ("auto" decides by device); shared by
    training, quantisation and the vlm engine."""
    if name != "auto":
        return name
    if not on_gpu:
        return "float32"  # CPU: bf16 matmuls are slow there and fp16 is unsupported for training
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def sft_arguments(t: dict[str, Any], train_jsonl: Path, val_jsonl: Path | None, out_dir: Path,
                  seed: int) -> dict[str, Any]:
    """train config section -> the keyword arguments of swift's SftArguments (ms-swift 4.x names)."""
    on_gpu = cuda_available()
    args: dict[str, Any] = dict(
        model=t["model"], model_type=t["model_type"], template=t["template"], use_hf=t["use_hf"],
        dataset=[str(train_jsonl)],
        tuner_type="lora", lora_rank=t["lora_rank"], lora_alpha=t["lora_alpha"],
        lora_dropout=t["lora_dropout"], target_modules=list(t["target_modules"]),
        freeze_vit=t["freeze_vit"], freeze_aligner=t["freeze_aligner"],
        learning_rate=t["learning_rate"], num_train_epochs=t["num_train_epochs"], max_steps=t["max_steps"],
        per_device_train_batch_size=t["batch_size"], per_device_eval_batch_size=t["batch_size"],
        gradient_accumulation_steps=t["gradient_accumulation_steps"], warmup_ratio=t["warmup_ratio"],
        weight_decay=t["weight_decay"], lr_scheduler_type=t["lr_scheduler_type"],
        max_length=t["max_length"], truncation_strategy="delete",
        torch_dtype=dtype_name(t["torch_dtype"], on_gpu),
        gradient_checkpointing=t["gradient_checkpointing"] if t["gradient_checkpointing"] is not None
        else on_gpu,  # on CPU checkpointing only costs time (3.4 s -> 0.2 s a step measured)
        logging_steps=t["logging_steps"], save_steps=t["save_steps"], eval_steps=t["save_steps"],
        save_total_limit=t["save_total_limit"], save_only_model=True,
        dataloader_num_workers=t["dataloader_num_workers"] if on_gpu else 0,
        dataset_num_proc=1, load_from_cache_file=False,
        output_dir=str(out_dir), seed=seed, data_seed=seed, report_to=["none"],
        check_model=False,  # no network check of the model hub (a retry loop when offline)
        split_dataset_ratio=0.0,
    )
    if val_jsonl is not None and Path(val_jsonl).exists() and Path(val_jsonl).stat().st_size > 0:
        args["val_dataset"] = [str(val_jsonl)]
    else:
        args["eval_strategy"] = "no"
    if t["deepspeed"]:
        args["deepspeed"] = t["deepspeed"]
    for key, value in (t.get("extra_args") or {}).items():  # any other SftArguments field, verbatim
        args[key] = value
    return args


def _nproc(t: dict[str, Any]) -> int:
    if t.get("nproc_per_node"):
        return int(t["nproc_per_node"])
    return int(os.environ.get("NPROC_PER_NODE", "1") or 1)


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest checkpoint-N of the newest swift run folder under out_dir."""
    runs = sorted(glob.glob(str(out_dir / "v*-*")), key=os.path.getmtime)
    for run in reversed(runs):
        ckpts = sorted(glob.glob(os.path.join(run, "checkpoint-*")),
                       key=lambda p: int(p.rsplit("-", 1)[-1]) if p.rsplit("-", 1)[-1].isdigit() else -1)
        if ckpts:
            return Path(ckpts[-1])
    return None


def _losses(run_dir: Path) -> list[dict[str, float]]:
    log = run_dir / "logging.jsonl"
    out = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "loss" in row:
                step = row.get("global_step/max_steps", "")
                out.append({"step": int(str(step).split("/")[0]) if step else len(out) + 1,
                            "loss": float(row["loss"])})
    return out


def sft(t: dict[str, Any], train_jsonl: str | os.PathLike, val_jsonl: str | os.PathLike | None,
        out_dir: str | os.PathLike, *, seed: int = 42, offline: bool = False) -> dict[str, Any]:
    """LoRA SFT; returns (and writes as out_dir/result.json) where the adapter is and how the loss went."""
    from amlc.tables import write_text

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if t["require_gpu"]:
        require_gpu("training (train.require_gpu is true)")
    t = {**t, "model": model_ref(t["model"])}
    check_model_source(t["model"], use_hf=t["use_hf"], offline=offline)
    prepare_swift(t["max_pixels"], offline=offline)
    args = sft_arguments(t, Path(train_jsonl).resolve(),
                         Path(val_jsonl).resolve() if val_jsonl else None, out_dir, seed)
    write_text(out_dir / "sft_args.json", json.dumps(args, indent=2) + "\n")
    nproc = _nproc(t)
    if nproc > 1:
        _launch_multi_gpu(out_dir / "sft_args.json", nproc, t["max_pixels"])
        result: dict[str, Any] = {}
        ckpt = last_checkpoint(out_dir)
    else:
        from swift import SftArguments, sft_main

        result = sft_main(SftArguments(**args))
        ckpt = Path(result["last_model_checkpoint"]) if result.get("last_model_checkpoint") else \
            last_checkpoint(out_dir)
    if ckpt is None or not (ckpt / "adapter_model.safetensors").exists():
        raise InputError(f"training finished without an adapter checkpoint under {out_dir}")
    losses = _losses(ckpt.parent)
    summary = next((h for h in reversed(result.get("log_history", [])) if "train_loss" in h), {})
    out = {
        "checkpoint": str(ckpt),
        "global_step": int(result.get("global_step") or ckpt.name.rsplit("-", 1)[-1]),
        "train_loss": summary.get("train_loss", losses[-1]["loss"] if losses else None),
        "train_runtime_s": summary.get("train_runtime"),
        "losses": losses,
        "log": str(ckpt.parent / "logging.jsonl"),
        "max_pixels": t["max_pixels"],
        "base_model": str(t["model"]),
    }
    write_text(out_dir / "result.json", json.dumps(out, indent=2) + "\n")
    return out


def _launch_multi_gpu(args_file: Path, nproc: int, max_pixels: int) -> None:
    """ms-swift's own launcher: `swift sft args.json` with NPROC_PER_NODE runs torchrun itself."""
    env = dict(os.environ, NPROC_PER_NODE=str(nproc), MAX_PIXELS=str(max_pixels))
    cmd = [sys.executable, "-m", "swift.cli.main", "sft", str(args_file)]
    from amlc import swift_plugin

    if not swift_plugin.torchvision_usable():
        args = json.loads(args_file.read_text(encoding="utf-8"))
        args["external_plugins"] = [swift_plugin.__file__]
        args_file.write_text(json.dumps(args, indent=2) + "\n", encoding="utf-8")
    print(f"launching: NPROC_PER_NODE={nproc} {' '.join(cmd)}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, env=env)
    if done.returncode != 0:
        raise InputError(f"multi-GPU training failed (exit {done.returncode}); see the log above")


# ---- merge --------------------------------------------------------------------------------

def merge(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, max_pixels: int,
          offline: bool = False, use_hf: bool = True) -> Path:
    """Fold the LoRA adapter into the base weights (`swift export --merge_lora true`)."""
    checkpoint = Path(checkpoint).resolve()
    out_dir = Path(out_dir).resolve()
    if not (checkpoint / "adapter_model.safetensors").exists():
        raise InputError(f"no LoRA adapter in {checkpoint} (adapter_model.safetensors missing); "
                         f"run the train stage first")
    try:  # the base model the adapter was trained on: a folder, or a hub id to be had again here
        base = json.loads((checkpoint / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        base = None
    if isinstance(base, str) and base:
        check_model_source(base, use_hf=use_hf, offline=offline)
    prepare_swift(max_pixels, offline=offline)
    from swift import ExportArguments, export_main

    export_main(ExportArguments(adapters=[str(checkpoint)], merge_lora=True, output_dir=str(out_dir),
                                exist_ok=True))
    if not (out_dir / "config.json").exists():
        raise InputError(f"merge wrote no model to {out_dir}")
    write_model_card(out_dir, kind="merged", adapter=str(checkpoint), max_pixels=max_pixels)
    return out_dir


# ---- quantize -----------------------------------------------------------------------------

def quantize(model_dir: str | os.PathLike, calib_jsonl: str | os.PathLike, out_dir: str | os.PathLike,
             q: dict[str, Any], *, max_pixels: int, model_type: str = "qwen2_vl",
             template_type: str = "qwen2_vl", seed: int = 42, offline: bool = False) -> Path:
    """GPTQ W4A16 of the merged model with llmcompressor, calibrated on our training rows."""
    model_dir = Path(model_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if not (model_dir / "config.json").exists():
        raise InputError(f"no model in {model_dir}; run the merge stage first")
    if q["scheme"] != "W4A16":
        raise InputError(f"quantize.scheme {q['scheme']!r} is not supported; W4A16 is (4-bit weights, "
                         f"16-bit activations: what vLLM's Marlin kernels serve)")
    prepare_swift(max_pixels, offline=offline)
    import random

    import torch
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    from swift import get_model_processor, get_template

    on_gpu = cuda_available()
    dtype = getattr(torch, dtype_name(q["torch_dtype"], on_gpu))
    model, processor = get_model_processor(str(model_dir), model_type=model_type, torch_dtype=dtype,
                                           device_map="cpu")  # llmcompressor moves layers to the GPU
    template = get_template(processor, template_type=template_type)
    template.set_mode("train")

    rows = [json.loads(line) for line in Path(calib_jsonl).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    if not rows:
        raise InputError(f"no calibration rows in {calib_jsonl}")
    random.Random(seed).shuffle(rows)
    rows = rows[: q["num_samples"]]
    keys = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
    samples = []
    for row in rows:
        batch = template.data_collator([template.encode({"messages": row["messages"], "images": row["images"]})])
        samples.append({k: batch[k] for k in keys if k in batch})
    from torch.utils.data import DataLoader

    loader = DataLoader(samples, batch_size=1, collate_fn=lambda items: items[0])

    # Group size must divide the layers' input width; the tiny test model is narrower than 128.
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", symmetric=True, strategy="group", group_size=q["group_size"]))
    recipe = GPTQModifier(config_groups={"group_0": scheme}, ignore=list(q["ignore"]),
                          dampening_frac=q["dampening_frac"])
    model = oneshot(model=model, dataset=loader, recipe=recipe,
                    sequential_targets=list(q["sequential_targets"]),
                    num_calibration_samples=len(samples))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), save_compressed=True)
    processor.save_pretrained(str(out_dir))
    _widen_ignore(out_dir / "config.json", q["ignore"])
    for name in ("args.json",):  # swift's record of model_type/template, read by its engines
        src = model_dir / name
        if src.exists():
            (out_dir / name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    card = read_model_card(model_dir)
    write_model_card(out_dir, **{**card, "kind": "w4a16", "source": str(model_dir), "max_pixels": max_pixels,
                                 "calibration_rows": len(samples), "group_size": q["group_size"]})
    return out_dir


def _widen_ignore(config_json: Path, patterns: list[str]) -> None:
    """Keep the recipe's regex ignores in the saved quantization_config.

    llmcompressor writes the ignored layers by their checkpoint names ("visual.blocks.0.attn.qkv"), but
    transformers 5 names the same modules "model.visual.blocks.0.attn.qkv" when loading, so the vision
    tower would be treated as quantised and get random weights. The regexes match both namings (vLLM
    reads "re:" entries too)."""
    cfg = json.loads(config_json.read_text(encoding="utf-8"))
    qc = cfg.get("quantization_config")
    if not qc:
        raise InputError(f"quantisation wrote no quantization_config into {config_json}")
    ignore = list(qc.get("ignore") or [])
    for p in patterns:
        if p.startswith("re:") and p not in ignore:
            ignore.append(p)
    qc["ignore"] = ignore
    config_json.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
