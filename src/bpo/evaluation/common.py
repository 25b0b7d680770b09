"""Helpers the judges share: checking their inputs, reading an item's scene, set F1."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bpo.world.scene import Scene


def check_size(value, name: str, where: str) -> int:
    """``value`` as a positive int, or a ValueError naming the parameter and the builder."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


def check_seed(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: seed must be a non-negative int, got {value!r}")
    return value


def check_choice(value, choices, name: str, where: str) -> str:
    if value not in choices:
        raise ValueError(f"{where}: unknown {name} {value!r}; expected one of {tuple(choices)}")
    return value


def item_id(item, index: int) -> str:
    return str(item.get("item_id", f"#{index}")) if isinstance(item, Mapping) else f"#{index}"


def check_inputs(items: Sequence, responses, where: str, required: tuple[str, ...]) -> list[str]:
    """Validate items and responses; return the responses as a list aligned with ``items``.

    ``responses`` is a sequence of strings in item order, or a mapping item_id -> string (as read
    from a file of responses). Every error names the item index and id.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{where}: items must be a list of item dicts, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(f"{where}: item {i} must be a dict, got {type(item).__name__}")
        missing = [k for k in required if k not in item]
        if missing:
            raise ValueError(f"{where}: item {i} ({item_id(item, i)}) lacks field(s) {missing}")
    if isinstance(responses, Mapping):
        absent = [item_id(it, i) for i, it in enumerate(items) if item_id(it, i) not in responses]
        if absent:
            raise ValueError(f"{where}: no response for item(s) {absent[:5]}{' ...' if len(absent) > 5 else ''}")
        responses = [responses[item_id(it, i)] for i, it in enumerate(items)]
    elif isinstance(responses, (str, bytes)) or not isinstance(responses, Sequence):
        raise TypeError(f"{where}: responses must be a list of strings or a dict item_id -> string, "
                        f"got {type(responses).__name__}")
    if len(responses) != len(items):
        raise ValueError(f"{where}: {len(responses)} responses for {len(items)} items")
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise TypeError(f"{where}: response {i} (item {item_id(items[i], i)}) must be a string, "
                            f"got {type(r).__name__}")
    return list(responses)


def scene_of(item: Mapping, index: int, where: str) -> Scene:
    """The item's ground truth: a Scene, or its JSON (``Scene.to_json()``)."""
    scene = item["scene"]
    if isinstance(scene, Scene):
        return scene
    try:
        return Scene.from_json(scene)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{where}: item {index} ({item_id(item, index)}) has an unreadable scene: {e}") from e


def set_f1(found: set, expected: set) -> float:
    """F1 of two sets; 0 when either is empty (an empty answer earns nothing)."""
    hit = len(found & expected)
    if not hit:
        return 0.0
    precision, recall = hit / len(found), hit / len(expected)
    return 2 * precision * recall / (precision + recall)


def mean(values) -> float:
    """Mean of ``values``; NaN for none (a rate with no denominator is undefined, not 0)."""
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def ratio(num: float, den: float) -> float:
    return num / den if den else math.nan
