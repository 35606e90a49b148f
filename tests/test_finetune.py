"""The fine-tuning stages for real on CPU, offline, on a tiny random Qwen2-VL built here (amlc.tiny).

One module-scoped run goes dataset -> train (ms-swift LoRA) -> merge -> quantize (llmcompressor W4A16)
-> validate (vlm engine + postprocessing + F1) over images drawn with Pillow; the tests then check
each stage's files. Nothing reaches a hub: HF_HUB_OFFLINE=1 and MODELSCOPE_OFFLINE=1 are set first.
"""

from __future__ import annotations

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MODELSCOPE_OFFLINE"] = "1"

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from amlc import prompts  # noqa: E402
from amlc.config import load_config  # noqa: E402
from amlc.tables import write_csv  # noqa: E402

pytestmark = pytest.mark.slow

ROWS = [  # (entity, label as in train.csv, text printed on the image or None)
    ("item_weight", "500.0 gram", "Net Wt 500 g"),
    ("item_weight", "2 kg", "2 kg"),
    ("voltage", "[100.0, 240.0] volt", "100-240V"),
    ("wattage", "65.0 watt", "65W"),
    ("width", "10.0 centimetre", "10 cm"),
    ("height", "12.5 inch", None),  # not printed: an abstention example when abstention is on
    ("item_volume", "750 millilitre", "750 mL"),
    ("depth", "3.0 foot", "3 ft"),
    ("item_weight", "bad label", "1 kg"),  # unusable label: dropped
    ("voltage", "12.0 volt", "12V"),  # val
    ("wattage", "1500.0 watt", "1500W"),  # val
    ("item_weight", "250.0 gram", "250 g"),  # val
]
VAL_FROM = 9


def _font():
    try:
        return ImageFont.load_default(size=40)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _draw(path, text, seed):
    img = Image.new("RGB", (320, 240), (255, 255 - 10 * seed % 60, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((20 + seed, 20, 120 + seed, 80), fill=(20 * seed % 255, 90, 160))
    if text:
        d.text((30, 120), text, fill=(0, 0, 0), font=_font())
    img.save(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ft")
    images = base / "images"
    images.mkdir()
    sample, manifest = [], []
    for i, (entity, label, text) in enumerate(ROWS):
        link = f"https://example.invalid/img{i}.png"
        path = images / f"img{i}.png"
        _draw(path, text, i)
        sample.append({"index": 1000 + i, "image_link": link, "group_id": 1, "entity_name": entity,
                       "entity_value": label, "split": "val" if i >= VAL_FROM else "train"})
        manifest.append({"image_link": link, "path": str(path), "status": "ok", "bytes": path.stat().st_size,
                         "attempts": 1, "error": ""})
    # one training row whose image failed to download: dropped
    sample.append({"index": 999, "image_link": "https://example.invalid/missing.png", "group_id": 1,
                   "entity_name": "width", "entity_value": "5.0 centimetre", "split": "train"})
    manifest.append({"image_link": "https://example.invalid/missing.png", "path": "", "status": "failed",
                     "bytes": 0, "attempts": 3, "error": "HTTP 404"})
    out = base / "out"
    (out / "download").mkdir(parents=True)
    write_csv(pd.DataFrame(sample), out / "sample.csv")
    write_csv(pd.DataFrame(manifest), out / "download" / "manifest.csv")

    cfg = load_config("configs/smoke.yaml", [
        f"run.output_dir={out}", f"data.images_dir={images}", f"train.model={base / 'tiny'}",
        "train.max_steps=4", "train.save_steps=4", "quantize.num_samples=4", "synthetic.n=0",
    ])
    from amlc.train_recipe import Recipe

    logs: list[str] = []
    recipe = Recipe(cfg, log=logs.append, progress=False)

    # OCR stand-in for the abstention hook: the text drawn on each image (the real default is rapidocr).
    drawn = {str((images / f"img{i}.png").resolve()): (t or "") for i, (_, _, t) in enumerate(ROWS)}
    recipe.stage_dataset(text_of=lambda p: drawn[str(p.resolve())])
    times = recipe.run(["train", "merge", "quantize", "validate"])
    return {"out": out, "cfg": cfg, "recipe": recipe, "logs": logs, "times": times, "images": images}


def test_dataset_jsonl_and_curation(run):
    d = run["out"] / "dataset"
    train = [json.loads(line) for line in (d / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (d / "val.jsonl").read_text().splitlines()]
    assert len(val) == 3
    table = pd.read_csv(d / "dataset.csv", dtype=str, keep_default_na=False)
    status = dict(zip(table["index"].astype(int), table["status"]))
    assert status[999] == "dropped" and status[1008] == "dropped"  # missing image, unusable label
    assert status[1005] == "abstain"  # 12.5 is not printed on its image
    assert len(train) == 8
    answers = {r["images"][0].rsplit("/", 1)[-1]: r["messages"][1]["content"] for r in train}
    assert answers["img0.png"] == "500.0 gram"
    assert answers["img1.png"] == "2.0 kilogram"  # the label cleaned by amlc.units
    assert answers["img2.png"] == "240.0 volt"  # a range label resolved by the range policy
    assert answers["img5.png"] == ""  # abstention example
    row = train[0]
    assert row["messages"][0] == {"role": "user", "content": prompts.user_message("item_weight")}
    assert os.path.isabs(row["images"][0]) and os.path.exists(row["images"][0])
    # val rows keep the true value even when it is not verified by OCR
    assert {r["messages"][1]["content"] for r in val} == {"12.0 volt", "1500.0 watt", "250.0 gram"}


def test_train_writes_adapter_and_logs_loss(run):
    result = json.loads((run["out"] / "train" / "result.json").read_text())
    ckpt = result["checkpoint"]
    assert os.path.exists(os.path.join(ckpt, "adapter_model.safetensors"))
    assert os.path.exists(os.path.join(ckpt, "adapter_config.json"))
    assert result["global_step"] == 4
    assert len(result["losses"]) == 4 and all(l["loss"] > 0 for l in result["losses"])
    args = json.loads((run["out"] / "train" / "sft_args.json").read_text())
    assert args["tuner_type"] == "lora" and args["freeze_vit"] is True and args["check_model"] is False


def test_merge_and_w4a16_model(run):
    merged, quant = run["out"] / "merged", run["out"] / "quantized"
    assert (merged / "model.safetensors").exists() and (merged / "tokenizer.json").exists()
    cfg = json.loads((quant / "config.json").read_text())
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors"
    w = qc["config_groups"]["group_0"]["weights"]
    assert w["num_bits"] == 4 and w["group_size"] == 32
    assert "re:.*visual.*" in qc["ignore"] and "lm_head" in qc["ignore"]
    card = json.loads((quant / "amlc.json").read_text())
    assert card["max_pixels"] == 50176 and card["kind"] == "w4a16"


def test_w4a16_reloads_in_transformers_with_packed_weights(run):
    import torch
    from safetensors import safe_open
    from transformers import Qwen2VLForConditionalGeneration

    quant = run["out"] / "quantized"
    with safe_open(str(quant / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.endswith("mlp.up_proj.weight_packed") for k in keys)  # 4-bit language model
    assert any("visual" in k and k.endswith("qkv.weight") for k in keys)  # vision tower left 16-bit
    model = Qwen2VLForConditionalGeneration.from_pretrained(str(quant), dtype=torch.float32)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_validate_writes_metrics(run):
    metrics = json.loads((run["out"] / "metrics.json").read_text())
    assert metrics["rows"] == 3 and 0.0 <= metrics["f1"] <= 1.0
    assert {r["entity_name"] for r in metrics["per_entity"]} == {"voltage", "wattage", "item_weight", "ALL"}
    assert metrics["raw_f1"] is not None
    preds = pd.read_csv(run["out"] / "validate" / "predictions.csv", dtype=str, keep_default_na=False)
    assert len(preds) == 3
    assert set(preds.columns) >= {"index", "entity_name", "truth", "raw", "prediction", "confidence", "reason"}
    assert metrics["model"].endswith("quantized")


def test_vlm_engine_end_to_end(run):
    from amlc.engines import Request, load_engine

    cfg = json.loads(json.dumps(run["cfg"]))
    cfg["vlm"]["model"] = str(run["out"] / "merged")
    engine = load_engine("vlm", cfg)
    reqs = [Request(index=1, entity_name="voltage", image_path=run["images"] / "img9.png"),
            Request(index=2, entity_name="item_weight", image_path=None),
            Request(index=3, entity_name="wattage", image_path=run["images"] / "img10.png")]
    bad = run["images"] / "broken.png"
    bad.write_bytes(b"not an image")
    reqs.append(Request(index=4, entity_name="width", image_path=bad))
    res = engine.predict(reqs)
    assert [r.index for r in res] == [1, 2, 3, 4]
    assert res[1].reason == "image_missing" and res[1].prediction == ""
    assert res[3].prediction == "" and res[3].reason.startswith("error")
    for r in (res[0], res[2]):
        assert r.confidence is not None and 0.0 < r.confidence <= 1.0
        # whatever the random model says, the prediction is "" or a canonical value for the entity
        from amlc import units

        assert r.prediction == units.normalize(r.raw, "voltage" if r.index == 1 else "wattage")


def test_vlm_engine_base_plus_adapter_matches_merged(run):
    from amlc.engines import Request, load_engine

    result = json.loads((run["out"] / "train" / "result.json").read_text())
    req = [Request(index=7, entity_name="voltage", image_path=run["images"] / "img9.png")]
    outs = {}
    for name, model, adapters in (("merged", run["out"] / "merged", []),
                                  ("adapter", run["cfg"]["train"]["model"], [result["checkpoint"]])):
        cfg = json.loads(json.dumps(run["cfg"]))
        cfg["vlm"].update(model=str(model), adapters=adapters)
        outs[name] = load_engine("vlm", cfg).predict(req)[0]
    assert outs["adapter"].raw == outs["merged"].raw
    assert outs["adapter"].confidence == pytest.approx(outs["merged"].confidence, rel=1e-3)


def test_two_processes_through_swift_launcher(run):
    """train.nproc_per_node > 1 goes through ms-swift's own launcher (torchrun); 2 CPU processes here."""
    from amlc import finetune

    t = {**run["cfg"]["train"], "nproc_per_node": 2, "max_steps": 2, "save_steps": 2}
    out = run["out"] / "train-2proc"
    result = finetune.sft(t, run["out"] / "dataset" / "train.jsonl", None, out, offline=True)
    assert os.path.exists(os.path.join(result["checkpoint"], "adapter_model.safetensors"))
    assert result["global_step"] == 2 and len(result["losses"]) == 2
    from amlc import swift_plugin

    if not swift_plugin.torchvision_usable():  # the CPU plugin reaches the launched processes
        args = json.loads((out / "sft_args.json").read_text())
        assert args["external_plugins"] == [swift_plugin.__file__]


def test_smoke_cli_every_stage_then_one_again(cli, tmp_path):
    """train/run.py end to end (stages 1-7) on a few synthetic images, then one stage rerun alone."""
    out = tmp_path / "smoke"
    args = ["train/run.py", "--config", "configs/smoke.yaml", "--no-progress", f"run.output_dir={out}",
            f"data.images_dir={out / 'synthetic' / 'images'}", f"train.model={tmp_path / 'tiny'}",
            "synthetic.n=8", "dataset.abstention=false", "train.max_steps=2", "train.save_steps=2",
            "quantize.num_samples=2"]
    r = cli(*args, env={"HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("sample", "download", "dataset", "train", "merge", "quantize", "validate"):
        assert f"== {name} done" in r.stderr
    sample = pd.read_csv(out / "sample.csv", dtype=str, keep_default_na=False)
    assert set(sample["split"]) == {"train", "val"}
    assert (out / "download" / "manifest.csv").exists() and (out / "dataset" / "train.jsonl").exists()
    assert "quantization_config" in json.loads((out / "quantized" / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rows"] == int((sample["split"] == "val").sum())
    assert "validation F1" in r.stdout and "stage times" in r.stdout
    saved = (out / "config.yaml").read_text()
    assert "max_steps: 2" in saved  # the resolved config, overrides included
    (out / "metrics.json").unlink()
    r = cli(*args, "--stage", "validate", env={"HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "== train done" not in r.stderr and (out / "metrics.json").exists()
