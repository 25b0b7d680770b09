"""The evaluation suite: every benchmark on every scene split, saved with images and read back."""

import json

import pytest

from bpo.evaluation import JUDGES
from bpo.evaluation.config import SuiteConfig
from bpo.evaluation.suite import build_suite, composition_frame, items_of, load_or_build_suite, score_suite
from bpo.world.render import render
from bpo.world.scene import Scene

SMALL = SuiteConfig(n_mmvet=12, n_halbench=5, n_wild=6, n_pope=4, image_size=96)


def test_suite_covers_every_benchmark_and_split():
    suite = build_suite(SMALL)
    assert set(suite) == {f"{b}/{s}" for s in ("typical", "atypical")
                          for b in ("mmvet", "halbench", "wild", "pope-random", "pope-popular", "pope-adversarial")}
    frame = composition_frame(suite)
    assert frame.loc[frame.benchmark == "mmvet", "items"].tolist() == [12, 12]
    pope = frame[frame.benchmark.str.startswith("pope")]
    assert (pope["images"] == 4).all() and (pope["items"] >= 8).all()


def test_saved_suite_round_trips_and_references_score_perfectly(tmp_path, monkeypatch):
    monkeypatch.setenv("BPO_DATA_DIR", str(tmp_path))
    built = build_suite(SMALL)
    saved = load_or_build_suite("tiny", SMALL)
    assert set(saved) == set(built)
    for key, ds in saved.items():
        items = items_of(ds)
        assert items == built[key]
        first = Scene.from_json(items[0]["scene"])
        assert ds[0]["image"].tobytes() == render(first, 96).tobytes()
        bench = key.split("/")[0].split("-")[0]
        _, summary = JUDGES[bench](items, [it["reference"] for it in items])
        score = {"mmvet": lambda s: s["Total"], "wild": lambda s: s["all"], "pope": lambda s: s["all"]["accuracy"],
                 "halbench": lambda s: s["object_recall"] - s["object_hall"]}[bench](summary)
        assert score == pytest.approx(100), key


def test_suite_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n_pope"):
        SuiteConfig(n_pope=0)
    with pytest.raises(ValueError, match="scene_splits"):
        SuiteConfig(scene_splits=("weird",))


def _scene_ids_and_contents(suite):
    scenes = [Scene.from_json(it["scene"]) for items in suite.values() for it in items]
    return {s.scene_id for s in scenes}, {json.dumps({**json.loads(s.to_json()), "scene_id": None}, sort_keys=True)
                                          for s in scenes}


def test_validation_copy_never_shares_a_scene_with_the_benchmarks():
    """Choices are made on role="val"; its scenes differ from every reported scene by id and by content."""
    bench_ids, bench_scenes = _scene_ids_and_contents(build_suite(SuiteConfig(n_mmvet=60, n_halbench=40, n_wild=30, n_pope=40)))
    val = SuiteConfig(n_mmvet=60, n_halbench=40, n_wild=30, n_pope=40, role="val")
    val_ids, val_scenes = _scene_ids_and_contents(build_suite(val))
    assert len(val_ids) > 300 and not bench_ids & val_ids
    assert all(i.startswith("val/") for i in val_ids) and all(i.startswith("bench/") for i in bench_ids)
    assert not bench_scenes & val_scenes
    with pytest.raises(ValueError, match="role"):
        SuiteConfig(role="test")


def test_truncated_answers_are_counted_per_benchmark():
    """score_suite reports the share of answers cut at their budget beside each benchmark's scores."""
    suite = build_suite(SMALL)
    items = {k: suite[k] for k in ("halbench/typical", "pope-random/typical")}
    answers = {k: [it["reference"] for it in v] for k, v in items.items()}
    cut = {"halbench/typical": [True, False, False, False, True], "pope-random/typical": [False] * len(answers["pope-random/typical"])}
    scores = score_suite(items, answers, cut)
    truncated = scores[scores.metric == "truncated_%"].set_index("benchmark").value
    assert truncated.to_dict() == {"halbench": 40.0, "pope-random": 0.0}
    assert "truncated_%" not in set(score_suite(items, answers).metric)
    with pytest.raises(ValueError, match="truncation flags"):
        score_suite(items, answers, {**cut, "halbench/typical": [True]})
