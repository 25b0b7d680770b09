"""Benchmark builders: determinism, held-out streams, splits, item schemas, POPE sampling, validation."""

import json

import numpy as np
import pytest

from bpo.evaluation import (
    BUILDERS, CAPABILITIES, HALBENCH_PROMPTS, JUDGES, POPE_SPLITS, build_halbench, build_mmvet, build_pope, build_wild,
)
from bpo.evaluation.benchmarks import POPULARITY
from bpo.world import vocab
from bpo.world.scene import Scene

SMALL = {"mmvet": dict(n=24), "halbench": dict(n=16), "wild": dict(n=12), "pope": dict(n_images=10)}
TRAINING_STREAMS = ("detail", "textvqa", "conversation", "caption", "corpus")


@pytest.mark.parametrize("bench", BUILDERS)
def test_builders_are_deterministic_and_seeded(bench):
    build, kw = BUILDERS[bench], SMALL[bench]
    a, b, c = build(**kw, seed=7), build(**kw, seed=7), build(**kw, seed=8)
    assert a == b
    assert [x["scene"] for x in a] != [x["scene"] for x in c]


@pytest.mark.parametrize("bench", ["mmvet", "halbench", "wild"])
def test_item_i_does_not_depend_on_the_size(bench):
    build, n = BUILDERS[bench], SMALL[bench]["n"]
    assert build(n=n, seed=1) == build(n=2 * n, seed=1)[:n]


@pytest.mark.parametrize("bench", BUILDERS)
def test_items_are_json_and_come_from_held_out_streams(bench):
    items = BUILDERS[bench](**SMALL[bench], seed=0)
    assert json.loads(json.dumps(items)) == items
    assert len({x["item_id"] for x in items}) == len(items)
    for x in items:
        assert {"item_id", "benchmark", "split", "scene", "question", "reference"} <= set(x)
        scene = Scene.from_json(x["scene"])
        assert scene.scene_id.startswith(f"bench/{bench}/")
        assert not scene.scene_id.startswith(TRAINING_STREAMS)


def test_scene_splits_differ_and_atypical_defies_the_prior():
    standard, atypical = build_halbench(40, split="standard"), build_halbench(40, split="atypical")
    assert {x["split"] for x in atypical} == {"atypical"}
    for x in atypical:
        scene = Scene.from_json(x["scene"])
        assert scene.typicality == "atypical"
        assert not scene.object_names & set(vocab.PRIOR_WEIGHTS[scene.place])
    typical = [Scene.from_json(x["scene"]) for x in build_wild(30, split="typical")]
    assert all(s.object_names <= set(vocab.PRIOR_WEIGHTS[s.place]) for s in typical)
    assert {x["scene"] for x in standard}.isdisjoint({x["scene"] for x in atypical})


def test_mmvet_covers_every_capability_with_the_papers_combinations():
    items = build_mmvet(16, seed=0)
    assert set(CAPABILITIES) <= {c for x in items for c in x["capabilities"]}
    tags = {x["type"]: set(x["capabilities"]) for x in build_mmvet(64, seed=1)}
    assert tags["ocr_sum"] == {"OCR", "Math"} and tags["know_use"] == {"Rec", "Know"}
    assert tags["gen_story"] == {"Rec", "Gen"} and tags["spat_cell"] == {"Rec", "Spat"}
    assert tags["math_total"] == {"Rec", "Math"}
    for x in build_mmvet(64, seed=1):
        scene = Scene.from_json(x["scene"])
        if x["type"] == "ocr_sum":
            assert x["answer"] == int(scene.sign.answer) and "sum" in x["question"]
        if x["type"] == "know_use":
            assert vocab.OBJECTS[x["answer"][0]].use in x["question"]


def test_halbench_cycles_the_eight_prompts():
    assert len(set(HALBENCH_PROMPTS)) == 8
    assert HALBENCH_PROMPTS[0] == "Provide a thorough description of the given image."
    items = build_halbench(20)
    assert [x["question"] for x in items] == [HALBENCH_PROMPTS[i % 8] for i in range(20)]


def test_wild_categories_in_turn():
    assert [x["category"] for x in build_wild(6)] == ["conversation", "detail", "reasoning"] * 2


def prior(item):
    return vocab.prior_probability(Scene.from_json(item["scene"]).place, item["object"])


@pytest.mark.parametrize("scene_split", ["standard", "atypical"])
def test_pope_splits_are_balanced_and_share_images_and_yes_questions(scene_split):
    by_split = {s: build_pope(60, seed=3, split=s, scene_split=scene_split) for s in POPE_SPLITS}
    yes = {s: [(x["image_index"], x["object"]) for x in items if x["label"] == "yes"] for s, items in by_split.items()}
    assert yes["random"] == yes["popular"] == yes["adversarial"]
    for split, items in by_split.items():
        labels = [x["label"] for x in items]
        assert labels.count("yes") == labels.count("no") > 0
        for x in items:
            present = Scene.from_json(x["scene"]).object_names
            assert (x["object"] in present) == (x["label"] == "yes"), (split, x["item_id"])
            assert x["split"] == split and x["scene_split"] == scene_split
        for i in range(60):  # balanced per image too, and no object asked twice about one image
            asked = [x for x in items if x["image_index"] == i]
            assert sum(x["label"] == "yes" for x in asked) * 2 == len(asked)
            assert len({x["object"] for x in asked}) == len(asked)


def test_pope_hard_negatives_are_more_likely_than_random_ones():
    negatives = {s: [x for x in build_pope(80, seed=0, split=s) if x["label"] == "no"] for s in POPE_SPLITS}
    mean_prior = {s: np.mean([prior(x) for x in negatives[s]]) for s in POPE_SPLITS}
    assert mean_prior["adversarial"] > 2 * mean_prior["random"]
    mean_pop = {s: np.mean([POPULARITY[x["object"]] for x in negatives[s]]) for s in POPE_SPLITS}
    assert mean_pop["popular"] > 2 * mean_pop["random"]
    # atypical scenes: adversarial negatives are what the place's prior expects, though absent
    atypical = [x for x in build_pope(40, split="adversarial", scene_split="atypical") if x["label"] == "no"]
    assert all(prior(x) > 0 for x in atypical)


@pytest.mark.parametrize("bench", BUILDERS)
def test_references_score_perfectly_under_the_judges(bench):
    items = BUILDERS[bench](**SMALL[bench], seed=11)
    _, summary = JUDGES[bench](items, [x["reference"] for x in items])
    perfect = {"mmvet": ("Total", 100.0), "halbench": ("object_recall", 100.0), "wild": ("all", 100.0)}
    if bench == "pope":
        assert summary["all"]["accuracy"] == 100.0
    else:
        key, value = perfect[bench]
        assert summary[key] == value


@pytest.mark.parametrize("bench", BUILDERS)
@pytest.mark.parametrize("bad, message", [
    (dict(split="weird"), "unknown split 'weird'"),
    (dict(seed=-1), "seed must be a non-negative int"),
    (dict(seed=1.5), "seed must be a non-negative int"),
])
def test_builders_reject_bad_split_and_seed(bench, bad, message):
    with pytest.raises(ValueError, match=f"build_{bench}: {message}"):
        BUILDERS[bench](**SMALL[bench], **bad)


@pytest.mark.parametrize("bench", BUILDERS)
@pytest.mark.parametrize("size", [0, -3, 2.5, "10", True, None])
def test_builders_reject_bad_sizes(bench, size):
    name = "n_images" if bench == "pope" else "n"
    with pytest.raises(ValueError, match=f"build_{bench}: {name} must be an int >= 1, got {size!r}"):
        BUILDERS[bench](**{name: size})


def test_pope_rejects_bad_scene_split_and_per_label():
    with pytest.raises(ValueError, match="build_pope: unknown scene_split 'random'"):
        build_pope(5, scene_split="random")
    with pytest.raises(ValueError, match="build_pope: per_label must be an int >= 1, got 0"):
        build_pope(5, per_label=0)
