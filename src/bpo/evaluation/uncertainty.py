"""95 % confidence intervals for benchmark scores and other per-item means: percentile bootstrap
over items.

A benchmark score is a function of per-item records (a POPE answer, the objects one description
names), so its sampling noise is that of the items: we draw the items with replacement ``n_boot``
times, recompute the judge's summary from the drawn records (the same ``summarise_*`` function the
judge uses, so CHAIR_i stays a ratio of sums, not a mean of ratios) and take the 2.5 and 97.5
percentiles. The point value is the judge's own number on all items, unchanged. Typical and
atypical splits hold different scenes, so the interval of their difference combines independent
replicates of each. Replicates that come out NaN (no object named in a resample) are left out of
the percentiles.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from bpo.evaluation.halbench import score_halbench, summarise_halbench
from bpo.evaluation.mmvet import score_mmvet, summarise_mmvet
from bpo.evaluation.pope import score_pope, summarise_pope
from bpo.evaluation.suite import benchmark_of, summary_rows
from bpo.evaluation.wild import score_wild, summarise_wild

LEVEL = 0.95
_JUDGES = {"mmvet": (score_mmvet, summarise_mmvet), "halbench": (score_halbench, summarise_halbench),
           "wild": (score_wild, summarise_wild), "pope": (score_pope, summarise_pope)}


def _rng(seed: int, name: str) -> np.random.Generator:
    # One stream per benchmark, so adding a benchmark does not move another's interval.
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def bootstrap_replicates(items: dict[str, list[dict]], responses: dict[str, list[str]], n_boot: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """Long frame (benchmark, split, metric, replicate, value): every headline-able metric of every
    benchmark in ``responses``, recomputed on ``n_boot`` resamples of its items."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"bootstrap_replicates: n_boot must be an int >= 2, got {n_boot!r}")
    frames = []
    for key, answers in responses.items():
        if key not in items:
            raise ValueError(f"bootstrap_replicates: responses for {key!r}, which is not among the items")
        judge, summarise = _JUDGES[benchmark_of(key)]
        records, _ = judge(items[key], answers)
        draws = _rng(seed, key).integers(0, len(records), size=(n_boot, len(records)))
        rows = []
        for b, idx in enumerate(draws):
            rows += [{**r, "replicate": b} for r in summary_rows(key, summarise([records[i] for i in idx]))]
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def percentile_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """(lo, hi): the central ``level`` percentile interval of the finite ``values`` (NaN, NaN if none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(v, [tail, 100 - tail])
    return float(lo), float(hi)


def with_intervals(scores: pd.DataFrame, replicates: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """``scores`` (from ``score_suite``) with columns lo and hi; metrics with no replicates (such as
    ``truncated_%``) get NaN."""
    keys = ["benchmark", "split", "metric"]
    bounds = replicates.groupby(keys).value.apply(lambda v: percentile_interval(v, level))
    bounds = pd.DataFrame(bounds.tolist(), index=bounds.index, columns=["lo", "hi"]).reset_index()
    return scores.merge(bounds, on=keys, how="left")


def difference_intervals(replicates: pd.DataFrame, a: str = "atypical", b: str = "typical",
                         level: float = LEVEL) -> pd.DataFrame:
    """Per (benchmark, metric): the interval of split ``a`` minus split ``b`` from paired replicate
    numbers (independent draws of each split's items)."""
    wide = replicates.pivot_table(index=["benchmark", "metric", "replicate"], columns="split", values="value",
                                  dropna=False)
    diff = (wide[a] - wide[b]).groupby(level=["benchmark", "metric"]).apply(lambda v: percentile_interval(v, level))
    return pd.DataFrame(diff.tolist(), index=diff.index, columns=["lo", "hi"]).reset_index()


def summary_interval(records: list[dict], summarise, pick, n_boot: int = 1000, seed: int = 0,
                     level: float = LEVEL) -> tuple[float, float]:
    """(lo, hi) of ``pick(summarise(records))`` over ``n_boot`` resamples of the records: the interval
    of one number of a judge's summary (as ``bootstrap_replicates`` does for whole benchmarks)."""
    idx = np.random.default_rng(seed).integers(0, len(records), size=(n_boot, len(records)))
    return percentile_interval([pick(summarise([records[i] for i in row])) for row in idx], level)


def mean_interval(values, n_boot: int = 1000, seed: int = 0, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, lo, hi) of per-item ``values`` by the same percentile bootstrap (for shares and means
    that are not benchmark scores: takeover rates, fact differences)."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        raise ValueError("mean_interval: no values")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    return (float(v.mean()), *percentile_interval(v[idx].mean(axis=1), level))


def with_ci(value: float, lo: float, hi: float, digits: int = 1) -> str:
    """'61.2 [55.0, 67.1]'; a missing interval prints the value alone."""
    if not np.isfinite(value):
        return "nan"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def items_for_half_width(n_items: int, half_width: float, target: float) -> int:
    """Items needed for an interval of half-width ``target``, from one measured with ``n_items``
    (half-width shrinks as 1/sqrt(n))."""
    if n_items < 1 or not half_width > 0 or not target > 0:
        raise ValueError(f"items_for_half_width: need n_items >= 1 and positive widths, got {n_items}, "
                         f"{half_width}, {target}")
    return int(np.ceil(n_items * (half_width / target) ** 2))
