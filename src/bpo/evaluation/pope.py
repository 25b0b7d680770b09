"""POPE-world judge: yes/no object probing, read and scored as the POPE reference scripts do.

Reading an answer. We follow POPE's ``evaluate.py`` (github.com/AoiDragon/POPE) and LLaVA's copy of
it, ``llava/eval/eval_pope.py``, word for word, so that our numbers compare with published ones:
1. keep the first sentence: the text before the first "." (all of it when there is no ".");
2. delete the commas and split on single spaces (``text.replace(',', '').split(' ')``); no other
   punctuation is removed and case is kept;
3. the answer is "no" if one of those words is exactly "no", "No" or "not"; otherwise "yes".
Quirks of the reference we keep on purpose: "isn't" and "don't" are one word each, not "not"; "NO",
"Not" and "No!" are not no-words; "I cannot answer that." and "" read as "yes"; only the first
sentence counts ("I think so. No." is "yes"), and "not" anywhere in it means "no" ("Yes, but it is
not red." is "no"). ``text.yes_no`` (first yes/no word anywhere) is a different, looser reading,
kept for MM-Vet-world; POPE does not use it.

Each per-item record's ``decided_by`` says what decided its answer: "no word" (step 3 found one),
"yes word" (none, but the first sentence has the word "yes" or "Yes", split as in step 2), or
"default" (neither: the reference's fall-back to "yes"). The summary's ``n_unparsed`` counts the
"default" answers: those whose first sentence holds neither a yes- nor a no-word, so a model that
rambles instead of answering is visible even though the reference scores it as "yes".

Metrics (percentages), with "yes" the positive class, per POPE split and over all items (``all``):
accuracy, precision, recall, F1, yes_ratio (share of "yes" answers). Precision is 0 when no answer
is "yes" (the reference would divide by zero), and F1 then 0 as well.
"""

from __future__ import annotations

from bpo.evaluation.benchmarks import POPE_SPLITS
from bpo.evaluation.common import check_inputs

NO_WORDS = ("No", "not", "no")  # the reference's list, case-sensitive
YES_WORDS = ("Yes", "yes")  # only for ``decided_by``; the reference never looks for "yes"


def pope_answer(response: str) -> tuple[str, str]:
    """("yes" or "no", decided_by) for one response, by the reference rule above."""
    words = response.split(".")[0].replace(",", "").split(" ")
    if any(w in NO_WORDS for w in words):
        return "no", "no word"
    return "yes", "yes word" if any(w in YES_WORDS for w in words) else "default"


def pope_metrics(labels: list[str], answers: list[str]) -> dict:
    """Accuracy, precision, recall, F1 and yes-ratio (x100) of "yes"/"no" answers against labels."""
    tp = sum(a == "yes" and l == "yes" for a, l in zip(answers, labels))
    fp = sum(a == "yes" and l == "no" for a, l in zip(answers, labels))
    fn = sum(a == "no" and l == "yes" for a, l in zip(answers, labels))
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": 100 * sum(a == l for a, l in zip(answers, labels)) / n, "precision": 100 * precision,
            "recall": 100 * recall, "f1": 100 * f1, "yes_ratio": 100 * answers.count("yes") / n, "n": n}


def score_pope(items: list[dict], responses) -> tuple[list[dict], dict]:
    """Per-item records (answer, decided_by, correct) and metrics per split present and for ``all``."""
    where = "score_pope"
    responses = check_inputs(items, responses, where, ("item_id", "label", "split"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        if item["label"] not in ("yes", "no"):
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has label {item['label']!r}; expected 'yes' or 'no'")
        if item["split"] not in POPE_SPLITS:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has unknown split {item['split']!r}; "
                             f"expected one of {POPE_SPLITS}")
        answer, decided_by = pope_answer(response)
        records.append({"item_id": item["item_id"], "split": item["split"], "label": item["label"],
                        "answer": answer, "decided_by": decided_by, "correct": answer == item["label"]})
    return records, summarise_pope(records)


def summarise_pope(records: list[dict]) -> dict:
    """The summary of :func:`score_pope` from its per-item records."""
    summary = {}
    for split in [s for s in POPE_SPLITS if any(r["split"] == s for r in records)] + ["all"]:
        group = [r for r in records if split == "all" or r["split"] == split]
        if not group:
            continue
        summary[split] = {**pope_metrics([r["label"] for r in group], [r["answer"] for r in group]),
                          "n_unparsed": sum(r["decided_by"] == "default" for r in group)}
    return summary
