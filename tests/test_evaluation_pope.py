"""POPE-world judge: the reference (POPE evaluate.py / LLaVA eval_pope.py) reading of answers, and
accuracy, precision, recall, F1, yes-ratio per split."""

import pytest

from bpo.evaluation import score_pope
from bpo.evaluation.pope import pope_answer
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


@pytest.mark.parametrize("response, expected", [
    ("There is a cat in the image.", ("yes", "default")),  # no no-word: the reference reads "yes"
    ("No, there is no dog.", ("no", "no word")),
    ("Yes, but it is not red.", ("no", "no word")),  # the reference reads "not" anywhere in sentence 1
    ("I think so. No.", ("yes", "default")),  # only the first sentence counts
    ("", ("yes", "default")),
    ("I cannot answer that.", ("yes", "default")),  # "cannot" is not "not"
    ("There isn't a dog.", ("yes", "default")),  # "isn't" is one word, as in the reference
    ("Yes, there is a dog.", ("yes", "yes word")),
    ("no", ("no", "no word")),
    ("NO", ("yes", "default")),  # case-sensitive, as in the reference
    ("No!", ("yes", "default")),  # only commas are stripped
    ("Not really.", ("yes", "default")),
    ("No\nthere is a dog.", ("yes", "default")),  # split on spaces only: "No\nthere" is one word
    ("Yes. " * 50 + "No.", ("yes", "yes word")),
    ("no " * 40 + "yes", ("no", "no word")),
    ("There is no cat, so no... yes", ("no", "no word")),
])
def test_reference_rule(response, expected):
    assert pope_answer(response) == expected


def test_records_say_what_decided_and_unparsed_counts_defaults():
    records, s = score_pope(ITEMS, ["", "I cannot answer that.", "Yes", "No"])
    assert [(r["answer"], r["decided_by"]) for r in records] == [
        ("yes", "default"), ("yes", "default"), ("yes", "yes word"), ("no", "no word")]
    assert s["random"]["n_unparsed"] == 2 and s["adversarial"]["n_unparsed"] == 0 and s["all"]["n_unparsed"] == 2
    assert s["random"]["accuracy"] == 50.0 and s["adversarial"]["accuracy"] == 100.0


def test_all_no_has_zero_precision_not_an_error():
    _, s = score_pope(ITEMS, ["No"] * 4)
    assert (s["all"]["precision"], s["all"]["recall"], s["all"]["f1"], s["all"]["accuracy"]) == (0.0, 0.0, 0.0, 50.0)


def test_summary_counted_by_hand():
    cases = [  # (label, split, response): reference answer -> outcome
        ("yes", "random", "Yes, there is a dog in the image."),  # yes -> TP
        ("yes", "random", "There isn't a dog."),  # yes (default) -> TP
        ("yes", "popular", "No, I do not see one."),  # no -> FN
        ("no", "popular", "There is a cat in the image."),  # yes (default) -> FP
        ("no", "adversarial", "I think so. No."),  # yes (default) -> FP
        ("no", "adversarial", "Yes, but it is not red."),  # no -> TN
    ]
    items = [{"item_id": f"s{i}", "label": label, "split": split} for i, (label, split, _) in enumerate(cases)]
    _, s = score_pope(items, [c[2] for c in cases])
    # all: TP 2, FP 2, FN 1, TN 1; precision 1/2, recall 2/3, F1 = 2 * (1/3) / (7/6) = 4/7
    a = s["all"]
    assert (a["accuracy"], a["precision"], a["n"], a["n_unparsed"]) == (50.0, 50.0, 6, 3)
    assert a["recall"] == pytest.approx(66.666667) and a["yes_ratio"] == pytest.approx(66.666667)
    assert a["f1"] == pytest.approx(57.142857)
    assert (s["random"]["accuracy"], s["random"]["f1"], s["random"]["yes_ratio"]) == (100.0, 100.0, 100.0)
    assert (s["popular"]["accuracy"], s["popular"]["precision"], s["popular"]["yes_ratio"]) == (0.0, 0.0, 50.0)
    assert (s["adversarial"]["accuracy"], s["adversarial"]["recall"], s["adversarial"]["yes_ratio"]) == (50.0, 0.0, 50.0)
    assert [s[k]["n_unparsed"] for k in ("random", "popular", "adversarial")] == [1, 1, 1]


def test_bad_inputs_name_the_item():
    with pytest.raises(ValueError, match=r"item 1 \(p1\) has unknown split 'easy'"):
        score_pope([ITEMS[0], {**ITEMS[1], "split": "easy"}], ["yes", "no"])
    with pytest.raises(ValueError, match=r"item 0 \(p0\) has label 'maybe'"):
        score_pope([{**ITEMS[0], "label": "maybe"}], ["yes"])
    with pytest.raises(TypeError, match=r"response 3 \(item p3\)"):
        score_pope(ITEMS, ["yes", "no", "yes", b"no"])
    with pytest.raises(ValueError, match="3 responses for 4 items"):
        score_pope(ITEMS, ["yes"] * 3)
