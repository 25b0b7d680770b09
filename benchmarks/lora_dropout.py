"""LoRA's dropout on a CPU: peft's ``nn.Dropout`` against ``bpo.training.lora_dropout.LoraDropout``
(and no dropout, the floor), as BPO steps of ``train_tuning`` in one run.

    python benchmarks/lora_dropout.py [--preset smol] [--pairs 48] [--repeats 2] [--pairs-dir DIR]

Each variant trains one epoch of BPO (the preset's LoRA, batch and learning rate) on the first
``--pairs`` pairs of the preset's preference set (``03``; ``--pairs-dir`` reads another saved set),
``--repeats`` times, alternating; the best total of the steps' own seconds counts. The table gives
seconds, tokens/s, the speed-up over peft's dropout, and the last step's loss (a different mask
gives a different loss: dropout's draws are not the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pandas as pd

import bpo.training.tuning as tuning
from bpo.pipeline import load_base, load_preference_pairs
from bpo.preference.bootstrap import load_pairs
from bpo.presets import tuning_config
from bpo.tables import to_markdown
from bpo.training.pairs import select_pairs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pairs-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    base = load_base(args.preset, progress=False, device="cpu")
    ds, report = load_pairs(args.pairs_dir) if args.pairs_dir else load_preference_pairs(base)[:2]
    ds = select_pairs(ds, tuple(report["training_types"])).select(range(args.pairs))
    cfg = dataclasses.replace(tuning_config(args.preset, "bpo", 0), epochs=1, max_pairs=0)
    ours = tuning.use_lora_dropout
    variants = {"peft nn.Dropout": (cfg, lambda model: 0), "LoraDropout": (cfg, ours),
                "no dropout": (dataclasses.replace(cfg, lora_dropout=0.0), ours)}
    best, last = {}, {}
    try:
        for _ in range(args.repeats):
            for name, (c, swap) in variants.items():
                tuning.use_lora_dropout = swap
                with tempfile.TemporaryDirectory() as tmp:
                    run = tuning.train_tuning(base.model, base.processor, ds, c, Path(tmp) / "run", progress=False)
                seconds = sum(r["seconds"] for r in run.log)
                if seconds < best.get(name, (float("inf"),))[0]:
                    best[name] = (seconds, sum(r["tokens"] for r in run.log))
                last[name] = run.log[-1]["loss"]
    finally:
        tuning.use_lora_dropout = ours
    rows = [{"dropout": name, "dropout p": variants[name][0].lora_dropout, "steps": -(-len(ds) // cfg.batch_size),
             "seconds": s, "tokens/s": t / s, "speed-up": best["peft nn.Dropout"][0] / s, "last loss": last[name]}
            for name, (s, t) in best.items()]
    print(to_markdown(pd.DataFrame(rows), ".3g"))


if __name__ == "__main__":
    main()
