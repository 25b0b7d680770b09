"""Texts that ask ``tiny``'s LM to read its context, before it ever sees an image.

SmolLM2 reads image tokens because its pre-training on trillions of tokens taught it to use what
came earlier in its context. ``tiny``'s LM, pre-trained from scratch on the world's prior-only
corpus, never had to: every corpus text is as well predicted from its place as from anything said
before it. A copy text puts a scene's facts in front ("Notes: A kitchen with a red oven and two
cats.") and then a corpus text about the same scene, so that its later words are best predicted by
reading the notes. The scenes are drawn as the corpus's are (typical scenes, mostly typical
colours), so the prior these texts teach is the corpus's own; only the skill of reading is added.

A presence text asks the yes/no question that POPE asks of an image, of the notes instead: "Notes:
<caption> Question: Is there a dog in the image? Answer: No, ...". Copy texts hold such questions
only as about 2 of the corpus's 7 kinds of question; these alternate present and absent objects,
half of the absent ones the place's likely ones, so the answer can only be read from the notes.
"""

from __future__ import annotations

import numpy as np

from bpo.world.language import absent_qa, caption, corpus_text, present_qa
from bpo.world.scene import Scene, item_rng, sample_scene
from bpo.world.sources import CORPUS_SAMPLING

STREAM = "lm-copy"
PRESENCE_STREAM = "lm-presence"


def copy_text(scene: Scene, rng: np.random.Generator) -> str:
    """The scene's facts as notes, then a description or question-answer exchange about it."""
    return f"Notes: {caption(scene, rng)} {corpus_text(scene, rng)}"


def copy_texts(n: int, seed: int) -> list[str]:
    """``n`` copy texts, each from its own generator (item ``i`` does not depend on ``n``)."""
    texts = []
    for i in range(n):
        rng = item_rng(seed, STREAM, i)
        texts.append(copy_text(sample_scene(rng, f"{STREAM}-{i:06d}", CORPUS_SAMPLING), rng))
    return texts


def presence_text(scene: Scene, present: bool, rng: np.random.Generator) -> str:
    """The scene's facts as notes, then whether one of its objects (``present``) or an object it
    lacks is there."""
    obj = scene.objects[int(rng.integers(len(scene.objects)))] if present and scene.objects else None
    q, a = present_qa(obj, rng) if obj is not None else absent_qa(scene, rng)
    return f"Notes: {caption(scene, rng)} Question: {q} Answer: {a}"


def presence_texts(n: int, seed: int) -> list[str]:
    """``n`` presence texts, about a present object for even ``i`` and an absent one for odd ``i``."""
    texts = []
    for i in range(n):
        rng = item_rng(seed, PRESENCE_STREAM, i)
        scene = sample_scene(rng, f"{PRESENCE_STREAM}-{i:06d}", CORPUS_SAMPLING)
        texts.append(presence_text(scene, i % 2 == 0, rng))
    return texts
