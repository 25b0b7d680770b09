"""The noise sweep (CHAIR_i, POPE-adversarial vs noise step per place) and the choice it makes."""

import pandas as pd
import pytest
import torch

from bpo.models.llava import build_model
from bpo.noise_effects import METRICS, choose_noise, noise_sweep
from bpo.evaluation.suite import load_or_build_suite
from bpo.presets import model_config, suite_config
from bpo.world.sources import build_corpus


def test_sweep_has_every_split_place_step_and_metric_with_a_shared_clean_start():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, processor = build_model(model_config("tiny"), build_corpus(200, 0)["text"])
        suite = load_or_build_suite("tiny", suite_config("tiny", size_scale=0.1))
        sweep = noise_sweep(model.eval(), processor, suite, steps=(500, 999), n_describe=2, n_pope=3,
                            progress=False)
    finally:
        torch.set_num_threads(threads)
    assert set(sweep.metric) == set(METRICS) and set(sweep.split) == {"typical", "atypical"}
    assert len(sweep) == 2 * 3 * 3 * len(METRICS)  # splits x places x (clean + 2 steps) x metrics
    clean = sweep[sweep.step == 0].pivot_table(index=["split", "metric"], columns="place", values="value")
    assert (clean.nunique(axis=1, dropna=False) <= 1).all()  # one clean run shared by every place


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
