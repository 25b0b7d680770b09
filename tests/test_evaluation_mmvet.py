"""MM-Vet-world judge: per-item scores in [0, 1], per-capability and Total x100."""

import math

import pytest

from bpo.evaluation import CAPABILITIES, build_mmvet, score_mmvet
from bpo.evaluation.mmvet import score_answer
from bpo.world.scene import Scene, SceneObject, Sign

SCENE = Scene("street-1", "street", (
    SceneObject("car", "red", 2, "top", "left"),
    SceneObject("dog", "brown", 1, "bottom", "right"),
    SceneObject("teddy bear", "brown", 1, "top", "right"),
), Sign("sum", "3+4", "bottom", "left"))


def item(i, caps, kind, answer, question="?"):
    return {"item_id": f"m{i}", "scene": SCENE.to_json(), "question": question, "capabilities": list(caps),
            "answer_kind": kind, "answer": answer}


ITEMS = [
    item(0, ["Rec"], "colour", "red", "What colour are the cars?"),
    item(1, ["OCR", "Math"], "number", 7, "What is the result of the sum on the sign?"),
    item(2, ["Rec", "Know"], "objects", ["dog"], "Which object in the image is an animal?"),
    item(3, ["Rec", "Spat"], "position", ["bottom", "right"], "Where is the dog?"),
    item(4, ["Rec", "Gen"], "objects", ["car", "dog", "teddy bear"], "Write a short story about the scene."),
    item(5, ["Spat"], "yesno", "yes", "Is the car to the left of the dog?"),
    item(6, ["Rec", "Math"], "number", 2, "How many cars are there?"),
    item(7, ["Rec"], "place", "street", "Where was this taken?"),
]
PERFECT = [
    "The cars are red.", "3+4 = 7.", "The puppy is the animal.", "It is in the bottom right corner.",
    "Two red cars raced past a brown dog, who chased a teddy bear.", "Yes, it is.", "There are two cars.",
    "This is a street.",
]


def test_perfect_answers_score_one_and_100():
    records, s = score_mmvet(ITEMS, PERFECT)
    assert [r["score"] for r in records] == [1.0] * len(ITEMS)
    assert all(s[c] == 100.0 for c in CAPABILITIES) and s["Total"] == 100.0


def test_summary_is_mean_over_tagged_items():
    responses = list(PERFECT)
    responses[1] = "8"  # OCR+Math item wrong
    _, s = score_mmvet(ITEMS, responses)
    assert s["OCR"] == 0.0 and s["Math"] == pytest.approx(50.0) and s["Rec"] == 100.0
    assert s["Total"] == pytest.approx(100 * 7 / 8)
    assert s["counts"] == {"Rec": 6, "OCR": 1, "Know": 1, "Gen": 1, "Spat": 2, "Math": 2, "Total": 8}
    _, s = score_mmvet(ITEMS[:1], PERFECT[:1])
    assert math.isnan(s["OCR"])  # no item tagged: undefined, not 0


def test_hallucinated_object_lowers_the_score():
    assert score_answer("objects", ["dog"], "The dog and the cat are animals.") == pytest.approx(2 / 3)
    story = "Two red cars raced past a brown dog, a teddy bear and a horse."
    assert score_answer("objects", ["car", "dog", "teddy bear"], story) == pytest.approx(6 / 7)


def test_synonyms_and_plurals_count_as_the_noun():
    assert score_answer("objects", ["dog"], "The puppies.") == 1.0
    assert score_answer("objects", ["car", "dog", "teddy bear"], "Automobiles, a pup... no, a puppy, and a teddy.") == 1.0
    assert score_answer("colour", "gray", "It is grey.") == 1.0
    assert score_answer("position", ["top", "centre"], "At the upper middle.") == 1.0


def test_teddy_bear_is_not_a_bear():
    assert score_answer("objects", ["teddy bear"], "A teddy bear.") == 1.0
    assert score_answer("objects", ["teddy bear"], "A bear.") == 0.0


def test_empty_and_refusal_score_zero():
    for response in ("", "I cannot answer that."):
        records, s = score_mmvet(ITEMS, [response] * len(ITEMS))
        assert [r["score"] for r in records] == [0.0] * len(ITEMS) and s["Total"] == 0.0


def test_rambling_does_not_inflate():
    assert score_answer("colour", "red", "red " * 50) == 1.0
    assert score_answer("colour", "red", "red " * 50 + "or maybe blue, green, yellow") == pytest.approx(0.4)
    assert score_answer("number", 7, "7 or 8") == pytest.approx(2 / 3)
    assert score_answer("number", 7, " ".join(str(k) for k in range(20))) < 0.2
    assert score_answer("objects", ["dog"], "dog " * 30 + "cat " * 30) == pytest.approx(2 / 3)
    assert score_answer("position", ["bottom", "right"], "top bottom left right centre " * 10) == pytest.approx(0.5 * (2 / 3 + 1 / 2))
    assert score_answer("yesno", "yes", "No. Yes. Yes. Yes.") == 0.0


def test_negated_object_is_not_an_answer():
    assert score_answer("objects", ["dog"], "The dog. There is no cat.") == 1.0


def test_references_score_perfectly_on_many_items():
    for split in ("standard", "typical", "atypical"):
        its = build_mmvet(160, seed=2, split=split)
        records, s = score_mmvet(its, [it["reference"] for it in its])
        assert [r["score"] for r in records] == [1.0] * len(its), split
        assert all(s[c] == 100.0 for c in CAPABILITIES)


def test_wrong_reference_scores_less():
    its = build_mmvet(64, seed=3)
    shifted = [it["reference"] for it in its[1:] + its[:1]]  # each item gets another item's answer
    _, s = score_mmvet(its, shifted)
    assert s["Total"] < 30


def test_bad_inputs_name_the_item():
    with pytest.raises(TypeError, match=r"response 2 \(item m2\) must be a string"):
        score_mmvet(ITEMS, PERFECT[:2] + [3] + PERFECT[3:])
    with pytest.raises(ValueError, match="7 responses for 8 items"):
        score_mmvet(ITEMS, PERFECT[:7])
    with pytest.raises(ValueError, match=r"item 0 \(m0\) has unknown capabilities \['Vision'\]"):
        score_mmvet([item(0, ["Vision"], "colour", "red")], ["red"])
    with pytest.raises(ValueError, match=r"item 0 \(m0\).*answer kind 'essay'"):
        score_mmvet([item(0, ["Rec"], "essay", "red")], ["red"])
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['answer'\]"):
        score_mmvet([{k: v for k, v in ITEMS[0].items() if k != "answer"}], ["red"])
