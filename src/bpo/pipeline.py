"""What every notebook after ``01`` starts from: a preset's world and its trained base model.

One call gives the world, the base MLLM (trained on first use, loaded from its cache after) and
the configs that name them, so notebooks and benchmarks do not repeat the preset plumbing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bpo.models.config import ModelConfig
from bpo.presets import base_training_config, model_config, world_config
from bpo.training.base import base_dir, train_base_model
from bpo.training.config import BaseTrainingConfig
from bpo.world.config import WorldConfig
from bpo.world.sources import load_or_build_world


@dataclass
class Base:
    """A preset's world and base model, with the configs and the cache key that identify them."""

    preset: str
    world_cfg: WorldConfig
    model_cfg: ModelConfig
    train_cfg: BaseTrainingConfig
    world: dict
    model: object
    processor: object
    logs: dict

    @property
    def key(self) -> str:
        """The base model's cache key: names everything derived from it (answers, negatives)."""
        return base_dir(self.preset, asdict(self.world_cfg), self.model_cfg, self.train_cfg).name


def load_base(preset: str, seed: int = 0, size_scale: float = 1.0, train_scale: float = 1.0,
              progress: bool = True) -> Base:
    """The world and the trained base model of ``preset`` (built and trained when not cached)."""
    world_cfg = world_config(preset, seed=seed, size_scale=size_scale)
    model_cfg = model_config(preset)
    train_cfg = base_training_config(preset, seed=seed, train_scale=train_scale)
    world = load_or_build_world(preset, world_cfg)
    model, processor, logs = train_base_model(preset, world, asdict(world_cfg), model_cfg, train_cfg, progress)
    return Base(preset, world_cfg, model_cfg, train_cfg, world, model, processor, logs)
