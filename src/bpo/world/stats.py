"""Numbers about the world as data frames, for the notebooks' tables and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bpo.world import vocab
from bpo.world.scene import Scene

# The real sources each of ours stands in for, with their sizes in the paper's Table 2.
PAPER_SOURCES = {
    "detail": ("ShareGPT4V (detailed captions)", 57906),
    "textvqa": ("LLaVAR (text-rich VQA)", 55445),
    "conversation": ("LLaVA-Instruct (conversations)", 54359),
}


def prior_frame() -> pd.DataFrame:
    """P(object | place) of the world's prior: places as rows, objects (by overall frequency) as columns."""
    frame = pd.DataFrame([[vocab.prior_probability(p, o) for o in vocab.OBJECTS] for p in vocab.PLACES],
                         index=list(vocab.PLACES), columns=list(vocab.OBJECTS))
    return frame[frame.sum().sort_values(ascending=False).index]


def source_frame(world: dict) -> pd.DataFrame:
    """The analogue of the paper's Table 2: our three data sources next to the real ones."""
    rows = []
    for source, (analogue, paper_size) in PAPER_SOURCES.items():
        ds = world[source]
        convs = ds["conversations"]
        answers = [t["content"] for c in convs for t in c if t["role"] == "assistant"]
        scenes = [Scene.from_json(s) for s in ds["scene"]]
        rows.append({
            "source": source,
            "stands in for": analogue,
            "paper size": paper_size,
            "our size": len(ds),
            "turns per item": float(np.mean([len(c) // 2 for c in convs])),
            "words per answer": float(np.mean([len(a.split()) for a in answers])),
            "objects per image": float(np.mean([len(s.objects) for s in scenes])),
            "with a sign (%)": 100 * float(np.mean([s.sign is not None for s in scenes])),
            "against the prior (%)": 100 * float(np.mean([s.typicality != "typical" for s in scenes])),
        })
    return pd.DataFrame(rows)


def annotation(scene: Scene) -> str:
    """A compact caption for a sample grid: place, then one line per object and the sign."""
    lines = [f"{scene.place} ({scene.typicality})"]
    lines += [f"{o.count}x {o.colour} {o.name} @ {o.position}" for o in scene.objects]
    if scene.sign:
        lines.append(f'sign "{scene.sign.text}" @ {scene.sign.row} {scene.sign.col}')
    return "\n".join(lines)
