"""LLaVA-Wild-world judge: fact-level F1 of recalled reference facts and true response facts."""

import math

import pytest

from bpo.evaluation import build_wild, score_wild
from bpo.evaluation.benchmarks import WILD_CATEGORIES
from bpo.world import vocab
from bpo.world.scene import Scene, SceneObject

SCENE = Scene("farm-1", "farm", (
    SceneObject("cow", "white", 2, "top", "left"),
    SceneObject("teddy bear", "brown", 1, "bottom", "right"),
))
REFERENCE = [["object", "cow"], ["colour", "cow", "white"], ["count", "cow", 2]]


def score(response, facts=REFERENCE, category="conversation"):
    its = [{"item_id": "w0", "scene": SCENE.to_json(), "category": category, "reference_facts": facts}]
    records, summary = score_wild(its, [response])
    return records[0], summary


def test_perfect_answer_scores_100():
    rec, s = score("There are two white cows.")
    assert (rec["recall"], rec["precision"], rec["score"]) == (1.0, 1.0, 100.0)
    assert s["conversation"] == 100.0 and s["all"] == 100.0
    assert math.isnan(s["detail"])


def test_true_extra_detail_costs_nothing():
    rec, _ = score("There are two white cows in the top left, and a brown teddy bear in the bottom right.")
    assert rec["score"] == 100.0


def test_hallucination_lowers_precision():
    rec, _ = score("There are two white cows and a dog.")
    # facts: cow, white, count 2 (true); dog, count 1 (false) -> precision 3/5, recall 1
    assert rec["precision"] == pytest.approx(3 / 5) and rec["recall"] == 1.0
    assert rec["score"] == pytest.approx(100 * 2 * 0.6 / 1.6)
    assert ["object", "dog"] in rec["false_facts"]
    rec, _ = score("There are three white cows.")
    assert rec["recall"] == pytest.approx(2 / 3) and rec["precision"] == pytest.approx(2 / 3)


def test_synonyms_and_plurals_are_the_same_facts():
    assert score("There are two white calves.")[0]["score"] == 100.0
    assert score("There are two white cattle.")[0]["score"] == 100.0


def test_teddy_bear_is_not_a_bear():
    assert score("A brown teddy bear.", [["object", "teddy bear"]])[0]["score"] == 100.0
    assert score("A brown bear.", [["object", "teddy bear"]])[0]["score"] == 0.0


def test_empty_and_refusal_score_zero():
    for response in ("", "I cannot answer that."):
        rec, s = score(response)
        assert rec["score"] == 0.0 and rec["n_facts"] == 0 and s["all"] == 0.0


def test_negated_mentions_assert_nothing():
    rec, _ = score("There are two white cows. There is no dog.")
    assert rec["score"] == 100.0


def test_repetition_does_not_inflate():
    once = score("There are two white cows and a dog.")[0]["score"]
    many = score("There are two white cows and a dog. " * 30)[0]["score"]
    assert many == once < 100
    rambling = " ".join(f"There is a {o}." for o in vocab.OBJECTS)  # name everything
    rec, _ = score(rambling)
    assert rec["precision"] < 0.1 and rec["score"] < 15


def test_per_category_means():
    its = [{"item_id": f"w{i}", "scene": SCENE.to_json(), "category": c, "reference_facts": REFERENCE}
           for i, c in enumerate(["conversation", "detail", "detail"])]
    _, s = score_wild(its, ["There are two white cows.", "There are two white cows.", ""])
    assert (s["conversation"], s["detail"], s["all"]) == (100.0, 50.0, pytest.approx(200 / 3))
    assert s["counts"] == {"conversation": 1, "detail": 2, "reasoning": 0, "all": 3}


def test_references_score_perfectly_on_many_items():
    for split in ("standard", "typical", "atypical"):
        its = build_wild(150, seed=4, split=split)
        records, s = score_wild(its, [it["reference"] for it in its])
        assert [r["score"] for r in records] == [100.0] * len(its), split
        assert {r["category"] for r in records} == set(WILD_CATEGORIES)


def test_unusual_reference_names_only_what_the_prior_does_not_expect():
    its = [it for it in build_wild(90, seed=1, split="atypical") if it["question"] == "What is unusual about this scene?"]
    assert its
    for it in its:
        scene = Scene.from_json(it["scene"])
        named = {f[1] for f in it["reference_facts"]}
        assert named and not named & set(vocab.PRIOR_WEIGHTS[scene.place])


def test_bad_inputs_name_the_item():
    good = {"item_id": "w0", "scene": SCENE.to_json(), "category": "detail", "reference_facts": REFERENCE}
    with pytest.raises(ValueError, match=r"item 0 \(w0\) has unknown category 'chat'"):
        score_wild([{**good, "category": "chat"}], ["x"])
    with pytest.raises(ValueError, match=r"item 0 \(w0\) has no reference facts"):
        score_wild([{**good, "reference_facts": []}], ["x"])
    with pytest.raises(TypeError, match=r"response 0 \(item w0\) must be a string, got list"):
        score_wild([good], [["x"]])
    with pytest.raises(ValueError, match="2 responses for 1 items"):
        score_wild([good], ["x", "y"])
