"""Object-HalBench-world judge: CHAIR_i, response-level hallucination, recall."""

import math

import pytest

from bpo.evaluation import build_halbench, score_halbench
from bpo.world.scene import Scene, SceneObject, Sign

STREET = Scene("street-1", "street", (
    SceneObject("car", "red", 2, "top", "left"),
    SceneObject("person", "blue", 1, "bottom", "right"),
    SceneObject("teddy bear", "brown", 1, "top", "right"),
), Sign("word", "STOP", "bottom", "left"))
FOREST = Scene("forest-1", "forest", (SceneObject("bear", "brown", 1, "top", "centre"),
                                      SceneObject("tree", "green", 3, "bottom", "centre")))


def items(*scenes):
    return [{"item_id": f"h{i}", "scene": s.to_json()} for i, s in enumerate(scenes)]


def score(scene, response):
    records, summary = score_halbench(items(scene), [response])
    return records[0], summary


def test_perfect_description():
    rec, s = score(STREET, 'Two red cars in the top left, a man on the right, a teddy bear, and a sign reading "STOP".')
    assert rec["hallucinated"] == [] and rec["recalled"] == ["car", "person", "teddy bear"]
    assert (s["object_hall"], s["response_hall"], s["object_recall"], s["n_no_object"]) == (0.0, 0.0, 100.0, 0)


def test_hallucinated_object():
    rec, s = score(STREET, "Two red cars and a dog.")
    assert rec["hallucinated"] == ["dog"]
    assert s["object_hall"] == pytest.approx(50.0)
    assert s["response_hall"] == 100.0
    assert s["object_recall"] == pytest.approx(100 / 3)


def test_synonyms_and_plurals_are_not_hallucinations():
    rec, s = score(STREET, "Some automobiles, pedestrians and a teddy.")
    assert rec["mentioned"] == ["car", "person", "teddy bear"]
    assert s["object_hall"] == 0.0 and s["object_recall"] == 100.0


def test_teddy_bear_is_not_a_bear():
    rec, _ = score(STREET, "A teddy bear sits in the corner.")
    assert rec["hallucinated"] == []
    rec, _ = score(FOREST, "A teddy bear sits in the forest.")
    assert rec["hallucinated"] == ["teddy bear"] and rec["recalled"] == []
    rec, _ = score(FOREST, "A bear sits in the forest.")
    assert rec["hallucinated"] == [] and rec["recalled"] == ["bear"]


def test_empty_and_refusal_mention_nothing():
    for response in ("", "I cannot answer that."):
        rec, s = score(STREET, response)
        assert rec["mentioned"] == [] and s["n_no_object"] == 1
        assert math.isnan(s["object_hall"]) and math.isnan(s["response_hall"])  # undefined, not "perfect"
        assert s["object_recall"] == 0.0


def test_repetition_counts_each_object_once():
    short = "There are cars. There is a dog."
    _, s_short = score(STREET, short)
    _, s_long = score(STREET, "There are cars. " * 40 + "There is a dog. " * 40 + "Cars, cars, cars.")
    assert s_long == s_short
    assert s_long["n_mentions"] == 2 and s_long["object_hall"] == pytest.approx(50.0)


def test_negated_mentions_count_as_chair_does():
    rec, _ = score(STREET, "There is no dog here.")
    assert rec["hallucinated"] == ["dog"]


def test_quoted_sign_text_is_no_object():
    rec, _ = score(STREET, 'A sign reads "no dogs".')
    assert rec["mentioned"] == []


def test_response_hall_denominator_is_responses_with_objects():
    _, s = score_halbench(items(STREET, STREET, FOREST), ["A dog and two cars.", "I cannot answer that.", "A bear."])
    assert s["response_hall"] == pytest.approx(50.0)  # 1 of the 2 responses that name an object
    assert s["object_hall"] == pytest.approx(100 / 3)  # dog of (dog, car, bear)
    assert s["object_recall"] == pytest.approx(100 * 2 / 8)  # car and bear of 3 + 3 + 2 true objects
    assert s["n_no_object"] == 1 and s["n_responses"] == 3


def test_summary_counted_by_hand():
    # STREET's true objects: car, person, teddy bear; FOREST's: bear, tree.
    responses = ["Two cars and a dog; the cars pass a woman, and the dog barks at another dog.",
                 "It is a sunny day.",
                 "Three trees and a bear; the bear sleeps under the trees."]
    records, s = score_halbench(items(STREET, STREET, FOREST), responses)
    assert [r["mentioned"] for r in records] == [["car", "dog", "person"], [], ["bear", "tree"]]
    # mentions 3 + 0 + 2 = 5, each object once per response; hallucinated: dog, once
    assert (s["n_mentions"], s["n_hallucinated_mentions"], s["n_no_object"], s["n_responses"]) == (5, 1, 1, 3)
    assert s["object_hall"] == 20.0  # 1 / 5
    assert s["response_hall"] == 50.0  # 1 of the 2 responses naming an object (1/3 over all would be 33.3)
    assert s["object_recall"] == 50.0  # (car, person) + (bear, tree) = 4 of 3 + 3 + 2 = 8 true objects


def test_references_score_perfectly():
    for split in ("standard", "atypical"):
        its = build_halbench(120, seed=5, split=split)
        _, s = score_halbench(its, [it["reference"] for it in its])
        assert (s["object_hall"], s["response_hall"], s["object_recall"]) == (0.0, 0.0, 100.0)


def test_accepts_responses_by_item_id():
    its = items(STREET, FOREST)
    _, by_list = score_halbench(its, ["A dog.", "A bear."])
    _, by_id = score_halbench(its, {"h1": "A bear.", "h0": "A dog."})
    assert by_list == by_id


def test_bad_inputs_name_the_item():
    its = items(STREET, FOREST)
    with pytest.raises(TypeError, match=r"response 1 \(item h1\)"):
        score_halbench(its, ["A car.", None])
    with pytest.raises(ValueError, match="1 responses for 2 items"):
        score_halbench(its, ["A car."])
    with pytest.raises(TypeError, match="responses must be"):
        score_halbench(its, "A car.")
    with pytest.raises(ValueError, match=r"item 0 \(h0\) lacks field\(s\) \['scene'\]"):
        score_halbench([{"item_id": "h0"}], ["A car."])
    with pytest.raises(ValueError, match="no response for item"):
        score_halbench(its, {"h0": "A car."})
    with pytest.raises(ValueError, match=r"item 0 \(h0\) has an unreadable scene"):
        score_halbench([{"item_id": "h0", "scene": "{}"}], ["A car."])
