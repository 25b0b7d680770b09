"""MM-Vet-world judge: each item scored in [0, 1] by rules that know the answer, reported like the
paper's Table 3 (per-capability means and Total, x100).

How an answer is read depends on the item's ``answer_kind``:
- number: the numbers the response states (``text.numbers``: the operands of "3+4 = 7" excluded);
- colour / place / text (a sign's word) / objects: the colours, places, sign words, or non-negated
  object names the response names;
- position: its row words and its column words, each scored separately and averaged;
- yesno: its first "yes" or "no".
Except for yes/no, the score is the F1 of the *set* of candidates read from the response against the
expected set: the right answer alone scores 1, hedging ("red or blue") is penalised, and repeating a
word adds nothing. A refusal or an empty response names nothing and scores 0.
"""

from __future__ import annotations

from bpo.evaluation import text as T
from bpo.evaluation.benchmarks import CAPABILITIES
from bpo.evaluation.common import check_inputs, mean, set_f1

ANSWER_KINDS = ("number", "colour", "place", "text", "objects", "position", "yesno")


def score_answer(kind: str, answer, response: str) -> float:
    """Score one response against one expected answer of ``kind`` (see the module docstring)."""
    if kind == "number":
        return set_f1(set(T.numbers(response)), {int(answer)})
    if kind == "colour":
        return set_f1(set(T.colour_words(response)), {answer})
    if kind == "place":
        return set_f1(set(T.place_words(response)), {answer})
    if kind == "text":
        return set_f1(set(T.sign_words(response)), {str(answer).upper()})
    if kind == "objects":
        return set_f1(T.mentioned_objects(response, include_negated=False), set(answer))
    if kind == "position":
        words = set(T.position_words(response))
        row, col = answer
        return 0.5 * set_f1({w for w in words if w in ("top", "bottom")}, {row}) + \
            0.5 * set_f1({w for w in words if w not in ("top", "bottom")}, {col})
    if kind == "yesno":
        return float(T.yes_no(response) == answer)
    raise ValueError(f"unknown answer kind {kind!r}; expected one of {ANSWER_KINDS}")


def score_mmvet(items: list[dict], responses) -> tuple[list[dict], dict]:
    """Per-item records (item_id, capabilities, score in [0, 1]) and a summary: each capability's mean
    over the items tagged with it, and Total over all items, x100 (NaN for a capability with no
    item); ``counts`` gives the number of items behind each."""
    where = "score_mmvet"
    responses = check_inputs(items, responses, where, ("item_id", "capabilities", "answer_kind", "answer"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        unknown = [c for c in item["capabilities"] if c not in CAPABILITIES]
        if unknown or item["answer_kind"] not in ANSWER_KINDS:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has unknown capabilities {unknown} "
                             f"or answer kind {item['answer_kind']!r}")
        records.append({"item_id": item["item_id"], "capabilities": list(item["capabilities"]),
                        "score": score_answer(item["answer_kind"], item["answer"], response)})
    return records, summarise_mmvet(records)


def summarise_mmvet(records: list[dict]) -> dict:
    """The summary of :func:`score_mmvet` from its per-item records (a bootstrap resamples these)."""
    summary = {c: 100 * mean(r["score"] for r in records if c in r["capabilities"]) for c in CAPABILITIES}
    summary["Total"] = 100 * mean(r["score"] for r in records)
    summary["counts"] = {**{c: sum(c in r["capabilities"] for r in records) for c in CAPABILITIES}, "Total": len(records)}
    return summary
