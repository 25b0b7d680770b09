"""Generate the SceneWorld data sets and save them as Hugging Face ``datasets``.

Every item is made from its own generator (``item_rng(seed, stream, index)``), so the same seed gives
byte-identical images and texts, and held-out streams never share draws with training ones.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from bpo.cache import atomic_dir, save_dataset, stage_dir
from bpo.world import language
from bpo.world.render import render
from bpo.world.scene import SceneSampling, item_rng, sample_scene

SOURCES = ("detail", "textvqa", "conversation")  # the paper's Table 2: ShareGPT4V, LLaVAR, LLaVA-Instruct
IMAGE_SOURCES = (*SOURCES, "caption")

# Text-rich questions need a sign on nearly every image; a few without teach the honest "no text".
_SAMPLING = {
    "textvqa": SceneSampling(sign_rate=0.9),
    # The corpus is the prior alone: typical scenes, mostly typical colours.
    "corpus": SceneSampling(typicality="typical", typical_colour_rate=0.9),
}

SOURCE_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "image": datasets.Image(),
    "source": datasets.Value("string"),
    "conversations": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
    "place": datasets.Value("string"),
    "typicality": datasets.Value("string"),
    "scene": datasets.Value("string"),  # the complete ground truth, Scene.to_json()
})


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


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)  # fixed settings: byte-identical output
    return buf.getvalue()


def source_record(source: str, index: int, seed: int, image_size: int) -> dict:
    """Item ``index`` of a data source: scene, rendered image and conversation."""
    rng = item_rng(seed, source, index)
    scene = sample_scene(rng, f"{source}-{index:06d}", _SAMPLING.get(source, SceneSampling()))
    return {
        "id": scene.scene_id,
        "image": {"bytes": _png(render(scene, image_size)), "path": None},
        "source": source,
        "conversations": language.source_turns(source, scene, rng),
        "place": scene.place,
        "typicality": scene.typicality,
        "scene": scene.to_json(),
    }


def build_source(source: str, n: int, seed: int, image_size: int, progress: bool = True) -> datasets.Dataset:
    if source not in IMAGE_SOURCES:
        raise ValueError(f"unknown data source {source!r}; expected one of {IMAGE_SOURCES}")
    rows = [source_record(source, i, seed, image_size)
            for i in tqdm(range(n), desc=f"world/{source}", disable=not progress, leave=False)]
    return datasets.Dataset.from_list(rows, features=SOURCE_FEATURES)


def build_corpus(n: int, seed: int) -> datasets.Dataset:
    texts = []
    for i in range(n):
        rng = item_rng(seed, "corpus", i)
        texts.append(language.corpus_text(sample_scene(rng, f"corpus-{i:06d}", _SAMPLING["corpus"]), rng))
    return datasets.Dataset.from_dict({"text": texts})


def world_dir(preset: str, cfg: WorldConfig) -> Path:
    return stage_dir(preset, "world", asdict(cfg))


def load_or_build_world(preset: str, cfg: WorldConfig, progress: bool = True) -> dict[str, datasets.Dataset]:
    """The data sources, captions and corpus of ``cfg``: loaded from the cache, else generated."""
    target = world_dir(preset, cfg)
    if not target.exists():
        with atomic_dir(target, asdict(cfg)) as tmp:
            for source in IMAGE_SOURCES:
                save_dataset(build_source(source, cfg.size(source), cfg.seed, cfg.image_size, progress), tmp / source)
            save_dataset(build_corpus(cfg.n_corpus, cfg.seed), tmp / "corpus")
    return {name: datasets.load_from_disk(target / name) for name in (*IMAGE_SOURCES, "corpus")}
