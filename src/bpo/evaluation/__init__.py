"""Benchmarks on SceneWorld and their rule judges.

Builders make items (plain dicts with the scene's ground truth); judges take items and responses
(strings from any model) and return per-item records and a summary. No judge ever sees a model.
"""

from bpo.evaluation.benchmarks import (
    CAPABILITIES, HALBENCH_PROMPTS, POPE_SPLITS, SCENE_SPLITS, WILD_CATEGORIES,
    build_halbench, build_mmvet, build_pope, build_wild, describe, pope_negatives,
)
from bpo.evaluation.halbench import score_halbench
from bpo.evaluation.mmvet import score_mmvet
from bpo.evaluation.pope import score_pope
from bpo.evaluation.text import extract_facts, extract_mentions, mentioned_objects, yes_no
from bpo.evaluation.wild import score_wild

BUILDERS = {"mmvet": build_mmvet, "halbench": build_halbench, "wild": build_wild, "pope": build_pope}
JUDGES = {"mmvet": score_mmvet, "halbench": score_halbench, "wild": score_wild, "pope": score_pope}

__all__ = [
    "BUILDERS", "CAPABILITIES", "HALBENCH_PROMPTS", "JUDGES", "POPE_SPLITS", "SCENE_SPLITS", "WILD_CATEGORIES",
    "build_halbench", "build_mmvet", "build_pope", "build_wild", "describe", "extract_facts", "extract_mentions",
    "mentioned_objects", "pope_negatives", "score_halbench", "score_mmvet", "score_pope", "score_wild", "yes_no",
]
