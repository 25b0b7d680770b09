"""VCD (visual contrastive decoding) at inference: hallucination fixed at decode time, not by
training, as a row beside BPO in the benchmark tables.

Each next token is chosen greedily from VCD's contrastive rule (``bpo.preference.contrastive``):
(1 + alpha) x logits with the clean image - alpha x logits with the image weakened by diffusion
noise, among the tokens whose clean-image probability is at least beta x the largest. VCD's
published defaults: noise on the pixels at step 500 of 1000, alpha 1, beta 0.1. Every token costs
two forward passes (clean and noisy caches), so its speed is reported beside its scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bpo.models.generate import Answers, _eos_ids, decode_batches
from bpo.noise import PLACES, T
from bpo.preference.contrastive import _check_options, _decode_batch


@dataclass(frozen=True)
class VCDConfig:
    """VCD's settings (its paper's defaults)."""

    noise_place: str = "pixels"
    step: int = 500
    alpha: float = 1.0
    beta: float = 0.1

    def __post_init__(self):
        if self.noise_place not in PLACES:
            raise ValueError(f"VCDConfig.noise_place must be one of {PLACES}, got {self.noise_place!r}")
        if not isinstance(self.step, int) or not 0 <= self.step < T:
            raise ValueError(f"VCDConfig.step must be an int in 0..{T - 1}, got {self.step!r}")
        _check_options(self.noise_place, self.alpha, self.beta, False, 1.0, 0)


def vcd_generate(model, processor, images, questions: list[str], max_new_tokens: int = 96, batch_size: int = 32,
                 seed: int = 0, progress: bool = True, with_truncation: bool = False, autocast: bool | None = None,
                 cfg: VCDConfig = VCDConfig()) -> list[str] | Answers:
    """Greedy VCD answers to each (image, question), in input order; the signature of
    ``bpo.models.generate.generate`` (``autocast`` as there) so ``answer_suite`` can take it as its decoder."""
    if images is None:
        raise ValueError("VCD contrasts a clean and a noisy image: images must not be None")
    eos = torch.tensor(_eos_ids(model, processor.tokenizer), device=model.device)
    pad_id = processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None else int(eos[0])
    suppress = [model.config.image_token_index]

    def decode(inputs, b):
        return _decode_batch(model, inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"],
                             cfg.noise_place, cfg.step, seed + b, cfg.alpha, cfg.beta, False, 1.0, max_new_tokens,
                             eos, pad_id, suppress)

    answers = decode_batches(model, processor, images, questions, decode, max_new_tokens, batch_size, seed,
                             autocast, progress, desc="VCD")
    return answers if with_truncation else answers.texts
