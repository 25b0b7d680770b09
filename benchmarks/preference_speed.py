"""How fast the base model makes negatives, batched with a KV cache against one at a time.

    python benchmarks/preference_speed.py [--preset smol] [--n 32] [--quick]

Uses the preset's trained base model (``bpo.pipeline.load_base``: trained first if not cached) and
ground truths from the preference rows of its world. Prints one Markdown table, a row per
generator, in the same run:

- image-weakened sampling (``sample_negatives``, noise on the preset's default place and step) and
  Table 1 error injection (``error_injection_negatives``, the LM alone): tokens generated per second
  with ``batch_size=32`` (the data-set builder's setting) against ``batch_size=1``;
- prior-guided injection: ground truths per second, scoring the alternatives on a shared KV cache of
  the context (``bpo.probing.score_continuations``) against scoring every alternative as a full
  sequence (what one would write without the cache).

The whole default data set is timed where it is made: ``03_preference_dataset`` prints its timings.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch

from bpo.models.chat import IGNORE_INDEX, prompt_text
from bpo.models.forward import sequence_logprobs
from bpo.pipeline import load_base
from bpo.preference import negatives as N
from bpo.preference.bootstrap import ground_truths
from bpo.presets import preference_config
from bpo.tables import to_markdown
from bpo.training.data import collate
from bpo.world.scene import Scene, item_rng


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _tokens(processor, texts: list[str]) -> int:
    return sum(len(ids) for ids in processor.tokenizer(texts, add_special_tokens=False).input_ids)


def full_sequence_logprobs(model, processor, question: str, prefix: str, continuations: list[str]) -> np.ndarray:
    """The peer of the shared-cache scorer: every continuation scored with its whole context."""
    tok = processor.tokenizer
    context = tok(prompt_text(processor, question, with_image=False) + prefix, add_special_tokens=False).input_ids
    rows = []
    for text in continuations:
        ids = tok(text, add_special_tokens=False).input_ids
        rows.append((context + ids, [IGNORE_INDEX] * len(context) + ids))
    ids, mask, labels = collate(rows, tok.pad_token_id)
    with torch.no_grad():
        return sequence_logprobs(model, ids, mask, None, labels, projected=True).float().numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--n", type=int, default=32, help="ground truths per generator (detail source)")
    parser.add_argument("--quick", action="store_true", help="8 ground truths: a smoke run")
    args = parser.parse_args(argv)
    n = 8 if args.quick else args.n

    base = load_base(args.preset, progress=False)
    cfg = preference_config(args.preset)
    model = copy.deepcopy(base.model).to(torch.bfloat16)  # as the builder runs it on a CPU
    truths = ground_truths(base.world, cfg)
    detail = truths[truths.source == "detail"].head(n)
    images = [base.world["detail"][int(r)]["image"] for r in detail.row]
    questions, answers = list(detail.question), list(detail.chosen)
    kw = dict(seed=0, max_new_tokens=96, progress=False)

    rows = []
    for name, make in [
        ("image-weakened sampling", lambda b: N.sample_negatives(model, base.processor, images, questions,
                                                                  cfg.noise_place, cfg.noise_step, batch_size=b, **kw)),
        ("Table 1 error injection", lambda b: N.error_injection_negatives(model, base.processor, questions, answers,
                                                                          batch_size=b, **kw)),
    ]:
        make(min(4, n))  # warm-up
        (fast, t_fast), (slow, t_slow) = _timed(lambda: make(32)), _timed(lambda: make(1))
        rows.append({"generator": name, "unit": "tokens/s", "n": n,
                     "batched + KV cache": _tokens(base.processor, fast) / t_fast,
                     "one at a time": _tokens(base.processor, slow) / t_slow})

    scenes = [Scene.from_json(s) for s in detail.scene]

    def prior_guided(scorer):
        N.text_continuation_logprobs, saved = scorer, N.text_continuation_logprobs
        try:
            return [N.prior_guided_negative(model, base.processor, q, a, s, item_rng(0, "bench", i))
                    for i, (q, a, s) in enumerate(zip(questions, answers, scenes))]
        finally:
            N.text_continuation_logprobs = saved

    prior_guided(N.text_continuation_logprobs)  # warm-up
    (cached, t_cached) = _timed(lambda: prior_guided(N.text_continuation_logprobs))
    (full, t_full) = _timed(lambda: prior_guided(full_sequence_logprobs))
    same = sum(a == b for a, b in zip(cached, full))
    rows.append({"generator": f"prior-guided injection ({same}/{n} identical)", "unit": "ground truths/s", "n": n,
                 "batched + KV cache": n / t_cached, "one at a time": n / t_full})

    table = pd.DataFrame(rows)
    table["speed-up"] = table["batched + KV cache"] / table["one at a time"]
    print(f"## Negative generation, preset {args.preset} (bf16 copy, {torch.get_num_threads()} threads)\n")
    print(to_markdown(table, ".1f"))


if __name__ == "__main__":
    main()
