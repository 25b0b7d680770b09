"""Bootstrap intervals: point values are the judges' own, widths behave as sampling noise does,
CHAIR_i is resampled as a ratio of sums, and the regime verdicts read the intervals."""

import math

import numpy as np
import pandas as pd
import pytest

from bpo.evaluation.report import ci_columns, regime_checks, split_table
from bpo.evaluation.suite import score_suite
from bpo.evaluation.uncertainty import (bootstrap_replicates, items_for_half_width, mean_interval,
                                        percentile_interval, with_ci, with_intervals)
from bpo.world.scene import Scene, SceneObject

PARK = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),))


def pope(n, n_correct, split="typical", bench="random"):
    items = [{"item_id": f"p{i}", "scene": PARK.to_json(), "question": "Is there a dog in the image?", "object": "dog",
              "label": "yes" if i % 2 else "no", "split": bench} for i in range(n)]
    answers = [(it["label"] if i < n_correct else ("no" if it["label"] == "yes" else "yes")).capitalize() + "."
               for i, it in enumerate(items)]
    return f"pope-{bench}/{split}", items, answers


def test_point_values_are_the_judges_and_intervals_hold_them():
    key, items, answers = pope(200, 160)
    hkey = "halbench/typical"
    hitems = [{"item_id": f"h{i}", "scene": PARK.to_json()} for i in range(30)]
    hanswers = ["A dog." if i % 3 else "A dog and a cat." for i in range(30)]
    suite, responses = {key: items, hkey: hitems}, {key: answers, hkey: hanswers}
    scores = score_suite(suite, responses)
    table = with_intervals(scores, bootstrap_replicates(suite, responses, n_boot=300, seed=1))
    pd.testing.assert_frame_equal(table[scores.columns], scores)
    acc = table[(table.benchmark == "pope-random") & (table.metric == "accuracy")].iloc[0]
    assert acc.value == 80.0 and acc.lo < 80 < acc.hi
    # A binomial share's 95 % half-width is about 1.96 sqrt(p(1-p)/n) = 5.5 points here.
    assert abs((acc.hi - acc.lo) / 2 - 1.96 * math.sqrt(0.8 * 0.2 / 200) * 100) < 1.2
    # 10 of 30 responses name 2 objects (one false): CHAIR_i = 10/40 = 25 %, not the mean of ratios (16.7 %).
    chair = table[(table.benchmark == "halbench") & (table.metric == "CHAIR_i")].iloc[0]
    assert chair.value == 25.0 and chair.lo < 25 < chair.hi


def test_a_sample_without_variation_has_a_zero_width_interval_and_seeds_repeat():
    key, items, answers = pope(50, 50)
    reps = bootstrap_replicates({key: items}, {key: answers}, n_boot=50, seed=3)
    acc = reps[reps.metric == "accuracy"].value
    assert (acc == 100).all()
    key, items, answers = pope(50, 30)
    a, b, c = (bootstrap_replicates({key: items}, {key: answers}, n_boot=50, seed=s) for s in (0, 0, 1))
    pd.testing.assert_frame_equal(a, b)
    assert not a.value.equals(c.value)


def test_split_table_gives_the_difference_its_own_interval():
    (kt, it, at), (ka, ia, aa) = pope(100, 100, "typical"), pope(100, 0, "atypical")
    suite, responses = {kt: it, ka: ia}, {kt: at, ka: aa}
    scores = score_suite(suite, responses)
    table = split_table(scores, bootstrap_replicates(suite, responses, n_boot=100))
    row = table[table.metric == "accuracy"].iloc[0]
    assert (row.typical, row.atypical, row["atypical - typical"]) == (100, 0, -100)
    assert (row["atypical - typical_lo"], row["atypical - typical_hi"]) == (-100, -100)
    printed = ci_columns(table)
    assert printed[printed.metric == "accuracy"].iloc[0].typical == "100.0 [100.0, 100.0]"
    assert "typical_lo" not in printed.columns


def test_regime_checks_say_unclear_when_the_interval_straddles_the_target():
    sure_t, sure_a = pope(400, 380, "typical"), pope(400, 200, "atypical")  # 95 % vs 50 %
    close = pope(40, 32, "typical")  # 80 %: its interval spans the 80 target
    for typical, want in ((sure_t, "met"), (close, "unclear")):
        suite = {typical[0]: typical[1], sure_a[0]: sure_a[1]}
        responses = {typical[0]: typical[2], sure_a[0]: sure_a[2]}
        checks = regime_checks(score_suite(suite, responses), bootstrap_replicates(suite, responses, n_boot=200))
        row = checks[checks.criterion == "POPE-random accuracy (typical)"].iloc[0]
        assert row.verdict == want, row
    bad = pope(400, 100, "typical")  # 25 %: well below the target
    suite, responses = {bad[0]: bad[1]}, {bad[0]: bad[2]}
    checks = regime_checks(score_suite(suite, responses), bootstrap_replicates(suite, responses, n_boot=200))
    assert checks[checks.criterion == "POPE-random accuracy (typical)"].verdict.iloc[0] == "missed"


def test_small_helpers():
    assert percentile_interval([1.0, float("nan"), 1.0]) == (1.0, 1.0)
    assert all(math.isnan(x) for x in percentile_interval([float("nan")]))
    m, lo, hi = mean_interval(np.r_[np.zeros(50), np.ones(50)], seed=0)
    assert m == 0.5 and 0.38 < lo < 0.45 and 0.55 < hi < 0.62
    assert with_ci(61.23, 55.0, 67.14) == "61.2 [55.0, 67.1]" and with_ci(3.0, float("nan"), 1.0) == "3.0"
    assert items_for_half_width(100, 10.0, 5.0) == 400
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_replicates({}, {}, n_boot=1)


def test_resolution_table_says_how_many_items_a_5_point_difference_needs():
    from bpo.evaluation.report import resolution_table

    key, items, answers = pope(200, 160)  # 80 %: half-width about 5.5 points
    suite, responses = {key: items}, {key: answers}
    scores = score_suite(suite, responses)
    table = resolution_table(scores, bootstrap_replicates(suite, responses, n_boot=400), {key: 200})
    row = table[table.metric == "accuracy"].iloc[0]
    # 200 (5.5 / 3.54)^2 = 484 items for a half-width of 5/sqrt(2)
    assert row["items"] == 200 and 4.5 < row.half_width < 6.5 and 380 < row["items for 5 pts"] < 620
