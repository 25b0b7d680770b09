"""Sizing a base model's stages on the *validation* copy of the benchmarks: does the LM read the
tower's features? Issue 9 asks this of every base we train; each setting is read by typical and
atypical recall and CHAIR_i (Object HalBench-world) and POPE-random accuracy and yes-ratio, with
95 % intervals over items, and by how well its yes/no margin separates present from absent objects
(AUC, ``bpo.yes_no_margin``): whether a base that answers "yes" to everything knows better.

A setting changes some fields of the preset's :class:`BaseTrainingConfig`. The stages before the
first one that reads a changed field (:data:`FIRST_READ`) are the default base's, which the same
seed would make again bit for bit, so they are copied into the setting's cache directory and only
the rest is trained. ``python -m bpo.base_sizing --preset tiny [--grid lm]`` prints the table and
saves it as ``figures/base_sizing_<preset>[_<grid>]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from dataclasses import asdict

import pandas as pd

from bpo.cache import atomic_dir, stage_params
from bpo.comparison import compare, values_table
from bpo.evaluation.run import answer_suite
from bpo.evaluation.suite import items_of
from bpo.evaluation.uncertainty import with_ci
from bpo.models.config import ModelConfig
from bpo.models.llava import load_pretrained
from bpo.presets import base_training_config, model_config, world_config
from bpo.selection import validation_halbench, validation_pope
from bpo.training.base import STAGES, base_dir, train_base_model
from bpo.training.config import BaseTrainingConfig
from bpo.world.sources import load_or_build_world
from bpo.yes_no_margin import answer_margins, auc_interval, notes_margins

# The first stage that reads each field; a field not named here (seed, batch_size, max_length, the
# lm_* fields) is read by the LM pre-training already.
FIRST_READ = {**dict.fromkeys(("vision_objective", "vision_images", "vision_epochs", "vision_lr", "vision_batch"), "vision"),
              "ground_images": "ground", "ground_lr": "ground",
              **dict.fromkeys(("align_examples", "align_lr", "align_lm", "align_epochs"), "align"),
              **dict.fromkeys(("sft_examples", "sft_epochs", "sft_lr", "sft_yes_no_turns"), "sft")}
# The settings tried, by preset and grid (the first, empty, is the preset's own). tiny's world holds
# 1,000 conversations per source and its preference data take the rows after stage 3's, so stage 3
# grows by epochs, not by examples. When no stage-2-3 setting made tiny read the image, copy texts
# in its LM pre-training were tried (its corpus holds 6,667 texts); the preset now has 10,000 of them.
# tiny's LM learning from all 2,000 captions at its own pre-training rate (the "reading" grid)
_CAPTIONS_LM = {"align_lm": True, "align_lr": 1e-3, "align_examples": 2000}
SIZING_GRIDS = {
    "tiny": {"stages": ({}, {"sft_epochs": 3}, {"sft_epochs": 3, "align_examples": 2000}, {"sft_lr": 1e-3},
                        {"sft_epochs": 6}),
             "lm": ({}, {"lm_copy_texts": 0}, {"lm_copy_texts": 3000}),
             # (run while the preset was its first row, the earlier default; the preset is now its last)
             # tiny names an object or two, then repeats itself, and answers yes/no questions in the
             # "where" format: does its LM learn to read every object from the captions (align_lm, at
             # its own pre-training rate), and the yes/no format from presence questions?
             "reading": ({}, _CAPTIONS_LM, {**_CAPTIONS_LM, "sft_yes_no_turns": 1},
                         {**_CAPTIONS_LM, "sft_yes_no_turns": 1, "sft_epochs": 3},
                         # the captions did help (typical recall 12.3 -> 22.8, CHAIR_i 66.7 -> 39.5) and
                         # POPE stayed at chance: do more passes over them?
                         {**_CAPTIONS_LM, "align_epochs": 4},
                         {**_CAPTIONS_LM, "align_epochs": 4, "sft_yes_no_turns": 1, "sft_epochs": 3}),
             # POPE stayed at chance in every one of them, with a yes/no margin that does not separate
             # present from absent objects (AUC 0.49-0.52): can the LM answer a presence question from
             # text notes before it meets an image? (bpo.training.lm_texts.presence_texts)
             "presence": ({}, {"lm_presence_texts": 10000}),
             # grounding read align_lr until ground_lr split from it: the reading grid's rows with align_lr
             # 1e-3 copied a grounding stage made at 2e-3, and a fresh clone made one at 1e-3. How much
             # does that base differ from the measured one?
             "ground_rate": ({}, {"ground_lr": 1e-3})},
    # smol describes what it sees but says "yes" to ~90 % of POPE questions: does a second pass
    # over stage 3's conversations (384 yes/no turns among them) ground yes/no answers?
    # A second pass did not (figures/base_sizing_smol.md); do presence questions before every
    # example, on the same images (bpo.training.presence_turns)? They did not either: they moved
    # the yes-ratio both ways (23 % and 100 %) at chance-level accuracy (base_sizing_smol_yes_no.md).
    "smol": {"stages": ({}, {"sft_epochs": 2}), "yes_no": ({}, {"sft_yes_no_turns": 1}, {"sft_yes_no_turns": 2}),
             # issue 9's other candidate: a larger stage 3 (the preference data's rows move after it);
             # it does ground them (base_sizing_smol_size.md: POPE-random 61.5, 69.4, 77.1)
             "size": ({}, {"sft_examples": 2400}, {"sft_examples": 3600})},
}
# Fields that only the LM pre-training reads (the lm_* ones). A setting of these alone leaves the
# supervised tower bit for bit the default's (its initial weights and its scenes come from the seed;
# it reads neither the LM nor its texts): the tower is taken over instead of trained again (15 fp32
# minutes on tiny).
LM_ONLY = tuple(f.name for f in dataclasses.fields(BaseTrainingConfig) if f.name.startswith("lm_"))
READ = {("halbench", "recall"): "recall", ("halbench", "CHAIR_i"): "CHAIR_i",
        ("pope-random", "accuracy"): "POPE-random acc.", ("pope-random", "yes_ratio"): "POPE-random yes %"}
PAIRED = {("halbench", "CHAIR_i"): "CHAIR_i", ("pope-random", "accuracy"): "POPE-random acc."}


def sized_base(preset: str, world: dict, world_key: dict, model_cfg: ModelConfig, cfg: BaseTrainingConfig,
               setting: dict, progress: bool = True):
    """(model, processor, logs) of the base ``cfg`` describes with ``setting``'s fields in place;
    the stages before the first that reads one of them are the ``cfg`` base's (trained first if not
    cached)."""
    unknown = set(setting) - {f.name for f in dataclasses.fields(BaseTrainingConfig)}
    if unknown:
        raise ValueError(f"setting {setting}: {sorted(unknown)} are not fields of BaseTrainingConfig")
    variant = dataclasses.replace(cfg, **setting)
    first = min((STAGES.index(FIRST_READ.get(k, STAGES[0])) for k in setting), default=len(STAGES))
    if first > 0:  # something to copy: the default base, trained (or read) in full
        default = train_base_model(preset, world, world_key, model_cfg, cfg, progress)
        if not setting:
            return default
        source, target = (base_dir(preset, world_key, model_cfg, c) for c in (cfg, variant))
        for stage in STAGES[:first]:
            if (source / stage).exists() and not (target / stage).exists():
                shutil.copytree(source / stage, target / stage)
    elif set(setting) <= set(LM_ONLY) and cfg.vision_objective == "supervised":
        train_base_model(preset, world, world_key, model_cfg, cfg, progress)
        _take_over_tower(preset, world, world_key, model_cfg, cfg, variant, progress)
    return train_base_model(preset, world, world_key, model_cfg, variant, progress)


def _take_over_tower(preset: str, world: dict, world_key: dict, model_cfg: ModelConfig, cfg: BaseTrainingConfig,
                     variant: BaseTrainingConfig, progress: bool) -> None:
    """Save ``variant``'s vision stage as its own LM stage with the ``cfg`` base's trained tower."""
    source, target = (base_dir(preset, world_key, model_cfg, c) for c in (cfg, variant))
    if (target / "vision" / "config.json").exists():
        return
    model, processor, _ = train_base_model(preset, world, world_key, model_cfg, variant, progress, until="lm")
    tower, _ = load_pretrained(source / "vision")
    model.model.vision_tower.load_state_dict(tower.model.vision_tower.state_dict())
    with atomic_dir(target / "vision") as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        shutil.copy(source / "vision" / "log.json", tmp / "log.json")


def sizing_table(preset: str, settings, seed: int = 0, val_scale: float = 1.0, progress: bool = True):
    """One row per setting: its fields, seconds per stage, each of :data:`READ` per scene split as
    'value [lo, hi]' on the validation copy (answers saved beside the setting's base), the yes/no
    margin's AUC with and without the image (and of the pre-trained LM from text notes), and
    :data:`PAIRED`'s difference from the first setting on the same items."""
    suite = {**validation_halbench(preset, seed, val_scale), **validation_pope(preset, seed, val_scale, "random")}
    items = {k: items_of(ds) for k, ds in suite.items()}
    rows, first = [], None
    world_cfg, model_cfg, cfg = world_config(preset, seed=seed), model_config(preset), base_training_config(preset, seed)
    world = load_or_build_world(preset, world_cfg)
    for setting in settings:
        model, processor, logs = sized_base(preset, world, asdict(world_cfg), model_cfg, cfg, setting, progress)
        directory = base_dir(preset, asdict(world_cfg), model_cfg, dataclasses.replace(cfg, **setting))
        # the decoding code's version in the name: the base's key does not hold it
        saved = directory / f"validation_answers_{val_scale:g}_{stage_params('eval', {})['code']}.json"
        if not saved.exists():
            saved.write_text(json.dumps(answer_suite(model, processor, suite, progress=progress).answers))
        answers = json.loads(saved.read_text())
        values = values_table(items, {"m": [answers]})
        row = {"setting": ", ".join(f"{k}={v}" for k, v in setting.items()) or "preset default",
               **{f"{stage} s": round(sum(r["seconds"] for r in log)) for stage, log in logs.items()}}
        for (benchmark, metric), name in READ.items():
            for split in ("typical", "atypical"):
                v = values[(values.benchmark == benchmark) & (values.metric == metric) & (values.split == split)].iloc[0]
                row[f"{split} {name}"] = with_ci(v.value, v.lo, v.hi)
        for split in ("typical", "atypical"):  # does the LM know the answer it gives? (bpo.yes_no_margin)
            key = f"pope-random/{split}"
            labels = [it["label"] for it in items[key]]
            for blind, name in ((False, ""), (True, ", no image")):
                margins = answer_margins(model, processor, suite[key], blind, progress)
                row[f"{split} POPE-random yes-no AUC{name}"] = with_ci(*auc_interval(margins, labels))
        if "lm" in logs:  # can its LM, before any image, answer the same question from notes?
            lm_stage, _ = load_pretrained(directory / "lm")
            row["LM yes-no AUC from notes"] = with_ci(*auc_interval(*notes_margins(lm_stage.eval(), processor.tokenizer,
                                                                                 seed=seed)))
        # each later setting against the grid's first (the preset's own), paired over the same items
        paired = None if first is None else compare(items, [first], [answers]).set_index(["benchmark", "metric", "split"])
        first = first or answers
        for (benchmark, metric), name in PAIRED.items():
            for split in ("typical", "atypical"):
                row[f"{split} {name} - first"] = "" if paired is None else with_ci(
                    *paired.loc[(benchmark, metric, split), ["diff", "diff_lo", "diff_hi"]])
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    from bpo.tables import save_table, to_markdown

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(SIZING_GRIDS))
    parser.add_argument("--grid", default="stages", help="which of the preset's grids (SIZING_GRIDS) to run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    grids = SIZING_GRIDS[args.preset]
    if args.grid not in grids:
        parser.error(f"preset {args.preset} has the grids {', '.join(grids)}, not {args.grid!r}")
    table = sizing_table(args.preset, grids[args.grid], seed=args.seed)
    save_table(table, f"base_sizing_{args.preset}" + ("" if args.grid == "stages" else f"_{args.grid}"))
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
