"""Paired bootstrap of B against A: the replicate distribution matches hand-computed ones, items are
paired and seeds resampled, CHAIR_i stays a ratio of sums, and errors say where they come from."""

import math

import numpy as np
import pytest

from bpo.evaluation.paired import bootstrap_p, direction_of, paired_replicates, paired_table, verdict
from bpo.world.scene import Scene, SceneObject

PARK = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),))
POPE = "pope-random/typical"


def pope_items(labels):
    return [{"item_id": f"p{i}", "scene": PARK.to_json(), "question": "Is there a dog in the image?",
             "object": "dog", "label": label, "split": "random"} for i, label in enumerate(labels)]


def pope_answers(items, correct):
    """"Yes."/"No." answers, right where ``correct`` is true."""
    flip = {"yes": "no", "no": "yes"}
    return [(it["label"] if ok else flip[it["label"]]).capitalize() + "." for it, ok in zip(items, correct)]


def diffs(reps, metric, benchmark="pope-random"):
    return reps[(reps.benchmark == benchmark) & (reps.metric == metric)].sort_values("replicate")["diff"].to_numpy()


def row(table, metric, benchmark="pope-random"):
    return table[(table.benchmark == benchmark) & (table.metric == metric)].iloc[0]


def test_two_items_with_paired_differences_0_and_1_give_0_half_1_in_quarters():
    items = pope_items(["yes", "no"])
    a = {POPE: pope_answers(items, [True, False])}
    b = {POPE: pope_answers(items, [True, True])}  # per-item accuracy differences: 0 and 100
    reps = paired_replicates({POPE: items}, [a], [b], n_boot=4000, seed=0)
    d = diffs(reps, "accuracy")
    assert len(d) == 4000 and set(d) == {0.0, 50.0, 100.0}
    shares = [np.mean(d == v) for v in (0.0, 50.0, 100.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)  # binomial s.d. of a share here: ~0.008
    t = paired_table({POPE: items}, [a], [b], n_boot=4000, seed=0)
    acc = row(t, "accuracy")
    assert (acc.a, acc.b, acc["diff"], acc.diff_lo, acc.diff_hi) == (50.0, 100.0, 50.0, 0.0, 100.0)
    assert acc.p == pytest.approx(0.5, abs=0.06)  # 2 x P(diff <= 0) = 2 x 1/4
    assert acc.verdict == "unclear"


def test_identical_sides_differ_by_zero_in_every_replicate_because_items_are_paired():
    # mixed right and wrong items: unpaired item draws would give A and B different scores
    items = pope_items(["yes", "no"] * 10)
    a = {POPE: pope_answers(items, [i % 3 != 0 for i in range(20)])}
    reps = paired_replicates({POPE: items}, [a], [dict(a)], n_boot=300, seed=2)
    assert len(reps) == 300 * 5 and (reps["diff"] == 0).all()
    t = paired_table({POPE: items}, [a], [dict(a)], n_boot=300, seed=2)
    assert (t.diff_lo == 0).all() and (t.diff_hi == 0).all() and (t.p == 1).all()
    assert set(t.verdict) == {"unclear"}


def test_a_constant_shift_on_every_item_gives_an_interval_of_exactly_that_constant():
    # MM-Vet position items score 0.5 per right row or column word: B is A + 0.5 on every item
    items = [{"item_id": f"m{i}", "capabilities": ["Spat"], "answer_kind": "position", "answer": ["top", "left"]}
             for i in range(4)]
    a = {"mmvet/typical": ["top", "bottom right", "top", "bottom right"]}  # 0.5, 0, 0.5, 0
    b = {"mmvet/typical": ["top left", "top", "top left", "top"]}  # 1, 0.5, 1, 0.5
    t = paired_table({"mmvet/typical": items}, [a], [b], n_boot=500, seed=0)
    for metric in ("Spat", "Total"):
        r = row(t, metric, "mmvet")
        assert (r.a, r.b, r["diff"], r.diff_lo, r.diff_hi, r.p) == (25.0, 75.0, 50.0, 50.0, 50.0, 0.0)
        assert r.verdict == "better"
    assert math.isnan(row(t, "OCR", "mmvet").diff_lo)  # no OCR item: no interval, not a zero-width one


def test_seeds_are_resampled_one_item_still_varies_with_two_seeds_and_not_with_one():
    items = pope_items(["yes"])
    right, wrong = {POPE: ["Yes."]}, {POPE: ["No."]}
    reps = paired_replicates({POPE: items}, [right], [right, wrong], n_boot=2000, seed=0)
    d = diffs(reps, "accuracy")
    # B's mean over two drawn seeds is 100, 50 or 0 with probabilities 1/4, 1/2, 1/4; A is always 100
    assert set(d) == {0.0, -50.0, -100.0}
    assert [np.mean(d == v) for v in (0.0, -50.0, -100.0)] == pytest.approx([0.25, 0.5, 0.25], abs=0.04)
    acc = row(paired_table({POPE: items}, [right], [right, wrong], n_boot=2000, seed=0), "accuracy")
    assert (acc.b, acc["diff"], acc.diff_lo, acc.diff_hi) == (50.0, -50.0, -100.0, 0.0)
    acc = row(paired_table({POPE: items}, [right], [wrong], n_boot=200, seed=0), "accuracy")
    assert (acc.diff_lo, acc.diff_hi, acc.verdict) == (-100.0, -100.0, "worse")


def test_chair_i_stays_a_ratio_of_sums_in_each_replicate():
    key = "halbench/atypical"
    items = [{"item_id": f"h{i}", "scene": PARK.to_json()} for i in range(2)]
    a = {key: ["A dog.", "A dog and a cat."]}  # mentions 1 and 2, hallucinated 0 and 1
    b = {key: ["A dog and a cat.", "A cat."]}  # mentions 2 and 1, hallucinated 1 and 1
    d = diffs(paired_replicates({key: items}, [a], [b], n_boot=1000, seed=0), "CHAIR_i", "halbench")
    # items (0, 0): 50 - 0; (1, 1): 100 - 50; (0, 1): B 2/3, A 1/3 -> 33.3. A mean of ratios would
    # give 75 - 25 = 50 there too.
    assert np.allclose(np.sort(np.unique(d)), [100 / 3, 50.0])
    assert np.mean(np.isclose(d, 100 / 3)) == pytest.approx(0.5, abs=0.06)
    r = row(paired_table({key: items}, [a], [b], n_boot=1000, seed=0), "CHAIR_i", "halbench")
    assert (r.a, r.b, r["diff"]) == pytest.approx((100 / 3, 200 / 3, 100 / 3))
    assert (r.diff_lo, r.diff_hi) == pytest.approx((100 / 3, 50.0))
    assert r.verdict == "worse"  # B hallucinates more, and lower CHAIR_i is better


def test_each_benchmark_has_its_own_stream_and_a_seed_repeats():
    items = pope_items(["yes", "no"] * 5)
    h = [{"item_id": f"h{i}", "scene": PARK.to_json()} for i in range(3)]
    a, b = {POPE: pope_answers(items, [True] * 10)}, {POPE: pope_answers(items, [i % 2 == 0 for i in range(10)])}
    alone = paired_replicates({POPE: items}, [a], [b], n_boot=50, seed=4)
    with_other = paired_replicates({POPE: items, "halbench/typical": h}, [{**a, "halbench/typical": ["A dog."] * 3}],
                                   [{**b, "halbench/typical": ["A cat."] * 3}], n_boot=50, seed=4)
    assert np.array_equal(diffs(alone, "accuracy"), diffs(with_other, "accuracy"))
    assert not np.array_equal(diffs(alone, "accuracy"),
                              diffs(paired_replicates({POPE: items}, [a], [b], n_boot=50, seed=5), "accuracy"))


def test_errors_name_the_benchmark_side_and_seed():
    items = pope_items(["yes", "no"])
    good = {POPE: ["Yes.", "No."]}
    with pytest.raises(ValueError, match=r"benchmark 'pope-random/typical', side B, seed 1: 1 responses for 2 items"):
        paired_replicates({POPE: items}, [good], [good, {POPE: ["Yes."]}], n_boot=10)
    with pytest.raises(ValueError, match="side B seed 0 has benchmarks"):
        paired_replicates({POPE: items, "halbench/typical": []}, [good], [{"halbench/typical": []}], n_boot=10)
    with pytest.raises(ValueError, match="side A has no seeds"):
        paired_replicates({POPE: items}, [], [good], n_boot=10)
    with pytest.raises(ValueError, match="side B has no seeds"):
        paired_table({POPE: items}, [good], [], n_boot=10)
    with pytest.raises(ValueError, match="n_boot must be an int >= 2"):
        paired_replicates({POPE: items}, [good], [good], n_boot=1)
    with pytest.raises(ValueError, match="'pope-popular/typical' .*not among the items"):
        paired_replicates({POPE: items}, [{"pope-popular/typical": []}], [{"pope-popular/typical": []}], n_boot=10)


def test_direction_and_verdict():
    assert direction_of("halbench", "CHAIR_i") == direction_of("halbench/atypical", "CHAIR_s") == -1
    assert direction_of("pope-adversarial", "accuracy") == direction_of("mmvet", "Total") == 1
    assert direction_of("wild", "all") == direction_of("halbench", "recall") == 1
    assert direction_of("pope-random", "yes_ratio") == 0
    with pytest.raises(ValueError, match="'pope-random' has no metric 'n_unparsed'"):
        direction_of("pope-random", "n_unparsed")
    with pytest.raises(ValueError, match="unknown benchmark 'chair'"):
        direction_of("chair", "CHAIR_i")
    assert verdict(1.0, 2.0, 1) == "better" and verdict(1.0, 2.0, -1) == "worse"
    assert verdict(-2.0, -1.0, -1) == "better" and verdict(-2.0, -1.0, 1) == "worse"
    assert verdict(-1.0, 1.0, 1) == verdict(0.0, 0.0, 1) == verdict(0.0, 3.0, 1) == "unclear"
    assert verdict(float("nan"), float("nan"), 1) == verdict(1.0, 2.0, 0) == "unclear"
    with pytest.raises(ValueError, match="better must be"):
        verdict(1.0, 2.0, 2)
    assert bootstrap_p([1.0, 2.0, 3.0]) == 0.0 and bootstrap_p([-1.0, 1.0, 2.0, 3.0]) == 0.5
    assert bootstrap_p([0.0, 0.0]) == 1.0 and math.isnan(bootstrap_p([float("nan")]))


def test_model_table_gives_the_seed_mean_and_an_interval_from_items_and_seeds():
    from bpo.evaluation.paired import model_table

    items = pope_items(["yes", "no"])
    right = {POPE: pope_answers(items, [True, True])}
    half = {POPE: pope_answers(items, [True, False])}
    acc = row(model_table({POPE: items}, [right, half], n_boot=2000, seed=0), "accuracy")
    # seeds score 100 and 50 on all items: the mean is 75. A replicate that draws the second seed
    # twice and its wrong item twice scores 0 (chance 1/4 x 1/4 > 2.5 %), one that draws the first
    # seed twice scores 100 (1/4 > 2.5 %): the interval is [0, 100]
    assert acc.value == 75.0 and acc.lo == 0.0 and acc.hi == 100.0
    one = row(model_table({POPE: items}, [right], n_boot=200, seed=0), "accuracy")
    assert (one.value, one.lo, one.hi) == (100.0, 100.0, 100.0)  # every resample of all-right is all right
