"""The one place that decides presets: a preset names a scale of the same LLaVA architecture.

``tiny`` is for tests and quick runs, ``smol`` (SmolLM2-135M-Instruct) is the embedded default, and
``llava-1.5-7b`` / ``llava-1.5-13b`` are the paper's own scale with the user's weights.
"""

from __future__ import annotations

from dataclasses import asdict

from bpo.evaluation.suite import SuiteConfig
from bpo.world.build import WorldConfig

PRESETS = ("tiny", "smol", "llava-1.5-7b", "llava-1.5-13b")
DEFAULT_PRESET = "smol"

# The quick preset keeps the same world at a third of the size: same distributions, less waiting.
_WORLD_SCALE = {"tiny": 1 / 3}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset


def world_config(preset: str, seed: int = 0, size_scale: float = 1.0) -> WorldConfig:
    """The world a preset trains and evaluates on; ``size_scale`` shrinks it (tests use 0.01)."""
    check_preset(preset)
    if not 0 < size_scale <= 10:
        raise ValueError(f"size_scale must be in (0, 10], got {size_scale}")
    return WorldConfig(seed=seed).scaled(_WORLD_SCALE.get(preset, 1.0) * size_scale)


# Benchmark sizes per preset: generation by the model is the cost, so the quick preset asks less.
_SUITE_SIZES = {"tiny": {"n_mmvet": 60, "n_halbench": 40, "n_wild": 30, "n_pope": 40}}


def suite_config(preset: str, seed: int = 0, size_scale: float = 1.0) -> SuiteConfig:
    """The held-out benchmarks a preset is evaluated on; ``size_scale`` shrinks them."""
    check_preset(preset)
    sizes = {k: v for k, v in asdict(SuiteConfig()).items() if k.startswith("n_")}
    sizes.update(_SUITE_SIZES.get(preset, {}))
    return SuiteConfig(seed=seed, **{k: max(1, round(v * size_scale)) for k, v in sizes.items()})
