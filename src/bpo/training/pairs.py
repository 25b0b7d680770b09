"""Preference pairs as training tensors, with every frozen computation done once.

- Each pair's prompt + chosen and prompt + rejected are tokenised once (labels cover the response).
- The vision tower and projector are frozen in BPO, so each *distinct* image goes through them once
  for the whole run; chosen and rejected (and every pair of the same image) share its embeddings.
  trl's ``DataCollatorForVisionPreference`` repeats the images for chosen and rejected and runs
  the tower on both at every step (trl 1.16).
- The reference model is the base (adapters disabled) and never changes, so its summed log-probs
  of every pair are computed once, before training, and cached on disk under a key of the pairs,
  the model and the settings that change them. trl 1.16 refuses ``precompute_ref_log_probs`` for
  vision data sets and runs the reference forward at every step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bpo.models.forward import pixel_values, sequence_logprobs, vision_features
from bpo.noise import weakened
from bpo.models.chat import encode_example
from bpo.training.data import collate
from bpo.precision import autocast


@dataclass
class EncodedPairs:
    """Pairs ready for the LM: token ids and labels, and the row of each pair's image embeddings."""

    pair_ids: list[str]
    chosen: list[tuple[list[int], list[int]]]
    rejected: list[tuple[list[int], list[int]]]
    image_row: np.ndarray  # pair -> row of ``embeds``
    embeds: torch.Tensor  # [n distinct images, n_image_tokens, lm_hidden]: projector outputs
    weak_embeds: torch.Tensor | None = None  # the same images weakened (mDPO's conditional term)

    def __len__(self) -> int:
        return len(self.pair_ids)

    def lengths(self) -> list[int]:
        return [max(len(c[0]), len(r[0])) for c, r in zip(self.chosen, self.rejected)]


def select_pairs(ds, negative_types: tuple[str, ...] | None = None, max_pairs: int = 0, seed: int = 0):
    """The pairs a run trains on: those of ``negative_types`` (None = all), then, when
    ``max_pairs`` > 0, the first ``max_pairs`` of a shuffle seeded with ``seed``."""
    if negative_types is not None:
        unknown = set(negative_types) - set(ds["negative_type"])
        if unknown:
            raise ValueError(f"no pairs of negative type(s) {sorted(unknown)}; the set has "
                             f"{sorted(set(ds['negative_type']))}")
        keep = set(negative_types)
        ds = ds.select([i for i, t in enumerate(ds["negative_type"]) if t in keep])
    if max_pairs and max_pairs < len(ds):
        ds = ds.select(sorted(np.random.default_rng(seed).permutation(len(ds))[:max_pairs].tolist()))
    return ds


def _image_key(image) -> str:
    return hashlib.sha1(image.tobytes() + repr((image.size, image.mode)).encode()).hexdigest()


def _conversation(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


@torch.no_grad()
def image_embeddings(model, processor, images: list, batch_size: int = 64, weaken: tuple[str, int] | None = None,
                     seed: int = 0, bf16: bool = True, progress: bool = True) -> torch.Tensor:
    """Projector outputs of ``images`` [N, n_image_tokens, lm_hidden] (stored float32, computed
    under bf16 autocast as the base model's stage 2 saw them); ``weaken`` = (noise place, step)
    noises them as ``bpo.noise.weakened`` does."""
    out = []
    place, step = weaken if weaken else (None, 0)
    with weakened(model, place, step, seed), autocast(bf16, model.device.type):
        for start in tqdm(range(0, len(images), batch_size), desc="image embeddings", disable=not progress,
                          leave=False):
            feats = vision_features(model, pixel_values(processor, images[start:start + batch_size]).to(model.device))
            out.append(model.model.multi_modal_projector(feats).float())
    return torch.cat(out)


def encode_pairs(model, processor, ds, max_length: int, weaken: tuple[str, int] | None = None, seed: int = 0,
                 bf16: bool = True, progress: bool = True) -> EncodedPairs:
    """Tokenise every pair and embed every distinct image once (``weaken``: also its weakened copy)."""
    n_tokens = model.config.image_seq_length
    rows: dict[str, int] = {}
    images, image_row, chosen, rejected = [], [], [], []
    for i, pair in enumerate(tqdm(ds, desc="encode pairs", disable=not progress, leave=False)):
        if len(pair["images"]) != 1:
            raise ValueError(f"pair {pair['pair_id']} (row {i}): expected one image, got {len(pair['images'])}")
        image = pair["images"][0]
        key = _image_key(image)
        if key not in rows:
            rows[key] = len(images)
            images.append(image)
        image_row.append(rows[key])
        for response, out in ((pair["chosen"], chosen), (pair["rejected"], rejected)):
            out.append(encode_example(processor, _conversation(pair["prompt"], response), n_tokens, max_length=max_length))
    embeds = image_embeddings(model, processor, images, bf16=bf16, progress=progress)
    weak = image_embeddings(model, processor, images, weaken=weaken, seed=seed, bf16=bf16,
                            progress=progress) if weaken else None
    return EncodedPairs(list(ds["pair_id"]), chosen, rejected, np.asarray(image_row), embeds, weak)


def pair_batch(pairs: EncodedPairs, batch: list[int], pad_id: int, rows: str = "cr", weak_chosen: bool = False):
    """One forward's inputs: ``rows`` says which responses, stacked in that order ("c" chosen,
    "r" rejected), all with each pair's image; ``weak_chosen`` appends the chosen again with the
    weakened image. Returns (ids, mask, labels, image embeddings)."""
    examples, embeds = [], []
    image = pairs.embeds[pairs.image_row[batch]]
    for kind in rows:
        examples += [(pairs.chosen if kind == "c" else pairs.rejected)[i] for i in batch]
        embeds.append(image)
    if weak_chosen:
        examples += [pairs.chosen[i] for i in batch]
        embeds.append(pairs.weak_embeds[pairs.image_row[batch]])
    ids, mask, labels = (t.to(pairs.embeds.device) for t in collate(examples, pad_id))
    return ids, mask, labels, torch.cat(embeds)


@torch.no_grad()
def compute_reference(model, pairs: EncodedPairs, pad_id: int, batches: list[list[int]] | None = None,
                      bf16: bool = True, progress: bool = True) -> dict[str, torch.Tensor]:
    """Summed log-probs of chosen and rejected (and of the chosen with the weakened image, when
    the pairs carry one) under ``model`` as it is: call it on the base, or with adapters disabled.

    ``batches``: the training's first-epoch batches. bf16 rounding depends on a batch's shape
    (its padding, its size), so a reference made in the very batches the policy first sees makes
    step 0's policy and reference agree exactly (loss log 2, as trl's per-step reference gives);
    None groups similar lengths in batches of 16."""
    was_training = model.training
    model.eval()  # no LoRA dropout in the reference
    weak = pairs.weak_embeds is not None
    if batches is None:
        order = np.argsort(pairs.lengths()).tolist()  # similar lengths together: less padding
        batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    if sorted(i for b in batches for i in b) != list(range(len(pairs))):
        raise ValueError(f"the reference batches must hold every one of the {len(pairs)} pairs exactly once")
    result = {name: torch.empty(len(pairs)) for name in ("chosen", "rejected", *(("weak_chosen",) if weak else ()))}
    for batch in tqdm(batches, desc="reference log-probs", disable=not progress, leave=False):
        ids, mask, labels, embeds = pair_batch(pairs, batch, pad_id, "cr", weak_chosen=weak)
        with autocast(bf16, model.device.type):
            logps = sequence_logprobs(model, ids, mask, embeds, labels, projected=True).float().cpu()
        for name, part in zip(result, logps.split(len(batch))):
            result[name][batch] = part
    model.train(was_training)
    return result


def load_or_compute_reference(model, pairs: EncodedPairs, pad_id: int, cache: Path | None,
                              batches: list[list[int]] | None = None, bf16: bool = True,
                              progress: bool = True) -> dict[str, torch.Tensor]:
    """:func:`compute_reference`, read from ``cache`` (a ``.pt`` file) when it exists there."""
    if cache is not None and Path(cache).exists():
        saved = torch.load(cache)
        if saved["pair_ids"] != pairs.pair_ids or saved["batches"] != batches:
            raise ValueError(f"{cache} holds reference log-probs of other pairs or batches: delete it to recompute")
        return saved["logps"]
    logps = compute_reference(model, pairs, pad_id, batches, bf16, progress)
    if cache is not None:
        cache = Path(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save({"pair_ids": pairs.pair_ids, "batches": batches, "logps": logps}, tmp)
        tmp.replace(cache)
    return logps
