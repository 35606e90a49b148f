"""The one prompt per entity, used by training (amlc.swift_data) and inference (amlc.engines.vlm) alike.

Both sides build the user turn with `user_message(entity)`, so the fine-tuned model is always asked
exactly what it was trained on. The prompt names the entity in words and lists the units the
competition accepts for it, and asks for the exact submission format ("x unit", a number then one of
those units spelled out) or an empty answer when the value is not printed on the image. The training
target is that canonical string itself (amlc.units.normalize of the label), so a correct answer needs no
postprocessing; the engine still runs amlc.units.normalize over what the model says.

`<image>` is ms-swift's placeholder for the row's image: its qwen2_vl template replaces it with
`<|vision_start|><|image_pad|>...<|vision_end|>`.

Changing a prompt here changes what an already fine-tuned model is asked: retrain after editing it
(PROMPT_VERSION is saved in the dataset stage's outputs so a mismatch can be seen).
"""

from __future__ import annotations

from amlc.constants import ENTITY_UNIT_MAP

PROMPT_VERSION = 1

IMAGE_TAG = "<image>"

# How each entity is named in words (the model reads English, not identifiers).
ENTITY_WORDS: dict[str, str] = {
    "width": "width",
    "depth": "depth",
    "height": "height",
    "item_weight": "item weight",
    "maximum_weight_recommendation": "maximum recommended weight (load capacity)",
    "voltage": "voltage",
    "wattage": "wattage (power)",
    "item_volume": "item volume",
}

# One example answer per entity, in the submission format, to pin the format down.
EXAMPLES: dict[str, str] = {
    "width": "10.5 centimetre",
    "depth": "3.0 inch",
    "height": "20.0 centimetre",
    "item_weight": "500.0 gram",
    "maximum_weight_recommendation": "150.0 kilogram",
    "voltage": "220.0 volt",
    "wattage": "1500.0 watt",
    "item_volume": "750.0 millilitre",
}


def prompt(entity: str) -> str:
    """The question for `entity`, without the image placeholder."""
    if entity not in ENTITY_UNIT_MAP:
        raise KeyError(f"unknown entity {entity!r}")
    words = ENTITY_WORDS[entity]
    units = ", ".join(sorted(ENTITY_UNIT_MAP[entity]))
    return (f"What is the {words} of the product shown? Answer with a number and a unit, "
            f"like \"{EXAMPLES[entity]}\", the unit being one of: {units}. "
            f"If the {words} is not printed on the image, answer nothing.")


def user_message(entity: str) -> str:
    """The user turn as ms-swift takes it: the image placeholder, then the question."""
    return IMAGE_TAG + prompt(entity)


def messages(entity: str, answer: str | None = None) -> list[dict[str, str]]:
    """A swift `messages` list: the user turn, plus the assistant's answer when training."""
    out = [{"role": "user", "content": user_message(entity)}]
    if answer is not None:
        out.append({"role": "assistant", "content": answer})
    return out
