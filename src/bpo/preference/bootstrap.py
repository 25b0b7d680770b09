"""Building the bootstrapped preference data set from the world's three data sources.

For each (image, question, ground truth) of the detail, textvqa and conversation sources, the
base model makes one negative of each requested type:

- ``image_weakened``: sampled from the model shown its image with diffusion noise (the paper);
- ``error_injection``: the LM component rewrites the ground truth with the Table 1 prompt;
- ``prior_guided``: the LM component swaps one fact for its most likely wrong alternative;
- ``self_generated``: sampled from the model shown the clean image (Table 5's ablation);
- ``contrastive``: the released code's VCD contrastive decoding (a named option, off by default).

Everything made is kept in one long frame (one row per negative, with the scene for checking), so
the statistics can compare every type; :func:`candidates` turns the chosen types into
:class:`~bpo.preference.dataset.Candidate` records for :func:`~bpo.preference.dataset.build_pairs`.
The rows used come after those the base model was tuned on, so no ground truth was seen in stage 2.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from bpo.cache import atomic_dir, save_dataset, stage_dir, stage_params
from bpo.precision import answering_copy
from bpo.preference.config import PreferenceConfig, TOKEN_BUDGET
from bpo.preference.contrastive import contrastive_negatives
from bpo.preference.dataset import NEGATIVE_TYPES, Candidate, Negative
from bpo.evaluation.facts import false_facts
from bpo.evaluation.uncertainty import mean_interval
from bpo.preference.negatives import error_injection_negatives, prior_guided_negative, sample_negatives
from bpo.world.config import SOURCES
from bpo.world.scene import Scene, item_rng

def ground_truths(world: dict, cfg: PreferenceConfig) -> pd.DataFrame:
    """One (question, ground truth) per row: rows ``skip .. skip + n_per_source`` of each source,
    one user turn of each picked at random (seeded per row)."""
    out = []
    for source in SOURCES:
        ds = world[source]
        if cfg.skip + cfg.n_per_source > len(ds):
            raise ValueError(f"world source {source!r} has {len(ds)} rows; skip={cfg.skip} + "
                             f"n_per_source={cfg.n_per_source} needs more: lower n_per_source or build a larger world")
        rows = ds.select(range(cfg.skip, cfg.skip + cfg.n_per_source)).select_columns(["id", "conversations", "scene"])
        for i, row in enumerate(rows):
            turns = row["conversations"]
            k = 2 * int(item_rng(cfg.seed, f"preference-{source}", i).integers(len(turns) // 2))
            out.append({"candidate_id": f"{source}-{cfg.skip + i:06d}", "source": source, "row": cfg.skip + i,
                        "scene_id": row["id"], "scene": row["scene"], "question": turns[k]["content"],
                        "chosen": turns[k + 1]["content"]})
    return pd.DataFrame(out)


def _images(world: dict, truths: pd.DataFrame) -> list:
    return [world[s][int(r)]["image"] for s, r in zip(truths.source, truths.row)]


def make_negatives(model, processor, world: dict, cfg: PreferenceConfig,
                   progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(negatives, timings): one row per (ground truth, negative type) with the response and how it
    was made; per type, the seconds spent and tokens generated. Every sampled type uses the same
    seeds, so image-weakened and self-generated negatives differ only by the weakening."""
    truths = ground_truths(world, cfg)
    model = answering_copy(model)
    tok = processor.tokenizer
    rows, timings = [], []
    for ntype in tqdm(cfg.negative_types, desc="negative types", disable=not progress):
        start = time.perf_counter()
        responses, infos = [], []
        for source, group in truths.groupby("source", sort=False):
            kw = dict(seed=cfg.seed, temperature=cfg.temperature, max_new_tokens=TOKEN_BUDGET[source],
                      batch_size=cfg.batch_size, progress=progress)
            questions = list(group.question)
            if ntype in ("image_weakened", "self_generated"):
                place = cfg.noise_place if ntype == "image_weakened" else None
                out = sample_negatives(model, processor, _images(world, group), questions, place, cfg.noise_step, **kw)
            elif ntype == "contrastive":
                out = contrastive_negatives(model, processor, _images(world, group), questions, cfg.noise_place,
                                            cfg.noise_step, alpha=cfg.contrastive_alpha, **kw)
            elif ntype == "error_injection":
                out = error_injection_negatives(model, processor, questions, list(group.chosen), **kw)
            else:
                out = [prior_guided_negative(model, processor, q, a, Scene.from_json(scene),
                                             item_rng(cfg.seed, f"prior-guided-{source}", i))
                       for i, (q, a, scene) in enumerate(zip(questions, group.chosen, group.scene))]
            for made in out:
                response, info = made if isinstance(made, tuple) else ("" if made is None else made, {})
                responses.append(response)
                infos.append(json.dumps(info))
        seconds = time.perf_counter() - start
        weakened = ntype in ("image_weakened", "contrastive")
        rows.append(truths.assign(negative_type=ntype, response=responses, info=infos,
                                  noise_place=cfg.noise_place if weakened else None,
                                  noise_step=cfg.noise_step if weakened else None))
        n_tokens = sum(len(ids) for ids in tok(responses, add_special_tokens=False).input_ids)
        timings.append({"negative_type": ntype, "responses": len(responses), "seconds": seconds,
                        "tokens": n_tokens, "tokens_per_s": n_tokens / seconds})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(timings)


def check_negatives(frame: pd.DataFrame) -> pd.DataFrame:
    """Each negative checked against its scene: words, the false facts it states, whether it
    differs from the ground truth in a fact the world can check, hallucinated objects."""
    facts = [sorted(map(str, false_facts(r, Scene.from_json(s)))) for r, s in zip(frame.response, frame.scene)]
    return frame.assign(
        words=frame.response.str.split().str.len(),
        false_facts=facts,
        differs=[bool(f) for f in facts],
        hallucinated_objects=[sum(f.startswith("('object'") for f in fs) for fs in facts],
        empty=frame.response.str.strip() == "",
        identical=frame.response.str.split().str.join(" ") == frame.chosen.str.split().str.join(" "),
    )


def fact_difference(checked: pd.DataFrame, by: tuple[str, ...] = ("negative_type",)) -> pd.DataFrame:
    """Per group: negatives, the share (%) that state a fact the world contradicts (with its 95 %
    bootstrap interval over negatives), empty and identical-to-truth shares, mean words and mean
    hallucinated objects."""
    g = checked.groupby(list(by), sort=False)
    ci = g.differs.apply(lambda d: mean_interval(100.0 * d.to_numpy())[1:])
    return pd.DataFrame({
        "negatives": g.size(),
        "fact_difference_%": 100 * g.differs.mean(),
        "fact_difference_%_lo": ci.str[0],
        "fact_difference_%_hi": ci.str[1],
        "empty_%": 100 * g.empty.mean(),
        "identical_%": 100 * g.identical.mean(),
        "words": g.words.mean(),
        "hallucinated_objects": g.hallucinated_objects.mean(),
    })


def choose_injection(checked: pd.DataFrame) -> str:
    """The error-injection variant whose negatives differ from the truth in a checkable fact more
    often (the Table 1 rewrite on a tie: it is the paper's)."""
    rates = fact_difference(checked)["fact_difference_%"]
    present = [t for t in ("error_injection", "prior_guided") if t in rates.index]
    if not present:
        raise ValueError("no error-injection negatives to choose from")
    return max(present, key=lambda t: (rates[t], t == "error_injection"))


def candidates(checked: pd.DataFrame, world: dict, negative_types: tuple[str, ...]) -> list[Candidate]:
    """One :class:`Candidate` per ground truth, with its negatives of ``negative_types`` (empty
    negatives stay in: ``build_pairs`` counts them)."""
    picked = checked[checked.negative_type.isin(negative_types)]
    out = []
    for cid, group in picked.groupby("candidate_id", sort=False):
        first = group.iloc[0]
        # A parquet round trip turns missing places and steps into NaN.
        negatives = [Negative(r.response, r.negative_type, None if pd.isna(r.noise_place) else r.noise_place,
                              None if pd.isna(r.noise_step) else int(r.noise_step)) for r in group.itertuples()]
        out.append(Candidate(cid, first.question, world[first.source][int(first.row)]["image"], (first.chosen,),
                             negatives, first.source, first.scene_id))
    return out


def load_or_make_negatives(preset: str, base_key: str, model, processor, world: dict, cfg: PreferenceConfig,
                           progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`make_negatives`, cached under ``data/<preset>/preference/<key>`` (parquet)."""
    target = stage_dir(preset, "preference", {"base": base_key, "config": asdict(cfg)})
    if not (target / "negatives.parquet").exists():
        frame, timings = make_negatives(model, processor, world, cfg, progress)
        with atomic_dir(target, stage_params("preference", {"base": base_key, "config": asdict(cfg)})) as tmp:
            frame.to_parquet(tmp / "negatives.parquet")
            timings.to_parquet(tmp / "timings.parquet")
    return pd.read_parquet(target / "negatives.parquet"), pd.read_parquet(target / "timings.parquet")


def pairs_dir(preset: str, base_key: str, cfg: PreferenceConfig) -> Path:
    """Where the pairs of this configuration are saved (``03_preference_dataset``)."""
    return stage_dir(preset, "preference", {"base": base_key, "config": asdict(cfg)}) / "dataset"


def save_pairs(ds, report, training_types: tuple[str, ...], target: Path) -> Path:
    """The pairs data set, its validation report and the negative types training uses by default."""
    with atomic_dir(target) as tmp:
        save_dataset(ds, tmp / "pairs")
        (tmp / "report.json").write_text(json.dumps({**report.to_dict(), "training_types": list(training_types)},
                                                    indent=1))
    return target


def load_pairs(target: Path):
    """(pairs data set, report dict with ``training_types``) saved by :func:`save_pairs`."""
    import datasets

    if not (target / "report.json").exists():
        raise FileNotFoundError(f"no preference pairs at {target}: run notebooks/03_preference_dataset.ipynb first")
    return datasets.load_from_disk(target / "pairs"), json.loads((target / "report.json").read_text())
