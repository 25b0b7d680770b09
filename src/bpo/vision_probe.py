"""The probe report of a frozen vision tower: what its features say about an image, read out the
same way whatever trained the tower.

Fresh linear heads (``SeeingHeads``) are fitted on the tower's features of scenes whose objects are
independent of their place, then read on held-out *typical* and *atypical* scenes drawn as the
benchmarks draw them. If the eyes carried the place -> object prior, atypical scenes would read
worse. (It lives outside ``bpo.training`` so that editing the report never changes the base model's
cache key.)
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from bpo.precision import autocast, storage_dtype
from bpo.training.vision import (
    BACKGROUND, COLOURS, IGNORE, NOUNS, SIGN, SIGN_TEXTS, SeeingHeads, render_batch, scene_stream, tower_features,
)
from bpo.world import vocab
from bpo.world.scene import CELLS, Scene, SceneSampling, item_rng, sample_scene

def _cell_of_patches(g: int) -> np.ndarray:
    """The 2 x 3 grid cell index of each patch's centre."""
    centre = (np.arange(g) + 0.5) / g
    rows, cols = np.minimum((centre * 2).astype(int), 1), np.minimum((centre * 3).astype(int), 2)
    return (rows[:, None] * 3 + cols[None, :]).reshape(-1)


# A cell holds at most one thing (the world's layout), so the probe reads cell by cell: a patch at
# an icon's edge that looks like another noun is outvoted by its cell instead of adding a noun.
MIN_MASS = 0.5  # a cell's thing needs at least half a patch of probability mass


def read_scene(out: dict[str, np.ndarray], g: int) -> dict:
    """What the heads say one image holds (``out``: per-patch probabilities, and the place's): in each
    grid cell, the noun or sign with the most probability mass over the patches centred there, if
    that mass is at least ``MIN_MASS``; its colour, count or text weighted by that mass; the place."""
    cells = _cell_of_patches(g)
    objects, sign = {}, None
    for cell in range(len(CELLS)):
        at = cells == cell
        mass = out["noun"][at].sum(0)
        mass[BACKGROUND] = 0
        best = int(mass.argmax())
        if mass[best] < MIN_MASS:
            continue
        w = out["noun"][at, best]
        if best == SIGN:
            sign = SIGN_TEXTS[int((w @ out["text"][at]).argmax())]
            continue
        name = NOUNS[best - 1]
        if name in objects and objects[name]["mass"] >= mass[best]:
            continue  # one noun read in two cells: keep the stronger reading
        objects[name] = {"colour": COLOURS[int((w @ out["colour"][at]).argmax())],
                         "count": int((w @ out["count"][at]).argmax()) + 1, "cell": cell, "mass": float(mass[best])}
    return {"objects": objects, "place": vocab.PLACES[int(out["place"].argmax())], "sign": sign}


def score_readings(scenes: list[Scene], readings: list[dict]) -> dict[str, float]:
    """Object presence precision / recall / F1 over (image, noun) pairs; colour, count and cell
    accuracy over the true objects that were seen; place accuracy; sign reading over images with a
    sign (a sign no patch was read as counts as wrong)."""
    tp = fp = fn = 0
    colour = count = cell = 0
    place = sign = n_sign = 0
    for scene, r in zip(scenes, readings):
        true = {o.name: o for o in scene.objects}
        seen = r["objects"]
        hits = [n for n in seen if n in true]
        tp, fp, fn = tp + len(hits), fp + len(seen) - len(hits), fn + len(true) - len(hits)
        for n in hits:
            o = true[n]
            colour += seen[n]["colour"] == o.colour
            count += seen[n]["count"] == o.count
            cell += seen[n]["cell"] == CELLS.index((o.row, o.col))
        place += r["place"] == scene.place
        if scene.sign:
            n_sign += 1
            sign += r["sign"] == scene.sign.text
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"images": len(scenes), "object_precision": precision, "object_recall": recall,
            "object_f1": 2 * precision * recall / max(1e-12, precision + recall),
            "colour": colour / max(1, tp), "count": count / max(1, tp), "cell": cell / max(1, tp),
            "place": place / len(scenes), "sign": sign / max(1, n_sign), "signs": n_sign}


def _features(model, scenes: list[Scene], batch: int = 128, desc: str = "probe features", progress: bool = True):
    tower, vcfg = model.model.vision_tower, model.config.vision_config
    feats, targets = [], []
    for start in tqdm(range(0, len(scenes), batch), desc=desc, disable=not progress, leave=False):
        pixels, t = render_batch(scenes[start:start + batch], vcfg.image_size, vcfg.patch_size)
        with torch.no_grad(), autocast(True, model.device.type):
            feats.append(tower_features(tower, pixels.to(model.device, model.dtype),
                                        model.config.vision_feature_layer).to(storage_dtype(model.device.type)).cpu())
        targets.append(t)
    return torch.cat(feats), {k: torch.cat([t[k] for t in targets]) for k in targets[0]}


def fit_probe(feats: torch.Tensor, targets: dict[str, torch.Tensor], steps: int = 600, batch: int = 256,
              lr: float = 3e-3, seed: int = 0) -> SeeingHeads:
    """Fresh linear heads fitted on frozen features (Adam, fixed steps, minibatches drawn with ``seed``)."""
    torch.manual_seed(seed)
    heads = SeeingHeads(feats.shape[-1])
    opt = torch.optim.Adam(heads.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(feats), (min(batch, len(feats)),), generator=gen)
        loss = SeeingHeads.loss(heads(feats[idx].float()), {k: v[idx] for k, v in targets.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return heads


def probe_report(model, seed: int = 0, n_fit: int = 2000, n_test: int = 400, progress: bool = True):
    """The frozen tower, probed: linear heads fitted on ``n_fit`` independent scenes, then read on
    ``n_test`` held-out typical and ``n_test`` atypical scenes drawn as the benchmarks draw them.
    One row per split (and "independent", the fit distribution, on unseen scenes)."""
    import pandas as pd

    g = model.config.vision_config.image_size // model.config.vision_config.patch_size
    fit = scene_stream(seed, "probe-fit", 0, n_fit)
    heads = fit_probe(*_features(model, fit, desc="probe: fit features", progress=progress), seed=seed)
    splits = {"typical": [sample_scene(item_rng(seed, "probe-typical", i), f"probe-typical-{i:05d}",
                                       SceneSampling(typicality="typical")) for i in range(n_test)],
              "atypical": [sample_scene(item_rng(seed, "probe-atypical", i), f"probe-atypical-{i:05d}",
                                        SceneSampling(typicality="atypical")) for i in range(n_test)],
              "independent": scene_stream(seed, "probe-test", 0, n_test)}
    rows = []
    for split, scenes in splits.items():
        feats, _ = _features(model, scenes, desc=f"probe: {split}", progress=progress)
        with torch.no_grad():
            out = {k: v.float().softmax(-1).numpy() for k, v in heads(feats.float()).items()}
        readings = [read_scene({k: v[i] for k, v in out.items()}, g) for i in range(len(scenes))]
        rows.append({"split": split, **score_readings(scenes, readings)})
    return pd.DataFrame(rows)


def patch_accuracy(model, seed: int = 0, n_fit: int = 300, n_test: int = 100, steps: int = 300) -> dict[str, float]:
    """The frozen tower, probed patch by patch on held-out independent scenes: of the patches an
    object covers, the share whose noun and whose colour fresh linear heads name; beside them the
    chance levels (nouns and colours are drawn uniformly: 1/40 and 1/11). A cheaper, finer reading
    than :func:`probe_report`, for telling an early tower from an untrained one."""
    feats, targets = _features(model, scene_stream(seed, "probe-fit", 0, n_fit), progress=False)
    heads = fit_probe(feats, targets, steps=steps, seed=seed)
    feats, targets = _features(model, scene_stream(seed, "probe-test", 0, n_test), progress=False)
    with torch.no_grad():
        out = heads(feats.float())
    noun = targets["noun"]
    on_object = (noun != BACKGROUND) & (noun != SIGN) & (noun != IGNORE)
    return {"noun": float((out["noun"].argmax(-1) == noun)[on_object].float().mean()),
            "colour": float((out["colour"].argmax(-1) == targets["colour"])[on_object].float().mean()),
            "noun_chance": 1 / len(NOUNS), "colour_chance": 1 / len(COLOURS), "patches": int(on_object.sum())}
