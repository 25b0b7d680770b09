"""Generate the SceneWorld data sets and save them as Hugging Face ``datasets``.

Every item is made from its own generator (``item_rng(seed, stream, index)``), so the same seed gives
byte-identical images and texts, and held-out streams never share draws with training ones.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from bpo.cache import atomic_dir, save_dataset, stage_dir, stage_params
from bpo.world import language
from bpo.world.config import IMAGE_SOURCES, WorldConfig
from bpo.world.render import render
from bpo.world.scene import SceneSampling, item_rng, sample_scene

# The corpus is the prior alone: typical scenes, mostly typical colours.
CORPUS_SAMPLING = SceneSampling(typicality="typical", typical_colour_rate=0.9)
# Text-rich questions need a sign on nearly every image; a few without teach the honest "no text".
_SAMPLING = {"textvqa": SceneSampling(sign_rate=0.9), "corpus": CORPUS_SAMPLING}

SOURCE_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "image": datasets.Image(),
    "source": datasets.Value("string"),
    "conversations": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
    "place": datasets.Value("string"),
    "typicality": datasets.Value("string"),
    "scene": datasets.Value("string"),  # the complete ground truth, Scene.to_json()
})


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
        with atomic_dir(target, stage_params("world", asdict(cfg))) as tmp:
            for source in IMAGE_SOURCES:
                save_dataset(build_source(source, cfg.size(source), cfg.seed, cfg.image_size, progress), tmp / source)
            save_dataset(build_corpus(cfg.n_corpus, cfg.seed), tmp / "corpus")
    return {name: datasets.load_from_disk(target / name) for name in (*IMAGE_SOURCES, "corpus")}
