"""The fine-tuning stage's parts that need no model run: prompts, label curation, swift arguments,
the CPU plugin, the engine's confidence and log-probability code, and train/run.py's errors."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

from amlc import prompts, swift_data
from amlc.config import load_config
from amlc.constants import ENTITY_UNIT_MAP
from amlc.errors import InputError


# ---- prompts ----

@pytest.mark.parametrize("entity", sorted(ENTITY_UNIT_MAP))
def test_prompt_names_entity_and_every_allowed_unit(entity):
    text = prompts.prompt(entity)
    assert prompts.ENTITY_WORDS[entity] in text
    for unit in ENTITY_UNIT_MAP[entity]:
        assert unit in text
    assert prompts.user_message(entity) == "<image>" + text
    assert prompts.messages(entity, "") == [{"role": "user", "content": "<image>" + text},
                                            {"role": "assistant", "content": ""}]
    # the example answer is itself a canonical value for the entity
    from amlc import units

    assert units.normalize(prompts.EXAMPLES[entity], entity) == prompts.EXAMPLES[entity]


def test_prompt_unknown_entity():
    with pytest.raises(KeyError):
        prompts.prompt("colour")


# ---- label curation ----

@pytest.mark.parametrize("target,text,found", [
    ("500.0 gram", "Net Wt. 500g (17.6 oz)", True),
    ("500.0 gram", "NET WT 500 G", True),
    ("17.6 ounce", "Net Wt. 500g (17.6 oz)", True),
    ("1.5 kilogram", "1,5 kg", True),
    ("240.0 volt", "INPUT 100-240V~ 50/60Hz", True),
    ("12.0 volt", "INPUT 100-240V~ 50/60Hz", False),
    ("2000.0 watt", "2,000 W", True),
    ("10.0 centimetre", "", False),
    ("10.0 centimetre", "size 100 mm", False),
])
def test_value_in_text(target, text, found):
    assert swift_data.value_in_text(target, text) is found


def _sample(tmp_path, rows):
    paths = {}
    recs = []
    for i, (entity, label, split, has_image) in enumerate(rows):
        link = f"https://x.invalid/{i}.jpg"
        if has_image:
            p = tmp_path / f"{i}.jpg"
            p.write_bytes(b"jpeg")
            paths[link] = p
        recs.append({"index": i, "image_link": link, "group_id": "1", "entity_name": entity,
                     "entity_value": label, "split": split})
    return pd.DataFrame(recs), paths.get


def test_build_curates_labels_and_caps_abstentions(tmp_path):
    rows = [("item_weight", f"{i + 1}00 g", "train", True) for i in range(10)]
    rows += [("voltage", "12 V", "val", True), ("width", "oops", "train", True),
             ("width", "5 cm", "train", False)]
    sample, find = _sample(tmp_path, rows)
    texts = {str(tmp_path / f"{i}.jpg"): ("100 g" if i == 0 else "nothing here") for i in range(len(rows))}
    calls = []

    def text_of(p):
        calls.append(p)
        return texts[str(p)]

    rep = swift_data.build(sample, find, tmp_path / "ds", abstention=True, abstention_max_fraction=0.3,
                           text_of=text_of, progress=False)
    table = pd.read_csv(tmp_path / "ds" / "dataset.csv", dtype=str, keep_default_na=False)
    by = dict(zip(table["index"].astype(int), zip(table["status"], table["target"], table["reason"])))
    assert by[11] == ("dropped", "", "label_unusable")
    assert by[12] == ("dropped", "", "image_missing")
    assert by[0] == ("value", "100.0 gram", "")  # its number is on the image
    assert by[10][0] == "value"  # val rows are never turned into abstentions
    assert rep.abstentions == 3  # 9 candidates, capped at 30% of the 10 training rows
    assert sum(1 for v in by.values() if v[0] == "abstain") == 3
    assert rep.train_rows == 10 and rep.val_rows == 1
    assert rep.dropped == {"label_unusable": 1, "image_missing": 1}
    # OCR results are cached: a rebuild does not OCR again
    n = len(calls)
    swift_data.build(sample, find, tmp_path / "ds", abstention=True, text_of=text_of, progress=False)
    assert len(calls) == n
    summary = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert summary["prompt_version"] == prompts.PROMPT_VERSION


def test_build_without_abstention_keeps_values(tmp_path):
    sample, find = _sample(tmp_path, [("item_weight", "1 kg", "train", True), ("voltage", "5V", "val", True)])
    rep = swift_data.build(sample, find, tmp_path / "ds", progress=False)
    assert rep.abstentions == 0
    row = json.loads((tmp_path / "ds" / "train.jsonl").read_text())
    assert row["messages"][1] == {"role": "assistant", "content": "1.0 kilogram"}
    assert row["images"] == [str((tmp_path / "0.jpg").resolve())]
    assert not (tmp_path / "ds" / "ocr_text.jsonl").exists()


def test_build_errors(tmp_path):
    sample, find = _sample(tmp_path, [("item_weight", "1 kg", "test", True)])
    with pytest.raises(InputError, match="unknown split"):
        swift_data.build(sample, find, tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="lacks column"):
        swift_data.build(sample.drop(columns=["split"]), find, tmp_path / "b", progress=False)
    sample, find = _sample(tmp_path, [("item_weight", "heavy", "train", True)])
    with pytest.raises(InputError, match="no usable training rows"):
        swift_data.build(sample, find, tmp_path / "c", progress=False)


# ---- swift arguments and model checks ----

def test_sft_arguments_on_cpu(tmp_path):
    from amlc import finetune

    t = load_config("configs/qwen2vl_2b.yaml", ["train.extra_args={attn_impl: sdpa}", "train.deepspeed=zero2"])["train"]
    args = finetune.sft_arguments(t, tmp_path / "train.jsonl", None, tmp_path / "out", seed=7)
    assert args["tuner_type"] == "lora" and args["lora_rank"] == 16 and args["target_modules"] == ["all-linear"]
    assert args["freeze_vit"] is True and args["model_type"] == "qwen2_vl" and args["template"] == "qwen2_vl"
    assert args["check_model"] is False and args["eval_strategy"] == "no"
    # this machine has no GPU: fp32, no gradient checkpointing, no dataloader workers
    assert args["torch_dtype"] == "float32" and args["gradient_checkpointing"] is False
    assert args["dataloader_num_workers"] == 0
    assert args["attn_impl"] == "sdpa" and args["deepspeed"] == "zero2" and args["seed"] == 7
    from swift import SftArguments

    fields = set(SftArguments.__dataclass_fields__)
    assert set(args) <= fields, set(args) - fields  # every key is a real ms-swift 4.x field


def test_model_source_errors(tmp_path, monkeypatch):
    from amlc import finetune

    with pytest.raises(InputError, match="model folder not found"):
        finetune.check_model_source(str(tmp_path / "nope"), use_hf=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        finetune.check_model_source(str(tmp_path / "empty"), use_hf=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="download it first"):
        finetune.check_model_source("Qwen/Qwen2-VL-2B-Instruct", use_hf=True)
    assert finetune.model_ref("Qwen/Qwen2-VL-2B-Instruct") == "Qwen/Qwen2-VL-2B-Instruct"
    assert os.path.isabs(finetune.model_ref("outputs/x/model"))


def test_select_stages():
    from amlc.train_recipe import STAGES, select_stages

    assert select_stages(None, None, None) == list(STAGES)
    assert select_stages("merge", None, None) == ["merge"]
    assert select_stages(None, "train", "quantize") == ["train", "merge", "quantize"]
    with pytest.raises(InputError):
        select_stages(None, "quantize", "train")
    with pytest.raises(InputError):
        select_stages("train", "merge", None)


# ---- the CPU plugin and the tiny model ----

def test_plugin_and_tiny_model(tmp_path):
    import importlib.util

    from amlc import swift_plugin, tiny

    path = tiny.build_tiny(tmp_path / "tiny")
    assert swift_plugin.apply() is True  # this machine has no usable torchvision
    assert importlib.util.find_spec("torchvision") is None  # the stand-ins are gone again
    import qwen_vl_utils

    assert callable(qwen_vl_utils.fetch_image)
    from transformers import AutoProcessor, AutoTokenizer

    proc = AutoProcessor.from_pretrained(path)
    assert hasattr(proc, "image_processor") and not getattr(proc, "video_processor", None)
    tok = AutoTokenizer.from_pretrained(path)
    for i, name in enumerate(tiny.SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(name) == 151643 + i
    assert tok.decode(tok("10.5 cm")["input_ids"]) == "10.5 cm"
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["image_token_id"] == 151655 and cfg["text_config"]["vocab_size"] == 151657


def test_set_max_pixels(monkeypatch):
    from amlc import swift_plugin

    swift_plugin.set_max_pixels(313600)
    assert os.environ["MAX_PIXELS"] == "313600" and os.environ["IMAGE_MAX_TOKEN_NUM"] == "400"


# ---- the engine's numbers ----

def test_confidence_of():
    from amlc.engines.vlm import confidence_of

    assert confidence_of(None) is None and confidence_of({"content": []}) is None
    c = confidence_of({"content": [{"logprob": math.log(0.5)}, {"logprob": math.log(0.125)}]})
    assert c == pytest.approx(0.25)
    assert confidence_of({"content": [{"logprob": 0.0}]}) == 1.0


def test_fast_logprobs_match_swift():
    import torch

    from amlc.engines.vlm import fast_preprocess_logits, swift_preprocess_logits

    original = swift_preprocess_logits()
    assert original is not fast_preprocess_logits
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(3, 500, generator=g) for _ in range(4)]
    ids = torch.randint(0, 500, (3, 4), generator=g)
    for top in (None, 1, 5):
        a = original(logits, ids, top)
        b = fast_preprocess_logits(logits, ids, top)
        assert len(a) == len(b) == 3
        for ra, rb in zip(a, b):
            for da, db in zip(ra, rb):
                assert da.keys() == db.keys()
                for k in da:
                    assert da[k] == pytest.approx(db[k], abs=1e-5)


def test_vlm_engine_config_errors(tmp_path):
    from amlc.engines import load_engine

    cfg = load_config(None, [])
    with pytest.raises(InputError, match="vlm.model is empty"):
        load_engine("vlm", cfg)
    cfg = load_config(None, [f"vlm.model={tmp_path / 'missing'}"])
    with pytest.raises(InputError, match="folder not found"):
        load_engine("vlm", cfg)


# ---- train/run.py ----

def test_run_help_and_errors(cli, tmp_path):
    r = cli("train/run.py", "--help")
    assert r.returncode == 0
    for stage in ("sample", "download", "dataset", "train", "merge", "quantize", "validate"):
        assert stage in r.stdout
    r = cli("train/run.py", "--config", "configs/smoke.yaml", "train.lora_rnak=4")
    assert r.returncode == 2 and "unknown config key 'train.lora_rnak'" in r.stderr and "lora_rank" in r.stderr
    r = cli("train/run.py", "--config", "configs/smoke.yaml", f"run.output_dir={tmp_path}", "--stage", "merge")
    assert r.returncode == 2 and "run the train stage first" in r.stderr and "Traceback" not in r.stderr


def test_run_train_without_gpu_says_so(cli, tmp_path):
    ds = tmp_path / "dataset"
    ds.mkdir()
    (ds / "train.jsonl").write_text(json.dumps(swift_data.swift_row("width", tmp_path / "a.jpg", "1.0 inch")) + "\n")
    r = cli("train/run.py", "--config", "configs/qwen2vl_2b.yaml", f"run.output_dir={tmp_path}", "--stage", "train")
    assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr and "Traceback" not in r.stderr
    r = cli("train/run.py", "--config", "configs/qwen2vl_2b.yaml", f"run.output_dir={tmp_path}", "--stage", "train",
            "train.require_gpu=false", "train.offline=true")
    assert r.returncode == 2 and "download it first" in r.stderr and "Traceback" not in r.stderr


def test_run_stops_after_download_when_too_few_images(cli, tmp_path):
    """train/run.py ends its download stage with one line (exit 2) naming the failures by kind and the
    manifest when fewer than dataset.min_image_fraction of the images (or none) are on disk, instead of
    going on to fail later; enough images let it go on."""
    from amlc.tables import write_csv
    from imageserver import ImageServer

    def sample(out, links):
        write_csv(pd.DataFrame({"index": range(len(links)), "image_link": links, "group_id": 1,
                                "entity_name": "item_weight", "entity_value": "5.0 gram",
                                "split": "train"}), out / "sample.csv")

    with ImageServer() as srv:
        dead = [srv.url(f"s/404/d{i}.jpg") for i in range(3)]
        out = tmp_path / "out"
        out.mkdir()
        sample(out, dead + ["ftp://example.invalid/f.jpg", srv.url("img/a.jpg"), srv.url("img/b.jpg")])
        args = ["train/run.py", "--config", "configs/smoke.yaml", "--no-progress", f"run.output_dir={out}",
                f"data.images_dir={tmp_path / 'images'}"]
        r = cli(*args, "--from", "download", "--to", "dataset")
        manifest = out / "download" / "manifest.csv"
        assert r.returncode == 2 and "Traceback" not in r.stderr
        err = r.stderr.strip().splitlines()[-1]
        assert err == ("error: download: 2 of 6 images on disk, training needs 3 (dataset.min_image_fraction="
                       "0.5): 3 failed, 1 refused (HTTP 404 Not Found x3, scheme not allowed x1); "
                       f"manifest: {manifest}"), r.stderr
        assert "== stage 3" not in r.stderr and manifest.exists()
        r = cli(*args, "--stage", "download", "dataset.min_image_fraction=0.3")
        assert r.returncode == 0 and "download: 2/6 images on disk" in r.stderr, r.stderr
        # no image at all stops the run whatever the share
        sample(out, dead)
        r = cli(*args, "--stage", "download", "dataset.min_image_fraction=0")
        assert r.returncode == 2 and "0 of 3 images on disk, training needs 1" in r.stderr, r.stderr
        r = cli(*args, "--stage", "download", "dataset.min_image_fraction=1.5")
        assert r.returncode == 2 and "between 0 and 1" in r.stderr


def test_a_hub_model_that_cannot_be_fetched_says_how_to_get_it(cli, tmp_path):
    # not offline by configuration, but no hub answers (here: a closed local port) and nothing cached:
    # the message with the download command, not ms-swift's chained hub traceback
    ds = tmp_path / "run" / "dataset"
    ds.mkdir(parents=True)
    (ds / "train.jsonl").write_text(json.dumps(swift_data.swift_row("width", tmp_path / "a.jpg", "1.0 inch")) + "\n")
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    r = cli("train/run.py", "--config", "configs/qwen2vl_2b.yaml", f"run.output_dir={tmp_path / 'run'}",
            "--stage", "train", "train.require_gpu=false", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    error = [line for line in r.stderr.splitlines() if not line.startswith("== stage")]
    assert len(error) == 1 and error[0].startswith("error: model 'Qwen/Qwen2-VL-2B-Instruct' is not on disk")
    assert "huggingface-cli download Qwen/Qwen2-VL-2B-Instruct" in error[0] and "ConnectError" in error[0]
