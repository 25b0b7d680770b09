"""LLaVA-Wild-world judge: fact-level agreement of a response with the reference, x100.

Facts are read with ``text.extract_facts``: ("object", o), ("colour", o, c), ("count", o, n),
("row", o, r), ("col", o, c); negated mentions assert nothing. For one item, with R the item's
``reference_facts`` and F the facts of the response:

- recall    = |F ∩ R| / |R|                       (how much of the reference the response states)
- precision = |{f in F : f is true in the scene}| / |F|   (how much of what it states is true)
- score     = 100 * 2 * precision * recall / (precision + recall), and 0 when F or F ∩ R is empty.

Precision is checked against the scene, not the reference, so true extra detail costs nothing while
a hallucinated object, colour, count or position lowers the score. F is a set: repeating a fact
adds nothing. The summary gives each category's mean and ``all``, the mean over items.
"""

from __future__ import annotations

from bpo.evaluation import text as T
from bpo.evaluation.benchmarks import WILD_CATEGORIES
from bpo.evaluation.common import check_inputs, mean, scene_of
from bpo.world.scene import Scene


def fact_is_true(fact: tuple, scene: Scene) -> bool:
    """Whether ``scene`` makes ``fact`` true."""
    o = scene.get(fact[1])
    if o is None:
        return False
    if fact[0] == "object":
        return True
    return getattr(o, fact[0]) == fact[2]


def score_response(response: str, reference_facts, scene: Scene) -> dict:
    """Recall, precision and score (0-100) of one response; see the module docstring."""
    reference = {tuple(f) for f in reference_facts}
    facts = T.extract_facts(response)
    true = {f for f in facts if fact_is_true(f, scene)}
    recall = len(facts & reference) / len(reference) if reference else 0.0
    precision = len(true) / len(facts) if facts else 0.0
    score = 100 * 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {"recall": recall, "precision": precision, "score": score, "n_facts": len(facts),
            "false_facts": sorted(map(list, facts - true), key=str)}


def score_wild(items: list[dict], responses) -> tuple[list[dict], dict]:
    """Per-item records (category, recall, precision, score, false facts) and per-category and
    overall (``all``) mean scores."""
    where = "score_wild"
    responses = check_inputs(items, responses, where, ("item_id", "scene", "category", "reference_facts"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        if item["category"] not in WILD_CATEGORIES:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has unknown category {item['category']!r}")
        if not item["reference_facts"]:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has no reference facts")
        records.append({"item_id": item["item_id"], "category": item["category"],
                        **score_response(response, item["reference_facts"], scene_of(item, i, where))})
    return records, summarise_wild(records)


def summarise_wild(records: list[dict]) -> dict:
    """The summary of :func:`score_wild` from its per-item records."""
    summary = {c: mean(r["score"] for r in records if r["category"] == c) for c in WILD_CATEGORIES}
    summary["all"] = mean(r["score"] for r in records)
    summary["counts"] = {**{c: sum(r["category"] == c for r in records) for c in WILD_CATEGORIES}, "all": len(records)}
    return summary
