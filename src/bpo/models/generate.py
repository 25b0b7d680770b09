"""Answers from a LLaVA: batched, KV-cached generation that returns text in the caller's order.

On a CPU one prompt at a time leaves the matrix units idle (a decode step is a matrix-vector
product per layer), so prompts are generated in batches:

- prompts are sorted by token length before batching, so each batch pads little, and the answers
  are put back in input order at the end;
- padding is on the left (the processor's ``padding_side``), so every row continues at its last
  column; position ids come from the attention mask (as ``model.generate`` derives them), so a
  padded row is computed as if it were alone;
- a row that has ended leaves the batch and its KV cache (``select_rows``): ``model.generate``
  computes every row until the longest ends, and for descriptions most of a batch's steps went
  to rows that were done (``benchmarks/decode_speed.py`` compares the two);
- on a CPU where bf16 pays (``bpo.precision``) the forward passes run under bf16 autocast (3-4x
  faster matmuls than fp32 there) unless the model is bf16 already; ``autocast=False`` keeps fp32
  (exact batched == one-by-one);
- sampling is seeded per batch (``seed + batch index``) inside a forked RNG: the same call gives
  the same answers, and the caller's global RNG is left untouched.

``decode_batches`` is that loop, shared by every decoder: ``generate`` (greedy or sampled, the
tokens ``model.generate`` would choose) and the contrastive decoder of ``bpo.preference.contrastive``. It also says
which answers were cut at the token budget (``truncated``), so a judge can count them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm.auto import tqdm

from bpo.models.chat import prompt_text
from bpo.precision import bf16_pays


def _check_inputs(images, questions) -> None:
    if images is None:  # text only
        images = [False] * len(questions)
    if len(images) != len(questions):
        raise ValueError(f"got {len(images)} images but {len(questions)} questions: need one image per question")
    for i, q in enumerate(questions):
        if not isinstance(q, str):
            raise TypeError(f"questions[{i}] is {type(q).__name__}, not str")
    for i, image in enumerate(images):
        if image is None:
            raise ValueError(f"images[{i}] is None: every question needs an image")


def prompt_batches(processor, questions: list[str], batch_size: int, with_image: bool = True):
    """(prompt texts, batches of indices): prompts sorted by token length so each batch pads
    little (ties keep input order); the tokenizer must pad on the left."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tok = processor.tokenizer
    if tok.padding_side != "left":
        # Right padding would make every shorter row continue after its pad tokens.
        raise ValueError(f"processor.tokenizer.padding_side is {tok.padding_side!r}: generation needs 'left'")
    if not questions:
        return [], []
    texts = [prompt_text(processor, q, with_image=with_image) for q in questions]
    # Every prompt has the same number of image tokens, so the unexpanded length orders them correctly.
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=False).input_ids]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    return texts, [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


def _use_autocast(model, autocast: bool | None) -> bool:
    if autocast is not None:
        return autocast
    # Auto: bf16 autocast only on a CPU where bf16 pays, with an fp32 model; on CUDA the caller picks the dtype.
    return model.device.type == "cpu" and model.dtype != torch.bfloat16 and bf16_pays("cpu")


@dataclass
class Answers:
    """Decoded answers in input order, and whether each was cut at the token budget (it used all
    ``max_new_tokens`` without ending)."""

    texts: list[str]
    truncated: list[bool]


def decode_batches(model, processor, images: list[Image.Image] | None, questions: list[str],
                   decode: Callable[[dict, int], torch.Tensor], max_new_tokens: int, batch_size: int = 32,
                   seed: int = 0, autocast: bool | None = None, progress: bool = True,
                   desc: str = "generate") -> Answers:
    """The loop every decoder shares: length-sorted left-padded batches, the model in eval mode,
    bf16 autocast where it pays, a forked RNG seeded ``seed + b`` per batch, and text back in input
    order. ``decode(inputs, b)`` returns batch ``b``'s new token ids [rows, <= max_new_tokens],
    padded after each row's end; ``inputs`` holds input_ids, attention_mask and, with images,
    pixel_values in the model's dtype."""
    _check_inputs(images, questions)
    texts, batches = prompt_batches(processor, questions, batch_size, with_image=images is not None)
    tok = processor.tokenizer
    use_autocast = _use_autocast(model, autocast)
    device = model.device
    ends = torch.tensor(sorted({i for i in (*_eos_ids(model, tok), tok.pad_token_id) if i is not None}), device=device)
    answers: list[str | None] = [None] * len(texts)
    cut: list[bool] = [False] * len(texts)
    was_training = model.training
    model.eval()
    try:
        for b, idx in enumerate(tqdm(batches, desc=desc, disable=not progress, leave=False)):
            if images is None:
                inputs = tok([texts[i] for i in idx], padding=True, add_special_tokens=False,
                             return_tensors="pt").to(device)
            else:
                inputs = processor(text=[texts[i] for i in idx], images=[images[i] for i in idx],
                                   padding=True, return_tensors="pt").to(device)
                inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
            fork_devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=fork_devices), torch.inference_mode(), \
                    torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
                torch.manual_seed(seed + b)  # per batch: reproducible whatever ran before
                new = decode(inputs, b)
            full = new.shape[1] == max_new_tokens > 0
            for row, (i, text) in enumerate(zip(idx, tok.batch_decode(new, skip_special_tokens=True))):
                answers[i] = text.strip()
                cut[i] = bool(full and not torch.isin(new[row, -1], ends))
    finally:
        model.train(was_training)
    return Answers(answers, cut)


def _eos_ids(model, tok) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tok.eos_token_id is not None:
        ids.append(tok.eos_token_id)
    return sorted(set(ids))


@functools.cache
def _cache_argument(forward_of: type) -> str:
    return "cache" if "cache" in inspect.signature(forward_of.forward).parameters else "past_key_values"


def with_cache(module, cache) -> dict:
    """``{name: cache}`` under the name ``module``'s forward takes: transformers 5.24 renamed
    ``past_key_values`` to ``cache`` and drops the old name in 5.40, where a ``past_key_values``
    would vanish into ``**kwargs`` and every step would run without its context. A peft model
    is asked through the model it wraps (its own forward takes only ``**kwargs``)."""
    base = module.get_base_model() if hasattr(module, "get_base_model") else module
    return {_cache_argument(type(base)): cache}


def select_rows(cache, keep: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep only the batch rows ``keep`` of a KV ``cache`` (in place) and of ``tensors``: finished
    rows leave the batch, so each step costs what the rows still talking need."""
    cache.batch_select_indices(keep)
    return tuple(t[keep] for t in tensors)


def _next_token(logits: torch.Tensor, t: int, suppress: list[int], eos: torch.Tensor, min_new_tokens: int,
                do_sample: bool, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The next token of each row from its logits, as ``model.generate``'s processors choose it
    (the same tokens: tests/test_generate.py compares): suppressed tokens and (before
    ``min_new_tokens``) the ends get -inf; then greedy, or sampling after temperature, top-k and
    nucleus (top-p) filtering."""
    scores = logits.float()
    scores[:, suppress] = float("-inf")
    if t < min_new_tokens:
        scores[:, eos] = float("-inf")
    if not do_sample:
        return scores.argmax(dim=-1)
    scores = scores / temperature
    if 0 < top_k < scores.shape[-1]:
        scores = scores.masked_fill(scores < torch.topk(scores, top_k).values[:, -1:], float("-inf"))
    if top_p < 1.0:
        # As transformers' TopPLogitsWarper: drop the least likely tokens whose total is <= 1 - top_p,
        # always keeping the most likely one.
        sorted_scores, order = torch.sort(scores, descending=False)
        drop = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[:, -1] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


def _decode_batch(model, inputs: dict, max_new_tokens: int, eos: torch.Tensor, pad_id: int, suppress: list[int],
                  min_new_tokens: int, do_sample: bool, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """New token ids [batch, n <= max_new_tokens] of one left-padded batch, pad after each row's end.

    A KV-cached loop like ``model.generate``'s, but a row that has ended leaves the batch
    (``select_rows``): ``model.generate`` keeps computing every row until the longest ends, which
    for descriptions spent most of the batch's steps on rows that were already done."""
    input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
    batch = input_ids.shape[0]
    # As model.generate: positions count real tokens only, so a left-padded row starts at 0.
    position_ids = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    next_position = mask.long().sum(-1, keepdim=True)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                pixel_values=inputs.get("pixel_values"), use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, out.logits[:, -1]
    tokens = input_ids.new_full((batch, max_new_tokens), pad_id)
    rows = torch.arange(batch, device=input_ids.device)  # which batch row each live row is
    n = 0
    for t in range(max_new_tokens):
        token = _next_token(logits, t, suppress, eos, min_new_tokens, do_sample, temperature, top_k, top_p)
        tokens[rows, t] = token
        n = t + 1
        going = ~torch.isin(token, eos)
        if t == max_new_tokens - 1 or not going.any():
            break
        if not going.all():
            rows, mask, next_position, token = select_rows(cache, going.nonzero().squeeze(1), rows, mask,
                                                           next_position, token)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=-1)
        logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position + t,
                       use_cache=True, logits_to_keep=1, **with_cache(model, cache)).logits[:, -1]
    return tokens[:, :n]


def generate(model, processor, images: list[Image.Image] | None, questions: list[str], max_new_tokens: int = 96,
             batch_size: int = 32, do_sample: bool = False, temperature: float = 1.0, top_k: int = 50,
             top_p: float = 1.0, seed: int = 0, progress: bool = True, autocast: bool | None = None,
             min_new_tokens: int | None = None, with_truncation: bool = False) -> list[str] | Answers:
    """The model's answer to each (image, question), decoded without special tokens and trimmed,
    in input order. ``images=None`` asks the LM component alone (no image in the prompt).

    ``autocast``: None = bf16 autocast on a CPU where bf16 pays, unless the model is bf16 already;
    True/False force it on/off. ``min_new_tokens`` suppresses end-of-sequence before that many tokens (benchmarks).
    ``with_truncation=True`` returns :class:`Answers` (texts and which were cut at the budget).
    Sampling keeps the ``top_k`` most likely tokens (0: all); 50 is the default ``model.generate``
    applied when this module called it. The image token is never emitted: it would ask the next
    step for image features that do not exist.
    """
    if not temperature > 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ValueError(f"generate: temperature must be > 0, top_k >= 0 and top_p in (0, 1], got {temperature}, "
                         f"{top_k}, {top_p}")
    tok = processor.tokenizer
    eos = torch.tensor(_eos_ids(model, tok), device=model.device)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else int(eos[0])
    suppress = [model.config.image_token_index]

    def decode(inputs, b):
        return _decode_batch(model, inputs, max_new_tokens, eos, pad_id, suppress, min_new_tokens or 0, do_sample,
                             temperature, top_k, top_p)

    answers = decode_batches(model, processor, images, questions, decode, max_new_tokens, batch_size, seed,
                             autocast, progress)
    return answers if with_truncation else answers.texts
