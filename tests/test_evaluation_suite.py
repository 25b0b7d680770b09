"""The evaluation suite: every benchmark on every scene split, saved with images and read back."""

import pytest

from bpo.evaluation import JUDGES
from bpo.evaluation.config import SuiteConfig
from bpo.evaluation.suite import build_suite, composition_frame, items_of, load_or_build_suite
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
