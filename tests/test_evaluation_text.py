"""Reading responses back into world facts: object names, attributes, negation, numbers."""

import numpy as np
import pytest

from bpo.evaluation import text as T
from bpo.evaluation.benchmarks import _facts_of
from bpo.world import language, vocab
from bpo.world.scene import sample_scenes


def names(text, **kw):
    return T.mentioned_objects(text, **kw)


@pytest.mark.parametrize("text, expected", [
    ("a teddy bear on a chair", {"teddy bear", "chair"}),
    ("a bear and a teddy bear", {"bear", "teddy bear"}),
    ("a brown bear", {"bear"}),
    ("the traffic light is green", {"traffic light"}),
    ("a light", set()),
    ("a fire hydrant near the fire", {"fire hydrant"}),
    ("a potted plant", {"potted plant"}),
    ("Three PEOPLE and two puppies", {"person", "dog"}),
    ("automobiles, a lorry, a motorbike and a stoplight", {"car", "truck", "motorcycle", "traffic light"}),
    ("The sheep and the deer", {"sheep", "deer"}),
    ("two lorries, three coaches and some bikes", {"truck", "bus", "bicycle"}),
    ("a laptop on the top shelf", {"laptop"}),  # 'top' inside 'laptop' is no word of its own
])
def test_object_names_two_words_first_plurals_and_synonyms(text, expected):
    assert names(text) == expected


def test_two_word_name_is_one_mention():
    mentions = T.extract_mentions("A teddy bear. Two traffic signals.")
    assert [(m.name, m.surface, m.plural) for m in mentions] == [
        ("teddy bear", "teddy bear", False), ("traffic light", "traffic signals", True)]


def test_quoted_text_names_nothing():
    assert names('A sign reads "no dogs".') == set()
    assert names("A sign says NO DOGS.") == {"dog"}  # capitals are ordinary words
    # ...and its "no" negates nothing outside the quote
    assert not T.extract_mentions('A sign says "NO" next to a dog.')[0].negated


@pytest.mark.parametrize("text, expected, literal", [
    # an unclosed quote ends with its sentence: the objects after it are mentioned
    ('The sign says "STOP. There is a dog and a cat. Another "word" here.', {"dog", "cat"}, ["stop", "word"]),
    ('A sign "NO DOGS\nA cat sits there.', {"cat"}, ["no", "dogs"]),
    ('A sign reads \u201cNO DOGS. A cat sits there.', {"cat"}, ["no", "dogs"]),
    # balanced quotes stay literal, with sentence punctuation inside or outside the marks
    ('The sign reads "OPEN".', set(), ["open"]),
    ('The sign reads "OPEN." A dog sits there.', {"dog"}, ["open"]),
    ('A sign reads "no dogs" next to a cat.', {"cat"}, ["no", "dogs"]),
    ('A sign reads \u201cno dogs\u201d next to a cat.', {"cat"}, ["no", "dogs"]),
    # a quote over two sentences: literal in the first; its closing mark opens nothing
    ('A sign says "NO DOGS. KEEP OUT." A cat sits by it.', {"cat"}, ["no", "dogs"]),
])
def test_quotes_end_at_their_closing_mark_or_sentence_end(text, expected, literal):
    assert names(text) == expected
    assert [t.text for t in T.tokenize(text) if t.literal] == literal


def test_colour_count_and_position_attach_to_their_noun():
    (car, bus) = T.extract_mentions("There are two bright red cars on the left and a blue bus on the right.")
    assert (car.name, car.colour, car.count, car.col) == ("car", "red", 2, "left")
    assert (bus.name, bus.colour, bus.count, bus.col) == ("bus", "blue", 1, "right")
    (car, bus) = T.extract_mentions("The car is red and the bus is blue.")
    assert (car.colour, bus.colour) == ("red", "blue")
    (dog,) = T.extract_mentions("In the bottom left there is a dog.")
    assert (dog.row, dog.col) == ("bottom", "left")
    (plant,) = T.extract_mentions("A green potted plant is in the top middle.")
    assert (plant.name, plant.colour, plant.row, plant.col) == ("potted plant", "green", "top", "centre")


def test_attributes_stay_in_their_sentence():
    (car, dog) = T.extract_mentions("There is a car. It is sunny and red on the left. A dog.")
    assert car.colour is None and car.col is None and dog.colour is None


@pytest.mark.parametrize("text, count", [
    ("a dog", 1), ("an orange cat", 1), ("two dogs", 2), ("3 dogs", 3), ("a pair of dogs", 2),
    ("one of the dogs", None), ("a lot of dogs", None), ("the dogs", None), ("there are dogs, a few", None),
])
def test_count_needs_a_number_directly_before_the_noun_phrase(text, count):
    (m,) = T.extract_mentions(text)
    assert m.count == count


@pytest.mark.parametrize("text, negated", [
    ("There is no dog.", {"dog"}),
    ("There isn't a dog.", {"dog"}),
    ("I don't see any dogs, cats or birds.", {"dog", "cat", "bird"}),
    ("There is no sign, and a dog sits here.", set()),
    ("No, there is a dog.", set()),
    ("There is no dog but a cat.", {"dog"}),
    ("The cat is not red.", set()),
    ("I cannot see a bear.", {"bear"}),
])
def test_negation_scope(text, negated):
    assert {m.name for m in T.extract_mentions(text) if m.negated} == negated
    assert names(text, include_negated=False) == names(text) - negated


def test_facts_skip_negated_mentions():
    facts = T.extract_facts("There are two red cars in the top left. There is no dog.")
    assert facts == {("object", "car"), ("colour", "car", "red"), ("count", "car", 2), ("row", "car", "top"),
                     ("col", "car", "left")}


@pytest.mark.parametrize("text, expected", [
    ("The sign shows 3+4, which equals 7.", [7]),
    ("42 plus 5 is 47", [47]),
    ('The sign reads "42".', [42]),
    ("There are two dogs and 3 cats.", [2, 3]),
    ("There is a dog.", [1]),
    ("I cannot tell.", []),
])
def test_numbers(text, expected):
    assert T.numbers(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Yes, there is.", "yes"), ("no.", "no"), ("There is no dog, yes.", "no"), ("Nope", None),
    ("", None), ("YES!", "yes"), ("I cannot answer that.", None),
])
def test_yes_no_is_the_first_yes_or_no_word(text, expected):
    assert T.yes_no(text) == expected


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError, match="expected a string"):
        T.extract_mentions(None)


def test_every_lexicon_word_reads_back_as_its_noun():
    for info in vocab.OBJECTS.values():
        for word in (info.name, info.plural, *info.synonyms):
            assert names(f"I see {word} here.") == {info.name}, word


def test_the_worlds_own_descriptions_read_back_exactly():
    # language.describe is the training data's wording: judges must read every fact of it correctly.
    for i, scene in enumerate(sample_scenes(3, "bench/text-test", 60)):
        description = language.describe(scene, np.random.default_rng(i))
        expected = {tuple(f) for o in scene.objects for f in _facts_of(o)}
        assert T.extract_facts(description) == expected, description
