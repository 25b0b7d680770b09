"""Image weakening: the VCD schedule matches the reference table, and the noise reaches the model
at each of the three places, only inside the block."""

import pytest
import torch

from bpo.models.forward import input_embeddings, vision_features
from bpo.noise import PLACES, T, add_noise, schedule, weakened
from bpo.presets import model_config
from bpo.models.llava import build_model
from bpo.world.sources import build_corpus


@pytest.mark.parametrize("step,signal,noise", [(100, 0.998, 0.058), (300, 0.981, 0.194), (500, 0.863, 0.505),
                                               (700, 0.593, 0.805), (900, 0.365, 0.931), (999, 0.285, 0.959)])
def test_schedule_matches_the_reference_table(step, signal, noise):
    s, n = schedule()
    assert len(s) == T
    assert float(s[step]) == pytest.approx(signal, abs=6e-4) and float(n[step]) == pytest.approx(noise, abs=6e-4)


def test_add_noise_is_seeded_unclamped_and_checks_the_step():
    x = torch.ones(4, 3, 8, 8)
    a = add_noise(x, 900, torch.Generator().manual_seed(1))
    b = add_noise(x, 900, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.max() > 1.5 and a.min() < -1  # no clamping
    assert (add_noise(x, 0, torch.Generator().manual_seed(1)) - x).abs().mean() < 0.01
    with pytest.raises(ValueError, match="0..999"):
        add_noise(x, 1000)


@pytest.fixture(scope="module")
def tiny():
    model, processor = build_model(model_config("tiny"), build_corpus(200, 0)["text"])
    return model.eval(), torch.randn(2, 3, 128, 128)


def _embeds(model, pixels):
    feats = vision_features(model, pixels)
    ids = torch.full((2, feats.shape[1]), model.config.image_token_index)
    with torch.no_grad():
        return input_embeddings(model, ids, feats)


@pytest.mark.parametrize("place", PLACES)
def test_each_place_weakens_the_image_only_inside_the_block(tiny, place):
    model, pixels = tiny
    clean = _embeds(model, pixels)
    with weakened(model, place, 500, seed=3):
        noisy = _embeds(model, pixels)
    with weakened(model, place, 500, seed=3):
        again = _embeds(model, pixels)
    assert not torch.allclose(noisy, clean) and torch.equal(noisy, again)
    assert torch.equal(_embeds(model, pixels), clean)  # the hook is gone
    with pytest.raises(ValueError, match="place"):
        with weakened(model, "lm", 500):
            pass


def test_no_place_leaves_the_model_clean():
    model = torch.nn.Linear(2, 2)
    with weakened(model, None, 999) as same:
        assert same is model and not model._forward_pre_hooks and not model._forward_hooks
