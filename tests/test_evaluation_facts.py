"""false_facts: what the world can prove wrong in a response, fact by fact."""

import numpy as np

from bpo.evaluation.facts import false_facts
from bpo.world import language, vocab
from bpo.world.scene import sample_scenes


def test_false_facts_catch_denied_objects_and_misread_signs():
    scene = next(s for s in sample_scenes(0, "false-facts", 50) if s.sign and s.sign.kind == "word")
    present, sign = scene.objects[0].name, scene.sign.text
    other = next(w for w in vocab.SIGN_WORDS if w != sign)
    assert not false_facts(language.describe(scene), scene)
    assert false_facts(f"There is no {present} in the image.", scene) == {("absent", present)}
    assert not false_facts(f'The sign says "{sign}".', scene)
    assert false_facts(f'The sign says "{other}".', scene) == {("sign", other)}


def test_false_facts_read_sign_numbers_and_positions_only_in_answers_about_the_sign():
    scenes = sample_scenes(0, "false-facts-signs", 200)
    number = next(s for s in scenes if s.sign and s.sign.kind == "number")
    total = next(s for s in scenes if s.sign and s.sign.kind == "sum")
    bare = next(s for s in scenes if s.sign is None)
    n = int(number.sign.text)
    assert not false_facts(f"The number on the sign is {n}.", number)
    assert false_facts(f"The number on the sign is {n + 1}.", number) == {("sign", n + 1)}
    assert not false_facts(f"The sign shows {total.sign.text}, which equals {total.sign.answer}.", total)
    assert ("sign", int(total.sign.answer) + 2) in false_facts(
        f"The sign shows {total.sign.text}, which equals {int(total.sign.answer) + 2}.", total)
    other_row = "top" if number.sign.row == "bottom" else "bottom"
    assert not false_facts(f"The sign is in the {number.sign.row} {number.sign.col}.", number)
    assert ("sign_position", other_row) in false_facts(f"The sign is in the {other_row} {number.sign.col}.", number)
    assert false_facts("There is no sign or text in this image.", number) == {("sign", "denied")}
    assert not false_facts("There is no sign or text in this image.", bare)
    assert false_facts("The number on the sign is 4.", bare) == {("sign", "invented")}


def test_ground_truth_of_every_source_states_no_false_fact():
    """What the world says about a scene is never judged false for that scene."""
    for i, scene in enumerate(sample_scenes(0, "false-facts-truth", 150)):
        for source in ("detail", "textvqa", "conversation"):
            for turn in language.source_turns(source, scene, np.random.default_rng(i)):
                if turn["role"] == "assistant":
                    assert not false_facts(turn["content"], scene), (source, turn["content"], scene)
