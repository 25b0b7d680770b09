"""Run a model on the evaluation suite: the one place where benchmarks meet a model.

Questions asked twice (POPE's "yes" questions are the same in its three splits) are answered
once. Answers are returned per benchmark, ready for ``score_suite``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


from bpo.cache import atomic_dir
from bpo.evaluation.config import AnswerConfig
from bpo.evaluation.suite import benchmark_of, items_of
from bpo.models.generate import generate
from bpo.precision import answering_copy


def _budget(key: str, item: dict, cfg: AnswerConfig) -> int:
    bench = benchmark_of(key)
    if bench == "pope":
        return cfg.max_new_tokens_yes_no
    if bench == "halbench" or item.get("category") == "detail" or "Gen" in item.get("capabilities", []):
        return cfg.max_new_tokens_describe
    return cfg.max_new_tokens_short


@dataclass
class SuiteAnswers:
    """Answers per benchmark key, and per answer whether it was cut at its token budget (a judge
    reads a cut description as if complete, so the share cut is reported beside the scores)."""

    answers: dict[str, list[str]]
    truncated: dict[str, list[bool]]
    seconds: float = float("nan")  # wall time of the decoding, and the answers' tokens: a decoder's speed
    new_tokens: int = 0


def answer_suite(model, processor, suite: dict, cfg: AnswerConfig = AnswerConfig(), progress: bool = True,
                 decoder: Callable = generate, **generate_kwargs) -> SuiteAnswers:
    """Greedy answers of ``model`` to every item of ``suite`` (benchmark key -> data set with
    images, from ``load_or_build_suite``), by ``decoder`` (``generate``'s signature; e.g.
    ``bpo.evaluation.vcd.vcd_generate``), through ``bpo.precision.answering_copy`` (bf16 weights
    where bf16 pays)."""
    model = answering_copy(model)
    # Unique (image, question) requests, grouped by answer budget so each group is one generate call.
    requests: dict[tuple[str, str], dict] = {}
    where: dict[str, list[tuple[str, str]]] = {}
    for key, ds in suite.items():
        where[key] = []
        for row, item in zip(ds, items_of(ds)):
            req = (item["scene"], item["question"])
            if req not in requests:
                requests[req] = {"image": row["image"], "budget": _budget(key, item, cfg)}
            where[key].append(req)
    answers: dict[tuple[str, str], tuple[str, bool]] = {}
    start = time.perf_counter()
    for budget in sorted({r["budget"] for r in requests.values()}):
        group = [k for k, r in requests.items() if r["budget"] == budget]
        out = decoder(model, processor, [requests[k]["image"] for k in group], [k[1] for k in group],
                      max_new_tokens=budget, batch_size=cfg.batch_size, progress=progress, with_truncation=True,
                      **generate_kwargs)
        answers.update(zip(group, zip(out.texts, out.truncated)))
    seconds = time.perf_counter() - start
    # re-tokenised answers: the same count for every decoder (end tokens and padding excluded)
    tokens = sum(len(ids) for ids in processor.tokenizer([a for a, _ in answers.values()],
                                                         add_special_tokens=False).input_ids)
    return SuiteAnswers({key: [answers[req][0] for req in reqs] for key, reqs in where.items()},
                        {key: [answers[req][1] for req in reqs] for key, reqs in where.items()}, seconds, tokens)


def load_or_answer(target, model, processor, suite: dict, cfg: AnswerConfig = AnswerConfig(),
                   progress: bool = True, decoder: Callable = generate) -> SuiteAnswers:
    """``answer_suite``, cached as JSON in the directory ``target`` (a model's evaluation key)."""
    path = Path(target) / "answers.json"
    if not path.exists():
        made = answer_suite(model, processor, suite, cfg, progress, decoder)
        with atomic_dir(Path(target)) as tmp:
            (tmp / "answers.json").write_text(json.dumps(asdict(made)))
    return SuiteAnswers(**json.loads(path.read_text()))
