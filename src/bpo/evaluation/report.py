"""Headline tables and plain-language readings of benchmark scores, so a notebook states what the
numbers say rather than what the paper expects."""

from __future__ import annotations

import pandas as pd

from bpo.evaluation.uncertainty import (difference_intervals, items_for_half_width, percentile_interval, with_ci,
                                        with_intervals)

HEADLINE = {"mmvet": ["Total"], "halbench": ["CHAIR_s", "CHAIR_i", "recall"], "wild": ["all"],
            "pope-random": ["accuracy", "yes_ratio"], "pope-popular": ["accuracy"], "pope-adversarial": ["accuracy", "yes_ratio"]}
DIFF = "atypical - typical"


def headline(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's headline metrics, long format (benchmark, split, metric, value)."""
    keep = scores.apply(lambda r: r.metric in HEADLINE.get(r.benchmark, []), axis=1)
    return scores[keep].reset_index(drop=True)


def split_table(scores: pd.DataFrame, replicates: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per headline metric, typical and atypical side by side, and their difference; with
    bootstrap ``replicates`` (``uncertainty.bootstrap_replicates``) each gets ``_lo``/``_hi`` columns:
    its 95 % interval."""
    # pivot, not pivot_table: a NaN (CHAIR when no object is named) stays a row instead of vanishing
    table = headline(scores).pivot(index=["benchmark", "metric"], columns="split", values="value")
    table[DIFF] = table["atypical"] - table["typical"]
    table = table.reset_index()[["benchmark", "metric", "typical", "atypical", DIFF]]
    if replicates is None:
        return table
    keys = ["benchmark", "metric"]
    for split in ("typical", "atypical"):
        ci = with_intervals(scores[scores.split == split], replicates)[[*keys, "lo", "hi"]]
        table = table.merge(ci.rename(columns={"lo": f"{split}_lo", "hi": f"{split}_hi"}), on=keys, how="left")
    diff = difference_intervals(replicates).rename(columns={"lo": f"{DIFF}_lo", "hi": f"{DIFF}_hi"})
    return table.merge(diff, on=keys, how="left")


def ci_columns(table: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """``table`` with every column that has ``_lo``/``_hi`` partners printed as 'value [lo, hi]'."""
    out = table.copy()
    for col in [c for c in table.columns if f"{c}_lo" in table.columns]:
        out[col] = [with_ci(v, lo, hi, digits) for v, lo, hi in zip(table[col], table[f"{col}_lo"], table[f"{col}_hi"])]
        out = out.drop(columns=[f"{col}_lo", f"{col}_hi"])
    return out


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


# Issue 9's targets for the base model (the paper's regime: it sees, yet its prior still bites).
# (label, benchmark, split, metric, low, high); a ratio row divides atypical by typical.
REGIME_TARGETS = (
    ("typical CHAIR_i", "halbench", "typical", "CHAIR_i", None, 20.0),
    ("typical object recall", "halbench", "typical", "recall", 60.0, None),
    ("POPE-random accuracy (typical)", "pope-random", "typical", "accuracy", 80.0, None),
    ("POPE-random yes-ratio (typical)", "pope-random", "typical", "yes_ratio", 35.0, 65.0),
    ("atypical / typical CHAIR_i", "halbench", "ratio", "CHAIR_i", 1.5, None),
    ("POPE random - adversarial accuracy (atypical)", "pope", "atypical", "accuracy", 5.0, None),
)


def _replicate_values(replicates: pd.DataFrame, bench: str, split: str, metric: str) -> pd.Series:
    if split == "ratio":
        a, t = (_replicate_values(replicates, bench, s, metric) for s in ("atypical", "typical"))
        return a / t
    if bench == "pope":
        r, adv = (_replicate_values(replicates, f"pope-{s}", split, metric) for s in ("random", "adversarial"))
        return r - adv
    sel = replicates[(replicates.benchmark == bench) & (replicates.split == split) & (replicates.metric == metric)]
    return sel.set_index("replicate").value


def regime_checks(scores: pd.DataFrame, replicates: pd.DataFrame) -> pd.DataFrame:
    """Issue 9's regime targets, each with its value, 95 % interval, target and verdict: "met" or
    "missed" when the whole interval lies on one side, "unclear" when it straddles the bound."""
    rows = []
    for label, bench, split, metric, low, high in REGIME_TARGETS:
        if split == "ratio":
            value = _value(scores, bench, "atypical", metric) / _value(scores, bench, "typical", metric)
        elif bench == "pope":
            value = _value(scores, "pope-random", split, metric) - _value(scores, "pope-adversarial", split, metric)
        else:
            value = _value(scores, bench, split, metric)
        lo, hi = percentile_interval(_replicate_values(replicates, bench, split, metric))
        bounds = [b for b in (low, high) if b is not None]
        inside = (low is None or value >= low) and (high is None or value <= high)
        if value != value:  # NaN: the benchmark was not run, or named no object
            verdict = "not measured"
        else:
            verdict = "unclear" if any(lo < b < hi for b in bounds) else ("met" if inside else "missed")
        target = " and ".join(([f">= {low:g}"] if low is not None else []) + ([f"<= {high:g}"] if high is not None else []))
        rows.append({"criterion": label, "value": value, "lo": lo, "hi": hi, "target": target, "verdict": verdict})
    return pd.DataFrame(rows)


def prior_bites(checks: pd.DataFrame) -> str:
    """'yes' if either prior criterion is met, 'no' if both are missed, else 'unclear'."""
    verdicts = set(checks[checks.criterion.isin([REGIME_TARGETS[4][0], REGIME_TARGETS[5][0]])].verdict)
    return "yes" if "met" in verdicts else ("no" if verdicts == {"missed"} else "unclear")


def resolution_table(scores: pd.DataFrame, replicates: pd.DataFrame, n_items: dict[str, int],
                     difference: float = 5.0) -> pd.DataFrame:
    """Per headline metric: items behind it, the half-width of its 95 % interval, and the items a
    benchmark would need for two models ``difference`` points apart to be told apart (the
    difference of two independent estimates has sqrt(2) times the half-width of one)."""
    table = with_intervals(headline(scores), replicates)
    table["items"] = [n_items[f"{b}/{s}"] for b, s in zip(table.benchmark, table.split)]
    table["half_width"] = (table.hi - table.lo) / 2
    target = difference / 2 ** 0.5
    table[f"items for {difference:g} pts"] = [items_for_half_width(n, hw, target) if hw > 0 else n
                                              for n, hw in zip(table["items"], table.half_width)]
    return table.drop(columns=["value", "lo", "hi"])
