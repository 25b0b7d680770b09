"""SceneWorld: scene sampling, the prior, language templates and the saved data sets."""

import dataclasses
import re

import numpy as np
import pytest

from bpo.world import language, vocab
from bpo.world.config import IMAGE_SOURCES, WorldConfig
from bpo.world.sources import build_corpus, build_source, load_or_build_world
from bpo.world.scene import CELLS, Scene, SceneObject, SceneSampling, Sign, item_rng, sample_scenes


def test_same_seed_same_scenes_other_seed_or_stream_other_scenes():
    a, b = sample_scenes(3, "detail", 50), sample_scenes(3, "detail", 50)
    assert a == b
    assert [s.to_json() for s in a] != [s.to_json() for s in sample_scenes(4, "detail", 50)]
    assert [s.objects for s in a] != [s.objects for s in sample_scenes(3, "bench/x", 50)]


@pytest.mark.parametrize("typicality", ["typical", "atypical"])
def test_forced_typicality_holds_for_every_object(typicality):
    for scene in sample_scenes(0, "t", 300, SceneSampling(typicality=typicality)):
        expected = [o.name in vocab.PRIOR_WEIGHTS[scene.place] for o in scene.objects]
        assert all(expected) if typicality == "typical" else not any(expected), scene


def test_default_sampling_mixes_typical_and_against_the_prior():
    scenes = sample_scenes(0, "detail", 1000)
    kinds = {k: sum(s.typicality == k for s in scenes) for k in ("typical", "mixed", "atypical")}
    assert 600 < kinds["typical"] < 800 and kinds["mixed"] > 150, kinds
    for s in scenes:
        flags = {o.name in vocab.PRIOR_WEIGHTS[s.place] for o in s.objects}
        assert flags == {"typical": {True}, "atypical": {False}, "mixed": {True, False}}[s.typicality]
    # every thing has its own cell, a sign takes one, and all six cells get used
    assert all(len(s.objects) + (s.sign is not None) <= len(CELLS) for s in scenes)
    assert max(len(s.objects) for s in scenes) == 6
    assert 0.3 < np.mean([s.sign is not None for s in scenes]) < 0.5


def test_prior_is_skewed_toward_real_world_co_occurrence():
    assert vocab.typical_objects("beach")[0] == "umbrella" and vocab.typical_objects("kitchen")[0] == "cup"
    assert "bear" in vocab.atypical_objects("street") and "bear" not in vocab.atypical_objects("forest")
    for place in vocab.PLACES:
        total = sum(vocab.prior_probability(place, o, atypical_mass=0.1) for o in vocab.OBJECTS)
        assert total == pytest.approx(1.0)


def test_scene_round_trips_through_json_and_rejects_bad_ground_truth():
    for s in sample_scenes(1, "detail", 30):
        assert Scene.from_json(s.to_json()) == s
    car = SceneObject("car", "red", 1, "top", "left")
    with pytest.raises(ValueError, match="share a cell"):
        Scene("x", "street", (car, SceneObject("bus", "red", 1, "top", "left")))
    with pytest.raises(ValueError, match="unknown place"):
        Scene("x", "moon", (car,))
    with pytest.raises(ValueError, match="count"):
        Scene("x", "street", (SceneObject("car", "red", 7, "top", "left"),))
    with pytest.raises(ValueError, match="max_objects"):
        SceneSampling(max_objects=9)
    with pytest.raises(ValueError, match="typicality"):
        SceneSampling(typicality="weird")


def test_sum_sign_answer():
    assert Sign("sum", "3+4", "top", "left").answer == "7"
    assert Sign("word", "OPEN", "top", "left").answer == "OPEN"


def test_detailed_description_states_every_fact():
    for i, scene in enumerate(sample_scenes(5, "detail", 200)):
        text = language.describe(scene, item_rng(5, "d", i)).lower()
        for o in scene.objects:
            noun = vocab.OBJECTS[o.name].name if o.count == 1 else vocab.OBJECTS[o.name].plural
            sentence = next(s for s in re.split(r"(?<=\.) ", text) if re.search(rf"\b{o.colour} {noun}\b", s))
            assert o.row in sentence and (o.col in sentence or (o.col == "centre" and "middle" in sentence))
            if o.count > 1:
                assert vocab.COUNT_NAMES[o.count] in sentence
        if scene.sign:
            assert scene.sign.text.lower() in text
        assert sum(s.count(".") for s in [text]) >= len(scene.objects) + 1


def test_conversations_ask_distinct_questions_and_alternate_roles():
    for i, scene in enumerate(sample_scenes(2, "conversation", 200)):
        turns = language.conversation(scene, item_rng(2, "c", i))
        roles = [t["role"] for t in turns]
        assert roles == ["user", "assistant"] * (len(turns) // 2) and len(turns) >= 2
        questions = [t["content"] for t in turns if t["role"] == "user"]
        assert len(set(questions)) == len(questions)


def test_textvqa_answers_read_the_sign_or_say_there_is_none():
    scenes = sample_scenes(0, "textvqa", 100, SceneSampling(sign_rate=0.5))
    for i, scene in enumerate(scenes):
        answers = " ".join(t["content"] for t in language.source_turns("textvqa", scene, item_rng(0, "q", i))
                           if t["role"] == "assistant")
        if scene.sign:
            assert scene.sign.answer in answers
        else:
            assert "no sign" in answers


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="unknown data source"):
        language.source_turns("podcast", sample_scenes(0, "x", 1)[0], item_rng(0, "x", 0))
    with pytest.raises(ValueError, match="unknown data source"):
        build_source("podcast", 1, 0, 128)


def test_world_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_detail"):
        WorldConfig(n_detail=0)
    with pytest.raises(ValueError, match="image_size"):
        WorldConfig(image_size=16)
    assert WorldConfig().scaled(0.0001).n_detail == 1 and WorldConfig().scaled(0.01).n_caption == 60


def test_data_sources_are_byte_identical_for_the_same_seed():
    a = build_source("detail", 6, seed=7, image_size=96, progress=False)
    b = build_source("detail", 6, seed=7, image_size=96, progress=False)
    c = build_source("detail", 6, seed=8, image_size=96, progress=False)
    raw = lambda ds: ds.cast_column("image", ds.features["image"].__class__(decode=False))  # noqa: E731
    assert [r["image"]["bytes"] for r in raw(a)] == [r["image"]["bytes"] for r in raw(b)]
    assert a["conversations"] == b["conversations"] and a["scene"] == b["scene"]
    assert a["scene"] != c["scene"]
    assert a[0]["image"].size == (96, 96)


def test_corpus_is_prior_only_text():
    corpus = build_corpus(300, seed=0)
    assert len(corpus) == 300 and all(isinstance(t, str) and t for t in corpus["text"])
    checked = 0
    for text in corpus["text"]:
        places = [p for p in vocab.PLACES if re.search(rf"\b{p}\b", text)]
        if not places:
            continue  # a question-answer text names no place
        text = text.replace("teddy bear", "teddy")  # two-word name first: a teddy bear is no bear
        named = [o for o in vocab.OBJECTS if re.search(rf"\b{o}\b", text)]
        assert all(o in vocab.PRIOR_WEIGHTS[places[0]] for o in named), text
        checked += 1
    assert checked > 100


def test_world_is_cached_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("BPO_DATA_DIR", str(tmp_path))
    cfg = dataclasses.replace(WorldConfig(), n_detail=3, n_textvqa=3, n_conversation=3, n_caption=3, n_corpus=5)
    world = load_or_build_world("tiny", cfg, progress=False)
    assert {k: len(v) for k, v in world.items()} == {**{s: 3 for s in IMAGE_SOURCES}, "corpus": 5}
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.arrow")}
    again = load_or_build_world("tiny", cfg, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.arrow")} == stamp  # loaded, not rebuilt
    assert again["detail"]["scene"] == world["detail"]["scene"]
    assert not list(tmp_path.rglob("*.tmp-*"))
