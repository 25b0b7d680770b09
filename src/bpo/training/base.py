"""Training the base MLLM (the paper's "LLaVA-1.5" analogue), stage by stage:

0. ``lm``: ``tiny`` only: pre-train the LM on the world's prior-only text corpus (its bias), with
   ``lm_copy_texts`` texts that need reading the context and ``lm_presence_texts`` yes/no questions
   about it added (``bpo.training.lm_texts``);
1. ``vision``: pre-train the vision tower to see, supervised by the renderer's exact ground truth on
   scenes whose objects are independent of their place (``bpo.training.vision``; contrastive CLIP
   on the captions is the other objective);
2. ``ground`` (when ``ground_images`` > 0): warm-start the projector by regressing image tokens onto
   the LM's word vectors for what each patch shows (``bpo.training.grounding``: our tower learned
   from masks, not text, so unlike CLIP its features are not language-aligned);
3. ``align``: LLaVA stage 1, align the projector on captions (vision tower and LM frozen; with
   ``align_lm`` the LM learns too: tiny's, trained from scratch, has never read an image);
4. ``sft``: LLaVA stage 2, visual instruction tuning of projector + LM on a deliberately small mix
   of the three data sources (with ``sft_yes_no_turns`` presence questions before each:
   ``bpo.training.presence_turns``).

Each stage is saved (``save_pretrained``: model, processor, and the stage's loss log) under
``data/<preset>/base/<key>/<stage>/``; a run finds the last finished stage and goes on from there.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from bpo.cache import atomic_dir, stage_dir
from bpo.models.config import ModelConfig
from bpo.models.llava import build_model, load_pretrained
from bpo.training.config import BaseTrainingConfig
from bpo.models.forward import lm_loss, text_only_loss
from bpo.training.data import collate, encode_all, image_features, length_grouped_batches
from bpo.training.grounding import ground_projector
from bpo.training.lm_texts import copy_texts, presence_texts
from bpo.training.loop import OptimConfig, train_steps
from bpo.training.presence_turns import with_presence_turns
from bpo.training.vision import pretrain_contrastive, pretrain_supervised
from bpo.world.config import SOURCES
from bpo.world.scene import Scene

STAGES = ("lm", "vision", "ground", "align", "sft")


def _stages_for(preset: str, cfg: BaseTrainingConfig) -> tuple[str, ...]:
    skip = ({"lm"} if preset != "tiny" else set()) | ({"ground"} if not cfg.ground_images else set())
    return tuple(s for s in STAGES if s not in skip)


def base_dir(preset: str, world_key: dict, model_cfg: ModelConfig, train_cfg: BaseTrainingConfig):
    return stage_dir(preset, "base", {"world": world_key, "model": asdict(model_cfg), "train": asdict(train_cfg)})


def _images(ds, n: int):
    return [ds[i]["image"] for i in range(n)]


def pretrain_lm(model, processor, texts: list[str], cfg: BaseTrainingConfig, progress: bool) -> list[dict]:
    """Causal-LM pre-training of the (tiny) LM on plain text: where its prior comes from."""
    tok = processor.tokenizer
    encoded = [tok(t + tok.eos_token, add_special_tokens=False).input_ids[:256] for t in texts]
    batches = length_grouped_batches([len(e) for e in encoded], cfg.lm_batch, cfg.seed, cfg.lm_epochs)

    def loss_fn(batch):
        ids, mask, _ = collate([(encoded[i], encoded[i]) for i in batch], tok.pad_token_id)
        return text_only_loss(model, ids, mask), int(mask.sum())

    return train_steps(list(model.parameters()), iter(batches), loss_fn, len(batches), OptimConfig(cfg.lm_lr, weight_decay=0.01),
                       "0 lm pre-training", progress)


def train_on_conversations(model, processor, feats: torch.Tensor, conversations: list[list[dict]], lr: float,
                           epochs: int, cfg: BaseTrainingConfig, desc: str, progress: bool) -> list[dict]:
    """Next-token loss on the assistant's words, image features precomputed (``feats[i]`` for
    conversation ``i``). Trains whatever ``requires_grad`` says."""
    n_tokens = feats.shape[1]
    encoded = encode_all(processor, conversations, n_tokens, cfg.max_length)
    batches = length_grouped_batches([len(x) for x, _ in encoded], cfg.batch_size, cfg.seed, epochs)
    pad = processor.tokenizer.pad_token_id

    def loss_fn(batch):
        ids, mask, labels = collate([encoded[i] for i in batch], pad)
        return lm_loss(model, ids, mask, feats[batch], labels), int((labels != -100).sum())

    return train_steps(list(model.parameters()), iter(batches), loss_fn, len(batches), OptimConfig(lr), desc, progress)


def _freeze(model, trainable: tuple[str, ...]) -> None:
    parts = {"projector": model.model.multi_modal_projector, "lm": model.model.language_model,
             "vision": model.model.vision_tower}
    for p in model.parameters():
        p.requires_grad_(False)
    for name in trainable:
        for p in parts[name].parameters():
            p.requires_grad_(True)


def sft_mix(world: dict, n: int) -> list[tuple[str, int]]:
    """(source, index) of the stage-2 examples: the first ``n`` items, split evenly over the sources."""
    per = -(-n // len(SOURCES))
    picks = [(s, i) for s in SOURCES for i in range(min(per, len(world[s])))]
    return picks[:n]


def train_base_model(preset: str, world: dict, world_key: dict, model_cfg: ModelConfig,
                     cfg: BaseTrainingConfig, progress: bool = True, until: str | None = None):
    """(model, processor, logs by stage) of the trained base model; cached and resumable.
    ``until``: the last stage to train."""
    root = base_dir(preset, world_key, model_cfg, cfg)
    stages = _stages_for(preset, cfg)
    if until is not None:
        if until not in stages:
            raise ValueError(f"train_base_model: until must be one of {stages}, got {until!r}")
        stages = stages[:stages.index(until) + 1]
    done = [s for s in stages if (root / s / "config.json").exists()]
    if done:
        model, processor = load_pretrained(root / done[-1])
    else:
        model, processor = build_model(model_cfg, tokenizer_texts=list(world["corpus"]["text"]), progress=progress)
    model.float().train()
    logs = {s: json.loads((root / s / "log.json").read_text()) for s in done}
    for stage in stages[len(done):]:
        torch.manual_seed(cfg.seed)
        if stage == "lm":
            _freeze(model, ("lm",))
            texts = (list(world["corpus"]["text"]) + copy_texts(cfg.lm_copy_texts, cfg.seed)
                     + presence_texts(cfg.lm_presence_texts, cfg.seed))
            logs[stage] = pretrain_lm(model, processor, texts, cfg, progress)
        elif stage == "vision":
            if cfg.vision_objective == "supervised":
                logs[stage] = pretrain_supervised(model, cfg, progress)
            else:
                ds = world["caption"]
                captions = [c[-1]["content"] for c in ds["conversations"]]
                logs[stage] = pretrain_contrastive(model, processor, _images(ds, len(ds)), captions, cfg, progress)
        elif stage == "ground":
            logs[stage] = ground_projector(model, processor.tokenizer, cfg, progress)
        elif stage == "align":
            ds = world["caption"]
            n = min(cfg.align_examples, len(ds))
            _freeze(model, ("projector", "lm") if cfg.align_lm else ("projector",))
            feats = image_features(model, processor, _images(ds, n), progress=progress)
            desc = "2 alignment (projector + LM)" if cfg.align_lm else "2 projector alignment"
            logs[stage] = train_on_conversations(model, processor, feats, ds["conversations"][:n], cfg.align_lr,
                                                 cfg.align_epochs, cfg, desc, progress)
        else:
            picks = sft_mix(world, cfg.sft_examples)
            images = [world[s][i]["image"] for s, i in picks]
            conversations = [world[s][i]["conversations"] for s, i in picks]
            if cfg.sft_yes_no_turns:
                scenes = [Scene.from_json(world[s][i]["scene"]) for s, i in picks]
                conversations = with_presence_turns(conversations, scenes, cfg.sft_yes_no_turns, cfg.seed)
            _freeze(model, ("projector", "lm"))
            feats = image_features(model, processor, images, progress=progress)
            logs[stage] = train_on_conversations(model, processor, feats, conversations, cfg.sft_lr, cfg.sft_epochs,
                                                 cfg, "3 visual instruction tuning", progress)
        with atomic_dir(root / stage) as tmp:
            model.save_pretrained(tmp)
            processor.save_pretrained(tmp)
            (tmp / "log.json").write_text(json.dumps(logs[stage]))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, processor, logs


def log_frame(logs: dict[str, list[dict]]):
    """All stages' step logs in one long data frame (stage, step, loss, lr, tokens, seconds)."""
    import pandas as pd

    return pd.concat([pd.DataFrame(rows).assign(stage=stage) for stage, rows in logs.items()], ignore_index=True)


def stage_table(logs: dict[str, list[dict]]):
    """Per stage: steps, wall time, tokens (images for the vision stage), throughput, first and last loss."""
    frame = log_frame(logs)
    table = frame.groupby("stage", sort=False).agg(steps=("step", "size"), seconds=("seconds", "sum"),
                                                   tokens=("tokens", "sum"), first_loss=("loss", "first"),
                                                   last_loss=("loss", "last")).reset_index()
    table["per second"] = table.tokens / table.seconds
    table["unit"] = [{"vision": "images", "ground": "images", "lm": "tokens"}.get(s, "answer tokens") for s in table.stage]
    return table
