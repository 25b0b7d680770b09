"""LoRA's CPU dropout: its drop rate in every 16-bit quarter of a draw, inverted scaling, the
backward pass through the same mask, seeding, eval mode, and that LoRA runs use it."""

import copy

import pytest
import torch

from bpo.training.lora_dropout import LoraDropout, keep_mask, use_lora_dropout
from bpo.training.tuning import attach_lora
from bpo.training.tuning_config import TuningConfig


def test_every_quarter_of_a_draw_drops_at_the_rounded_rate():
    torch.manual_seed(0)
    keep = keep_mask((4_000_000,), 0.05)
    expected = 3277 / 65536  # round(0.05 * 2**16) / 2**16
    for quarter in range(4):  # a biased bit in any 16-bit slice of the 64-bit draws would show here
        dropped = 1 - keep[quarter::4].float().mean().item()
        assert abs(dropped - expected) < 1.5e-3  # 5 standard errors of 1M draws
    assert keep_mask((1000,), 0.0).all()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        keep_mask((3,), 1.0)


def test_kept_values_are_scaled_and_the_gradient_flows_through_the_same_mask():
    torch.manual_seed(1)
    x = (torch.rand(64, 48) + 0.5).requires_grad_()  # no zeros: a zero output means dropped
    drop = LoraDropout(0.25).train()
    y = drop(x)
    kept = y != 0
    assert 0.65 < kept.float().mean() < 0.85
    assert torch.allclose(y[kept], x[kept] / 0.75)
    weights = torch.randn(64, 48)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, torch.where(kept, weights / 0.75, 0.0))


def test_the_mask_is_seeded_by_torch_and_eval_mode_is_the_identity():
    x = torch.randn(32, 16)
    drop = LoraDropout(0.5).train()
    torch.manual_seed(3)
    a = drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), a)
    assert not torch.equal(drop(x), a)  # the next draw differs
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="LoraDropout: p"):
        LoraDropout(-0.1)


def test_lora_runs_use_it_in_every_lora_layer(image_dependent_tiny):
    model, _ = image_dependent_tiny
    peft_model = attach_lora(copy.deepcopy(model), TuningConfig(lora_r=4, lora_alpha=8, lora_dropout=0.05))
    layers = [d for m in peft_model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
              for d in m.lora_dropout.values()]
    assert layers and all(isinstance(d, LoraDropout) and d.p == 0.05 for d in layers)
    assert not any(type(m) is torch.nn.Dropout for m in peft_model.modules() if m not in layers)
    assert use_lora_dropout(peft_model) == 0  # nothing left to replace
