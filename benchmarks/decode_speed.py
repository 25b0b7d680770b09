"""Greedy decoding speed of a preset's base model, with and without the contiguous LM head.

    python benchmarks/decode_speed.py [--preset smol] [--n 64] [--repeats 2]

Times ``bpo.models.generate.generate`` (batch 32, bf16 weights as ``answer_suite`` uses them) on
the first ``--n`` questions of two benchmarks of the preset's suite: POPE (short answers, so the
prompt pass dominates) and Object HalBench (descriptions up to 128 tokens). Each variant runs
``--repeats`` times, alternating, and the best time counts. The table gives requests/s, answer
tokens/s, the speed-up of ``bpo.models.fast_head`` over plain transformers, and whether both gave
the same answers.
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
import torch

from bpo.evaluation.run import _budget
from bpo.evaluation.config import AnswerConfig
from bpo.evaluation.suite import items_of, load_or_build_suite
from bpo.models.generate import generate
from bpo.pipeline import load_base
from bpo.presets import suite_config
from bpo.tables import to_markdown


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    base = load_base(args.preset, progress=False, device="cpu")
    suite = load_or_build_suite(args.preset, suite_config(args.preset))
    fast = copy.deepcopy(base.model).to(torch.bfloat16)  # load_base applied contiguous_head
    plain = copy.deepcopy(fast)
    plain.get_output_embeddings()._forward_pre_hooks.clear()  # transformers as shipped
    rows = []
    for key in ("pope-adversarial/typical", "halbench/atypical"):
        ds = suite[key].select(range(min(args.n, len(suite[key]))))
        items = items_of(ds)
        images, questions = [r["image"] for r in ds], [it["question"] for it in items]
        budget = _budget(key, items[0], AnswerConfig())
        best, answers = {}, {}
        for _ in range(args.repeats):
            for name, model in (("plain", plain), ("contiguous head", fast)):
                start = time.perf_counter()
                answers[name] = generate(model, base.processor, images, questions, max_new_tokens=budget,
                                         batch_size=32, progress=False)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        tokens = sum(len(ids) for ids in base.processor.tokenizer(answers["plain"], add_special_tokens=False).input_ids)
        for name, seconds in best.items():
            rows.append({"benchmark": key, "max new tokens": budget, "variant": name, "seconds": seconds,
                         "requests/s": len(ds) / seconds, "tokens/s": tokens / seconds,
                         "speed-up": best["plain"] / seconds, "same answers": answers[name] == answers["plain"]})
    print(to_markdown(pd.DataFrame(rows), ".3g"))


if __name__ == "__main__":
    main()
