"""How the base MLLM is trained (no heavy imports: presets read it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


VISION_OBJECTIVES = ("supervised", "contrastive")
# Fields where 0 means "no such step".
_COUNTS_FROM_ZERO = ("lm_copy_texts", "lm_presence_texts", "ground_images", "sft_yes_no_turns")


@dataclass(frozen=True)
class BaseTrainingConfig:
    """How the base model is trained. The size of stage 2 (``sft_examples``) is fixed once from the
    paper's premise, not tuned against BPO: see ``presets.py`` for the reason per preset."""

    seed: int = 0
    lm_epochs: int = 2  # tiny's LM pre-training on the corpus
    lm_lr: float = 1e-3
    lm_batch: int = 32
    lm_copy_texts: int = 0  # tiny: texts that need reading the context, added to the corpus (bpo.training.lm_texts)
    lm_presence_texts: int = 0  # tiny: yes/no presence questions answered from notes (bpo.training.lm_texts)
    vision_objective: str = "supervised"  # or "contrastive" (CLIP on the world's captions)
    vision_images: int = 24000  # supervised: freshly drawn scenes seen, one per image view
    vision_epochs: int = 4  # contrastive: passes over the caption set
    vision_lr: float = 1e-3
    vision_batch: int = 64
    ground_images: int = 0  # projector warm start on word vectors (bpo.training.grounding); 0 = none
    ground_lr: float = 1e-3  # the grounding stage's peak rate
    align_examples: int = 1500
    align_lr: float = 1e-3  # LLaVA's stage-1 rate: only the projector learns
    align_lm: bool = False  # tiny: its from-scratch LM learns from the captions too (LLaVA's LM stays frozen)
    align_epochs: int = 1
    sft_examples: int = 1200
    sft_epochs: int = 1
    sft_lr: float = 5e-5
    sft_yes_no_turns: int = 0  # presence questions put before each stage-2 example (bpo.training.presence_turns)
    batch_size: int = 16
    max_length: int = 320  # 64 image tokens + the longest description, with room to spare

    def __post_init__(self):
        if self.vision_objective not in VISION_OBJECTIVES:
            raise ValueError(f"BaseTrainingConfig.vision_objective must be one of {VISION_OBJECTIVES}, "
                             f"got {self.vision_objective!r}")
        if not isinstance(self.align_lm, bool):
            raise ValueError(f"BaseTrainingConfig.align_lm must be True or False, got {self.align_lm!r}")
        for name, value in asdict(self).items():
            if name in _COUNTS_FROM_ZERO and (not isinstance(value, int) or value < 0):
                raise ValueError(f"BaseTrainingConfig.{name} must be an int >= 0, got {value!r}")
            if name not in ("seed", "vision_objective", "align_lm", *_COUNTS_FROM_ZERO) and not value > 0:
                raise ValueError(f"BaseTrainingConfig.{name} must be positive, got {value}")
