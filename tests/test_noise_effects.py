"""The noise sweep (CHAIR_i, POPE-adversarial vs noise step per place), the choice it makes, and that
noise reaches what a seeing model says and expects: strong noise changes it, step 0 barely does."""

import numpy as np
import pandas as pd
import pytest

from bpo.evaluation.suite import load_or_build_suite
from bpo.models.chat import prompt_text
from bpo.noise import PLACES
from bpo.noise_effects import METRICS, choose_noise, noise_sweep
from bpo.presets import suite_config
from bpo.probing import PROBE_QUESTION, answer_prefix, candidates, continuation_logprobs, probe
from bpo.world.render import render
from bpo.world.scene import SceneSampling, sample_scenes


@pytest.fixture(scope="module")
def sweep(image_dependent_tiny):
    model, processor = image_dependent_tiny
    suite = load_or_build_suite("tiny", suite_config("tiny", size_scale=0.1, role="val"))
    return noise_sweep(model, processor, suite, steps=(500, 999), n_describe=3, n_pope=4, progress=False)


def test_sweep_has_every_split_place_step_and_metric_with_a_shared_clean_start(sweep):
    """Rows: splits x places x (clean + each step) x metrics; the clean run is step 0 of every place."""
    assert set(sweep.metric) == set(METRICS) and set(sweep.split) == {"typical", "atypical"}
    assert set(sweep.place) == set(PLACES) and set(sweep.step) == {0, 500, 999}
    assert len(sweep) == 2 * 3 * 3 * len(METRICS)
    clean = sweep[sweep.step == 0].pivot_table(index=["split", "metric"], columns="place", values="value",
                                               dropna=False)
    assert (clean.nunique(axis=1, dropna=False) <= 1).all()  # one clean run shared by every place
    # the intervals: present exactly for the two metrics the choice reads, and holding their value
    has = sweep.dropna(subset=["lo"])
    assert set(has.metric) <= {"chair_i", "pope_adv_accuracy"} and "pope_adv_accuracy" in set(has.metric)
    assert ((has.lo <= has.value + 1e-9) & (has.value <= has.hi + 1e-9)).all()
    assert sweep[~sweep.metric.isin(["chair_i", "pope_adv_accuracy"])].lo.isna().all()


def test_noise_at_step_999_changes_the_sweeps_metrics_at_every_place(sweep):
    """On a model whose answers depend on the image, strong noise at each place moves some metric off its clean value."""
    wide = sweep.pivot_table(index=["split", "place", "step"], columns="metric", values="value", dropna=False)
    assert wide.chair_i.notna().all(), "the model must name objects, or CHAIR_i cannot tell noise from none"
    for place in PLACES:
        moved = [(split, m) for split in ("typical", "atypical") for m in METRICS
                 if not np.isclose(wide.loc[(split, place, 999), m], wide.loc[(split, place, 0), m], equal_nan=True)]
        assert moved, f"noise on the {place} at step 999 changed no metric"


def test_probe_log_probs_barely_move_at_step_0_and_move_far_at_step_999(image_dependent_tiny):
    """Noise at step 0 keeps each candidate's log-probability within 0.25 nats of the clean model's; at
    step 999 they move by more than 0.5 nats on average (measured about 0.05 vs 1.2-2.2)."""
    model, processor = image_dependent_tiny
    scenes = sample_scenes(0, "probe-test", 3, SceneSampling(typicality="atypical"))
    images = [render(s) for s in scenes]
    frame = probe(model, processor, scenes, images, steps=[0, 999], progress=False)
    clean = np.concatenate([
        continuation_logprobs(model, processor, image, prompt_text(processor, PROBE_QUESTION) + answer_prefix(scene),
                              [" " + name for name, _ in candidates(scene)])[0]
        for scene, image in zip(scenes, images)])
    for place in PLACES:
        step0, step999 = (frame[(frame.place == place) & (frame.step == s)].logprob.to_numpy() for s in (0, 999))
        assert np.abs(step0 - clean).max() < 0.25, (place, np.abs(step0 - clean).max())
        assert np.abs(step999 - clean).mean() > 0.5, (place, np.abs(step999 - clean).mean())


def _sweep(rows):
    out = []
    for place, step, chair, named in rows:
        for place_ in ([place] if place else ["pixels", "features"]):
            out += [{"split": "typical", "place": place_, "step": step, "metric": "chair_i", "value": chair},
                    {"split": "typical", "place": place_, "step": step, "metric": "place_named", "value": named}]
    return pd.DataFrame(out)


def test_choose_noise_takes_the_most_hallucination_that_stays_about_the_image():
    sweep = _sweep([(None, 0, 40, 100), ("pixels", 500, 60, 95), ("pixels", 999, 90, 20),
                    ("features", 500, 60, 100), ("features", 300, 60, 100)])
    place, step, reason = choose_noise(sweep, fallback=("projector", 1))
    assert (place, step) == ("features", 300)  # 999 drops the place; ties go to the smaller step
    assert "40.0 (clean) to 60.0" in reason
    place, step, reason = choose_noise(_sweep([(None, 0, float("nan"), 0), ("pixels", 500, float("nan"), 0)]),
                                       fallback=("projector", 7))
    assert (place, step) == ("projector", 7) and "cannot choose" in reason
