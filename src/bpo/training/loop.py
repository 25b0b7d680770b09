"""One small training loop for every stage: AdamW, linear warm-up then cosine decay, gradient
clipping, bf16 autocast on the CPU, a progress bar, and a log of every step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from bpo.precision import autocast


@dataclass(frozen=True)
class OptimConfig:
    lr: float
    warmup_ratio: float = 0.03  # LLaVA's and BPO's schedule: 3 % warm-up, then cosine
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = True  # autocast matmuls to bf16: ~3-4x faster than fp32 on these CPUs

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


def lr_at(step: int, total: int, cfg: OptimConfig) -> float:
    warmup = max(1, round(cfg.warmup_ratio * total))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_steps(params: list[torch.nn.Parameter], batches: Iterable, loss_fn: Callable, total: int,
                cfg: OptimConfig, desc: str = "train", progress: bool = True) -> list[dict]:
    """Run ``loss_fn(batch) -> (loss, n_tokens)`` over ``batches`` (``total`` of them); returns one
    log row per step: step, loss, lr, tokens, seconds."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError(f"{desc}: nothing to train (no parameter requires grad)")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)  # fused: 3x faster update
    log = []
    bar = tqdm(batches, total=total, desc=desc, disable=not progress, leave=False)
    for step, batch in enumerate(bar):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, cfg)
        with autocast(cfg.bf16):
            loss, n_tokens = loss_fn(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        log.append({"step": step, "loss": loss.item(), "lr": opt.param_groups[0]["lr"], "tokens": int(n_tokens),
                    "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return log
