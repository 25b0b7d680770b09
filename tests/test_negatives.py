"""Negative generators: sampled (clean or image-weakened) and prior-guided error injection."""

import numpy as np
import pytest
import torch

from bpo.models.build import build_model
from bpo.preference.negatives import (
    false_facts, prior_guided_negative, sample_negatives, text_continuation_logprobs,
)
from bpo.presets import model_config
from bpo.world import language
from bpo.world.build import build_corpus
from bpo.world.render import render
from bpo.world.scene import item_rng, sample_scenes


@pytest.fixture(scope="module")
def tiny():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, processor = build_model(model_config("tiny"), build_corpus(300, 0)["text"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger random weights: answers that depend on the image (see test_generate)
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.15, generator=g)
    scenes = sample_scenes(0, "negatives-test", 6)
    yield model.eval(), processor, scenes, [render(s) for s in scenes]
    torch.set_num_threads(threads)


def test_prior_guided_negatives_change_one_checkable_fact_to_the_lms_favourite(tiny):
    model, processor, scenes, _ = tiny
    question = "Describe this image in detail."
    kinds = set()
    for i, scene in [(i, s) for s in scenes for i in range(3)]:
        truth = language.describe(scene)
        assert not false_facts(truth, scene)
        negative, info = prior_guided_negative(model, processor, question, truth, scene, np.random.default_rng(i))
        kinds.add(info["kind"])
        assert negative != truth and false_facts(negative, scene), (truth, negative)
        # the substitute is the LM's most likely wrong option at that point of the text
        start = truth.lower().index(info["original"].lower())
        if info["kind"] == "object":
            prefix = truth[:start].rstrip()
            scores = text_continuation_logprobs(model, processor, question, prefix, [" " + info["substitute"], " car"])
            assert scores[0] >= scores[1] or info["substitute"] == "car" or "car" in scene.object_names
    assert kinds == {"object", "colour", "count"}


def test_prior_guided_negative_needs_a_fact_to_change(tiny):
    model, processor, scenes, _ = tiny
    assert prior_guided_negative(model, processor, "What does the sign say?", 'The sign says "OPEN".', scenes[0],
                                 np.random.default_rng(0)) is None


def test_sampled_negatives_are_seeded_and_weakening_reaches_them(tiny):
    model, processor, scenes, images = tiny
    questions = ["Describe this image in detail."] * len(images)
    kw = dict(max_new_tokens=8, progress=False)
    clean = sample_negatives(model, processor, images, questions, seed=1, **kw)
    assert clean == sample_negatives(model, processor, images, questions, seed=1, **kw)
    noisy = sample_negatives(model, processor, images, questions, noise_place="projector", step=999, seed=1, **kw)
    assert noisy == sample_negatives(model, processor, images, questions, noise_place="projector", step=999, seed=1, **kw)
    assert noisy != clean
    # the hook is removed afterwards: clean sampling is unchanged
    assert sample_negatives(model, processor, images, questions, seed=1, **kw) == clean
