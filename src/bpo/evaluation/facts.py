"""What the world can prove wrong in a response: the judge that checks a negative (or any answer)
against its scene, fact by fact. Takes text and ground truth, never a model."""

from __future__ import annotations

import re

from bpo.evaluation.text import extract_facts, extract_mentions, numbers, place_words, position_words, sign_words
from bpo.evaluation.wild import fact_is_true
from bpo.world.scene import Scene


def about_sign_only(response: str) -> bool:
    """A response about the sign that names no object: its numbers and positions are the sign's."""
    return re.search(r"\b(sign|text|number)\b", response, re.I) is not None and not extract_mentions(response)


def false_facts(response: str, scene: Scene) -> set[tuple]:
    """Facts the response states that the scene contradicts: a wrong place, an absent object, a
    wrong colour, count or position, a present object said to be absent ("there is no dog"), a sign
    word that is not on the sign, a sign denied or invented, and, in a response about the sign
    alone, a wrong number or position of the sign."""
    wrong = {f for f in extract_facts(response) if not fact_is_true(f, scene)}
    wrong |= {("place", p) for p in place_words(response) if p != scene.place}
    wrong |= {("absent", m.name) for m in extract_mentions(response) if m.negated and scene.get(m.name) is not None}
    sign = scene.sign
    wrong |= {("sign", w) for w in sign_words(response) if sign is None or w != sign.text.upper()}
    if re.search(r"\bno (sign|text)\b", response, re.I):
        if sign is not None:
            wrong.add(("sign", "denied"))
    elif about_sign_only(response):
        if sign is None:
            wrong.add(("sign", "invented"))
        else:
            stated = numbers(response)
            if sign.kind != "word":
                wrong |= {("sign", n) for n in stated if n != int(sign.answer)}
            wrong |= {("sign_position", p) for p in position_words(response) if p not in (sign.row, sign.col)}
    return wrong
