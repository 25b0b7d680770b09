"""Templated but varied language about scenes: the three data sources of the paper's Table 2 and
the prior-only text corpus.

- ``detail``: detailed descriptions (the ShareGPT4V analogue);
- ``textvqa``: questions about the sign's text (the LLaVAR analogue);
- ``conversation``: multi-turn questions on objects, counts, colours and positions (the
  LLaVA-Instruct analogue);
- ``caption``: one-line captions, for vision-tower pre-training and projector alignment;
- ``corpus``: text about scenes drawn from the prior alone, with no image, for pre-training the
  ``tiny`` LM (that is where its bias comes from).

Each sentence talks about at most one object, so a rule judge can attach every colour, count and
position word to the right noun. Every word comes from ``vocab``.
"""

from __future__ import annotations

import numpy as np

from bpo.world import vocab
from bpo.world.scene import CELLS, Scene, SceneObject

DETAIL_PROMPTS = (
    "Describe this image in detail.",
    "Give a detailed description of the picture.",
    "What do you see in this image? Describe everything.",
    "Describe the scene in the image thoroughly.",
    "Tell me about everything in this picture.",
    "Write a detailed description of this image.",
)
CAPTION_PROMPTS = (
    "Give a short caption for this image.",
    "Caption the image in one sentence.",
    "Summarise the picture briefly.",
)

Turn = dict  # {"role": "user" | "assistant", "content": str}


def _pick(rng: np.random.Generator | None, options):
    """A random option; the first one when ``rng`` is None (the canonical wording)."""
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def _order(rng: np.random.Generator | None, n: int):
    return range(n) if rng is None else rng.permutation(n)


def article(phrase: str) -> str:
    """'a car', 'an orange car'."""
    return f"an {phrase}" if phrase[0] in "aeiou" else f"a {phrase}"


def listing(parts: list[str]) -> str:
    """'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


_PREPOSITIONS = {"street": "on", "beach": "on", "farm": "on", "harbour": "at"}


def place_phrase(place: str, preposition: bool = False) -> str:
    """'an office', or with ``preposition`` 'in an office', 'on a beach'."""
    phrase = article(place)
    return f"{_PREPOSITIONS.get(place, 'in')} {phrase}" if preposition else phrase


def noun_phrase(o: SceneObject, with_colour: bool = True, spell_one: bool = False) -> str:
    """'a red car', 'two red cars', 'three sheep'."""
    info = vocab.OBJECTS[o.name]
    noun = info.name if o.count == 1 else info.plural
    colour = f"{o.colour} " if with_colour else ""
    if o.count == 1:
        return f"one {colour}{noun}" if spell_one else article(colour + noun)
    return f"{vocab.COUNT_NAMES[o.count]} {colour}{noun}"


def position_phrase(row: str, col: str, rng: np.random.Generator | None = None) -> str:
    corner = f"in the {row} middle" if col == "centre" else f"in the {row} {col} corner"
    return _pick(rng, (f"in the {row} {col}", f"at the {row} {col}", corner))


def be(o: SceneObject) -> str:
    return "is" if o.count == 1 else "are"


def the(o: SceneObject) -> str:
    """'the dog' or 'the dogs'."""
    return f"the {o.name if o.count == 1 else vocab.OBJECTS[o.name].plural}"


def object_sentence(o: SceneObject, rng: np.random.Generator | None = None) -> str:
    np_, pos = noun_phrase(o), position_phrase(o.row, o.col, rng)
    form = 1 if rng is None else int(rng.integers(3))
    if form == 0:
        return f"{pos[0].upper()}{pos[1:]} there {be(o)} {np_}."
    if form == 1:
        return f"There {be(o)} {np_} {pos}."
    return f"{np_[0].upper()}{np_[1:]} {be(o)} {pos}."


def sign_sentence(scene: Scene, rng: np.random.Generator | None = None) -> str:
    s = scene.sign
    pos = position_phrase(s.row, s.col, rng)
    if s.kind == "word":
        return _pick(rng, (f'A sign {pos} reads "{s.text}".', f'{pos[0].upper()}{pos[1:]} a sign says "{s.text}".'))
    if s.kind == "number":
        return _pick(rng, (f"A sign {pos} shows the number {s.text}.", f'{pos[0].upper()}{pos[1:]} a sign reads "{s.text}".'))
    return f"A sign {pos} shows the sum {s.text}, which equals {s.answer}."


def describe(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """A detailed description that states every fact of the scene, in a random order and wording
    (with ``rng`` None: the canonical wording, one sentence per thing in the scene's order)."""
    opening = _pick(rng, (
        f"This picture shows {place_phrase(scene.place)}.",
        f"The image shows a scene {place_phrase(scene.place, preposition=True)}.",
        f"This is a view of {place_phrase(scene.place)}.",
    ))
    sentences = [object_sentence(scene.objects[i], rng) for i in _order(rng, len(scene.objects))]
    if scene.sign:
        at = len(sentences) if rng is None else int(rng.integers(len(sentences) + 1))
        sentences.insert(at, sign_sentence(scene, rng))
    return " ".join([opening, *sentences])


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One line: the place and every object with its count and colour."""
    parts = [noun_phrase(scene.objects[i]) for i in rng.permutation(len(scene.objects))]
    if scene.sign:  # the sign's text too: the vision tower learns to read only what captions say
        parts.append(f'a sign reading "{scene.sign.text}"')
    place = place_phrase(scene.place)
    return f"{place[0].upper()}{place[1:]} with {listing(parts)}."


def sign_qa(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Questions about the sign's text; a scene without a sign gets the honest 'no text' answer."""
    s = scene.sign
    if s is None:
        return [(_pick(rng, ("What does the sign say?", "Is there any text in the image?")),
                 "There is no sign or text in this image.")]
    where = f"The sign is {position_phrase(s.row, s.col, rng)}."
    if s.kind == "word":
        read = (_pick(rng, ("What does the sign say?", "What word is written on the sign?", "Read the text in the image.")),
                f'The sign says "{s.text}".')
    elif s.kind == "number":
        read = (_pick(rng, ("What number is on the sign?", "What does the sign say?", "Read the number in the image.")),
                f"The number on the sign is {s.text}.")
    else:
        read = (_pick(rng, ("What is the result of the sum on the sign?", "Solve the sum written on the sign.")),
                f"The sign shows {s.text}, which equals {s.answer}.")
    if rng.random() < 0.5:
        return [read]
    pairs = [read, ("Where is the sign?", where)]
    return [pairs[i] for i in rng.permutation(2)]


def _absent_object(scene: Scene, rng: np.random.Generator) -> str:
    """Half the time the absent object is one the prior expects here: saying 'no' to it is the skill."""
    present = scene.object_names
    likely = [o for o in vocab.typical_objects(scene.place) if o not in present]
    pool = likely if likely and rng.random() < 0.5 else [o for o in vocab.OBJECTS if o not in present]
    return _pick(rng, pool)


def present_qa(o: SceneObject, rng: np.random.Generator) -> tuple[str, str]:
    """'Is there a <noun>?' about an object in the scene, answered yes with where it is."""
    return f"Is there a {o.name} in the image?", f"Yes, there {be(o)} {noun_phrase(o)} {position_phrase(o.row, o.col, rng)}."


def absent_qa(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """'Is there a <noun>?' about an object the scene lacks, answered no."""
    a = _absent_object(scene, rng)
    return f"Is there a {a} in the image?", f"No, there is no {a} in the image."


def object_qa(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """One question-answer pair about objects, counts, colours or positions."""
    kind = _pick(rng, ("present", "absent", "count", "colour", "where", "what_at", "place"))
    o = scene.objects[int(rng.integers(len(scene.objects)))]
    name, plural = o.name, vocab.OBJECTS[o.name].plural
    if kind == "present":
        return present_qa(o, rng)
    if kind == "absent":
        return absent_qa(scene, rng)
    if kind == "count":
        return f"How many {plural} are there?", f"There {be(o)} {noun_phrase(o, with_colour=False, spell_one=True)}."
    if kind == "colour":
        the = name if o.count == 1 else plural
        return f"What colour {be(o)} the {the}?", f"The {the} {be(o)} {o.colour}."
    if kind == "where":
        the = name if o.count == 1 else plural
        return f"Where is the {the}?" if o.count == 1 else f"Where are the {the}?", f"The {the} {be(o)} {position_phrase(o.row, o.col, rng)}."
    if kind == "what_at":
        row, col = CELLS[int(rng.integers(len(CELLS)))]
        at = next((x for x in scene.objects if (x.row, x.col) == (row, col)), None)
        q = f"What is {position_phrase(row, col)}?"
        if at is not None:
            return q, f"There {be(at)} {noun_phrase(at)} {position_phrase(row, col)}."
        if scene.sign and (scene.sign.row, scene.sign.col) == (row, col):
            return q, f"There is a sign {position_phrase(row, col)}."
        return q, "Nothing, that part of the image is empty."
    return "Where was this picture taken?", f"This picture was taken {place_phrase(scene.place, preposition=True)}."


def conversation(scene: Scene, rng: np.random.Generator, turns: tuple[int, int] = (2, 4)) -> list[Turn]:
    """A multi-turn conversation; no question is asked twice."""
    n = int(rng.integers(turns[0], turns[1] + 1))
    pairs: dict[str, str] = {}
    for _ in range(4 * n):  # distinct questions; a small scene may offer fewer than n
        q, a = object_qa(scene, rng)
        pairs.setdefault(q, a)
        if len(pairs) == n:
            break
    return [t for q, a in pairs.items() for t in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]


def single_turn(question: str, answer: str) -> list[Turn]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def source_turns(source: str, scene: Scene, rng: np.random.Generator) -> list[Turn]:
    """The conversation one data source makes of a scene."""
    if source == "detail":
        return single_turn(_pick(rng, DETAIL_PROMPTS), describe(scene, rng))
    if source == "caption":
        return single_turn(_pick(rng, CAPTION_PROMPTS), caption(scene, rng))
    if source == "textvqa":
        return [t for q, a in sign_qa(scene, rng) for t in single_turn(q, a)]
    if source == "conversation":
        return conversation(scene, rng)
    raise ValueError(f"unknown data source {source!r}; expected detail, caption, textvqa or conversation")


def corpus_text(scene: Scene, rng: np.random.Generator) -> str:
    """Text for LM pre-training: a description or a question-answer exchange, with no image."""
    if rng.random() < 0.6:
        return describe(scene, rng)
    q, a = object_qa(scene, rng)
    return f"Question: {q} Answer: {a}"
