"""Multi-round BPO, beyond the paper: bootstrap the negatives again from the model BPO has made.

Round 1 is ``04``'s BPO run. Round r > 1:

- takes new ground truths: the ``n_per_source`` rows of each source after those of round r - 1
  (round 1 used the rows after the base model's stage 2), so no round sees another's ground truths;
- makes their negatives, of round 1's training types only, with the round r - 1 model (its adapter
  merged), by the same rules and noise as ``03``;
- trains BPO with the preset's settings, starting from that model, which is also its reference.

Each round's negatives and pairs are cached under the key of the model that made them, its run
under the key of the run it started from.
"""

from __future__ import annotations

import dataclasses

from bpo.pipeline import Base, tune
from bpo.preference.bootstrap import candidates, check_negatives, load_or_make_negatives, load_pairs, pairs_dir, save_pairs
from bpo.preference.config import PreferenceConfig
from bpo.preference.dataset import PairConfig, build_pairs
from bpo.selection import merged_copy
from bpo.training.tuning import TuningRun
from bpo.training.tuning_config import TuningConfig


def round_preference_config(cfg: PreferenceConfig, round_index: int, types: tuple[str, ...]) -> PreferenceConfig:
    """Round ``round_index``'s negatives: round 1's config (``cfg``) on the next block of rows,
    making only ``types``."""
    if not isinstance(round_index, int) or round_index < 1:
        raise ValueError(f"round_index must be an int >= 1, got {round_index!r}")
    return dataclasses.replace(cfg, skip=cfg.skip + (round_index - 1) * cfg.n_per_source, negative_types=tuple(types))


def round_pairs(base: Base, previous: TuningRun, cfg: PreferenceConfig, progress: bool = True):
    """(pairs, report, directory) whose negatives ``previous``'s model made for ``cfg``'s rows."""
    maker = f"{base.key}+{previous.directory.name}"  # names the model that made the negatives
    target = pairs_dir(base.preset, maker, cfg)
    if not (target / "report.json").exists():
        model = merged_copy(previous.model)
        negatives, _ = load_or_make_negatives(base.preset, maker, model, base.processor, base.world, cfg, progress)
        pairs, report = build_pairs(candidates(check_negatives(negatives), base.world, cfg.negative_types), PairConfig())
        save_pairs(pairs, report, cfg.negative_types, target)
    return (*load_pairs(target), target)


def bootstrap_rounds(base: Base, first: TuningRun, cfg: PreferenceConfig, types: tuple[str, ...],
                     tuning_cfg: TuningConfig, n_rounds: int, progress: bool = True) -> list[TuningRun]:
    """Rounds 1..``n_rounds`` of BPO, round 1 being ``first`` (the single-round run, on ``cfg``'s
    pairs of ``types``); each later round goes on from the one before."""
    if tuning_cfg.method != "bpo":
        raise ValueError(f"multi-round bootstrapping is for BPO, got method {tuning_cfg.method!r}")
    if n_rounds < 1:
        raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
    runs = [first]
    for r in range(2, n_rounds + 1):
        pairs, _, target = round_pairs(base, runs[-1], round_preference_config(cfg, r, types), progress)
        runs.append(tune(base, pairs, target.parent.name, types, tuning_cfg, progress=progress, start=runs[-1]))
    return runs
