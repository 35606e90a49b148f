"""Random-weight Qwen2-VL models built offline, for tests, the smoke run and the benchmarks.

No hub is reachable on a CI box, so the real pipeline (swift LoRA, merge, GPTQ, the vlm engine) is
exercised on a model made here from nothing:

- `build_tiny(out_dir)`: a ~10 M parameter Qwen2-VL (hidden 64, 2 layers, vision depth 2), a byte-level
  BPE tokenizer (the 256 byte symbols, no merges) and an image-only processor that keeps images to
  16 visual tokens. It writes a normal Hugging Face model folder (config.json, model.safetensors,
  tokenizer.json, preprocessor_config.json, chat_template.jinja) in about a second.
- `build_qwen2vl_2b_random(out_dir)`: random weights with Qwen2-VL-2B-Instruct's real architecture
  (the published config values below), for GPU timing and memory figures (bench/bench_gpu.py).

Both use the REAL Qwen2-VL special-token ids (151643..151656): ms-swift's qwen2_vl template hard-codes
the image/video pad ids 151655/151656, so the vocabulary has at least 151657 rows.

The folder's processor is `ImageOnlyQwen2VLProcessor` (amlc.swift_plugin): transformers 5's stock
Qwen2VLProcessor insists on a video processor, which needs torchvision, absent on CPU boxes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The 14 special tokens of Qwen2-VL, at their real ids.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
FIRST_SPECIAL_ID = 151643
TINY_VOCAB = FIRST_SPECIAL_ID + len(SPECIAL_TOKENS)  # 151657

# The official Qwen2-VL-Instruct chat template (transformers' apply_chat_template; swift uses its own
# identical 'qwen2_vl' template).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen/Qwen2-VL-2B-Instruct's published config.json (architecture only; the weights here are random).
QWEN2VL_2B: dict[str, Any] = {
    "text": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                 num_attention_heads=12, num_key_value_heads=2, hidden_act="silu",
                 max_position_embeddings=32768, rms_norm_eps=1e-6, max_window_layers=28,
                 use_sliding_window=False, sliding_window=32768, attention_dropout=0.0,
                 bos_token_id=151643, eos_token_id=151645,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                  "mrope_section": [16, 24, 24]}),
    "vision": dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16, in_channels=3,
                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu"),
    "tie_word_embeddings": True,
}

TINY: dict[str, Any] = {
    "text": dict(vocab_size=TINY_VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, hidden_act="silu",
                 max_position_embeddings=4096, rms_norm_eps=1e-6, max_window_layers=2,
                 use_sliding_window=False, bos_token_id=151643, eos_token_id=151645,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                  "mrope_section": [2, 3, 3]}),  # sums to head_dim / 2 = 8
    "vision": dict(depth=2, embed_dim=32, hidden_size=64, mlp_ratio=2, num_heads=2, in_channels=3,
                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu"),
    "tie_word_embeddings": True,
}


def build_tokenizer():
    """Byte-level BPE over the 256 byte symbols (no merges) + Qwen2-VL's special tokens at real ids."""
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    vocab = {sym: i for i, sym in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for i, tok in enumerate(SPECIAL_TOKENS):
        vocab[tok] = FIRST_SPECIAL_ID + i
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", model_max_length=32768)
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _config(spec: dict[str, Any]):
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(text_config=dict(spec["text"]), vision_config=dict(spec["vision"]),
                         tie_word_embeddings=spec["tie_word_embeddings"],
                         image_token_id=151655, video_token_id=151656,
                         vision_start_token_id=151652, vision_end_token_id=151653)


def _save(spec: dict[str, Any], out_dir: Path, *, seed: int, dtype: str, max_pixels: int,
          device: str = "cpu") -> Path:
    from amlc.tables import make_dirs

    out_dir = make_dirs(out_dir, "model folder")  # before the slow imports: a bad path fails at once
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from amlc import swift_plugin

    torch.manual_seed(seed)
    config = _config(spec)
    with torch.device(device):  # a 2B model is initialised on the GPU in seconds, on CPU in minutes
        model = Qwen2VLForConditionalGeneration(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(bos_token_id=151643, eos_token_id=[151645, 151643],
                                               pad_token_id=151643, do_sample=False)
    model.save_pretrained(out_dir)
    tokenizer = build_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels)
    if swift_plugin.torchvision_usable():  # a GPU box: the stock processor, video half included
        from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor

        processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    else:
        swift_plugin.apply()
        processor = swift_plugin.ImageOnlyQwen2VLProcessor(image_processor=image_processor,
                                                           tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny(out_dir: str | os.PathLike, *, seed: int = 0, force: bool = False) -> Path:
    """Write the tiny random Qwen2-VL to `out_dir` (reused when already complete, unless `force`)."""
    out_dir = Path(out_dir)
    if not force and (out_dir / "model.safetensors").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    return _save(TINY, out_dir, seed=seed, dtype="float32", max_pixels=28 * 28 * 16)


def build_scripted(out_dir: str | os.PathLike, answer: str = "12 V", confidence: float = 0.9) -> Path:
    """The tiny model rewired to answer `answer` to every question, each token (the closing end-of-turn
    included) with probability `confidence`: a server test then knows what every row must come back as.

    Attention and MLP outputs are zeroed, so each position's hidden state is its own token's embedding;
    the chain's tokens get one-hot embeddings and an untied output head that maps each to the next one
    (the last prompt token, the newline after "assistant", to the answer's first; its last to <|im_end|>).
    A bigram cannot repeat a token, so the answer's tokens must be distinct. ~1 s on CPU.
    """
    import math

    import torch
    from transformers import Qwen2VLForConditionalGeneration

    out_dir = Path(out_dir)
    build_tiny(out_dir, force=True)
    tok = build_tokenizer()
    chain = [*tok("\n").input_ids, *tok(answer).input_ids, FIRST_SPECIAL_ID + 2]  # <|im_end|>
    if len(set(chain)) != len(chain):
        raise ValueError(f"the answer {answer!r} repeats a token (or holds a newline); a bigram cannot say it")
    model = Qwen2VLForConditionalGeneration.from_pretrained(out_dir, dtype=torch.float32)
    hidden = model.config.text_config.hidden_size
    # Every other logit is 0, so p = e^L / (e^L + V - 1) for the chosen token's logit L.
    logit = math.log(confidence / (1 - confidence)) + math.log(model.config.text_config.vocab_size - 1)
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.language_model.embed_tokens.weight
        head = torch.zeros_like(embed)
        for dim, (here, after) in enumerate(zip(chain, chain[1:])):
            embed[here] = 0.0
            embed[here, dim] = 1.0
            head[after, dim] = logit / math.sqrt(hidden)  # RMSNorm turns the one-hot into sqrt(hidden)
    model.config.tie_word_embeddings = model.config.text_config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(out_dir)
    return out_dir


def build_qwen2vl_2b_random(out_dir: str | os.PathLike, *, seed: int = 0, dtype: str = "bfloat16",
                            device: str = "cpu") -> Path:
    """Random weights, Qwen2-VL-2B-Instruct's real architecture (~2.2 B parameters, ~4.4 GB in bf16).

    The tokenizer is the tiny byte-level one (same special-token ids); the vocabulary rows are the real
    151936, so embedding and output-head costs are the real ones.
    """
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and list(out_dir.glob("*.safetensors")):
        return out_dir
    return _save(QWEN2VL_2B, out_dir, seed=seed, dtype=dtype, max_pixels=28 * 28 * 1280, device=device)


def main(argv=None) -> int:
    from amlc.errors import ArgumentParser

    p = ArgumentParser(description="Build a random-weight Qwen2-VL model folder offline.")
    p.add_argument("out_dir")
    p.add_argument("--arch", choices=["tiny", "2b"], default="tiny",
                   help="tiny: ~10 M parameters for CPU tests; 2b: Qwen2-VL-2B's real shapes (GPU benches)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="where to initialise the weights (cuda: much faster for 2b)")
    a = p.parse_args(argv)
    path = build_tiny(a.out_dir, seed=a.seed, force=True) if a.arch == "tiny" else \
        build_qwen2vl_2b_random(a.out_dir, seed=a.seed, device=a.device)
    print(path)
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    raise SystemExit(cli(main))
