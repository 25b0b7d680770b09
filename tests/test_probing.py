"""Bias probing: candidate log-probs are exact, and noise changes what the model expects."""

import numpy as np
import pandas as pd
import pytest
import torch

from bpo.models.llava import build_model
from bpo.models.chat import prompt_text
from bpo.presets import model_config
from bpo.probing import (
    PROBE_QUESTION, answer_prefix, candidates, continuation_logprobs, noisy_view, probe, read_probing, takeover,
)
from bpo.world import vocab
from bpo.world.sources import build_corpus
from bpo.world.render import render
from bpo.world.scene import SceneSampling, sample_scenes


@pytest.fixture(scope="module")
def tiny(image_dependent_tiny):
    model, processor = image_dependent_tiny
    scenes = sample_scenes(0, "probe-test", 3, SceneSampling(typicality="atypical"))
    return model, processor, scenes, [render(s) for s in scenes]


def test_candidates_are_the_true_object_and_absent_prior_objects():
    for scene in sample_scenes(0, "probe", 20, SceneSampling(typicality="atypical")):
        cands = candidates(scene)
        assert cands[0] == (scene.objects[0].name, "true")
        assert [k for _, k in cands] == ["true"] + ["prior"] * 3 + ["control"] * 3
        assert all(o not in scene.object_names for o, _ in cands[1:])
        assert all((o in vocab.PRIOR_WEIGHTS[scene.place]) == (kind == "prior") for o, kind in cands[1:])


def test_continuation_logprobs_equal_the_full_models_scores(tiny):
    model, processor, scenes, images = tiny
    prompt = prompt_text(processor, PROBE_QUESTION) + answer_prefix(scenes[0])
    texts = [" a bear", " car", " two teddy bears on a sofa"]  # 1 to many tokens: the shared cache pads them
    ours = continuation_logprobs(model, processor, images[0], prompt, texts)
    assert ours.shape == (1, 3)
    # several noise steps in one batched pass equal one step at a time
    batched = continuation_logprobs(model, processor, images[0], prompt, texts, "features", [0, 600, 999], seed=4)
    for k, step in enumerate([0, 600, 999]):
        alone = continuation_logprobs(model, processor, images[0], prompt, texts, "features", [step], seed=4)
        np.testing.assert_allclose(batched[k], alone[0], atol=1e-4)
    for text, value in zip(texts, ours[0]):
        inputs = processor(text=prompt + text, images=images[0], return_tensors="pt")
        n = len(processor.tokenizer(text, add_special_tokens=False).input_ids)
        with torch.no_grad():
            logits = model(**inputs).logits[0, -n - 1:-1].log_softmax(-1)
        expected = logits.gather(-1, inputs.input_ids[0, -n:, None]).sum()
        assert value == pytest.approx(float(expected), abs=1e-4)


def test_probe_frame_covers_every_image_step_and_candidate(tiny):
    """One row per place, image, step and candidate, each a log-probability; the same call gives the same frame."""
    model, processor, scenes, images = tiny
    frame = probe(model, processor, scenes, images, steps=[0, 999], places=("pixels", "projector"), progress=False)
    assert len(frame) == 2 * len(scenes) * 2 * 7 and (frame.logprob < 0).all()
    assert set(frame.place) == {"pixels", "projector"} and set(frame.image) == {0, 1, 2}
    assert frame.groupby(["place", "image", "step"]).kind.apply(list).map(
        lambda kinds: kinds == ["true"] + ["prior"] * 3 + ["control"] * 3).all()
    again = probe(model, processor, scenes, images, steps=[0, 999], places=("pixels", "projector"), progress=False)
    assert again.equals(frame)
    assert list(takeover(frame).index) == [("pixels", 0), ("pixels", 999), ("projector", 0), ("projector", 999)]


def test_noisy_view_is_the_clean_image_at_step_0_and_noise_later(tiny):
    _, processor, _, images = tiny
    clean = np.asarray(images[0].resize(noisy_view(processor, images[0], 0).size), dtype=float)
    assert np.abs(np.asarray(noisy_view(processor, images[0], 0), dtype=float) - clean).mean() < 3
    assert np.abs(np.asarray(noisy_view(processor, images[0], 999), dtype=float) - clean).mean() > 30


# (place, image, step) -> (true, [prior nouns], [control nouns]) log-likelihoods, chosen so that the prior's
# best noun beats the true one on pixels from step 500, on features at no step (a tie is no win), and on the
# projector already on clean images.
HAND = {
    ("pixels", 0, 0): (-1.0, [-2.0, -3.0], [-4.0, -6.0]),  # true wins; evidence -1 - (-5) = 4
    ("pixels", 1, 0): (-3.0, [-2.0, -4.0], [-5.0, -5.0]),  # prior wins; evidence 2
    ("pixels", 0, 500): (-3.0, [-2.0, -2.0], [-4.0, -4.0]),  # prior wins; evidence 1
    ("pixels", 1, 500): (-4.0, [-1.0, -5.0], [-5.0, -5.0]),  # prior wins; evidence 1
    ("pixels", 0, 999): (-4.0, [-1.0, -3.0], [-4.0, -4.0]),  # prior wins; evidence 0
    ("pixels", 1, 999): (-5.0, [-2.0, -6.0], [-5.0, -5.0]),  # prior wins; evidence 0
    ("features", 0, 0): (-1.0, [-3.0, -3.0], [-3.0, -5.0]),  # true wins; evidence 3
    ("features", 1, 0): (-1.0, [-2.0, -4.0], [-4.0, -4.0]),  # true wins; evidence 3
    ("features", 0, 500): (-2.0, [-3.0, -4.0], [-4.0, -4.0]),  # true wins; evidence 2
    ("features", 1, 500): (-2.0, [-2.0, -3.0], [-3.0, -5.0]),  # a tie: no win; evidence 2
    ("features", 0, 999): (-3.0, [-2.0, -4.0], [-4.0, -4.0]),  # prior wins; evidence 1
    ("features", 1, 999): (-2.0, [-3.0, -3.0], [-3.0, -3.0]),  # true wins; evidence 1
    **{("projector", i, step): v for step in (0, 500, 999) for i, v in
       enumerate([(-3.0, [-1.0, -2.0], [-5.0, -5.0]), (-3.0, [-2.0, -2.0], [-4.0, -6.0])])},  # prior wins; evidence 2
}


def _hand_frame():
    rows = []
    for (place, image, step), (true, prior, control) in HAND.items():
        cands = [("true", true)] + [("prior", v) for v in prior] + [("control", v) for v in control]
        rows += [{"place": place, "image": image, "step": step, "object": f"{kind}{k}", "kind": kind, "logprob": v}
                 for k, (kind, v) in enumerate(cands)]
    return pd.DataFrame(rows)


def test_takeover_on_a_hand_built_frame():
    """Per place and step: mean true, best-prior and control log-likelihoods, evidence, and % of images the prior wins."""
    table = takeover(_hand_frame())
    expected = {  # true, prior_best, control, evidence, prior_wins_%
        ("features", 0): (-1.0, -2.5, -4.0, 3.0, 0.0), ("features", 500): (-2.0, -2.5, -4.0, 2.0, 0.0),
        ("features", 999): (-2.5, -2.5, -3.5, 1.0, 50.0),
        ("pixels", 0): (-2.0, -2.0, -5.0, 3.0, 50.0), ("pixels", 500): (-3.5, -1.5, -4.5, 1.0, 100.0),
        ("pixels", 999): (-4.5, -1.5, -4.5, 0.0, 100.0),
        ("projector", 0): (-3.0, -1.5, -5.0, 2.0, 100.0), ("projector", 500): (-3.0, -1.5, -5.0, 2.0, 100.0),
        ("projector", 999): (-3.0, -1.5, -5.0, 2.0, 100.0),
    }
    assert list(table.columns) == ["true", "prior_best", "control", "evidence", "evidence_lo", "evidence_hi",
                                   "prior_wins_%", "prior_wins_%_lo", "prior_wins_%_hi",
                                   "prior_rise_%", "prior_rise_%_lo", "prior_rise_%_hi"]
    table = table[["true", "prior_best", "control", "evidence", "prior_wins_%"]]
    assert list(table.index) == list(expected)
    for key, row in expected.items():
        assert tuple(table.loc[key]) == pytest.approx(row), key


def test_read_probing_says_from_which_step_the_prior_takes_over_per_place():
    """Each place gets its own 'from step N' / 'at no step' / 'already on clean images', and the verdict."""
    said = read_probing(takeover(_hand_frame()))
    lines = {line.split("**")[1]: line for line in said.splitlines() if line.startswith("- **")}
    assert set(lines) == {"pixels", "features", "projector"}
    assert "50 % of images at step 0 [0, 100] and 100 % [100, 100] at step 999 (on most images from step 500)" in lines["pixels"]
    assert "true noun -2.00 -> -4.50, of the prior's best -2.00 -> -1.50" in lines["pixels"]
    assert "+3.00 [2.00, 4.00] -> +0.00 [0.00, 0.00] nats" in lines["pixels"]
    assert "0 % of images at step 0 [0, 0] and 50 % [0, 100] at step 999 (on most images at no step)" in lines["features"]
    assert "(on most images already on clean images)" in lines["projector"]
    assert "**As in the paper's Figure 5**" in said
    assert "falls most with noise on the **pixels** (+3.00 nats" in said
    clean_everywhere = takeover(_hand_frame()[lambda f: f.place == "projector"])
    assert "already wins on clean images" in read_probing(clean_everywhere)
    never = takeover(_hand_frame()[lambda f: (f.place == "features") & (f.step < 999)])
    assert "never overtakes" in read_probing(never)
