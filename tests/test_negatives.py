"""Negative generators: sampled (clean or image-weakened) and prior-guided error injection."""

import re

import numpy as np
import pytest
import torch

from bpo.models.chat import prompt_text
from bpo.models.generate import generate
from bpo.evaluation.facts import false_facts
from bpo.preference.negatives import (
    ERROR_INJECTION_PROMPT, error_injection_negatives, prior_guided_negative, sample_negatives,
    text_continuation_logprobs,
)
from bpo.world import language, vocab
from bpo.world.render import render
from bpo.world.scene import sample_scenes


@pytest.fixture(scope="module")
def tiny(image_dependent_tiny):
    scenes = sample_scenes(0, "negatives-test", 6)
    return (*image_dependent_tiny, scenes, [render(s) for s in scenes])


@torch.no_grad()
def _full_text_logprob(model, processor, question, prefix, continuation):
    """Summed log-probability of ``continuation`` read by the LM alone in one full forward pass."""
    tok = processor.tokenizer
    context = tok(prompt_text(processor, question, with_image=False) + prefix, add_special_tokens=False).input_ids
    cont = tok(continuation, add_special_tokens=False).input_ids
    ids = torch.tensor([context + cont])
    hidden = model.model.language_model(input_ids=ids).last_hidden_state
    logp = torch.log_softmax(model.lm_head(hidden).float(), dim=-1)[0]
    return float(sum(logp[len(context) - 1 + k, c] for k, c in enumerate(cont)))


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
        # the scores the substitute was chosen by equal the LM's own, computed over the whole text at once
        prefix = truth[:truth.lower().index(info["original"].lower())].rstrip()
        options = [" " + info["substitute"], " car", " purple"]
        scores = text_continuation_logprobs(model, processor, question, prefix, options)
        np.testing.assert_allclose(scores, [_full_text_logprob(model, processor, question, prefix, o) for o in options],
                                   atol=2e-4)
    assert {"object", "colour", "count"} <= kinds <= {"object", "colour", "count", "position", "place"}


def test_prior_guided_negative_puts_in_the_alternative_the_full_lm_scores_highest(tiny):
    """The substitute is the argmax, over every wrong place, object, colour or count, of the summed
    log-probabilities a plain full forward pass of the LM gives it after the answer so far."""
    model, processor, scenes, _ = tiny
    question = "Describe this image in detail."
    kinds = set()
    for n, scene in enumerate(scenes[:3]):
        o = next((x for x in scene.objects if x.count > 1), scene.objects[0])
        truth = f"This is {language.place_phrase(scene.place)}. There {language.be(o)} {language.noun_phrase(o)}."
        # the wrong alternatives of each kind, listed by hand from the world's vocabulary
        wrong = {"place": [language.place_phrase(p) for p in vocab.PLACES if p != scene.place],
                 "object": [vocab.OBJECTS[x].plural if o.count > 1 else x for x in vocab.OBJECTS
                            if x not in scene.object_names],
                 "colour": [c for c in vocab.COLOURS if c != o.colour],
                 "count": [vocab.COUNT_NAMES[c] for c in (2, 3, 4) if c != o.count]}
        for seed in range(6):
            negative, info = prior_guided_negative(model, processor, question, truth, scene,
                                                   np.random.default_rng(10 * n + seed))
            kinds.add(info["kind"])
            start = re.search(rf"\b{info['original']}\b", truth).start()
            prefix = truth[:start].rstrip()
            scores = [_full_text_logprob(model, processor, question, prefix, " " + w) for w in wrong[info["kind"]]]
            assert info["substitute"] in wrong[info["kind"]], info
            chosen = scores[wrong[info["kind"]].index(info["substitute"])]
            assert chosen == pytest.approx(max(scores), abs=2e-4), (info, max(scores), chosen)
            assert negative == truth[:start] + info["substitute"] + truth[start + len(info["original"]):]
    assert kinds == {"place", "object", "colour", "count"}, kinds


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


def test_error_injection_asks_the_lm_alone_with_the_table_1_prompt(tiny):
    model, processor, scenes, _ = tiny
    questions = ["Describe this image in detail.", "What does the sign say?"]
    answers = [language.describe(scenes[0]), 'The sign says "OPEN".']
    kw = dict(max_new_tokens=6, seed=3, progress=False)
    out = error_injection_negatives(model, processor, questions, answers, **kw)
    assert len(out) == 2 and out == error_injection_negatives(model, processor, questions, answers, **kw)
    # the same prompts, answered with the generic text-only path, give the same text
    prompts = [ERROR_INJECTION_PROMPT.format(question=q, response=a) for q, a in zip(questions, answers)]
    assert "Modified Response:" in prompts[0] and answers[0] in prompts[0]
    assert out == generate(model, processor, None, prompts, do_sample=True, temperature=1.0, max_new_tokens=6,
                           seed=3, batch_size=16, progress=False)
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        error_injection_negatives(model, processor, questions, answers[:1])


def test_prior_guided_negatives_misread_the_sign(tiny):
    model, processor, _, _ = tiny
    scenes = [s for s in sample_scenes(0, "prior-guided-signs", 200) if s.sign][:6]
    for i, scene in enumerate(scenes):
        truth = next(a for q, a in language.sign_qa(scene, np.random.default_rng(i)) if "Where" not in q)
        negative, info = prior_guided_negative(model, processor, "What does the sign say?", truth, scene,
                                               np.random.default_rng(i))
        assert info["kind"] == "sign" and false_facts(negative, scene), (truth, negative)


def test_prior_guided_negative_claims_a_denied_object_and_keeps_capitals(tiny):
    model, processor, scenes, _ = tiny
    scene = scenes[0]
    absent = next(o for o in vocab.OBJECTS if o not in scene.object_names)
    truth = f"No, there is no {absent} in the image."
    negative, info = prior_guided_negative(model, processor, f"Is there a {absent} in the image?", truth, scene,
                                           np.random.default_rng(0))
    assert info["kind"] == "existence" and negative.startswith("Yes, there is a")
    assert ("object", absent) in false_facts(negative, scene)
    multi = next(o for s in sample_scenes(0, "capitals", 100) for o in s.objects if o.count > 1)
    scene = next(s for s in sample_scenes(0, "capitals", 100) if multi in s.objects)
    truth = f"{language.noun_phrase(multi)[0].upper()}{language.noun_phrase(multi)[1:]} {language.be(multi)} here."
    for seed in range(6):
        negative, info = prior_guided_negative(model, processor, "Describe.", truth, scene, np.random.default_rng(seed))
        assert negative[0].isupper(), (truth, negative)


def test_prior_guided_negative_moves_a_lone_object_or_the_sign(tiny):
    model, processor, _, _ = tiny
    scenes = sample_scenes(0, "positions", 100)
    scene = next(s for s in scenes if s.sign)
    o = scene.objects[0]
    for truth in (f"The {o.name} is {language.position_phrase(o.row, o.col)}.",
                  f"The sign is {language.position_phrase(scene.sign.row, scene.sign.col)}."):
        for seed in range(4):
            negative, info = prior_guided_negative(model, processor, "Where is it?", truth, scene,
                                                   np.random.default_rng(seed))
            assert info["kind"] == "position" and false_facts(negative, scene), (truth, negative)


def test_prior_guided_negative_moves_the_scene_to_another_place(tiny):
    model, processor, scenes, _ = tiny
    scene = scenes[0]
    truth = f"This picture was taken {language.place_phrase(scene.place, preposition=True)}."
    negative, info = prior_guided_negative(model, processor, "Where was this picture taken?", truth, scene,
                                           np.random.default_rng(0))
    assert info["kind"] == "place" and negative.startswith("This picture was taken ")
    assert {f[0] for f in false_facts(negative, scene)} == {"place"}


def test_prior_guided_positions_are_never_moved_when_a_sign_shares_the_text(tiny):
    model, processor, _, _ = tiny
    scene = next(s for s in sample_scenes(0, "positions-sign", 200) if s.sign and len(s.objects) == 1)
    o = scene.objects[0]
    truth = (f"There is {language.noun_phrase(o)} {language.position_phrase(o.row, o.col)}. "
             f"A sign {language.position_phrase(scene.sign.row, scene.sign.col)} shows something.")
    for seed in range(8):
        negative, info = prior_guided_negative(model, processor, "Describe.", truth, scene, np.random.default_rng(seed))
        assert info["kind"] != "position" and false_facts(negative, scene), (truth, negative)
