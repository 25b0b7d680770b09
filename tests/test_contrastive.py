"""Contrastive-decoding negatives (the released BPO code's variant): VCD's rule over two KV caches."""

import math

import pytest
import torch

from bpo.models.generate import generate
from bpo.preference import contrastive as contrastive_module
from bpo.preference.contrastive import contrastive_logits, contrastive_negatives
from bpo.world.render import render
from bpo.world.scene import sample_scenes

QUESTIONS = ["Describe this image in detail.", "What is it?", "What colour is the object on the left of the image?",
             "How many?"]


@pytest.fixture(scope="module")
def tiny(image_dependent_tiny):
    return (*image_dependent_tiny, [render(s) for s in sample_scenes(0, "contrastive-test", len(QUESTIONS))])


def test_alpha_zero_greedy_is_plain_greedy_generation_whatever_the_batching(tiny):
    model, processor, images = tiny
    tok = processor.tokenizer
    assert len({len(tok(q).input_ids) for q in QUESTIONS}) > 1  # the batch needs padding
    kw = dict(max_new_tokens=8, progress=False, autocast=False)
    expected = generate(model, processor, images, QUESTIONS, do_sample=False, batch_size=4, **kw)
    got = contrastive_negatives(model, processor, images, QUESTIONS, alpha=0.0, do_sample=False, batch_size=4,
                                **kw)
    assert got == expected
    assert contrastive_negatives(model, processor, images, QUESTIONS, alpha=0.0, do_sample=False, batch_size=1,
                                 **kw) == got


def test_contrast_changes_answers_and_sampling_is_seeded(tiny):
    model, processor, images = tiny
    kw = dict(max_new_tokens=8, progress=False, batch_size=4, noise_place="projector", step=999)
    plain = contrastive_negatives(model, processor, images, QUESTIONS, alpha=0.0, do_sample=False, **kw)
    contrast = contrastive_negatives(model, processor, images, QUESTIONS, alpha=1.0, beta=0.0, do_sample=False, **kw)
    assert contrast != plain
    sampled = contrastive_negatives(model, processor, images, QUESTIONS, seed=5, **kw)
    assert len(sampled) == len(QUESTIONS) and all(isinstance(a, str) for a in sampled)
    assert sampled == contrastive_negatives(model, processor, images, QUESTIONS, seed=5, **kw)


def test_alpha_zero_sampling_draws_generates_stream(tiny, monkeypatch):
    """With alpha=0 and no plausibility cut, sampling is generate()'s sampling once its implicit
    top-k=50 (transformers' default) is added: the noisy pass does not shift the seeded RNG stream,
    and the caller's global RNG is left untouched."""
    model, processor, images = tiny
    kw = dict(max_new_tokens=6, progress=False, autocast=False, seed=3, batch_size=2, temperature=0.8)
    expected = generate(model, processor, images, QUESTIONS, do_sample=True, **kw)
    vcd = contrastive_module.contrastive_logits

    def top50(*args, **kwargs):
        logits = vcd(*args, **kwargs)
        return logits.masked_fill(logits < torch.topk(logits, 50).values[..., -1:], -math.inf)

    monkeypatch.setattr(contrastive_module, "contrastive_logits", top50)
    state = torch.get_rng_state()
    got = contrastive_negatives(model, processor, images, QUESTIONS, alpha=0.0, beta=0.0, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    assert got == expected


def test_noise_hooks_are_removed_afterwards(tiny):
    model, processor, images = tiny
    kw = dict(max_new_tokens=6, progress=False, do_sample=False, batch_size=4)
    before = generate(model, processor, images, QUESTIONS, **kw)
    hooks = [(m._forward_pre_hooks.copy(), m._forward_hooks.copy()) for m in model.modules()]
    for place in ("pixels", "features", "projector"):
        contrastive_negatives(model, processor, images[:2], QUESTIONS[:2], noise_place=place, max_new_tokens=2,
                              progress=False)
    assert [(m._forward_pre_hooks.copy(), m._forward_hooks.copy()) for m in model.modules()] == hooks
    assert generate(model, processor, images, QUESTIONS, **kw) == before


def test_contrastive_logits_follow_vcd():
    clean = torch.tensor([[2.0, 1.0, math.log(0.05) + 2.0, 0.0]])
    noisy = torch.tensor([[1.0, 3.0, 0.0, 0.0]])
    out = contrastive_logits(clean, noisy, alpha=1.0, beta=0.1, suppress=[3])
    # token 2 has 5% of the top clean probability: below beta; token 3 is suppressed
    assert torch.equal(torch.isinf(out), torch.tensor([[False, False, True, True]]))
    assert out[0, 0] == 3.0 and out[0, 1] == -1.0
    assert torch.equal(contrastive_logits(clean, noisy, alpha=0.0, beta=0.0), clean)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=-0.5), "alpha must be"),
    (dict(beta=1.5), "beta must be in"),
    (dict(beta=-0.1), "beta must be in"),
    (dict(noise_place="latents"), "noise_place must be one of"),
    (dict(step=1000), "noise step must be"),
    (dict(temperature=0.0), "temperature must be > 0"),
])
def test_bad_options_are_refused(tiny, kwargs, message):
    model, processor, images = tiny
    with pytest.raises(ValueError, match=message):
        contrastive_negatives(model, processor, images[:1], QUESTIONS[:1], progress=False, **kwargs)


def test_images_are_required(tiny):
    model, processor, _ = tiny
    with pytest.raises(ValueError, match="images must not be None"):
        contrastive_negatives(model, processor, None, QUESTIONS[:1], progress=False)
