"""Decoding speed of a preset's base model: our loop (finished rows leave the batch) against
transformers' ``model.generate``, with and without the contiguous LM head, in one run.

    python benchmarks/decode_speed.py [--preset smol] [--n 128] [--repeats 2]

Times greedy decoding (batch 32 unless named, bf16 weights as ``answer_suite`` uses them) of the first ``--n``
questions of two benchmarks of the preset's suite: POPE (short answers, so the prompt pass
dominates) and Object HalBench (descriptions up to 128 tokens, where rows end at very different
steps). Three variants, each through ``bpo.models.generate.decode_batches`` (same batches, same
autocast, same order):

- ``transformers``: ``model.generate`` on a model without ``bpo.models.fast_head`` (as shipped);
- ``transformers + contiguous head``: ``model.generate`` with it;
- ``ours``: ``bpo.models.generate.generate`` (contiguous head, rows leave the batch when they end);
- ``ours, batch 64``: the same with 64 rows per batch (``AnswerConfig.batch_size``): a decode step
  reads every weight once whatever its rows, so more rows share the reading.

Each variant runs ``--repeats`` times, alternating, and the best time counts. The table gives
requests/s, answer tokens/s, the speed-up over ``transformers``, and whether the answers are the
same as ``transformers``' (bf16 rounds differently when the batch shrinks, so a rare answer may
differ; the tests check the tokens are the same in fp32).
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
import torch

from bpo.evaluation.config import AnswerConfig
from bpo.evaluation.run import _budget
from bpo.evaluation.suite import items_of, load_or_build_suite
from bpo.models.generate import decode_batches, generate
from bpo.pipeline import load_base
from bpo.presets import suite_config
from bpo.tables import to_markdown


def transformers_generate(model, processor, images, questions, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers from ``model.generate`` inside our batching (the decoder this project used before)."""
    tok = processor.tokenizer
    kw = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, do_sample=False, temperature=None,
              top_p=None, top_k=None, suppress_tokens=[model.config.image_token_index])

    def decode(inputs, b):
        return model.generate(**inputs, **kw)[:, inputs["input_ids"].shape[1]:]

    return decode_batches(model, processor, images, questions, decode, max_new_tokens, batch_size,
                          progress=False).texts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    base = load_base(args.preset, progress=False, device="cpu")
    suite = load_or_build_suite(args.preset, suite_config(args.preset))
    fast = copy.deepcopy(base.model).to(torch.bfloat16)  # load_base applied contiguous_head
    plain = copy.deepcopy(fast)
    plain.get_output_embeddings()._forward_pre_hooks.clear()  # transformers as shipped
    processor = base.processor
    rows = []
    for key in ("pope-adversarial/typical", "halbench/atypical"):
        ds = suite[key].select(range(min(args.n, len(suite[key]))))
        items = items_of(ds)
        images, questions = [r["image"] for r in ds], [it["question"] for it in items]
        budget = _budget(key, items[0], AnswerConfig())
        variants = {
            "transformers": lambda: transformers_generate(plain, processor, images, questions, budget, 32),
            "transformers + contiguous head": lambda: transformers_generate(fast, processor, images, questions,
                                                                            budget, 32),
            "ours": lambda: generate(fast, processor, images, questions, max_new_tokens=budget, batch_size=32,
                                     progress=False),
            "ours, batch 64": lambda: generate(fast, processor, images, questions, max_new_tokens=budget,
                                               batch_size=64, progress=False),
        }
        best, answers = {}, {}
        for _ in range(args.repeats):
            for name, run in variants.items():
                start = time.perf_counter()
                answers[name] = run()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        tokens = sum(len(ids) for ids in processor.tokenizer(answers["ours"], add_special_tokens=False).input_ids)
        for name, seconds in best.items():
            same = sum(a == b for a, b in zip(answers[name], answers["transformers"]))
            rows.append({"benchmark": key, "max new tokens": budget, "variant": name, "seconds": seconds,
                         "requests/s": len(ds) / seconds, "tokens/s": tokens / seconds,
                         "speed-up": best["transformers"] / seconds, "same answers": f"{same}/{len(ds)}"})
    print(to_markdown(pd.DataFrame(rows), ".3g"))


if __name__ == "__main__":
    main()
