"""Which benchmarks a model is read on and how long its answers may be (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from bpo.evaluation.benchmarks import ROLES, SCENE_SPLITS


@dataclass(frozen=True)
class SuiteConfig:
    """Benchmark sizes. The defaults mirror the real benchmarks (MM-Vet 218 questions, Object
    HalBench 300 images, LLaVA-Bench 60 questions, POPE 500 images per split)."""

    seed: int = 0
    image_size: int = 128
    n_mmvet: int = 218
    n_halbench: int = 300
    n_wild: int = 60
    n_pope: int = 500  # images per POPE split (up to 6 questions each)
    scene_splits: tuple[str, ...] = ("typical", "atypical")
    role: str = "bench"  # "val": the validation copy, for choices; "bench": for reporting only

    def __post_init__(self):
        for name in ("n_mmvet", "n_halbench", "n_wild", "n_pope"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SuiteConfig.{name} must be a positive int, got {value!r}")
        if self.role not in ROLES:
            raise ValueError(f"SuiteConfig.role must be one of {ROLES}, got {self.role!r}")
        unknown = [s for s in self.scene_splits if s not in SCENE_SPLITS]
        if unknown or not self.scene_splits:
            raise ValueError(f"SuiteConfig.scene_splits must be a non-empty subset of {tuple(SCENE_SPLITS)}, got {self.scene_splits}")


@dataclass(frozen=True)
class AnswerConfig:
    """Answer lengths per benchmark: long enough for a full description, short for yes/no."""

    # HalBench and Wild-detail. The world's reference descriptions take at most 82 SmolLM2 tokens
    # (p95 73), close to the old cap of 96, so the cap is 1.5x the longest reference; at 128 no
    # description of smol or tiny was cut. The share still cut (a model that repeats itself) is
    # reported beside the scores (figures/base_truncation_<preset>.md).
    max_new_tokens_describe: int = 128
    max_new_tokens_short: int = 48  # MM-Vet and Wild questions
    # POPE: "Yes, there is a cat in the image." is ~10 tokens, but smol adds where it is ("... in the
    # top right corner."): at 12 tokens every one of its answers was cut.
    max_new_tokens_yes_no: int = 24
    # With finished rows leaving the batch, 64 rows decode smol's descriptions and MM-Vet answers
    # faster than 32 (benchmarks/decode_speed.py); a step reads every weight once whatever its rows.
    batch_size: int = 64

    def __post_init__(self):
        for name in ("max_new_tokens_describe", "max_new_tokens_short", "max_new_tokens_yes_no", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"AnswerConfig.{name} must be >= 1, got {getattr(self, name)}")
