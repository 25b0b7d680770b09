"""Reading tuning runs: Figure 6's interval curves and verdict, and the validation grid's choice."""

import numpy as np
import pandas as pd
import pytest

from bpo.selection import choose
from bpo.tuning_report import curve_shape, interval_curves, marked, run_frame


def _log(n, chosen, rejected, beta=0.1):
    """Per-step logs whose change from the base grows linearly to ``chosen`` / ``rejected`` nats."""
    rows = []
    for step in range(n):
        t = step / (n - 1)
        row = {"step": step, "loss": 0.7, "logps/chosen": -50 + chosen * t, "rewards/chosen": beta * chosen * t}
        if rejected is not None:
            row |= {"logps/rejected": -60 + rejected * t, "rewards/rejected": beta * rejected * t}
        rows.append(row)
    return rows


def test_interval_curves_average_each_interval_over_steps_and_seeds():
    logs = {("bpo", 0): _log(8, 0.0, -14.0), ("bpo", 1): _log(8, 0.0, -7.0), ("sft", 0): _log(8, 7.0, None)}
    frame = run_frame(logs, {"bpo": 0.1, "sft": 0.1})
    curves = interval_curves(frame, 4).set_index(["curve", "kind", "start"])
    # steps 4..7 of seeds 0 and 1: rejected changes -14 * (4..7)/7 and -7 * (4..7)/7
    expected = np.mean([-14 * s / 7 for s in range(4, 8)] + [-7 * s / 7 for s in range(4, 8)])
    assert curves.loc[("BPO negatives", "delta", 4), "mean"] == pytest.approx(expected)
    assert curves.loc[("BPO negatives", "delta", 4), "n"] == 8
    raw = np.mean([-60 - 14 * s / 7 for s in range(4)] + [-60 - 7 * s / 7 for s in range(4)])
    assert curves.loc[("BPO negatives", "logps", 0), "mean"] == pytest.approx(raw)
    assert curves.loc[("SFT ground truth", "delta", 4), "step"] == 5.5
    with pytest.raises(ValueError, match="interval"):
        interval_curves(frame, 0)


def test_curve_shape_reads_the_paper_shape_and_its_failures():
    holds = curve_shape(interval_curves(run_frame(
        {("bpo", 0): _log(20, -0.5, -10.0), ("sft", 0): _log(20, 6.0, None)}, {"bpo": 0.1, "sft": 0.1}), 5))
    assert holds.set_index("curve").holds.all(), holds
    fails = curve_shape(interval_curves(run_frame(
        {("bpo", 0): _log(20, -8.0, -10.0), ("sft", 0): _log(20, -2.0, None)}, {"bpo": 0.1, "sft": 0.1}), 5))
    verdict = fails.set_index("curve").verdict
    assert verdict["BPO positives"] == "falls" and verdict["SFT ground truth"] == "does not rise"
    assert verdict["BPO negatives"] == "falls"


def test_choose_takes_the_lowest_score_among_settings_that_pass_both_guards():
    base = {"recall": 60.0, "parsed_%": 90.0, "perplexity": 4.0}
    table = pd.DataFrame([
        {"method": "bpo", "lr": 1, "beta": 0.1, "atypical_chair_i": 10.0, "recall": 50.0, "parsed_%": 90, "perplexity": 4},
        {"method": "bpo", "lr": 2, "beta": 0.1, "atypical_chair_i": 12.0, "recall": 58.0, "parsed_%": 80, "perplexity": 4},
        {"method": "bpo", "lr": 3, "beta": 0.1, "atypical_chair_i": 20.0, "recall": 56.0, "parsed_%": 86, "perplexity": 5.9},
        {"method": "bpo", "lr": 4, "beta": 0.1, "atypical_chair_i": 15.0, "recall": 59.0, "parsed_%": 88, "perplexity": 7},
        {"method": "sft", "lr": 1, "beta": 0.1, "atypical_chair_i": 30.0, "recall": 40.0, "parsed_%": 90, "perplexity": 4},
    ])
    out = choose(table, base)
    # recall guard drops lr 1, parsed-share guard lr 2, perplexity guard lr 4: lr 3 wins despite the higher score
    assert out.recall_ok.tolist() == [False, True, True, True, False]
    assert out.fluency_ok.tolist() == [True, False, True, False, True]
    assert out.chosen.tolist() == [False, False, True, False, False]  # no SFT setting passes: none chosen


def test_marked_bolds_absent_objects_and_ignores_denied_ones():
    text = "There is a red car and a dog. There is no cat."
    assert marked(text, {"car"}) == "car, **dog** (absent)"
