"""Bias probing: candidate log-probs are exact, and noise changes what the model expects."""

import numpy as np
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
def tiny():
    torch.set_num_threads(1)
    model, processor = build_model(model_config("tiny"), build_corpus(200, 0)["text"])
    scenes = sample_scenes(0, "probe-test", 3, SceneSampling(typicality="atypical"))
    yield model.eval(), processor, scenes, [render(s) for s in scenes]
    torch.set_num_threads(2)


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
    model, processor, scenes, images = tiny
    frame = probe(model, processor, scenes, images, steps=[0, 999], places=("pixels",), progress=False)
    assert len(frame) == len(scenes) * 2 * 7 and (frame.logprob < 0).all() and set(frame.place) == {"pixels"}
    assert set(frame.kind) == {"true", "prior", "control"}
    clean, noisy = (frame[frame.step == s].logprob.to_numpy() for s in (0, 999))
    assert not (abs(clean - noisy) < 1e-6).all(), "heavy noise must change the model's expectations"
    again = probe(model, processor, scenes, images, steps=[0, 999], places=("pixels",), progress=False)
    assert again.equals(frame)
    table = takeover(frame)
    assert list(table.index) == [("pixels", 0), ("pixels", 999)]


def test_noisy_view_is_the_clean_image_at_step_0_and_noise_later(tiny):
    _, processor, _, images = tiny
    clean = np.asarray(images[0].resize(noisy_view(processor, images[0], 0).size), dtype=float)
    assert np.abs(np.asarray(noisy_view(processor, images[0], 0), dtype=float) - clean).mean() < 3
    assert np.abs(np.asarray(noisy_view(processor, images[0], 999), dtype=float) - clean).mean() > 30


def test_read_probing_says_whether_the_prior_takes_over():
    import pandas as pd

    def table(wins):
        idx = pd.MultiIndex.from_product([["pixels"], [0, 999]], names=["place", "step"])
        return pd.DataFrame({"true": [-2.0, -4.0], "prior_best": [-3.0, -1.0], "control": [-5.0, -5.0],
                             "evidence": [3.0, 1.0], "prior_wins_%": wins}, index=idx)
    assert "As in the paper" in read_probing(table([10.0, 80.0])) and "from step 999" in read_probing(table([10.0, 80.0]))
    assert "already wins on clean images" in read_probing(table([90.0, 95.0]))
    assert "never overtakes" in read_probing(table([10.0, 20.0]))
    assert "+2.00 nats" in read_probing(table([10.0, 20.0]))
