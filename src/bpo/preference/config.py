"""How the bootstrapped negatives are made (no heavy imports: presets read it)."""

from __future__ import annotations

from dataclasses import dataclass

# Every kind of negative the builder can make; the released data set has the first two.
NEGATIVE_TYPES = ("image_weakened", "error_injection", "prior_guided", "self_generated", "contrastive")

# Answer budgets: a full description is at most 82 tokens (the evaluation's 128-token cap, see
# AnswerConfig), every other source's answer under 20.
TOKEN_BUDGET = {"detail": 128, "textvqa": 40, "conversation": 40}
DEFAULT_TYPES = ("image_weakened", "error_injection", "prior_guided", "self_generated")


@dataclass(frozen=True)
class PreferenceConfig:
    """Which rows, which negatives, and how they are sampled. ``noise_place`` and ``noise_step``
    are chosen in ``02_bias_probing`` (see :data:`bpo.presets` for the measured reason)."""

    seed: int = 0
    n_per_source: int = 128
    skip: int = 400  # each source's first rows went into the base model's stage 2 (1,200 / 3)
    noise_place: str = "pixels"
    noise_step: int = 500
    negative_types: tuple[str, ...] = DEFAULT_TYPES
    temperature: float = 1.0
    contrastive_alpha: float = 1.0
    batch_size: int = 64  # as AnswerConfig.batch_size: decoding reads every weight once per step

    def __post_init__(self):
        from bpo.noise import PLACES, T  # here, not at the top: presets read this module without torch

        object.__setattr__(self, "negative_types", tuple(self.negative_types))
        if self.n_per_source < 1 or self.skip < 0 or self.batch_size < 1:
            raise ValueError(f"PreferenceConfig: n_per_source and batch_size must be >= 1 and skip >= 0, got "
                             f"{self.n_per_source}, {self.batch_size}, {self.skip}")
        if self.noise_place not in PLACES:
            raise ValueError(f"PreferenceConfig.noise_place must be one of {PLACES}, got {self.noise_place!r}")
        if not 0 <= self.noise_step < T:
            raise ValueError(f"PreferenceConfig.noise_step must be in [0, {T}), got {self.noise_step}")
        unknown = [t for t in self.negative_types if t not in NEGATIVE_TYPES]
        if unknown or not self.negative_types:
            raise ValueError(f"PreferenceConfig.negative_types must be a non-empty subset of {NEGATIVE_TYPES}, "
                             f"got unknown {unknown}" if unknown else "PreferenceConfig.negative_types is empty")
        if not self.temperature > 0 or self.contrastive_alpha < 0:
            raise ValueError("PreferenceConfig: temperature must be > 0 and contrastive_alpha >= 0, got "
                             f"{self.temperature}, {self.contrastive_alpha}")
