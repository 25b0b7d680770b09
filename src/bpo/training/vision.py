"""Vision pre-training that sees: the preset's own tower learns the world from the renderer's
exact ground truth, as the analogue of a strong pre-trained CLIP.

Every patch is told which thing covers it (one of the 40 nouns, the sign, or background), that
thing's colour and count, and, on a sign, the sign's text; the image is told its place. Scenes are
drawn fresh for every step with **objects independent of the place** (``independent_scene``), so no
context can stand in for an object: the place -> object bias must stay the LM's, as with a real
CLIP that has seen objects everywhere. The heads are linear, so that what they read is in the
features a projector gets; they are dropped after training.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bpo.training.config import BaseTrainingConfig
from bpo.training.data import collate, length_grouped_batches
from bpo.training.loop import OptimConfig, train_steps
from bpo.world import vocab
from bpo.world.render import render_with_masks
from bpo.world.scene import CELLS, SIGN_KINDS, Scene, SceneObject, Sign, item_rng

NOUNS = tuple(vocab.OBJECTS)
BACKGROUND, SIGN = 0, len(NOUNS) + 1  # patch classes: 0 background, 1..40 nouns, 41 sign
N_PATCH_CLASSES = len(NOUNS) + 2
COLOURS = tuple(vocab.COLOURS)
SIGN_TEXTS = (*vocab.SIGN_WORDS, *(str(n) for n in range(10, 100)),
              *(f"{a}+{b}" for a in range(1, 10) for b in range(1, 10)))
IGNORE = -100
# A patch belongs to a thing when that thing paints at least this share of it (else background):
# a 16 px patch at the edge of a small icon holds a few of its pixels, too few to name it by.
MIN_COVER = 0.1


def independent_scene(rng: np.random.Generator, scene_id: str, max_objects: int = 6, sign_rate: float = 0.5) -> Scene:
    """A scene whose objects, colours and counts are drawn independently of its place (uniformly),
    and whose typicality is only a label: what the prior would say about it."""
    place = vocab.PLACES[rng.integers(len(vocab.PLACES))]
    has_sign = rng.random() < sign_rate
    n = int(rng.integers(1, min(max_objects, len(CELLS) - int(has_sign)) + 1))
    names = [NOUNS[i] for i in rng.choice(len(NOUNS), size=n, replace=False)]
    cells = rng.permutation(len(CELLS))
    objects = tuple(SceneObject(name, COLOURS[rng.integers(len(COLOURS))], int(rng.integers(1, vocab.MAX_COUNT + 1)),
                                *CELLS[cell]) for name, cell in zip(names, cells))
    sign = None
    if has_sign:
        text = SIGN_TEXTS[rng.integers(len(SIGN_TEXTS))]
        kind = "sum" if "+" in text else ("number" if text.isdigit() else "word")
        sign = Sign(kind, text, *CELLS[cells[n]])
    typical = [name in vocab.PRIOR_WEIGHTS[place] for name in names]
    typicality = "typical" if all(typical) else ("atypical" if not any(typical) else "mixed")
    return Scene(scene_id, place, objects, sign, typicality)


assert set(SIGN_KINDS) == {"word", "number", "sum"}  # the kinds independent_scene writes


def patch_grid(size: int, patch: int) -> int:
    if size % patch:
        raise ValueError(f"image size {size} is not a multiple of the patch size {patch}")
    return size // patch


def patch_labels(scene: Scene, masks: dict[str, np.ndarray], patch: int) -> np.ndarray:
    """Which thing covers each patch, row-major like the tower's patch tokens: the thing painting
    the largest share of the patch if that share is at least ``MIN_COVER``, else background."""
    size = next(iter(masks.values())).shape[0] if masks else None
    if size is None:
        raise ValueError(f"scene {scene.scene_id}: no masks")
    g = patch_grid(size, patch)
    names = [o.name for o in scene.objects] + (["sign"] if scene.sign else [])
    if set(names) != set(masks):
        raise ValueError(f"scene {scene.scene_id}: masks {sorted(masks)} do not match its things {sorted(names)}")
    cover = np.stack([masks[n].reshape(g, patch, g, patch).sum(axis=(1, 3)) for n in names]) / patch**2
    best = cover.argmax(axis=0)
    ids = np.array([NOUNS.index(n) + 1 if n != "sign" else SIGN for n in names])
    return np.where(cover.max(axis=0) >= MIN_COVER, ids[best], BACKGROUND).reshape(-1)


def scene_targets(scene: Scene, masks: dict[str, np.ndarray], patch: int) -> dict[str, np.ndarray]:
    """Training targets of one image: per patch noun class, colour, count and sign text (IGNORE where
    they do not apply), and the place."""
    noun = patch_labels(scene, masks, patch)
    colour = np.full_like(noun, IGNORE)
    count = np.full_like(noun, IGNORE)
    text = np.full_like(noun, IGNORE)
    for o in scene.objects:
        at = noun == NOUNS.index(o.name) + 1
        colour[at], count[at] = COLOURS.index(o.colour), o.count - 1
    if scene.sign:
        text[noun == SIGN] = SIGN_TEXTS.index(scene.sign.text)
    return {"noun": noun, "colour": colour, "count": count, "text": text,
            "place": np.array(vocab.PLACES.index(scene.place))}


def render_batch(scenes: list[Scene], size: int, patch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Pixels (normalised as the LLaVA processor does) and stacked targets of ``scenes``."""
    from bpo.models.llava import CLIP_MEAN, CLIP_STD

    images, targets = [], []
    for scene in scenes:
        image, masks, _ = render_with_masks(scene, size)
        images.append(np.asarray(image))
        targets.append(scene_targets(scene, masks, patch))
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    pixels = (pixels - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    return pixels, {k: torch.from_numpy(np.stack([t[k] for t in targets])).long() for k in targets[0]}


class SeeingHeads(nn.Module):
    """Linear read-outs of patch features: noun, colour, count and sign text per patch, place from
    their mean."""

    def __init__(self, hidden: int):
        super().__init__()
        self.heads = nn.ModuleDict({"noun": nn.Linear(hidden, N_PATCH_CLASSES), "colour": nn.Linear(hidden, len(COLOURS)),
                                    "count": nn.Linear(hidden, vocab.MAX_COUNT), "text": nn.Linear(hidden, len(SIGN_TEXTS)),
                                    "place": nn.Linear(hidden, len(vocab.PLACES))})

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {k: head(feats) for k, head in self.heads.items() if k != "place"}
        out["place"] = self.heads["place"](feats.mean(dim=1))
        return out

    @staticmethod
    def loss(out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum of the heads' cross-entropies; a head with no target in the batch adds nothing."""
        total = F.cross_entropy(out["place"].float(), targets["place"])
        for k in ("noun", "colour", "count", "text"):
            t = targets[k].reshape(-1)
            if bool((t != IGNORE).any()):
                total = total + F.cross_entropy(out[k].float().reshape(t.numel(), -1), t, ignore_index=IGNORE)
        return total


def tower_features(tower, pixels: torch.Tensor, layer: int) -> torch.Tensor:
    """[B, patches, hidden]: the tower's hidden state at ``layer`` (LLaVA's ``vision_feature_layer``),
    CLS dropped: the features the projector will read."""
    return tower(pixels, output_hidden_states=True).hidden_states[layer][:, 1:]


def scene_stream(seed: int, stream: str, start: int, n: int) -> list[Scene]:
    return [independent_scene(item_rng(seed, stream, i), f"{stream}-{i:07d}") for i in range(start, start + n)]


def pretrain_supervised(model, cfg: BaseTrainingConfig, progress: bool = True) -> list[dict]:
    """Train the model's vision tower (and throw-away heads) on ``cfg.vision_images`` freshly drawn
    independent scenes, ``cfg.vision_batch`` per step; returns the step log (images as tokens)."""
    tower = model.model.vision_tower
    vcfg = model.config.vision_config
    torch.manual_seed(cfg.seed)
    heads = SeeingHeads(vcfg.hidden_size)
    steps = max(1, cfg.vision_images // cfg.vision_batch)
    layer = model.config.vision_feature_layer

    def loss_fn(step):
        pixels, targets = render_batch(scene_stream(cfg.seed, "vision-pretrain", step * cfg.vision_batch, cfg.vision_batch),
                                       vcfg.image_size, vcfg.patch_size)
        return SeeingHeads.loss(heads(tower_features(tower, pixels, layer)), targets), len(pixels)

    tower.train()
    for p in tower.parameters():
        p.requires_grad_(True)
    return train_steps([*tower.parameters(), *heads.parameters()], iter(range(steps)), loss_fn, steps,
                       OptimConfig(cfg.vision_lr, warmup_ratio=0.05, weight_decay=0.05), "1 vision pre-training (supervised)",
                       progress)


def pretrain_contrastive(model, processor, images, captions: list[str], cfg: BaseTrainingConfig, progress: bool) -> list[dict]:
    """CLIP-style contrastive pre-training on the world's captions (the alternative objective): a
    ``CLIPModel`` whose vision half has the model's tower shape, copied back in afterwards."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig

    from bpo.models.forward import pixel_values

    tok = processor.tokenizer
    vision_cfg = model.config.vision_config
    eos = tok.convert_tokens_to_ids("<|endoftext|>")  # not id 2: CLIP treats eos id 2 as a legacy case
    text_cfg = CLIPTextConfig(vocab_size=len(tok), hidden_size=vision_cfg.hidden_size, intermediate_size=4 * vision_cfg.hidden_size,
                              num_hidden_layers=2, num_attention_heads=vision_cfg.num_attention_heads,
                              max_position_embeddings=64, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos)
    torch.manual_seed(cfg.seed)
    clip = CLIPModel(CLIPConfig(text_config=text_cfg.to_dict(), vision_config=vision_cfg.to_dict(),
                                projection_dim=vision_cfg.hidden_size))
    clip.vision_model.load_state_dict(model.model.vision_tower.state_dict())
    encoded = [tok(c, add_special_tokens=False).input_ids[:63] + [eos] for c in captions]
    pixels = pixel_values(processor, images)
    batches = length_grouped_batches([1] * len(images), cfg.vision_batch, cfg.seed, cfg.vision_epochs)

    def loss_fn(batch):
        ids, mask, _ = collate([(encoded[i], encoded[i]) for i in batch], eos)
        return clip(input_ids=ids, attention_mask=mask, pixel_values=pixels[batch], return_loss=True).loss, len(batch)

    log = train_steps(list(clip.parameters()), iter(batches), loss_fn, len(batches),
                      OptimConfig(cfg.vision_lr, weight_decay=0.1), "1 vision pre-training (CLIP)", progress)
    model.model.vision_tower.load_state_dict(clip.vision_model.state_dict())
    return log
