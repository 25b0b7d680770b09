"""Presence questions ("Is there a <noun> in the image?") put before stage-2 conversations.

The world's conversation source asks such questions in about 2 of its 7 kinds of turn, so stage 2
holds a few hundred yes/no answers among some 120k answer tokens, and the base learns to say "yes"
(POPE-world's yes-ratio near 90 %). ``BaseTrainingConfig.sft_yes_no_turns`` adds that many to
every stage-2 example, on the same images (no new scenes, so the preference data's rows stay
unseen), as LLaVA-1.5's mix holds many short VQA answers. They go *first*: after a description the
answer could be read off the text instead of the image. Over the whole set they alternate between
an object the scene has and one it lacks (half of those the place's likely objects, as in
:func:`bpo.world.language.absent_qa`), so "yes" and "no" are equally often right.
"""

from __future__ import annotations

from bpo.world.language import absent_qa, present_qa, single_turn
from bpo.world.scene import Scene, item_rng

_TRIES = 16  # draws for a question the conversation does not already ask


def with_presence_turns(conversations: list[list[dict]], scenes: list[Scene], n: int, seed: int) -> list[list[dict]]:
    """Each conversation with ``n`` presence question-answer turns before its own; the k-th added
    question over the whole set is about a present object when k is even, an absent one when odd
    (always absent for a scene without objects)."""
    if len(conversations) != len(scenes):
        raise ValueError(f"with_presence_turns: {len(conversations)} conversations but {len(scenes)} scenes")
    if n < 0:
        raise ValueError(f"with_presence_turns: n must be >= 0, got {n}")
    out, k = [], 0
    for i, (turns, scene) in enumerate(zip(conversations, scenes)):
        rng = item_rng(seed, "presence_turns", i)
        asked = {t["content"] for t in turns if t["role"] == "user"}
        added = []
        for _ in range(n):
            for _ in range(_TRIES):
                if k % 2 == 0 and scene.objects:
                    q, a = present_qa(scene.objects[int(rng.integers(len(scene.objects)))], rng)
                else:
                    q, a = absent_qa(scene, rng)
                if q not in asked:
                    break
            asked.add(q)  # a small scene may leave only questions already asked: one is repeated
            added += single_turn(q, a)
            k += 1
        out.append(added + list(turns))
    return out
