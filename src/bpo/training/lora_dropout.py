"""LoRA's dropout, drawn faster on a CPU.

peft drops a share ``p`` of every LoRA input with ``nn.Dropout``, whose mask on a CPU costs one
float32 uniform (one Mersenne Twister draw) per element. On smol that was about a quarter of a BPO
step: ``benchmarks/lora_dropout.py`` timed six steps at 57.1 s with peft's dropout 0.05 and 43.5 s
with none, and 48.3 s with this one (same pairs, same run).
:class:`LoraDropout` draws 16 random bits per element instead, four from each 64-bit draw of
torch's generator, and keeps an element when its bits, read as a signed 16-bit number, are at
least ``-2**15 + round(p * 2**16)``. The drop probability is then ``round(p * 2**16) / 2**16``:
3277 / 65536 = 0.050003 for p = 0.05 (torch's own rounds p to float32's 2^-24). The mask is kept
as booleans for the backward pass. Off the CPU it is ``F.dropout``.

The draws come from torch's global generator, so a checkpoint's saved RNG state resumes them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BITS = 16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Booleans of ``shape``: True (keep) with probability 1 - round(p * 2**16) / 2**16."""
    if not 0 <= p < 1:
        raise ValueError(f"keep_mask: p must be in [0, 1), got {p!r}")
    n = math.prod(shape)
    # The full int64 range: every bit of each draw is uniform, so each 16-bit quarter is too.
    draws = torch.randint(-2**63, 2**63 - 1, (-(-n // 4),), dtype=torch.int64, device=device)
    return (draws.view(torch.int16)[:n] >= -2**15 + round(p * 2**BITS)).view(shape)


class _MaskedScale(torch.autograd.Function):
    """x * keep / (1 - p), with the boolean mask (not a float copy) saved for the backward pass."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x * scale, 0.0)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad * ctx.scale, 0.0), None, None


class LoraDropout(torch.nn.Module):
    """Inverted dropout with :func:`keep_mask`'s mask on a CPU (``F.dropout`` elsewhere); identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"LoraDropout: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return _MaskedScale.apply(x, keep_mask(tuple(x.shape), self.p), 1 / (1 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_lora_dropout(peft_model) -> int:
    """Replace every LoRA layer's ``nn.Dropout`` in ``peft_model`` by a :class:`LoraDropout` of the
    same ``p`` (in place); returns how many were replaced."""
    n = 0
    for module in peft_model.modules():
        layers = getattr(module, "lora_dropout", None)
        if not isinstance(layers, torch.nn.ModuleDict):
            continue
        for name, layer in layers.items():
            if isinstance(layer, torch.nn.Dropout):
                layers[name] = LoraDropout(layer.p)
                n += 1
    return n
