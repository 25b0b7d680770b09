"""What every notebook after ``01`` starts from: a preset's world and its trained base model, and
after ``03`` its preference pairs and the BPO / SFT runs on them.

One call gives the world, the base MLLM (trained on first use, loaded from its cache after) and
the configs that name them, so notebooks and benchmarks do not repeat the preset plumbing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from bpo.cache import stage_dir, stage_params
from bpo.evaluation.config import AnswerConfig, SuiteConfig
from bpo.evaluation.run import SuiteAnswers, load_or_answer
from bpo.evaluation.vcd import VCDConfig, vcd_generate
from bpo.models.generate import generate
from bpo.models.config import ModelConfig
from bpo.models.fast_head import contiguous_head
from bpo.preference.bootstrap import load_pairs, pairs_dir
from bpo.presets import base_training_config, model_config, preference_config, world_config
from bpo.training.base import STAGES, base_dir, train_base_model
from bpo.training.config import BaseTrainingConfig
from bpo.training.pairs import select_pairs
from bpo.training.tuning import TuningRun, train_tuning
from bpo.training.tuning_config import TuningConfig
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


def default_device() -> str:
    """Where models run after loading: ``$BPO_DEVICE`` if set, else the GPU when there is one."""
    import torch

    device = os.environ.get("BPO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"BPO_DEVICE={device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    return device


def load_base(preset: str, seed: int = 0, size_scale: float = 1.0, train_scale: float = 1.0,
              progress: bool = True, device: str | None = None) -> Base:
    """The world and the trained base model of ``preset`` (built and trained when not cached), on
    ``device`` (default: :func:`default_device`); everything downstream follows the model's device."""
    world_cfg = world_config(preset, seed=seed, size_scale=size_scale)
    model_cfg = model_config(preset)
    train_cfg = base_training_config(preset, seed=seed, train_scale=train_scale)
    world = load_or_build_world(preset, world_cfg)
    model, processor, logs = train_base_model(preset, world, asdict(world_cfg), model_cfg, train_cfg, progress)
    contiguous_head(model).to(device or default_device())
    return Base(preset, world_cfg, model_cfg, train_cfg, world, model, processor, logs)


def base_path(base: Base) -> Path:
    """The saved base model's directory (its last stage): what an adapter's config points to."""
    root = base_dir(base.preset, asdict(base.world_cfg), base.model_cfg, base.train_cfg)
    return max((d for d in root.iterdir() if (d / "config.json").exists()), key=lambda d: STAGES.index(d.name))


def load_preference_pairs(base: Base, seed: int = 0, size_scale: float = 1.0, train_scale: float = 1.0,
                          contrastive: bool = False):
    """(pairs data set, its report with ``training_types``, its directory) made by ``03`` for ``base``."""
    target = pairs_dir(base.preset, base.key, preference_config(base.preset, seed, size_scale, train_scale, contrastive))
    ds, report = load_pairs(target)
    return ds, report, target


def training_pairs(pairs, negative_types: tuple[str, ...], cfg: TuningConfig):
    """The pairs a ``tune`` run of ``cfg`` trains on: those of ``negative_types``, then
    ``cfg.max_pairs`` of them drawn with ``cfg.seed``, as ``train_tuning`` draws them."""
    return select_pairs(select_pairs(pairs, tuple(negative_types)), max_pairs=cfg.max_pairs, seed=cfg.seed)


def tune(base: Base, pairs, pairs_key: str, negative_types: tuple[str, ...], cfg: TuningConfig,
         stop_after_epoch: int | None = None, progress: bool = True, start: TuningRun | None = None) -> TuningRun:
    """BPO or SFT (``cfg.method``) of ``base`` on the pairs of ``negative_types``; cached by base,
    pairs, types and config, resumed from its last epoch when it was interrupted. ``start``: a
    finished run to go on from (multi-round BPO): its adapter merged into the base is both the
    starting policy and the reference."""
    from bpo.selection import merged_copy

    ds = select_pairs(pairs, tuple(negative_types))
    params = {"base": base.key, "pairs": pairs_key, "types": sorted(negative_types), "config": asdict(cfg)}
    if start is not None:
        if not start.finished:
            raise ValueError(f"tune: the starting run {start.directory} has not finished")
        params["start"] = start.directory.name  # only then: the keys of single-round runs stay as they were
    directory = stage_dir(base.preset, "tuning", params)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "params.json").write_text(json.dumps(stage_params("tuning", params), indent=1, sort_keys=True))
    ref_params = {k: params[k] for k in ("base", "pairs", "types")} | {
        "max_pairs": cfg.max_pairs, "max_length": cfg.max_length, "bf16": cfg.bf16,
        "weaken": [cfg.mdpo_noise_place, cfg.mdpo_noise_step] if cfg.mdpo_weight else None,
        "batch_size": cfg.batch_size, "seed": cfg.seed}  # the seed picks pairs, noise and the first epoch's batches
    if start is not None:
        ref_params["start"] = start.directory.name
    reference = stage_dir(base.preset, "tuning/reference", ref_params) / "reference.pt"
    # A later round's adapter sits on a merged model no directory holds: its config names no base.
    model, saved_base = (base.model, str(base_path(base))) if start is None else (merged_copy(start.model), None)
    return train_tuning(model, base.processor, ds, cfg, directory, reference, saved_base, stop_after_epoch, progress)


def evaluate(base: Base, suite: dict, suite_cfg: SuiteConfig, run: TuningRun | None = None,
             vcd: VCDConfig | None = None, benchmarks: tuple[str, ...] | None = None,
             answer_cfg: AnswerConfig = AnswerConfig(), progress: bool = True) -> SuiteAnswers:
    """A model's answers to ``suite`` (only its ``benchmarks``, e.g. ("mmvet", "halbench"), if
    given), cached: the base model (``run=None``; 01's cache), greedy or with VCD decoding
    (``vcd``), or a tuned run (greedy, its adapters merged)."""
    from bpo.evaluation.suite import benchmark_of
    from bpo.selection import merged_copy

    key = {"model": base.key, "suite": asdict(suite_cfg), "answer": asdict(answer_cfg)}
    if benchmarks is not None:
        unknown = sorted(set(benchmarks) - {benchmark_of(k) for k in suite})
        if unknown:
            raise ValueError(f"evaluate: benchmarks {unknown} are not in the suite")
        suite = {k: v for k, v in suite.items() if benchmark_of(k) in benchmarks}
        key["benchmarks"] = sorted(benchmarks)
    if run is not None and vcd is not None:
        raise ValueError("evaluate: VCD decoding is a row for the base model; pass run or vcd, not both")
    if run is not None:
        stage, key = "eval/tuned", {**key, "tuning": run.directory.name}
    elif vcd is not None:
        stage, key = "vcd/base", {**key, "vcd": asdict(vcd)}
    else:
        stage = "eval/base"
    target = stage_dir(base.preset, stage, key)
    model = base.model
    if run is not None and not (target / "answers.json").exists():
        model = merged_copy(run.model)  # generation without peft's per-layer detour
    decoder = generate if vcd is None else partial(vcd_generate, cfg=vcd)
    return load_or_answer(target, model, base.processor, suite, answer_cfg, progress, decoder)
