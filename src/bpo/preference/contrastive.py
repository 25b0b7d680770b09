"""Contrastive-decoding negatives: the variant in BPO's *released code*, offered as a named option.

The paper describes its image-weakened negatives as responses *sampled from the model while it sees
a weakened image* (diffusion noise on the image); that is ``bpo.preference.negatives.sample_negatives``
with a ``noise_place``, and it is this project's default. The released code instead weakens the
image with VCD's diffusion noise and decodes with VCD's contrastive rule:

    logits = (1 + alpha) * logits(clean image) - alpha * logits(noisy image)

restricted by VCD's adaptive plausibility constraint (only tokens whose clean-image probability is
at least ``beta`` times the largest clean-image probability are kept; the others get -inf), then
sampled (with ``temperature``) or taken greedily. VCD's defaults are alpha=1, beta=0.1.

The two disagree in direction: sampling from the noisy image *adds* what the noise induces (the
hallucinations a weakened image invites), while the contrastive rule *subtracts* it, pushing the
answer away from noise-induced content, which is VCD's hallucination *mitigation*. Because the
difference matters for what the negatives teach, this generator is never the default and is
offered only under its own name.

Decoding is a manual KV-cached loop inside ``bpo.models.generate.decode_batches``, the batching,
left padding, seeding and autocast that ``generate`` uses too: per batch the prompt is run once with the clean
image and once inside ``weakened(model, noise_place, step, seed + b)``, each with its own cache,
and both caches are stepped token by token with the combined token. Position ids are the attention
mask's cumulative sum (as ``model.generate`` derives them), so a padded row is computed as if it
were alone. Sampling is seeded per batch (``seed + b``) inside a forked RNG; the image token is
never emitted; a row stops at an end-of-sequence token, leaves the batch and both caches, and is
padded afterwards.
"""

from __future__ import annotations

import math

import torch
from PIL import Image

from bpo.models.generate import _eos_ids, decode_batches, select_rows, with_cache
from bpo.noise import PLACES, T, weakened


def contrastive_logits(clean: torch.Tensor, noisy: torch.Tensor, alpha: float, beta: float,
                       suppress: list[int] = ()) -> torch.Tensor:
    """VCD's next-token logits from the clean-image and noisy-image logits (float, [..., vocab]):
    (1 + alpha) * clean - alpha * noisy where clean's probability >= beta * its largest, else -inf.
    Tokens in ``suppress`` are never candidates (they are removed before the plausibility cutoff)."""
    clean = clean.float().clone()
    noisy = noisy.float()
    if suppress:
        clean[..., list(suppress)] = -math.inf
    # softmax normalisation cancels in the ratio p / p_max, so the cutoff works on logits directly
    cutoff = clean.max(dim=-1, keepdim=True).values + (math.log(beta) if beta > 0 else -math.inf)
    keep = (clean >= cutoff) & torch.isfinite(clean)
    combined = (1 + alpha) * clean - alpha * noisy
    return combined.masked_fill(~keep, -math.inf)


def _check_options(noise_place, alpha, beta, do_sample, temperature, max_new_tokens) -> None:
    if noise_place not in PLACES:
        raise ValueError(f"noise_place must be one of {PLACES}, got {noise_place!r}")
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0 (VCD's default is 1), got {alpha!r}")
    if not (isinstance(beta, (int, float)) and 0 <= beta <= 1):
        raise ValueError(f"beta must be in [0, 1] (VCD's default is 0.1), got {beta!r}")
    if do_sample and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")


def contrastive_negatives(model, processor, images: list[Image.Image], questions: list[str],
                          noise_place: str = "pixels", step: int = 900, alpha: float = 1.0, beta: float = 0.1,
                          do_sample: bool = True, temperature: float = 1.0, max_new_tokens: int = 96,
                          batch_size: int = 32, seed: int = 0, progress: bool = True,
                          autocast: bool | None = None) -> list[str]:
    """One answer per (image, question) decoded with VCD's contrastive rule against the image
    weakened by diffusion noise at ``noise_place`` and ``step`` (the released BPO code's
    negatives; see the module docstring). Answers are decoded without special tokens, trimmed, and
    returned in input order. ``autocast`` as in ``generate``."""
    if images is None:
        raise ValueError("contrastive decoding contrasts a clean and a noisy image: images must not be None")
    _check_options(noise_place, alpha, beta, do_sample, temperature, max_new_tokens)
    if not isinstance(step, int) or not 0 <= step < T:
        raise ValueError(f"noise step must be an int in 0..{T - 1}, got {step!r}")
    eos = torch.tensor(_eos_ids(model, processor.tokenizer), device=model.device)
    pad_id = processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None else int(eos[0])
    suppress = [model.config.image_token_index]

    def decode(inputs, b):
        return _decode_batch(model, inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"],
                             noise_place, step, seed + b, alpha, beta, do_sample, temperature, max_new_tokens,
                             eos, pad_id, suppress)

    return decode_batches(model, processor, images, questions, decode, max_new_tokens, batch_size, seed, autocast,
                          progress, desc="contrastive").texts


def _decode_batch(model, input_ids, attention_mask, pixel_values, noise_place, step, noise_seed, alpha, beta,
                  do_sample, temperature, max_new_tokens, eos, pad_id, suppress) -> torch.Tensor:
    """New token ids [batch, n <= max_new_tokens] of one left-padded batch, pad after each row's end."""
    batch = input_ids.shape[0]
    # As model.generate: positions count real tokens only, so a left-padded row starts at 0.
    position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    next_position = attention_mask.long().sum(-1, keepdim=True)  # [batch, 1]
    prompt = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                  pixel_values=pixel_values, use_cache=True, logits_to_keep=1)
    clean_out = model(**prompt)
    # Only the prompt pass sees the image; the noise comes from weakened()'s own generator, so the
    # sampling stream stays generate()'s for the seed.
    with weakened(model, noise_place, step, noise_seed):
        noisy_out = model(**prompt)
    clean_cache, noisy_cache = clean_out.past_key_values, noisy_out.past_key_values
    clean_logits, noisy_logits = clean_out.logits[:, -1], noisy_out.logits[:, -1]

    mask = attention_mask
    tokens = input_ids.new_full((batch, max_new_tokens), pad_id)
    rows = torch.arange(batch, device=input_ids.device)  # which batch row each live row is
    n = 0
    for t in range(max_new_tokens):
        logits = contrastive_logits(clean_logits, noisy_logits, alpha, beta, suppress)
        if do_sample:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = torch.multinomial(probs, num_samples=1).squeeze(1)
        else:
            token = logits.argmax(dim=-1)
        tokens[rows, t] = token
        n = t + 1
        going = ~torch.isin(token, eos)
        if not going.any() or t == max_new_tokens - 1:
            break
        if not going.all():  # ended rows leave the batch and both caches
            keep = going.nonzero().squeeze(1)
            noisy_cache.batch_select_indices(keep)
            rows, mask, next_position, token = select_rows(clean_cache, keep, rows, mask, next_position, token)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=-1)
        step_inputs = dict(input_ids=token[:, None], attention_mask=mask, position_ids=next_position + t,
                           use_cache=True, logits_to_keep=1)
        clean_logits = model(**step_inputs, **with_cache(model, clean_cache)).logits[:, -1]
        noisy_logits = model(**step_inputs, **with_cache(model, noisy_cache)).logits[:, -1]
    return tokens[:, :n]
