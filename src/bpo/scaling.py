"""Figure 7: BPO's and SFT's gains over the base model at several preference-set sizes.

A size is a fraction of the preset's default pair count (``tuning_config``'s ``max_pairs``); every
other setting stays the preset's. A gain is model - base on the same benchmark items: MM-Vet-world
Total (higher is better) and atypical Object HalBench-world CHAIR_i, reported as the base's minus
the model's, so that for both metrics a positive gain is an improvement. Each seed is a point; the
mean over seeds carries the paired bootstrap interval of ``comparison.compare``.
"""

from __future__ import annotations

import pandas as pd

from bpo.comparison import compare
from bpo.evaluation.uncertainty import with_ci

# (benchmark, split, metric, sign): sign turns "model - base" into an improvement
GAINS = {"MM-Vet Total": ("mmvet", "all", "Total", +1), "atypical CHAIR_i": ("halbench", "atypical", "CHAIR_i", -1)}
FRACTIONS = (0.25, 0.5, 1.0)


def check_fractions(text: str) -> tuple[float, ...]:
    """'0.25,0.5,1' -> (0.25, 0.5, 1.0): sizes as fractions of the default pair count, each in (0, 1]."""
    try:
        values = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError as err:
        raise ValueError(f"fractions must be comma-separated numbers like '0.25,0.5,1', got {text!r}") from err
    if len(values) < 1 or any(not 0 < v <= 1 for v in values) or len(set(values)) != len(values):
        raise ValueError(f"fractions must be distinct numbers in (0, 1], got {text!r}")
    return tuple(sorted(values))


def _signed(paired: pd.DataFrame, name: str) -> tuple[float, float, float]:
    """(gain, lo, hi) of metric ``name`` in a ``compare`` frame, signed so that up is better."""
    bench, split, metric, sign = GAINS[name]
    r = paired[(paired.benchmark == bench) & (paired.split == split) & (paired.metric == metric)].iloc[0]
    lo, hi = sorted((sign * r.diff_lo, sign * r.diff_hi))
    return sign * r["diff"], lo, hi


def _verdict(lo: float, hi: float, no: str = "no") -> str:
    return "yes" if lo > 0 else no if hi < 0 else "unclear"


def gains(items: dict, base: list[dict], runs: dict[tuple[str, int], list[dict]], n_boot: int = 1000,
          seed: int = 0) -> pd.DataFrame:
    """Long frame: method, pairs, metric, seed ("mean" for the mean over seeds), gain, lo, hi. ``runs``
    maps (method, pairs) to one answer set per seed; lo/hi are given for the mean only."""
    rows = []
    for (method, pairs), per_seed in runs.items():
        mean = compare(items, base, per_seed, n_boot, seed)
        # each seed's point value only (its interval is not shown), so the fewest replicates
        ones = [compare(items, base, [a], 2, seed) for a in per_seed] if len(per_seed) > 1 else [mean]
        for name in GAINS:
            gain, lo, hi = _signed(mean, name)
            rows.append({"method": method, "pairs": pairs, "metric": name, "seed": "mean", "gain": gain,
                         "lo": lo, "hi": hi})
            rows += [{"method": method, "pairs": pairs, "metric": name, "seed": str(k),
                      "gain": _signed(one, name)[0], "lo": float("nan"), "hi": float("nan")}
                     for k, one in enumerate(ones)]
    return pd.DataFrame(rows)


def bpo_vs_sft(items: dict, runs: dict[tuple[str, int], list[dict]], n_boot: int = 1000,
               seed: int = 0) -> pd.DataFrame:
    """Per size and metric: BPO's gain minus SFT's (paired: the base cancels), its interval and
    whether BPO's gain is larger ("yes" when the interval is above 0, "no" below, else "unclear")."""
    rows = []
    for pairs in sorted({p for m, p in runs if m == "bpo" and ("sft", p) in runs}):
        paired = compare(items, runs["sft", pairs], runs["bpo", pairs], n_boot, seed)
        for name in GAINS:
            diff, lo, hi = _signed(paired, name)
            rows.append({"pairs": pairs, "metric": name, "BPO - SFT": with_ci(diff, lo, hi),
                         "BPO larger": _verdict(lo, hi)})
    return pd.DataFrame(rows)


def growth(items: dict, runs: dict[tuple[str, int], list[dict]], method: str = "bpo", n_boot: int = 1000,
           seed: int = 0) -> pd.DataFrame:
    """Per metric: ``method``'s gain at the largest size minus at the smallest (paired), and whether
    it grows with size."""
    sizes = sorted(p for m, p in runs if m == method)
    if len(sizes) < 2:
        raise ValueError(f"growth needs {method} at two sizes or more, got {sizes}")
    paired = compare(items, runs[method, sizes[0]], runs[method, sizes[-1]], n_boot, seed)
    rows = []
    for name in GAINS:
        diff, lo, hi = _signed(paired, name)
        rows.append({"method": method, "metric": name, "from pairs": sizes[0], "to pairs": sizes[-1],
                     "gain change": with_ci(diff, lo, hi), "grows": _verdict(lo, hi, "no (shrinks)")})
    return pd.DataFrame(rows)


def round_changes(items: dict, rounds: dict[int, list[dict]], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Multi-round BPO: per later round and metric, its gain minus the previous round's (paired, so
    the base cancels), and whether that round still helps. ``rounds`` maps round -> answers per seed."""
    order = sorted(rounds)
    if len(order) < 2:
        raise ValueError(f"round_changes needs two rounds or more, got {order}")
    rows = []
    for before, after in zip(order, order[1:]):
        paired = compare(items, rounds[before], rounds[after], n_boot, seed)
        for name in GAINS:
            diff, lo, hi = _signed(paired, name)
            rows.append({"round": after, "metric": name, "change over the round before": with_ci(diff, lo, hi),
                         "still helps": _verdict(lo, hi, "no (hurts)")})
    return pd.DataFrame(rows)
