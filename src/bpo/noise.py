"""Image weakening: VCD's diffusion noise, applied where the paper and its code disagree.

x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * eps over T = 1000 steps with a sigmoid beta schedule,
no clamping (``reference-facts.md``). The paper noises the CLIP image embeddings, the released code
the normalised pixels; ``weakened(model, place, step)`` serves all three places with one mechanism,
a forward hook on the module whose input or output is noised:

- ``pixels``: the normalised pixel tensor entering the vision tower;
- ``features``: the vision tower's selected features entering the projector;
- ``projector``: the projector's output, i.e. the image embeddings the LM reads.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

T = 1000
PLACES = ("pixels", "features", "projector")


def schedule(steps: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    """(sqrt(abar_t), sqrt(1 - abar_t)) for t = 0..steps-1, in float64."""
    betas = torch.sigmoid(torch.linspace(-6, 6, steps, dtype=torch.float64)) * (5e-3 - 1e-5) + 1e-5
    abar = torch.cumprod(1 - betas, dim=0)
    return abar.sqrt(), (1 - abar).sqrt()


_SIGNAL, _NOISE = schedule()


def add_noise(x: torch.Tensor, step: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """x at noise step ``step`` (0 = almost clean, 999 = mostly noise), same dtype and shape."""
    if not isinstance(step, int) or not 0 <= step < T:
        raise ValueError(f"noise step must be an int in 0..{T - 1}, got {step!r}")
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float32, device="cpu").to(x.device)
    return (_SIGNAL[step] * x.float() + _NOISE[step] * eps).to(x.dtype)


@contextmanager
def weakened(model, place: str | None, step: int, seed: int = 0):
    """Within the block, ``model`` sees its images noised at ``place`` and ``step``; the noise is
    drawn from a generator seeded with ``seed``, so the same call weakens identically.
    ``place=None`` leaves the model clean, so callers need no separate clean path."""
    if place is None:
        yield model
        return
    if place not in PLACES:
        raise ValueError(f"noise place must be one of {PLACES}, got {place!r}")
    add_noise(torch.zeros(1), step, torch.Generator())  # validates the step; leaves the global RNG alone
    generator = torch.Generator().manual_seed(seed)
    projector = model.model.multi_modal_projector
    if place == "pixels":
        def hook(module, args, kwargs):
            pixels = kwargs["pixel_values"] if "pixel_values" in kwargs else args[0]
            noised = add_noise(pixels, step, generator)
            if "pixel_values" in kwargs:
                return args, {**kwargs, "pixel_values": noised}
            return (noised, *args[1:]), kwargs
        handle = model.model.vision_tower.register_forward_pre_hook(hook, with_kwargs=True)
    elif place == "features":
        handle = projector.register_forward_pre_hook(lambda m, args: (add_noise(args[0], step, generator), *args[1:]))
    else:
        handle = projector.register_forward_hook(lambda m, args, out: add_noise(out, step, generator))
    try:
        yield model
    finally:
        handle.remove()
