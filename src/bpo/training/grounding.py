"""Projector warm start: image tokens that look like the words for what they show.

A real CLIP's features are already aligned with language (its contrastive training ties them to
text), so LLaVA's small projector has an easy job. Our tower learned to see from masks, not from
text, and 50 caption steps of the projector leave the LM barely reading it (held-out caption loss
2.17 with the right image against 2.57 with another image's). This stage closes that gap without
the LM: before the caption alignment, the projector is regressed, patch by patch, onto the LM's own
input embeddings of the words for what covers the patch (its noun + colour + count word; the sign
word + the sign's text; the place word for background), on freshly drawn place-independent scenes.
The LM then finds, at each image position, a vector close to the words it would use, and the
caption and instruction stages refine the mapping. Only tower forward passes and the small
projector are involved: thousands of images per minute on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bpo.training.config import BaseTrainingConfig
from bpo.training.loop import OptimConfig, train_steps
from bpo.training.vision import (BACKGROUND, COLOURS, IGNORE, NOUNS, SIGN, SIGN_TEXTS, render_batch, scene_stream,
                                 tower_features)
from bpo.world import vocab


def word_vector(embed: torch.nn.Embedding, tokenizer, text: str) -> torch.Tensor:
    """Mean input embedding of the tokens of ``text`` as it appears mid-sentence (leading space)."""
    ids = tokenizer(" " + text, add_special_tokens=False).input_ids
    if not ids:
        raise ValueError(f"word_vector: the tokenizer gives no token for {text!r}")
    return embed.weight[ids].float().mean(dim=0)


def word_tables(model, tokenizer) -> dict[str, torch.Tensor]:
    """The LM's input embeddings of every noun (row 0 unused: background), colour, count word, sign
    text and place, plus the word "sign", as float tables indexed like the patch targets."""
    embed = model.get_input_embeddings()
    with torch.no_grad():
        stack = lambda words: torch.stack([word_vector(embed, tokenizer, w) for w in words])  # noqa: E731
        nouns = stack(NOUNS)
        return {"noun": torch.cat([torch.zeros(1, nouns.shape[1]), nouns, torch.zeros(1, nouns.shape[1])]),
                "colour": stack(COLOURS), "count": stack([vocab.COUNT_NAMES[c] for c in range(1, vocab.MAX_COUNT + 1)]),
                "text": stack(SIGN_TEXTS), "place": stack(vocab.PLACES), "sign": word_vector(embed, tokenizer, "sign")}


def patch_word_targets(targets: dict[str, torch.Tensor], tables: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, patches, lm_hidden]: per patch the sum of the word vectors for what covers it."""
    noun = targets["noun"]
    obj = (noun != BACKGROUND) & (noun != SIGN)
    out = tables["place"][targets["place"]][:, None, :].expand(*noun.shape, -1).clone()
    pick = lambda key, mask: tables[key][targets[key].clamp(min=0)] * mask[..., None]  # noqa: E731
    obj_vec = tables["noun"][noun] + pick("colour", targets["colour"] != IGNORE) + pick("count", targets["count"] != IGNORE)
    sign_vec = tables["sign"] + pick("text", targets["text"] != IGNORE)
    out = torch.where(obj[..., None], obj_vec, out)
    return torch.where((noun == SIGN)[..., None], sign_vec, out)


def ground_projector(model, tokenizer, cfg: BaseTrainingConfig, progress: bool = True) -> list[dict]:
    """Regress the projector onto the word vectors (:func:`patch_word_targets`) of
    ``cfg.ground_images`` fresh scenes, ``cfg.vision_batch`` per step; tower and LM frozen. The loss
    is the mean squared error relative to the targets' mean squared norm (1.0 = predicting zero)."""
    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    vcfg, layer = model.config.vision_config, model.config.vision_feature_layer
    tables = word_tables(model, tokenizer)
    scale = tables["noun"][1:-1].pow(2).sum(-1).mean()
    steps = max(1, cfg.ground_images // cfg.vision_batch)

    def loss_fn(step):
        scenes = scene_stream(cfg.seed, "projector-grounding", step * cfg.vision_batch, cfg.vision_batch)
        pixels, targets = render_batch(scenes, vcfg.image_size, vcfg.patch_size)
        with torch.no_grad():
            feats = tower_features(tower, pixels, layer)
        out = projector(feats).float()
        return F.mse_loss(out, patch_word_targets(targets, tables), reduction="none").sum(-1).mean() / scale, len(pixels)

    for p in model.parameters():
        p.requires_grad_(False)
    for p in projector.parameters():
        p.requires_grad_(True)
    return train_steps(list(projector.parameters()), iter(range(steps)), loss_fn, steps,
                       OptimConfig(cfg.ground_lr, warmup_ratio=0.05), "2a projector grounding", progress)
