"""amlc: Amazon ML Challenge 2024 pipeline (product-photo attribute extraction).

Floors (lower never imports upper): constants/metric/config/tables/download/shards ->
units/sanity/prompts/report -> sampling/swift_data/finetune/engines. Heavy libraries (torch, swift,
rapidocr, vllm) are imported inside the functions that need them, so the last-mile commands start fast.
"""

__version__ = "0.1.0"
