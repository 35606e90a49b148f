"""The fine-tuning recipe in numbered stages, each restartable on its own (`train/run.py`).

Every stage reads the files the stages before it wrote under `run.output_dir` (OUT) and writes its
own; a stage can be rerun alone (`--stage NAME`) or a range of them (`--from A --to B`). The resolved
config is saved as OUT/config.yaml by every run, and each stage's folder says what it made.

    1 sample    OUT/sample.csv          train.csv's columns + index, split (train|val), target
                                        (amlc.sampling; with synthetic.n > 0 the rows come from
                                        OUT/synthetic/, images rendered by amlc.synthetic)
    2 download  OUT/download/manifest.csv   image_link, path, status, bytes, attempts, error, mtime_ns
                                        (amlc.download; images in data.images_dir); stops the run
                                        when fewer than dataset.min_image_fraction of them are there
    3 dataset   OUT/dataset/            train.jsonl, val.jsonl, dataset.csv, dataset.json (amlc.swift_data)
    4 train     OUT/train/              sft_args.json, v*/checkpoint-N (the LoRA adapter), result.json
    5 merge     OUT/merged/             the LoRA merged into the base weights (Hugging Face folder)
    6 quantize  OUT/quantized/          W4A16 GPTQ model (compressed-tensors; config.json carries
                                        quantization_config)
    7 validate  OUT/validate/           val_input.csv (the validation rows in test.csv's layout +
                                        entity_value), preds/ (the shard runner's files, amlc.inference),
                                        raw.csv (RAW layout), predictions.csv (index, entity_name, truth,
                                        candidate, confidence, reason, raw, prediction after
                                        postprocessing), and OUT/metrics.json:
                                        {"f1", "precision", "recall", "rows", "model", "adapters",
                                         "per_entity": {entity: {tp, fp, fn, tn, rows, precision,
                                                                 recall, f1}}}
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amlc.config import resolve_path, save_config
from amlc.errors import InputError

STAGES: tuple[str, ...] = ("sample", "download", "dataset", "train", "merge", "quantize", "validate")

STAGE_HELP = {
    "sample": "stratified train/validation sample of the training CSV -> sample.csv",
    "download": "fetch the sample's images into data.images_dir -> download/manifest.csv",
    "dataset": "ms-swift JSONL (prompt + canonical answer, optional abstentions) -> dataset/",
    "train": "LoRA SFT with ms-swift -> train/ (adapter checkpoint, loss log)",
    "merge": "merge the LoRA into the base weights -> merged/",
    "quantize": "4-bit GPTQ (W4A16) with llmcompressor, calibrated on our rows -> quantized/",
    "validate": "predict the validation split with the vlm engine, F1 per entity -> metrics.json",
}


def _need(module: str, what: str):
    """Import a pipeline module another stage owns, with a clear message if this checkout lacks it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise InputError(f"{what} needs {module}, which this checkout does not have yet "
                         f"(merge main to get it)") from None


class Recipe:
    def __init__(self, cfg: dict[str, Any], *, log: Callable[[str], None] | None = None,
                 progress: bool = True):
        self.cfg = cfg
        self.out = resolve_path(cfg["run"]["output_dir"])
        self.offline = bool(cfg["train"]["offline"])
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    # ---- paths ----
    @property
    def sample_csv(self) -> Path:
        return self.out / "sample.csv"

    @property
    def images_dir(self) -> Path:
        return resolve_path(self.cfg["data"]["images_dir"])

    @property
    def manifest_csv(self) -> Path:
        return self.out / "download" / "manifest.csv"

    @property
    def dataset_dir(self) -> Path:
        return self.out / "dataset"

    @property
    def train_dir(self) -> Path:
        return self.out / "train"

    @property
    def merged_dir(self) -> Path:
        return self.out / "merged"

    @property
    def quantized_dir(self) -> Path:
        return self.out / "quantized"

    @property
    def validate_dir(self) -> Path:
        return self.out / "validate"

    @property
    def metrics_json(self) -> Path:
        return self.out / "metrics.json"

    def _require(self, path: Path, stage: str) -> Path:
        if not path.exists():
            raise InputError(f"{path} is missing: run the {stage} stage first "
                             f"(python train/run.py --stage {stage}, or without --stage for all)")
        return path

    # ---- running ----
    def run(self, stages: list[str]) -> dict[str, float]:
        from amlc.tables import make_dirs

        make_dirs(self.out, "run.output_dir")
        save_config(self.cfg, self.out / "config.yaml")
        times: dict[str, float] = {}
        for name in stages:
            n = STAGES.index(name) + 1
            self.log(f"== stage {n}/{len(STAGES)}: {name} ({STAGE_HELP[name]})")
            t0 = time.perf_counter()
            getattr(self, f"stage_{name}")()
            times[name] = time.perf_counter() - t0
            self.log(f"== {name} done in {times[name]:.1f} s")
        return times

    # ---- 1 sample ----
    def stage_sample(self) -> Path:
        from amlc.tables import read_csv, write_csv

        syn = self.cfg["synthetic"]
        if syn["n"] > 0:
            synthetic = _need("amlc.synthetic", "synthetic.n > 0")
            syn_dir = self.out / "synthetic"
            # every rendered image in train.csv: the sample stage makes its own validation split
            synthetic.generate(syn_dir, syn["n"], syn["seed"], test_fraction=0.0)
            train_csv = syn_dir / "train.csv"
        else:
            train_csv = resolve_path(self.cfg["data"]["train_csv"])
        df = read_csv(train_csv, required=["image_link", "group_id", "entity_name", "entity_value"],
                      what="training CSV")
        sampling = _need("amlc.sampling", "the sample stage")
        s = self.cfg["sample"]
        sample = sampling.sample(df, size=s["size"], fraction=s["fraction"], val_fraction=s["val_fraction"],
                                 seed=self.cfg["run"]["seed"],
                                 range_policy=self.cfg["postprocess"]["range_policy"], log=self.log)
        write_csv(sample, self.sample_csv)
        counts = sample["split"].value_counts().to_dict()
        self.log(f"sample: {len(sample)} rows ({counts.get('train', 0)} train, {counts.get('val', 0)} val) "
                 f"-> {self.sample_csv}")
        return self.sample_csv

    def _sample(self):
        from amlc.tables import read_csv

        return read_csv(self._require(self.sample_csv, "sample"),
                        required=["index", "image_link", "entity_name", "entity_value", "split"],
                        what="sample file")

    # ---- 2 download ----
    def stage_download(self) -> Path:
        download = _need("amlc.download", "the download stage")
        share = self.cfg["dataset"]["min_image_fraction"]
        if not 0 <= share <= 1:
            raise InputError(f"dataset.min_image_fraction must be between 0 and 1, not {share}")
        sample = self._sample()
        links = sorted(set(sample["image_link"]))
        self.manifest_csv.parent.mkdir(parents=True, exist_ok=True)
        # The download section's keys are download()'s keyword names (amlc.download).
        report = download.download(links, self.images_dir, **self.cfg["download"], progress=self.progress,
                                   manifest_path=self.manifest_csv, strict=False)
        ok = report.ok + report.skipped
        self.log(f"download: {ok}/{len(links)} images on disk in {self.images_dir}")
        need = max(1, math.ceil(share * len(links)))  # never train on no image at all
        if links and ok < need:
            raise InputError(f"download: {ok} of {len(links)} images on disk, training needs {need} "
                             f"(dataset.min_image_fraction={share:g}): {report.failed} failed, "
                             f"{report.refused} refused ({report.why()}); manifest: {self.manifest_csv}")
        return self.manifest_csv

    def image_path(self) -> Callable[[str], Path | None]:
        """image_link -> its file on disk, or None: the download manifest's `path` when the file is
        there; links the manifest does not list are looked up in the cache (amlc.download.local_path)."""
        known: dict[str, str] = {}
        if self.manifest_csv.exists():
            from amlc.tables import read_csv

            m = read_csv(self.manifest_csv, required=["image_link", "path"], what="download manifest")
            known = dict(zip(m["image_link"], m["path"]))
        images_dir = self.images_dir
        download = None

        def find(link: str) -> Path | None:
            nonlocal download
            if link in known:
                p = Path(known[link]) if known[link] else None
            else:
                download = download or _need("amlc.download", "finding the images")
                p = Path(download.local_path(link, images_dir))
            if p is not None and not p.is_absolute():
                p = resolve_path(p)
            return p if p is not None and p.is_file() else None

        return find

    # ---- 3 dataset ----
    def stage_dataset(self, text_of=None) -> Path:
        from amlc import swift_data

        d = self.cfg["dataset"]
        teacher = None
        if d["teacher_labels"]:
            from amlc.tables import read_csv

            teacher = read_csv(resolve_path(d["teacher_labels"]), required=["index"], what="teacher labels")
        report = swift_data.build(self._sample(), self.image_path(), self.dataset_dir,
                                  abstention=d["abstention"], abstention_max_fraction=d["abstention_max_fraction"],
                                  text_of=text_of or swift_data.ocr_text_of(self.cfg["ocr"]),
                                  range_policy=self.cfg["postprocess"]["range_policy"],
                                  progress=self.progress, teacher=teacher,
                                  teacher_keep_agreeing=d["teacher_keep_agreeing"],
                                  teacher_abstain=d["teacher_abstain"],
                                  teacher_min_confidence=d["teacher_min_confidence"])
        self.log(report.line())
        return self.dataset_dir

    # ---- 4 train ----
    def stage_train(self) -> dict[str, Any]:
        from amlc import finetune

        train_jsonl = self._require(self.dataset_dir / "train.jsonl", "dataset")
        val_jsonl = self.dataset_dir / "val.jsonl"
        if self.cfg["train"]["random_tiny_model"]:
            from amlc import tiny

            path = tiny.build_tiny(resolve_path(self.cfg["train"]["model"]))
            self.log(f"train: random tiny Qwen2-VL at {path} (train.random_tiny_model)")
        result = finetune.sft(self.cfg["train"], train_jsonl, val_jsonl, self.train_dir,
                              seed=self.cfg["run"]["seed"], offline=self.offline)
        losses = result["losses"]
        first = f"{losses[0]['loss']:.4f}" if losses else "?"
        last = f"{losses[-1]['loss']:.4f}" if losses else "?"
        self.log(f"train: {result['global_step']} steps, loss {first} -> {last}; adapter {result['checkpoint']}")
        return result

    def checkpoint(self) -> Path:
        result = json.loads(self._require(self.train_dir / "result.json", "train").read_text(encoding="utf-8"))
        return Path(result["checkpoint"])

    # ---- 5 merge ----
    def stage_merge(self) -> Path:
        from amlc import finetune

        out = finetune.merge(self.checkpoint(), self.merged_dir, max_pixels=self.cfg["train"]["max_pixels"],
                             offline=self.offline, use_hf=self.cfg["train"]["use_hf"])
        self.log(f"merge: merged model -> {out}")
        return out

    # ---- 6 quantize ----
    def stage_quantize(self) -> Path:
        from amlc import finetune

        self._require(self.merged_dir / "config.json", "merge")
        t = self.cfg["train"]
        out = finetune.quantize(self.merged_dir, self._require(self.dataset_dir / "train.jsonl", "dataset"),
                                self.quantized_dir, self.cfg["quantize"], max_pixels=t["max_pixels"],
                                model_type=t["model_type"], template_type=t["template"],
                                seed=self.cfg["run"]["seed"], offline=self.offline)
        self.log(f"quantize: W4A16 model -> {out}")
        return out

    # ---- 7 validate ----
    def validate_engine_cfg(self) -> dict[str, Any]:
        """The config the vlm engine runs under for validation: vlm.model set to this run's model."""
        cfg = copy.deepcopy(self.cfg)
        which = cfg["validate"]["model"]
        v = cfg["vlm"]
        if which == "quantized":
            v["model"] = str(self._require(self.quantized_dir / "config.json", "quantize").parent)
        elif which == "merged":
            v["model"] = str(self._require(self.merged_dir / "config.json", "merge").parent)
        elif which == "adapter":
            v["model"] = str(cfg["train"]["model"])
            v["adapters"] = [str(self.checkpoint())]
        else:
            raise InputError(f"validate.model must be quantized, merged or adapter, not {which!r}")
        return cfg  # vlm.max_pixels null: the model's amlc.json (what it was trained with)

    def stage_validate(self) -> dict[str, Any]:
        from amlc.tables import make_dirs, read_csv, write_csv, write_text

        evaluate = _need("amlc.evaluate", "the validate stage")
        sample = self._sample()
        val = sample[sample["split"] == "val"]
        if self.cfg["validate"]["max_rows"]:
            val = val.head(int(self.cfg["validate"]["max_rows"]))
        if val.empty:
            raise InputError("the sample has no validation rows (sample.val_fraction is 0?)")
        make_dirs(self.validate_dir)
        cols = [c for c in ("index", "image_link", "group_id", "entity_name", "entity_value") if c in val.columns]
        val_input = self.validate_dir / "val_input.csv"
        write_csv(val[cols], val_input)
        cfg = self.validate_engine_cfg()
        raw_csv = self._predict(cfg, val_input)
        raw = read_csv(raw_csv, required=["index", "prediction"], what="validation raw predictions",
                       check_entities=False)

        # the same scoring as `evaluate.py --labels val_input.csv --raw raw.csv`: before and after
        # postprocessing, one metrics.json schema for every stage that writes one
        result = evaluate.evaluate(val_input, raw_path=raw_csv,
                                   range_policy=self.cfg["postprocess"]["range_policy"])
        extra = ["index"] + [c for c in raw.columns if c not in result["rows"].columns]
        rows = result["rows"].merge(raw[extra], on="index", how="left")
        write_csv(rows, self.validate_dir / "predictions.csv")
        metrics = {**evaluate.metrics_dict(result, str(val_input), None, str(raw_csv)),
                   "model": cfg["vlm"]["model"], "adapters": cfg["vlm"]["adapters"]}
        write_text(self.metrics_json, json.dumps(metrics, indent=2) + "\n")
        evaluate.print_tables(result)
        print(f"validation F1 {metrics['f1']:.4f} (before postprocessing {metrics['raw_f1']:.4f}) "
              f"on {metrics['rows']} rows -> {self.metrics_json}")
        return metrics

    def _predict(self, cfg: dict[str, Any], val_input: Path) -> Path:
        """The validation rows through the project's shard runner (one shard) with the vlm engine
        -> raw.csv (index, prediction, candidate, confidence, reason, raw)."""
        inference = _need("amlc.inference", "the validate stage")
        cfg["inference"]["engine"] = "vlm"
        cfg["inference"]["download"] = False  # the download stage fetched them; missing ones stay empty
        cfg["inference"]["batch_size"] = int(cfg["vlm"]["max_batch_size"])
        preds = self.validate_dir / "preds"
        # A fresh shard file each run: the runner resumes from what a file holds, and the model behind
        # the same path may have been retrained since.
        shutil.rmtree(preds, ignore_errors=True)
        inference.run_shard(cfg, 0, 1, input_csv=val_input, images_dir=self.images_dir, output_dir=preds,
                            engine="vlm", progress=self.progress, log=self.log)
        raw_csv = self.validate_dir / "raw.csv"
        inference.merge_to_csv(preds, val_input, raw_csv)
        return raw_csv


def select_stages(stage: str | None, start: str | None, stop: str | None) -> list[str]:
    for name, value in (("--stage", stage), ("--from", start), ("--to", stop)):
        if value is not None and value not in STAGES:
            raise InputError(f"{name} {value!r} is not a stage; stages: {', '.join(STAGES)}")
    if stage is not None:
        if start is not None or stop is not None:
            raise InputError("give either --stage or --from/--to, not both")
        return [stage]
    i = STAGES.index(start) if start else 0
    j = STAGES.index(stop) if stop else len(STAGES) - 1
    if i > j:
        raise InputError(f"--from {start} comes after --to {stop}")
    return list(STAGES[i:j + 1])
