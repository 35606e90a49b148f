"""The `vlm` engine: the fine-tuned Qwen2-VL through ms-swift's inference engines.

ms-swift builds the prompt with the same `qwen2_vl` template (and the same amlc.prompts question, and
the same MAX_PIXELS image resizing) that training used, so the model is asked exactly what it learned.

Backends (`vlm.backend`):
- `transformers`: ms-swift's TransformersEngine, CPU or GPU; a merged or W4A16 (compressed-tensors)
  model folder, or a base model plus `vlm.adapters`; `vlm.load_in_4bit` loads a 16-bit model in
  bitsandbytes NF4. Rows are generated `vlm.max_batch_size` at a time.
- `vllm`: ms-swift's VllmEngine, GPU only, continuous batching; serves the W4A16 model from the
  quantize stage natively. vLLM is optional (requirements-gpu.txt) and imported only when chosen.

Decoding is greedy (temperature 0) with at most `vlm.max_new_tokens` new tokens.

Result per request:
- raw: the model's text, unchanged.
- prediction: amlc.units.normalize(raw, entity) ("" or a valid "x unit" for the entity).
- confidence: exp(mean log-probability of the generated tokens, the closing end-of-turn token
  included when the model produced it), i.e. the geometric mean of the per-token probabilities, in
  (0, 1]. It is the model's own certainty about the whole answer; a blank answer's confidence is that
  of saying nothing. None when the backend returned no log-probabilities.
- reason: "" for a prediction; model_blank (the model answered nothing), unparseable (its text held no
  value with an allowed unit), image_missing, or error: <message> (a row the engine could not run).

Config: the `vlm` section of amlc.config.DEFAULTS. `build(cfg)` is the module's entry point
(amlc.engines.load_engine).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from amlc.engines import Request, Result
from amlc.errors import InputError


def confidence_of(logprobs: dict[str, Any] | None) -> float | None:
    """exp(mean token logprob) from an OpenAI-style `logprobs` dict ({"content": [{"logprob": ...}]})."""
    if not logprobs or not logprobs.get("content"):
        return None
    values = [float(t["logprob"]) for t in logprobs["content"] if t.get("logprob") is not None]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return float(min(1.0, max(0.0, math.exp(sum(values) / len(values)))))


def model_result(req: Request, text: Any, logprobs: dict[str, Any] | None, range_policy: str,
                 extra: dict[str, Any]) -> Result:
    """A model's answer as a Result (raw, units-normalised prediction, reason, confidence_of); shared
    by every engine that asks a vision-language model (vlm, api)."""
    from amlc import units

    raw = text or ""
    if not isinstance(raw, str):
        raw = str(raw)
    prediction = units.normalize(raw, req.entity_name, range_policy)
    reason = "" if prediction else ("model_blank" if not raw.strip() else "unparseable")
    return Result(index=req.index, raw=raw, prediction=prediction, confidence=confidence_of(logprobs),
                  reason=reason, extra=extra)


def fast_preprocess_logits(batched_logits, batched_generate_ids, top_logprobs):
    """TransformersEngine.preprocess_logits with the same output, without a full sort of the vocabulary.

    ms-swift 4.6 argsorts all 151k log-probabilities of every generated token of every row to find the
    top ones; on CPU that was more than half of the engine's time (10.9 s of 19.7 s for 8 rows x 16
    tokens). One log_softmax per step for the whole batch, topk and gather give the same dicts.
    """
    import torch

    top_logprobs = top_logprobs or 1
    if batched_logits is None:
        return None
    batch_size = batched_generate_ids.shape[0]
    out = [[] for _ in range(batch_size)]
    for j, logits in enumerate(batched_logits):
        logprobs = torch.log_softmax(logits.float(), -1)
        ids = batched_generate_ids[:, j]
        chosen = logprobs.gather(1, ids[:, None].to(logprobs.device))[:, 0].tolist()
        top_vals, top_ids = logprobs.topk(top_logprobs, dim=-1)
        top_vals, top_ids, ids = top_vals.tolist(), top_ids.tolist(), ids.tolist()
        for i in range(batch_size):
            d = {ids[i]: chosen[i]}
            for t, v in zip(top_ids[i], top_vals[i]):
                d[t] = v
            out[i].append(d)
    return out


_swift_preprocess_logits = None  # ms-swift's own version, kept for the equivalence test


def swift_preprocess_logits():
    """ms-swift's original TransformersEngine.preprocess_logits, patched or not."""
    from swift.infer_engine.transformers_engine import TransformersEngine

    current = TransformersEngine.__dict__["preprocess_logits"].__func__
    return _swift_preprocess_logits or current


def patch_transformers_engine() -> None:
    global _swift_preprocess_logits
    from swift.infer_engine.transformers_engine import TransformersEngine

    current = TransformersEngine.__dict__["preprocess_logits"].__func__
    if current is not fast_preprocess_logits:
        _swift_preprocess_logits = current
    TransformersEngine.preprocess_logits = staticmethod(fast_preprocess_logits)


def _resolve_max_pixels(cfg: dict[str, Any], model_dir: str) -> int:
    v = cfg["vlm"].get("max_pixels")
    if v:
        return int(v)
    from amlc.finetune import read_model_card

    card = read_model_card(model_dir) if Path(model_dir).is_dir() else {}
    if card.get("max_pixels"):
        return int(card["max_pixels"])
    return int(cfg.get("train", {}).get("max_pixels") or 313600)


class VlmEngine:
    name = "vlm"

    def __init__(self, cfg: dict[str, Any]):
        v = cfg["vlm"]
        self.cfg = cfg
        self.backend = v["backend"]
        self.max_new_tokens = int(v["max_new_tokens"])
        self.range_policy = cfg.get("postprocess", {}).get("range_policy", "max")
        model = str(v["model"] or "")
        if not model:
            raise InputError("vlm.model is empty: set it to the fine-tuned model folder (the merged or "
                             "quantized folder written by train/run.py), e.g. vlm.model=outputs/run/quantized")
        from amlc.config import resolve_path
        from amlc.finetune import model_ref

        self.model = model_ref(model)
        if self.model != model or Path(self.model).is_absolute():  # a folder, not a hub id
            if not Path(self.model).is_dir():
                raise InputError(f"vlm.model folder not found: {self.model}")
        self.adapters = [str(resolve_path(a)) for a in v["adapters"]]
        for a in self.adapters:
            if not (Path(a) / "adapter_config.json").exists():
                raise InputError(f"vlm.adapters: {a} is not a LoRA checkpoint folder (no adapter_config.json)")
        self.max_pixels = _resolve_max_pixels(cfg, self.model)

        from amlc.finetune import check_model_source, cuda_available, prepare_swift

        if self.backend not in ("transformers", "vllm"):
            raise InputError(f"vlm.backend must be transformers or vllm, not {self.backend!r}")
        train = cfg.get("train", {})
        self.use_hf = bool(train.get("use_hf", True))  # a hub id (base model + adapters) comes from there
        prepare_swift(self.max_pixels, offline=bool(train.get("offline", False)))
        check_model_source(self.model, use_hf=self.use_hf)
        if self.backend == "transformers":
            self.engine = self._transformers(v, cuda_available())
        else:
            self.engine = self._vllm(v, cuda_available())

    def _dtype(self, v: dict[str, Any], on_gpu: bool):
        import torch

        from amlc.finetune import dtype_name

        return getattr(torch, dtype_name(v["torch_dtype"], on_gpu))

    def _transformers(self, v: dict[str, Any], on_gpu: bool):
        from swift import TransformersEngine

        patch_transformers_engine()
        dtype = self._dtype(v, on_gpu)
        quant = None
        if v["load_in_4bit"]:
            from transformers import BitsAndBytesConfig

            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                       bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
        return TransformersEngine(self.model, adapters=self.adapters or None, model_type=v["model_type"],
                                  template_type=v["template"], torch_dtype=dtype, quantization_config=quant,
                                  max_batch_size=int(v["max_batch_size"]), use_hf=self.use_hf,
                                  device_map="auto" if on_gpu else "cpu")

    def _vllm(self, v: dict[str, Any], on_gpu: bool):
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise InputError("vlm.backend=vllm needs vLLM, which is not installed: on a CUDA machine make "
                             "its own environment as requirements-gpu.txt says (vLLM and the quantize "
                             "stage's llmcompressor pin different compressed-tensors), or use "
                             "vlm.backend=transformers") from None
        if not on_gpu:
            raise InputError("vlm.backend=vllm needs a CUDA GPU and none is visible; use vlm.backend=transformers")
        from swift import VllmEngine

        adapters = self.adapters
        return VllmEngine(self.model, model_type=v["model_type"], template_type=v["template"],
                          torch_dtype=self._dtype(v, on_gpu), adapters=adapters or None, use_hf=self.use_hf,
                          enable_lora=bool(adapters), gpu_memory_utilization=float(v["gpu_memory_utilization"]),
                          tensor_parallel_size=int(v["tensor_parallel_size"]),
                          max_model_len=int(v["max_model_len"]), limit_mm_per_prompt={"image": 1})

    # ---- inference ----

    def _request(self, req: Request):
        from swift import InferRequest

        from amlc import prompts

        return InferRequest(messages=prompts.messages(req.entity_name), images=[str(req.image_path)])

    def _infer(self, infer_requests: list) -> list:
        from swift import RequestConfig

        rc = RequestConfig(max_tokens=self.max_new_tokens, temperature=0.0, logprobs=True)
        return self.engine.infer(infer_requests, rc, use_tqdm=False)

    def _result(self, req: Request, response) -> Result:
        choice = response.choices[0]
        return model_result(req, choice.message.content, choice.logprobs, self.range_policy,
                            {"finish_reason": choice.finish_reason})

    def predict(self, requests: list[Request]) -> list[Result]:
        results: dict[int, Result] = {}
        todo = []
        for pos, req in enumerate(requests):
            if req.image_path is None or not Path(req.image_path).exists():
                results[pos] = Result(index=req.index, raw="", prediction="", reason="image_missing")
            else:
                todo.append(pos)
        if todo:
            try:
                responses = self._infer([self._request(requests[p]) for p in todo])
                for p, resp in zip(todo, responses):
                    results[p] = self._result(requests[p], resp)
            except Exception:  # one bad image fails the batch: redo the rows one by one
                for p in todo:
                    try:
                        results[p] = self._result(requests[p], self._infer([self._request(requests[p])])[0])
                    except Exception as exc:  # noqa: BLE001 - the contract: never raise for one row
                        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                        results[p] = Result(index=requests[p].index, raw="", prediction="", reason=f"error: {msg}")
        return [results[p] for p in range(len(requests))]


def build(cfg: dict[str, Any]) -> VlmEngine:
    return VlmEngine(cfg)
