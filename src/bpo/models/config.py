"""The sizes of a preset's LLaVA (no heavy imports: presets read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of a preset's model. ``checkpoint`` (a Hub id or a local directory) is for the
    LLaVA-1.5 presets, whose weights are the user's."""

    preset: str
    image_size: int = 128  # the world's images
    patch_size: int = 16  # 8x8 = 64 image tokens: cheap on a CPU, fine enough for a 2x3 grid
    vision_hidden: int = 256
    vision_layers: int = 4
    vision_heads: int = 4
    lm_hidden: int = 256  # tiny only; smol's LM is SmolLM2's own
    lm_layers: int = 4
    lm_heads: int = 4
    lm_intermediate: int = 768
    tokenizer_vocab: int = 1024  # tiny only
    checkpoint: str | None = None

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        for name in ("vision_hidden", "lm_hidden"):
            heads = getattr(self, name.replace("hidden", "heads"))
            if getattr(self, name) % heads:
                raise ValueError(f"{name} ({getattr(self, name)}) must be divisible by its heads ({heads})")
        if self.preset.startswith("llava") and not self.checkpoint:
            raise ValueError(f"preset {self.preset} needs checkpoint= a Hub id or a local directory of LLaVA-1.5 weights")

    @property
    def n_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2
