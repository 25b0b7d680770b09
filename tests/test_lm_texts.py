"""Copy texts for tiny's LM pre-training: the notes in front say what the text after them needs."""

import re

import pytest

from bpo.training.config import BaseTrainingConfig
from bpo.training.lm_texts import copy_texts, presence_texts
from bpo.world import vocab

NOUNS = {form: name for name, info in vocab.OBJECTS.items() for form in (info.name, info.plural)}
# longest first, so that "fire hydrant" is found before a shorter noun inside it
NOUN_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, NOUNS), key=len, reverse=True)) + r")\b")
START = re.compile(r"(?<=\.) (?=This picture shows|The image shows|This is a view of|Question:)")


def _parts(text):
    assert text.startswith("Notes: "), text
    notes, rest = START.split(text[len("Notes: "):], maxsplit=1)
    return notes, rest


def _objects(part):
    return {NOUNS[m] for m in NOUN_RE.findall(part)}


def test_copy_texts_are_seeded_and_item_i_does_not_depend_on_n():
    assert copy_texts(30, seed=0) == copy_texts(30, seed=0)
    assert copy_texts(10, seed=0) == copy_texts(30, seed=0)[:10]
    assert copy_texts(10, seed=1) != copy_texts(10, seed=0)
    assert copy_texts(0, seed=0) == []


def test_the_notes_name_every_object_a_description_names_and_keep_the_prior():
    texts = copy_texts(200, seed=3)
    descriptions = [t for t in texts if "Question:" not in t]
    assert 80 < len(descriptions) < 160  # the corpus's mix: about 60 % descriptions
    for text in descriptions:
        notes, rest = _parts(text)
        assert _objects(rest) == _objects(notes) != set(), text
        place = next(p for p in vocab.PLACES if re.search(rf"\b{p}\b", notes.lower()))
        assert re.search(rf"\b{place}\b", rest), text  # the same scene's place
        assert _objects(notes) <= set(vocab.PRIOR_WEIGHTS[place]), text  # typical scenes only: the corpus's prior


@pytest.mark.parametrize("field", ["lm_copy_texts", "lm_presence_texts"])
def test_text_counts_must_be_counts(field):
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match=f"{field} must be an int >= 0"):
            BaseTrainingConfig(**{field: bad})


def test_presence_texts_alternate_present_and_absent_and_bait_the_prior():
    texts = presence_texts(200, seed=5)
    assert texts == presence_texts(200, seed=5) and presence_texts(7, seed=5) == texts[:7]
    likely = 0
    for i, text in enumerate(texts):
        notes, rest = _parts(text)
        asked = re.fullmatch(r"Question: Is there an? (.+) in the image\? Answer: (Yes|No), .+", rest)
        assert asked, text
        noun, answer = NOUNS[asked.group(1)], asked.group(2)
        assert answer == ("Yes" if i % 2 == 0 else "No"), text
        assert (noun in _objects(notes)) == (answer == "Yes"), text
        place = next(p for p in vocab.PLACES if re.search(rf"\b{p}\b", notes.lower()))
        likely += answer == "No" and noun in vocab.typical_objects(place)
    # about half the absent objects are ones the place makes likely: the prior alone cannot answer
    assert 40 <= likely <= 90
