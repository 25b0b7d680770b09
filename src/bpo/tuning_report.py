"""Reading BPO and SFT runs: their step logs as one frame, the log-prob curves of Figure 6 and a
verdict on their shape, and responses before and after with hallucinated objects marked.

Figure 6's quantities. Each step logs the summed log-prob of its batch's positives
(``logps/chosen``) and negatives (``logps/rejected``) under the model being trained, and the
implicit rewards beta * (log pi - log pi_ref) on the same pairs. A batch mean of raw log-probs
swings with the batch's answer lengths (a description sums ~80 tokens, a sign reading ~10), so
beside the raw curves we show the change from the base model on the same pairs, reward / beta,
where batch composition cancels.

The shape the paper reports, read with a rule fixed here: over the last interval of steps,
- the negatives *fall*: the 95 % interval of their change from the base lies below 0;
- the positives stay *roughly flat*: their change is at most a quarter of the negatives' fall in
  size (BPO may move them a little either way);
- SFT's ground truths *rise*: the 95 % interval of their change lies above 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bpo.evaluation.text import mentioned_objects

FLAT_SHARE = 0.25


def run_frame(logs: dict[tuple[str, int], list[dict]], betas: dict[str, float]) -> pd.DataFrame:
    """One row per (method, seed, step) with the logged metrics and the changes from the base
    (``delta/chosen``, ``delta/rejected`` = reward / beta)."""
    frames = []
    for (method, seed), log in logs.items():
        f = pd.DataFrame(log).assign(method=method, seed=seed)
        for side in ("chosen", "rejected"):
            if f"rewards/{side}" in f:
                f[f"delta/{side}"] = f[f"rewards/{side}"] / betas[method]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _series(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(label, method, side) of the curves Figure 6 shows."""
    out = []
    if "bpo" in set(frame.method):
        out += [("BPO positives", "bpo", "chosen"), ("BPO negatives", "bpo", "rejected")]
    if "sft" in set(frame.method):
        out.append(("SFT ground truth", "sft", "chosen"))
    return out


def interval_curves(frame: pd.DataFrame, interval: int) -> pd.DataFrame:
    """Mean and std of each curve per interval of ``interval`` steps, over every (seed, step) in it:
    columns curve, start, step (the interval's middle), kind ("logps" or "delta"), mean, std, n."""
    if interval < 1:
        raise ValueError(f"interval must be >= 1 step, got {interval}")
    rows = []
    for label, method, side in _series(frame):
        part = frame[frame.method == method]
        for start, chunk in part.groupby(part.step // interval * interval):
            for kind in ("logps", "delta"):
                values = chunk[f"{kind}/{side}"]
                rows.append({"curve": label, "start": int(start), "step": start + (interval - 1) / 2, "kind": kind,
                             "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else 0.0,
                             "n": len(values)})
    return pd.DataFrame(rows)


def curve_shape(curves: pd.DataFrame) -> pd.DataFrame:
    """Change from the base over the last interval per curve, its 95 % interval, and the verdict
    of the rule in the module docstring."""
    delta = curves[curves.kind == "delta"]
    last = delta[delta.start == delta.groupby("curve").start.transform("max")].set_index("curve")
    half = 1.96 * last["std"] / np.sqrt(last.n)
    table = pd.DataFrame({"change": last["mean"], "lo": last["mean"] - half, "hi": last["mean"] + half})
    fall = table.loc["BPO negatives", "change"] if "BPO negatives" in table.index else np.nan
    verdicts = {}
    for curve, row in table.iterrows():
        if curve == "BPO negatives":
            verdicts[curve] = "falls" if row.hi < 0 else "does not fall"
        elif curve == "BPO positives":
            verdicts[curve] = ("roughly flat" if abs(row.change) <= FLAT_SHARE * abs(fall)
                               else ("rises" if row.change > 0 else "falls"))
        else:
            verdicts[curve] = "rises" if row.lo > 0 else "does not rise"
    expected = {"BPO negatives": "falls", "BPO positives": "roughly flat", "SFT ground truth": "rises"}
    table["verdict"] = pd.Series(verdicts)
    table["paper"] = pd.Series(expected)
    table["holds"] = table.verdict == table.paper
    return table.reset_index()


def marked(answer: str, truth: set[str]) -> str:
    """The objects ``answer`` names, hallucinated ones (not in ``truth``) in bold."""
    said = mentioned_objects(answer, include_negated=False)  # "there is no dog" names no dog
    return ", ".join(f"**{o}** (absent)" if o not in truth else o for o in sorted(said)) or "none"
