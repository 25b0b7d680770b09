"""Paired bootstrap of model B against model A on the same benchmark items, over items and seeds.

Each side is a list of seeds (training runs), each seed's responses a dict ``"<benchmark>/<scene
split>" -> responses`` in item order, as ``score_suite`` takes them. One replicate draws the items
with replacement, the *same* indices for A and B (that is the pairing: an easy item is easy for
both, so its difficulty cancels in B - A), and draws each side's seeds with replacement,
independently (A's run 1 has nothing to do with B's run 1). A side's number is the mean over its
drawn seeds of the judge's summary on the drawn items, recomputed with the judge's ``summarise_*``
as in ``uncertainty``, so CHAIR_i stays a ratio of sums. The replicate records B - A.

``paired_table`` gives, per benchmark, split and metric: A and B (mean over seeds on all items),
their difference, its percentile interval and a two-sided bootstrap p-value, 2 x min(share of
replicate differences <= 0, share >= 0), capped at 1. As in ``uncertainty``, NaN replicates (no
object named in a resample) are left out, and each benchmark key has its own random stream.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bpo.evaluation.benchmarks import CAPABILITIES, WILD_CATEGORIES
from bpo.evaluation.suite import benchmark_of, summary_rows
from bpo.evaluation.uncertainty import _JUDGES, LEVEL, _rng, percentile_interval

# The metrics ``summary_rows`` gives, and which way is better: +1 higher, -1 lower, 0 neither
# (yes_ratio measures a bias towards "yes", not quality, so it gets no verdict).
_DIRECTIONS = {
    "pope": {"accuracy": 1, "precision": 1, "recall": 1, "f1": 1, "yes_ratio": 0},
    "halbench": {"CHAIR_s": -1, "CHAIR_i": -1, "recall": 1},
    "mmvet": {m: 1 for m in (*CAPABILITIES, "Total")},
    "wild": {m: 1 for m in (*WILD_CATEGORIES, "all")},
}


def _check(items, responses_a, responses_b, n_boot) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"paired: n_boot must be an int >= 2, got {n_boot!r}")
    for side, seeds in (("A", responses_a), ("B", responses_b)):
        if not seeds:
            raise ValueError(f"paired: side {side} has no seeds (an empty list of responses)")
    keys = set(responses_a[0])
    for side, seeds in (("A", responses_a), ("B", responses_b)):
        for s, responses in enumerate(seeds):
            if set(responses) != keys:
                raise ValueError(f"paired: side {side} seed {s} has benchmarks {sorted(responses)}, but side A "
                                 f"seed 0 has {sorted(keys)}; both sides need the same benchmarks in every seed")
            for key, answers in responses.items():
                if key not in items:
                    raise ValueError(f"paired: benchmark {key!r} (side {side} seed {s}) is not among the items")
                if benchmark_of(key) not in _JUDGES:
                    raise ValueError(f"paired: benchmark {key!r} has no judge; expected one of {sorted(_JUDGES)}")
                if not items[key]:
                    raise ValueError(f"paired: benchmark {key!r} has no items")
                if len(answers) != len(items[key]):
                    raise ValueError(f"paired: benchmark {key!r}, side {side}, seed {s}: {len(answers)} responses "
                                     f"for {len(items[key])} items")


def _judged(items, responses_a, responses_b, n_boot):
    """Per benchmark key: (summarise, A's records per seed, B's records per seed)."""
    _check(items, responses_a, responses_b, n_boot)
    out = {}
    for key in responses_a[0]:
        judge, summarise = _JUDGES[benchmark_of(key)]
        recs_a = [judge(items[key], r[key])[0] for r in responses_a]
        # model_table passes one model as both sides: judge it once
        recs_b = recs_a if responses_b is responses_a else [judge(items[key], r[key])[0] for r in responses_b]
        out[key] = (summarise, recs_a, recs_b)
    return out


def _values(key: str, summary: dict) -> dict:
    return {(r["benchmark"], r["split"], r["metric"]): r["value"] for r in summary_rows(key, summary)}


def _side(key, summarise, seeds_records, idx, drawn) -> dict:
    """Mean over the drawn seeds of each metric on the drawn items (each distinct seed judged once)."""
    picks, counts = np.unique(drawn, return_counts=True)
    per_seed = [_values(key, summarise([seeds_records[s][i] for i in idx])) for s in picks]
    return {m: float(np.dot(counts, [v[m] for v in per_seed]) / counts.sum()) for m in per_seed[0]}


def _replicates(judged, n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for key, (summarise, recs_a, recs_b) in judged.items():
        rng = _rng(seed, key)  # one stream per benchmark, drawn in a fixed order: items, A's seeds, B's seeds
        n = len(recs_a[0])
        idx = rng.integers(0, n, size=(n_boot, n))
        seeds_a = rng.integers(0, len(recs_a), size=(n_boot, len(recs_a)))
        seeds_b = rng.integers(0, len(recs_b), size=(n_boot, len(recs_b)))
        for r in range(n_boot):
            a = _side(key, summarise, recs_a, idx[r], seeds_a[r])
            b = _side(key, summarise, recs_b, idx[r], seeds_b[r])
            rows += [{"benchmark": m[0], "split": m[1], "metric": m[2], "replicate": r, "diff": b[m] - a[m]}
                     for m in a]
    return pd.DataFrame(rows, columns=["benchmark", "split", "metric", "replicate", "diff"])


def paired_replicates(items: dict[str, list[dict]], responses_a: list[dict[str, list[str]]],
                      responses_b: list[dict[str, list[str]]], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Long frame (benchmark, split, metric, replicate, diff): B - A on ``n_boot`` paired resamples
    of the items and independent resamples of each side's seeds (see the module docstring)."""
    return _replicates(_judged(items, responses_a, responses_b, n_boot), n_boot, seed)


def bootstrap_p(diffs) -> float:
    """Two-sided bootstrap p-value of "no difference": 2 x min(share <= 0, share >= 0), at most 1;
    NaN when no replicate is finite."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    return float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


def paired_table(items: dict[str, list[dict]], responses_a: list[dict[str, list[str]]],
                 responses_b: list[dict[str, list[str]]], n_boot: int = 1000, seed: int = 0,
                 level: float = LEVEL) -> pd.DataFrame:
    """Per (benchmark, split, metric): a and b (means over seeds on all items), diff = b - a, its
    interval diff_lo, diff_hi, the p-value, and the verdict on B (``verdict`` with ``direction_of``)."""
    judged = _judged(items, responses_a, responses_b, n_boot)
    diffs = _replicates(judged, n_boot, seed).groupby(["benchmark", "split", "metric"])["diff"]
    rows = []
    for key, (summarise, recs_a, recs_b) in judged.items():
        a = [_values(key, summarise(r)) for r in recs_a]
        b = [_values(key, summarise(r)) for r in recs_b]
        for m in a[0]:
            d = diffs.get_group(m)
            lo, hi = percentile_interval(d, level)
            mean_a, mean_b = float(np.mean([v[m] for v in a])), float(np.mean([v[m] for v in b]))
            rows.append({"benchmark": m[0], "split": m[1], "metric": m[2], "a": mean_a, "b": mean_b,
                         "diff": mean_b - mean_a, "diff_lo": lo, "diff_hi": hi, "p": bootstrap_p(d),
                         "verdict": verdict(lo, hi, direction_of(m[0], m[2]))})
    return pd.DataFrame(rows)


def direction_of(benchmark: str, metric: str) -> int:
    """+1 if higher ``metric`` is better, -1 if lower is (CHAIR_s, CHAIR_i), 0 if neither (POPE's
    yes_ratio). ``benchmark`` as in a table ("pope-random") or a key ("halbench/atypical")."""
    name = benchmark_of(benchmark)
    if name not in _DIRECTIONS:
        raise ValueError(f"direction_of: unknown benchmark {benchmark!r}; expected one of {sorted(_DIRECTIONS)}")
    if metric not in _DIRECTIONS[name]:
        raise ValueError(f"direction_of: {benchmark!r} has no metric {metric!r}; expected one of "
                         f"{sorted(_DIRECTIONS[name])}")
    return _DIRECTIONS[name][metric]


def verdict(diff_lo: float, diff_hi: float, better: int) -> str:
    """"better" or "worse" when the interval of B - A lies wholly on one side of 0 (``better`` is
    ``direction_of``'s sign); "unclear" when it holds 0, is NaN, or the metric has no direction."""
    if isinstance(better, bool) or better not in (1, -1, 0):
        raise ValueError(f"verdict: better must be +1, -1 or 0, got {better!r}")
    if better == 0 or not (np.isfinite(diff_lo) and np.isfinite(diff_hi)) or diff_lo <= 0 <= diff_hi:
        return "unclear"
    return "better" if (diff_lo > 0) == (better > 0) else "worse"


def model_table(items: dict[str, list[dict]], responses: list[dict[str, list[str]]], n_boot: int = 1000,
                seed: int = 0, level: float = LEVEL) -> pd.DataFrame:
    """One model alone: per (benchmark, split, metric) its mean over seeds on all items (value)
    and the interval (lo, hi) of the same resampling of items and seeds as ``paired_replicates``."""
    judged = _judged(items, responses, responses, n_boot)
    rows = []
    for key, (summarise, recs, _) in judged.items():
        rng = _rng(seed, key)
        n = len(recs[0])
        idx = rng.integers(0, n, size=(n_boot, n))
        seeds = rng.integers(0, len(recs), size=(n_boot, len(recs)))
        reps = [_side(key, summarise, recs, idx[r], seeds[r]) for r in range(n_boot)]
        values = [_values(key, summarise(r)) for r in recs]
        for m in values[0]:
            lo, hi = percentile_interval([rep[m] for rep in reps], level)
            rows.append({"benchmark": m[0], "split": m[1], "metric": m[2],
                         "value": float(np.mean([v[m] for v in values])), "lo": lo, "hi": hi})
    return pd.DataFrame(rows)
