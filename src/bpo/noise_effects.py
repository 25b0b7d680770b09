"""What image weakening does to the base model's answers, beyond the paper's Figure 5.

For each noise place (pixels, vision features, projector output) and step, the base model
describes images (Object-HalBench-world: CHAIR_i, CHAIR_s, object recall, and whether it still
names the right place) and answers POPE-adversarial questions (accuracy, yes-ratio), greedily as
in evaluation. The sweep makes a choice, so it runs on the *validation* copy of the benchmarks
(``suite_config(..., role="val")``), never on the items that report results. :func:`choose_noise` turns the sweep into the default weakening for negatives.
"""

from __future__ import annotations

from math import nan

import pandas as pd
from tqdm.auto import tqdm

from bpo.evaluation.config import AnswerConfig
from bpo.evaluation.halbench import score_halbench, summarise_halbench
from bpo.evaluation.pope import score_pope, summarise_pope
from bpo.evaluation.suite import items_of
from bpo.evaluation.text import place_words
from bpo.evaluation.uncertainty import summary_interval
from bpo.models.generate import generate
from bpo.noise import PLACES, weakened
from bpo.precision import answering_copy
from bpo.world.scene import Scene

METRICS = ("chair_i", "chair_s", "object_recall", "place_named", "pope_adv_accuracy", "pope_adv_yes_ratio")


def _answers(model, processor, rows: list[dict], place: str | None, step: int, seed: int, budget: int,
             batch_size: int) -> list[str]:
    images, questions = [r["image"] for r in rows], [r["question"] for r in rows]
    kw = dict(max_new_tokens=budget, batch_size=batch_size, progress=False)
    with weakened(model, place, step, seed):
        return generate(model, processor, images, questions, **kw)


def _rows(ds, n: int) -> list[dict]:
    items = items_of(ds)[:n]
    return [{**item, "image": ds[i]["image"]} for i, item in enumerate(items)]


def noise_sweep(model, processor, suite: dict, steps=(300, 500, 700, 900, 999), places=PLACES,
                splits=("typical", "atypical"), n_describe: int = 16, n_pope: int = 48, seed: int = 0,
                batch_size: int = 64, progress: bool = True, n_boot: int = 1000) -> pd.DataFrame:
    """Long frame (split, place, step, metric, value, lo, hi): lo and hi bound the 95 % bootstrap
    interval of CHAIR_i and POPE-adversarial accuracy (NaN for the other metrics). The clean model is
    step 0 of every place (one run, shared), so each line starts from the same point."""
    model = answering_copy(model)
    budgets = AnswerConfig()  # the evaluation's answer lengths
    conditions = [(None, 0)] + [(p, s) for p in places for s in steps]
    data = {split: (_rows(suite[f"halbench/{split}"], n_describe), _rows(suite[f"pope-adversarial/{split}"], n_pope))
            for split in splits}
    out = []
    bar = tqdm(total=len(conditions) * len(splits), desc="noise sweep", disable=not progress)
    for split, (describe, pope) in data.items():
        for place, step in conditions:
            said = _answers(model, processor, describe, place, step, seed, budgets.max_new_tokens_describe, batch_size)
            hal_records, hal = score_halbench(describe, said)
            places_named = [Scene.from_json(r["scene"]).place in place_words(a) for r, a in zip(describe, said)]
            adv_records, adv = score_pope(pope, _answers(model, processor, pope, place, step, seed,
                                                         budgets.max_new_tokens_yes_no, batch_size))
            values = {"chair_i": hal["object_hall"], "chair_s": hal["response_hall"],
                      "object_recall": hal["object_recall"], "place_named": 100 * sum(places_named) / len(said),
                      "pope_adv_accuracy": adv["all"]["accuracy"], "pope_adv_yes_ratio": adv["all"]["yes_ratio"]}
            # 95 % intervals over the items for the numbers the choice of noise reads
            ci = {"chair_i": summary_interval(hal_records, summarise_halbench, lambda s: s["object_hall"],
                                              n_boot, seed),
                  "pope_adv_accuracy": summary_interval(adv_records, summarise_pope, lambda s: s["all"]["accuracy"],
                                                        n_boot, seed)}
            for p in ([place] if place else list(places)):
                out += [{"split": split, "place": p, "step": step, "metric": m, "value": v,
                         "lo": ci.get(m, (nan, nan))[0], "hi": ci.get(m, (nan, nan))[1]} for m, v in values.items()]
            bar.update()
    bar.close()
    return pd.DataFrame(out)


def choose_noise(sweep: pd.DataFrame, fallback: tuple[str, int], split: str = "typical",
                 keep: float = 0.9) -> tuple[str, int, str]:
    """(place, step, reason): the weakening that raises CHAIR_i the most while the model still
    names the right place in at least ``keep`` x its clean share of descriptions, so the negative
    stays about the image (the paper: "still relevant to the image input"). Ties: the smaller step.
    A model that names no object anywhere gives no CHAIR_i to rank by: then ``fallback``, said so."""
    s = sweep[sweep.split == split].pivot_table(index=["place", "step"], columns="metric", values="value",
                                                dropna=False)
    clean = s.xs(0, level="step").iloc[0]
    noisy = s.drop(index=0, level="step")
    relevant = noisy[(noisy.place_named >= keep * clean.place_named) & noisy.chair_i.notna()]
    if relevant.empty:
        return (*fallback, f"{fallback[0]} at step {fallback[1]}, the preset's default: no setting gives a CHAIR_i "
                f"to rank by with the place still named ({split} split), so the sweep cannot choose")
    best = relevant.sort_values("chair_i", ascending=False, kind="stable")
    best = best[best.chair_i == best.chair_i.iloc[0]].sort_index(level="step")
    place, step = best.index[0]
    row = best.iloc[0]
    start = "no object named" if pd.isna(clean.chair_i) else f"{clean.chair_i:.1f}"
    reason = (f"{place} at step {step}: on the {split} split CHAIR_i rises from {start} (clean) to "
              f"{row.chair_i:.1f}, the highest of the settings whose descriptions still name the right place "
              f"({row.place_named:.0f} % vs {clean.place_named:.0f} % clean; threshold {keep:.0%} of clean)")
    return place, int(step), reason
