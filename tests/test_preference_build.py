"""Building the preference data set: ground truths, every negative type on tiny, checks, pairs, cache."""

import pandas as pd
import pytest
import torch

import bpo.preference.bootstrap as build
from bpo.models.llava import build_model
from bpo.preference.bootstrap import (
    candidates, check_negatives, choose_injection, fact_difference, ground_truths,
    load_or_make_negatives, load_pairs, save_pairs,
)
from bpo.preference.config import PreferenceConfig
from bpo.preference.dataset import build_pairs
from bpo.presets import model_config
from bpo.world.config import SOURCES
from bpo.world.sources import build_corpus, build_source

TYPES = ("image_weakened", "error_injection", "prior_guided", "self_generated")


@pytest.fixture(scope="module")
def setup():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    world = {s: build_source(s, 6, 0, 128, progress=False) for s in SOURCES}
    model, processor = build_model(model_config("tiny"), build_corpus(300, 0)["text"])
    cfg = PreferenceConfig(n_per_source=2, skip=1, negative_types=TYPES, batch_size=4, noise_step=700)
    budget, build.TOKEN_BUDGET = build.TOKEN_BUDGET, {s: 6 for s in SOURCES}  # untrained model: keep it short
    frame, timings = build.make_negatives(model.eval(), processor, world, cfg, progress=False)
    yield world, model, processor, cfg, frame, timings
    build.TOKEN_BUDGET = budget
    torch.set_num_threads(threads)


def test_ground_truths_skip_the_stage_2_rows_and_name_a_short_source():
    world = {s: build_source(s, 4, 0, 64, progress=False) for s in SOURCES}
    truths = ground_truths(world, PreferenceConfig(n_per_source=2, skip=2))
    assert list(truths.row) == [2, 3] * 3 and list(truths.source) == [s for s in SOURCES for _ in range(2)]
    for r in truths.itertuples():
        turns = world[r.source][r.row]["conversations"]
        k = [t["content"] for t in turns].index(r.question)
        assert turns[k]["role"] == "user" and turns[k + 1]["content"] == r.chosen
    with pytest.raises(ValueError, match="world source 'detail' has 4 rows; skip=2 \\+ n_per_source=3"):
        ground_truths(world, PreferenceConfig(n_per_source=3, skip=2))


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise_place="lm"), "noise_place must be one of"),
    (dict(noise_step=1000), "noise_step must be in"),
    (dict(negative_types=("gt",)), "unknown \\['gt'\\]"),
    (dict(negative_types=()), "negative_types is empty"),
    (dict(n_per_source=0), "n_per_source and batch_size must be >= 1"),
    (dict(temperature=0.0), "temperature must be > 0"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreferenceConfig(**kwargs)


def test_every_type_makes_one_negative_per_ground_truth_reproducibly(setup):
    world, model, processor, cfg, frame, timings = setup
    assert len(frame) == 6 * len(TYPES) and list(timings.negative_type) == list(TYPES)
    assert (frame.groupby("negative_type").size() == 6).all()
    weakened = frame[frame.negative_type == "image_weakened"]
    assert set(weakened.noise_place) == {"pixels"} and set(weakened.noise_step) == {700}
    assert frame[frame.negative_type != "image_weakened"].noise_place.isna().all()
    # prior-guided negatives are the truth with one fact changed, and say which
    pg = frame[frame.negative_type == "prior_guided"]
    assert all(r.response != r.chosen for r in pg.itertuples() if r.response)
    again, _ = build.make_negatives(model, processor, world, cfg, progress=False)
    pd.testing.assert_frame_equal(frame, again)


def test_checks_count_false_facts_and_the_truth_states_none(setup):
    world, *_, frame, _ = setup
    truth = check_negatives(frame.assign(response=frame.chosen))
    assert not truth.differs.any() and truth.identical.all() and (truth.hallucinated_objects == 0).all()
    checked = check_negatives(frame)
    pg = checked[(checked.negative_type == "prior_guided") & (checked.response != "")]
    assert pg.differs.all(), pg[["chosen", "response"]]
    table = fact_difference(checked)
    assert table.negatives.sum() == len(frame) and table.loc["prior_guided", "fact_difference_%"] > 0


def test_choose_injection_takes_the_higher_fact_difference_rate():
    def frame(rates):
        rows = [{"negative_type": t, "differs": i < 10 * r, "words": 1, "hallucinated_objects": 0, "empty": False,
                 "identical": False} for t, r in rates.items() for i in range(10)]
        return pd.DataFrame(rows)
    assert choose_injection(frame({"error_injection": 0.4, "prior_guided": 0.9})) == "prior_guided"
    assert choose_injection(frame({"error_injection": 0.9, "prior_guided": 0.4})) == "error_injection"
    assert choose_injection(frame({"error_injection": 0.5, "prior_guided": 0.5})) == "error_injection"
    # each rate carries its interval over the 10 negatives: all-or-none has zero width, 4 of 10 does not
    table = fact_difference(frame({"error_injection": 0.4, "prior_guided": 1.0}))
    lo, hi = table.loc["prior_guided", ["fact_difference_%_lo", "fact_difference_%_hi"]]
    assert lo == hi == 100
    lo, hi = table.loc["error_injection", ["fact_difference_%_lo", "fact_difference_%_hi"]]
    assert 0 <= lo < 40 < hi <= 90
    with pytest.raises(ValueError, match="no error-injection"):
        choose_injection(frame({"image_weakened": 0.5}))


def test_pairs_cover_every_truth_and_type_and_count_every_drop(setup):
    world, *_, frame, _ = setup
    cands = candidates(check_negatives(frame), world, ("image_weakened", "prior_guided"))
    assert len(cands) == 6 and all(len(c.negatives) == 2 and c.image is not None for c in cands)
    ds, report = build_pairs(cands)
    assert report.total == 12 and report.kept + report.n_dropped == 12 and len(ds) == report.kept
    assert set(ds["negative_type"]) <= {"image_weakened", "prior_guided"}
    assert set(ds["source"]) <= set(SOURCES)


def test_negatives_are_cached_by_base_and_config(setup, monkeypatch):
    world, model, processor, cfg, frame, _ = setup
    monkeypatch.setattr(build, "make_negatives", lambda *a, **k: (frame, pd.DataFrame({"negative_type": ["x"]})))
    first, _ = load_or_make_negatives("tiny", "base-key", model, processor, world, cfg, progress=False)
    monkeypatch.setattr(build, "make_negatives", lambda *a, **k: pytest.fail("should have been cached"))
    cached, _ = load_or_make_negatives("tiny", "base-key", model, processor, world, cfg, progress=False)
    pd.testing.assert_frame_equal(first, cached)
    # the cached frame still makes the same candidates (missing noise places come back as NaN)
    assert candidates(check_negatives(cached), world, TYPES) == candidates(check_negatives(frame), world, TYPES)


def test_saved_pairs_load_back_with_their_training_types(setup, tmp_path):
    world, *_, frame, _ = setup
    ds, report = build_pairs(candidates(check_negatives(frame), world, TYPES))
    target = save_pairs(ds, report, ("image_weakened", "prior_guided"), tmp_path / "dataset")
    back, info = load_pairs(target)
    assert back["pair_id"] == ds["pair_id"] and info["training_types"] == ["image_weakened", "prior_guided"]
    assert info["kept"] + info["dropped"] == info["total"] == 6 * len(TYPES)
    with pytest.raises(FileNotFoundError, match="run notebooks/03_preference_dataset.ipynb"):
        load_pairs(tmp_path / "missing")
