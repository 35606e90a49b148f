# amlc: every stage of the pipeline, one target each. `make` (or `make help`) lists them.
# The environment lives in .venv (created on first use from requirements.txt); nothing is installed
# system-wide. Override the interpreter with `make PYTHON=python3.12 ...`.

PYTHON ?= python3
# The real data's stages: `make infer SHARD=3 SHARDS=8 ENGINE=vlm`, then merge, post, sanity.
TEST ?= dataset/test.csv
TRAIN ?= dataset/train.csv
OUT ?= outputs/default
ENGINE ?= ocr
SHARD ?= 0
SHARDS ?= 1
SHARED ?= ../shared/amlc2024
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast demo demo-real smoke train infer merge styles post sanity evaluate bench bench-ocr fit-ocr clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) ## create .venv with the pinned requirements (CPU torch here, CUDA torch on a GPU box)

test: $(STAMP) ## run the whole test suite (CPU, offline; dev-data tests skip without ../shared)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## the test suite without the slow end-to-end runs
	$(PY) -m pytest -q -m "not slow"

demo: $(STAMP) ## the whole pipeline end to end on generated product images, OCR engine, 2 shards
	$(PY) -m amlc.demo

demo-real: $(STAMP) ## the same on ../shared/amlc2024/images_dev (real photos), when present
	$(PY) -m amlc.demo --real

smoke: $(STAMP) ## every training stage for real on CPU with a tiny random Qwen2-VL (outputs/smoke)
	$(PY) train/run.py --config configs/smoke.yaml

train: $(STAMP) ## fine-tune Qwen2-VL-2B on dataset/train.csv (GPU; configs/qwen2vl_2b.yaml)
	$(PY) train/run.py --config configs/qwen2vl_2b.yaml

infer: $(STAMP) ## one inference shard of TEST: make infer SHARD=0 SHARDS=1 ENGINE=ocr (resumable)
	$(PY) inference/run.py --engine $(ENGINE) --input $(TEST) --output_dir $(OUT)/preds --shard $(SHARD) --num-shards $(SHARDS)

merge: $(STAMP) ## the shard files of OUT/preds -> OUT/raw.csv in TEST's order
	$(PY) merge_csv.py --input_dir $(OUT)/preds --test_filename $(TEST) --output_filename $(OUT)/raw.csv

styles: $(STAMP) ## learn from TRAIN how labels write whole numbers ("500 gram" / "500.0 gram") -> OUT/styles.json
	$(PY) -m amlc.formats --train $(TRAIN) --output $(OUT)/styles.json

post: $(STAMP) ## OUT/raw.csv -> OUT/submission.csv (every row valid for its entity; OUT/styles.json if made)
	$(PY) postprocessing.py --test_filename $(TEST) --input $(OUT)/raw.csv --output_filename $(OUT)/submission.csv $(if $(wildcard $(OUT)/styles.json),--styles $(OUT)/styles.json)

sanity: $(STAMP) ## the organisers' checks on OUT/submission.csv
	$(PY) src/sanity.py --test_filename $(TEST) --output_filename $(OUT)/submission.csv

evaluate: $(STAMP) ## F1 of OUT/submission.csv against LABELS (a CSV with entity_value), with the report (IMAGES: thumbnails)
	$(if $(LABELS),,$(error set LABELS=path/to/labels.csv (a CSV with index, entity_name, entity_value)))
	$(PY) evaluate.py --labels $(LABELS) --raw $(OUT)/raw.csv --predictions $(OUT)/submission.csv --metrics $(OUT)/metrics.json --report $(OUT)/report.html $(if $(IMAGES),--images $(IMAGES))

bench-ocr: $(STAMP) ## the OCR engine on every ../shared labelled set, cross-validated: accuracy, F1, s/image
	PYTHONPATH=src $(PY) bench/bench_ocr.py

fit-ocr: $(STAMP) ## rebuild the OCR engine's catalogue table and fitted models from ../shared (cached OCR)
	$(PY) -m amlc.catalogue --train $(SHARED)/train.csv --exclude $(SHARED)/images_dev/labels.csv --output src/amlc/data/catalogue.json
	PYTHONPATH=src $(PY) bench/fit_ocr_model.py

bench: $(STAMP) ## print the quick CPU benchmark figures (postprocessing, download, shard runner)
	$(PY) bench/bench_postprocess.py
	$(PY) bench/bench_download.py
	$(PY) bench/bench_runner.py

clean: ## remove caches (keeps .venv and outputs/)
	rm -rf .pytest_cache .hypothesis build dist src/*.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
