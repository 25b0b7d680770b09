"""Figure 7's numbers: gains signed so that up is better, BPO against SFT per size, and growth."""

import pytest

from bpo.scaling import bpo_vs_sft, check_fractions, gains, growth, round_changes
from bpo.world.scene import Scene, SceneObject

PARK = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),))
ITEMS = {"halbench/atypical": [{"item_id": f"h{i}", "scene": PARK.to_json(), "question": "Describe the image."}
                               for i in range(4)],
         "mmvet/atypical": [{"item_id": f"m{i}", "scene": PARK.to_json(), "question": "What colour is the dog?",
                             "answer": "brown", "answer_kind": "colour", "capabilities": ["Rec"]} for i in range(4)]}


def answers(hallucinating: int, right: int):
    """Descriptions of which ``hallucinating`` name a cat (absent), and ``right`` correct colours."""
    return {"halbench/atypical": ["There are two brown dogs and a cat."] * hallucinating
            + ["There are two brown dogs."] * (4 - hallucinating),
            "mmvet/atypical": ["The dog is brown."] * right + ["The dog is green."] * (4 - right)}


def test_fractions_are_checked():
    assert check_fractions("1, 0.25,0.5") == (0.25, 0.5, 1.0)
    for bad in ("0", "0.5,0.5", "1.5", "half"):
        with pytest.raises(ValueError, match="fractions"):
            check_fractions(bad)


def test_gains_are_signed_so_that_up_is_better_and_bpo_is_compared_with_sft():
    base = [answers(4, 1)]
    runs = {("bpo", 2): [answers(2, 0)], ("bpo", 4): [answers(0, 4)], ("sft", 2): [answers(3, 1)],
            ("sft", 4): [answers(3, 2)]}
    frame = gains(ITEMS, base, runs, n_boot=50)
    mean = frame[frame.seed == "mean"].set_index(["method", "pairs", "metric"]).gain
    # base CHAIR_i: 4 cats among 8 objects named = 50; BPO at 4 pairs names none: a gain of +50
    assert mean["bpo", 4, "atypical CHAIR_i"] == pytest.approx(50.0)
    assert mean["bpo", 4, "MM-Vet Total"] == pytest.approx(75.0)  # 25 % right -> 100 % right
    assert mean["sft", 2, "MM-Vet Total"] == pytest.approx(0.0)
    versus = bpo_vs_sft(ITEMS, runs, n_boot=200).set_index(["pairs", "metric"])
    assert versus.loc[(4, "atypical CHAIR_i"), "BPO larger"] == "yes"  # every resample: BPO names no cat
    grows = growth(ITEMS, runs, "bpo", n_boot=200).set_index("metric")
    # every item goes from wrong (2 pairs) to right (4 pairs): +100 in every resample
    assert grows.loc["MM-Vet Total", "grows"] == "yes" and grows.loc["MM-Vet Total", "from pairs"] == 2


def test_round_changes_compare_each_round_with_the_one_before():
    rounds = {1: [answers(4, 0)], 2: [answers(0, 4)], 3: [answers(4, 4)]}
    table = round_changes(ITEMS, rounds, n_boot=200).set_index(["round", "metric"])
    assert list(table.index.get_level_values("round").unique()) == [2, 3]
    # round 2 stops naming the cat and gets every colour right: it helps on both, in every resample;
    # round 3 names the cat in every description again (CHAIR_i 0 -> 50) and changes no colour
    assert table.loc[(2, "atypical CHAIR_i"), "still helps"] == "yes"
    assert table.loc[(2, "MM-Vet Total"), "still helps"] == "yes"
    assert table.loc[(3, "atypical CHAIR_i"), "still helps"] == "no (hurts)"
    assert table.loc[(3, "MM-Vet Total"), "still helps"] == "unclear"
    assert table.loc[(3, "atypical CHAIR_i"), "change over the round before"].startswith("-50")
    with pytest.raises(ValueError, match="two rounds"):
        round_changes(ITEMS, {1: [answers(0, 0)]})
