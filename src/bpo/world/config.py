"""What the world is made of: its data sources and their sizes (no heavy imports: presets read it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SOURCES = ("detail", "textvqa", "conversation")  # the paper's Table 2: ShareGPT4V, LLaVAR, LLaVA-Instruct
IMAGE_SOURCES = (*SOURCES, "caption")

@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the generated data sets. ``seed`` controls every draw."""

    seed: int = 0
    image_size: int = 128  # small enough for a vision tower trained on a CPU, big enough for sign text
    n_detail: int = 3000
    n_textvqa: int = 3000
    n_conversation: int = 3000
    n_caption: int = 6000  # image-caption pairs for vision-tower pre-training and projector alignment
    n_corpus: int = 20000  # prior-only texts for the tiny LM's pre-training

    def __post_init__(self):
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"WorldConfig.seed must be a non-negative int, got {self.seed!r}")
        if not 64 <= self.image_size <= 512:
            raise ValueError(f"WorldConfig.image_size must be in 64..512, got {self.image_size}")
        for name in ("n_detail", "n_textvqa", "n_conversation", "n_caption", "n_corpus"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WorldConfig.{name} must be a positive int, got {value!r}")

    def size(self, source: str) -> int:
        return getattr(self, f"n_{source}")

    def scaled(self, factor: float) -> WorldConfig:
        """The same world with every size multiplied by ``factor`` (at least 1 item each)."""
        sizes = {k: max(1, round(v * factor)) for k, v in asdict(self).items() if k.startswith("n_")}
        return WorldConfig(**{**asdict(self), **sizes})
