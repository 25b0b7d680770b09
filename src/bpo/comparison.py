"""The paper's comparisons from the models' benchmark answers: Tables 3-5 with 95 % intervals,
paired tests against a reference model, and the claims table (a)-(e), every verdict read from data.

Answers come per model as a list over seeds of ``{"<benchmark>/<scene split>": responses}``; the
scene splits are shown apart and pooled ("all": typical and atypical items together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bpo.claims import Claim, Part
from bpo.evaluation.benchmarks import CAPABILITIES
from bpo.evaluation.paired import model_table, paired_table
from bpo.evaluation.text import mentioned_objects
from bpo.evaluation.uncertainty import with_ci
from bpo.paths import figures_dir

# Table 5: BPO on one kind of negative at a time. Our error injection is the prior-guided variant
# (03: SmolLM2 cannot follow the Table 1 rewriting prompt); "both" is the default pair set.
TABLE5_TYPES = {"image-weakened": ("image_weakened",), "error injection": ("prior_guided",),
                "both (default)": ("image_weakened", "prior_guided"), "self-generated": ("self_generated",)}
# The paper's Table 5 reads MM-Vet only; the extra runs answer MM-Vet and Object HalBench, not
# POPE and LLaVA-Wild, which saves about half of their answering time.
TABLE5_BENCHMARKS = ("mmvet", "halbench")
# The paper's columns: MM-Vet's capabilities and total, Object HalBench, LLaVA-Wild, POPE.
TABLE_METRICS = {"mmvet": (*CAPABILITIES, "Total"), "halbench": ("CHAIR_s", "CHAIR_i", "recall"), "wild": ("all",),
                 "pope-random": ("accuracy", "f1", "yes_ratio"), "pope-popular": ("accuracy", "f1", "yes_ratio"),
                 "pope-adversarial": ("accuracy", "f1", "yes_ratio")}
SPLITS = ("typical", "atypical", "all")
FLAT_SHARE = 0.25  # 04's rule: positives are "roughly flat" when they move less than this share of the negatives' fall


def pooled(by_key: dict[str, list]) -> dict[str, list]:
    """``by_key`` with a "<benchmark>/all" entry per benchmark: its scene splits concatenated in key order."""
    out = dict(by_key)
    for key, values in by_key.items():
        all_key = f"{key.split('/')[0]}/all"
        out[all_key] = out.get(all_key, []) + list(values)
    return out


_RANK = {key: i for i, key in enumerate((b, m) for b, ms in TABLE_METRICS.items() for m in ms)}


def _keep(frame: pd.DataFrame) -> pd.DataFrame:
    """The table's metrics only, in the paper's column order, scene splits in SPLITS order."""
    rank = pd.Series([_RANK.get((b, m)) for b, m in zip(frame.benchmark, frame.metric)], index=frame.index)
    out = frame.assign(_rank=rank, _split=frame.split.map(SPLITS.index))[rank.notna()]
    return out.sort_values(["_rank", "_split"]).drop(columns=["_rank", "_split"]).reset_index(drop=True)


def values_table(items: dict, answers: dict[str, list[dict]], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Long frame (model, benchmark, split, metric, value, lo, hi) of the table's metrics, each
    model's mean over its seeds with the interval over items and seeds."""
    items = pooled(items)
    frames = [model_table(items, [pooled(r) for r in runs], n_boot, seed).assign(model=name)
              for name, runs in answers.items()]
    return _keep(pd.concat(frames, ignore_index=True))


def wide_values(values: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """One row per (benchmark, metric, split), one column per model: 'value [lo, hi]'."""
    v = values.assign(text=[with_ci(x, lo, hi, digits) for x, lo, hi in zip(values.value, values.lo, values.hi)])
    wide = v.pivot(index=["benchmark", "metric", "split"], columns="model", values="text")
    wide = wide[list(dict.fromkeys(values.model))]  # models in the order given
    keys = _keep(values.drop_duplicates(["benchmark", "metric", "split"]))[["benchmark", "metric", "split"]]
    return keys.merge(wide.reset_index(), on=["benchmark", "metric", "split"], how="left")


def compare(items: dict, a: list[dict], b: list[dict], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired test of B against A on the table's metrics (``paired_table`` on pooled splits too)."""
    items = pooled(items)
    return _keep(paired_table(items, [pooled(r) for r in a], [pooled(r) for r in b], n_boot, seed))


def comparison_text(paired: pd.DataFrame, a: str, b: str, digits: int = 1) -> pd.DataFrame:
    """``compare``'s frame printed: A, B, 'B - A [lo, hi]', p and the verdict on B."""
    return pd.DataFrame({"benchmark": paired.benchmark, "metric": paired.metric, "split": paired.split,
                         a: paired.a.round(digits), b: paired.b.round(digits),
                         f"{b} - {a}": [with_ci(d, lo, hi, digits) for d, lo, hi in
                                        zip(paired["diff"], paired.diff_lo, paired.diff_hi)],
                         "p": paired.p.round(3), "verdict": paired.verdict})


def saved_table(name: str, preset: str) -> pd.DataFrame | None:
    """A table an earlier notebook saved as ``figures/<name>_<preset>.csv``, or None if none did."""
    path = figures_dir() / f"{name}_{preset}.csv"
    return pd.read_csv(path) if path.exists() else None


def absent_objects(text: str, truth: set[str]) -> list[str]:
    """The objects ``text`` names (not negated) that are not in ``truth``: its hallucinations."""
    return sorted(mentioned_objects(text, include_negated=False) - set(truth))


def _part(paired: pd.DataFrame, label: str, benchmark: str, metric: str, split: str, better: int) -> Part:
    row = paired[(paired.benchmark == benchmark) & (paired.metric == metric) & (paired.split == split)]
    if row.empty:
        return Part(label, float("nan"), float("nan"), float("nan"), better)
    r = row.iloc[0]
    return Part(label, float(r["diff"]), float(r.diff_lo), float(r.diff_hi), better)


def _helps_and_cuts(paired: pd.DataFrame, b: str, a: str) -> list[Part]:
    """Helpfulness up (MM-Vet Total) and hallucination down (CHAIR_i), all scenes and atypical ones."""
    return [_part(paired, f"{b} - {a} MM-Vet Total", "mmvet", "Total", "all", +1),
            _part(paired, f"{b} - {a} CHAIR_i (all scenes)", "halbench", "CHAIR_i", "all", -1),
            _part(paired, f"{b} - {a} CHAIR_i (atypical)", "halbench", "CHAIR_i", "atypical", -1)]


def takeover_parts(takeover: pd.DataFrame, place: str = "pixels") -> list[Part]:
    """Claim (a) from 02's table, at the strongest noise of ``place``: the share of images on which
    the prior's noun beats the true object rises over the same images' clean share (paired), and
    ends a majority (minus 50 %). Both are needed: a prior that already won on clean images has
    nothing left to take over. A table saved before 02 measured the rise gets a NaN rise part."""
    rows = takeover[takeover.place == place]
    if rows.empty:
        raise ValueError(f"takeover table has no rows for noise place {place!r}")
    top = rows[rows.step == rows.step.max()].iloc[0]
    step = int(top.step)
    rise = [top.get(f"prior_rise_%{end}", np.nan) for end in ("", "_lo", "_hi")]
    rise_label = f"prior wins at {place} step {step} minus step {int(rows.step.min())} (same images), points" + (
        "" if np.isfinite(rise[0]) else " (not in this table: re-run 02)")
    return [Part(rise_label, *rise, +1),
            Part(f"prior wins at {place} step {step}, % of images - 50", top["prior_wins_%"] - 50,
                 top["prior_wins_%_lo"] - 50, top["prior_wins_%_hi"] - 50, +1)]


def figure6_parts(shape: pd.DataFrame) -> list[Part]:
    """Claim (e) from 04's shape table: negatives fall, SFT's ground truth rises, and positives stay
    flat, tested as equivalence: the positives' whole interval within FLAT_SHARE of the fall
    (abs(change) / fall - FLAT_SHARE, its interval below 0)."""
    s = shape.set_index("curve")
    neg, pos = s.loc["BPO negatives"], s.loc["BPO positives"]
    fall = abs(neg.change)
    near = 0.0 if pos.lo <= 0 <= pos.hi else min(abs(pos.lo), abs(pos.hi))
    parts = [Part("BPO negatives, change (nats)", neg.change, neg.lo, neg.hi, -1),
             Part(f"BPO positives, abs(change) / negatives' fall - {FLAT_SHARE}", abs(pos.change) / fall - FLAT_SHARE,
                  near / fall - FLAT_SHARE, max(abs(pos.lo), abs(pos.hi)) / fall - FLAT_SHARE, -1)]
    if "SFT ground truth" in s.index:
        sft = s.loc["SFT ground truth"]
        parts.append(Part("SFT ground truth, change (nats)", sft.change, sft.lo, sft.hi, +1))
    return parts


def paper_claims(takeover: pd.DataFrame | None, bpo_vs_base: pd.DataFrame, bpo_vs_sft: pd.DataFrame,
                 weakened_vs_self: pd.DataFrame | None, shape: pd.DataFrame | None) -> list[Claim]:
    """The claims (a)-(e) with their evidence; a claim whose run is missing gets a NaN part
    (verdict "unclear (no CI)") rather than disappearing."""
    nan = [Part("not measured in this run", np.nan, np.nan, np.nan, +1)]
    return [
        Claim("a", "Under noise the language prior takes over", takeover_parts(takeover) if takeover is not None else nan),
        Claim("b", "BPO improves helpfulness and cuts hallucination", _helps_and_cuts(bpo_vs_base, "BPO", "base")),
        Claim("c", "BPO beats SFT", _helps_and_cuts(bpo_vs_sft, "BPO", "SFT")),
        Claim("d", "Image-weakened negatives beat self-generated ones (MM-Vet Total, as Table 5)",
              [_part(weakened_vs_self, "image-weakened - self-generated MM-Vet Total", "mmvet", "Total", "all", +1)]
              if weakened_vs_self is not None else nan),
        Claim("e", "Under BPO the negatives' log-prob falls while the positives stay flat (SFT's ground truth rises)",
              figure6_parts(shape) if shape is not None else nan),
    ]


# The README's compact tables: one column per headline number (CHAIR lower is better).
COMPACT = {"MM-Vet Total": ("mmvet", "Total"), "CHAIR_s ↓": ("halbench", "CHAIR_s"), "CHAIR_i ↓": ("halbench", "CHAIR_i"),
           "recall": ("halbench", "recall"), "Wild": ("wild", "all"), "POPE rand. acc.": ("pope-random", "accuracy"),
           "POPE adv. acc.": ("pope-adversarial", "accuracy"), "POPE adv. yes %": ("pope-adversarial", "yes_ratio")}


def compact_table(values: pd.DataFrame, models: list[str], split: str = "all", digits: int = 1) -> pd.DataFrame:
    """One row per model, one column per headline number of ``split``: 'value [lo, hi]' ('' where
    the model was not read on that benchmark)."""
    v = values[values.split == split].set_index(["model", "benchmark", "metric"])
    rows = []
    for model in models:
        row = {"model": model}
        for column, (bench, metric) in COMPACT.items():
            hit = v.index.isin([(model, bench, metric)])
            row[column] = with_ci(*v[hit][["value", "lo", "hi"]].iloc[0], digits) if hit.any() else ""
        rows.append(row)
    return pd.DataFrame(rows)
