"""POPE-world judge: yes/no object probing.

A response's answer is its first "yes" or "no" word. One with neither counts as "no" (it did not
claim the object) and is also counted in ``n_unparsed``, so a model that rambles instead of
answering is visible. Metrics (percentages), with "yes" the positive class, per POPE split and
over all items (``all``): accuracy, precision, recall, F1, yes_ratio (share of "yes" answers).
Precision is 0 when no answer is "yes" (nothing claimed, nothing right), and F1 then 0 as well.
"""

from __future__ import annotations

from bpo.evaluation import text as T
from bpo.evaluation.benchmarks import POPE_SPLITS
from bpo.evaluation.common import check_inputs


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
    """Per-item records (answer, parsed, correct) and metrics per split present and for ``all``."""
    where = "score_pope"
    responses = check_inputs(items, responses, where, ("item_id", "label", "split"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        if item["label"] not in ("yes", "no"):
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has label {item['label']!r}; expected 'yes' or 'no'")
        if item["split"] not in POPE_SPLITS:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has unknown split {item['split']!r}; "
                             f"expected one of {POPE_SPLITS}")
        parsed = T.yes_no(response)
        answer = parsed or "no"
        records.append({"item_id": item["item_id"], "split": item["split"], "label": item["label"],
                        "answer": answer, "parsed": parsed is not None, "correct": answer == item["label"]})
    summary = {}
    for split in [s for s in POPE_SPLITS if any(r["split"] == s for r in records)] + ["all"]:
        group = [r for r in records if split == "all" or r["split"] == split]
        if not group:
            continue
        summary[split] = {**pope_metrics([r["label"] for r in group], [r["answer"] for r in group]),
                          "n_unparsed": sum(not r["parsed"] for r in group)}
    return records, summary
