"""Projector grounding: each patch's target is the sum of the LM's word vectors for what covers
it, and a short regression brings the projector's output close to those targets."""

import dataclasses

import numpy as np
import pytest
import torch

from bpo.training.vision import BACKGROUND, COLOURS, IGNORE, NOUNS, SIGN, SIGN_TEXTS
from bpo.world import vocab


@pytest.fixture(scope="module")
def tiny():
    from bpo.models.llava import build_model
    from bpo.presets import model_config

    texts = [f"a {c} {n} in the {p}" for c in COLOURS for n in NOUNS for p in vocab.PLACES[:2]]
    return build_model(model_config("tiny"), tokenizer_texts=texts, progress=False)


def test_patch_targets_add_the_words_for_what_covers_each_patch(tiny):
    from bpo.training.grounding import patch_word_targets, word_tables, word_vector

    model, processor = tiny
    tok, embed = processor.tokenizer, model.get_input_embeddings()
    tables = word_tables(model, tok)
    # one image, four patches: background, a red car (count 2), a sign reading STOP, a blue cat (count 1)
    car, cat = NOUNS.index("car") + 1, NOUNS.index("cat") + 1
    targets = {"noun": torch.tensor([[BACKGROUND, car, SIGN, cat]]),
               "colour": torch.tensor([[IGNORE, COLOURS.index("red"), IGNORE, COLOURS.index("blue")]]),
               "count": torch.tensor([[IGNORE, 1, IGNORE, 0]]),
               "text": torch.tensor([[IGNORE, IGNORE, SIGN_TEXTS.index("STOP"), IGNORE]]),
               "place": torch.tensor([vocab.PLACES.index("kitchen")])}
    out = patch_word_targets(targets, tables)
    w = lambda text: word_vector(embed, tok, text).detach()  # noqa: E731
    want = torch.stack([w("kitchen"), w("car") + w("red") + w("two"), w("sign") + w("STOP"),
                        w("cat") + w("blue") + w("one")])
    torch.testing.assert_close(out[0], want)
    assert not torch.allclose(out[0, 1], out[0, 3])  # different things, different targets


def test_grounding_fits_the_projector_to_word_vectors_on_fresh_scenes(tiny):
    import copy

    from bpo.presets import base_training_config
    from bpo.training.grounding import ground_projector

    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    frozen = {k: v.clone() for k, v in model.model.vision_tower.state_dict().items()}
    cfg = dataclasses.replace(base_training_config("tiny"), ground_images=3200, vision_batch=32)
    log = ground_projector(model, processor.tokenizer, cfg, progress=False)
    assert len(log) == 100
    # Relative squared error: a fresh projector is far off (about 12), 1.0 is predicting zero. An
    # untrained tower tells the projector little, so here it only learns the targets' scale and
    # mean; on smol's trained tower 250 steps reach 0.15 (presets.py).
    assert np.mean([r["loss"] for r in log[-5:]]) < min(1.2, 0.15 * log[0]["loss"])
    assert all(torch.equal(v, model.model.vision_tower.state_dict()[k]) for k, v in frozen.items())  # tower frozen


def test_ground_images_is_validated():
    from bpo.training.config import BaseTrainingConfig

    with pytest.raises(ValueError, match="ground_images"):
        BaseTrainingConfig(ground_images=-1)


def test_grounding_reads_its_own_rate_not_the_alignment_rate(tiny):
    """base_sizing copies the stages before the first one that reads a changed field: grounding
    must change with ground_lr and must not with align_lr (it once read align_lr)."""
    import copy

    from bpo.base_sizing import FIRST_READ
    from bpo.presets import base_training_config
    from bpo.training.grounding import ground_projector

    cfg = dataclasses.replace(base_training_config("tiny"), ground_images=64, vision_batch=32)

    def projector_after(**change):
        model = copy.deepcopy(tiny[0])
        torch.manual_seed(0)
        ground_projector(model, tiny[1].tokenizer, dataclasses.replace(cfg, **change), progress=False)
        return model.model.multi_modal_projector.state_dict()

    same, other_align, other_ground = projector_after(), projector_after(align_lr=cfg.align_lr * 3), \
        projector_after(ground_lr=cfg.ground_lr * 3)
    assert all(torch.equal(same[k], other_align[k]) for k in same)
    assert not all(torch.equal(same[k], other_ground[k]) for k in same)
    assert FIRST_READ["ground_lr"] == "ground" and FIRST_READ["align_lr"] == "align"
