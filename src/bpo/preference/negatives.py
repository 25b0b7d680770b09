"""Negative responses for the preference data set.

- ``sample_negatives``: responses *sampled from the model* given its image, weakened by diffusion
  noise at a place and step (the paper's image-weakened prompting) or left clean (the
  self-generated negatives of the Table 5 ablation);
- ``error_injection_negatives``: the paper's Table 1: the LM component alone (no image) is asked to
  rewrite the ground truth with different, common details;
- ``prior_guided_negative``: error injection for an LM too small to follow the Table 1 prompt: the
  LM component alone (no image) reads the ground truth up to one fact and picks the most likely
  *wrong* object, colour or count to put there;
"""

from __future__ import annotations

import re

import numpy as np

from bpo.evaluation.facts import about_sign_only
from bpo.evaluation.text import extract_mentions
from bpo.models.chat import prompt_text
from bpo.models.generate import generate
from bpo.models.scoring import score_continuations
from bpo.noise import weakened
from bpo.world import vocab
from bpo.world.language import article, place_phrase
from bpo.world.scene import Scene


def sample_negatives(model, processor, images, questions, noise_place: str | None = None, step: int = 0,
                     seed: int = 0, temperature: float = 1.0, max_new_tokens: int = 96, batch_size: int = 32,
                     progress: bool = True) -> list[str]:
    """One sampled answer per (image, question); with ``noise_place`` the model sees its image
    weakened at ``step`` (the noise is drawn once per image, at the prompt's forward pass).
    Sampling is at ``temperature`` from the 50 most likely tokens (transformers' default top-k)."""
    kwargs = dict(do_sample=True, temperature=temperature, seed=seed, max_new_tokens=max_new_tokens,
                  batch_size=batch_size, progress=progress)
    with weakened(model, noise_place, step, seed):
        return generate(model, processor, images, questions, **kwargs)


# The paper's Table 1, verbatim but for two cuts: its knife example has no modified response in the
# paper (it would teach an empty answer) and the wristwatch example is cut where the paper
# abbreviates it with an ellipsis.
ERROR_INJECTION_PROMPT = (
    "I will give you a question and a response about an image. Pretend that you can see the image. You must "
    "modify the response by changing the original details, such as adding more objects or change the attributes "
    "of objects. Note that the modified responses should still be common in reality. I will give you some "
    "examples, then you need to paraphrase the new response. Examples: "
    "Question: Describe the image. Response: the image shows an old man walking across the street. There are "
    "many people on the sidewalks, and cars are running on the street. Modified response: the image shows a "
    "woman running towards a car, there are no cars on the street. "
    "Question: What is the color of the apple? Response: the color of the apple is black. Modified response: the "
    "color of the apple is yellow. "
    "Question: What is on the left side of the boy? Response: there is a dog left to the boy. Modified response: "
    "it is a cat on the left of the boy. "
    "Question: How many people are there? Response: there are 3 people in the image. Modified response: there "
    "are only 1 person in the image. "
    "Question: Describe the image in detail. Response: The image is a close-up of a wristwatch with a circular "
    "face and a black leather strap. The watch has a silver-colored bezel and case, and features a white dial "
    "with black Arabic numerals indicating the hours from 1 to 12. Modified response: The image is a close-up of "
    "a wristwatch with a rectangular face and a brown leather strap. The watch has a gold-colored bezel and case, "
    "and features a black dial with white Roman numerals indicating the hours from 1 to 12. "
    "Question: {question} Response: {response} Modified Response:"
)


def error_injection_negatives(model, processor, questions: list[str], answers: list[str], seed: int = 0,
                              temperature: float = 1.0, max_new_tokens: int = 96, batch_size: int = 16,
                              progress: bool = True) -> list[str]:
    """The ground truth rewritten with injected errors by the LM component alone (Table 1 prompt,
    no image), sampled; one per (question, answer)."""
    if len(questions) != len(answers):
        raise ValueError(f"got {len(questions)} questions but {len(answers)} answers")
    prompts = [ERROR_INJECTION_PROMPT.format(question=q, response=a) for q, a in zip(questions, answers)]
    return generate(model, processor, None, prompts, do_sample=True, temperature=temperature, seed=seed,
                    max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)


def text_continuation_logprobs(model, processor, question: str, prefix: str, continuations: list[str]) -> np.ndarray:
    """Summed log-probability of each continuation of an answer ``prefix`` to ``question``, read by
    the LM alone: no image, so only the language prior speaks."""
    return score_continuations(model, processor.tokenizer, prompt_text(processor, question, with_image=False) + prefix,
                               continuations)[0]


def _options(text: str, scene: Scene) -> list[tuple[str, re.Match, list[str]]]:
    """(kind, the words to replace, wrong alternatives) for every checkable fact in ``text``."""
    options = []
    wrong_objects = [o for o in vocab.OBJECTS if o not in scene.object_names]
    for m in extract_mentions(text):
        truth = scene.get(m.name)
        if m.negated and truth is None:  # "No, there is no kite": the wrong answer is that it is there
            denial = re.search(rf"\bno, there (is|are) no {re.escape(m.surface)}\b", text, re.I)
            if denial:
                options.append(("existence", denial, [f"Yes, there is {article(m.name)}"]))
            continue
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
    sign = scene.sign
    # Positions: only where they can belong to one thing (one object named and no sign, or the sign alone).
    named = [m for m in extract_mentions(text) if not m.negated]
    sign_only = sign is not None and about_sign_only(text)
    lone_object = len(named) == 1 and not re.search(r"\bsign\b", text, re.I)
    owner = sign if sign_only else scene.get(named[0].name) if lone_object else None
    if owner is not None:
        for found in re.finditer(r"\b(top|bottom|left|right|centre|center|middle)\b", text, re.I):
            canon = vocab.POSITION_WORDS[found.group(0).lower()]
            axis = vocab.ROWS if canon in vocab.ROWS else vocab.COLUMNS
            if canon == (owner.row if axis is vocab.ROWS else owner.col):
                options.append(("position", found, [w for w in axis if w != canon]))
    # The place, with its preposition when it has one ("taken in an office" -> "taken on a farm").
    for prep in (True, False):
        found = re.search(rf"\b{re.escape(place_phrase(scene.place, preposition=prep))}\b", text, re.I)
        if found:
            others = [place_phrase(p, preposition=prep) for p in vocab.PLACES if p != scene.place]
            options.append(("place", found, others))
            break
    if sign_only:
        value = sign.text if sign.kind == "word" else sign.answer
        found = [m for m in re.finditer(rf"\b{re.escape(value)}\b", text)][-1:]  # the answer, not a sum's operand
        if found:
            wrong = ([w for w in vocab.SIGN_WORDS if w != sign.text] if sign.kind == "word"
                     else [str(n) for n in range(max(0, int(value) - 5), int(value) + 6) if n != int(value)])
            options.append(("sign", found[0], wrong))
    return options


def prior_guided_negative(model, processor, question: str, answer: str, scene: Scene,
                          rng: np.random.Generator) -> tuple[str, dict] | None:
    """The ground truth with one fact (the place, an object, colour, count, position or sign
    reading, chosen at random) replaced by the LM's most likely wrong alternative; None when the
    answer states no fact this can change ("There is no sign"). A denied object ("No, there is no
    kite") becomes a claimed one: the only wrong alternative."""
    options = _options(answer, scene)
    if not options:
        return None
    kind, match, alternatives = options[int(rng.integers(len(options)))]
    if match.group(0)[0].isupper():  # at the start of a sentence: "Two dogs" -> "Three dogs"
        alternatives = [a[0].upper() + a[1:] for a in alternatives]
    prefix = answer[:match.start()].rstrip()
    scores = text_continuation_logprobs(model, processor, question, prefix, [" " + a for a in alternatives])
    choice = alternatives[int(np.argmax(scores))]
    negative = answer[:match.start()] + choice + answer[match.end():]
    return negative, {"kind": kind, "original": match.group(0), "substitute": choice}
