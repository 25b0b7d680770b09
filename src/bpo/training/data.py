"""Training batches: conversations encoded once, batches grouped by length so padding wastes
little, and vision features computed once per image."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from bpo.models.chat import IGNORE_INDEX, encode_example
from bpo.models.forward import pixel_values, vision_features
from bpo.precision import autocast, storage_dtype


def encode_all(processor, conversations: list[list[dict]], n_image_tokens: int, max_length: int) -> list[tuple]:
    """(ids, labels) for each conversation; one too long is cut at ``max_length`` (never inside the
    image: that raises)."""
    return [encode_example(processor, turns, n_image_tokens, max_length=max_length) for turns in conversations]


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epochs: int = 1) -> list[list[int]]:
    """Batches of indices: shuffled, then sorted by length within windows of 32 batches, so each
    batch holds similar lengths while the order of batches stays random."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(lengths))
        window = batch_size * 32
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(examples: list[tuple], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (padding carries no loss)."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (x, y) in enumerate(examples):
        ids[row, :len(x)] = torch.tensor(x)
        labels[row, :len(y)] = torch.tensor(y)
        mask[row, :len(x)] = 1
    return ids, mask, labels


def image_features(model, processor, images, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Frozen vision-tower features of every image, [N, n_image_tokens, vision_hidden]; bf16 (half
    the memory) where they feed a bf16-autocast projector (``bpo.precision``), else fp32."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="vision features", disable=not progress, leave=False):
        with autocast(True):
            feats = vision_features(model, pixel_values(processor, images[start:start + batch_size]))
            out.append(feats.to(storage_dtype()))
    return torch.cat(out)
