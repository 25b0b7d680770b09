"""POPE-world judge: yes/no parsing, accuracy, precision, recall, F1, yes-ratio per split."""

import pytest

from bpo.evaluation import score_pope
from bpo.world.scene import Scene, SceneObject

SCENE = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),
                                 SceneObject("teddy bear", "brown", 1, "bottom", "left")))
QUESTIONS = [("dog", "yes", "random"), ("cat", "no", "random"), ("teddy bear", "yes", "adversarial"),
             ("bear", "no", "adversarial")]
ITEMS = [{"item_id": f"p{i}", "scene": SCENE.to_json(), "question": f"Is there a {o} in the image?", "object": o,
          "label": label, "split": split} for i, (o, label, split) in enumerate(QUESTIONS)]


def test_perfect_answers():
    records, s = score_pope(ITEMS, ["Yes, there are two puppies.", "No.", "Yes, a teddy bear.", "No, only a teddy bear."])
    assert all(r["correct"] for r in records)
    for split in ("random", "adversarial", "all"):
        assert (s[split]["accuracy"], s[split]["f1"], s[split]["yes_ratio"], s[split]["n_unparsed"]) == (100.0, 100.0, 50.0, 0)
    assert "popular" not in s and s["all"]["n"] == 4


def test_hallucinating_yes():
    _, s = score_pope(ITEMS, ["Yes.", "Yes, there is a cat.", "Yes.", "Yes, a bear."])
    a = s["all"]
    assert (a["accuracy"], a["precision"], a["recall"], a["yes_ratio"]) == (50.0, 50.0, 100.0, 100.0)
    assert a["f1"] == pytest.approx(100 * 2 / 3)


def test_empty_and_refusal_count_as_no_and_as_unparsed():
    records, s = score_pope(ITEMS, ["", "I cannot answer that.", "Yes", "No"])
    assert [r["answer"] for r in records] == ["no", "no", "yes", "no"]
    assert [r["parsed"] for r in records] == [False, False, True, True]
    assert s["random"]["n_unparsed"] == 2 and s["all"]["n_unparsed"] == 2
    assert s["random"]["accuracy"] == 50.0 and s["adversarial"]["accuracy"] == 100.0


def test_all_no_has_zero_precision_not_an_error():
    _, s = score_pope(ITEMS, ["No"] * 4)
    assert (s["all"]["precision"], s["all"]["recall"], s["all"]["f1"], s["all"]["accuracy"]) == (0.0, 0.0, 0.0, 50.0)


def test_first_yes_or_no_word_wins_and_repetition_changes_nothing():
    records, _ = score_pope(ITEMS, ["Yes. " * 50 + "No.", "no " * 40 + "yes", "There is no cat, so no... yes", "Yes"])
    assert [r["answer"] for r in records] == ["yes", "no", "no", "yes"]


def test_bad_inputs_name_the_item():
    with pytest.raises(ValueError, match=r"item 1 \(p1\) has unknown split 'easy'"):
        score_pope([ITEMS[0], {**ITEMS[1], "split": "easy"}], ["yes", "no"])
    with pytest.raises(ValueError, match=r"item 0 \(p0\) has label 'maybe'"):
        score_pope([{**ITEMS[0], "label": "maybe"}], ["yes"])
    with pytest.raises(TypeError, match=r"response 3 \(item p3\)"):
        score_pope(ITEMS, ["yes", "no", "yes", b"no"])
    with pytest.raises(ValueError, match="3 responses for 4 items"):
        score_pope(ITEMS, ["yes"] * 3)
