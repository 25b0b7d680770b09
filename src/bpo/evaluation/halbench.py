"""Object-HalBench-world judge: CHAIR-style object hallucination of image descriptions.

Objects are read with ``text.mentioned_objects`` (two-word names first, plurals and synonyms mapped
to canonical nouns) and each canonical object counts once per response, as in CHAIR. Negated
mentions ("there is no dog") still count as mentions: the reference CHAIR / Object HalBench code
does not parse negation, and numbers should compare with published ones.

The counting follows the Object HalBench reference (RLHF-V, ``eval/eval_gpt_obj_halbench.py``,
``CHAIR.compute_chair``; ``eval/summarize_gpt_obj_halbench_review.py`` prints its ``CHAIRs_refine``
as "Response Hall" and ``CHAIRi`` as "Object Hall"): the objects extracted from a response are kept
once each, CHAIRs_refine divides the hallucinating responses by the responses that name at least
one object (not by all responses, which is plain CHAIR_s), and recall counts the distinct true
objects each response names over all true objects. One small difference: the reference removes
repeated *words* before mapping synonyms to COCO classes, so "a man and a woman" counts person twice
in its CHAIR_i; we keep each canonical object once. Only CHAIR_i can differ, and only when one
response uses two names of the same object.

Summary (percentages; lower is better for the two hallucination rates):
- ``object_hall`` (CHAIR_i) = hallucinated object mentions / all object mentions;
- ``response_hall`` (CHAIR_s as Object HalBench reports it) = responses with >= 1 hallucinated
  object / responses that mention >= 1 object;
- ``object_recall`` = ground-truth objects mentioned / ground-truth objects;
- ``n_no_object``: responses that mention no object (a refusal hallucinates nothing, so it shows up
  here and in recall instead). A rate whose denominator is 0 is NaN, not 0.
"""

from __future__ import annotations

from bpo.evaluation import text as T
from bpo.evaluation.common import check_inputs, ratio, scene_of


def score_halbench(items: list[dict], responses) -> tuple[list[dict], dict]:
    """Per-item records (mentioned, hallucinated, recalled objects) and the summary above."""
    where = "score_halbench"
    responses = check_inputs(items, responses, where, ("item_id", "scene"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        truth = scene_of(item, i, where).object_names
        mentioned = T.mentioned_objects(response)
        records.append({"item_id": item["item_id"], "mentioned": sorted(mentioned),
                        "hallucinated": sorted(mentioned - truth), "recalled": sorted(mentioned & truth),
                        "n_truth": len(truth)})
    return records, summarise_halbench(records)


def summarise_halbench(records: list[dict]) -> dict:
    """The summary of :func:`score_halbench` from its per-item records."""
    n_mentions = sum(len(r["mentioned"]) for r in records)
    n_hall = sum(len(r["hallucinated"]) for r in records)
    with_objects = [r for r in records if r["mentioned"]]
    summary = {
        "object_hall": 100 * ratio(n_hall, n_mentions),
        "response_hall": 100 * ratio(sum(bool(r["hallucinated"]) for r in with_objects), len(with_objects)),
        "object_recall": 100 * ratio(sum(len(r["recalled"]) for r in records), sum(r["n_truth"] for r in records)),
        "n_responses": len(records),
        "n_no_object": len(records) - len(with_objects),
        "n_mentions": n_mentions,
        "n_hallucinated_mentions": n_hall,
    }
    return summary
