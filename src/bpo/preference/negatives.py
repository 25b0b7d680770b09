"""Negative responses for the preference data set.

- ``sample_negatives``: responses *sampled from the model* given its image, weakened by diffusion
  noise at a place and step (the paper's image-weakened prompting) or left clean (the
  self-generated negatives of the Table 5 ablation);
- ``prior_guided_negative``: error injection for an LM too small to follow the Table 1 prompt: the
  LM component alone (no image) reads the ground truth up to one fact and picks the most likely
  *wrong* object, colour or count to put there;
- ``false_facts``: what in a negative the world can prove wrong.
"""

from __future__ import annotations

import re

import numpy as np

from bpo.evaluation.text import extract_facts, extract_mentions
from bpo.evaluation.wild import fact_is_true
from bpo.models.chat import prompt_text
from bpo.models.generate import generate
from bpo.noise import weakened
from bpo.probing import score_continuations
from bpo.world import vocab
from bpo.world.scene import Scene


def sample_negatives(model, processor, images, questions, noise_place: str | None = None, step: int = 0,
                     seed: int = 0, temperature: float = 1.0, max_new_tokens: int = 96, batch_size: int = 32,
                     progress: bool = True) -> list[str]:
    """One sampled answer per (image, question); with ``noise_place`` the model sees its image
    weakened at ``step`` (the noise is drawn once per image, at the prompt's forward pass)."""
    kwargs = dict(do_sample=True, temperature=temperature, seed=seed, max_new_tokens=max_new_tokens,
                  batch_size=batch_size, progress=progress)
    if noise_place is None:
        return generate(model, processor, images, questions, **kwargs)
    with weakened(model, noise_place, step, seed):
        return generate(model, processor, images, questions, **kwargs)


def text_continuation_logprobs(model, processor, question: str, prefix: str, continuations: list[str]) -> np.ndarray:
    """Summed log-probability of each continuation of an answer ``prefix`` to ``question``, read by
    the LM alone: no image, so only the language prior speaks."""
    return score_continuations(model, processor.tokenizer, prompt_text(processor, question, with_image=False) + prefix,
                               continuations)


def _options(text: str, scene: Scene) -> list[tuple[str, re.Match, list[str]]]:
    """(kind, the words to replace, wrong alternatives) for every checkable fact in ``text``."""
    options = []
    wrong_objects = [o for o in vocab.OBJECTS if o not in scene.object_names]
    for m in extract_mentions(text):
        truth = scene.get(m.name)
        found = re.search(rf"\b{re.escape(m.surface)}\b", text, re.I)
        if m.negated or truth is None or found is None:
            continue
        options.append(("object", found, [vocab.OBJECTS[o].plural if m.plural else o for o in wrong_objects]))
        colour = re.search(rf"\b{truth.colour}(?= {re.escape(m.surface)}\b)", text, re.I)
        if colour:
            options.append(("colour", colour, [c for c in vocab.COLOURS if c != truth.colour]))
        count = re.search(rf"\b{vocab.COUNT_NAMES[truth.count]}(?= (\w+ )?{re.escape(m.surface)}\b)", text, re.I)
        if count and truth.count > 1:
            options.append(("count", count, [vocab.COUNT_NAMES[n] for n in (2, 3, 4) if n != truth.count]))
    return options


def prior_guided_negative(model, processor, question: str, answer: str, scene: Scene,
                          rng: np.random.Generator) -> tuple[str, dict] | None:
    """The ground truth with one fact (chosen at random) replaced by the LM's most likely wrong
    alternative; None when the answer states no fact this can change (e.g. a sign reading)."""
    options = _options(answer, scene)
    if not options:
        return None
    kind, match, alternatives = options[int(rng.integers(len(options)))]
    prefix = answer[:match.start()].rstrip()
    scores = text_continuation_logprobs(model, processor, question, prefix, [" " + a for a in alternatives])
    choice = alternatives[int(np.argmax(scores))]
    negative = answer[:match.start()] + choice + answer[match.end():]
    return negative, {"kind": kind, "original": match.group(0), "substitute": choice}


def false_facts(response: str, scene: Scene) -> set[tuple]:
    """Facts the response states that the scene contradicts (an absent object, a wrong colour,
    count or position)."""
    return {f for f in extract_facts(response) if not fact_is_true(f, scene)}
