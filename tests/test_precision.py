"""bf16 only where it pays: the hardware's answer, its override, and every choice that follows it
(autocast, the answering copy, cached activations, the cache keys)."""

import pytest
import torch

from bpo import precision
from bpo.cache import stage_params
from bpo.models.generate import _use_autocast


@pytest.fixture(params=["0", "1"])
def forced(request, monkeypatch):
    monkeypatch.setenv(precision.ENV, request.param)
    return request.param == "1"


def test_the_override_decides_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setenv(precision.ENV, "0")
    assert precision.bf16_pays("cpu") is False
    monkeypatch.setenv(precision.ENV, "1")
    assert precision.bf16_pays("cpu") is True
    monkeypatch.setenv(precision.ENV, "yes")
    with pytest.raises(ValueError, match="BPO_BF16 must be 0 or 1"):
        precision.bf16_pays("cpu")


def test_without_the_override_the_cpu_answer_is_onednns_bf16_support(monkeypatch):
    monkeypatch.delenv(precision.ENV, raising=False)
    assert precision.bf16_pays("cpu") is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert precision.bf16_pays("mps") is False


def test_autocast_computes_in_bf16_only_where_it_pays(forced):
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with precision.autocast(True):
        out = a @ b
    assert out.dtype == (torch.bfloat16 if forced else torch.float32)
    with precision.autocast(False):  # not asked for: fp32 whatever the hardware
        assert (a @ b).dtype == torch.float32


def test_the_answering_copy_is_bf16_only_where_it_pays(forced):
    model = torch.nn.Linear(3, 2)
    model.device = torch.device("cpu")  # as a transformers model says where it lives
    model.dtype = torch.float32
    copy = precision.answering_copy(model)
    if forced:
        assert copy is not model and copy.weight.dtype == torch.bfloat16
        assert model.weight.dtype == torch.float32  # the caller's model is untouched
    else:
        assert copy is model
    assert precision.storage_dtype() == (torch.bfloat16 if forced else torch.float32)


def test_decoding_autocasts_by_default_only_where_bf16_pays(forced):
    class Model:
        device, dtype = torch.device("cpu"), torch.float32

    assert _use_autocast(Model(), None) is forced
    assert _use_autocast(Model(), True) is True  # asked for explicitly: as asked


def test_model_stages_are_keyed_by_their_precision_and_data_stages_are_not(monkeypatch):
    keys = {}
    for value in ("0", "1"):
        monkeypatch.setenv(precision.ENV, value)
        keys[value] = {stage: stage_params(stage, {"x": 1}) for stage in ("world", "suite", "base", "eval/base",
                                                                           "preference", "tuning")}
    for stage in ("world", "suite"):
        assert keys["0"][stage] == keys["1"][stage]
        assert "cpu_bf16" not in keys["0"][stage]
    for stage in ("base", "eval/base", "preference", "tuning"):
        assert keys["0"][stage] != keys["1"][stage]
        assert (keys["0"][stage]["cpu_bf16"], keys["1"][stage]["cpu_bf16"]) == (False, True)


def test_cached_features_feed_a_training_step_in_either_precision(image_dependent_tiny, forced):
    """The stage-2 path end to end: frozen-tower features cached in the storage dtype, then the
    projector and LM trained on them under ``precision.autocast`` (fp32 features into an fp32
    projector where bf16 does not pay, bf16 under autocast where it does)."""
    from bpo.models.chat import encode_example
    from bpo.models.forward import lm_loss
    from bpo.models.llava import n_image_features
    from bpo.training.data import collate, image_features
    from bpo.world.render import render
    from bpo.world.scene import sample_scenes

    model, processor = image_dependent_tiny
    images = [render(s, model.config.vision_config.image_size) for s in sample_scenes(0, "precision", 2)]
    feats = image_features(model, processor, images, progress=False)
    assert feats.dtype == (torch.bfloat16 if forced else torch.float32)
    chat = [{"role": "user", "content": "What is in the image?"}, {"role": "assistant", "content": "a cat"}]
    ids, mask, labels = collate([encode_example(processor, chat, n_image_features(model))] * 2,
                                processor.tokenizer.pad_token_id or 0)
    with precision.autocast(True):
        loss = lm_loss(model, ids, mask, feats, labels)
    loss.backward()
    assert torch.isfinite(loss) and model.model.multi_modal_projector.linear_1.weight.grad is not None
    model.zero_grad(set_to_none=True)
