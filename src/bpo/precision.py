"""Whether bf16 pays on this machine, and the bf16 choices that follow from it.

The repository computes in bf16 where the hardware has it: bf16 autocast in training and decoding,
and a bf16 copy of an fp32 model for answering. On CPUs with oneDNN's bf16 path (AVX-512 or AMX)
bf16 matmuls ran 4-6x faster than fp32 on the machines this was built on. On an AVX2-only CPU torch
has no fast bf16 kernel, and bf16 there is slower than fp32 by two orders of magnitude
(``python benchmarks/train_throughput.py --peaks-only`` measures both peaks), so the same code runs
in fp32. ``BPO_BF16=0`` or ``BPO_BF16=1`` overrides the hardware's answer (tests use it to run both
paths on any machine).

The answer is in the cache key of every stage that computes with a model (``bpo.cache``): an
artefact made in bf16 is never reused by an fp32 run, or the other way round.
"""

from __future__ import annotations

import copy
import os
from contextlib import nullcontext

import torch

ENV = "BPO_BF16"


def bf16_pays(device_type: str = "cpu") -> bool:
    """True when bf16 compute is fast on ``device_type`` ("cpu" or "cuda"), or as ``BPO_BF16`` says."""
    forced = os.environ.get(ENV)
    if forced is not None:
        if forced not in ("0", "1"):
            raise ValueError(f"{ENV} must be 0 or 1 (or unset: ask the hardware), got {forced!r}")
        return forced == "1"
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def autocast(enabled: bool, device_type: str = "cpu"):
    """bf16 autocast on ``device_type`` when ``enabled`` and bf16 pays there; fp32 otherwise."""
    if enabled and bf16_pays(device_type):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return nullcontext()


def answering_copy(model):
    """The model to answer with: on a CPU where bf16 pays, an fp32 model answers through a bf16 copy
    (2.5x faster one by one, 1.15x batched, than fp32 weights under autocast); otherwise the model."""
    if model.device.type == "cpu" and model.dtype == torch.float32 and bf16_pays("cpu"):
        return copy.deepcopy(model).to(torch.bfloat16)
    return model


def storage_dtype(device_type: str = "cpu") -> torch.dtype:
    """The dtype to keep cached activations in: bf16 (half the memory) when they feed bf16 compute."""
    return torch.bfloat16 if bf16_pays(device_type) else torch.float32
