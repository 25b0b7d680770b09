"""The yes/no margin's AUC against hand-counted pairs, and the margins of a tiny model."""

import numpy as np
import pytest

from bpo.yes_no_margin import auc_interval, margin_auc


def test_auc_counts_present_over_absent_pairs_with_ties_as_half():
    assert margin_auc([3.0, 1.0, 2.0, 0.0], ["yes", "no", "yes", "no"]) == 100.0
    assert margin_auc([0.0, 3.0, 1.0, 2.0], ["yes", "no", "yes", "no"]) == 0.0
    # present {1, 0} against absent {1, 2}: one tie (1 vs 1) out of four pairs, no win
    assert margin_auc([1.0, 0.0, 1.0, 2.0], ["yes", "yes", "no", "no"]) == 12.5
    # a constant margin (a model that says the same whatever it sees) carries nothing
    assert margin_auc([5.0] * 6, ["yes", "no"] * 3) == 50.0
    assert np.isnan(margin_auc([1.0, 2.0], ["no", "no"]))


def test_auc_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="3 margins but 2 labels"):
        margin_auc([1.0, 2.0, 3.0], ["yes", "no"])
    with pytest.raises(ValueError, match=r"'Yes'"):
        margin_auc([1.0, 2.0], ["Yes", "no"])


def test_the_interval_brackets_the_value_and_narrows_with_more_questions():
    rng = np.random.default_rng(0)
    labels = ["yes", "no"] * 200
    margins = np.array([1.0 if l == "yes" else 0.0 for l in labels]) + rng.normal(0, 1, len(labels))
    auc, lo, hi = auc_interval(margins, labels, n_boot=300)
    assert lo < auc < hi and 65 < auc < 85  # two unit normals one apart: AUC = Phi(1 / sqrt 2) = 76
    _, lo_few, hi_few = auc_interval(margins[:40], labels[:40], n_boot=300)
    assert hi_few - lo_few > hi - lo


def test_margins_are_read_per_image_and_question(image_dependent_tiny):
    from bpo.world.render import render
    from bpo.world.scene import sample_scenes
    from bpo.yes_no_margin import answer_margins

    model, processor = image_dependent_tiny
    images = [render(s) for s in sample_scenes(0, "margin-test", 3)]
    rows = [{"image": im, "question": "Is there a dog in the image?"} for im in images]
    rows.append({"image": images[0], "question": "Is there a car in the image?"})
    margins = answer_margins(model, processor, rows, progress=False)
    assert margins.shape == (4,) and np.isfinite(margins).all()
    assert len(set(np.round(margins[:3], 6))) == 3  # the same question on other images: other margins
    assert margins[3] != pytest.approx(margins[0])  # another question on the same image
    np.testing.assert_allclose(answer_margins(model, processor, rows[:1], progress=False), margins[:1], atol=1e-5)
    # without the image the same question gets the same margin, whichever image it came with
    blind = answer_margins(model, processor, rows, blind=True, progress=False)
    np.testing.assert_allclose(blind[:3], blind[0], atol=1e-4)
    assert blind[3] != pytest.approx(blind[0]) and blind[0] != pytest.approx(margins[0])


def test_notes_margins_read_the_first_answer_token_after_the_notes(image_dependent_tiny):
    import torch

    from bpo.training.lm_texts import presence_texts
    from bpo.yes_no_margin import HELD_OUT_SEED, notes_margins

    model, processor = image_dependent_tiny
    tok = processor.tokenizer
    margins, labels = notes_margins(model, tok, n=4, seed=3)
    assert labels == ["yes", "no", "yes", "no"] and margins.shape == (4,)
    texts = presence_texts(4, 3 + HELD_OUT_SEED)
    assert [t.split(" Answer: ")[1].split(",")[0].lower() for t in texts] == labels
    # the same margin from one plain forward pass over the whole text (no cache), at the answer
    for text, margin in zip(texts, margins):
        context = text[:text.index(" Answer:") + len(" Answer:")]
        logp = []
        for answer in (" Yes", " No"):
            ids = tok(context + answer, add_special_tokens=False).input_ids
            n_context = len(tok(context, add_special_tokens=False).input_ids)
            with torch.no_grad():
                logits = model.lm_head(model.model.language_model(input_ids=torch.tensor([ids])).last_hidden_state)
            steps = torch.log_softmax(logits[0, n_context - 1:-1].float(), -1)
            logp.append(sum(steps[j, ids[n_context + j]].item() for j in range(len(ids) - n_context)))
        assert margin == pytest.approx(logp[0] - logp[1], abs=1e-4)
