"""Image weakening reaches the answers of a model that sees: strong noise changes them, no noise
leaves them exactly as they were."""

import pytest

from bpo.models.generate import generate
from bpo.noise import PLACES, weakened
from bpo.world.render import render
from bpo.world.scene import sample_scenes


@pytest.fixture(scope="module")
def seeing(image_dependent_tiny):
    model, processor = image_dependent_tiny
    images = [render(s, 128) for s in sample_scenes(0, "noise-answers", 4)]
    questions = ["Describe this image in detail."] * len(images)
    kw = dict(max_new_tokens=8, batch_size=4, autocast=False, progress=False)
    clean = generate(model, processor, images, questions, **kw)
    # the fixture's answers depend on the image: otherwise this test could not tell noise from nothing
    assert len(set(clean)) > 1, clean
    return model, processor, images, questions, kw, clean


@pytest.mark.parametrize("place", PLACES)
def test_noise_at_step_999_changes_the_answers_and_no_noise_changes_nothing(seeing, place):
    model, processor, images, questions, kw, clean = seeing
    with weakened(model, place, 999, seed=0):
        noisy = generate(model, processor, images, questions, **kw)
    with weakened(model, None, 999, seed=0):
        untouched = generate(model, processor, images, questions, **kw)
    assert untouched == clean
    assert sum(a != b for a, b in zip(noisy, clean)) >= 2, (place, noisy, clean)
    assert generate(model, processor, images, questions, **kw) == clean  # the hook is gone after the block
