"""Sizing a base model's stages 2-3 (projector alignment, visual instruction tuning) on the
*validation* copy of the benchmarks: does the LM read the tower's features? Issue 9 asks this of
every base we train; each setting is read by typical and atypical recall and CHAIR_i (Object
HalBench-world) and POPE-random accuracy and yes-ratio, with 95 % intervals over items.

A setting changes only fields that alignment and instruction tuning read (:data:`LATE_FIELDS`),
so the default base's earlier stages (LM pre-training, the vision tower, the projector's
grounding), which the same seed would make again bit for bit, are copied into the setting's cache
directory and only the last two stages are trained. ``python -m bpo.base_sizing --preset tiny``
prints the table and saves it as ``figures/base_sizing_<preset>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from dataclasses import asdict

import pandas as pd

from bpo.cache import stage_params
from bpo.comparison import values_table
from bpo.evaluation.run import answer_suite
from bpo.evaluation.suite import items_of
from bpo.evaluation.uncertainty import with_ci
from bpo.models.config import ModelConfig
from bpo.presets import base_training_config, model_config, world_config
from bpo.selection import validation_halbench, validation_pope
from bpo.training.base import STAGES, base_dir, train_base_model
from bpo.training.config import BaseTrainingConfig
from bpo.world.sources import load_or_build_world

# The fields only stages 2-3 read; a setting may change these and nothing else.
LATE_FIELDS = ("align_examples", "align_lr", "sft_examples", "sft_lr", "sft_epochs")
# The settings tried per preset (the first, empty, is the preset's own). tiny's world holds 1,000
# conversations per source and its preference data take the rows after stage 3's, so stage 3 grows
# by epochs, not by examples.
SIZING_GRID = {
    "tiny": ({}, {"sft_epochs": 3}, {"sft_epochs": 3, "align_examples": 2000}, {"sft_lr": 1e-3},
             {"sft_epochs": 6}),
}
READ = {("halbench", "recall"): "recall", ("halbench", "CHAIR_i"): "CHAIR_i",
        ("pope-random", "accuracy"): "POPE-random acc.", ("pope-random", "yes_ratio"): "POPE-random yes %"}


def sized_base(preset: str, world: dict, world_key: dict, model_cfg: ModelConfig, cfg: BaseTrainingConfig,
               setting: dict, progress: bool = True):
    """(model, processor, logs) of the base ``cfg`` describes, with ``setting`` in place of its
    stage-2-3 fields; the earlier stages are the ``cfg`` base's (trained first if not cached)."""
    late = set(setting) - set(LATE_FIELDS)
    if late:
        raise ValueError(f"setting {setting}: {sorted(late)} are read before alignment; "
                         f"a sizing setting may change only {', '.join(LATE_FIELDS)}")
    default = train_base_model(preset, world, world_key, model_cfg, cfg, progress)
    if not setting:
        return default
    source = base_dir(preset, world_key, model_cfg, cfg)
    variant = dataclasses.replace(cfg, **setting)
    target = base_dir(preset, world_key, model_cfg, variant)
    for stage in STAGES[:STAGES.index("align")]:
        if (source / stage).exists() and not (target / stage).exists():
            shutil.copytree(source / stage, target / stage)
    return train_base_model(preset, world, world_key, model_cfg, variant, progress)


def sizing_table(preset: str, settings=None, seed: int = 0, val_scale: float = 1.0, progress: bool = True):
    """One row per setting: its fields, stage 2-3 seconds, and each of :data:`READ` per scene split
    as 'value [lo, hi]' on the validation copy (answers saved beside the setting's base)."""
    settings = SIZING_GRID[preset] if settings is None else settings
    suite = {**validation_halbench(preset, seed, val_scale), **validation_pope(preset, seed, val_scale, "random")}
    items = {k: items_of(ds) for k, ds in suite.items()}
    rows = []
    world_cfg, model_cfg, cfg = world_config(preset, seed=seed), model_config(preset), base_training_config(preset, seed)
    world = load_or_build_world(preset, world_cfg)
    for setting in settings:
        model, processor, logs = sized_base(preset, world, asdict(world_cfg), model_cfg, cfg, setting, progress)
        directory = base_dir(preset, asdict(world_cfg), model_cfg, dataclasses.replace(cfg, **setting))
        # the decoding code's version in the name: the base's key does not hold it
        saved = directory / f"validation_answers_{val_scale:g}_{stage_params('eval', {})['code']}.json"
        if not saved.exists():
            saved.write_text(json.dumps(answer_suite(model, processor, suite, progress=progress).answers))
        values = values_table(items, {"m": [json.loads(saved.read_text())]})
        row = {"setting": ", ".join(f"{k}={v}" for k, v in setting.items()) or "preset default",
               "stage 2-3 s": round(sum(r["seconds"] for s in ("align", "sft") for r in logs[s]))}
        for (benchmark, metric), name in READ.items():
            for split in ("typical", "atypical"):
                v = values[(values.benchmark == benchmark) & (values.metric == metric) & (values.split == split)].iloc[0]
                row[f"{split} {name}"] = with_ci(v.value, v.lo, v.hi)
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    from bpo.tables import save_table, to_markdown

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(SIZING_GRID))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = sizing_table(args.preset, seed=args.seed)
    save_table(table, f"base_sizing_{args.preset}")
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
