"""Which vision pre-training makes a tower that sees: supervised (renderer masks) against
contrastive (CLIP on the world's captions), the same tower, the same number of image views.

    python benchmarks/vision_objectives.py [--preset tiny] [--images 32000] [--n-fit 1000] [--n-test 200]

For each objective a fresh tower of the preset (seed 0) is pre-trained on ``--images`` image views
(supervised: freshly drawn place-independent scenes; contrastive: passes over the world's caption
images until as many views are seen), then probed frozen (``bpo.vision_probe.probe_report``: linear
heads fitted on ``--n-fit`` scenes, read on ``--n-test`` held-out typical and atypical scenes).
Prints one Markdown table: objective, split, seconds, images/s, object precision, recall and F1,
colour, count, cell, place and sign accuracy. The untrained tower is the first row's floor.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import time

import pandas as pd

from bpo.models.llava import build_model
from bpo.presets import base_training_config, model_config, world_config
from bpo.training.vision import pretrain_contrastive, pretrain_supervised
from bpo.tables import to_markdown
from bpo.vision_probe import probe_report
from bpo.world.sources import load_or_build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", choices=("tiny", "smol"))
    parser.add_argument("--images", type=int, default=32000, help="image views per objective")
    parser.add_argument("--n-fit", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=200)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (other processes on these cores slow every number below)\n")

    world = load_or_build_world(args.preset, world_config(args.preset))
    captions_ds = world["caption"]
    texts = list(world["corpus"]["text"]) if args.preset == "tiny" else None
    untrained, processor = build_model(model_config(args.preset), texts, progress=False)
    cfg = dataclasses.replace(base_training_config(args.preset), vision_images=args.images)
    images = [captions_ds[i]["image"] for i in range(len(captions_ds))]
    captions = [c[-1]["content"] for c in captions_ds["conversations"]]

    def supervised(model):
        return pretrain_supervised(model, cfg, progress=True)

    def contrastive(model):
        epochs = max(1, math.ceil(args.images / len(images)))
        return pretrain_contrastive(model, processor, images, captions, dataclasses.replace(cfg, vision_epochs=epochs),
                                    progress=True)

    rows = []
    for name, train in (("untrained", None), ("supervised", supervised), ("contrastive", contrastive)):
        model = copy.deepcopy(untrained)
        seconds, seen = 0.0, 0
        if train is not None:
            start = time.perf_counter()
            log = train(model)
            seconds, seen = time.perf_counter() - start, sum(r["tokens"] for r in log)
        probe = probe_report(model.eval(), seed=1, n_fit=args.n_fit, n_test=args.n_test, progress=False)
        for row in probe[probe.split != "independent"].to_dict("records"):
            rows.append({"objective": name, "image views": seen, "seconds": round(seconds),
                         "images/s": round(seen / seconds) if seconds else 0, **row})
    table = pd.DataFrame(rows).drop(columns=["images", "signs"])
    print(to_markdown(table, ".3f"))


if __name__ == "__main__":
    main()
