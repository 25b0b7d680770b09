"""Headline tables and plain-language readings of benchmark scores, so a notebook states what the
numbers say rather than what the paper expects."""

from __future__ import annotations

import pandas as pd

HEADLINE = {"mmvet": ["Total"], "halbench": ["CHAIR_s", "CHAIR_i", "recall"], "wild": ["all"],
            "pope-random": ["accuracy"], "pope-popular": ["accuracy"], "pope-adversarial": ["accuracy", "yes_ratio"]}


def headline(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's headline metrics, long format (benchmark, split, metric, value)."""
    keep = scores.apply(lambda r: r.metric in HEADLINE.get(r.benchmark, []), axis=1)
    return scores[keep].reset_index(drop=True)


def split_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per headline metric, typical and atypical side by side, and their difference."""
    # pivot, not pivot_table: a NaN (CHAIR when no object is named) stays a row instead of vanishing
    table = headline(scores).pivot(index=["benchmark", "metric"], columns="split", values="value")
    table["atypical - typical"] = table["atypical"] - table["typical"]
    return table.reset_index()[["benchmark", "metric", "typical", "atypical", "atypical - typical"]]


def _value(scores: pd.DataFrame, bench: str, split: str, metric: str) -> float:
    row = scores[(scores.benchmark == bench) & (scores.split == split) & (scores.metric == metric)]
    return float(row.value.iloc[0]) if len(row) else float("nan")


def read_regime(scores: pd.DataFrame) -> str:
    """Which regime the numbers show: the paper's (grounded on typical scenes, misled by the prior
    on atypical ones), a blind model, a near-perfect one, or something else, with the evidence."""
    chair_t, chair_a = _value(scores, "halbench", "typical", "CHAIR_i"), _value(scores, "halbench", "atypical", "CHAIR_i")
    rec_t, rec_a = _value(scores, "halbench", "typical", "recall"), _value(scores, "halbench", "atypical", "recall")
    pope_r, pope_adv = (_value(scores, f"pope-{s}", "atypical", "accuracy") for s in ("random", "adversarial"))
    evidence = (f"CHAIR_i {chair_t:.1f} (typical) vs {chair_a:.1f} (atypical); object recall {rec_t:.1f} vs {rec_a:.1f}; "
                f"POPE accuracy on atypical scenes: random {pope_r:.1f}, adversarial {pope_adv:.1f}.")
    if max(pope_r, pope_adv) < 60 and max(rec_t, rec_a) < 20:
        verdict = "The model is close to **blind**: it barely names what is there and answers POPE near chance."
    elif chair_a < 5 and chair_t < 5 and pope_adv > 95:
        verdict = "The model is **near perfect** on this world: the prior has nothing left to override."
    elif chair_a > chair_t and pope_adv < pope_r:
        verdict = ("The paper's regime holds: the model is better grounded on typical scenes and **misled by its "
                   "prior** on atypical ones (more hallucinated objects, and adversarial POPE below random POPE).")
    else:
        verdict = "The paper's regime does **not** clearly hold here: the prior does not make atypical scenes worse on every count."
    caveats = []
    if chair_t > 30:
        caveats.append(f"Even on typical scenes it names many absent objects (CHAIR_i {chair_t:.1f}): much of what "
                       "it says comes from the place's prior, not from the image.")
    yes = _value(scores, "pope-adversarial", "atypical", "yes_ratio")
    if yes > 85:
        caveats.append(f"It answers yes to {yes:.0f} % of POPE questions, so its POPE accuracy measures that bias "
                       "more than its sight.")
    return " ".join([verdict, evidence, *caveats])


def truncation_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, the share (%) of answers cut at their token budget, typical and atypical
    side by side (from ``score_suite(..., truncated=...)``)."""
    cut = scores[scores.metric == "truncated_%"]
    return cut.pivot(index="benchmark", columns="split", values="value").reset_index()
