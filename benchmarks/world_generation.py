"""How fast SceneWorld generates: scenes, renders, PNG-encoded data-set rows and the corpus.

    python benchmarks/world_generation.py [--n 300]

Prints items/s per step and the projected time for the default (smol) world sizes.
"""

from __future__ import annotations

import argparse
import time

from bpo.presets import world_config
from bpo.world.sources import IMAGE_SOURCES, build_corpus, source_record
from bpo.world.render import render
from bpo.world.scene import item_rng, sample_scene


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    cfg = world_config("smol")
    scenes = [sample_scene(item_rng(0, "bench", i), f"b{i}") for i in range(n)]
    rows = {
        "sample scene": rate(lambda i: sample_scene(item_rng(0, "bench", i), f"b{i}"), n),
        f"render {cfg.image_size}px": rate(lambda i: render(scenes[i], cfg.image_size), n),
        "data-set row (scene+render+PNG+text)": rate(lambda i: source_record("detail", i, 0, cfg.image_size), n),
    }
    start = time.perf_counter()
    build_corpus(n * 10, 0)
    rows["corpus text"] = n * 10 / (time.perf_counter() - start)
    n_images = sum(cfg.size(s) for s in IMAGE_SOURCES)
    projected = n_images / rows["data-set row (scene+render+PNG+text)"] + cfg.n_corpus / rows["corpus text"]
    print(f"| step | items/s |\n| --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r:,.0f} |")
    print(f"\nDefault smol world: {n_images:,} images + {cfg.n_corpus:,} corpus texts "
          f"-> projected {projected:.1f} s of generation (before saving)")


if __name__ == "__main__":
    main()
