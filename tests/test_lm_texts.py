"""Copy texts for tiny's LM pre-training: the notes in front say what the text after them needs."""

import re

import pytest

from bpo.training.config import BaseTrainingConfig
from bpo.training.lm_texts import copy_texts
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


def test_copy_text_count_must_be_a_count():
    with pytest.raises(ValueError, match="lm_copy_texts must be an int >= 0"):
        BaseTrainingConfig(lm_copy_texts=-1)
    with pytest.raises(ValueError, match="lm_copy_texts must be an int >= 0"):
        BaseTrainingConfig(lm_copy_texts=2.5)
